"""Where an HTTP message's payload begins, found the way warcio's header parser finds it.

Shared by capture (digests computed while bytes arrive) and verify (digests recomputed
from the WARC), so both sides split a record's block at the same byte.
"""

from __future__ import annotations

HTTP_RECORD_TYPES = ("response", "request", "revisit")


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

    The block ends after the first line that is empty once white space is stripped
    (warcio's rule; an empty status line ends it at once).
    """

    __slots__ = ("done", "_blank")

    def __init__(self) -> None:
        self.done = False
        self._blank = True

    def feed(self, data: bytes) -> int | None:
        """Offset in `data` where the payload begins, or None while still in headers."""
        if self.done:
            return 0
        pos = 0
        size = len(data)
        while pos <= size:
            newline = data.find(b"\n", pos)
            end = size if newline < 0 else newline
            if self._blank and data[pos:end].strip():
                self._blank = False
            if newline < 0:
                return None
            after = newline + 1
            if self._blank:
                self.done = True
                return after
            self._blank = True
            pos = after
        return None
