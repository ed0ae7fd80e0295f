"""What `archive verify` was asked to check: a file, a capture id in a store, or a
store address, resolved to a seekable reader, its size and a name to show.

Anything that can hand out a seekable binary reader plugs in here: a local file, a
store's capture (LocalStore or S3Store `open_capture`), an s3:// object through
archive.store.address.open_capture_target (ranged reads, never the whole object at once).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable

from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.verify.model import CannotCheck

GZIP_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"


@dataclass
class Source:
    name: str                        # shown in reports
    size: int
    open: Callable[[], BinaryIO]     # a new seekable reader at offset 0
    path: str | None = None          # a local path, when there is one


def _size_of(fh: BinaryIO) -> int:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    return size


def local_source(path: str) -> Source:
    try:
        if os.path.isdir(path):
            raise CannotCheck(f"{path} is a directory, not a file to verify")
        size = os.path.getsize(path)
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise CannotCheck(f"{path}: no such file") from None
    except OSError as exc:
        raise CannotCheck(f"{path}: {exc.strerror}") from None
    return Source(path, size, lambda: open(path, "rb"), path)


def _store_source(address: str | None, capture_id: str, endpoint_url: str | None = None) -> Source:
    from archive.store.address import StoreOptions, open_store

    try:
        store = open_store(address, StoreOptions(endpoint_url=endpoint_url))
        with store.open_capture(capture_id) as fh:
            size = _size_of(fh)
    except ArchiveError as exc:
        raise CannotCheck(str(exc)) from None
    return Source(f"{capture_id} in {store.address}", size, lambda: store.open_capture(capture_id))


def _s3_source(address: str, endpoint_url: str | None) -> Source:
    from archive.store.address import open_capture_target

    def opener():
        return open_capture_target(address, endpoint_url)
    try:
        with opener() as reader:
            size = reader.size
    except ArchiveError as exc:
        raise CannotCheck(str(exc)) from None
    return Source(address, size, opener)


def resolve(target: str, store: str | None = None, endpoint_url: str | None = None) -> Source:
    """A Source for a path, an s3:// address, or a capture id (in `store`, or the
    default store)."""
    if target.startswith("s3://"):
        return _s3_source(target, endpoint_url)
    if os.path.exists(target) or os.sep in target or target.endswith((".wacz", ".warc", ".gz")):
        return local_source(target)
    if is_capture_id(target):
        return _store_source(store, target, endpoint_url)
    raise CannotCheck(f"{target}: no such file, and not a capture id")


def _other_gzip(source: Source) -> bool:
    """A gzip file that plainly holds something else than WARC records (a .csv.gz, a
    .tar.gz): its start inflates cleanly to other bytes. Damage counts as WARC (judged)."""
    with source.open() as fh:
        start = fh.read(1 << 16)
    try:
        text = zlib.decompressobj(31).decompress(start, 64)
    except zlib.error:
        return False
    return len(text) >= 5 and not text.lstrip(b"\r\n").startswith(b"WARC/")


def sniff(source: Source) -> str:
    """'wacz', 'warc' or 'file', from the first bytes."""
    with source.open() as fh:
        head = fh.read(8)
        fh.seek(max(0, source.size - (1 << 16)))
        tail = fh.read()
    if head.startswith(ZIP_MAGIC):
        return "wacz"
    # before the end record: an uncompressed WARC may end with a captured zip (or .docx)
    if head.startswith(b"WARC/") or head.startswith(GZIP_MAGIC) and not _other_gzip(source):
        return "warc"
    # a zip's end record is near its end: a WACZ whose first bytes were damaged is a WACZ
    if b"PK\x05\x06" in tail:
        return "wacz"
    return "file"
