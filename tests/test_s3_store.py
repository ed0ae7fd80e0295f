"""The S3 store against a real S3 endpoint (moto's server) over HTTP, through boto3."""

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from archive.errors import AlreadyExists, ArchiveError, NotFound
from archive.store.address import open_capture_target, open_store, StoreOptions
from archive.store.base import capture_key
from archive.store.s3 import Retention, S3Location, S3Store, parse_s3_address, parse_s3_object
from archive.store.s3upload import MiB, Transfer, TransferCorrupted
from tests.s3server import s3_error

CAPTURE_ID = "20250308T121500Z-7f3a9c21"
SMALL_PARTS = Transfer(part_size=5 * MiB, concurrency=2)


def store_for(s3, prefix="p", **kwargs) -> S3Store:
    store = S3Store(S3Location(s3.bucket, prefix), **kwargs)
    store.check()
    return store


def random_file(path: Path, size: int, seed: int = 1) -> tuple[Path, str]:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


META = {"signer": "ab" * 32, "seeds": ["https://example.org/a?b=c", "https://example.org/ü"],
        "created": "2025-03-08T12:15:09Z"}


# -- captures --------------------------------------------------------------------------
def test_multipart_capture_is_stored_with_metadata_and_reads_back(s3, tmp_path):
    path, sha = random_file(tmp_path / "c.wacz", 12 * MiB + 123)
    sent = []
    store = store_for(s3, transfer=SMALL_PARTS, progress=lambda done, total: sent.append((done, total)))
    stored = store.put_capture(CAPTURE_ID, path, sha, META)
    key = "p/" + capture_key(CAPTURE_ID)
    assert stored.address == f"s3://{s3.bucket}/{key}"
    assert (stored.size, stored.sha256, stored.signer, stored.created) == (path.stat().st_size, sha, "ab" * 32, META["created"])
    assert stored.seeds == tuple(META["seeds"])
    assert s3.read(key) == path.read_bytes()
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ETag"].endswith('-3"') and head["Metadata"]["sha256"] == sha
    assert sent[-1] == (path.stat().st_size, path.stat().st_size)
    assert s3.uploads() == []

    listed = list(store.list_captures())
    assert [c.capture_id for c in listed] == [CAPTURE_ID]
    assert listed[0] == stored

    with store.open_capture(CAPTURE_ID) as reader:
        data = path.read_bytes()
        rng = random.Random(5)
        for _ in range(50):
            start = rng.randrange(len(data))
            n = rng.randrange(1, 3 * MiB)
            reader.seek(start)
            assert reader.read(n) == data[start:start + n]
        assert reader.sha256() == sha


def test_a_second_write_to_the_same_capture_is_refused_and_the_first_is_unchanged(s3, tmp_path):
    store = store_for(s3)
    first, sha1 = random_file(tmp_path / "a.wacz", 1000, seed=1)
    second, sha2 = random_file(tmp_path / "b.wacz", 1000, seed=2)
    store.put_capture(CAPTURE_ID, first, sha1, META)
    key = "p/" + capture_key(CAPTURE_ID)
    with pytest.raises(AlreadyExists, match="never overwritten"):
        store.put_capture(CAPTURE_ID, second, sha2, META)
    big, sha3 = random_file(tmp_path / "big.wacz", 11 * MiB, seed=3)
    with pytest.raises(AlreadyExists):
        S3Store(S3Location(s3.bucket, "p"), transfer=SMALL_PARTS).put_capture(CAPTURE_ID, big, sha3, META)
    assert s3.read(key) == first.read_bytes()
    assert len(s3.versions(key)) == 1
    assert s3.uploads() == []


def test_locked_capture_cannot_be_deleted_or_overwritten(s3, tmp_path):
    store = store_for(s3, retention=Retention(days=1, mode="COMPLIANCE", legal_hold=True))
    path, sha = random_file(tmp_path / "a.wacz", 2000)
    stored = store.put_capture(CAPTURE_ID, path, sha, META)
    assert stored.lock.startswith("COMPLIANCE until ") and "legal hold" in stored.lock
    key = "p/" + capture_key(CAPTURE_ID)
    version = s3.versions(key)[0]["VersionId"]
    with pytest.raises(ArchiveError, match="never overwritten or deleted"):
        store.delete_object(capture_key(CAPTURE_ID))
    # and even straight through the S3 API, the service refuses
    with pytest.raises(Exception, match="AccessDenied"):
        s3.client.delete_object(Bucket=s3.bucket, Key=key, VersionId=version)
    assert s3.read(key) == path.read_bytes()


def test_a_weaker_lock_than_asked_for_is_not_reported_as_stored(s3_proxy, s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 2000)

    def governance(exchange, headers):     # a service that applies its own mode
        return [(k, "GOVERNANCE" if k.lower() == "x-amz-object-lock-mode" else v) for k, v in headers]

    s3_proxy.response_headers = governance
    store = store_for(s3, retention=Retention(days=1, mode="COMPLIANCE"))
    with pytest.raises(TransferCorrupted, match="mode GOVERNANCE, not the COMPLIANCE asked for"):
        store.put_capture(CAPTURE_ID, path, sha, META)


def test_retention_needs_a_bucket_with_object_lock(s3):
    plain = s3.make_bucket(lock=False)
    with pytest.raises(ArchiveError, match="no Object Lock"):
        S3Store(S3Location(plain), retention=Retention(days=1)).check()
    S3Store(S3Location(plain)).check()       # without retention it is fine


def test_a_file_that_changed_since_sealing_is_not_stored(s3, tmp_path):
    for size, transfer in ((1000, Transfer()), (11 * MiB, SMALL_PARTS)):
        path, sha = random_file(tmp_path / "a.wacz", size)
        store = store_for(s3, transfer=transfer)
        with pytest.raises(ArchiveError, match="changed since it was sealed"):
            store.put_capture(CAPTURE_ID, path, "0" * 64, META)
        assert s3.keys() == [] and s3.uploads() == []


# -- a corrupted or interrupted transfer -----------------------------------------------
def flip_in_body(at: int, only_part: int | None = None):
    def on_request(exchange):
        if exchange.is_object_put and len(exchange.body) > at and (
                only_part is None or exchange.part_number == only_part):
            body = bytearray(exchange.body)
            body[at] ^= 0x01
            exchange.body = bytes(body)
    return on_request


def test_a_byte_flipped_in_a_single_put_is_caught_and_not_stored(s3_proxy, s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 5000)
    s3_proxy.on_request = flip_in_body(1234)
    store = store_for(s3)
    with pytest.raises(TransferCorrupted, match="corrupted") as caught:
        store.put_capture(CAPTURE_ID, path, sha, META)
    assert "removed" in str(caught.value)
    assert s3.keys() == []                        # nothing visible
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha    # the local file is intact


def test_a_byte_flipped_in_one_part_is_caught_and_the_upload_aborted(s3_proxy, s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 12 * MiB)
    s3_proxy.on_request = flip_in_body(4321, only_part=2)
    store = store_for(s3, transfer=SMALL_PARTS)
    with pytest.raises(TransferCorrupted, match="part 2 arrived altered"):
        store.put_capture(CAPTURE_ID, path, sha, META)
    assert s3.keys() == [] and s3.uploads() == []


def test_a_flipped_byte_in_a_locked_bucket_is_reported_and_left_to_fail_verification(s3_proxy, s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 5000)
    s3_proxy.on_request = flip_in_body(10)
    store = store_for(s3, retention=Retention(days=1, mode="COMPLIANCE"))
    with pytest.raises(TransferCorrupted, match="could not be removed.*fail verification"):
        store.put_capture(CAPTURE_ID, path, sha, META)


def test_an_object_altered_right_after_upload_is_caught(s3_proxy, s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 5000)
    key = "p/" + capture_key(CAPTURE_ID)

    def replace(exchange, status):
        if exchange.is_object_put and status == 200:
            s3_proxy.after = None
            s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"something else")

    s3_proxy.after = replace
    with pytest.raises(TransferCorrupted, match="replaced or altered after the upload.*left in place"):
        store_for(s3).put_capture(CAPTURE_ID, path, sha, META)


def opaque_etags_without_checksums(exchange, headers):
    """A service that encrypts with KMS (ETags are not MD5s) and reports no checksums."""
    kept = [(k, v) for k, v in headers if not k.lower().startswith("x-amz-checksum")
            and k.lower() != "x-amz-server-side-encryption"]
    return kept + [("x-amz-server-side-encryption", "aws:kms")]


@pytest.mark.parametrize("size", [5000, 11 * MiB])
def test_a_corrupted_transfer_is_caught_when_the_service_reports_neither_md5_nor_checksum(
        s3_proxy, s3, tmp_path, size):
    path, sha = random_file(tmp_path / "a.wacz", size)
    s3_proxy.response_headers = opaque_etags_without_checksums
    s3_proxy.on_request = flip_in_body(4321, only_part=2 if size > 5 * MiB else None)
    store = store_for(s3, transfer=SMALL_PARTS)
    with pytest.raises(TransferCorrupted, match="read back") as caught:
        store.put_capture(CAPTURE_ID, path, sha, META)
    assert "removed" in str(caught.value)
    assert s3.keys() == [] and s3.uploads() == []
    # and the same upload, not corrupted, is stored (after reading it back once)
    s3_proxy.on_request = None
    s3_proxy.seen.clear()
    assert store.put_capture(CAPTURE_ID, path, sha, META).sha256 == sha
    # the object read back once (listing unfinished uploads of the key reads no object)
    assert sum(n for method, path, n in s3_proxy.seen if method == "GET" and "?uploads" not in path) == size
    assert s3.read("p/" + capture_key(CAPTURE_ID)) == path.read_bytes()


@pytest.mark.parametrize("how", ["service refuses a part", "interrupted"])
def test_an_interrupted_multipart_upload_leaves_no_object_and_no_upload(s3_proxy, s3, tmp_path, how):
    path, sha = random_file(tmp_path / "a.wacz", 16 * MiB)
    def interrupt(sent, total):
        raise KeyboardInterrupt

    progress, expected = interrupt, KeyboardInterrupt
    if how == "service refuses a part":
        s3_proxy.on_request = lambda ex: s3_error("AccessDenied", 403) if ex.part_number == 3 else None
        progress, expected = None, ArchiveError
    store = store_for(s3, transfer=SMALL_PARTS, progress=progress)
    with pytest.raises(expected):
        store.put_capture(CAPTURE_ID, path, sha, META)
    assert s3.keys() == [] and s3.uploads() == []
    assert any(method == "DELETE" and "uploadId" in p for method, p, _ in s3_proxy.seen)


def test_throttling_and_server_errors_are_retried(s3_proxy, s3, tmp_path, monkeypatch):
    failures = {"UploadPart": 1, "PutObject": 1}

    def flaky(exchange):
        kind = "UploadPart" if exchange.is_part else "PutObject" if exchange.is_object_put else None
        if kind and failures[kind]:
            failures[kind] -= 1
            return s3_error("SlowDown", 503) if kind == "UploadPart" else s3_error("InternalError", 500)
        return None

    s3_proxy.on_request = flaky
    big, sha = random_file(tmp_path / "big.wacz", 11 * MiB)
    store_for(s3, transfer=SMALL_PARTS).put_capture(CAPTURE_ID, big, sha, META)
    store_for(s3).put_object("custody/1.json", b"{}")
    assert failures == {"UploadPart": 0, "PutObject": 0}
    assert s3.read("p/" + capture_key(CAPTURE_ID)) == big.read_bytes()


@pytest.mark.parametrize("retry_answer", [("PreconditionFailed", 412), ("NoSuchUpload", 404)])
def test_a_completed_upload_whose_answer_was_lost_is_recognised_on_retry(s3_proxy, s3, tmp_path, retry_answer):
    path, sha = random_file(tmp_path / "a.wacz", 11 * MiB)
    lost = []

    def lose_first_complete(exchange, status):
        if exchange.method == "POST" and "uploadId" in exchange.query and not lost:
            lost.append(status)
            return s3_error("InternalError", 500)    # done upstream; the client hears 500
        return None

    def retried_complete(exchange):
        # what S3 answers a retried Complete of an upload that went through
        if exchange.method == "POST" and "uploadId" in exchange.query and lost:
            return s3_error(*retry_answer)
        return None

    s3_proxy.after, s3_proxy.on_request = lose_first_complete, retried_complete
    stored = store_for(s3, transfer=SMALL_PARTS).put_capture(CAPTURE_ID, path, sha, META)
    assert lost == [200] and stored.sha256 == sha
    assert s3.read("p/" + capture_key(CAPTURE_ID)) == path.read_bytes() and s3.uploads() == []


@pytest.mark.parametrize("size", [5000, 11 * MiB])
def test_an_object_created_by_someone_else_during_the_upload_is_never_replaced(s3_proxy, s3, tmp_path, size):
    path, sha = random_file(tmp_path / "a.wacz", size)
    key = "p/" + capture_key(CAPTURE_ID)

    def someone_else_first(exchange):
        completes = exchange.method == "POST" and "uploadId" in exchange.query
        puts = exchange.is_object_put and not exchange.is_part
        if (completes or puts) and not s3.keys():
            s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"theirs")
        return None

    s3_proxy.on_request = someone_else_first
    with pytest.raises(AlreadyExists):
        store_for(s3, transfer=SMALL_PARTS).put_capture(CAPTURE_ID, path, sha, META)
    assert s3.read(key) == b"theirs" and len(s3.versions(key)) == 1 and s3.uploads() == []


# -- memory and reading ----------------------------------------------------------------
UPLOAD_IN_CHILD = """
import sys, tracemalloc
from pathlib import Path
from archive.store.s3 import S3Location, S3Store
from archive.store.s3upload import MiB, Transfer
path, sha, bucket = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
store = S3Store(S3Location(bucket, "p"), transfer=Transfer(part_size=5 * MiB, concurrency=2))
tracemalloc.start()
store.put_capture("20250308T121500Z-7f3a9c21", path, sha, {"signer": None, "seeds": []})
print(tracemalloc.get_traced_memory()[1])
"""


def test_a_large_upload_keeps_memory_flat(s3, tmp_path):
    path, sha = random_file(tmp_path / "big.wacz", 64 * MiB)
    out = subprocess.run([sys.executable, "-c", UPLOAD_IN_CHILD, str(path), sha, s3.bucket],
                         capture_output=True, text=True, env=os.environ, timeout=240)
    assert out.returncode == 0, out.stderr
    peak = int(out.stdout.strip())
    # (concurrency + 1) parts of 5 MiB in flight, plus what botocore holds per request
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB for a 64 MiB file"
    assert s3.read("p/" + capture_key(CAPTURE_ID)) == path.read_bytes()


def test_reading_a_stored_capture_in_order_fetches_it_about_once(s3, tmp_path):
    path, sha = random_file(tmp_path / "a.wacz", 20 * MiB)
    store_for(s3, transfer=SMALL_PARTS).put_capture(CAPTURE_ID, path, sha, META)
    with open_capture_target(f"s3://{s3.bucket}/p/{CAPTURE_ID}") as reader:
        assert reader.size == 20 * MiB
        reader.seek(reader.size - 22)
        reader.read(22)                       # like a zip reader: the end first
        reader.seek(0)
        while reader.read(1 << 20):
            pass
        assert reader.sha256() == sha
        assert reader.fetched_bytes < reader.size + 1 * MiB
        assert reader.fetches < 20


def test_a_capture_changed_while_it_is_read_is_not_read_as_one_file(s3, tmp_path):
    bucket = s3.make_bucket(lock=False, versioning=False)
    path, sha = random_file(tmp_path / "a.wacz", 3 * MiB)
    S3Store(S3Location(bucket)).put_capture(CAPTURE_ID, path, sha, META)
    with open_capture_target(f"s3://{bucket}/{CAPTURE_ID}") as reader:
        reader.read(10)
        s3.client.put_object(Bucket=bucket, Key=capture_key(CAPTURE_ID), Body=b"x" * (3 * MiB))
        with pytest.raises(ArchiveError, match="changed while it was being read"):
            reader.seek(2 * MiB)
            reader.read(10)
        assert reader.failure is not None


READ_IN_CHILD = """
import sys, tracemalloc
from archive.errors import ArchiveError
from archive.store.address import open_capture_target
tracemalloc.start()
try:
    with open_capture_target(sys.argv[1]) as reader:
        reader.read(10)
except ArchiveError as exc:
    print(tracemalloc.get_traced_memory()[1], exc)
"""


def test_a_service_that_ignores_ranges_is_refused_without_reading_whole_objects(s3, s3_proxy, tmp_path):
    """An S3 clone (or a proxy) that drops Range answers every window with the whole
    object: each was read into memory before its length was found wrong."""
    path, sha = random_file(tmp_path / "a.wacz", 48 * MiB)
    store_for(s3, transfer=SMALL_PARTS).put_capture(CAPTURE_ID, path, sha, META)
    s3_proxy.on_request = lambda exchange: exchange.headers.pop("Range", None) and None
    # in a child: the proxy, in this process, holds the whole object itself
    out = subprocess.run([sys.executable, "-c", READ_IN_CHILD, f"s3://{s3.bucket}/p/{CAPTURE_ID}"],
                         capture_output=True, text=True, env=os.environ, timeout=120)
    assert out.stdout, out.stderr[-2000:]
    peak, message = out.stdout.split(" ", 1)
    assert "ignore Range requests" in message, (out.stdout, out.stderr[-2000:])
    assert int(peak) < 40 * MiB, f"peak {int(peak) / MiB:.1f} MiB"


# -- addresses ---------------------------------------------------------------------------
def test_addresses_are_parsed_strictly():
    assert parse_s3_address("s3://my-bucket") == S3Location("my-bucket", "")
    assert parse_s3_address("s3://my-bucket/a/b/") == S3Location("my-bucket", "a/b")
    assert parse_s3_object(f"s3://b.c-d/x/{CAPTURE_ID}") == (
        S3Location("b.c-d", "x"), "x/" + capture_key(CAPTURE_ID))
    assert parse_s3_object("s3://bkt/x/captures/2025/03/08/a.wacz") == (
        S3Location("bkt"), "x/captures/2025/03/08/a.wacz")
    for bad in ("s3://", "s3://B", "s3://Bad_Bucket/x", "s3://a..b", "s3://bkt/a/../b", "s3://bkt//x/"):
        with pytest.raises(ArchiveError):
            parse_s3_address(bad) if not bad.endswith("//x/") else parse_s3_object("s3://bkt/a//b")
    with pytest.raises(ArchiveError) as caught:
        parse_s3_address("s3://AKIAXXXX:secret@bucket/x")
    assert "secret" not in str(caught.value) and "AKIA" not in str(caught.value)


def test_open_store_checks_the_bucket_and_the_credentials(s3, monkeypatch):
    with pytest.raises(NotFound, match="does not exist"):
        open_store("s3://no-such-bucket-here")
    assert isinstance(open_store(s3.address("x")), S3Store)
    with pytest.raises(ArchiveError, match="need an s3:// store"):
        open_store("local-folder", StoreOptions(retention=Retention(days=3)))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ArchiveError, match="no AWS credentials found"):
        open_store(s3.address("x"))


def test_upload_benchmark_smoke():
    """scripts/bench_s3.py in a small size (not timed): it runs, and ours reads the file once."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_s3.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run([sys.executable, str(script), "--mib", "24", "--part-mib", "5", "--json"],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ours_MBps"] > 0 and result["boto3_MBps"] > 0 and result["ratio"] > 0
    assert 0.99 <= result["ours_reads_of_file"] < 1.1


def test_job_locks_work_on_s3(s3):
    """Racing runs for one job's lock on a real bucket: exactly one wins (the custody
    ledger on S3 is exercised through the CLI in test_s3_cli.py)."""
    from tests.jobfiles import race_for_the_lock

    race_for_the_lock(store_for(s3), 6)
    assert any(k.startswith("p/jobs/race/lock/") for k in s3.keys())
