"""A store in an S3-compatible bucket: write-once objects under s3://bucket/prefix.

Endpoint and credentials come from the standard AWS chain (AWS_ENDPOINT_URL, AWS_PROFILE,
environment, instance roles) or an explicit endpoint URL; nothing here ever prints them.
Captures are created with If-None-Match: * (never replaced), carry their id, SHA-256
and signer as object metadata, get Object Lock retention when asked, and are checked
against what the service reports before they count as stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, unquote, urlsplit

from botocore.exceptions import ClientError, IncompleteReadError, ReadTimeoutError, ResponseStreamingError

from archive import utctime
from archive.errors import AlreadyExists, ArchiveError, NotFound, TooLarge
from archive.ids import is_capture_id
from archive.store.base import StoredCapture, capture_key, check_object_key, publish_public_key
from archive.store.rangeread import RangeReader
from archive.store.s3errors import error_code, redact_url, s3_errors, translate
from archive.store.s3upload import (
    Transfer, TransferCorrupted, Uploaded, abort_upload, b64, clean_etag, etag_is_md5, upload_file,
    version_of,
)

SCHEME = "s3://"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CAPTURE_KEY = re.compile(r"captures/\d{4}/\d{2}/\d{2}/([^/]+)\.wacz$")
WACZ_TYPE = "application/wacz"
METADATA_BUDGET = 1500        # S3 allows 2 KB of user metadata in all
READ_ATTEMPTS = 3
DEFAULT_ATTEMPTS = 6
HEAD_WORKERS = 8
HIDDEN_WARNING = ("hidden behind a delete marker (deleted without a version id): its version "
                  "{version} is still stored and is what is read")
ABORT_RULE = "archive-abort-unfinished-uploads"   # the lifecycle rule `store init` sets
ABORT_AFTER_DAYS = 1


# -- addresses ---------------------------------------------------------------------
@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str = ""          # no leading or trailing slash

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    def url(self, key: str = "") -> str:
        return f"{SCHEME}{self.bucket}/{key}" if key else f"{SCHEME}{self.bucket}"

    @property
    def address(self) -> str:
        return self.url(self.prefix)


def is_s3_address(address: str) -> bool:
    return address.lower().startswith(SCHEME)


def parse_s3_address(address: str) -> S3Location:
    """`s3://bucket[/prefix]` -> S3Location; ArchiveError naming what is wrong."""
    if not is_s3_address(address):
        raise ArchiveError(f"not an s3:// address: {address}")
    rest = address[len(SCHEME):]
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        # never echo what may be credentials pasted into an address
        raise ArchiveError("an s3:// address takes no user, password or port: use "
                           "s3://bucket/prefix and the AWS credential chain")
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ArchiveError(f"not a valid bucket name in {address!r} (3-63 lowercase letters, "
                           "digits, dots and hyphens)")
    prefix = prefix.strip("/")
    if prefix and (any(p in ("", ".", "..") for p in prefix.split("/"))
                   or not prefix.isascii() or not prefix.isprintable() or "\\" in prefix):
        raise ArchiveError(f"not a valid prefix in {address!r}")
    return S3Location(bucket, prefix)


def parse_s3_object(address: str) -> tuple[S3Location, str]:
    """`s3://bucket/any/key.wacz` or `s3://bucket/prefix/<capture-id>` -> (store, key)."""
    location = parse_s3_address(address)
    if not location.prefix:
        raise ArchiveError(f"{address} names a bucket, not a capture (…/<id>.wacz)")
    head, _, last = location.prefix.rpartition("/")
    if is_capture_id(last):
        store = S3Location(location.bucket, head)
        return store, store.key(capture_key(last))
    return S3Location(location.bucket), location.prefix


# -- client ------------------------------------------------------------------------
def make_client(endpoint_url: str | None = None, pool: int = 16, sign_payload: bool = True):
    """An S3 client from the standard AWS chain; retries throttling and 5xx with backoff
    (AWS_MAX_ATTEMPTS attempts in all, default 6).

    `sign_payload=False` leaves request bodies out of the signature even over plain HTTP
    (botocore already does so over HTTPS): only for a client whose bodies all carry our
    SHA-256 checksum in a signed header, which binds them as tightly, for one hash less.
    """
    # Imported here: boto3 takes a tenth of a second to load, and a capture into a local
    # store (or a command that never reaches S3) does not need it.
    import boto3
    from botocore.config import Config

    endpoint_url = check_endpoint_url(endpoint_url) if endpoint_url else None
    try:
        attempts = max(1, int(os.environ.get("AWS_MAX_ATTEMPTS") or DEFAULT_ATTEMPTS))
    except ValueError:
        raise ArchiveError("AWS_MAX_ATTEMPTS must be a whole number") from None
    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        connect_timeout=10, read_timeout=120, max_pool_connections=pool,
        s3={} if sign_payload else {"payload_signing_enabled": False},
    )
    with s3_errors(endpoint_url or "S3"):
        try:
            return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        except ValueError as exc:
            # botocore's "Invalid endpoint: URL" (from AWS_ENDPOINT_URL or a profile) would
            # echo the URL, user and password included
            raise ArchiveError(f"invalid S3 endpoint URL ({redact_url(str(exc))}): "
                               "it must look like https://host[:port]") from None


def check_endpoint_url(url: str) -> str:
    """An --endpoint-url as given, if it is http(s)://host[:port][/path] without a user or
    password (credentials come from the AWS chain, never from an argument)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ArchiveError("an S3 endpoint URL takes no user or password: credentials come "
                           "from the AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...)")
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok \
            or any(c.isspace() for c in url):
        raise ArchiveError(f"not an S3 endpoint URL: {url!r} (use http(s)://host[:port])")
    return url


# -- Object Lock -------------------------------------------------------------------
DEFAULT_LOCK_MODE = "GOVERNANCE"


@dataclass(frozen=True)
class Retention:
    """Object Lock on each capture. `mode` None: the bucket's default mode, else
    GOVERNANCE (S3Store.put_capture decides), so that a retention given without a mode
    never silently replaces a bucket's COMPLIANCE default with a weaker GOVERNANCE lock."""
    days: int | None = None
    mode: str | None = None
    legal_hold: bool = False

    def object_args(self, now: datetime | None = None) -> dict:
        args: dict = {}
        if self.days:
            now = now or datetime.now(timezone.utc)
            args["ObjectLockMode"] = self.mode or DEFAULT_LOCK_MODE
            args["ObjectLockRetainUntilDate"] = now + timedelta(days=self.days)
        if self.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        return args

    def describe(self) -> str:
        mode = self.mode or "the bucket's default mode"
        parts = [f"{mode} for {self.days} days"] if self.days else []
        parts += ["legal hold"] if self.legal_hold else []
        return ", ".join(parts) or "none"


def lock_summary(head: dict) -> str | None:
    """`COMPLIANCE until 2031-01-01T00:00:00Z, legal hold` from a HeadObject answer."""
    parts = []
    if head.get("ObjectLockMode"):
        until = head.get("ObjectLockRetainUntilDate")
        when = utctime.seconds(until) if until else "?"
        parts.append(f"{head['ObjectLockMode']} until {when}")
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        parts.append("legal hold")
    return ", ".join(parts) or None


# -- object metadata ---------------------------------------------------------------
SEED_SAFE = ":/?&=#~+,;@!$'()*[]{}"


def capture_metadata(capture_id: str, sha256: str, metadata: dict) -> dict[str, str]:
    """x-amz-meta-* of a capture: ASCII, within S3's size limit (seeds may be cut short)."""
    seeds = list(metadata.get("seeds") or [])
    meta = {
        "capture-id": capture_id, "sha256": sha256,
        "signer": metadata.get("signer") or "none",
        "created": metadata.get("created") or "", "seed-count": str(len(seeds)),
    }
    while True:
        meta["seeds"] = quote(json.dumps(seeds, separators=(",", ":")), safe=SEED_SAFE)
        if sum(len(k) + len(v) for k, v in meta.items()) <= METADATA_BUDGET or not seeds:
            return {k: v for k, v in meta.items() if v}
        seeds.pop()


def stored_from_head(location: S3Location, key: str, head: dict) -> StoredCapture:
    meta = head.get("Metadata", {})
    match = CAPTURE_KEY.search(key)
    try:
        seeds = tuple(json.loads(unquote(meta["seeds"]))) if "seeds" in meta else None
    except (ValueError, TypeError):
        seeds = None
    if seeds is not None and meta.get("seed-count", str(len(seeds))) != str(len(seeds)):
        seeds = None      # cut short to fit S3's metadata limit: only the file has them all
    signer = meta.get("signer")
    return StoredCapture(
        # the key names the capture; metadata is only what the uploader claimed
        capture_id=match.group(1) if match else meta.get("capture-id") or key,
        address=location.url(key), size=head.get("ContentLength", 0),
        sha256=meta.get("sha256"), signer=None if signer in (None, "none") else signer,
        created=meta.get("created"), seeds=seeds, lock=lock_summary(head),
    )


# -- the store -----------------------------------------------------------------------
class S3Store:
    def __init__(self, location: S3Location, client=None, endpoint_url: str | None = None,
                 retention: Retention | None = None, transfer: Transfer = Transfer(),
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.location = location
        # every body this store sends carries its SHA-256 checksum (see make_client)
        self.client = client or make_client(endpoint_url, pool=max(16, transfer.concurrency + 4),
                                            sign_payload=False)
        self.retention = retention or Retention()
        self.transfer = transfer
        self.progress = progress
        self.address = location.address

    # -- checks -------------------------------------------------------------------
    def check(self) -> None:
        """Fail early (before a crawl) on a missing bucket, bad credentials or a
        retention the bucket cannot apply."""
        what = self.location.url()
        try:
            self.client.head_bucket(Bucket=self.location.bucket)
        except ClientError as exc:
            code, status = error_code(exc)
            if status == 404 or code in ("NoSuchBucket", "404"):
                raise NotFound(f"{what}: the bucket does not exist "
                               f"(`archive store init {what}` creates one)") from None
            if status in (400, 403):
                raise ArchiveError(f"{what}: the S3 service refused access (bad credentials "
                                   f"or no permission on the bucket; HTTP {status})") from None
            raise translate(exc, what) from None
        except Exception as exc:  # noqa: BLE001 - every botocore failure, one line
            raise translate(exc, what) from None
        if self.retention.days or self.retention.legal_hold:
            if not self.object_lock_enabled():
                raise ArchiveError(
                    f"{what} has no Object Lock, so it cannot keep a retention period or legal "
                    f"hold (`archive store init` makes a bucket with it)")

    def _lock_configuration(self) -> dict:
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.location.bucket)
        except ClientError as exc:
            if error_code(exc)[0] == "ObjectLockConfigurationNotFoundError":
                return {}
            raise translate(exc, self.location.url()) from None
        return config.get("ObjectLockConfiguration", {})

    def object_lock_enabled(self) -> bool:
        return self._lock_configuration().get("ObjectLockEnabled") == "Enabled"

    def _resolve_lock_mode(self) -> None:
        """A retention without a mode takes the bucket's default mode (GOVERNANCE where
        it has none): an explicit retention replaces the bucket's default on the object."""
        if self.retention.days and self.retention.mode is None:
            rule = self._lock_configuration().get("Rule", {}).get("DefaultRetention", {})
            self.retention = replace(self.retention, mode=rule.get("Mode") or DEFAULT_LOCK_MODE)

    # -- captures -------------------------------------------------------------------
    def put_capture(self, capture_id: str, wacz: Path, sha256: str, metadata: dict) -> StoredCapture:
        key = self.location.key(capture_key(capture_id))
        what = self.location.url(key)
        with s3_errors(what):
            self._resolve_lock_mode()
        extra = {"Metadata": capture_metadata(capture_id, sha256, metadata),
                 "ContentType": WACZ_TYPE, **self.retention.object_args()}
        with s3_errors(what):
            # If-None-Match is what refuses an overwrite; looking first also spares a whole
            # upload, and protects on services that ignore the condition (racily)
            if self._exists(key):
                raise AlreadyExists(f"{what} already exists; captures are never overwritten")
            self._abort_leftovers(key)
            uploaded = upload_file(self.client, self.location.bucket, key, Path(wacz), sha256,
                                   extra, self.transfer, self.progress)
            head = self._confirm(what, uploaded)
        stored = stored_from_head(self.location, key, head)
        if version_of(head) is None and not stored.lock:
            stored = replace(stored, warning=(
                f"{self.location.url()} keeps no object versions and no Object Lock: whoever can "
                "write to it can delete this capture for good (`archive store init` makes a bucket "
                "that keeps them)"))
        return stored

    def _abort_leftovers(self, key: str) -> None:
        """Abort the unfinished multipart uploads of this very key: an earlier attempt at
        this capture killed mid-upload (kill -9 leaves them, and the service bills their
        parts until aborted). The key is the capture's own, so they can only be ours."""
        try:
            listed = self.client.list_multipart_uploads(Bucket=self.location.bucket, Prefix=key)
        except ClientError:
            return      # not allowed to list: the bucket's lifecycle rule is the safety net
        for upload in listed.get("Uploads", []):
            if upload.get("Key") == key:
                abort_upload(self.client, self.location.bucket, key, upload["UploadId"])

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc)[1] == 404:
                return False
            raise
        return True

    def _confirm(self, what: str, up: Uploaded) -> dict:
        """Compare what the service now holds under the key with what we sent."""
        head = self.client.head_object(Bucket=self.location.bucket, Key=up.key, ChecksumMode="ENABLED")
        etag = clean_etag(head.get("ETag", ""))
        ours = version_of(head) == up.version_id and etag == up.etag
        problems = []
        if not ours:
            problems.append("the object was replaced or altered after the upload")
        if head.get("ContentLength") != up.size:
            problems.append(f"it is {head.get('ContentLength')} bytes, we sent {up.size}")
        if etag_is_md5(head) and etag != up.md5_etag:
            problems.append(f"its ETag {etag} is not the MD5 of the bytes sent ({up.md5_etag}): "
                            "the transfer was corrupted")
        checksum = head.get("ChecksumSHA256")
        if checksum and checksum.split("-")[0] != up.checksum:
            problems.append("its SHA-256 checksum is not the one of the bytes sent")
        if head.get("Metadata", {}).get("sha256") != up.sha256:
            problems.append("its recorded SHA-256 is not the sealed one")
        if ours and not problems and not etag_is_md5(head) and not checksum:
            # the service reports nothing to compare the bytes with (an encrypted object's
            # ETag, no checksum): only reading them back tells a corrupted transfer
            read = self._read_back_sha256(up)
            if read != up.sha256:
                problems.append(f"its bytes, read back, have SHA-256 {read}, not the sealed "
                                f"{up.sha256}: the transfer was corrupted")
        if self.retention.days and not head.get("ObjectLockRetainUntilDate"):
            problems.append("the service did not apply the Object Lock retention asked for")
        elif self.retention.days and head.get("ObjectLockMode") != self.retention.mode:
            problems.append(f"the service applied Object Lock mode {head.get('ObjectLockMode')}, "
                            f"not the {self.retention.mode} asked for")
        if self.retention.legal_hold and head.get("ObjectLockLegalHoldStatus") != "ON":
            problems.append("the service did not apply the legal hold asked for")
        if not problems:
            return head
        note = self._remove_bad_upload(up) if ours else " It was left in place as found."
        raise TransferCorrupted(f"{what} does not match the sealed file: {'; '.join(problems)}.{note}")

    def _read_back_sha256(self, up: Uploaded) -> str:
        """The SHA-256 of the object version we just wrote, read back by ranged GETs."""
        with self.open_key(up.key, up.version_id) as reader:
            return reader.sha256()

    def _remove_bad_upload(self, up: Uploaded) -> str:
        """Delete the version we just wrote (its bytes are wrong); say what happened."""
        args = {"Bucket": self.location.bucket, "Key": up.key}
        if up.version_id:
            args["VersionId"] = up.version_id
        try:
            self.client.delete_object(**args)
        except Exception as exc:  # noqa: BLE001 - the error we raise says it stayed
            return (f" The bad object could not be removed ({translate(exc, 'delete')}); "
                    "it will fail verification.")
        return " The bad object was removed."

    def _key_of(self, capture_id_or_key: str) -> str:
        if is_capture_id(capture_id_or_key):
            return self.location.key(capture_key(capture_id_or_key))
        if is_s3_address(capture_id_or_key):
            location, key = parse_s3_object(capture_id_or_key)
            if location.bucket != self.location.bucket:
                raise ArchiveError(f"{capture_id_or_key} is not in {self.address}")
            return key
        return self.location.key(capture_id_or_key.lstrip("/"))

    def open_capture(self, capture_id: str) -> RangeReader:
        return self.open_key(self._key_of(capture_id))

    def open_key(self, key: str, version_id: str | None = None) -> RangeReader:
        """A seekable reader over one object version (the latest, unless `version_id`
        names one), by ranged GETs. An object hidden behind a delete marker (deleted
        without a version id, which Object Lock allows) is read at its newest version,
        and its name says so."""
        what = self.location.url(key)
        try:
            with s3_errors(what):
                head = self.client.head_object(Bucket=self.location.bucket, Key=key,
                                               **({"VersionId": version_id} if version_id else {}))
        except NotFound as missing:
            version_id = None if version_id else self._hidden_version_or_none(key)
            if not version_id:
                raise missing from None
            what = f"{what} (hidden behind a delete marker: read its version {version_id})"
            with s3_errors(what):
                head = self.client.head_object(Bucket=self.location.bucket, Key=key, VersionId=version_id)
        pinned = {"Bucket": self.location.bucket, "Key": key, "IfMatch": head["ETag"]}
        if version_of(head):
            pinned["VersionId"] = version_of(head)

        def fetch(start: int, end: int) -> bytes:
            for attempt in range(READ_ATTEMPTS):
                try:
                    response = self.client.get_object(Range=f"bytes={start}-{end - 1}", **pinned)
                    if response.get("ContentLength") != end - start:
                        # a service that ignores Range sends the whole object every time:
                        # never read that into memory
                        response["Body"].close()
                        raise ArchiveError(f"{what}: asked for {end - start} bytes from byte {start}, the "
                                           f"service answered with {response.get('ContentLength')} "
                                           "(does it ignore Range requests?)")
                    return response["Body"].read()
                except (ResponseStreamingError, IncompleteReadError, ReadTimeoutError):
                    if attempt == READ_ATTEMPTS - 1:
                        raise ArchiveError(f"{what}: the connection kept breaking while reading") from None
                    time.sleep(0.5 * 2 ** attempt)
                except ClientError as exc:
                    if error_code(exc)[1] == 412:
                        raise ArchiveError(f"{what} changed while it was being read") from None
                    raise translate(exc, what) from None
                except Exception as exc:  # noqa: BLE001 - every botocore failure, one line
                    raise translate(exc, what) from None
            raise AssertionError("unreachable")

        return RangeReader(fetch, head["ContentLength"], what, identity=(version_of(head), head["ETag"]))

    def stat_capture(self, capture_id: str) -> StoredCapture:
        key = self._key_of(capture_id)
        try:
            return self._stat(key, None)
        except NotFound as missing:
            hidden = self._hidden_version_or_none(key)
            if not hidden:
                raise missing from None
            return self._stat(key, hidden)

    def _stat(self, key: str, hidden: str | None) -> StoredCapture:
        """What the store records about a capture's object (`hidden`: the version of one
        whose latest is a delete marker)."""
        with s3_errors(self.location.url(key)):
            head = self.client.head_object(Bucket=self.location.bucket, Key=key,
                                           **({"VersionId": hidden} if hidden else {}))
        stored = stored_from_head(self.location, key, head)
        if hidden:
            stored = replace(stored, warning=HIDDEN_WARNING.format(version=hidden))
        return stored

    def list_captures(self, newest: int | None = None) -> Iterator[StoredCapture]:
        """Captures oldest first (`newest`: only the last N); those hidden behind a
        delete marker too, with a warning."""
        if newest is None:
            found = self._live_and_hidden(self.location.key("captures/"))
        else:
            found = self._newest_keys(self.location.key("captures/"), newest)
        keys = sorted((k for k in found if CAPTURE_KEY.search(k)), key=lambda k: k.rsplit("/", 1)[-1])
        if newest is not None:
            keys = keys[-newest:] if newest else []

        def head(key: str) -> StoredCapture:
            return self._stat(key, found[key])

        with ThreadPoolExecutor(HEAD_WORKERS) as pool:
            yield from pool.map(head, keys)

    def _live_and_hidden(self, prefix: str) -> dict[str, str | None]:
        """Every key under a prefix that holds an object version: None for a live one, the
        newest version id for one whose latest version is a delete marker."""
        live, marked, newest = set(), set(), {}
        with s3_errors(self.location.url(prefix)):
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                marked.update(m["Key"] for m in page.get("DeleteMarkers", []) if m.get("IsLatest"))
                for version in page.get("Versions", []):     # each key's newest first
                    newest.setdefault(version["Key"], version["VersionId"])
                    if version.get("IsLatest"):
                        live.add(version["Key"])
        return {**{k: None for k in live}, **{k: newest[k] for k in marked if k in newest}}

    def _newest_keys(self, prefix: str, count: int, depth: int = 3) -> dict[str, str | None]:
        """The keys of the newest `count` captures: the date folders (YYYY/MM/DD) are
        walked newest first, so the listing stops once enough are found."""
        if depth == 0:
            return self._live_and_hidden(prefix)
        with s3_errors(self.location.url(prefix)):
            paginator = self.client.get_paginator("list_object_versions")
            folders = sorted({p["Prefix"] for page in paginator.paginate(
                Bucket=self.location.bucket, Prefix=prefix, Delimiter="/") for p in page.get("CommonPrefixes", [])})
        out: dict[str, str | None] = {}
        for folder in reversed(folders):
            if len(out) >= count:
                break
            out.update(self._newest_keys(folder, count - len(out), depth - 1))
        return out

    def _hidden_version(self, key: str) -> str | None:
        """The newest version of `key` when its latest is a delete marker (else None)."""
        return self._live_and_hidden(key).get(key)

    def _hidden_version_or_none(self, key: str) -> str | None:
        """As _hidden_version, None when the versions cannot be listed (the caller's
        own error, a missing object, says more)."""
        try:
            return self._hidden_version(key)
        except ArchiveError:
            return None

    def hidden_object(self, key: str) -> bytes | None:
        """A small object hidden behind a delete marker, read at its newest version."""
        full = self.location.key(check_object_key(key))
        version = self._hidden_version(full)
        if version is None:
            return None
        with s3_errors(self.location.url(full)):
            return self.client.get_object(Bucket=self.location.bucket, Key=full, VersionId=version)["Body"].read()

    def holds_anything(self) -> bool:
        """Whether any object version or delete marker is under the prefix."""
        prefix = self.location.key("") if self.location.prefix else ""
        with s3_errors(self.location.url(prefix)):
            page = self.client.list_object_versions(Bucket=self.location.bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("Versions") or page.get("DeleteMarkers"))

    def _list_keys(self, prefix: str) -> Iterator[str]:
        with s3_errors(self.location.url(prefix)):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.location.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def put_public_key(self, fingerprint: str, pem: bytes) -> None:
        publish_public_key(self, fingerprint, pem)

    # -- small objects ---------------------------------------------------------------
    def put_object(self, key: str, data: bytes) -> None:
        full = self.location.key(check_object_key(key))
        what = self.location.url(full)
        sha, md5 = hashlib.sha256(data).digest(), hashlib.md5(data).digest()
        with s3_errors(what):
            for attempt in range(6):
                try:
                    response = self.client.put_object(
                        Bucket=self.location.bucket, Key=full, Body=data, IfNoneMatch="*",
                        ContentMD5=b64(md5), ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(sha))
                    break
                except ClientError as exc:
                    # 409: another conditional write to the key is in flight; ask again
                    if error_code(exc)[0] != "ConditionalRequestConflict" or attempt == 5:
                        raise
                    time.sleep(0.05 * 2 ** attempt)
        if etag_is_md5(response) and clean_etag(response.get("ETag", "")) != md5.hex():
            up = Uploaded(full, len(data), sha.hex(), b64(sha), md5.hex(), "", version_of(response), 0)
            raise TransferCorrupted(f"{what} arrived altered (its ETag is not the MD5 of the bytes "
                                    f"sent).{self._remove_bad_upload(up)}")

    def get_object(self, key: str, limit: int | None = None) -> bytes:
        full = self.location.key(check_object_key(key))
        with s3_errors(self.location.url(full)):
            response = self.client.get_object(Bucket=self.location.bucket, Key=full, ChecksumMode="ENABLED")
            if limit is not None and response["ContentLength"] > limit:
                response["Body"].close()
                raise TooLarge(f"{key} holds more than {limit} bytes")
            return response["Body"].read()

    def list_objects(self, prefix: str) -> Iterator[str]:
        base = self.location.key(prefix.strip("/") + "/") if prefix.strip("/") else self.location.key("")
        keys = sorted(self.location.relative(k) for k in self._list_keys(base))
        return iter([k for k in keys if not k.startswith("captures/")])

    def last_object(self, prefix: str) -> str | None:
        full = self.location.key(prefix.strip("/") + "/")
        with s3_errors(self.location.url(full)):
            paginator = self.client.get_paginator("list_objects_v2")
            while True:
                folder = key = None
                for page in paginator.paginate(Bucket=self.location.bucket, Prefix=full, Delimiter="/"):
                    for item in page.get("CommonPrefixes", []):
                        folder = max(folder or "", item["Prefix"])
                    for item in page.get("Contents", []):
                        key = max(key or "", item["Key"])
                if folder and (key is None or folder > key):
                    full = folder
                    continue
                return self.location.relative(key) if key else None

    def delete_object(self, key: str) -> None:
        full = self.location.key(check_object_key(key))
        what = self.location.url(full)
        with s3_errors(what):
            self.client.head_object(Bucket=self.location.bucket, Key=full)
            self.client.delete_object(Bucket=self.location.bucket, Key=full)


# -- bucket set-up -------------------------------------------------------------------
def init_bucket(client, bucket: str, region: str | None, retention: Retention) -> list[tuple[str, str]]:
    """Create a bucket with versioning, Object Lock and no public access; returns
    (setting, value) pairs as the service reports them afterwards."""
    what = f"{SCHEME}{bucket}"
    args: dict = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
    if region and region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with s3_errors(what):
        # us-east-1 answers 200 to creating a bucket one already owns: look first, so an
        # existing bucket's settings are never changed
        if _bucket_exists(client, bucket):
            found = ", ".join(f"{k} {v}" for k, v in bucket_settings(client, bucket)[1:])
            raise AlreadyExists(f"{what} already exists; nothing was changed ({found})")
        try:
            client.create_bucket(**args)
        except ClientError as exc:
            if error_code(exc)[0] in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                raise AlreadyExists(f"{what}: the name is taken; nothing was changed") from None
            raise
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        lock: dict = {"ObjectLockEnabled": "Enabled"}
        if retention.days:
            lock["Rule"] = {"DefaultRetention": {"Mode": retention.mode or DEFAULT_LOCK_MODE,
                                                 "Days": retention.days}}
        client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
        # an upload killed midway (kill -9, a lost machine) leaves parts that are billed
        # and never seen: the service aborts them a day later
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
            "ID": ABORT_RULE, "Status": "Enabled", "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_AFTER_DAYS}}]})
        return bucket_settings(client, bucket)


def _bucket_exists(client, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code, status = error_code(exc)
        if status == 404 or code in ("NoSuchBucket", "404"):
            return False
        if status == 403:
            raise AlreadyExists(f"{SCHEME}{bucket}: the bucket exists but these credentials "
                                "cannot read it (or they are wrong); nothing was changed") from None
        raise
    return True


def bucket_settings(client, bucket: str) -> list[tuple[str, str]]:
    """What the service says about a bucket's versioning, Object Lock and public access."""
    with s3_errors(f"{SCHEME}{bucket}"):
        versioning = client.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled")
        try:
            lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        except ClientError as exc:
            if error_code(exc)[0] != "ObjectLockConfigurationNotFoundError":
                raise
            lock = {}
        rule = lock.get("Rule", {}).get("DefaultRetention", {})
        try:
            block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
            public = "blocked" if all(block.values()) else "partly blocked"
        except ClientError:
            public = "not blocked"
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError:
            rules = []
        days = [r["AbortIncompleteMultipartUpload"].get("DaysAfterInitiation") for r in rules
                if r.get("Status") == "Enabled" and "AbortIncompleteMultipartUpload" in r]
        unfinished = f"aborted after {min(days)} day(s)" if days else "kept (no lifecycle rule aborts them)"
    default = (f"{rule.get('Mode')} for {rule.get('Days') or rule.get('Years')} "
               f"{'days' if rule.get('Days') else 'years'}") if rule else "none (set per capture)"
    return [
        ("bucket", f"{SCHEME}{bucket}"),
        ("versioning", versioning),
        ("object lock", lock.get("ObjectLockEnabled", "Disabled")),
        ("default retention", default),
        ("public access", public),
        ("unfinished uploads", unfinished),
    ]
