"""Timestamp tokens of stored captures: adding one later, finding those added later,
and writing them out for an investigator who has only openssl.

A stored capture is write-once, so a token obtained after sealing (the TSA was down,
or a second authority is wanted) is kept beside it, as the object
`timestamps/<capture id>/<n>.json` holding one `timestamps` entry (seal/timestamp.py)
plus `added`, our clock when it was stored. The token's own genTime is the TSA's: a
later token attests a later time, never the sealing time.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import decode_timestamp_response

from archive import utctime
from archive.errors import AlreadyExists, ArchiveError, NotFound, TooLarge
from archive.files import write_new_files
from archive.hashing import read_chunks
from archive.seal.timestamp import (
    MAX_RESPONSE, MAX_TOKENS, TOKEN_ERRORS, quiet_certificates, timestamp_entry, token_bytes,
)
from archive.values import parse_json
from archive.wacz.zipreader import open_zip
from archive.wacz.names import DATAPACKAGE, DIGEST

PREFIX = "timestamps"
JSON_LIMIT = 64 * 1024 * 1024
ENTRY_LIMIT = 2 * MAX_RESPONSE      # one kept token: its base64 and a few fields


@dataclass
class SealedDigest:
    datapackage: bytes      # the exact bytes every token is over
    digest: dict            # datapackage-digest.json
    wacz_sha256: str        # of the whole stored file


def read_sealed_digest(store, capture_id: str) -> SealedDigest:
    """datapackage.json and its digest from a stored capture, checked against each other."""
    with store.open_capture(capture_id) as fh:
        return sealed_digest(fh, capture_id)


def sealed_digest(fh, label: str) -> SealedDigest:
    """datapackage.json and its digest from an open WACZ (seekable), checked against each
    other; `label` names it in errors."""
    sha = hashlib.sha256()
    for chunk in read_chunks(fh):
        sha.update(chunk)
    fh.seek(0)
    try:
        with open_zip(fh) as zf:
            parts = {}
            for name in (DATAPACKAGE, DIGEST):
                if zf.getinfo(name).file_size > JSON_LIMIT:
                    raise ArchiveError(f"{label}: {name} is implausibly large")
                parts[name] = zf.read(name)
        digest = parse_json(parts[DIGEST])
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError) as exc:
        raise ArchiveError(f"{label}: cannot read its datapackage ({exc})") from None
    dp = parts[DATAPACKAGE]
    if not isinstance(digest, dict) or digest.get("hash") != "sha256:" + hashlib.sha256(dp).hexdigest():
        raise ArchiveError(f"{label}: datapackage.json does not match datapackage-digest.json; "
                           "the capture is damaged (run `archive verify`)")
    return SealedDigest(dp, digest, sha.hexdigest())


def later_tokens(store, capture_id: str) -> list[tuple[str, dict | None]]:
    """(key, entry) of every token kept beside a capture; entry None when unreadable.
    Past MAX_TOKENS objects none is read (so many are refused whole by verification)."""
    out = []
    for n, key in enumerate(store.list_objects(f"{PREFIX}/{capture_id}")):
        try:
            entry = parse_json(store.get_object(key, ENTRY_LIMIT)) if n < MAX_TOKENS else None
        except (ValueError, UnicodeDecodeError, NotFound, TooLarge):
            entry = None
        out.append((key, entry if isinstance(entry, dict) else None))
    return out


def keep_token(store, capture_id: str, entry: dict, added: str) -> str:
    """Store a token beside a capture under the next free number; returns its key."""
    n = len(list(store.list_objects(f"{PREFIX}/{capture_id}"))) + 1
    data = json.dumps({**entry, "added": added}, indent=2).encode("utf-8")
    while True:
        key = f"{PREFIX}/{capture_id}/{n}.json"
        try:
            store.put_object(key, data)
            return key
        except AlreadyExists:
            n += 1


def timestamp_stored(store, capture_id: str, urls: list[str],
                     timeout: float) -> tuple[SealedDigest, list[dict], list[str | None]]:
    """Ask every TSA for a token over a stored capture's datapackage.json and keep each
    one obtained; returns the entries and the keys they were stored under (None: none)."""
    sealed = read_sealed_digest(store, capture_id)
    held = sealed.digest.get("timestamps")
    held = (len(held) if isinstance(held, list) else 0) + len(list(store.list_objects(f"{PREFIX}/{capture_id}")))
    if held + len(urls) > MAX_TOKENS:       # verification refuses more, as a flood
        raise ArchiveError(f"{capture_id} already has {held} timestamp entries; at most {MAX_TOKENS} are kept")
    entries = [timestamp_entry(url, sealed.datapackage, timeout) for url in urls]
    keys = [keep_token(store, capture_id, e, utctime.seconds()) if e.get("token") else None
            for e in entries]
    return sealed, entries, keys


def token_certificates(der: bytes) -> list[x509.Certificate]:
    """The certificates a token carries (the TSA's, and any intermediates it sent)."""
    try:
        with quiet_certificates():
            return [x509.load_der_x509_certificate(c)
                    for c in decode_timestamp_response(der).signed_data.certificates]
    except TOKEN_ERRORS:
        return []


def export_tokens(store, capture_id: str, out_dir: Path) -> list[Path]:
    """Write the tokens of a capture (in the WACZ and beside it) as `.tsr` files, the
    certificates each carries as `.certs.pem`, and datapackage.json, the data they are
    over. Existing files are never replaced."""
    sealed = read_sealed_digest(store, capture_id)
    tokens = [e for e in sealed.digest.get("timestamps") or [] if isinstance(e, dict)]
    tokens += [e for _, e in later_tokens(store, capture_id) if e]
    found = [der for der in (token_bytes(e) for e in tokens) if der]
    if not found:
        raise NotFound(f"{capture_id} has no timestamp token (add one: archive timestamp {capture_id})")
    files = [(out_dir / f"{capture_id}.datapackage.json", sealed.datapackage)]
    for n, der in enumerate(found, 1):
        files.append((out_dir / f"{capture_id}.token{n}.tsr", der))
        certs = token_certificates(der)
        if certs:
            pem = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
            files.append((out_dir / f"{capture_id}.token{n}.certs.pem", pem))
    write_new_files(out_dir, files)
    return [path for path, _ in files]
