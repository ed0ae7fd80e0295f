"""Custody ledger entries: canonical bytes, hashes, signatures.

An entry is one JSON object on one line (local file) or in one object (S3):

    {"seq": 7, "time": "2026-11-25T16:07:46.123456Z", "event": "stored",
     "capture": "<capture id>" | null, "wacz": "<sha256 hex of the WACZ>" | null,
     "actor": {"name": "alice", "key": "<key fingerprint>" | null},
     "details": {...}, "prev": "sha256:<hex of the previous entry's bytes>" | null,
     "signature": <signedData> | null}

Bytes are canonical JSON (sorted keys, no spaces, UTF-8; our values are strings,
integers, booleans and nulls only, so this is also RFC 8785's form). `prev` is the
SHA-256 of the previous entry's stored bytes (null only for entry 1), so editing,
removing, inserting or reordering an entry breaks the link after it.

`signature` is the anonymous form of the WACZ signing spec (seal/sign.py) over
`sha256:<hex>` of the canonical entry without its `signature` field, by the actor's
key. An actor without a key (an investigator who only verifies) writes
`"signature": null` and `"key": null`: the entry says plainly that it is unsigned,
and `archive custody verify` counts it as such; an entry naming a key must carry
that key's signature.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from archive import utctime
from archive.seal.sign import Signer, check_signature

CAPTURED, SEALED, STORED = "captured", "sealed", "stored"
TIMESTAMPED, TIMESTAMP_MISSING = "timestamped", "timestamp-missing"
VERIFIED, EXPORTED, RETENTION_CHANGED = "verified", "exported", "retention-changed"
UPGRADED = "upgraded"       # a plain hash chain became a verifiable log (tree and heads)
EVENTS = (CAPTURED, SEALED, STORED, TIMESTAMPED, TIMESTAMP_MISSING, VERIFIED, EXPORTED,
          RETENTION_CHANGED, UPGRADED)
FIELDS = {"seq", "time", "event", "capture", "wacz", "actor", "details", "prev", "signature"}


@dataclass(frozen=True)
class Actor:
    """Who does something to a capture: a name, and the signing key when there is one."""
    name: str
    signer: Signer | None = None

    @property
    def key(self) -> str | None:
        return self.signer.fingerprint if self.signer else None


def canonical(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def body_hash(entry: dict) -> str:
    """What the signature covers: the canonical entry without its signature."""
    return sha256_of(canonical({k: v for k, v in entry.items() if k != "signature"}))


def make_entry(seq: int, prev: str | None, event: str, actor: Actor, capture: str | None,
               wacz: str | None, details: dict) -> dict:
    """A new entry, signed when the actor has a key."""
    entry = {
        "seq": seq, "time": utctime.micros(), "event": event, "capture": capture, "wacz": wacz,
        "actor": {"name": actor.name, "key": actor.key}, "details": details, "prev": prev,
    }
    entry["signature"] = actor.signer.sign(body_hash(entry), entry["time"]) if actor.signer else None
    return entry


def signature_problem(entry: dict, trusted: dict[str, str] | None) -> str | None:
    """Why an entry's signature does not hold (None when it does, or the entry is
    honestly unsigned). `trusted` (fingerprint -> name), when given, limits the keys."""
    actor = entry.get("actor") if isinstance(entry.get("actor"), dict) else {}
    return signed_by_problem(entry, actor.get("key"), trusted)


def signed_by_problem(value: dict, key: str | None, trusted: dict[str, str] | None) -> str | None:
    """Why `value`'s `signature` (over body_hash(value)) is not a valid one by `key`
    (None when it is, or when value is honestly unsigned: no key, no signature)."""
    signed = value.get("signature")
    if signed is None:
        return f"names key {key} but carries no signature" if key else None
    check = check_signature(signed)
    if not check.valid:
        return f"signature not valid: {check.problem}"
    if signed.get("hash") != body_hash(value):
        return "content does not match its signature: altered after signing"
    if check.fingerprint != key:
        return f"signed by key {check.fingerprint}, but names key {key}"
    if trusted is not None and key not in trusted:
        return f"signed by key {key}, which is not among the keys you trust"
    return None
