"""Where a record is in a capture, to read it again."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RecordLocation:
    """Where a record is, to read it again (a screenshot for the HTML report)."""

    member: str | None      # zip member of the WARC, None for a bare WARC
    offset: int
    length: int
    content_type: str | None = None
