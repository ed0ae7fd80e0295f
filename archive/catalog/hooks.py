"""What the capture pipeline asks of the catalog: the text of each page for pages.jsonl
while sealing, and adding a capture once it is stored. Neither may fail or lose a
capture: a page whose text cannot be had has none, and a catalog that cannot be
reached is a warning (`archive index` adds the capture later)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from archive.catalog.records import SpilledIndex, SpilledTexts, writer_container
from archive.store.base import StoredCapture


def pages_with_text(open_path: Path, members, index_lines: Iterable[str], pages: Iterable[dict]) -> Iterator[dict]:
    """`pages`, in order, each with its text (description and visible text) as
    pages.jsonl's `text` field, read from the WARC members a ContainerWriter has written.
    Flat in memory whatever the capture's size: the index and the texts wait in temporary
    databases on disk, and `pages` is read twice (once for the texts, once to yield)."""
    index = texts = None
    try:
        index = SpilledIndex(index_lines)
        with open(open_path, "rb") as fh:
            texts = SpilledTexts(fh, writer_container(members), index.first, pages)
    except Exception:  # noqa: BLE001 - text is a convenience: it never stops a capture being sealed
        texts = None
    finally:
        if index is not None:
            index.close()
    try:
        for page in pages:
            text = texts.get(page.get("url")) if texts is not None and isinstance(page.get("url"), str) else None
            yield {**page, "text": text} if text else page
    finally:
        if texts is not None:
            texts.close()


def add_capture(store, stored: StoredCapture, path: Path, catalog: str | None = None) -> str | None:
    """Add a stored capture, read from `path` (its sealed local copy), to the store's
    catalog; a warning to show when that could not be done, else None."""
    from archive.catalog.indexer import add_stored
    from archive.catalog.locate import OFF, catalog_address, open_catalog

    if catalog_address(store, catalog) == OFF:
        return None
    try:
        opened, rebuilt = open_catalog(store, catalog, write=True)
        try:
            add_stored(store, opened, stored, path)
        finally:
            opened.close()
    except Exception as exc:  # noqa: BLE001 - the capture is stored: nothing here may undo that
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return (f"capture {stored.capture_id} is stored, but was not added to the catalog ({first}); "
                f"`archive index --store {store.address}` adds it")
    return f"{rebuilt}; `archive index --store {store.address}` adds the other captures" if rebuilt else None
