"""A captured HTTP payload decoded as the browser was sent it to show: the chunk framing
taken off, then each coding of Transfer-Encoding and Content-Encoding undone, strictly.

warcio's content_stream() is lenient in ways that hand out other bytes than the page
while calling them decoded: an encoding it does not know (br without the brotli module,
zstd, "gzip, gzip") passes through still encoded, gzip data cut short or damaged midway
stops quietly, only the first of several gzip members is kept, and a bad chunk header
turns the rest into raw bytes, framing included. Here any of these is a DecodeError
naming what, and `extract --raw` gives the payload as transferred instead.
"""

from __future__ import annotations

import zlib
from typing import Iterator

from archive.errors import ArchiveError
from archive.hashing import CHUNK

MAX_CHUNK_LINE = 64 * 1024       # a chunk-size or trailer line; longer is not HTTP


class DecodeError(ArchiveError):
    """The payload does not decode cleanly."""


class CutShort(DecodeError):
    """The payload ends inside its framing or encoded data (a record cut short)."""


class _Dechunk:
    """Chunked transfer coding (RFC 9112 7.1), chunk extensions and trailers dropped."""

    name = "chunked"

    def __init__(self) -> None:
        self.buffer, self.state, self.left = b"", "size", 0
        self.seen = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.seen = self.seen or bool(data)
        # one buffer and a position in it: slicing off each tiny chunk made a payload of
        # many of them quadratic (1 MB of 1-byte chunks took seconds)
        buffer, pos = self.buffer + data, 0
        try:
            while pos < len(buffer):
                if self.state == "data":
                    piece = buffer[pos:pos + self.left]
                    pos += len(piece)
                    self.left -= len(piece)
                    self.state = "data" if self.left else "crlf"
                    yield piece
                    continue
                if self.state == "done":
                    raise DecodeError(f"{len(buffer) - pos} bytes or more follow the last chunk")
                end = buffer.find(b"\n", pos, pos + MAX_CHUNK_LINE + 1)
                if end < 0:
                    if len(buffer) - pos > MAX_CHUNK_LINE:
                        raise DecodeError("a chunk size or trailer line is too long")
                    break
                line, pos = buffer[pos:end].removesuffix(b"\r"), end + 1
                if self.state == "size":
                    self._size(line)
                elif self.state == "crlf":
                    if line:
                        raise DecodeError("a chunk is longer than its size line says")
                    self.state = "size"
                elif not line:             # trailer: fields until an empty line
                    self.state = "done"
        finally:
            self.buffer = buffer[pos:]

    def _size(self, line: bytes) -> None:
        digits = line.split(b";", 1)[0].strip()
        if not digits or digits.strip(b"0123456789abcdefABCDEF") or len(digits) > 16:
            raise DecodeError(f"bad chunk size line {line[:40]!r}")
        self.left = int(digits, 16)
        self.state = "data" if self.left else "trailer"

    def finish(self) -> Iterator[bytes]:
        if self.seen and self.state != "done":      # no body at all (a 304, a HEAD): nothing to undo
            raise CutShort("it ends before its last chunk")
        return iter(())


class _Inflate:
    """gzip (one member) or deflate (zlib-wrapped or, as browsers also accept, raw), in
    bounded pieces (a bomb only costs time)."""

    def __init__(self, name: str) -> None:
        self.name, self.gzip = name, name in ("gzip", "x-gzip")
        self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)
        self.seen = self.started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.seen = self.seen or bool(data)
        while data:
            if self.inflater.eof:
                # a second gzip member is valid gzip, but readers differ on it (some show the
                # first member only, warcio among them): refused, as any data after the end
                what = "a second gzip member" if data.startswith(b"\x1f\x8b") else f"{len(data)} bytes or more"
                raise DecodeError(f"{what} after the end of its {self.name} data (readers differ on it)")
            try:
                out = self.inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                if not self.started and self.gzip and not data.startswith(b"\x1f\x8b"[:len(data)]):
                    raise DecodeError(f"it is not {self.name} data, though its Content-Encoding says so "
                                      "(some tools store bodies decoded and keep the header)") from None
                if self.gzip or self.started:
                    raise DecodeError(f"its {self.name} data is damaged ({exc})") from None
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)     # raw deflate
                self.started = True
                continue
            self.started = True
            data = self.inflater.unconsumed_tail or self.inflater.unused_data
            if out:
                yield out

    def finish(self) -> Iterator[bytes]:
        if self.seen and not self.inflater.eof:
            raise CutShort(f"its {self.name} data ends early")
        return iter(())


class _Length:
    """A body framed by Content-Length: that many bytes are what a browser reads."""

    name = None

    def __init__(self, length: int) -> None:
        self.length, self.seen = length, 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.seen += len(data)
        if self.seen > self.length:
            raise DecodeError(f"it holds more than the {self.length} bytes its Content-Length gives "
                              "(readers differ on the rest)")
        yield data

    def finish(self) -> Iterator[bytes]:
        if 0 < self.seen < self.length:          # none at all: a 304, an answer to HEAD
            raise CutShort(f"it ends {self.length - self.seen} bytes before its Content-Length of {self.length}")
        return iter(())


CODINGS = {"gzip": _Inflate, "x-gzip": _Inflate, "deflate": _Inflate}


def _length(http_headers) -> _Length | None:
    values = {v.strip() for k, v in (http_headers.headers if http_headers else [])
              if k.lower() == "content-length" for v in v.split(",")}
    if not values:
        return None
    if len(values) > 1 or not next(iter(values)).isdigit() or not next(iter(values)).isascii():
        raise DecodeError(f"its Content-Length is given as {', '.join(sorted(values))[:80]} "
                          "(readers differ on where the body ends)")
    return _Length(int(values.pop()))


def _codings(headers, name: str) -> list[str]:
    """Every coding a header names, over all its lines, in the order applied."""
    values = [v for k, v in (headers.headers if headers else []) if k.lower() == name]
    return [c.strip().lower() for v in values for c in v.split(",") if c.strip().lower() not in ("", "identity")]


class PayloadDecoder:
    """feed() the payload as transferred, then finish(): the decoded bytes, the body held
    to its framing (chunks, or Content-Length: more bytes than it gives are another
    body to a browser). Raises DecodeError (before any output for a coding it does not
    know or a Content-Length it cannot read)."""

    def __init__(self, http_headers, framed: bool = True) -> None:
        """`framed`: hold the body to its Content-Length (not chunked)."""
        transfer = _codings(http_headers, "transfer-encoding")
        content = _codings(http_headers, "content-encoding")
        if "chunked" in transfer[:-1]:
            raise DecodeError("Transfer-Encoding applies chunked before another coding")
        # chunked framing, when given, is what ends the body (RFC 9112 6.3), else Content-Length
        framing = _Dechunk() if transfer[-1:] == ["chunked"] else _length(http_headers) if framed else None
        stages = [framing] if framing else []
        for coding in reversed([c for c in transfer if c != "chunked"] + content):
            if coding not in CODINGS:
                raise DecodeError(f"it is encoded with {coding}, which this tool does not decode")
            stages.append(CODINGS[coding](coding))
        self.stages = stages
        self.undone = [stage.name for stage in stages if stage.name]

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self.stages):
            yield data
            return
        for piece in self.stages[index].feed(data):
            yield from self._through(index + 1, piece)

    def finish(self) -> Iterator[bytes]:
        """The end of the payload; CutShort when a stage was left midway (the later
        stages still finish, so a cut-short record gives all that decodes)."""
        cut = None
        for index, stage in enumerate(self.stages):
            try:
                for piece in stage.finish():
                    yield from self._through(index + 1, piece)
            except CutShort as exc:
                cut = cut or exc
        if cut:
            raise cut
