"""Upload one file to S3 write-once, hashing it in the same read pass.

The file is read once, front to back. Every byte goes into the whole-file SHA-256 (which
must equal the sealed hash before the object is completed) and into the part's SHA-256
and MD5: the SHA-256 is sent as the S3 checksum, so a service that validates checksums
refuses a corrupted transfer, and the MD5 is what the service's ETag must echo, so a
service that does not validate checksums (moto, some S3 clones) is caught by us.
Large files go up in parts, a few at a time, so memory stays flat; a multipart upload
that fails for any reason is aborted, so no partial object and no dangling upload remain.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from botocore.exceptions import ClientError

from archive.errors import ArchiveError
from archive.hashing import CHUNK
from archive.store.s3errors import translate

MiB = 1 << 20
MIN_PART = 5 * MiB            # S3's smallest part (all but the last)
MAX_PART = 5 * 1024 * MiB     # S3's largest part, and largest single PUT
MAX_PARTS = 10_000            # S3's largest part count
DEFAULT_PART_SIZE = 8 * MiB      # and the largest single PUT; memory: (concurrency + 1) parts
DEFAULT_CONCURRENCY = 8         # as boto3 (10): one Python S3 server keeps up only with several parts in flight
# ETags that are not the MD5 of the bytes: objects encrypted with KMS keys or customer keys.
OPAQUE_ETAG_ENCRYPTION = ("aws:kms", "aws:kms:dsse")


class TransferCorrupted(ArchiveError):
    """The service holds (or was about to hold) bytes other than the ones we sent."""


@dataclass(frozen=True)
class Transfer:
    """How a file goes up: single PUT up to `part_size`, parts of that size above it."""
    part_size: int = DEFAULT_PART_SIZE
    concurrency: int = DEFAULT_CONCURRENCY

    def part_size_for(self, size: int) -> int:
        """The part size for a file of `size` bytes (grown to stay under 10,000 parts)."""
        needed = -(-size // MAX_PARTS)
        return max(self.part_size, MIN_PART, -(-needed // MiB) * MiB)


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str            # hex SHA-256 of the whole file as read
    checksum: str          # the S3 SHA-256 checksum we sent (composite for multipart)
    md5_etag: str          # the ETag a service that uses MD5 ETags must report
    etag: str              # the ETag the service answered
    version_id: str | None
    parts: int             # 0 for a single PUT


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def etag_is_md5(response: dict) -> bool:
    """Whether the service's ETag for this object is the MD5 of its bytes."""
    return (response.get("ServerSideEncryption") not in OPAQUE_ETAG_ENCRYPTION
            and not response.get("SSECustomerAlgorithm"))


def version_of(response: dict) -> str | None:
    """The object version a response names; None for an unversioned bucket ("null")."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else version


def clean_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def upload_file(
    client,
    bucket: str,
    key: str,
    path: Path,
    expected_sha256: str,
    extra: dict,
    transfer: Transfer = Transfer(),
    progress: Callable[[int, int], None] | None = None,
) -> Uploaded:
    """Create `key` from the file at `path`, refusing to replace an existing object.

    `expected_sha256` is the hash the file was sealed with: if what is read differs, no
    object is created. `extra` holds PutObject / CreateMultipartUpload arguments
    (Metadata, ContentType, Object Lock settings). Raises AlreadyExists when the key is
    taken (412), TransferCorrupted when the service reports a part other than we sent
    (a single PUT is checked by the caller, which compares the stored object anyway).
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        part_size = transfer.part_size_for(size)
        if size <= part_size:
            return _put_single(client, bucket, key, fh, expected_sha256, extra, progress, size)
        return _put_multipart(client, bucket, key, fh, size, part_size, transfer.concurrency,
                              expected_sha256, extra, progress)


def _check_sealed(sha256: str, expected: str, path_hint: str) -> None:
    if sha256 != expected:
        raise ArchiveError(
            f"{path_hint} changed since it was sealed (SHA-256 {sha256}, sealed {expected}); "
            "nothing was stored"
        )


def _put_single(client, bucket, key, fh, expected, extra, progress, size) -> Uploaded:
    data = fh.read()
    sha, md5 = hashlib.sha256(data), hashlib.md5(data)
    _check_sealed(sha.hexdigest(), expected, fh.name)
    response = client.put_object(
        Bucket=bucket, Key=key, Body=data, IfNoneMatch="*",
        # Content-MD5 too: S3 wants it (or an SDK checksum) for Object Lock uploads.
        ContentMD5=b64(md5.digest()), ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(sha.digest()),
        **extra,
    )
    if progress:
        progress(len(data), size)
    return Uploaded(key, len(data), sha.hexdigest(), b64(sha.digest()), md5.hexdigest(),
                    clean_etag(response.get("ETag", "")), version_of(response), 0)


@dataclass
class _Part:
    number: int
    etag: str
    sha256: bytes
    md5: bytes


def _send_part(client, bucket, key, upload_id, number: int, data: bytes) -> _Part:
    sha, md5 = hashlib.sha256(data).digest(), hashlib.md5(data).digest()
    response = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
        ContentMD5=b64(md5), ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(sha),
    )
    etag = clean_etag(response.get("ETag", ""))
    if etag_is_md5(response) and etag != md5.hex():
        raise TransferCorrupted(
            f"part {number} arrived altered: the service's ETag {etag} is not the MD5 of the "
            f"bytes sent ({md5.hex()})"
        )
    echoed = response.get("ChecksumSHA256")
    if echoed and echoed != b64(sha):
        raise TransferCorrupted(f"part {number} arrived altered: the service's SHA-256 differs")
    return _Part(number, response["ETag"], sha, md5)


def _put_multipart(client, bucket, key, fh, size, part_size, concurrency, expected, extra,
                   progress) -> Uploaded:
    created = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **extra)
    upload_id = created["UploadId"]
    try:
        whole, parts = _send_parts(client, bucket, key, upload_id, fh, size, part_size,
                                   concurrency, progress)
        _check_sealed(whole.hexdigest(), expected, fh.name)
        composite = b64(hashlib.sha256(b"".join(p.sha256 for p in parts)).digest())
        md5_etag = f"{hashlib.md5(b''.join(p.md5 for p in parts)).hexdigest()}-{len(parts)}"
        try:
            response = client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
                MultipartUpload={"Parts": [
                    {"PartNumber": p.number, "ETag": p.etag, "ChecksumSHA256": b64(p.sha256)}
                    for p in parts
                ]},
            )
        except ClientError:
            # A retried Complete whose first try went through answers 412 (the key now
            # exists) or NoSuchUpload: if the object is exactly ours, it is done.
            response = _completed_earlier(client, bucket, key, size, md5_etag, composite)
            if response is None:
                raise
            abort_upload(client, bucket, key, upload_id)    # normally gone already; never left open
    except BaseException as exc:
        note = abort_upload(client, bucket, key, upload_id)
        if not isinstance(exc, Exception):
            raise
        error = exc if isinstance(exc, ArchiveError) else translate(exc, f"uploading {key}")
        if note:
            error = type(error)(f"{error}{note}")
        raise error from exc
    return Uploaded(key, size, whole.hexdigest(), composite, md5_etag,
                    clean_etag(response.get("ETag", "")), version_of(response), len(parts))


def _completed_earlier(client, bucket, key, size, md5_etag, composite) -> dict | None:
    """The object under `key` if it is the one these parts make (size, ETag, checksum)."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError:
        return None
    checksum = head.get("ChecksumSHA256")
    same = (head.get("ContentLength") == size
            and (not etag_is_md5(head) or clean_etag(head.get("ETag", "")) == md5_etag)
            and (checksum is None or checksum.split("-")[0] == composite)
            and (etag_is_md5(head) or checksum is not None))    # at least one real check
    return head if same else None


def _send_parts(client, bucket, key, upload_id, fh, size, part_size, concurrency, progress):
    """Read the file once, front to back; parts go up `concurrency` at a time, with at
    most `concurrency + 1` parts in memory."""
    whole = hashlib.sha256()
    slots = threading.Semaphore(concurrency + 1)
    futures: list[tuple[Future, int]] = []
    reported = 0
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-part")
    try:
        number = 0
        while True:
            slots.acquire()
            if any(f.done() and f.exception() is not None for f, _ in futures):
                break
            if progress:   # from this thread, so an interrupt raised there stops the upload
                sent = sum(n for f, n in futures if f.done())
                if sent != reported:
                    reported = sent
                    progress(sent, size)
            data = _read_part(fh, part_size)
            if not data:
                break
            whole.update(data)
            number += 1
            future = pool.submit(_send_part, client, bucket, key, upload_id, number, data)
            future.add_done_callback(lambda _: slots.release())
            futures.append((future, len(data)))
            del data
    except BaseException:
        # An error or an interrupt: never start the queued parts, and wait for those in
        # flight, so that the abort which follows is final.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for future, _ in futures:
        if not future.cancelled() and future.exception() is not None:
            raise future.exception()
    parts = [f.result() for f, _ in futures]
    if fh.tell() != size:
        raise ArchiveError(f"{fh.name} changed size while it was uploaded; nothing was stored")
    if progress:
        progress(size, size)
    return whole, parts


def _read_part(fh, part_size: int) -> bytes:
    # One read of up to part_size; a regular file returns it whole unless at the end.
    data = fh.read(part_size)
    while data and len(data) < part_size:
        more = fh.read(min(CHUNK * 16, part_size - len(data)))
        if not more:
            break
        data += more
    return data


def abort_upload(client, bucket, key, upload_id) -> str:
    """Abort a multipart upload; returns a note for the error message if even that fails."""
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # noqa: BLE001 - reported with the failure that caused it
        return (f"; the unfinished multipart upload {upload_id} could not be aborted "
                f"({type(exc).__name__}): abort it by hand or with a lifecycle rule")
    return ""
