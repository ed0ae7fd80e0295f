"""What each kind of WACZ member is checked for, fed its bytes as they are read."""

from __future__ import annotations

import hashlib
import sys
import zlib
from dataclasses import dataclass

from archive.values import parse_json
from archive.wacz.bounds import JSON_LIMIT, TEXT_FLOOR, TEXT_PER_BYTE, Meter
from archive.reader.scan import Sink
from archive.reader.problems import Problem, Problems
from archive.reader.warcresult import WarcResult
from archive.reader.warcs import WarcChecker
from archive.warc.cdxj import parse_cdxj_line
from archive.warc.zipnum import IdxEntry, parse_idx_line, parse_meta

LINE_LIMIT = 16 << 20          # one index or pages line
MAX_BLOCKS = 100_000           # blocks of an index kept for its idx check (3000 lines each: 300 million records)


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
                if not self._open:
                    self._open = True
                    self.member_start()
                out = self._d.decompress(data, 4 << 20)
                tail = self._d.unconsumed_tail
                rest = self._d.unused_data if self._d.eof else b""
                self.member_bytes(memoryview(data)[:len(data) - len(tail) - len(rest)], out)
                self._lines(out)
                data = tail
                if self._d.eof:   # concatenated gzip members (the blocks of a ZipNum index)
                    data = rest + data
                    self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    self._open = False
                    self.member_end(not self._buffer)
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

    @property
    def stopped(self) -> bool:
        """Reading stopped early (not gzip, a bomb, a line too long): the rest is unknown."""
        return self._stopped

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

    def member_start(self) -> None:
        """A gzip member begins (gzip members only)."""

    def member_bytes(self, data: memoryview, out: bytes) -> None:
        """Compressed bytes of the current gzip member, and what they inflated to."""

    def member_end(self, at_line_end: bool) -> None:
        """The current gzip member ended; `at_line_end`: its last line ended in it."""


@dataclass(slots=True)
class GzipMember:
    """One gzip member of an index: a block of a ZipNum index (archive.warc.zipnum)."""
    offset: int
    length: int = 0
    digest: str = ""            # sha256:<hex> of its gzip bytes (py-wacz, js-wacz)
    plain_digest: str = ""      # sha256:<hex> of its lines (what wabac.js checks; ours)
    first: tuple[str, str] | None = None      # (surt, timestamp) of its first line
    at_line_end: bool = True
    lines: int = 0


@dataclass(slots=True)
class IndexEntry:
    number: int
    timestamp: str
    url: str | None
    filename: str
    offset: int
    length: str | None
    digest: str | None


MIN_RECORD = 64        # bytes of WARC data a record takes at the least (its header alone is more)
INDEX_FLOOR = 10_000   # index lines always kept, however small the WARC files


class IndexSink(LineSink):
    """CDXJ lines: each must point at a record (checked once the WARCs are read)."""

    def __init__(self, name: str, max_entries: int | None = None) -> None:
        super().__init__(name, name.endswith(".gz"))
        self.entries: list[IndexEntry] = []
        # an index names records, each at least MIN_RECORD bytes of WARC: lines past what
        # the WARC files can hold are not kept (a few MB of gzip can hold millions of
        # lines, each an object here: memory a hostile file would fill)
        self.max_entries = max_entries
        self.overflowed = False
        self.members: list[GzipMember] = []     # its gzip members, in order (MAX_BLOCKS at most)
        self.too_many_members = False
        self._member: GzipMember | None = None  # the one being read, while kept
        self._hashes = None
        self._offset = 0

    def member_start(self) -> None:
        # past MAX_BLOCKS the lines are still checked, the blocks no longer kept (memory)
        self.too_many_members |= len(self.members) >= MAX_BLOCKS
        self._member = None if self.too_many_members else GzipMember(self._offset)
        if self._member:
            self.members.append(self._member)
            self._hashes = hashlib.sha256(), hashlib.sha256()

    def member_bytes(self, data: memoryview, out: bytes) -> None:
        if self._member:
            self._hashes[0].update(data)
            self._hashes[1].update(out)
            self._member.length += len(data)

    def member_end(self, at_line_end: bool) -> None:
        if self._member:
            member = self._member
            member.digest, member.plain_digest = ("sha256:" + h.hexdigest() for h in self._hashes)
            member.at_line_end = at_line_end
            self._offset += member.length
        self._member = None

    def line(self, number: int, line: bytes) -> None:
        if not line.strip() or line.startswith(b"!"):
            return
        member = self._member
        if member:
            member.lines += 1
        try:
            key, stamp, fields = parse_cdxj_line(line.decode("utf-8"))
            if member and member.first is None:
                member.first = (key, stamp)
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
        if self.max_entries is not None and len(self.entries) >= self.max_entries:
            if not self.overflowed:
                self.overflowed = True
                self.problems.append(Problem(
                    f"index line {number}: more lines than the WARC files can hold records "
                    f"({self.max_entries}, at {MIN_RECORD} bytes a record at the least); the lines "
                    "past that are not checked", self.name))
            return
        self.entries.append(entry)


class IdxSink(LineSink):
    """indexes/*.idx: the `!meta` line and one line per block of a ZipNum index; checked
    against the blocks of the index it names once both are read."""

    def __init__(self, name: str) -> None:
        super().__init__(name, False)
        self.meta: dict | None = None
        self.blocks: list[tuple[int, IdxEntry]] = []     # (line number, entry)

    def line(self, number: int, line: bytes) -> None:
        if not line.strip():
            return
        try:
            text = line.decode("utf-8")
            if text.startswith("!meta"):
                if number != 1:
                    raise ValueError("a !meta line after the first")
                self.meta = parse_meta(text)
                return
            self.blocks.append((number, parse_idx_line(text)))
        except (ValueError, UnicodeDecodeError, OverflowError):
            self.problems.append(Problem(f"line {number} cannot be read", self.name))
        if len(self.blocks) > MAX_BLOCKS:
            self._stop(f"{self.name} names more than {MAX_BLOCKS} blocks")


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
