"""Where an HTTP message's payload begins, found the way warcio's header parser finds it.

Shared by capture (digests computed while bytes arrive) and verify (digests recomputed
from the WARC), so both sides split a record's block at the same byte.
"""

from __future__ import annotations

import codecs
import re

HTTP_RECORD_TYPES = ("response", "request", "revisit")

# warcio reads each header line as text (UTF-8, else ISO-8859-1) and ends the block at the
# first line that str.rstrip() leaves empty: Unicode white space counts, not only ASCII
# (two patterns, not one with "(?:^|\n)": a search for a pattern that starts with a
# literal newline skips ahead in C, five times as fast)
_ASCII_BLANK_FIRST = re.compile(rb"[ \t\r\x0b\x0c]*\n")
_ASCII_BLANK = re.compile(rb"\n[ \t\r\x0b\x0c]*\n")
# bytes that may be white space to that rule although bytes.strip() keeps them
_UNUSUAL = re.compile(rb"[\x1c-\x1f\x80-\xff]")
# a line that may read as blank: only bytes that are, or may be part of, white space
# (ASCII white space, U+001C-U+001F, bytes above 0x7F), up to its newline or the end
_MAYBE_BLANK = re.compile(rb"(?<![^\n])[ \t\r\x0b\x0c\x1c-\x1f\x80-\xff]*(?:\n|\Z)")
# the white space of ISO-8859-1 (what str.isspace() says of its characters), "\n" aside
_LATIN1_SPACE = bytes(b for b in range(256) if chr(b).isspace() and b != 0x0A)


def has_http_headers(record_type: str, uri: str | None, length: int) -> bool:
    """True when warcio would parse HTTP headers off this record's block."""
    return (
        length > 0
        and record_type in HTTP_RECORD_TYPES
        and bool(uri)
        and uri.startswith(("http:", "https:"))
    )


class PayloadSplitter:
    """Incremental scanner for the end of an HTTP header block.

    The block ends after the first line that warcio's header parser reads as empty: the
    line decoded as UTF-8 (else ISO-8859-1) holds nothing but white space (an empty
    status line ends it at once). `loose` tells that the block did not end with CRLF
    CRLF: browsers end headers at the first empty line (not at a line of white space),
    warcio.js (ReplayWeb.page) at the first CRLF CRLF, so they read the body from a later
    byte than warcio does.
    """

    __slots__ = ("done", "loose", "_fed", "_latin1", "_utf8", "_decoder", "_tail", "_first")

    def __init__(self) -> None:
        self.done = False
        self.loose = False
        self._fed = False
        self._tail = b""          # the last bytes fed (up to 3)
        self._first = True        # in the status line
        self._new_line()

    def _new_line(self) -> None:
        self._latin1 = True       # every byte so far is white space read as ISO-8859-1
        self._utf8 = True         # the bytes so far are UTF-8 of white space only
        self._decoder = None

    def _end(self, before: bytes) -> None:
        """The block ends at a newline after `before` (what precedes it, 3 bytes or all)."""
        self.done = True
        self.loose = not (before.endswith(b"\r\n\r") or (self._first and before in (b"", b"\r")))

    def _take(self, piece: bytes) -> None:
        """Part of the current line (no newline in it)."""
        if self._latin1 and piece.translate(None, _LATIN1_SPACE):
            self._latin1 = False
        if self._utf8:
            if self._decoder is None:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
            try:
                if self._decoder.decode(piece).strip():
                    self._utf8 = False
            except UnicodeDecodeError:
                self._utf8 = False

    def _line_is_blank(self) -> bool:
        # all bytes white space in ISO-8859-1: blank whichever way warcio decodes them
        # (as UTF-8 they can only be ASCII white space)
        if self._latin1:
            return True
        if not self._utf8:
            return False
        try:
            return not self._decoder.decode(b"", final=True).strip()
        except UnicodeDecodeError:          # the line ends inside a UTF-8 sequence
            return False

    def feed(self, data) -> int | None:
        """Offset in `data` (bytes or a memoryview) where the payload begins, or None
        while still in headers."""
        if self.done:
            return 0
        if not self._fed:
            self._fed = True
            # the usual case, the whole header block in the first piece and nothing but
            # ASCII before its end: one search in C
            blank = _ASCII_BLANK_FIRST.match(data) or _ASCII_BLANK.search(data)
            if blank and not _UNUSUAL.search(data, 0, blank.start()):
                end = blank.end() - 1           # the newline that ends the blank line
                self._first = end <= 1          # the status line itself is blank
                self._end(bytes(data[max(0, end - 3):end]))
                return blank.end()
        if not isinstance(data, bytes):
            data = bytes(data)
        pos, size = 0, len(data)
        while True:
            newline = data.find(b"\n", pos)
            end = size if newline < 0 else newline
            if end > pos:
                self._take(data[pos:end])
            if newline < 0:
                self._tail = (self._tail + data[-3:])[-3:]
                return None
            if self._line_is_blank():
                self._end((self._tail + data[max(0, newline - 3):newline])[-3:])
                return newline + 1
            self._new_line()
            self._first = False
            # lines holding any other byte are not blank: skipped in C (a block of a great
            # many header lines would otherwise cost Python work for each)
            maybe = _MAYBE_BLANK.search(data, newline + 1)
            if maybe is None:       # none left whole; the last, cut off, is not blank either
                self._latin1 = self._utf8 = False
                self._tail = (self._tail + data[-3:])[-3:]
                return None
            pos = maybe.start()
