"""One WACZ read into a catalog entry: what it says about itself (datapackage.json,
evidence/capture.json), its pages with their text (pages.jsonl's `text` where sealing
wrote it, else read from the records), its media. Claims as recorded: the catalog
finds captures; `archive verify` says whether they hold."""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from archive.catalog.catalog import CaptureEntry, PageEntry
from archive.catalog.records import first_records, index_records, media_records, page_texts
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


def read_capture(fh: BinaryIO, size: int, stored: StoredCapture) -> CaptureEntry:
    """The catalog entry of the WACZ open in `fh`; ArchiveError when it cannot be read."""
    name = stored.address
    container = open_container(fh, size, name)
    try:
        with open_zip(fh, size) as zf:
            claims = read_claims(zf, optional=(DATAPACKAGE, CAPTURE))
            datapackage, evidence = claims.datapackage, claims.evidence
            pages = []
            if PAGES in zf.namelist():
                for n, line in enumerate(member_lines(zf, PAGES, LINE_LIMIT, skip_long=True)):
                    try:
                        entry = parse_json(line)
                    except ValueError:
                        continue
                    if n and isinstance(entry, dict) and isinstance(entry.get("url"), str):
                        pages.append(entry)
            lines = [line.decode("utf-8", "replace").rstrip("\n")
                     for index in zf.namelist() if is_cdx_index(index)
                     for line in member_lines(zf, index, INDEX_LINE_LIMIT, skip_long=True)]
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, RuntimeError) as exc:
        raise ArchiveError(f"{name}: cannot be read for the catalog ({exc})") from None
    records = index_records(lines)
    first = first_records(records)
    untexted = [p for p in pages if not isinstance(p.get("text"), str)]
    texts = page_texts(fh, container, lines, untexted) if untexted else {}
    entries = []
    for page in pages:
        url = page["url"]
        record = first.get(url)
        text = texts.get(url)
        entries.append(PageEntry(
            url=url, ts=text_field(page.get("ts")), status=_int(page.get("status")),
            title=(text_field(page.get("title")) or (text.title if text else None) or "")[:MAX_TITLE] or None,
            mime=media_type(record.mime) if record and record.mime else None,
            digest=record.digest if record else None, size=_int(page.get("size")),
            error=text_field(page.get("error")),
            # what a file says is held to the bounds of what we extract ourselves
            text=page["text"][:MAX_TEXT] if isinstance(page.get("text"), str) else (text.searchable() if text else None),
            revisit=bool(record and record.record_type == "revisit")))
    media = [{"url": r.url, "ts": r.time, "mime": r.mime, "status": r.status, "digest": r.digest,
              "size": r.length} for r in media_records(records)]
    seeds = _strings(evidence.get("seeds")) or list(stored.seeds or ())
    return CaptureEntry(
        id=stored.capture_id, created=text_field(datapackage.get("created")) or stored.created,
        title=text_field(datapackage.get("title")), seeds=seeds,
        signer=text_field(evidence.get("signer")) or stored.signer, sha256=stored.sha256,
        size=stored.size, job=text_field(evidence.get("job")), operator=text_field(evidence.get("operator")),
        address=stored.address, lock=stored.lock, pages=entries, media=media)
