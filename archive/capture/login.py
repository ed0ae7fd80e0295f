"""What a capture logs in with: the cookies and local storage of a browser profile (or
of a cookies file), held in memory only and never saved with the capture's request,
and the identity the evidence names instead (never a value)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from archive.capture.cookiesfile import cookies_txt


@dataclass(frozen=True)
class Credentials:
    """Playwright's storage state (`cookies`, `origins` with their local storage) and
    what the evidence says of it. Secret: never saved, logged or sealed."""

    storage_state: dict
    identity: dict

    @property
    def cookies(self) -> list[dict]:
        return list(self.storage_state.get("cookies") or ())

    def cookies_txt(self) -> str:
        """The cookies as a Netscape cookies.txt, for yt-dlp's cookiefile."""
        return cookies_txt(self.cookies)


def cookie_domain(cookie: dict) -> str:
    return str(cookie.get("domain") or "").lstrip(".").lower()


def cookie_identity(cookies: list[dict]) -> dict:
    """The domains and names of a login's cookies (Playwright's shape), and a SHA-256 of
    every cookie's domain, path and name: the same jar gives the same digest, so two
    captures can be shown to have used the same session. Never a value."""
    triples = sorted({f"{c.get('domain', '')}\t{c.get('path') or '/'}\t{c.get('name', '')}" for c in cookies})
    return {
        "cookieDomains": sorted({cookie_domain(c) for c in cookies if cookie_domain(c)}),
        "cookieNames": sorted({str(c.get("name", "")) for c in cookies}),
        "cookieNamesSha256": hashlib.sha256("\n".join(triples).encode("utf-8")).hexdigest(),
    }


def identity(name: str, cookies: list[dict], origins: list[str] = ()) -> dict:
    """What the evidence and the custody ledger say of a browser profile: its folder's
    name, its cookies (cookie_identity) and the origins of its local storage."""
    found = {"profile": name, **cookie_identity(cookies)}
    if origins:
        found["localStorageOrigins"] = sorted(set(origins))
    return found
