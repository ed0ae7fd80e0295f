"""A local site behind a login: a login form, a session cookie, a members-only page, a
page that redirects strangers to /login, a login wall answered 200, an API that needs a
bearer token and a page behind HTTP Basic authentication."""

from __future__ import annotations

import base64
import time

from tests.site import Site

SESSION = "s3ss10n-v4lue-91f2c7d0a4"        # the session cookie's value
OTHER = "pr3f-v4lue-55e0"                   # a second cookie, not a session
TOKEN = "b34rer-t0ken-7c1e0f93aa"           # the API's bearer token
USER, PASSWORD = "alice", "b4sic-pw-3e9d1c"
REFRESHED = "r3fresh3d-s3ssion-0b7e"        # the session the members page sets anew
# what we send: never sealed (REFRESHED is what the server sent: kept, its name reported)
SECRETS = (SESSION, OTHER, TOKEN, PASSWORD,
           base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())

LOGIN_FORM = ('<form method="post" action="/login"><input name="user">'
              '<input type="password" name="pw"><button>Log in</button></form>')


def _cookies(h) -> dict:
    out = {}
    for pair in (h.headers.get("Cookie") or "").split(";"):
        name, _, value = pair.strip().partition("=")
        if name:
            out[name] = value
    return out


def _send(h, status: int, body: str | bytes, headers: dict | None = None,
          content_type: str = "text/html; charset=utf-8") -> None:
    data = body if isinstance(body, bytes) else body.encode()
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def _page(title: str, body: str) -> str:
    return f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"


def _members(h) -> None:
    if _cookies(h).get("session") != SESSION:
        _send(h, 302, "", {"Location": "/login?next=/members"})
        return
    _send(h, 200, _page("Members", "<p>members only: the closed group's post</p>"
                                   '<img src="/members/logo.png">'),
          {"Set-Cookie": f"session={REFRESHED}; Path=/; HttpOnly"})


def _wall(h) -> None:
    if _cookies(h).get("session") != SESSION:
        _send(h, 200, _page("Sign in to continue", LOGIN_FORM))
        return
    _send(h, 200, _page("Channel", "<p>the channel's messages</p>"))


def _api(h) -> None:
    if h.headers.get("Authorization") != f"Bearer {TOKEN}":
        _send(h, 401, '{"error": "unauthorized"}', content_type="application/json")
        return
    _send(h, 200, '{"posts": ["first"]}', content_type="application/json")


def _basic(h) -> None:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if h.headers.get("Authorization") != expected:
        _send(h, 401, "who are you?", {"WWW-Authenticate": 'Basic realm="x"'})
        return
    _send(h, 200, _page("Basic", "<p>behind basic auth</p>"))


def login_site() -> Site:
    site = Site()
    site.html("/", "Public", '<a href="/members">members</a>')
    site.html("/login", "Log in", LOGIN_FORM)
    site.html("/login?next=/members", "Log in", LOGIN_FORM)
    site.add("/members", handler=_members)
    site.add("/members/logo.png", b"\x89PNG logo", content_type="image/png")
    site.add("/wall", handler=_wall)
    site.add("/api", handler=_api)
    site.add("/basic", handler=_basic)
    return site


def cookies_txt(domain: str = "127.0.0.1", expires: int | None = None,
                header: bool = True) -> str:
    """A Netscape cookies.txt holding the session (expiring `expires`, default in a day)."""
    when = int(time.time()) + 86400 if expires is None else expires
    lines = ["# Netscape HTTP Cookie File"] if header else []
    lines += [f"{domain}\tFALSE\t/\tFALSE\t{when}\tsession\t{SESSION}",
              f"{domain}\tFALSE\t/\tFALSE\t{when}\tprefs\t{OTHER}",
              # for another site only: never sent here
              f"elsewhere.example\tFALSE\t/\tFALSE\t{when}\tforeign\tnot-for-this-site"]
    return "\n".join(lines) + "\n"
