"""The staging area of a shared crawl: where workers put their WARC files for the
coordinator, under `staging/<capture id>/` in the crawl's own store (a folder, or a
prefix in the same bucket). Files are streamed both ways (never read whole into
memory) and written once; the coordinator checks each against the SHA-256 its worker
handed over before it uses it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import BinaryIO

from archive.errors import AlreadyExists, ArchiveError, NotFound
from archive.hashing import CHUNK
from archive.store.local import LocalStore, _copy
from archive.store.s3 import S3Store
from archive.store.s3errors import s3_errors
from archive.store.s3upload import b64

STAGING = "staging"


def staging_prefix(capture_id: str) -> str:
    return f"{STAGING}/{capture_id}"


def put_staged(store, key: str, path: Path, sha256: str) -> None:
    """Put the file at `path` under `key`, once; ArchiveError when it arrives altered."""
    if isinstance(store, LocalStore):
        target = store._object_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            digest, _ = _copy(path, target)
        except FileExistsError:
            raise AlreadyExists(f"{key} already exists in {store.root}") from None
        if digest != sha256:
            raise ArchiveError(f"{path} changed while it was staged")
        return
    if isinstance(store, S3Store):
        md5 = hashlib.md5()
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
        full = store.location.key(key)
        with s3_errors(store.location.url(full)), open(path, "rb") as fh:
            # One PUT (up to 5 GiB; a worker hands over long before), checked by S3
            # against both hashes; Content-MD5 also satisfies buckets with Object Lock.
            store.client.put_object(
                Bucket=store.location.bucket, Key=full, Body=fh, IfNoneMatch="*",
                ContentMD5=b64(md5.digest()), ChecksumAlgorithm="SHA256",
                ChecksumSHA256=b64(bytes.fromhex(sha256)))
        return
    raise ArchiveError(f"{store.address}: this store has no staging area")


def open_staged(store, key: str) -> BinaryIO:
    """A reader over a staged file; NotFound when it is not there."""
    if isinstance(store, LocalStore):
        try:
            return open(store._object_path(key), "rb")
        except FileNotFoundError:
            raise NotFound(f"{key} is not in the staging area of {store.root}") from None
    return store.open_key(store.location.key(key))


def remove_staged(store, prefix: str) -> None:
    """Remove everything staged under `prefix` (once the sealed capture is stored)."""
    if isinstance(store, LocalStore):
        shutil.rmtree(store._object_path(prefix), ignore_errors=True)
        return
    for key in store.list_objects(prefix):
        try:
            store.delete_object(key)
        except NotFound:
            pass


def remove_one(store, key: str) -> None:
    try:
        store.delete_object(key)
    except NotFound:
        pass


def check_staging(store, capture_id: str, probe_id: str) -> None:
    """Write and remove a small probe: a worker that cannot write to the staging area is
    refused before it takes any URL."""
    key = f"{staging_prefix(capture_id)}/probe-{probe_id}"
    try:
        store.put_object(key, b"probe")
        store.delete_object(key)
    except (ArchiveError, OSError) as exc:
        raise ArchiveError(f"cannot write to the staging area of store {store.address}: {exc}") from None
