"""A site behind a login, on 127.0.0.1: a login form, a session cookie, a page that puts
a token into local storage, a members-only page (strangers are sent to /login) and a
members-only video. The secrets are random per site, so a test can grep a whole capture
for them."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

from tests.loginsite import _cookies, _send
from tests.site import Site, slow

USER, PASSWORD = "alice", "open sesame"
MEMBERS_TEXT = "Minutes of the closed meeting, members only"


class _PathRoutes(dict):
    """Routes found by path alone: the login form's query (and /login?next=) reach them."""

    def get(self, key, default=None):
        return super().get(key.split("?", 1)[0], default)


class LoginSite:
    """The site and its secrets: `session` (the cookie's value) and `token` (what the
    welcome page keeps in local storage)."""

    def __init__(self, video: bytes = b"") -> None:
        self.session = "sess-" + secrets.token_hex(16)
        self.token = "tok-" + secrets.token_hex(16)
        self.video = video
        self.cookies_seen: list[str | None] = []     # the session cookie of each members request
        site = self.site = Site()
        site.routes = _PathRoutes()
        site.html("/login", "Log in", (
            '<form action="/do-login" method="get">'
            '<input name="user" id="user"><input name="password" id="password" type="password">'
            '<button id="go" type="submit">Log in</button></form>'))
        site.add("/do-login", handler=self._do_login)
        site.html("/welcome", "Welcome", (
            f'<p id="hello">Welcome</p><script>localStorage.setItem("apiToken", "{self.token}");'
            'fetch("/stored")</script>'))
        site.add("/stored", b"", content_type="text/plain")     # the token is in local storage now
        # what a person does on /login, done by the page itself (for a window nobody sees)
        site.html("/auto-login", "Logging in", (
            f'<script>location = "/do-login?user={USER}&password={PASSWORD.replace(" ", "%20")}"</script>'))
        site.add("/members", handler=self._members)
        site.html("/public-video", "A video", '<video controls src="/members-media/clip.mp4"></video>')
        site.add("/members-media/clip.mp4", handler=self._video)
        site.add("/slow", handler=slow(4, b"<html><title>Slow</title>a slow page</html>"))

    def _do_login(self, h) -> None:
        query = parse_qs(urlsplit(h.path).query)
        if query.get("user") == [USER] and query.get("password") == [PASSWORD]:
            _send(h, 302, b"", {"Location": "/welcome",
                                "Set-Cookie": f"session={self.session}; Path=/; HttpOnly"})
        else:
            _send(h, 302, b"", {"Location": "/login"})

    def _logged_in(self, h) -> bool:
        value = _cookies(h).get("session")
        self.cookies_seen.append(value)
        return value == self.session

    def _members(self, h) -> None:
        if not self._logged_in(h):
            _send(h, 302, b"", {"Location": "/login?next=/members"})
            return
        _send(h, 200, (f"<!doctype html><html><head><title>Members</title></head>"
                       f"<body><h1>Members</h1><p>{MEMBERS_TEXT}</p></body></html>").encode())

    def _video(self, h) -> None:
        if not self._logged_in(h):
            _send(h, 403, b"members only")
            return
        _send(h, 200, self.video, content_type="video/mp4")


def cookies_txt(session: str, host: str = "127.0.0.1") -> str:
    """A Netscape cookies.txt holding the session cookie (no expiry: a session cookie)."""
    return ("# Netscape HTTP Cookie File\n"
            f"{host}\tFALSE\t/\tFALSE\t0\tsession\t{session}\n")
