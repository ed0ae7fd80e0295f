"""Capture ids: UTC time plus randomness, sortable (`20250308T121500Z-7f3a9c21`)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from archive import utctime

CAPTURE_ID = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([0-9a-f]{8})$")


def new_capture_id(now: datetime | None = None) -> str:
    return utctime.compact(now) + "-" + secrets.token_hex(4)


def is_capture_id(value: str) -> bool:
    return bool(CAPTURE_ID.fullmatch(value))   # match's $ allows a final newline


def date_path(capture_id: str) -> str:
    """`YYYY/MM/DD` of a capture id, the folders of the store layout."""
    match = CAPTURE_ID.match(capture_id)
    if not match:
        raise ValueError(f"not a capture id: {capture_id}")
    return "/".join(match.groups()[:3])
