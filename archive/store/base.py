"""The Store protocol: where sealed captures live, write-once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from archive.ids import date_path


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


class Store(Protocol):
    address: str

    def put_capture(self, capture_id: str, wacz: Path, sha256: str, metadata: dict) -> StoredCapture:
        """Store a sealed WACZ under its id; refuses to overwrite; checks what was stored."""

    def open_capture(self, capture_id: str) -> BinaryIO:
        """A seekable binary reader over a stored capture."""

    def list_captures(self) -> Iterator[StoredCapture]:
        """Every capture in the store, oldest first."""

    def put_public_key(self, fingerprint: str, pem: bytes) -> None:
        """Publish a signer's public key under keys/<fingerprint>.pub (idempotent)."""

    # Small objects beside the captures (custody ledger entries, job locks and state).
    # Keys are relative paths like `custody/00000001.json`.
    def put_object(self, key: str, data: bytes) -> None:
        """Create an object only if the key is free; AlreadyExists otherwise (atomic)."""

    def get_object(self, key: str) -> bytes:
        """An object's bytes; NotFound when there is none."""

    def list_objects(self, prefix: str) -> Iterator[str]:
        """Keys under a prefix, sorted."""

    def delete_object(self, key: str) -> None:
        """Remove an object (locks only: captures are never deleted through this)."""
