"""Seal a capture's container into a WACZ 1.1.1 file.

Layout (FACTS.md): archive/*.warc.gz (already in the container, written by the
capture), the CDXJ index in blocks (indexes/index.cdx.gz and indexes/index.idx,
archive.warc.zipnum), pages/pages.jsonl, our own evidence files two levels
deep, datapackage.json listing every one of them with size and SHA-256, and
datapackage-digest.json with the hash of datapackage.json and its signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from archive import SOFTWARE, utctime
from archive.hashing import sha256_prefixed
from archive.wacz.zipwriter import ContainerWriter
from archive.seal.sign import Signer
from archive.warc.zipnum import write_zipnum
from archive.wacz.names import DATAPACKAGE, DIGEST, IDX, INDEX, PAGES

WACZ_VERSION = "1.1.1"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


@dataclass
class SealInput:
    capture_id: str
    index_lines: list[str]
    pages: list[dict]
    evidence: dict[str, bytes] = field(default_factory=dict)   # path -> bytes
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


def pages_jsonl(pages: list[dict]) -> bytes:
    lines = [json.dumps(PAGES_HEADER)] + [json.dumps(p, ensure_ascii=False) for p in pages]
    return ("\n".join(lines) + "\n").encode("utf-8")


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
    index, idx = write_zipnum(inp.index_lines)
    for path, data in [
        (INDEX, index),
        (IDX, idx),
        (PAGES, pages_jsonl(inp.pages)),
        *sorted(inp.evidence.items()),
    ]:
        container.add_bytes(path, data)
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
