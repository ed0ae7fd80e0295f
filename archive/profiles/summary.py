"""What `archive profile show` tells of a profile: domains, cookie names and when they
expire, local-storage origins and key names. Never a value: the summary is built from
names only, so no code path here can print one."""

from __future__ import annotations

import time

from archive import utctime
from archive.capture.login import Credentials, cookie_domain


def _when(expires) -> str | None:
    if not isinstance(expires, (int, float)) or expires <= 0:
        return None           # a session cookie: it ends with the browser session
    try:
        return utctime.seconds(expires)
    except (OverflowError, OSError, ValueError):
        return None


def summary(credentials: Credentials, now: float | None = None) -> dict:
    """Names and dates of a profile's contents, no value."""
    now = time.time() if now is None else now
    cookies = []
    for c in credentials.cookies:
        expires = c.get("expires")
        dated = isinstance(expires, (int, float)) and expires > 0
        cookies.append({
            "domain": cookie_domain(c), "name": str(c.get("name", "")), "path": c.get("path") or "/",
            "expires": _when(expires), "session": not dated, "expired": bool(dated and expires <= now),
            "secure": bool(c.get("secure")), "httpOnly": bool(c.get("httpOnly")),
        })
    cookies.sort(key=lambda c: (c["domain"], c["name"], c["path"]))
    storage = []
    for origin in credentials.storage_state.get("origins") or ():
        if isinstance(origin, dict):
            keys = sorted(str(item.get("name", "")) for item in origin.get("localStorage") or ()
                          if isinstance(item, dict))
            storage.append({"origin": str(origin.get("origin", "")), "localStorageKeys": keys})
    live = [c for c in cookies if not c["expired"]]
    return {
        "identity": credentials.identity,
        "domains": credentials.identity["cookieDomains"],
        "cookies": cookies,
        "expired": len(cookies) - len(live),
        "allExpired": bool(cookies) and not live,
        "localStorage": storage,
    }
