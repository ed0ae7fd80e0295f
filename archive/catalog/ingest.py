"""One WACZ read into a catalog entry: what it says about itself (datapackage.json,
evidence/capture.json), its pages with their text (pages.jsonl's `text` where sealing
wrote it, else read from the records), its media. Claims as recorded: the catalog
finds captures; `archive verify` says whether they hold."""

from __future__ import annotations

import sqlite3
import zipfile
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from archive.catalog.catalog import PAGE_BATCH, CaptureEntry, PageEntry, batched
from archive.catalog.records import SpilledIndex, page_texts
from archive.catalog.text import MAX_TEXT, MAX_TITLE, media_type
from archive.errors import ArchiveError
from archive.store.base import StoredCapture
from archive.values import parse_json, text_field
from archive.wacz.zipreader import member_lines, open_container, open_zip
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, DATAPACKAGE, PAGES, is_cdx_index

LINE_LIMIT = 64 << 20       # one pages.jsonl line: its text can be long
INDEX_LINE_LIMIT = 1 << 20


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@contextmanager
def read_capture(fh: BinaryIO, size: int, stored: StoredCapture) -> Iterator[CaptureEntry]:
    """The catalog entry of the WACZ open in `fh`, its pages and media read as they are
    added (PAGE_BATCH pages at a time: memory stays flat whatever the capture holds; the
    index waits on disk); ArchiveError when it cannot be read."""
    name = stored.address
    with _readable(name):
        container = open_container(fh, size, name)
        zf = open_zip(fh, size)
    with zf:
        with _readable(name):
            claims = read_claims(zf, optional=(DATAPACKAGE, CAPTURE))
            index = SpilledIndex(line.decode("utf-8", "replace").rstrip("\n")
                                 for member in zf.namelist() if is_cdx_index(member)
                                 for line in member_lines(zf, member, INDEX_LINE_LIMIT, skip_long=True))
        try:
            datapackage, evidence = claims.datapackage, claims.evidence
            seeds = _strings(evidence.get("seeds")) or list(stored.seeds or ())
            yield CaptureEntry(
                id=stored.capture_id, created=text_field(datapackage.get("created")) or stored.created,
                title=text_field(datapackage.get("title")), seeds=seeds,
                signer=text_field(evidence.get("signer")) or stored.signer, sha256=stored.sha256,
                size=stored.size, job=text_field(evidence.get("job")), operator=text_field(evidence.get("operator")),
                address=stored.address, lock=stored.lock,
                pages=_guarded(name, _pages(fh, container, zf, index)) if PAGES in zf.namelist() else [],
                media=_guarded(name, ({"url": r.url, "ts": r.time, "mime": r.mime, "status": r.status,
                                       "digest": r.digest, "size": r.length} for r in index.media())))
        finally:
            index.close()


@contextmanager
def _readable(name: str) -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as exc:
        raise ArchiveError(f"{name}: cannot be read for the catalog ({exc})") from None


def _guarded(name: str, items: Iterator) -> Iterator:
    """`items`, a failure to read them said as for the rest of the capture."""
    with _readable(name):
        yield from items


_UNREADABLE = (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, RuntimeError, sqlite3.Error)


def _listed_pages(zf: zipfile.ZipFile) -> Iterator[dict]:
    for n, line in enumerate(member_lines(zf, PAGES, LINE_LIMIT, skip_long=True)):
        try:
            entry = parse_json(line)
        except ValueError:
            continue
        if n and isinstance(entry, dict) and isinstance(entry.get("url"), str):
            yield entry


def _pages(fh: BinaryIO, container, zf: zipfile.ZipFile, index: SpilledIndex) -> Iterator[PageEntry]:
    for pages in batched(_listed_pages(zf), PAGE_BATCH):
        untexted = [p for p in pages if not isinstance(p.get("text"), str)]
        texts = page_texts(fh, container, index.first, untexted) if untexted else {}
        for page in pages:
            url = page["url"]
            record = index.first(url)
            text = texts.get(url)
            yield PageEntry(
                url=url, ts=text_field(page.get("ts")), status=_int(page.get("status")),
                title=(text_field(page.get("title")) or (text.title if text else None) or "")[:MAX_TITLE] or None,
                mime=media_type(record.mime) if record and record.mime else None,
                digest=record.digest if record else None, size=_int(page.get("size")),
                error=text_field(page.get("error")),
                # what a file says is held to the bounds of what we extract ourselves
                text=page["text"][:MAX_TEXT] if isinstance(page.get("text"), str) else (text.searchable() if text else None),
                revisit=bool(record and record.record_type == "revisit"))
