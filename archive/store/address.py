"""Store addresses: a folder path (default ./archive-store) or s3://bucket/prefix."""

from __future__ import annotations

import os

from archive.errors import ArchiveError
from archive.store.local import LocalStore

DEFAULT_STORE = "archive-store"
STORE_ENV = "ARCHIVE_STORE"


def default_address() -> str:
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def open_store(address: str | None = None):
    """The Store for an address."""
    address = address or default_address()
    if address.startswith("s3://"):
        raise ArchiveError("s3:// stores are not available in this version")
    if "://" in address and not address.startswith("file://"):
        raise ArchiveError(f"unsupported store address: {address} (use a folder or s3://bucket/prefix)")
    return LocalStore(address.removeprefix("file://"))
