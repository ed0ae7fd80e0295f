"""Grep every byte a capture (or a work folder, a store) holds for secrets, in the forms a
secret could be found in: as is, URL-encoded (Python's and encodeURIComponent's, either
hex case, `+` for space), JSON-escaped, base64 at any alignment (standard and URL-safe),
hex, and the SHA-256, SHA-1 and MD5 hex of it. A WACZ is read member by member, a gzip
file (a WARC of many members) inflated, so that nothing compressed hides a secret.

Written apart from archive.capture.redaction on purpose: a form the product forgets to
look for is then still found here."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, quote_plus

SHORTEST_B64 = 12        # base64 pieces shorter than this could turn up in any binary data


def forms(secret: str) -> dict[str, bytes]:
    """Each form `secret` could take, by name."""
    raw = secret.encode("utf-8")
    found = {"as is": raw, "urlencoded": quote(secret, safe="").encode(),
             "encodeURIComponent": quote(secret, safe="-_.!~*'()").encode(),
             "form-encoded": quote_plus(secret).encode(),
             "json": json.dumps(secret)[1:-1].encode(), "hex": raw.hex().encode()}
    found["urlencoded, lower hex"] = found["urlencoded"].lower()
    for name, function in (("sha256", hashlib.sha256), ("sha1", hashlib.sha1), ("md5", hashlib.md5)):
        found[name] = function(raw).hexdigest().encode()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw)
        # the characters only the secret decides, whatever comes before or after it
        core = encoded[(pad * 8 + 5) // 6:(pad + len(raw)) * 8 // 6]
        if len(core) >= SHORTEST_B64:
            found[f"base64 at {pad}"] = core
            found[f"base64url at {pad}"] = core.translate(bytes.maketrans(b"+/", b"-_"))
    return found


def _inflated(data: bytes) -> bytes | None:
    """Every member of a gzip file, inflated (None: not gzip)."""
    if data[:2] != b"\x1f\x8b":
        return None
    out = bytearray()
    try:
        while data[:2] == b"\x1f\x8b":
            inflater = zlib.decompressobj(31)
            out += inflater.decompress(data)
            if not inflater.eof:
                break
            data = inflater.unused_data
    except zlib.error:
        pass
    return bytes(out)


def every_byte(label: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """`data`, and what it holds: each member of a zip, the inflated gzip members."""
    yield label, data
    if depth > 3:
        return
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for name in zf.namelist():
                    yield from every_byte(f"{label}!{name}", zf.read(name), depth + 1)
        except zipfile.BadZipFile:
            pass        # a container still being written: its members are read as gzip below
    inflated = _inflated(data)
    if inflated is not None:
        yield from every_byte(f"{label}(inflated)", inflated, depth + 1)
    elif b"\x1f\x8b\x08" in data[4:]:
        # gzip members inside something else (a WACZ still `.open`): from each one found
        at = data.find(b"\x1f\x8b\x08", 1)
        while at >= 0:
            piece = _inflated(data[at:])
            if piece:
                yield f"{label}@{at}(inflated)", piece
            at = data.find(b"\x1f\x8b\x08", at + 1)


def secrets_in(secrets: list[str], *paths: Path) -> list[str]:
    """Where any of `secrets` is, in any form, under `paths` (files or folders): one
    line per hit, empty when none is anywhere."""
    needles = {(secret, name): form for secret in secrets for name, form in forms(secret).items()}
    hits = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            for label, data in every_byte(str(path), path.read_bytes()):
                lowered = data.lower()
                for (secret, name), form in needles.items():
                    hay = lowered if name in ("hex", "sha256", "sha1", "md5") else data
                    at = hay.find(form.lower() if hay is lowered else form)
                    if at >= 0:
                        hits.append(f"{secret!r} ({name}) in {label}: {data[max(0, at - 60):at + 80]!r}")
    return hits
