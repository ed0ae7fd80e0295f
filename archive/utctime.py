"""UTC time as the archive writes and reads it: one format for each use, here only.

- `seconds`: RFC 3339 to the second, `2026-11-25T16:25:19Z` (pages.jsonl `ts`, datapackage
  `created`, capture.json, TSA times, anything a person reads in a file)
- `micros`: to the microsecond, `2026-11-25T16:25:19.123456Z` (WARC-Date-like fields,
  custody entries, job locks: where order within a second matters)
- `compact`: `20261125T162519Z`, the time part of capture ids (and, with micros, run ids)
- `readable`: `2026-11-25 16:25:19 UTC`, in reports and the web app
"""

from __future__ import annotations

from datetime import datetime, timezone

SECONDS = "%Y-%m-%dT%H:%M:%SZ"
MICROS = "%Y-%m-%dT%H:%M:%S.%fZ"
COMPACT = "%Y%m%dT%H%M%SZ"
COMPACT_MICROS = "%Y%m%dT%H%M%S.%fZ"
READABLE = "%Y-%m-%d %H:%M:%S UTC"


def now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(moment: datetime | float | None) -> datetime:
    """`moment` in UTC: now when None, a POSIX time when a number; a naive datetime is
    taken as UTC already (never as this machine's local time)."""
    if moment is None:
        return now()
    if isinstance(moment, (int, float)):
        return datetime.fromtimestamp(moment, timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def seconds(moment: datetime | float | None = None) -> str:
    """`2026-11-25T16:25:19Z` (now when no moment is given)."""
    return _utc(moment).strftime(SECONDS)


def micros(moment: datetime | float | None = None) -> str:
    """`2026-11-25T16:25:19.123456Z` (now when no moment is given)."""
    return _utc(moment).strftime(MICROS)


def compact(moment: datetime | float | None = None, fraction: bool = False) -> str:
    """`20261125T162519Z` (with `fraction`: `20261125T162519.123456Z`)."""
    return _utc(moment).strftime(COMPACT_MICROS if fraction else COMPACT)


def readable(moment: datetime | float | None = None) -> str:
    """`2026-11-25 16:25:19 UTC`, for people."""
    return _utc(moment).strftime(READABLE)


def parse_seconds(text: str) -> datetime:
    """The datetime of a `seconds` string; ValueError when it is not one."""
    return datetime.strptime(text, SECONDS).replace(tzinfo=timezone.utc)


def parse_micros(text: str) -> datetime:
    """The datetime of a `micros` string; ValueError when it is not one."""
    return datetime.strptime(text, MICROS).replace(tzinfo=timezone.utc)
