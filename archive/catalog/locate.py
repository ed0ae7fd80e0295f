"""Which catalog goes with a store, and opening it: `--catalog` or ARCHIVE_CATALOG
(`postgresql://...` for a shared one, or a file path), else SQLite in the store folder
(a folder store) or in the user's cache folder (an s3:// store)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from archive.catalog.backends import PostgresBackend, SqliteBackend
from archive.catalog.catalog import Catalog
from archive.errors import ArchiveError

CATALOG_ENV = "ARCHIVE_CATALOG"
CATALOG_FILE = "catalog.sqlite3"
POSTGRES = ("postgresql://", "postgres://")
OFF = "off"      # --catalog off / ARCHIVE_CATALOG=off: no catalog


def store_identity(store) -> str:
    """What a catalog records as its store: an absolute folder, or the s3:// address."""
    root = getattr(store, "root", None)
    return str(Path(root).resolve()) if root is not None else store.address


def catalog_address(store, explicit: str | None = None) -> str:
    chosen = explicit or os.environ.get(CATALOG_ENV)
    if chosen:
        return chosen
    root = getattr(store, "root", None)
    if root is not None:
        return str(Path(root) / CATALOG_FILE)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(store.address.encode("utf-8")).hexdigest()[:16]
    return str(cache / "archive" / "catalogs" / f"{name}.sqlite3")


def exists(address: str) -> bool:
    """Whether there may be a catalog there (a PostgreSQL one is asked when opened)."""
    return address.startswith(POSTGRES) or Path(address.removeprefix("sqlite://")).is_file()


def open_catalog(store, explicit: str | None = None, write: bool = False,
                 fresh: bool = False) -> tuple[Catalog, str | None]:
    """The store's catalog, checked (for writing: created, or rebuilt when an older
    version made it) and a message to show when it was emptied to be rebuilt. `fresh`:
    an SQLite file is removed first (whatever it holds: a damaged file too)."""
    address = catalog_address(store, explicit)
    if address == OFF:
        raise ArchiveError(f"no catalog: it is turned off (--catalog {OFF} or {CATALOG_ENV}={OFF})")
    if address.startswith(POSTGRES):
        backend = PostgresBackend(address)
    elif "://" in address and not address.startswith("sqlite://"):
        raise ArchiveError(f"unsupported catalog {address.split('://')[0]}://... "
                           "(use postgresql://... or a file path for SQLite)")
    else:
        path = Path(address.removeprefix("sqlite://"))
        if fresh:
            for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                old.unlink(missing_ok=True)
        if not write and not path.is_file():
            raise ArchiveError(f"no catalog at {path}: `archive index --store {store.address}` builds it")
        backend = SqliteBackend(path)
    catalog = Catalog(backend, backend.address)
    try:
        message = catalog.prepare(store_identity(store), write)
    except BaseException:
        catalog.close()
        raise
    return catalog, message
