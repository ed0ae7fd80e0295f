"""Reading what we wrote, with warcio, for tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator


def records(wacz: Path) -> list[dict]:
    """Every record of every WARC in a WACZ: type, uri, headers, raw block, payload."""
    out = []
    with zipfile.ZipFile(wacz) as zf:
        for name in sorted(n for n in zf.namelist() if n.startswith("archive/")):
            data = zf.read(name)
            for rec in ArchiveIterator(io.BytesIO(data)):
                headers = dict(rec.rec_headers.headers)
                raw = rec.raw_stream.read()
                out.append({
                    "file": name, "type": rec.rec_type, "headers": headers,
                    "uri": rec.rec_headers.get_header("WARC-Target-URI"),
                    "http": rec.http_headers, "payload": raw,
                })
    return out


def member(wacz: Path, name: str) -> bytes:
    with zipfile.ZipFile(wacz) as zf:
        return zf.read(name)


def pages(wacz: Path) -> list[dict]:
    lines = member(wacz, "pages/pages.jsonl").decode().splitlines()
    return [json.loads(line) for line in lines[1:]]
