"""Bringing a catalog up to date with its store: the captures it has not seen are read
and added (each in one transaction, so an interrupted run resumes without doubling
anything), those the store no longer holds are marked missing (and shown nowhere), and
the last verification of each capture is taken from the custody ledger."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from archive.catalog.backends import CatalogError
from archive.catalog.catalog import Catalog
from archive.catalog.ingest import read_capture
from archive.custody.entry import VERIFIED
from archive.custody.ledger import open_ledger
from archive.errors import ArchiveError, NotFound
from archive.hashing import stream_sha256
from archive.store.base import StoredCapture


@dataclass
class IndexReport:
    catalog: str
    added: list[str] = field(default_factory=list)
    already: int = 0
    missing: list[str] = field(default_factory=list)      # in the catalog, not in the store
    returned: list[str] = field(default_factory=list)     # missing before, in the store again
    problems: list[str] = field(default_factory=list)     # captures that could not be read
    pages: int = 0
    message: str | None = None                            # the catalog was rebuilt: why


def add_stored(store, catalog: Catalog, stored: StoredCapture, path: Path | None = None) -> int | None:
    """Add a stored capture, read from the store (or from `path`, a local copy of the same
    bytes, as a capture has just before it is removed), its pages streamed in batches: how
    many pages it has, or None when the catalog holds it already."""
    with (open(path, "rb") if path else store.open_capture(stored.capture_id)) as fh:
        size = getattr(fh, "size", None) or os.fstat(fh.fileno()).st_size   # a ranged S3 reader knows its size
        if stored.sha256 is None:       # a folder store keeps no hash beside the file
            stored = replace(stored, sha256=stream_sha256(fh)[0])
            fh.seek(0)
        with read_capture(fh, size, stored) as entry:
            counted = _Counted(entry.pages)
            entry.pages = counted
            return counted.count if catalog.add(entry) else None


class _Counted:
    """An iterable that counts what is taken from it."""

    def __init__(self, items) -> None:
        self.items, self.count = items, 0

    def __iter__(self):
        for item in self.items:
            self.count += 1
            yield item


def _verdicts(store) -> dict[str, tuple[str, str]]:
    """capture id -> (verdict, time) of its last `verified` custody entry."""
    found = {}
    try:
        records = open_ledger(store).records()
    except (ArchiveError, OSError):
        return found
    for record in records:
        entry = record.entry or {}
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        if entry.get("event") == VERIFIED and isinstance(entry.get("capture"), str) \
                and isinstance(details.get("result"), str):
            found[entry["capture"]] = (details["result"], str(entry.get("time") or ""))
    return found


def index_store(store, catalog: Catalog, rebuild: bool = False,
                progress: Callable[[int, int, str], None] | None = None) -> IndexReport:
    """Add what the store holds and the catalog does not; `rebuild` starts from empty."""
    from archive.catalog.locate import store_identity

    report = IndexReport(catalog.location)
    if rebuild:
        catalog.reset(store_identity(store))
    listed = list(store.list_captures())
    known = catalog.known()
    held = {c.capture_id for c in listed}
    report.missing = sorted(c for c, since in known.items() if c not in held)
    report.returned = sorted(c for c, since in known.items() if c in held and since)
    catalog.set_missing([c for c in report.missing if known[c] is None], True)
    catalog.set_missing(report.returned, False)
    todo = [c for c in listed if c.capture_id not in known]
    report.already = len(listed) - len(todo)
    for n, stored in enumerate(todo, 1):
        if progress:
            progress(n, len(todo), stored.capture_id)
        try:
            pages = add_stored(store, catalog, stored)
        except CatalogError:
            raise           # the catalog failed, not this capture
        except ArchiveError as exc:
            report.problems.append(f"{stored.capture_id}: {exc}")
            continue
        if pages is not None:
            report.added.append(stored.capture_id)
            report.pages += pages
    if report.pages and report.pages * 2 >= catalog.counts()["pages"]:
        catalog.compact()       # most of what it holds was just added
    verdicts = _verdicts(store)
    if verdicts:
        catalog.set_verdicts({c: v for c, v in verdicts.items() if c in held})
    return report


def held_captures(store, capture_ids: set[str], missing: bool = False) -> list[str]:
    """Which of `capture_ids` the store holds (with `missing`, which it does not), each
    asked of the store (for the few a search shows, not for a whole listing)."""
    found = []
    for capture_id in sorted(capture_ids):
        try:
            store.stat_capture(capture_id)
            held = True
        except NotFound:
            held = False
        if held != missing:
            found.append(capture_id)
    return found
