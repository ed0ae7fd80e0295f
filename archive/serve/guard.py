"""What keeps the app safe to run: where it may listen, the access token, the Host
header (a hostile page cannot reach it through DNS rebinding), and the headers every
answer carries (a strict Content-Security-Policy on the app's own pages)."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from archive.errors import ArchiveError

COOKIE = "archive_serve_token"
MIN_TOKEN = 16
TOKEN_PARAM = "token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(bind: str, token: str | None) -> None:
    """Only loopback without a token: anything else would publish the evidence to the network."""
    if not is_loopback(bind) and not token:
        raise ArchiveError(f"--bind {bind} would let anyone on the network read the captures: give "
                           "--token-file FILE (a secret every request must then carry), or bind 127.0.0.1")


def read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"--token-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(text) < MIN_TOKEN or any(c.isspace() for c in text):
        raise ArchiveError(f"--token-file {path}: the token must be one word of at least {MIN_TOKEN} "
                           f"characters (for example: {secrets.token_urlsafe(24)})")
    return text


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _cookie_token(scope) -> str:
    jar = SimpleCookie()
    try:
        jar.load(_header(scope, b"cookie"))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no token
        return ""
    return jar[COOKIE].value if COOKIE in jar else ""


class Guard:
    """ASGI middleware: Host check, token check, security headers on every answer."""

    def __init__(self, app, hosts: set[str], token: str | None, headers: dict[str, str]) -> None:
        self.app, self.hosts, self.token = app, hosts, token
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        host = _header(scope, b"host").lower()
        if self.hosts and host not in self.hosts:
            return await self._refuse(send, 421, "unknown Host: open the address `archive serve` printed")
        if self.token:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            given = query.get(TOKEN_PARAM, "")
            if given and hmac.compare_digest(given.encode(), self.token.encode()):
                # a link with the token: keep it in a cookie, and take it out of the address
                rest = urlencode([(k, v) for k, v in query.items() if k != TOKEN_PARAM])
                path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")     # as sent: ASCII
                return await self._redirect(send, path + (b"?" + rest.encode("ascii") if rest else b""))
            held = _cookie_token(scope) or _header(scope, b"authorization").removeprefix("Bearer ").strip()
            if not (held and hmac.compare_digest(held.encode(), self.token.encode())):
                return await self._refuse(send, 401, "this archive needs its access token: open the "
                                                     "link with ?token=... or send Authorization: Bearer")

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", ())}
                message = {**message, "headers": [*message.get("headers", ()),
                                                   *(h for h in self.headers if h[0] not in names)]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send, status: int, text: str) -> None:
        body = (text + "\n").encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *self.headers]})
        await send({"type": "http.response.body", "body": body})

    async def _redirect(self, send, location: bytes) -> None:
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location), (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0"), *self.headers]})
        await send({"type": "http.response.body", "body": b""})


def allowed_hosts(bind: str, port: int, token: str | None) -> set[str]:
    """Host headers accepted: the loopback names of the port (no check when a token guards
    a public bind: the token is the protection, and the public name is unknown here)."""
    if token and not is_loopback(bind):
        return set()
    names = {"127.0.0.1", "localhost", "[::1]"}
    if not is_loopback(bind):
        names.add(bind)
    return {f"{name}:{port}" for name in names}


def ui_headers(replay_origin: str | None) -> dict[str, str]:
    """The app's own pages: nothing runs but our script, nothing loads from elsewhere,
    frames only from the replay origin, and no one may frame us."""
    frames = f"frame-src {replay_origin}; " if replay_origin else ""
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            f"{frames}form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def replay_headers(app_origin: str) -> dict[str, str]:
    """The replay origin: framed only by the app; what it loads (ReplayWeb.page, the WACZ)
    comes from itself, so a replayed page never reaches the live web."""
    return {
        "Content-Security-Policy": (
            "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; "
            f"frame-ancestors 'self' {app_origin}; form-action 'none'; base-uri 'self'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
