"""warcio's own reader, made quiet (warcio writes warnings to stderr) and bounded (long
header lines, header floods, decompression bombs): it defines what `warcio check` says of
odd files, and checks what the fast reader (archive.reader.warcs) hands over."""

from __future__ import annotations

import logging
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader

from archive.reader.problems import Problem
from archive.reader.warcheader import HEADER_LIMIT, conflicting_fields, target_uri
from archive.reader.warcresult import Bomb, RecordInfo, WarcResult, kept
from archive.wacz.bounds import Meter, WORK_FLOOR, WORK_PER_BYTE, bomb_message

LINE_LIMIT = 1 << 20            # one header line (slow path)

# warcio logs through `logging` (spaces in target URIs); keep our output clean.
logging.getLogger("warcio").addHandler(logging.NullHandler())
logging.getLogger("warcio").propagate = False


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
            result.records.append(kept(RecordInfo(
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
