"""Checking every record digest of a WARC stream, with warcio's framing and rules:
block digest over the whole block; payload digest over what follows the HTTP headers
of request, response and revisit records with an http(s) target (the whole block for
every other record); revisit digests describe another record and are not checked."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from archive.hashing import CHUNK, parse_digest
from archive.httpmessage import PayloadSplitter, has_http_headers


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
            parts.append(f"offset {self.offset}")
        if self.record_id:
            parts.append(f"record {self.record_id}")
        if self.uri:
            parts.append(self.uri)
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class RecordInfo:
    offset: int
    length: int
    record_type: str
    uri: str | None
    record_id: str | None
    date: str | None
    payload_digest: str | None


@dataclass
class WarcResult:
    filename: str
    records: list[RecordInfo] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    digests_checked: int = 0
    readable: bool = True


class _Digest:
    def __init__(self, header: str | None, label: str):
        self.header, self.label = header, label
        self.parsed = parse_digest(header) if header else None
        self.hasher = hashlib.new(self.parsed[0]) if self.parsed else None

    def problem(self) -> str | None:
        """None when the digest holds (or there is none)."""
        if self.header is None:
            return None
        if self.parsed is None:
            return f"{self.label} digest {self.header!r} cannot be read"
        if self.hasher.digest() != self.parsed[1]:
            return f"{self.label} digest does not match the content ({self.header})"
        return None


def check_record(record, filename: str, offset: int) -> tuple[list[Problem], int]:
    """Read one record to its end, checking its digests; returns (problems, digests checked)."""
    headers = record.rec_headers
    rec_type = record.rec_type
    uri = headers.get_header("WARC-Target-URI")
    length = record.length or 0
    checking = rec_type != "revisit" and not headers.get_header("WARC-Segment-Number")
    block = _Digest(headers.get_header("WARC-Block-Digest") if checking else None, "block")
    payload = _Digest(headers.get_header("WARC-Payload-Digest") if checking else None, "payload")
    splitter = PayloadSplitter() if has_http_headers(rec_type, uri, length) else None
    read = 0
    while chunk := record.raw_stream.read(CHUNK):
        read += len(chunk)
        if block.hasher:
            block.hasher.update(chunk)
        if payload.hasher:
            if splitter is None or splitter.done:
                payload.hasher.update(chunk)
            else:
                start = splitter.feed(chunk)
                if start is not None:
                    payload.hasher.update(chunk[start:])
    problems = []
    record_id = headers.get_header("WARC-Record-ID")
    if read < length:
        problems.append(Problem(
            f"record is cut short: {read} of {length} bytes", filename, offset, record_id, uri
        ))
    for digest in (block, payload):
        message = digest.problem()
        if message:
            problems.append(Problem(message, filename, offset, record_id, uri))
    return problems, sum(1 for d in (block, payload) if d.header)


def check_warc(stream: BinaryIO, filename: str) -> WarcResult:
    """Check every record of a WARC (plain or gzip) read from `stream`."""
    result = WarcResult(filename)
    iterator = ArchiveIterator(stream, no_record_parse=True)
    try:
        for record in iterator:
            offset = iterator.offset
            problems, checked = check_record(record, filename, offset)
            result.problems.extend(problems)
            result.digests_checked += checked
            headers = record.rec_headers
            result.records.append(RecordInfo(
                offset=iterator.get_record_offset(),
                length=iterator.get_record_length(),
                record_type=record.rec_type,
                uri=headers.get_header("WARC-Target-URI"),
                record_id=headers.get_header("WARC-Record-ID"),
                date=headers.get_header("WARC-Date"),
                payload_digest=headers.get_header("WARC-Payload-Digest"),
            ))
    except (ArchiveLoadFailed, EOFError, OSError, ValueError, zlib.error) as exc:
        result.readable = False
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result.problems.append(Problem(
            f"cannot read past this point: {message}", filename, iterator.offset
        ))
    return result
