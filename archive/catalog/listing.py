"""`archive ls` and `show` from the catalog, where the store has one: an s3:// store of
100,000 captures is then listed by one query instead of a request per capture. What the
catalog says is held against the store where that is cheap (a folder store's listing):
a capture deleted by hand is reported, never listed. For an s3:// store only a catalog
given (--catalog, ARCHIVE_CATALOG: one every machine adds to) is read: the one in this
user's cache knows only what this machine added or indexed. A catalog that cannot be
read is a warning: the store itself is read then."""

from __future__ import annotations

import os

from archive.catalog.catalog import Catalog, OldCatalog
from archive.catalog.locate import CATALOG_ENV, OFF, catalog_address, exists, open_catalog
from archive.errors import ArchiveError

PAGE = 1000
LISTED = ("id", "address", "size", "sha256", "signer", "created", "seeds", "lock", "job", "pages", "verdict",
          "verified_at")


def _open(store, catalog: str | None, warnings: list[str]) -> Catalog | None:
    if getattr(store, "root", None) is None and not (catalog or os.environ.get(CATALOG_ENV)):
        return None
    address = catalog_address(store, catalog)
    if address == OFF or not exists(address):
        return None
    try:
        return open_catalog(store, catalog)[0]
    except OldCatalog:
        return None     # the store itself is read until `archive index` rebuilds it
    except ArchiveError as exc:
        warnings.append(f"{exc}; reading the store itself")
        return None


def catalog_rows(store, catalog: str | None = None) -> tuple[list[dict] | None, list[str]]:
    """(rows for `archive ls`, or None when the store is to be read instead: no catalog, an
    old or unreadable one, or a folder store holding captures the catalog has not seen;
    warnings to show)."""
    warnings: list[str] = []
    opened = _open(store, catalog, warnings)
    if opened is None:
        return None, warnings
    try:
        rows, after = [], None
        while page := opened.captures(after=after, limit=PAGE):
            rows += [{k: row[k] for k in LISTED} for row in page]
            after = page[-1]["id"]
    finally:
        opened.close()
    if getattr(store, "root", None) is not None:     # a folder: its listing costs nothing
        held = {c.capture_id for c in store.list_captures()}
        listed = {r["id"] for r in rows}
        if held - listed:
            return None, warnings
        for gone in sorted(listed - held):
            warnings.append(f"{gone} is in the catalog but not in the store (deleted by hand?): not listed; "
                            "`archive index` records that")
        rows = [r for r in rows if r["id"] in held]
    return rows, warnings


def catalog_capture(store, capture_id: str, catalog: str | None = None) -> tuple[dict | None, list[str]]:
    """(what the catalog holds about one capture, or None: not catalogued, or no catalog; warnings)."""
    warnings: list[str] = []
    opened = _open(store, catalog, warnings)
    if opened is None:
        return None, warnings
    try:
        return opened.capture(capture_id), warnings
    finally:
        opened.close()
