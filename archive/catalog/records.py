"""The pages of a capture and the records that hold them, found through its CDXJ index and
read by offset: for the catalog (a stored WACZ) and for sealing (pages.jsonl's `text`,
from the container being written). Nothing here is evidence: a record that cannot be
read or decoded simply gives no text (`archive verify` is what judges records)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

from archive.catalog.text import MAX_BODY, PageText, extract_text
from archive.wacz.zipreader import Container, Member
from archive.reader.decode import DecodeError, PayloadDecoder
from archive.reader.extract import UNREADABLE, record_stream
from archive.reader.location import RecordLocation
from archive.reader.warcioreader import bounded_iterator
from archive.warc.cdxj import parse_cdxj_line
from archive.warc import urns

CONTENT = ("response", "resource", "revisit")
MEDIA = ("image/", "audio/", "video/")


@dataclass(frozen=True)
class IndexedRecord:
    url: str
    time: str              # 14 digits
    filename: str
    offset: int
    length: int
    record_type: str
    mime: str | None
    status: int | None
    digest: str | None


def _int(value) -> int | None:
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def _streamed_records(lines: Iterable[str]) -> Iterator[IndexedRecord]:
    for line in lines:
        try:
            _, stamp, fields = parse_cdxj_line(line)
        except ValueError:
            continue
        kind = fields.get("recordType", "response")
        offset, length = _int(fields.get("offset")), _int(fields.get("length"))
        if kind in CONTENT and isinstance(fields.get("url"), str) and offset is not None:
            yield IndexedRecord(
                fields["url"], stamp[:14], str(fields.get("filename") or ""), offset, length or 0, kind,
                fields.get("mime") if isinstance(fields.get("mime"), str) else None,
                _int(fields.get("status")), fields.get("digest") if isinstance(fields.get("digest"), str) else None)


class SpilledIndex:
    """The content records of a capture's index, kept in a temporary database on disk
    (SQLite's own, removed when closed): a capture of 1,000,000 pages is looked up page by
    page in flat memory."""

    FIELDS = ("url", "time", "filename", "offset", "length", "record_type", "mime", "status", "digest")

    def __init__(self, lines: Iterable[str]) -> None:
        self.db = sqlite3.connect("")       # "": a private database in a temporary file
        self.db.execute(f"CREATE TABLE r (seq INTEGER PRIMARY KEY, {', '.join(self.FIELDS)})")
        batch: list[IndexedRecord] = []
        for record in _streamed_records(lines):
            batch.append(record)
            if len(batch) >= 10_000:
                self._insert(batch)
                batch = []
        self._insert(batch)
        self.db.execute("CREATE INDEX r_by_url ON r (url, time, seq)")

    def _insert(self, batch: list[IndexedRecord]) -> None:
        self.db.executemany(f"INSERT INTO r ({', '.join(self.FIELDS)}) VALUES ({', '.join('?' * len(self.FIELDS))})",
                            [tuple(getattr(r, f) for f in self.FIELDS) for r in batch])

    def first(self, url: str) -> IndexedRecord | None:
        """The URL's earliest content record (of equal times, the first listed)."""
        row = self.db.execute(f"SELECT {', '.join(self.FIELDS)} FROM r WHERE url = ? ORDER BY time, seq LIMIT 1",
                              (url,)).fetchone()
        return IndexedRecord(*row) if row else None

    def media(self) -> Iterator[IndexedRecord]:
        """The records of images, audio and video; a media file stored as a revisit of the
        response holding its bytes (urn:media...) with that response's length, the size of
        what it stands for."""
        fields = [f"r.{f}" for f in self.FIELDS]
        fields[self.FIELDS.index("length")] = (
            "CASE WHEN r.record_type = 'revisit' AND substr(r.url, 1, 9) = 'urn:media' THEN coalesce(("
            "SELECT o.length FROM r o WHERE o.digest = r.digest AND o.record_type = 'response' "
            "ORDER BY o.seq LIMIT 1), r.length) ELSE r.length END")
        for row in self.db.execute(f"SELECT {', '.join(fields)} FROM r WHERE substr(r.mime, 1, 6) IN "
                                   f"({', '.join('?' * len(MEDIA))}) ORDER BY r.seq", MEDIA):
            yield IndexedRecord(*row)

    def close(self) -> None:
        self.db.close()



def writer_container(members) -> Container:
    """A Container over the WARC members a ContainerWriter has finished (for sealing)."""
    return Container([Member(m.entry.name, m.entry.size, m.entry.crc, m.entry.data_offset)
                      for m in members], canonical=True)


def record_text(fh: BinaryIO, container: Container, record: IndexedRecord) -> PageText | None:
    """The text of the record at an index entry; None: a revisit (its text is its
    original's), a type without text, or content that cannot be read or decoded."""
    try:
        stream = record_stream(fh, container, RecordLocation(record.filename, record.offset, record.length))
        warc = next(bounded_iterator(stream))
        if warc.rec_type == "revisit":
            return None
        headers = warc.http_headers
        content_type = headers.get_header("Content-Type") if headers else warc.rec_headers.get_header("Content-Type")
        decoder = PayloadDecoder(headers) if headers else None
        body = bytearray()
        while len(body) <= MAX_BODY and (chunk := warc.raw_stream.read(1 << 16)):
            for piece in decoder.feed(chunk) if decoder else (chunk,):
                body += piece
        if decoder and len(body) <= MAX_BODY:
            try:
                for piece in decoder.finish():
                    body += piece
            except DecodeError:
                pass    # cut short (WARC-Truncated): what decoded is what there is
    except (DecodeError, StopIteration, *UNREADABLE, Exception):   # noqa: BLE001 - no text, never a failure
        return None
    return extract_text(bytes(body[:MAX_BODY]), content_type)


def _texts_of(fh: BinaryIO, container: Container, first: Callable[[str], IndexedRecord | None],
              pages: Iterable[dict], known: Callable[[str], bool]) -> Iterator[tuple[str, PageText | None, IndexedRecord]]:
    """(url, text, record) for each page with a content record whose text is not `known`
    already; a revisit's text is None: it is its original's."""
    for page in pages:
        url = page.get("url") if isinstance(page.get("url"), str) else None
        # a browser capture's rendered DOM holds the text scripts wrote, which the HTML as
        # sent may not
        record = first(urns.DOM + url) or first(url) if url else None
        if record is None or known(url):
            continue
        yield url, None if record.record_type == "revisit" else record_text(fh, container, record), record


def page_texts(fh: BinaryIO, container: Container, first: Callable[[str], IndexedRecord | None],
               pages: list[dict]) -> dict[str, PageText]:
    """url -> text of each page that has one (`first`: a URL's earliest content record); a
    revisit takes the text of a page among `pages` with the same payload digest."""
    texts: dict[str, PageText] = {}
    by_digest: dict[str, PageText] = {}
    revisits: list[IndexedRecord] = []
    for url, text, record in _texts_of(fh, container, first, pages, texts.__contains__):
        if record.record_type == "revisit":
            revisits.append(record)
        elif text is not None:
            texts[url] = text
            if record.digest:
                by_digest.setdefault(record.digest, text)
    for record in revisits:
        if record.digest in by_digest:
            texts[record.url.removeprefix(urns.DOM)] = by_digest[record.digest]
    return texts


class SpilledTexts:
    """page_texts for a capture of any size: url -> searchable text of each page, kept in
    a temporary database on disk (SQLite's own, removed when closed) instead of memory.
    Answers what page_texts answers, revisits included."""

    BATCH = 1000

    def __init__(self, fh: BinaryIO, container: Container, first: Callable[[str], IndexedRecord | None],
                 pages: Iterable[dict]) -> None:
        self.db = sqlite3.connect("")       # "": a private database in a temporary file
        self.db.executescript("CREATE TABLE t (url TEXT PRIMARY KEY, text TEXT);"
                              "CREATE TABLE d (digest TEXT PRIMARY KEY, text TEXT);"
                              "CREATE TABLE v (url TEXT, digest TEXT);")
        texts, digests, revisits = [], [], []
        # a URL listed twice is read twice (rare); its first text is kept, as page_texts keeps
        # it, by the table's key: a set of every URL would grow with the capture
        for url, text, record in _texts_of(fh, container, first, pages, lambda url: False):
            if record.record_type == "revisit":
                revisits.append((record.url.removeprefix(urns.DOM), record.digest))
            elif text is not None:
                texts.append((url, text.searchable()))
                if record.digest:
                    digests.append((record.digest, text.searchable()))
            if len(texts) + len(revisits) >= self.BATCH:
                self._insert(texts, digests, revisits)
                texts, digests, revisits = [], [], []
        self._insert(texts, digests, revisits)
        # the first page of a digest gives its text to every revisit of it (as page_texts)
        self.db.execute("INSERT OR IGNORE INTO t SELECT v.url, d.text FROM v JOIN d USING (digest)")

    def _insert(self, texts: list, digests: list, revisits: list) -> None:
        self.db.executemany("INSERT OR IGNORE INTO t VALUES (?, ?)", texts)
        self.db.executemany("INSERT OR IGNORE INTO d VALUES (?, ?)", digests)
        self.db.executemany("INSERT INTO v VALUES (?, ?)", revisits)

    def get(self, url: str) -> str | None:
        """The page's searchable text (description and visible text), or None."""
        row = self.db.execute("SELECT text FROM t WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
