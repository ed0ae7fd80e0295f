"""Seal a capture's container into a WACZ 1.1.1 file.

Layout (FACTS.md): archive/*.warc.gz (already in the container, written by the
capture), the CDXJ index in blocks (indexes/index.cdx.gz and indexes/index.idx,
archive.warc.zipnum), pages/pages.jsonl, our own evidence files two levels
deep, datapackage.json listing every one of them with size and SHA-256, and
datapackage-digest.json with the hash of datapackage.json and its signature.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from archive import SOFTWARE, utctime
from archive.hashing import sha256_prefixed
from archive.wacz.zipwriter import ContainerWriter
from archive.seal.sign import Signer
from archive.warc.zipnum import write_zipnum_to
from archive.wacz.names import DATAPACKAGE, DIGEST, IDX, INDEX, PAGES

WACZ_VERSION = "1.1.1"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


@dataclass
class SealInput:
    capture_id: str
    # Any iterable (a capture's may be sorted on disk and read back: archive.capture.spill);
    # the pages are read once, front to back, never held whole.
    index_lines: Iterable[str]
    pages: Iterable[dict]
    # path -> bytes, or an iterable of byte chunks written as they come (json_chunks)
    evidence: dict[str, bytes | Iterable[bytes]] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    main_page_url: str | None = None
    main_page_date: str | None = None
    # Asks TSAs for tokens over the datapackage.json bytes (seal/timestamp.py); the
    # entries go in the `timestamps` list of datapackage-digest.json (FACTS.md).
    # Kept free of network code: the caller passes the function that asks.
    timestamper: Callable[[bytes], list[dict]] | None = None


@dataclass(frozen=True)
class Sealed:
    path: Path
    sha256: str
    size: int
    datapackage_hash: str
    created: str
    signer_fingerprint: str | None
    timestamps: list[dict] = field(default_factory=list)


def resource_name(path: str) -> str:
    """py-wacz accepts only lowercase letters, digits and -._/ in resource names."""
    return "".join(c if c.isalnum() or c in "-._/" else "-" for c in path.rsplit("/", 1)[-1].lower())


CHUNK = 1 << 20      # bytes of a streamed member written at once


def pages_jsonl(pages: Iterable[dict]) -> Iterator[bytes]:
    """pages/pages.jsonl in chunks: its header line, then a line a page."""
    buffer = [json.dumps(PAGES_HEADER) + "\n"]
    size = 0
    for page in pages:
        line = json.dumps(page, ensure_ascii=False) + "\n"
        buffer.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    yield "".join(buffer).encode("utf-8")


def json_chunks(value: dict, key: str, items: Iterable) -> Iterator[bytes]:
    """The bytes of `json.dumps(value, indent=2)` with `value[key]` the array of `items`,
    in chunks, without the items ever held together (a crawl's failures may be
    millions). `value` is a dict whose `key` is at its top level."""
    placeholder = f"\u0000{uuid.uuid4().hex}"     # found nowhere else in the text
    marker = json.dumps(placeholder)
    head, tail = json.dumps({**value, key: placeholder}, indent=2).split(marker)
    yield head.encode("utf-8")
    # json.dumps(indent=2) puts each item on lines of its own, two spaces deeper than
    # the key, and the closing bracket back at the key's depth
    last = head.rsplit("\n", 1)[-1]
    depth = len(last) - len(last.lstrip(" "))
    inner = "\n" + " " * (depth + 2)
    buffer, size, first = [], 0, True
    for item in items:
        text = ("[" if first else ",") + inner + json.dumps(item, indent=2).replace("\n", inner)
        first = False
        buffer.append(text)
        size += len(text)
        if size >= CHUNK:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    buffer.append("[]" if first else "\n" + " " * depth + "]")
    yield ("".join(buffer) + tail).encode("utf-8")


def _add_member(container: ContainerWriter, name: str, data: bytes | Iterable[bytes]):
    """Add a member given whole or as chunks (the chunks written as they come)."""
    if isinstance(data, bytes):
        return container.add_bytes(name, data)
    member = container.begin(name)
    for chunk in data:
        member.write(chunk)
    return container.end(durable=False)    # the seal's members: finish() syncs them all


def seal(container: ContainerWriter, inp: SealInput, signer: Signer | None) -> Sealed:
    """Complete the container (its WARC files already written) and rename it to its
    final name; signer None means unsigned. On failure the `.open` file is kept: it
    holds the captured WARC data, and a capture is never thrown away."""
    try:
        return _seal(container, inp, signer)
    except BaseException:
        container.close()
        raise


def _seal(container: ContainerWriter, inp: SealInput, signer: Signer | None) -> Sealed:
    created = utctime.seconds()
    # index.cdx.gz block by block as the sorted lines come, then its small index.idx
    member = container.begin(INDEX)
    idx = write_zipnum_to(inp.index_lines, member.write)
    container.end(durable=False)
    for path, data in [
        (IDX, idx),
        (PAGES, pages_jsonl(inp.pages)),
        *sorted(inp.evidence.items()),
    ]:
        _add_member(container, path, data)
    resources = [
        {
            "name": resource_name(m.entry.name), "path": m.entry.name,
            "hash": sha256_prefixed(m.sha256), "bytes": m.entry.size,
        }
        for m in container.members
    ]
    datapackage = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": inp.title or f"Capture {inp.capture_id}",
        "description": inp.description,
        "created": created,
        "modified": created,
        "software": SOFTWARE,
        "mainPageUrl": inp.main_page_url,
        "mainPageDate": inp.main_page_date,
        "resources": resources,
    }
    datapackage = {k: v for k, v in datapackage.items() if v is not None}
    dp_bytes = json.dumps(datapackage, indent=2, ensure_ascii=False).encode("utf-8")
    dp_hash = sha256_prefixed(container.add_bytes(DATAPACKAGE, dp_bytes).sha256)
    digest = {"path": DATAPACKAGE, "hash": dp_hash}
    if signer is not None:
        digest["signedData"] = signer.sign(dp_hash, created)
    timestamps = inp.timestamper(dp_bytes) if inp.timestamper else []
    if inp.timestamper:
        digest["timestamps"] = timestamps
    container.add_bytes(DIGEST, json.dumps(digest, indent=2).encode("utf-8"))
    sha, size = container.finish()
    return Sealed(
        container.path, sha, size, dp_hash, created,
        signer.fingerprint if signer else None, timestamps,
    )
