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

The parts both readers share: warcheader.py (reading a record's header), digests.py
(computing and comparing digests), warcresult.py (what a reading found); warcio's
reader is warcioreader.py.
"""

from __future__ import annotations

import zlib

from archive.hashing import Worker
from archive.httpmessage import HTTP_RECORD_TYPES
from archive.wacz.bounds import Meter, WORK_FLOOR, WORK_PER_BYTE, bomb_message
from archive.reader.digests import RecordDigests
from archive.reader.problems import Problem
from archive.reader.storedinflate import StoredFirst
from archive.reader.warcheader import HEADER_LIMIT, Unusual, header_fields, refers_to, target_uri
from archive.reader.warcresult import LOOSE_HEADERS, Bomb, RecordInfo, WarcResult, kept

OUTPUT_CAP = 1 << 20            # decompressed bytes produced by one zlib call
FIRST_FEED, MAX_FEED = 16 << 10, 1 << 20
BATCH_BYTES, BATCH_CALLS = 1 << 20, 512     # digest work handed over at a time
SPREAD_MIN = 8 << 20            # a block this long has its digests hashed on threads of their own


def _run_batch(batch: list) -> None:
    for fn, arg, arg2 in batch:
        if arg2 is None:
            fn(arg)
        else:
            fn(arg, arg2)


class DigestQueue:
    """Digest work (hashing blocks, concluding records) handed in batches to a thread of
    its own (hashlib releases the GIL), while the reading thread decompresses and splits
    records."""

    def __init__(self, name: str) -> None:
        self._worker = Worker(f"digests {name}", depth=4)
        self._batch: list = []
        self._bytes = 0

    def update(self, digests: RecordDigests, data) -> None:
        self.defer(digests.update, data)
        self._bytes += len(data)

    def defer(self, fn, arg, arg2=None) -> None:
        self._batch.append((fn, arg, arg2))
        if self._bytes >= BATCH_BYTES or len(self._batch) >= BATCH_CALLS:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._worker.submit(_run_batch, self._batch)
            self._batch, self._bytes = [], 0

    def close(self) -> None:
        """Returns when every piece of work handed over is done."""
        self.flush()
        self._worker.close()


def read_record_head(block: bytes, offset: int) -> tuple[RecordInfo, RecordDigests, int]:
    """A record's info, digests to compute and block length, from its WARC header (`block`,
    ending in CRLF CRLF) at `offset`; raises Unusual for what warcio's reader must decide."""
    fields = header_fields(block)
    length_text = fields.get("content-length", "")
    if not (length_text.isascii() and length_text.isdigit()) or "warc-type" not in fields:
        raise Unusual("no plain Content-Length or WARC-Type")
    length = int(length_text)
    uri = target_uri(fields.get("warc-target-uri"))
    record_type = fields["warc-type"]
    if uri is None and length and record_type in HTTP_RECORD_TYPES:
        raise Unusual("no WARC-Target-URI")     # warcio cannot read it: its reader decides
    info = RecordInfo(
        offset, 0, record_type, uri, fields.get("warc-record-id"),
        fields.get("warc-date"), fields.get("warc-payload-digest"), fields.get("content-type"),
        *refers_to(fields) if record_type == "revisit" else (None, None),
    )
    digests = RecordDigests(
        record_type, uri, length, fields.get("warc-block-digest"),
        fields.get("warc-payload-digest"), "warc-segment-number" in fields,
    )
    return info, digests, length


class RecordStream:
    """The records in a WARC's decompressed (or plain) bytes, walked by offset with no
    copies: each one's header read, its block hashed, the blank lines after it checked,
    what was found added to `result`. Raises Unusual for a shape it does not handle."""

    def __init__(self, result: WarcResult, queue: DigestQueue | None) -> None:
        self.result = result
        self.queue = queue           # None: digests computed on this thread
        self.gzip = False            # one record per gzip member (the reader says)
        self.member_start = 0        # where in the file the current gzip member starts
        self.out = 0                 # bytes walked (decompressed, from a gzip file)
        self.stopped = False
        self.start_record(0)

    # record state: "head" -> "block" -> "tail" -> ("end" in gzip members)
    def start_record(self, offset: int) -> None:
        self.state = "head"
        self._head = bytearray()
        self._record_offset = offset
        self._tail = b""
        self._info: RecordInfo | None = None
        self._digests: RecordDigests | None = None
        self.remaining = 0

    @property
    def head_pending(self) -> bool:
        """Bytes of a record's header were read, not yet its end."""
        return bool(self._head)

    def walk(self, buf: bytes) -> None:
        """Decompressed (or plain) bytes of the record stream, walked by offset (no copies)."""
        base, pos, size = self.out, 0, len(buf)
        self.out += size
        view = memoryview(buf)
        while pos < size and not self.stopped:
            state = self.state
            if state == "block":
                take = min(self.remaining, size - pos)
                if self.queue is not None:
                    self.queue.update(self._digests, view[pos: pos + take])
                else:
                    self._digests.update(view[pos: pos + take])
                self.remaining -= take
                pos += take
                if self.remaining == 0:
                    self.state = "tail"
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
            kept_bytes = len(self._head)
            self._head += buf[pos:]
            end = self._head.find(b"\r\n\r\n", max(0, kept_bytes - 3))
            if end < 0:
                return self._head_incomplete(len(buf))
            block = bytes(self._head[: end + 4])
            pos += end + 4 - kept_bytes
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
        self._info, self._digests, length = read_record_head(block, self.record_start())
        if length >= SPREAD_MIN:
            # one large record (a video) has nothing to share the cores with but its own
            # digests: block and payload are hashed side by side (the block on the digest
            # thread, when there is one)
            self._digests.spread(block_too=self.queue is None)
        self.remaining = length
        self.state = "block" if length else "tail"
        return pos

    def _head_incomplete(self, size: int) -> int:
        if len(self._head) >= 5 and not self._head.startswith(b"WARC/"):
            raise Unusual("record does not start with WARC/")
        if len(self._head) > HEADER_LIMIT:
            self.fail_here(f"WARC header longer than {HEADER_LIMIT} bytes", self.record_start())
        return size

    def whole_member(self, out: bytes) -> bool:
        """A gzip member inflated in one call that holds one whole record and nothing
        else (the usual shape), checked in one go: the same work and outcome as walk()'s
        way through it, without the walk. False, nothing changed, for anything else:
        walk() then reads it (and says what is wrong with it)."""
        if self.state != "head" or self._head:
            return False
        end = out.find(b"\r\n\r\n")
        if end < 0 or end > HEADER_LIMIT or not out.startswith(b"WARC/"):
            return False
        try:
            info, digests, length = read_record_head(out[: end + 4], self.record_start())
        except Unusual:
            return False
        block_end = end + 4 + length
        if len(out) != block_end + 4 or not out.endswith(b"\r\n\r\n"):
            return False
        self.out += len(out)
        if length:
            digests.update(memoryview(out)[end + 4: block_end])
        self._info = info
        self._conclude((info.offset, info.record_id, info.uri), digests)
        self.state = "end"
        return True

    def record_start(self) -> int:
        return self.member_start if self.gzip else self._record_offset

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
        if self.queue is not None:
            self.queue.defer(self._conclude, where, self._digests)
        else:
            self._conclude(where, self._digests)
        if self.gzip:
            self.state = "end"
        else:
            # warcio's length of an uncompressed record leaves out the blank lines after it
            info.length = position - 4 - info.offset
            self.result.records.append(kept(info))
            self.start_record(position)

    def end_member(self, length: int) -> None:
        """The gzip member, `length` bytes of the file, ended: it held one whole record."""
        if self.state != "end":
            raise Unusual("gzip member does not hold exactly one whole record")
        self._info.length = length
        self.result.records.append(kept(self._info))
        self.start_record(self.out)

    def release(self) -> None:
        """Stop the hashing threads of a record that will not be concluded (cut short)."""
        if self._digests is not None:
            self._digests.release()

    def fail_here(self, message: str, offset: int) -> None:
        info = self._info
        self.result.problems.append(Problem(
            f"cannot read past this point: {message}", self.result.filename, offset,
            info.record_id if info else None, info.uri if info else None))
        self.result.readable = False
        self.stopped = True


class WarcChecker:
    """Checks a WARC fed in pieces, in order: plain, or gzip members inflated with bounded
    output and a stop at a decompression bomb, their records walked by a RecordStream.
    After finish(), `result.reader` says which reader decided; `needs_fallback` tells the
    caller to run check_warc_slow instead."""

    def __init__(self, filename: str, threaded: bool = False, start: int = 0, inflate=zlib) -> None:
        """`threaded`: block and payload hashing run on a thread of their own (hashlib
        releases the GIL), while this one decompresses and splits records. `start`: where
        in the WARC file the first byte fed lies (a segment checked on its own, from a
        gzip member start: archive.verify.segments). `inflate`: zlib, or a module with
        its decompressobj and error (archive.verify.segments)."""
        self.result = WarcResult(filename)
        # members of stored blocks (media) are sliced, not inflated; every other goes to `inflate`
        self._inflate = StoredFirst(inflate)
        self._queue = DigestQueue(filename) if threaded else None
        self._records = RecordStream(self.result, self._queue)
        self.needs_fallback: str | None = None
        self._gzip: bool | None = None
        self._first = b""
        self._start = start
        self._in = start             # position in the file of the next byte fed
        # the least number of bytes decompressed before `start` for which the reader of
        # the whole file would have stopped here as at a bomb (see _expansion)
        self.headroom = float("inf")
        # bytes of the file read, when those fed were inflated from fewer (a deflated zip
        # entry): the bound on work counts the file's bytes (archive.wacz.bounds)
        self.meter: Meter | None = None
        self._d = None
        self._feed = FIRST_FEED
        if start:
            self._gzip = self._records.gzip = True     # a segment starts where a gzip member does

    def feed(self, data: bytes) -> None:
        records = self._records
        if records.stopped or not data:
            return
        try:
            if self._gzip is None:
                self._first += data
                if len(self._first) < 2:
                    return
                self._gzip = records.gzip = self._first[:2] == b"\x1f\x8b"
                data, self._first = self._first, b""
            if self._gzip:
                self._feed_gzip(data)
            else:
                self._in += len(data)
                records.walk(data)
        except Unusual as exc:
            self.needs_fallback = str(exc)
            records.stopped = True
        except Bomb as exc:
            self.result.unchecked = str(exc)
            self.result.readable = False
            records.stopped = True

    def _feed_gzip(self, data: bytes) -> None:
        records = self._records
        view, pos, size = memoryview(data), 0, len(data)
        while pos < size and not records.stopped:
            if self._d is None:
                self._d = self._inflate.decompressobj(zlib.MAX_WBITS | 16)
                records.member_start = self._in
                self._feed = FIRST_FEED
            d = self._d
            piece = view[pos: pos + self._feed]
            try:
                out = d.decompress(piece, OUTPUT_CAP)
                if not (d.eof and self._queue is None and records.whole_member(out)):
                    records.walk(out)
                while d.unconsumed_tail and not d.eof and not records.stopped:
                    records.walk(d.decompress(d.unconsumed_tail, OUTPUT_CAP))
            except self._inflate.error as exc:
                records.fail_here(f"gzip data is damaged ({exc})", records.member_start)
                return
            if d.eof:
                used = len(piece) - len(d.unused_data)
                pos += used
                self._in += used
                records.end_member(self._in - records.member_start)
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
        out, read = self._records.out, self._in
        spent = self.meter.read if self.meter is not None else read - self._start
        if out > WORK_FLOOR and out > WORK_PER_BYTE * spent:
            raise Bomb(bomb_message(read))
        need = max(WORK_FLOOR - out, WORK_PER_BYTE * read - out)
        if need < self.headroom:
            self.headroom = need

    @property
    def output(self) -> int:
        """Bytes decompressed (or read, from a plain file) since `start`."""
        return self._records.out

    def ended_cleanly_at(self, end: int) -> bool:
        """After finish(): gzip members, each one whole record, read without a single
        remark up to exactly byte `end`, the last member ending there."""
        return (self._gzip is True and not self._records.stopped and self.needs_fallback is None
                and not self.result.problems and self.result.unchecked is None and self._in == end)

    def finish(self) -> WarcResult:
        if self._queue is not None:
            self._queue.close()          # every digest of every record concluded
            self._queue = None
        records = self._records
        records.release()
        if records.stopped:
            return self.result
        if self._gzip is None:
            if self._first:
                self.needs_fallback = "too short to tell"
            else:
                self.result.problems.append(Problem("the WARC file is empty", self.result.filename))
            return self.result
        if self._gzip and self._d is not None:
            records.fail_here("the file ends inside a gzip member (cut short)", records.member_start)
        elif records.state == "block" or (records.state == "tail" and not self._gzip):
            records.fail_here(
                f"the file ends inside a record: {records.remaining} bytes of its block missing"
                if records.state == "block" else "the file ends before the blank lines after a record",
                records.record_start())
        elif records.state == "head" and records.head_pending:
            self.needs_fallback = "bytes after the last record"
        return self.result
