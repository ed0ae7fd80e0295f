"""Checking every record digest of a WARC file, with warcio's rules.

Two readers give the same verdicts:

- `WarcChecker`, fed bytes as they are read (plain or one gzip member per record, the
  shape every well-made WARC has): it decompresses with bounded output, splits records
  and hashes block and payload with no per-byte Python work, so a WACZ is checked at the
  speed of one decompress-and-hash pass. On anything unusual (continuation header lines,
  several records in one gzip member, bytes between records) it stops and asks for:
- `check_warc_slow`, warcio's own ArchiveIterator with digest checking, which defines
  what `warcio check` says of odd files; made quiet (warcio writes warnings to stderr)
  and bounded (long header lines, header floods, decompression bombs).

warcio's rules: the block digest covers the whole block; the payload digest covers what
follows the HTTP headers of request, response and revisit records with an http(s)
target, and the whole block of any other record; revisit digests describe another
record and are not checked; a segmented record's payload digest is not checked. A
digest value is compared the way warcio compares it (`_compare_digest_rfc_3548`).
We are stricter than warcio in one way: a record cut short is a failure, not a silence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import sys
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader

from archive.hashing import parse_digest
from archive.wacz.bounds import Meter, WORK_FLOOR, WORK_PER_BYTE, bomb_message
from archive.warc.cdxj import timestamp14
from archive.warc.writer import WARC_VERSION_LINES
from archive.httpmessage import HTTP_RECORD_TYPES, PayloadSplitter, has_http_headers

HEADER_LIMIT = 8 << 20          # bytes of WARC headers in one record we are willing to hold
LINE_LIMIT = 1 << 20            # one header line (slow path)
OUTPUT_CAP = 1 << 20            # decompressed bytes produced by one zlib call
FIRST_FEED, MAX_FEED = 16 << 10, 1 << 20
# WARC header fields that decide how a record is read and found. The standard lets none of
# them repeat; readers that meet one twice disagree on which counts (warcio takes the
# first, warcio.js, and with it ReplayWeb.page, the last), so replay could read another
# block, payload or address than the one checked.
SINGLE_FIELDS = frozenset((
    "content-length", "content-type", "warc-type", "warc-target-uri", "warc-date",
    "warc-record-id", "warc-block-digest", "warc-payload-digest", "warc-segment-number",
    "warc-truncated", "warc-refers-to", "warc-refers-to-target-uri", "warc-refers-to-date",
))

# warcio logs through `logging` (spaces in target URIs); keep our output clean.
logging.getLogger("warcio").addHandler(logging.NullHandler())
logging.getLogger("warcio").propagate = False


@dataclass
class Problem:
    message: str
    file: str | None = None
    offset: int | None = None
    record_id: str | None = None
    uri: str | None = None

    def where(self) -> str:
        parts = [self.file or ""]
        if self.offset is not None:
            parts.append(f"byte offset {self.offset}")
        if self.record_id:
            parts.append(f"record {self.record_id}")
        if self.uri:
            parts.append(self.uri)
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


PROBLEM_LIMIT = 1000            # problems kept for one file or member; the rest are counted


class Problems(list):
    """The problems of a file or member. A hostile one can have one in every line or
    record, millions of them: PROBLEM_LIMIT are kept, the rest counted in `more`."""

    more = 0

    def append(self, problem: Problem) -> None:
        if len(self) < PROBLEM_LIMIT:
            super().append(problem)
        else:
            self.more += 1

    def extend(self, problems) -> None:
        for problem in problems:
            self.append(problem)

    @property
    def total(self) -> int:
        return len(self) + self.more

    def all(self) -> list[Problem]:
        """Those kept, then one saying how many more there were."""
        if not self.more:
            return list(self)
        return list(self) + [Problem(f"... and {self.more} more problems, not listed", self[-1].file)]

    @staticmethod
    def joined(groups) -> "Problems":
        out = Problems()
        for group in groups:
            out.extend(group)
            out.more += getattr(group, "more", 0)
        return out


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


def _kept(info: RecordInfo) -> RecordInfo:
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


class Unusual(Exception):
    """The fast reader met a shape it does not handle; warcio's reader decides."""


class Bomb(Exception):
    """Decompression expands beyond reason."""


LOOSE_HEADERS = ("the HTTP headers do not end with CRLF CRLF: warcio, pywb, `archive extract` and "
                 "the payload digest take the body from their first line of white space, browsers "
                 "from the first empty line, ReplayWeb.page from the first CRLF CRLF")


# -- digests, as warcio compares them -------------------------------------------------

# base32 digits to the digits int(..., 32) reads; any other byte to "!", which it refuses
_B32_TO_INT = bytes(
    b"0123456789abcdefghijklmnopqrstuv"[b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".index(c)]
    if c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" else ord("!") for c in range(256))


def digest_matches(computed: bytes, header_value: str) -> bool:
    """warcio's comparison: our digest in base32 against the header value, which may be
    base32 (compared as text), base16 (longer) or base64 (shorter)."""
    value = header_value.partition(":")[2]
    bits = len(computed) * 8
    chars = -(-bits // 5)
    b32_length = -(-chars // 8) * 8
    if len(value) == b32_length:
        # equal as text to our base32 <=> the same number (the encoding is one to one);
        # int() does in C what base64.b32encode does in Python
        digits, padding = value[:chars], value[chars:]
        if padding != "=" * (b32_length - chars) or not digits.isascii():
            return False
        try:
            number = int(digits.encode("ascii").translate(_B32_TO_INT), 32)
        except ValueError:          # a character outside the base32 alphabet
            return False
        return number == int.from_bytes(computed, "big") << (chars * 5 - bits)
    ours = base64.b32encode(computed).decode("ascii")
    try:
        if len(value) > len(ours):
            raw = base64.b16decode(value, casefold=True)
        elif "-" in value or "_" in value:
            raw = base64.b64decode(value, altchars=b"-_")
        else:
            raw = base64.b64decode(value)
    except (binascii.Error, ValueError):
        return False
    return base64.b32encode(raw).decode("ascii") == ours


_CONSTRUCTORS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}


class _Digest:
    __slots__ = ("header", "label", "hasher", "error")

    def __init__(self, header: str | None, label: str):
        self.header, self.label, self.hasher, self.error = header, label, None, None
        if header and header.startswith("sha256:"):
            self.hasher = hashlib.sha256()
        elif header:
            algorithm, sep, _ = header.partition(":")
            try:
                if not sep:
                    raise ValueError
                make = _CONSTRUCTORS.get(algorithm)
                self.hasher = make() if make else hashlib.new(algorithm)
            except (ValueError, TypeError):
                self.error = f"unknown hash algorithm in {label} digest {header!r}"

    def problem(self) -> str | None:
        if self.error:
            return self.error
        if self.hasher is not None and not digest_matches(self.hasher.digest(), self.header):
            return f"{self.label} digest does not match the content ({self.header})"
        return None


class RecordDigests:
    """Block and payload digests of one record, fed its block in pieces."""

    __slots__ = ("block", "payload", "splitter", "length", "seen", "revisit")

    def __init__(self, record_type: str | None, uri: str | None, length: int,
                 block_digest: str | None, payload_digest: str | None, segmented: bool):
        revisit = self.revisit = record_type == "revisit"
        self.block = _Digest(None if revisit else block_digest, "block")
        self.payload = _Digest(None if revisit or segmented else payload_digest, "payload")
        self.splitter = PayloadSplitter() if has_http_headers(record_type or "", uri, length) else None
        self.length = length
        self.seen = 0
        block, payload = self.block.hasher, self.payload.hasher
        if self.splitter is None and block is not None and payload is not None \
                and block.name == payload.name:
            # No HTTP headers (a resource: a media file, a screenshot): the payload is the
            # block, so one hash serves both digests (a gigabyte video is hashed once)
            self.payload.hasher = block

    def update(self, data) -> None:
        self.seen += len(data)
        if self.block.hasher is not None:
            self.block.hasher.update(data)
        if self.payload.hasher is not None and self.payload.hasher is not self.block.hasher:
            if self.splitter is None or self.splitter.done:
                self.payload.hasher.update(data)
            else:
                start = self.splitter.feed(data)
                if start is not None:
                    self.payload.hasher.update(data[start:])

    def results(self) -> tuple[list[str], int]:
        """(problems, digests compared). warcio never compares the block digest of an
        empty block, and we follow it."""
        messages, checked = [], 0
        digests = (self.block, self.payload) if self.length else (self.payload,)
        for digest in digests:
            if digest.header:
                checked += 1
                message = digest.problem()
                if message:
                    messages.append(message)
        return messages, checked


# field names as written -> as compared; the names of one file are nearly always the same
# few, and normalising each anew was a good part of the per-record work
_FIELD_NAMES: dict[str, str] = {}
FIELD_NAMES_KEPT = 4096


def _header_fields(block: bytes) -> dict[str, str]:
    """WARC header fields (first occurrence of each name, lowercased) of a header block
    ending in CRLF CRLF; raises Unusual for anything warcio would read differently."""
    head = block[:-4]
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise Unusual("bare CR or LF in the header")
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        # warcio decodes each line on its own: UTF-8, else ISO-8859-1
        lines = []
        for raw in head.split(b"\r\n"):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(raw.decode("iso-8859-1"))
    if lines[0] not in WARC_VERSION_LINES:
        raise Unusual("unexpected WARC version line")
    fields: dict[str, str] = {}
    names = _FIELD_NAMES
    for line in lines[1:]:
        # the value is the rest of the line, stripped as warcio strips it (the line's
        # end, then the start of the value)
        name, sep, value = line.partition(":")
        if not sep:
            raise Unusual("header continuation, blank line or line without a colon")
        key = names.get(name)
        if key is None:
            if not name.strip() or name[0] in " \t":
                raise Unusual("header continuation, blank line or line without a colon")
            key = name.rstrip(" \t").lower()
            if len(names) < FIELD_NAMES_KEPT:
                names[name] = key
        name, value = key, value.strip()
        if name not in fields:
            fields[name] = value
        elif name in SINGLE_FIELDS and fields[name] != value:
            raise Unusual("a header field given twice with different values")
    return fields


def conflicting_fields(headers: list[tuple[str, str]]) -> list[str]:
    """Why a record's WARC header cannot be read one way only: SINGLE_FIELDS given twice
    with different values."""
    first: dict[str, str] = {}
    found = []
    for name, value in headers:
        key = name.lower()
        if key not in SINGLE_FIELDS:
            continue
        if key not in first:
            first[key] = value
        # warcio rewrites the last WARC-Target-URI it holds (<...> removed, spaces escaped)
        elif first[key] != value and not (key == "warc-target-uri" and target_uri(first[key]) == value):
            found.append(f"{name} is given twice, as {first[key]!r} and {value!r}: readers disagree "
                         "on which counts (warcio takes the first, warcio.js and ReplayWeb.page "
                         "the last)")
    return found


def _refers_to(fields: dict[str, str]) -> tuple[str | None, str | None]:
    """A revisit's WARC-Refers-To-Target-URI (read as warcio reads a target URI) and
    WARC-Refers-To-Date."""
    return (target_uri(fields.get("warc-refers-to-target-uri")),
            fields.get("warc-refers-to-date"))


def target_uri(uri: str | None) -> str | None:
    """A WARC-Target-URI (or WARC-Refers-To-Target-URI) value as warcio reads it (wget's
    <...> removed, spaces escaped)."""
    if uri is not None and uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    if uri is not None and " " in uri:
        uri = uri.replace(" ", "%20")
    return uri


def same_digest(a: str, b: str) -> bool:
    """Two digest headers name the same value (base32, base16 or base64 spellings)."""
    pa, pb = parse_digest(a), parse_digest(b)
    if pa and pb:
        return pa == pb
    return a.split(":")[-1].upper() == b.split(":")[-1].upper()


def revisit_problems(results: list[WarcResult]) -> Problems:
    """Revisits whose original, named by URI and date, is a record of this capture with
    another payload digest: replay (ReplayWeb.page finds the original by URI and date
    alone) would show that record's content for a payload the revisit says is other."""
    originals: dict[tuple, list[str]] = {}
    for w in results:
        for r in w.records:
            if r.record_type in ("response", "resource") and r.payload_digest:
                originals.setdefault((r.uri, r.date), []).append(r.payload_digest)
    problems = Problems()
    for w in results:
        for r in w.records:
            if r.record_type != "revisit" or not r.payload_digest:
                continue
            # several records of one URL in one second: any of them may be the original
            held = originals.get((r.refers_uri or r.uri, r.refers_date), [])
            if held and not any(same_digest(h, r.payload_digest) for h in held):
                problems.append(Problem(
                    f"revisit says its payload is {r.payload_digest}, but the record it refers to "
                    f"({r.refers_uri or r.uri} at {r.refers_date}) holds {held[0]}: replay would show "
                    "that content", w.filename, r.offset, uri=r.uri))
    return problems


# -- the fast reader --------------------------------------------------------------------

BATCH_BYTES, BATCH_CALLS = 1 << 20, 512     # digest work handed over at a time


def _run_batch(batch: list) -> None:
    for fn, arg, arg2 in batch:
        if arg2 is None:
            fn(arg)
        else:
            fn(arg, arg2)


class WarcChecker:
    """Checks a WARC fed in pieces, in order. After finish(), `result.reader` says which
    reader decided; `needs_fallback` tells the caller to run check_warc_slow instead."""

    def __init__(self, filename: str, threaded: bool = False, start: int = 0, inflate=zlib) -> None:
        """`threaded`: block and payload hashing run on a thread of their own (hashlib
        releases the GIL), while this one decompresses and splits records. `start`: where
        in the WARC file the first byte fed lies (a segment checked on its own, from a
        gzip member start: archive.verify.segments). `inflate`: zlib, or a module with
        its decompressobj and error (archive.verify.segments)."""
        self.result = WarcResult(filename)
        self._inflate = inflate
        self._worker = None
        self._batch: list = []            # digest work handed to the worker in batches
        self._batch_bytes = 0
        if threaded:
            from archive.reader.scan import Worker   # scan imports nothing from here
            self._worker = Worker(f"digests {filename}", depth=4)
        self.needs_fallback: str | None = None
        self._stopped = False
        self._gzip: bool | None = None
        self._first = b""
        self._start = start
        self._in = start             # position in the file of the next byte fed
        self._out = 0                # bytes decompressed since `start`
        # the least number of bytes decompressed before `start` for which the reader of
        # the whole file would have stopped here as at a bomb (see _expansion)
        self.headroom = float("inf")
        # bytes of the file read, when those fed were inflated from fewer (a deflated zip
        # entry): the bound on work counts the file's bytes (archive.wacz.bounds)
        self.meter: Meter | None = None
        self._d = None
        self._feed = FIRST_FEED
        if start:
            self._gzip = True        # a segment starts where a gzip member does
        self._start_record(0)

    # record state: "head" -> "block" -> "tail" -> ("end" in gzip members)
    def _start_record(self, offset: int) -> None:
        self._state = "head"
        self._head = bytearray()
        self._scanned = 0
        self._record_offset = offset
        self._tail = b""
        self._info: RecordInfo | None = None
        self._digests: RecordDigests | None = None
        self._remaining = 0

    def feed(self, data: bytes) -> None:
        if self._stopped or not data:
            return
        try:
            if self._gzip is None:
                self._first += data
                if len(self._first) < 2:
                    return
                self._gzip = self._first[:2] == b"\x1f\x8b"
                data, self._first = self._first, b""
            if self._gzip:
                self._feed_gzip(data)
            else:
                self._in += len(data)
                self._plain(data)
        except Unusual as exc:
            self.needs_fallback = str(exc)
            self._stopped = True
        except Bomb as exc:
            self.result.unchecked = str(exc)
            self.result.readable = False
            self._stopped = True

    def _feed_gzip(self, data: bytes) -> None:
        view, pos, size = memoryview(data), 0, len(data)
        while pos < size and not self._stopped:
            if self._d is None:
                self._d = self._inflate.decompressobj(zlib.MAX_WBITS | 16)
                self._member_start = self._in
                self._feed = FIRST_FEED
            d = self._d
            piece = view[pos: pos + self._feed]
            try:
                out = d.decompress(piece, OUTPUT_CAP)
                if not (d.eof and self._worker is None and self._state == "head"
                        and not self._head and self._whole_member(out)):
                    self._plain(out)
                while d.unconsumed_tail and not d.eof and not self._stopped:
                    self._plain(d.decompress(d.unconsumed_tail, OUTPUT_CAP))
            except self._inflate.error as exc:
                self._fail_here(f"gzip data is damaged ({exc})", self._member_start)
                return
            if d.eof:
                used = len(piece) - len(d.unused_data)
                pos += used
                self._in += used
                self._end_member()
                self._d = None
            else:
                pos += len(piece)
                self._in += len(piece)
                self._feed = min(self._feed * 2, MAX_FEED)
            self._expansion()

    def _expansion(self) -> None:
        """Stop at a decompression bomb: more than WORK_FLOOR bytes out, and more than
        WORK_PER_BYTE per byte of the file read, which one layer of deflate cannot make
        (archive.wacz.bounds): a genuine record, however compressible, always passes.
        A segment counts from its own start, so every worker stops a bomb; `headroom`
        tells whether the whole file's reader, counting from byte 0 with `before` bytes
        already decompressed, would have stopped at this same point: when
        before > FLOOR - out and before > PER_BYTE * in - out."""
        out, read = self._out, self._in
        spent = self.meter.read if self.meter is not None else read - self._start
        if out > WORK_FLOOR and out > WORK_PER_BYTE * spent:
            raise Bomb(bomb_message(read))
        need = max(WORK_FLOOR - out, WORK_PER_BYTE * read - out)
        if need < self.headroom:
            self.headroom = need

    def _plain(self, buf: bytes) -> None:
        """Decompressed (or plain) bytes of the record stream, walked by offset (no copies)."""
        base, pos, size = self._out, 0, len(buf)
        self._out += size
        view = memoryview(buf)
        while pos < size and not self._stopped:
            state = self._state
            if state == "block":
                take = min(self._remaining, size - pos)
                if self._worker is not None:
                    self._defer(self._digests.update, view[pos: pos + take])
                    self._batch_bytes += take
                else:
                    self._digests.update(view[pos: pos + take])
                self._remaining -= take
                pos += take
                if self._remaining == 0:
                    self._state = "tail"
            elif state == "head":
                pos = self._take_head(buf, pos)
            elif state == "tail":
                need = 4 - len(self._tail)
                self._tail += buf[pos: pos + need]
                pos = min(size, pos + need)
                if not b"\r\n\r\n".startswith(self._tail):
                    raise Unusual("record not followed by CRLF CRLF")
                if len(self._tail) == 4:
                    self._finish_record(base + pos)
            else:  # "end": a gzip member holds one record and nothing after it
                raise Unusual("more than one record in a gzip member")

    def _take_head(self, buf: bytes, pos: int) -> int:
        """Find the end of the WARC header; returns where the block begins in buf."""
        if self._head:
            kept = len(self._head)
            self._head += buf[pos:]
            end = self._head.find(b"\r\n\r\n", max(0, kept - 3))
            if end < 0:
                return self._head_incomplete(len(buf))
            block = bytes(self._head[: end + 4])
            pos += end + 4 - kept
            self._head = bytearray()
        else:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0 or end - pos > HEADER_LIMIT:
                self._head = bytearray(buf[pos:])
                return self._head_incomplete(len(buf))
            block = buf[pos: end + 4]
            pos = end + 4
        if not block.startswith(b"WARC/"):
            raise Unusual("record does not start with WARC/")
        self._begin_record(block)
        return pos

    def _head_incomplete(self, size: int) -> int:
        if len(self._head) >= 5 and not self._head.startswith(b"WARC/"):
            raise Unusual("record does not start with WARC/")
        if len(self._head) > HEADER_LIMIT:
            self._fail_here(f"WARC header longer than {HEADER_LIMIT} bytes", self._record_start())
        return size

    def _begin_record(self, block: bytes) -> None:
        self._info, self._digests, length = self._record(block)
        self._remaining = length
        self._state = "block" if length else "tail"

    def _record(self, block: bytes) -> tuple[RecordInfo, RecordDigests, int]:
        """A record's info, digests to compute and block length, from its WARC header."""
        fields = _header_fields(block)
        length_text = fields.get("content-length", "")
        if not (length_text.isascii() and length_text.isdigit()) or "warc-type" not in fields:
            raise Unusual("no plain Content-Length or WARC-Type")
        length = int(length_text)
        uri = target_uri(fields.get("warc-target-uri"))
        record_type = fields["warc-type"]
        if uri is None and length and record_type in HTTP_RECORD_TYPES:
            raise Unusual("no WARC-Target-URI")     # warcio cannot read it: its reader decides
        info = RecordInfo(
            self._record_start(), 0, record_type, uri, fields.get("warc-record-id"),
            fields.get("warc-date"), fields.get("warc-payload-digest"), fields.get("content-type"),
            *_refers_to(fields) if record_type == "revisit" else (None, None),
        )
        digests = RecordDigests(
            record_type, uri, length, fields.get("warc-block-digest"),
            fields.get("warc-payload-digest"), "warc-segment-number" in fields,
        )
        return info, digests, length

    def _whole_member(self, out: bytes) -> bool:
        """A gzip member inflated in one call that holds one whole record and nothing
        else (the usual shape), checked in one go: the same work and outcome as _plain's
        walk through it, without the walk. False, nothing changed, for anything else:
        _plain then reads it (and says what is wrong with it)."""
        end = out.find(b"\r\n\r\n")
        if end < 0 or end > HEADER_LIMIT or not out.startswith(b"WARC/"):
            return False
        try:
            info, digests, length = self._record(out[: end + 4])
        except Unusual:
            return False
        block_end = end + 4 + length
        if len(out) != block_end + 4 or not out.endswith(b"\r\n\r\n"):
            return False
        self._out += len(out)
        if length:
            digests.update(memoryview(out)[end + 4: block_end])
        self._info = info
        self._conclude((info.offset, info.record_id, info.uri), digests)
        self._state = "end"
        return True

    def _record_start(self) -> int:
        return self._member_start if self._gzip else self._record_offset

    def _defer(self, fn, arg, arg2=None) -> None:
        self._batch.append((fn, arg, arg2))
        if self._batch_bytes >= BATCH_BYTES or len(self._batch) >= BATCH_CALLS:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._worker.submit(_run_batch, self._batch)
            self._batch, self._batch_bytes = [], 0

    def _conclude(self, where: tuple, digests: RecordDigests) -> None:
        """(offset, record id, uri) are copied, not read from the RecordInfo, which the
        reading thread slims down meanwhile."""
        messages, checked = digests.results()
        self.result.digests_checked += checked
        if not checked and digests.length and not digests.revisit:
            self.result.undigested += 1
        for message in messages:
            self.result.problems.append(Problem(message, self.result.filename, *where))
        if digests.splitter is not None and digests.splitter.loose:
            self.result.loose_headers.append(Problem(LOOSE_HEADERS, self.result.filename, *where))

    def _finish_record(self, position: int) -> None:
        info = self._info
        where = (info.offset, info.record_id, info.uri)
        if self._worker is not None:
            self._defer(self._conclude, where, self._digests)
        else:
            self._conclude(where, self._digests)
        if self._gzip:
            self._state = "end"
        else:
            # warcio's length of an uncompressed record leaves out the blank lines after it
            info.length = position - 4 - info.offset
            self.result.records.append(_kept(info))
            self._start_record(position)

    def _end_member(self) -> None:
        if self._state != "end":
            raise Unusual("gzip member does not hold exactly one whole record")
        self._info.length = self._in - self._member_start
        self.result.records.append(_kept(self._info))
        self._start_record(self._out)

    def _fail_here(self, message: str, offset: int) -> None:
        info = self._info
        self.result.problems.append(Problem(
            f"cannot read past this point: {message}", self.result.filename, offset,
            info.record_id if info else None, info.uri if info else None))
        self.result.readable = False
        self._stopped = True

    @property
    def output(self) -> int:
        """Bytes decompressed (or read, from a plain file) since `start`."""
        return self._out

    def ended_cleanly_at(self, end: int) -> bool:
        """After finish(): gzip members, each one whole record, read without a single
        remark up to exactly byte `end`, the last member ending there."""
        return (self._gzip is True and not self._stopped and self.needs_fallback is None
                and not self.result.problems and self.result.unchecked is None and self._in == end)

    def finish(self) -> WarcResult:
        if self._worker is not None:
            self._flush()
            self._worker.close()          # every digest of every record concluded
            self._worker = None
        if self._stopped:
            return self.result
        if self._gzip is None:
            if self._first:
                self.needs_fallback = "too short to tell"
            else:
                self.result.problems.append(Problem("the WARC file is empty", self.result.filename))
            return self.result
        if self._gzip and self._d is not None:
            self._fail_here("the file ends inside a gzip member (cut short)", self._member_start)
        elif self._state == "block" or (self._state == "tail" and not self._gzip):
            self._fail_here(
                f"the file ends inside a record: {self._remaining} bytes of its block missing"
                if self._state == "block" else "the file ends before the blank lines after a record",
                self._record_start())
        elif self._state == "head" and self._head:
            self.needs_fallback = "bytes after the last record"
        return self.result


# -- warcio's reader, quiet and bounded ---------------------------------------------------

class _BoundedReader(DecompressingBufferedReader):
    """warcio's reader with its stderr messages kept and its appetite bounded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.messages: list[str] = []
        self.line_bytes = 0
        self.raw_read = 0
        self.meter: Meter | None = None     # as WarcChecker's

    def _decompress(self, data):
        if self.decompressor and data:
            self.raw_read += len(data)
            try:
                out = self.decompressor.decompress(data)
            except Exception as exc:  # noqa: BLE001 - warcio's own policy, without stderr
                if self.num_block_read == 0:
                    self.decompressor = None
                    return data
                self.messages.append(f"gzip data is damaged ({exc})")
                return b""
            spent = self.meter.read if self.meter is not None else self.raw_read
            if self.num_read > WORK_FLOOR and self.num_read > WORK_PER_BYTE * spent:
                raise Bomb(bomb_message(self.raw_read))
            return out
        return data

    def read(self, length=None):
        self.line_bytes = 0
        return super().read(length)

    def readline(self, length=None):
        line = super().readline(LINE_LIMIT if length is None else min(length, LINE_LIMIT))
        self.line_bytes += len(line)
        if len(line) >= LINE_LIMIT and not line.endswith(b"\n"):
            raise ArchiveLoadFailed(f"a header line longer than {LINE_LIMIT} bytes")
        if self.line_bytes > HEADER_LIMIT:
            raise ArchiveLoadFailed(f"more than {HEADER_LIMIT} bytes of headers or blank lines")
        return line


class _Loader(ArcWarcRecordLoader):
    def load_http_headers(self, rec_type, uri, stream, length):
        # warcio fails here with an AttributeError: say what is wrong instead
        if uri is None and length != 0 and rec_type in self.HTTP_RECORDS:
            raise ArchiveLoadFailed(f"a {rec_type} record without WARC-Target-URI "
                                    "(warcio and replay tools cannot read it)")
        return super().load_http_headers(rec_type, uri, stream, length)


class _QuietIterator(ArchiveIterator):
    def __init__(self, fileobj):
        super().__init__(fileobj, check_digests=True)
        self.reader = _BoundedReader(self.fh)
        self.loader = _Loader(verify_http=False, arc2warc=False)     # ArchiveIterator's own
        self.warnings: list[str] = []

    def _consume_blanklines(self):
        # warcio's loop, with its warning kept instead of written to stderr
        empty_size, first_line = 0, True
        while True:
            line = self.reader.readline()
            if len(line) == 0:
                return None, empty_size
            stripped = line.rstrip()
            if len(stripped) == 0 or first_line:
                empty_size += len(line)
                if len(stripped) != 0:
                    self.warnings.append("record not followed by a blank line "
                                         "(its Content-Length may be wrong)")
                first_line = False
                continue
            return line, empty_size


def bounded_iterator(stream: BinaryIO) -> ArchiveIterator:
    """warcio's ArchiveIterator, digests checked, with this reader's bounds: a header line
    or headers too long are ArchiveLoadFailed, a decompression bomb is Bomb (for readers
    of single records, as `archive extract`: warcio's own holds a header line whole)."""
    return _QuietIterator(stream)


def check_warc_slow(stream: BinaryIO, filename: str, meter: Meter | None = None) -> WarcResult:
    """Check every record with warcio's reader (what `warcio check` says), stricter only
    in failing records cut short. `meter`: as WarcChecker's."""
    result = WarcResult(filename, reader="warcio")
    iterator = _QuietIterator(stream)
    reader = iterator.reader
    reader.meter = meter
    next_offset = 0
    try:
        for record in iterator:
            headers = record.rec_headers
            record_id = headers.get_header("WARC-Record-ID")
            uri = headers.get_header("WARC-Target-URI")
            raw = record.raw_stream
            while raw.read(1 << 20):
                pass
            offset = iterator.get_record_offset()
            digests = [headers.get_header("WARC-Block-Digest"), headers.get_header("WARC-Payload-Digest")]
            if record.rec_type != "revisit":
                result.digests_checked += sum(1 for d in digests if d)
                if not any(digests) and record.length:
                    result.undigested += 1
            for message in record.digest_checker.problems + conflicting_fields(headers.headers):
                result.problems.append(Problem(message, filename, offset, record_id, uri))
            missing = getattr(raw, "limit", 0)
            if missing:
                result.problems.append(Problem(
                    f"record is cut short: {missing} of its {record.length} bytes are missing",
                    filename, offset, record_id, uri))
            result.records.append(_kept(RecordInfo(
                offset, iterator.get_record_length(), record.rec_type, uri, record_id,
                headers.get_header("WARC-Date"), headers.get_header("WARC-Payload-Digest"),
                headers.get_header("Content-Type"),
                target_uri(headers.get_header("WARC-Refers-To-Target-URI")),
                headers.get_header("WARC-Refers-To-Date"),
            )))
            next_offset = offset + iterator.get_record_length()
    except Bomb as exc:
        result.readable = False
        result.unchecked = str(exc)
    except Exception as exc:  # noqa: BLE001 - warcio's reader fails in many ways on damaged input
        result.readable = False
        text = str(exc).strip()
        if "non-chunked gzip" in text:
            message = ("the file is one gzip stream, not one gzip member per record "
                       "(warcio refuses it; `warcio recompress` can fix a copy)")
        else:
            message = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
        # warcio's offsets go negative on a file that is one gzip stream: no offset then
        offset = iterator.offset if iterator.offset >= 0 else next_offset if next_offset >= 0 else None
        result.problems.append(Problem(f"cannot read past this point: {message}", filename, offset))
    for message in reader.messages:
        result.problems.append(Problem(message, filename))
    return result
