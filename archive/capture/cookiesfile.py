"""Netscape cookies.txt (what browser extensions export and yt-dlp reads) to and from
the cookie dicts Playwright's storage state holds."""

from __future__ import annotations

import http.cookiejar
import time
from pathlib import Path

from archive.errors import ArchiveError

HEADER = "# Netscape HTTP Cookie File\n"
MAX_COOKIES_FILE = 16 << 20        # far more than any browser's export


def read_cookies_txt(path: str | Path) -> list[dict]:
    """The cookies of a Netscape cookies.txt as Playwright cookies; a file in another
    format, or holding only expired cookies, is a one-line ArchiveError."""
    jar = http.cookiejar.MozillaCookieJar()
    try:
        if Path(path).stat().st_size > MAX_COOKIES_FILE:
            raise ArchiveError(f"{path} is not a cookies file: it is larger than {MAX_COOKIES_FILE >> 20} MiB")
        jar.load(str(path), ignore_discard=True, ignore_expires=True)
    except FileNotFoundError:
        raise ArchiveError(f"cookies file not found: {path}") from None
    except (http.cookiejar.LoadError, UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{path} is not a Netscape cookies.txt file ({_first(exc)})") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read cookies file {path}: {exc.strerror or exc}") from None
    now = time.time()
    cookies = [_playwright(c) for c in jar]
    if not cookies:
        raise ArchiveError(f"{path} holds no cookies")
    live = [c for c in cookies if c["expires"] == -1 or c["expires"] > now]
    if not live:
        raise ArchiveError(f"every cookie in {path} has expired: export them again after logging in")
    return live


def _playwright(cookie: http.cookiejar.Cookie) -> dict:
    return {
        "name": cookie.name, "value": cookie.value or "",
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


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
