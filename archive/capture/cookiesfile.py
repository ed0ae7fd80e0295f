"""Cookies as Playwright's storage state holds them, from the cookies of a cookies.txt
(archive.capture.credentials reads those), and back to a Netscape cookies.txt for
yt-dlp."""

from __future__ import annotations

import http.cookiejar

HEADER = "# Netscape HTTP Cookie File\n"


def name_and_value(cookie: http.cookiejar.Cookie) -> tuple[str, str]:
    """A cookie's name and value. A cookies.txt line without a name is a cookie set as
    `Set-Cookie: VALUE`, which http.cookiejar keeps as a name without a value: its value
    is the secret, it has no name."""
    if cookie.value is None:
        return "", cookie.name
    return cookie.name, cookie.value


def playwright_cookie(cookie: http.cookiejar.Cookie) -> dict:
    """A cookie of a cookies.txt as Playwright's browser context takes it."""
    name, value = name_and_value(cookie)
    return {
        "name": name, "value": value,
        "domain": cookie.domain, "path": cookie.path or "/",
        "expires": float(cookie.expires) if cookie.expires else -1,
        "httpOnly": bool(cookie.has_nonstandard_attr("HttpOnly")), "secure": bool(cookie.secure),
        "sameSite": "Lax",
    }


def cookies_txt(cookies: list[dict]) -> str:
    """Playwright cookies as a Netscape cookies.txt."""
    lines = [HEADER]
    for c in cookies:
        domain = str(c.get("domain") or "")
        expires = c.get("expires")
        expires = int(expires) if isinstance(expires, (int, float)) and expires > 0 else 0
        prefix = "#HttpOnly_" if c.get("httpOnly") else ""
        lines.append("\t".join([
            prefix + domain, "TRUE" if domain.startswith(".") else "FALSE", str(c.get("path") or "/"),
            "TRUE" if c.get("secure") else "FALSE", str(expires), str(c.get("name", "")),
            str(c.get("value", "")),
        ]) + "\n")
    return "".join(lines)
