"""What each kind of WACZ member is checked for, fed its bytes as they are read."""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass

from archive.values import parse_json
from archive.verify.bounds import JSON_LIMIT, TEXT_FLOOR, TEXT_PER_BYTE, Meter
from archive.verify.scan import Sink
from archive.verify.warcs import Problem, Problems, WarcChecker, WarcResult
from archive.warc.cdxj import parse_cdxj_line

LINE_LIMIT = 16 << 20          # one index or pages line


class WarcSink(Sink):
    def __init__(self, name: str) -> None:
        self.checker = WarcChecker(name, threaded=True)
        self.result: WarcResult | None = None

    def metered(self, meter: Meter) -> None:
        self.checker.meter = meter

    def feed(self, data: bytes) -> None:
        self.checker.feed(data)

    def finish(self) -> None:
        self.result = self.checker.finish()


class JsonSink(Sink):
    """Keeps a small member whole; parse() gives (value, raw bytes, error)."""

    def __init__(self, name: str, limit: int = JSON_LIMIT) -> None:
        self.name, self.limit = name, limit
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size <= self.limit:
            self.parts.append(data)

    def parse(self) -> tuple[dict | None, bytes | None, str | None]:
        if self.size > self.limit:
            return None, None, f"{self.name} is {self.size} bytes; refusing to read more than {self.limit}"
        raw = b"".join(self.parts)
        try:
            value = parse_json(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return None, raw, f"{self.name} is not valid JSON ({exc})"
        if not isinstance(value, dict):
            return None, raw, f"{self.name} is not a JSON object"
        return value, raw, None


class LineSink(Sink):
    """Splits a member (gzip or plain) into lines, bounded; subclasses take each line."""

    def __init__(self, name: str, gz: bool) -> None:
        self.name = name
        self.problems = Problems()
        self.count = 0
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else None
        self._buffer = b""
        self._in = self._out = 0
        self._meter: Meter | None = None
        self._stopped = False
        self._open = False          # the current gzip member has begun but not ended

    def metered(self, meter: Meter) -> None:
        self._meter = meter

    def feed(self, data: bytes) -> None:
        if self._stopped:
            return
        self._in += len(data)
        if self._d is None:
            return self._lines(data)
        try:
            while data and not self._stopped:
                self._open = True
                out = self._d.decompress(data, 4 << 20)
                self._lines(out)
                data = self._d.unconsumed_tail
                if self._d.eof:   # concatenated gzip members
                    data = self._d.unused_data + data
                    self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    self._open = False
        except zlib.error as exc:
            self._stop(f"{self.name} is not valid gzip data ({exc})")

    def _lines(self, data: bytes) -> None:
        self._out += len(data)
        spent = self._meter.read if self._meter is not None else self._in
        if self._out > TEXT_FLOOR and self._out > TEXT_PER_BYTE * spent:
            return self._stop(f"{self.name} expands more than {TEXT_PER_BYTE} times (a bomb?)")
        data = self._buffer + data
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > LINE_LIMIT:
            return self._stop(f"{self.name} has a line longer than {LINE_LIMIT} bytes")
        for line in lines:
            self.count += 1
            self.line(self.count, line.rstrip(b"\r"))

    def _stop(self, message: str) -> None:
        self.problems.append(Problem(message, self.name))
        self._stopped = True

    def finish(self) -> None:
        if self._open and not self._stopped:
            self._stop(f"{self.name} is cut short (its gzip data ends early)")
        if self._buffer and not self._stopped:
            self.count += 1
            self.line(self.count, self._buffer.rstrip(b"\r"))
            self._buffer = b""

    def line(self, number: int, line: bytes) -> None:
        raise NotImplementedError


@dataclass(slots=True)
class IndexEntry:
    number: int
    timestamp: str
    url: str | None
    filename: str
    offset: int
    length: str | None
    digest: str | None


class IndexSink(LineSink):
    """CDXJ lines: each must point at a record (checked once the WARCs are read)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, name.endswith(".gz"))
        self.entries: list[IndexEntry] = []

    def line(self, number: int, line: bytes) -> None:
        if not line.strip() or line.startswith(b"!"):
            return
        try:
            _, stamp, fields = parse_cdxj_line(line.decode("utf-8"))
            url, digest = fields.get("url"), fields.get("digest")
            if not isinstance(url, (str, type(None))) or not isinstance(digest, (str, type(None))):
                raise TypeError("url and digest are text")
            entry = IndexEntry(
                number, stamp, url, sys.intern(str(fields["filename"])),
                int(fields["offset"]), str(fields["length"]) if "length" in fields else None, digest,
            )
        except (ValueError, KeyError, TypeError, OverflowError, UnicodeDecodeError):   # Infinity
            self.problems.append(Problem(f"index line {number} cannot be read", self.name))
            return
        self.entries.append(entry)


class PagesSink(LineSink):
    """pages.jsonl: a header line, then one JSON object per page with url and ts."""

    def __init__(self, name: str) -> None:
        super().__init__(name, False)
        self.pages: list[dict] = []

    def line(self, number: int, line: bytes) -> None:
        if not line.strip():
            return
        try:
            entry = parse_json(line)
        except (ValueError, UnicodeDecodeError):
            self.problems.append(Problem(f"line {number} is not JSON", self.name))
            return
        if number == 1 and isinstance(entry, dict) and "format" in entry:
            return
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or "ts" not in entry:
            self.problems.append(Problem(f"line {number} lacks url or ts", self.name))
            return
        self.pages.append(entry)
