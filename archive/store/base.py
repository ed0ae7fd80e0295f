"""The Store protocol: where sealed captures live, write-once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from archive.errors import AlreadyExists, ArchiveError
from archive.ids import date_path
from archive.wacz.ziplayout import safe_member_name

# S3 Object Lock on a stored capture: the modes, and the longest retention asked for (a
# century; one rule for `--retain-days`, `store init` and job files)
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
MAX_RETAIN_DAYS = 36500


def capture_key(capture_id: str) -> str:
    """`captures/YYYY/MM/DD/<id>.wacz`, relative to the store's root or prefix."""
    return f"captures/{date_path(capture_id)}/{capture_id}.wacz"


@dataclass(frozen=True)
class StoredCapture:
    capture_id: str
    address: str          # a path or s3:// address that `archive verify` accepts
    size: int
    sha256: str | None = None
    signer: str | None = None
    created: str | None = None
    seeds: tuple[str, ...] | None = None   # None: the store does not know without reading the file
    lock: str | None = None                # Object Lock retention / legal hold, when there is one
    warning: str | None = None             # what the store does not protect it from


def check_object_key(key: str) -> str:
    """A key for put_object & co: a safe relative path outside captures/ (ArchiveError if not)."""
    if key.startswith("captures/"):
        raise ArchiveError(f"{key} is a capture: captures are never overwritten or deleted")
    if not safe_member_name(key):
        raise ArchiveError(f"not a valid object key: {key!r}")
    return key


def publish_public_key(store: "Store", fingerprint: str, pem: bytes) -> None:
    """Put keys/<fingerprint>.pub once; the same key again is fine, a different one is not."""
    key = f"keys/{fingerprint}.pub"
    try:
        store.put_object(key, pem)
    except AlreadyExists:
        if store.get_object(key) != pem:
            raise ArchiveError(f"{key} holds a different key for the same fingerprint") from None


class Store(Protocol):
    address: str

    def put_capture(self, capture_id: str, wacz: Path, sha256: str, metadata: dict) -> StoredCapture:
        """Store a sealed WACZ under its id; refuses to overwrite; checks what was stored.

        `metadata`: `signer` (fingerprint or None), `seeds` (list of URLs), `created`.
        Raises ArchiveError (AlreadyExists for a taken id) and leaves `wacz` in place.
        """

    def open_capture(self, capture_id: str) -> BinaryIO:
        """A seekable binary reader over a stored capture (an id, or a key/path in the store)."""

    def stat_capture(self, capture_id: str) -> StoredCapture:
        """What the store records about one capture, without reading the file."""

    def list_captures(self, newest: int | None = None) -> Iterator[StoredCapture]:
        """Every capture in the store, oldest first (`newest`: only the last N, at a cost
        that does not grow with the store)."""

    def put_public_key(self, fingerprint: str, pem: bytes) -> None:
        """Publish a signer's public key under keys/<fingerprint>.pub (idempotent)."""

    # Small objects beside the captures (custody ledger entries, job locks and state).
    # Keys are relative paths like `custody/00000001.json`.
    def put_object(self, key: str, data: bytes) -> None:
        """Create an object only if the key is free; AlreadyExists otherwise (atomic)."""

    def get_object(self, key: str, limit: int | None = None) -> bytes:
        """An object's bytes; NotFound when there is none, TooLarge when it holds more
        than `limit` bytes (nothing more is read)."""

    def list_objects(self, prefix: str) -> Iterator[str]:
        """Keys under a prefix, sorted."""

    def last_object(self, prefix: str) -> str | None:
        """The greatest key under a prefix whose names are grouped in "/" folders of
        fixed-width numbers: a few listings, however many keys it holds."""

    def delete_object(self, key: str) -> None:
        """Remove an object (locks only: captures are never deleted through this)."""
