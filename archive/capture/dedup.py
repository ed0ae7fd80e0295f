"""Deduplication: a response whose payload was already captured (earlier in this crawl,
or in an earlier capture) is written as a `revisit` record that points at the
original instead of storing the same bytes again (WARC 1.1, identical-payload-digest).
"""

from __future__ import annotations

import gzip
import json
import threading
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from warcio.archiveiterator import ArchiveIterator

from archive.hashing import parse_digest
from archive.warc.cdxj import parse_cdxj_line

REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
INDEX_PATH = "indexes/index.cdx.gz"


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
        self._zip = zipfile.ZipFile(stream)
        self._lock = threading.Lock()
        self._where: dict = {}
        self._found: dict = {}
        digest_doc = json.loads(self._zip.read("datapackage-digest.json"))
        self.datapackage_hash = digest_doc.get("hash")
        for line in gzip.decompress(self._zip.read(INDEX_PATH)).decode("utf-8").splitlines():
            try:
                _, _, fields = parse_cdxj_line(line)
            except ValueError:
                continue
            status = str(fields.get("status", ""))
            key = _key(fields.get("digest"))
            kind = fields.get("recordType", "response")
            if kind not in ("response", "revisit") or not status.startswith("2") or not key:
                continue
            if key not in self._where or (kind == "response" and self._where[key][3] == "revisit"):
                self._where[key] = (fields["url"], fields["filename"], int(fields["offset"]), kind)

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
        name = filename if filename.startswith("archive/") else f"archive/{filename}"
        try:
            with self._zip.open(name) as member:
                member.seek(offset)
                record = next(iter(ArchiveIterator(member)))
                headers = record.rec_headers
                if headers.get_header("WARC-Target-URI") != uri or record.rec_type != kind:
                    return None
                if kind == "revisit":
                    # the original it names (in a capture before that one)
                    refers = [headers.get_header(h) for h in (
                        "WARC-Refers-To-Target-URI", "WARC-Refers-To-Date", "WARC-Refers-To")]
                    if not all(refers) or headers.get_header("WARC-Profile") != REVISIT_PROFILE:
                        return None
                    return Original(*refers)
                return Original(uri, headers.get_header("WARC-Date"),
                                headers.get_header("WARC-Record-ID"), self.label)
        except (KeyError, StopIteration, OSError, ValueError, zipfile.BadZipFile):
            return None  # an unreadable original is no original: the payload is stored


class Dedup:
    """Payload digest -> original record, for this crawl and optionally an earlier one.
    Callers hold the WARC writer's lock, so an original is registered only together
    with the record it names."""

    def __init__(self, earlier: EarlierCapture | None = None) -> None:
        self.earlier = earlier
        self._seen: dict = {}

    def lookup(self, digest: str) -> Original | None:
        key = _key(digest)
        if key in self._seen:
            return self._seen[key]
        return self.earlier.original(digest) if self.earlier else None

    def add(self, digest: str, original: Original) -> None:
        key = _key(digest)
        if key is not None:
            self._seen.setdefault(key, original)
