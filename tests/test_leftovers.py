"""What an interrupted store leaves behind (kill -9 mid-copy, mid-upload) is ours to
clean up: the next attempt at the same capture removes it, and `store init` sets a rule
that has the service abort unfinished uploads."""

from __future__ import annotations

import hashlib
import random

from archive.store.base import capture_key
from archive.store.local import LocalStore
from archive.store.s3 import ABORT_AFTER_DAYS, S3Location, S3Store, bucket_settings, init_bucket, Retention

CAPTURE_ID = "20250308T121500Z-7f3a9c21"
META = {"signer": None, "seeds": ["https://example.org/"], "created": "2025-03-08T12:15:09Z"}


def _sealed(tmp_path, size=100_000):
    data = random.Random(3).randbytes(size)
    path = tmp_path / f"{CAPTURE_ID}.wacz"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_local_copy_killed_midway_is_cleaned_up_by_the_next_attempt(tmp_path):
    store = LocalStore(tmp_path / "store")
    final = store.path_of(CAPTURE_ID)
    final.parent.mkdir(parents=True)
    # what a copy killed midway leaves (its name is the capture's own), and another's
    left = final.with_name(f".{final.name}.0badc0de.tmp")
    left.write_bytes(b"half a copy")
    other = final.with_name(".20250308T121501Z-00000000.wacz.12345678.tmp")
    other.write_bytes(b"someone else's")
    path, sha = _sealed(tmp_path)
    store.put_capture(CAPTURE_ID, path, sha, META)
    assert final.read_bytes() == path.read_bytes()
    assert not left.exists() and other.exists()


def test_an_upload_killed_midway_is_aborted_by_the_next_attempt(s3, tmp_path):
    key = "p/" + capture_key(CAPTURE_ID)
    # a kill -9 during the upload leaves an open multipart upload with parts
    upload = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=key)["UploadId"]
    s3.client.upload_part(Bucket=s3.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 1000)
    other = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=key + ".not-ours")["UploadId"]
    assert len(s3.uploads()) == 2
    store = S3Store(S3Location(s3.bucket, "p"))
    store.check()
    path, sha = _sealed(tmp_path)
    store.put_capture(CAPTURE_ID, path, sha, META)
    assert [u["UploadId"] for u in s3.uploads()] == [other]
    assert s3.read(key) == path.read_bytes()


def test_store_init_has_unfinished_uploads_aborted(s3):
    init_bucket(s3.client, "fresh-leftovers", None, Retention())
    rules = s3.client.get_bucket_lifecycle_configuration(Bucket="fresh-leftovers")["Rules"]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in rules] == [ABORT_AFTER_DAYS]
    assert ("unfinished uploads", "aborted after 1 day(s)") in bucket_settings(s3.client, "fresh-leftovers")
    assert ("unfinished uploads", "kept (no lifecycle rule aborts them)") in bucket_settings(s3.client, s3.bucket)
