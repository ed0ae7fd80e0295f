"""What `archive verify` was asked to check: a file, a capture id in a store, or a
store address, resolved to a seekable reader, its size and a name to show.

Anything that can hand out a seekable binary reader plugs in here: a local file, a
store's capture (LocalStore or S3Store `open_capture`), an s3:// object through
archive.store.address.open_capture_target (ranged reads, never the whole object at once).
"""

from __future__ import annotations

import os
import stat
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable

from archive.errors import ArchiveError
from archive.files import file_identity
from archive.ids import is_capture_id
from archive.errors import CannotCheck

GZIP_MAGIC, ZIP_MAGIC = b"\x1f\x8b", b"PK\x03\x04"


@dataclass
class Source:
    name: str                        # shown in reports
    size: int
    open: Callable[[], BinaryIO]     # a new seekable reader at offset 0
    path: str | None = None          # a local path, when there is one


def _identity(fh: BinaryIO) -> object:
    """What tells the object or file opened from another put under its name since."""
    identity = getattr(fh, "identity", None)      # a RangeReader: an S3 version and ETag
    return identity if identity is not None else file_identity(os.fstat(fh.fileno()))


def pinned(name: str, open_new: Callable[[], BinaryIO], path: str | None = None) -> Source:
    """A Source whose every reader is over what was there at the first open: the
    verifier opens a target several times (to tell its kind, then to check it), and a
    verdict must be about one file, never a mix of one replaced by another in between."""
    try:
        with open_new() as fh:
            size, first = _size_of(fh), _identity(fh)
    except ArchiveError as exc:
        raise CannotCheck(str(exc)) from None

    def reopen() -> BinaryIO:
        try:
            fh = open_new()
        except ArchiveError as exc:
            raise CannotCheck(str(exc)) from None
        if _identity(fh) != first:
            fh.close()
            raise CannotCheck(f"{name} was replaced or changed while it was being checked; check it again")
        return fh
    return Source(name, size, reopen, path)


def _size_of(fh: BinaryIO) -> int:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    return size


def local_source(path: str) -> Source:
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise CannotCheck(f"{path} is a directory, not a file to verify")
        if not stat.S_ISREG(mode):
            # a pipe blocks or is used up at the first read, a device (/dev/zero) never
            # ends: verification reads its target more than once, by offset
            raise CannotCheck(f"{path} is not a regular file (a pipe or a device); save it to a file first")
        return pinned(path, lambda: open(path, "rb"), path)
    except FileNotFoundError:
        raise CannotCheck(f"{path}: no such file") from None
    except OSError as exc:
        raise CannotCheck(f"{path}: {exc.strerror}") from None


def store_source(address: str | None, capture_id: str, endpoint_url: str | None = None) -> Source:
    from archive.store.address import StoreOptions, open_existing_store

    try:
        store = open_existing_store(address, StoreOptions(endpoint_url=endpoint_url))
    except ArchiveError as exc:
        raise CannotCheck(str(exc)) from None
    return pinned(f"{capture_id} in {store.address}", lambda: store.open_capture(capture_id))


def _s3_source(address: str, endpoint_url: str | None) -> Source:
    from archive.store.address import open_capture_target

    return pinned(address, lambda: open_capture_target(address, endpoint_url))


def resolve(target: str, store: str | None = None, endpoint_url: str | None = None) -> Source:
    """A Source for a path, an s3:// address, or a capture id (in `store`, or the
    default store)."""
    if target.startswith("s3://"):
        return _s3_source(target, endpoint_url)
    if is_capture_id(target) and os.path.lexists(target):
        # which one? The store's ledger and later tokens go with the id (store_around):
        # a file read in its place would be judged, and recorded, as the stored capture
        raise CannotCheck(f"{target} is both a file in this folder and a capture id: give ./{target} "
                          "for the file, or run from another folder for the capture in the store")
    if os.path.exists(target) or os.sep in target or target.endswith((".wacz", ".warc", ".gz")):
        return local_source(target)
    if is_capture_id(target):
        return store_source(store, target, endpoint_url)
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
