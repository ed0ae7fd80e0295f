"""Deduplication: a response whose payload was already captured (earlier in this crawl,
or in an earlier capture) is written as a `revisit` record that points at the
original instead of storing the same bytes again (WARC 1.1, identical-payload-digest).
"""

from __future__ import annotations

import json
import threading
import zipfile
import zlib
from dataclasses import dataclass
from io import BytesIO
from typing import BinaryIO, Iterator

from warcio.statusandheaders import StatusAndHeadersParser, StatusAndHeadersParserException

from archive.capture.spill import DigestMap, SpillFile
from archive.hashing import parse_digest
from archive.wacz.zipreader import member_lines, open_zip
from archive.warc.writer import WARC_VERSION_LINES
from archive.warc.cdxj import parse_cdxj_line
from archive.wacz.claims import read_claims
from archive.wacz.names import DIGEST, INDEX, WARC_PREFIX

REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
LINE_LIMIT = 1 << 20            # an index line longer than this is skipped
SMALL_LIMIT = 16 << 20          # datapackage-digest.json is a few KB
HEAD_LIMIT = 64 << 10           # an original's WARC header is read from this many bytes at most


def _index_lines(zf: zipfile.ZipFile) -> Iterator[bytes]:
    """The index's lines, streamed: an earlier capture may be large, or hostile, and the
    capture that reads it must go on in flat memory and bounded time (ValueError for a
    bomb; a line too long to be ours is skipped)."""
    return member_lines(zf, INDEX, LINE_LIMIT, skip_long=True)


@dataclass(frozen=True)
class Original:
    """The record a revisit refers to."""

    uri: str
    date: str                 # its WARC-Date
    record_id: str | None     # its WARC-Record-ID (WARC-Refers-To)
    capture: str | None = None    # the earlier capture holding it; None: this one

    def to_json(self) -> list:
        return [self.uri, self.date, self.record_id, self.capture]


def revisit_headers(original: Original, payload_digest: str) -> dict:
    """The WARC headers of a revisit record pointing at `original`."""
    return {
        "WARC-Profile": REVISIT_PROFILE,
        "WARC-Refers-To-Target-URI": original.uri,
        "WARC-Refers-To-Date": original.date,
        "WARC-Refers-To": original.record_id,
        "WARC-Payload-Digest": payload_digest,
    }


def _key(digest: str | None):
    parsed = parse_digest(digest) if digest else None
    return parsed  # (algorithm, raw bytes): base32 and hex spellings compare equal


def _entry(line: bytes) -> tuple | None:
    """(payload key, (url, filename, offset, kind)) of a 2xx response or revisit line of
    an earlier capture's index; None for any other line, or one not well formed."""
    try:
        _, _, fields = parse_cdxj_line(line.decode("utf-8").rstrip("\r\n"))
        kind = fields.get("recordType", "response")
        if kind not in ("response", "revisit") or not str(fields.get("status", "")).startswith("2"):
            return None
        key = _key(fields.get("digest"))
        url, filename, offset = fields["url"], fields["filename"], int(fields["offset"])
    except (ValueError, KeyError, TypeError, AttributeError):    # UnicodeDecodeError too
        return None
    if not key or not isinstance(url, str) or not isinstance(filename, str) or offset < 0:
        return None
    return key, (url, filename, offset, kind)


class EarlierCapture:
    """The 2xx payloads of an earlier sealed capture (a WACZ), found by payload digest
    through its index; a record's exact date and id are read from the WARC on first use.

    A revisit in the earlier capture counts too: it leads to the original it names, so a
    payload unchanged over many captures stays one stored copy (a chain of revisits all
    pointing at it), not a full copy every other capture.
    """

    def __init__(self, stream: BinaryIO, label: str) -> None:
        self.label = label
        self._stream = stream
        self._zip = open_zip(stream)
        self._lock = threading.Lock()
        self._where: dict = {}
        self._found: dict = {}
        self.datapackage_hash = read_claims(self._zip, required=(DIGEST,), optional=(), limit=SMALL_LIMIT).datapackage_hash
        for line in _index_lines(self._zip):
            entry = _entry(line)
            if entry is None:
                continue
            key, where = entry
            if key not in self._where or (where[3] == "response" and self._where[key][3] == "revisit"):
                self._where[key] = where

    def __len__(self) -> int:
        return len(self._where)

    def close(self) -> None:
        """Let go of the earlier capture's file (the crawl that used it is over)."""
        self._zip.close()
        self._stream.close()

    def original(self, digest: str) -> Original | None:
        key = _key(digest)
        if key not in self._where:
            return None
        with self._lock:
            if key not in self._found:
                self._found[key] = self._read(*self._where[key])
            return self._found[key]

    def _read(self, uri: str, filename: str, offset: int, kind: str) -> Original | None:
        name = filename if filename.startswith(WARC_PREFIX) else f"{WARC_PREFIX}{filename}"
        try:
            headers = self._headers(name, offset)
        except (KeyError, OSError, ValueError, EOFError, zlib.error, NotImplementedError,
                zipfile.BadZipFile, StatusAndHeadersParserException):
            headers = None
        if headers is None or headers.get_header("WARC-Target-URI") != uri \
                or headers.get_header("WARC-Type") != kind:
            return None  # an unreadable original is no original: the payload is stored
        if kind == "revisit":
            # the original it names (in a capture before that one)
            refers = [headers.get_header(h) for h in (
                "WARC-Refers-To-Target-URI", "WARC-Refers-To-Date", "WARC-Refers-To")]
            if not all(refers) or headers.get_header("WARC-Profile") != REVISIT_PROFILE:
                return None
            return Original(*refers)
        return Original(uri, headers.get_header("WARC-Date"), headers.get_header("WARC-Record-ID"), self.label)

    def _headers(self, name: str, offset: int):
        """The WARC header of the record at `offset` of WARC file `name`, read from at most
        HEAD_LIMIT bytes (None when it is longer)."""
        with self._zip.open(name) as member:
            member.seek(offset)
            head = member.read(HEAD_LIMIT)
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, HEAD_LIMIT)
        end = head.find(b"\r\n\r\n")
        if end < 0:
            return None
        return StatusAndHeadersParser(list(WARC_VERSION_LINES)).parse(BytesIO(head[: end + 4]))


class Dedup:
    """Payload digest -> original record, for this crawl and optionally an earlier one.
    Callers hold the WARC writer's lock, so an original is registered only together
    with the record it names."""

    def __init__(self, earlier: EarlierCapture | None = None, spill: SpillFile | None = None) -> None:
        """`spill`: where digests beyond the crawl's memory bound go (a crawl of millions)."""
        self.earlier = earlier
        self._seen = DigestMap(spill, encode=lambda o: json.dumps(o.to_json()),
                               decode=lambda text: Original(*json.loads(text)))

    def lookup(self, digest: str) -> Original | None:
        key = _key(digest)
        found = self._seen.get(key) if key is not None else None
        if found is not None:
            return found
        return self.earlier.original(digest) if self.earlier else None

    def add(self, digest: str, original: Original) -> None:
        key = _key(digest)
        if key is not None:
            self._seen.setdefault(key, original)
