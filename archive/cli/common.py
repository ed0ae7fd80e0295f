"""Argument types and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from archive.errors import ArchiveError
from archive.keys import fingerprint, load_public_key

SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6,
              "mib": 2**20, "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12,
              "tib": 2**40}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def size(text: str) -> int:
    """`500`, `10MB`, `1.5GiB` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 500MB or 1GiB)")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `1d` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in DURATION_UNITS:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m or 2h)")
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def http_url(text: str) -> str:
    """An absolute http(s) URL, or a one-line error."""
    try:
        parts = urlsplit(text.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ArchiveError(f"not a valid URL: {text!r}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ArchiveError(f"not an http(s) URL: {text!r}")
    return text.strip()


def trusted_keys(specs: list[str] | None) -> dict[str, str]:
    """`--trust [NAME=]FILE|DIR` -> {fingerprint: name}. A folder gives every *.pem in it."""
    trusted: dict[str, str] = {}
    for spec in specs or []:
        name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
        path = Path(path_text)
        paths = sorted(path.glob("*.pem")) + sorted(path.glob("*.pub")) if path.is_dir() else [path]
        if path.is_dir() and not paths:
            raise ArchiveError(f"no public keys (*.pem, *.pub) in {path}")
        for item in paths:
            key = load_public_key(item)
            label = name or item.name.removesuffix(".pem").removesuffix(".pub")
            trusted[fingerprint(key)] = label
    return trusted


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


class Progress:
    """One status line on a terminal, redrawn at most a few times a second; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._last = 0.0
        self._started = time.monotonic()
        self._width = 0

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        line = f"{text}  [{now - self._started:5.0f}s]"
        sys.stderr.write("\r" + line.ljust(self._width))
        sys.stderr.flush()
        self._width = len(line)

    def done(self) -> None:
        if self.enabled and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
