"""Store addresses: a folder path (default ./archive-store) or s3://bucket/prefix."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from archive.errors import ArchiveError, NotAStore, NotFound
from archive.files import file_identity
from archive.store.local import LocalStore
from archive.store.rangeread import RangeReader
from archive.ids import is_capture_id
from archive.store.s3 import (
    CAPTURE_KEY, Retention, S3Location, S3Store, is_s3_address, parse_s3_address, parse_s3_object,
)
from archive.store.s3upload import MAX_PART, MIN_PART, MiB, Transfer

DEFAULT_STORE = "archive-store"
STORE_ENV = "ARCHIVE_STORE"
PART_SIZE_ENV = "ARCHIVE_S3_PART_SIZE"     # MiB per multipart part (tuning; default 8)


@dataclass(frozen=True)
class StoreOptions:
    endpoint_url: str | None = None           # otherwise AWS_ENDPOINT_URL or the AWS default
    retention: Retention = field(default_factory=Retention)
    progress: Callable[[int, int], None] | None = None   # upload progress (bytes sent, total)


def default_address() -> str:
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def _transfer() -> Transfer:
    value = os.environ.get(PART_SIZE_ENV)
    if not value:
        return Transfer()
    try:
        mib = int(value)
    except ValueError:
        mib = None
    # S3's own bounds: no part under 5 MiB (but the last), no part or single PUT over 5 GiB
    if mib is None or not MIN_PART // MiB <= mib <= MAX_PART // MiB:
        raise ArchiveError(f"{PART_SIZE_ENV} must be a whole number of MiB from "
                           f"{MIN_PART // MiB} to {MAX_PART // MiB}, not {value!r}")
    return Transfer(part_size=mib * MiB)


def open_store(address: str | None = None, options: StoreOptions | None = None, check: bool = True):
    """The Store for an address; an S3 store is checked (bucket, credentials, Object Lock
    when retention is asked for) unless `check` is False."""
    address = address or default_address()
    options = options or StoreOptions()
    if is_s3_address(address):
        store = S3Store(parse_s3_address(address), endpoint_url=options.endpoint_url,
                        retention=options.retention, transfer=_transfer(), progress=options.progress)
        if check:
            store.check()
        return store
    if "://" in address and not address.startswith("file://"):
        raise ArchiveError(f"unsupported store address: {address} (use a folder or s3://bucket/prefix)")
    if options.retention.days or options.retention.legal_hold:
        raise ArchiveError("--retain-days and --legal-hold need an s3:// store with Object Lock")
    return LocalStore(address.removeprefix("file://"))


# What a folder store holds once anything was put in it: one of these folders.
STORE_FOLDERS = ("captures", "custody", "keys", "timestamps", "jobs")


def not_a_store(address: str) -> str | None:
    """Why the folder `address` is not a store, in the words every command uses; None
    when it is one (an s3:// address is checked by the service, when it is opened)."""
    if is_s3_address(address) or ("://" in address and not address.startswith("file://")):
        return None     # open_store says what is wrong with an address of another kind
    path = address.removeprefix("file://")
    if not os.path.exists(path):
        return f"{address} is not a store: no such folder"
    if not os.path.isdir(path):
        return f"{address} is not a store: it is a file, not a folder"
    if not any(os.path.isdir(os.path.join(path, name)) for name in STORE_FOLDERS):
        return (f"{address} is not a store: it holds none of a store's folders "
                f"({', '.join(STORE_FOLDERS)})")
    return None


def open_existing_store(address: str | None = None, options: StoreOptions | None = None):
    """The store at `address`, for commands that read one: a mistyped folder is an error
    (exit 2), never an empty store (`ls` saying "no captures", `custody verify` INTACT)."""
    address = address or default_address()
    problem = not_a_store(address)
    if problem:
        raise NotAStore(problem)
    store = open_store(address, options)
    if isinstance(store, S3Store) and not store.holds_anything():
        # a mistyped prefix is as empty as a new store: read, it is no store at all
        raise NotAStore(f"{address} is not a store: nothing is stored under it")
    return store


def locate_s3_capture(target: str, endpoint_url: str | None = None) -> tuple[S3Store, str] | None:
    """The S3 store and capture id of `s3://bucket/prefix/captures/Y/M/D/<id>.wacz` (or
    `s3://bucket/prefix/<id>`); None for anything else."""
    if not is_s3_address(target):
        return None
    location, key = parse_s3_object(target)
    match = CAPTURE_KEY.search(key)
    if not match or not is_capture_id(match.group(1)):
        return None
    prefix = key[: match.start()].rstrip("/")
    return S3Store(S3Location(location.bucket, prefix), endpoint_url=endpoint_url), match.group(1)


def open_capture_target(target: str, endpoint_url: str | None = None) -> RangeReader:
    """A seekable reader over a WACZ named by a local path or an s3:// address.

    The reader has `.size`, `.name` (for reports), `.sha256()` (the whole file's hash,
    mostly computed while it was read) and `.failure` (the first read error, if any: a
    report made from a reader with a failure is not a verdict).
    """
    if is_s3_address(target):
        location, key = parse_s3_object(target)
        return S3Store(location, endpoint_url=endpoint_url).open_key(key)
    path = target.removeprefix("file://")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound(f"{target}: no such file") from None
    except OSError as exc:
        raise ArchiveError(f"{target}: {exc.strerror}") from None
    stat = os.fstat(fd)
    if os.path.isdir(path):
        os.close(fd)
        raise ArchiveError(f"{target} is a directory, not a WACZ file")
    return RangeReader(lambda start, end: os.pread(fd, end - start, start), stat.st_size, target,
                       on_close=lambda: os.close(fd), identity=file_identity(stat))
