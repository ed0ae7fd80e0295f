"""Values people type: sizes, durations and URLs, parsed into plain Python values; and
values read from files and stores, parsed and shown without trusting them.

Shared by the command line and job files; each parser raises ValueError with a message
fit to show as it is.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
              "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
              "tib": 2**40}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _not_negative(text: str) -> None:
    if text.strip().startswith("-"):
        raise ValueError(f"must not be negative: {text!r}")


def parse_size(text: str) -> int:
    """`500`, `10MB`, `1.5GiB` -> bytes."""
    _not_negative(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"not a size: {text!r} (try 500MB or 1GiB)")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def parse_limit(text: str) -> int | None:
    """A size, or `none` (no limit) -> bytes or None."""
    if text.strip().lower() in ("none", "unlimited"):
        return None
    return parse_size(text)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `1d` -> seconds."""
    _not_negative(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in DURATION_UNITS:
        raise ValueError(f"not a duration: {text!r} (try 90s, 15m or 2h)")
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]


# Chromium cannot size a window much beyond this (a far larger one stops the browser,
# a merely large one makes every screenshot time out): refused before any page loads.
MAX_VIEWPORT = 16384


def parse_viewport(text: str) -> tuple[int, int]:
    """`1280x800` -> (1280, 800)."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise ValueError(f"not a viewport size like 1280x800: {text!r}")
    if int(width) > MAX_VIEWPORT or int(height) > MAX_VIEWPORT:
        raise ValueError(f"viewport {text!r} too large: at most {MAX_VIEWPORT} pixels a side")
    return int(width), int(height)


def parse_http_url(text: str) -> str:
    """An absolute http(s) URL."""
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"not a valid URL: {text!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an http(s) URL: {text!r}")
    return text.strip()


def parse_regex(text: str) -> str:
    """A regular expression (as Python's re reads it), returned as given."""
    try:
        re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not a regular expression: {exc}") from None
    return text


def parse_sealed_url(text: str) -> str:
    """An absolute http(s) URL that a capture will seal (a seed, a TSA): one with a user
    name or password in it is refused, since they would be kept in write-once storage
    for good (WARC-Target-URI, pages.jsonl, the signed manifest)."""
    url = parse_http_url(text)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise ValueError(
            f"{shown}: a URL with a user name or password is refused, as they would be sealed "
            "into the capture for good; give the URL without them")
    return url


_USERINFO = re.compile(r"(//)[^/?#@\s]*@")


def hide_userinfo(text: str) -> str:
    """`text` with the user and password of any URL in it shown as `***`."""
    return _USERINFO.sub(r"\1***@", text)


def parse_seed(text: str) -> tuple[str, str | None]:
    """A seed URL: (the URL without user and password, the `Authorization: Basic` value
    they become, or None). The credentials are never in the URL kept, nor in an error."""
    from archive.capture.credentials import split_url_credentials

    try:
        url = parse_http_url(text)
    except ValueError as exc:
        raise ValueError(hide_userinfo(str(exc))) from None
    return split_url_credentials(url)


def url_logins(seeds: list[tuple[str, str | None]]) -> dict[str, str]:
    """origin -> Authorization value of the seeds that carried credentials; two seeds of
    one origin with different credentials are refused (one identity per capture)."""
    from archive.capture.credentials import origin

    logins: dict[str, str] = {}
    for url, auth in seeds:
        if auth is None:
            continue
        where = origin(url)
        if logins.setdefault(where, auth) != auth:
            raise ValueError(f"two seeds of {where} carry different credentials: one login per site")
    return logins


def human_bytes(n: int, exact: bool = False) -> str:
    """`12.3 MB` (decimal units); with exact, the byte count follows: `12.3 MB (12345678 bytes)`."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    if unit == "B":
        return f"{n} bytes" if exact else f"{n} B"
    return f"{value:.1f} {unit}" + (f" ({n} bytes)" if exact else "")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 record', '4 records': reports are read by people, not only by scripts."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def text_field(value) -> str | None:
    """A text field as a file or a store gives it; anything else (a number, a list, an
    object: anyone able to write the file can put one there) is no value."""
    return value if isinstance(value, str) else None


def printable(text: str) -> str:
    """`text` safe to show on a terminal as one line: control characters (escape
    sequences, carriage returns, newlines) and invisible format characters (bidi
    overrides) written as escapes. What a file or a ledger says can then neither move
    the cursor over a verdict nor add lines that look like ours."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def parse_json(data: bytes | str):
    """json.loads for what a file or a store holds: nesting too deep for Python's parser
    (which raises RecursionError) is a ValueError, as any other malformed JSON is."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
