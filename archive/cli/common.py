"""Argument types and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from archive.errors import ArchiveError
from archive.keys import fingerprint, load_public_key
from archive.values import human_bytes  # noqa: F401 - re-exported for the commands
from archive.values import parse_duration, parse_http_url, parse_limit, parse_size


def size(text: str) -> int:
    """`500`, `10MB`, `1.5GiB` -> bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def size_limit(text: str) -> int | None:
    """A size, or `none` for no limit."""
    try:
        return parse_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """`90`, `90s`, `15m`, `2h`, `1d` -> seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        return parse_http_url(text)
    except ValueError as exc:
        raise ArchiveError(str(exc)) from None


def _name_and_path(spec: str) -> tuple[str, Path]:
    """`[NAME=]PATH`: a name holds no "=" and a path may, so the name ends at the first
    one, unless the whole argument is a file or folder."""
    name, sep, rest = spec.partition("=")
    if not sep or Path(spec).exists():
        return "", Path(spec)
    return name, Path(rest)


def trusted_keys(specs: list[str] | None) -> dict[str, str]:
    """`--trust [NAME=]FILE|DIR` -> {fingerprint: name}. A folder gives every *.pem in it."""
    trusted: dict[str, str] = {}
    for spec in specs or []:
        name, path = _name_and_path(spec)
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
