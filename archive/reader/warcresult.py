"""What reading a WARC file found: its records (kept small: later checks need little of
each), the problems, how many digests were checked, and which reader decided."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from archive.reader.problems import Problems
from archive.warc.cdxj import timestamp14

@dataclass(slots=True)
class RecordInfo:
    offset: int                 # of the record (its gzip member) in the WARC file
    length: int
    record_type: str | None
    uri: str | None
    record_id: str | None
    date: str | None            # WARC-Date; kept as its 14 digits (an index line's timestamp)
    payload_digest: str | None
    content_type: str | None = None
    refers_uri: str | None = None     # a revisit's WARC-Refers-To-Target-URI
    refers_date: str | None = None    #   and WARC-Refers-To-Date (14 digits)


CONTENT_TYPES = ("response", "resource", "revisit")


def kept(info: RecordInfo) -> RecordInfo:
    """What later checks need of a record (index, pages, screenshots), kept small: a
    large capture holds a great many records."""
    info.record_id = None
    # interned: the records of one second share it (a crawl writes many in each)
    info.date = sys.intern(timestamp14(info.date)) if info.date else None
    info.record_type = sys.intern(info.record_type) if info.record_type else None
    if info.record_type not in CONTENT_TYPES:
        info.payload_digest = info.content_type = None
    if info.record_type != "revisit":
        info.refers_uri = info.refers_date = None
    elif info.refers_date:
        info.refers_date = timestamp14(info.refers_date)
    return info


@dataclass
class WarcResult:
    filename: str
    records: list[RecordInfo] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    digests_checked: int = 0
    undigested: int = 0                 # records with content and no digest: nothing checked it
    readable: bool = True               # False: reading stopped before the end
    unchecked: str | None = None        # why (part of) the file could not be checked
    reader: str = "fast"                # "fast" or "warcio"
    # records whose HTTP headers do not end with CRLF CRLF (fast reader only): viewers
    # disagree on where their body starts
    loose_headers: Problems = field(default_factory=Problems)



class Bomb(Exception):
    """Decompression expands beyond reason."""


LOOSE_HEADERS = ("the HTTP headers do not end with CRLF CRLF: warcio, pywb, `archive extract` and "
                 "the payload digest take the body from their first line of white space, browsers "
                 "from the first empty line, ReplayWeb.page from the first CRLF CRLF")
