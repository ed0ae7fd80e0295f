"""WARC 1.1 files written through warcio: SHA-256 digests, one gzip member per record,
rollover by size. The files go to a sink (archive.warc.sink): straight into the capture's
WACZ container (itself `.open` until sealed), so sealing never copies them again, or a
worker's folder of plain files.

warcio re-serialises HTTP headers it parses, which would alter the evidence, so records
are handed to it as opaque blocks with their digests already set: it writes the WARC
headers and copies the block byte for byte.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO

from warcio.recordloader import ArcWarcRecord
from zlib_ng import zlib_ng
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from archive.hashing import warc_digest
from archive.httpmessage import PayloadSplitter, has_http_headers
from archive.wacz.names import WARC_DIR
from archive.wacz.ziplayout import MAX32
from archive.warc.sink import OpenFile, Sink

WARC_VERSION = "WARC/1.1"
WARC_VERSION_LINES = ("WARC/1.1", "WARC/1.0", "WARC/0.17", "WARC/0.18")   # the versions a record may start with
DEFAULT_MAX_SIZE = 1_000_000_000
GZIP_LEVEL = 6  # warcio uses 9: several times slower for a few percent
STORED = 0      # deflate's stored blocks: for what is compressed already
# Payloads compressed by their own format: deflate gains next to nothing on them and costs
# most of a large video's capture time, so their gzip members hold stored blocks.
COMPRESSED_TYPES = ("video/", "audio/", "image/jpeg", "image/png", "image/webp", "image/gif",
                    "image/avif", "font/woff2", "application/zip", "application/gzip")

CONTENT_TYPES = {
    "response": "application/http; msgtype=response",
    "revisit": "application/http; msgtype=response",
    "request": "application/http; msgtype=request",
    "warcinfo": "application/warc-fields",
    "metadata": "application/warc-fields",
}


@dataclass(frozen=True)
class RecordRef:
    """Where a record landed: file name, offset and length of its gzip member."""

    filename: str
    offset: int
    length: int
    record_id: str
    date: str


@dataclass(frozen=True)
class WarcFile:
    """A finished WARC file in the container: name, size, and the CRC-32 and SHA-256
    of its bytes computed while they were written."""

    name: str
    size: int
    crc32: int
    sha256: str


def block_digests(record_type: str, uri: str | None, block: bytes) -> tuple[str, str]:
    """WARC-Block-Digest and WARC-Payload-Digest for a block held in memory."""
    payload = block
    if has_http_headers(record_type, uri, len(block)):
        start = PayloadSplitter().feed(block)
        payload = block[start:] if start is not None else b""
    return warc_digest(hashlib.sha256(block)), warc_digest(hashlib.sha256(payload))


def warc_fields(fields: dict) -> bytes:
    """application/warc-fields body: `Name: value` lines; lists give repeated fields."""
    lines = []
    for name, value in fields.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None or item == "":
                continue
            text = str(item).replace("\r", " ").replace("\n", " ")
            lines.append(f"{name}: {text}\r\n")
    return "".join(lines).encode("utf-8")


def gzip_level(content_type: str | None) -> int:
    """The deflate level for a record whose payload has this type."""
    mime = (content_type or "").split(";")[0].strip().lower()
    return STORED if mime.startswith(COMPRESSED_TYPES) else GZIP_LEVEL


# A streamed block is copied in pieces this large (warcio's own 16 KiB pieces cost more
# in calls than in bytes on a multi-gigabyte video) ...
BLOCK_CHUNK = 1 << 20
# ... and handed to deflate in pieces this large: zlib-ng's output buffer for a large
# piece is regrown several times, which makes its stored blocks ten times slower.
DEFLATE_PIECE = 1 << 16
# The gzip header zlib writes (no name, no time; XFL 4, OS 3), and deflate's largest
# stored block (RFC 1951 3.2.4: LEN is 16 bits).
GZIP_HEADER = bytes.fromhex("1f8b0800000000000403")
STORED_BLOCK = 0xFFFF


def _stored_block(piece, final: bool = False) -> tuple[bytes, object]:
    """One stored block: its header (BFINAL, BTYPE 00, LEN, NLEN) and its bytes."""
    size = len(piece)
    return bytes((1 if final else 0, size & 0xFF, size >> 8, ~size & 0xFF, (~size >> 8) & 0xFF)), piece


class StoredGzip:
    """A gzip member of deflate stored blocks, framed here: write() and finish() give the
    member's bytes. Every block but the last is full (writes are gathered), so the
    record's header lies whole in the member as it does in zlib's.

    Why not zlib's level 0: it copies every byte into its window and out again in blocks
    of 32 KiB (zlib-ng: 0.7 s for 500 MB in pieces of 1 MiB, here 0.03 s, in the serial
    tail of a video's capture); a stored block is five bytes of framing around the bytes."""

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0
        self.pending = bytearray()
        self.started = False

    def write(self, data) -> bytes:
        view = memoryview(data)
        self.crc = zlib_ng.crc32(view, self.crc)
        self.size += len(view)
        parts: list = [] if self.started else [GZIP_HEADER]
        self.started = True
        if self.pending:
            take = min(len(view), STORED_BLOCK - len(self.pending))
            self.pending += view[:take]
            view = view[take:]
            if len(self.pending) < STORED_BLOCK:
                return b"".join(parts)
            parts += _stored_block(bytes(self.pending))
            self.pending = bytearray()
        whole = len(view) - len(view) % STORED_BLOCK
        for at in range(0, whole, STORED_BLOCK):
            parts += _stored_block(view[at:at + STORED_BLOCK])
        self.pending += view[whole:]
        return b"".join(parts)

    def finish(self) -> bytes:
        """The last (final) block and the trailer: CRC-32 and size mod 2**32."""
        head = b"" if self.started else GZIP_HEADER
        return b"".join((head, *_stored_block(bytes(self.pending), final=True),
                         self.crc.to_bytes(4, "little"), (self.size & 0xFFFFFFFF).to_bytes(4, "little")))


class _GzipMember:
    """warcio's output sink: one gzip member per record (warcio flushes once per record).
    zlib-ng's deflate: the same format as zlib's, written faster; at level STORED, stored
    blocks framed by StoredGzip."""

    def __init__(self, out) -> None:
        self.out = out
        self.compressor = None
        self.level = GZIP_LEVEL          # of the next member

    def write(self, data: bytes) -> None:
        if self.compressor is None:
            self.compressor = StoredGzip() if self.level == STORED else \
                zlib_ng.compressobj(self.level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        if isinstance(self.compressor, StoredGzip):
            if out := self.compressor.write(data):
                self.out.write(out)
            return
        if len(data) <= DEFLATE_PIECE:
            self.out.write(self.compressor.compress(data))
            return
        view = memoryview(data)
        self.out.write(b"".join(self.compressor.compress(view[i:i + DEFLATE_PIECE])
                                for i in range(0, len(view), DEFLATE_PIECE)))

    def flush(self) -> None:
        if self.compressor is not None:
            compressor, self.compressor = self.compressor, None
            self.out.write(compressor.finish() if isinstance(compressor, StoredGzip) else compressor.flush())


class _Warcio(WARCWriter):
    """warcio's writer, copying a streamed block in BLOCK_CHUNK pieces."""

    @staticmethod
    def _iter_stream(stream):
        while buf := stream.read(BLOCK_CHUNK):
            yield buf


def _compressed_bound(length: int) -> int:
    """More than a gzip member holding `length` bytes (plus WARC headers) can take."""
    return length + length // 1000 + 65536


class WarcWriter:
    """Writes records as WARC files `archive/<prefix>-NNNNN.warc.gz` inside a WACZ
    container, rolling over to a new file at max_size. Thread safe.

    Every file starts with a warcinfo record built from `info`.
    """

    def __init__(
        self,
        container: Sink,
        prefix: str,
        info: dict,
        max_size: int = DEFAULT_MAX_SIZE,
        first_sequence: int = 0,
        closed_files: list[WarcFile] | None = None,
    ) -> None:
        self.container = container
        self.prefix = prefix
        self.info = info
        self.max_size = max_size
        self.closed_files: list[WarcFile] = list(closed_files or [])
        self._sequence = first_sequence
        # Re-entrant, so that batch() can hold it across several write() calls.
        self._lock = threading.RLock()
        self._member: OpenFile | None = None
        self._sink: _GzipMember | None = None
        self._warcio: WARCWriter | None = None
        self._warcinfo_id: str | None = None

    # -- files ---------------------------------------------------------------
    @property
    def current_name(self) -> str:
        return f"{self.prefix}-{self._sequence:05d}.warc.gz"

    def _open_next(self, zip64: bool) -> None:
        name = self.current_name
        self._member = self.container.begin(f"{WARC_DIR}/{name}", zip64=zip64)
        self._sink = _GzipMember(self._member)
        self._warcio = _Warcio(self._sink, gzip=False, warc_version=WARC_VERSION)
        body = warc_fields({**self.info, "format": "WARC File Format 1.1"})
        ref = self._write_locked(
            "warcinfo", None, BytesIO(body), len(body),
            *block_digests("warcinfo", None, body), extra={"WARC-Filename": name},
        )
        self._warcinfo_id = ref.record_id

    def _close_current(self) -> None:
        if self._member is None:
            return
        info = self.container.end()
        name = info.entry.name.rsplit("/", 1)[-1]
        self.closed_files.append(WarcFile(name, info.entry.size, info.entry.crc, info.sha256))
        self._member = self._sink = self._warcio = None
        self._sequence += 1

    def describe(self, fields: dict) -> None:
        """Add fields to the warcinfo record of every WARC file begun from now on (what
        is only known once the capture runs, such as the browser's version)."""
        with self._lock:
            self.info = {**self.info, **fields}

    def batch(self) -> threading.RLock:
        """`with writer.batch():` keeps other threads out, so that the records written
        inside follow each other in the file (and nothing else lands between them)."""
        return self._lock

    def position(self) -> tuple[str, int, int] | None:
        """(file name, size, CRC-32 so far) of the WARC file being written, after flushing
        it to the OS: every record written so far is then on disk, whatever happens to
        this process; the CRC lets a resume prove those bytes are still what was written."""
        with self._lock:
            if self._member is None:
                return None
            self.container.flush()
            return self.current_name, self._member.size, self._member.crc

    def ensure_file(self) -> None:
        """Begin a WARC file (its warcinfo record) when none was: a capture in which
        nothing could be fetched still says in a WARC who tried, when and how."""
        with self._lock:
            if self._member is None and not self.closed_files:
                self._open_next(zip64=False)

    def close(self) -> list[WarcFile]:
        """Finish the WARC file being written; returns every file written."""
        with self._lock:
            self._close_current()
        return list(self.closed_files)

    # -- records -------------------------------------------------------------
    def write(
        self,
        record_type: str,
        uri: str | None,
        block: BinaryIO | bytes,
        length: int | None = None,
        block_digest: str | None = None,
        payload_digest: str | None = None,
        extra: dict | None = None,
        content_type: str | None = None,
        level: int = GZIP_LEVEL,
    ) -> RecordRef:
        """Write one record. Digests are computed here when the block is given as bytes.
        `level`: of its gzip member's deflate (gzip_level() of the payload's type)."""
        if isinstance(block, (bytes, bytearray)):
            block_digest, payload_digest = block_digests(record_type, uri, bytes(block))
            length = len(block)
            block = BytesIO(block)
        if block_digest is None or length is None:
            raise ValueError("a streamed block needs its length and digests")
        bound = _compressed_bound(length)
        with self._lock:
            member = self._member
            if member is not None and (
                member.size >= self.max_size
                or (not member.zip64 and member.size + bound >= MAX32)
            ):
                self._close_current()
            if self._member is None:
                # zip64 fields up front only when this record alone may pass 4 GiB
                self._open_next(zip64=bound >= MAX32)
            extra = {"WARC-Warcinfo-ID": self._warcinfo_id, **(extra or {})}
            self._sink.level = level
            try:
                return self._write_locked(
                    record_type, uri, block, length, block_digest, payload_digest,
                    extra=extra, content_type=content_type,
                )
            finally:
                self._sink.level = GZIP_LEVEL
    def _write_locked(
        self, record_type, uri, block, length, block_digest, payload_digest,
        extra=None, content_type=None,
    ) -> RecordRef:
        headers = [("WARC-Type", record_type)]
        headers.append(("WARC-Record-ID", self._warcio._make_warc_id()))
        date = (extra or {}).get("WARC-Date") or self._warcio.curr_warc_date()
        headers.append(("WARC-Date", date))
        if uri:
            headers.append(("WARC-Target-URI", uri))
        for name, value in (extra or {}).items():
            if value is not None and name != "WARC-Date":
                headers.append((name, str(value)))
        headers.append(("WARC-Block-Digest", block_digest))
        # warcio would add a SHA-1 payload digest to records without one; revisits keep
        # the digest of the payload they refer to, set by the caller in `extra`.
        if payload_digest and record_type not in ("warcinfo", "revisit"):
            headers.append(("WARC-Payload-Digest", payload_digest))
        rec_headers = StatusAndHeaders("", headers, protocol=WARC_VERSION)
        content_type = content_type or CONTENT_TYPES.get(record_type, "application/octet-stream")
        # warcio writes only the parsed HTTP headers of a record whose type is "revisit";
        # ours are opaque blocks (the headers exactly as received), so it is told
        # "response" and copies the block. The WARC-Type header above says revisit.
        warcio_type = "response" if record_type == "revisit" else record_type
        record = ArcWarcRecord("warc", warcio_type, rec_headers, block, None, content_type, length)
        offset = self._member.size
        self._warcio.write_record(record)
        return RecordRef(
            self.current_name, offset, self._member.size - offset,
            rec_headers.get_header("WARC-Record-ID"), date,
        )

