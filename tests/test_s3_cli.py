"""`archive capture --store s3://`, `verify s3://`, `ls`, `show` and `store init` end to end:
a real HTTP site, a real S3 endpoint (moto's server) over HTTP, the CLI in-process."""

import base64
import hashlib
import json
import re
import random
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests

from archive.store.base import capture_key
from tests.killing import ended, kill, start_capture
from tests.s3server import s3_error


def capture_to_s3(run, key, site, tmp_path, store, *extra, paths=("/",)):
    return run("capture", *[site.url(p) for p in paths], "--key", key, "--store", store,
               "--work-dir", tmp_path / "work", "--quiet", "--json", *extra)


def stored_key(s3, prefix="") -> str:
    keys = [k for k in s3.keys() if k.endswith(".wacz")]
    assert len(keys) == 1, keys
    return keys[0]


def test_capture_to_s3_then_verify_list_and_show_from_s3(run, key, pubkey, site, s3, tmp_path):
    result = capture_to_s3(run, key, site, tmp_path, s3.address("evidence/2025"),
                           "--retain-days", "2", "--lock-mode", "COMPLIANCE")
    assert result.code == 0, result
    out = json.loads(result.out)
    wacz_key = f"evidence/2025/{capture_key(out['capture_id'])}"
    assert out["address"] == f"s3://{s3.bucket}/{wacz_key}"
    assert out["lock"].startswith("COMPLIANCE until ")
    data = s3.read(wacz_key)
    assert hashlib.sha256(data).hexdigest() == out["sha256"]
    assert not list((tmp_path / "work").glob("*/*.wacz"))           # spool removed once stored
    assert f"evidence/2025/keys/{out['signer']}.pub" in s3.keys()  # the signer's public key

    verified = run("verify", out["address"], "--trust", pubkey)
    assert verified.code == 0, verified
    assert verified.out.startswith("VERIFIED")
    # the custody ledger lives in the bucket too: captured, sealed, stored, then verified
    assert "custody: 3 custody entries (captured, sealed, stored), each proven in the log under its " \
        "head 3:" in verified.out
    entries = [k for k in s3.keys() if re.fullmatch(r"evidence/2025/custody/\d{12}\.json", k)]
    assert len(entries) == 4
    stored = json.loads(s3.read(f"evidence/2025/custody/{3:012d}.json"))
    assert stored["event"] == "stored" and stored["details"]["lock"] == out["lock"]   # the retention given
    report = json.loads(run("verify", out["address"], "--trust", pubkey, "--json").out)
    assert report["sha256"] == out["sha256"] and report["target"] == out["address"]

    listed = run("ls", s3.address("evidence/2025"), "--json")
    assert listed.code == 0, listed
    [row] = json.loads(listed.out)
    assert (row["id"], row["sha256"], row["signer"], row["size"]) == (
        out["capture_id"], out["sha256"], out["signer"], len(data))
    assert row["seeds"] == [site.url("/")] and row["created"] and row["lock"]
    text = run("ls", "--store", s3.address("evidence/2025")).out
    assert out["capture_id"] in text and out["sha256"] in text and site.url("/") in text

    shown = run("show", out["capture_id"], "--store", s3.address("evidence/2025"), "--json")
    assert shown.code == 0, shown
    info = json.loads(shown.out)
    assert info["sha256"] == out["sha256"] and info["title"] and info["stats"]["pages"] == 1
    assert not any(k.endswith("(in the file)") for k in info)     # record and file agree
    by_address = run("show", f"s3://{s3.bucket}/evidence/2025/{out['capture_id']}")
    assert by_address.code == 0 and out["sha256"] in by_address.out


def test_ls_and_show_give_every_seed_even_when_the_metadata_holds_only_some(run, key, site, s3, tmp_path):
    paths = [f"/?seed={i}-{'x' * 60}" for i in range(40)]     # more than 2 KB of metadata
    result = capture_to_s3(run, key, site, tmp_path, s3.address(), paths=paths)
    assert result.code == 1, result      # every seed is a 404: stored, as a record of that
    capture_id = json.loads(result.out)["capture_id"]
    head = s3.client.head_object(Bucket=s3.bucket, Key=capture_key(capture_id))
    assert head["Metadata"]["seed-count"] == "40" and len(json.loads(requests.utils.unquote(
        head["Metadata"]["seeds"]))) < 40                   # the metadata was cut short
    [row] = json.loads(run("ls", s3.address(), "--json").out)
    assert row["seeds"] == [site.url(p) for p in paths]
    shown = json.loads(run("show", capture_id, "--store", s3.address(), "--json").out)
    assert shown["seeds"] == row["seeds"]
    assert not any(k.endswith("(in the file)") for k in shown)    # no false disagreement


def test_ls_lists_the_rest_of_the_store_when_one_object_is_foreign_or_damaged(run, key, site, s3, tmp_path):
    out = json.loads(capture_to_s3(run, key, site, tmp_path, s3.address()).out)
    junk_id, liar_id = "20250101T000000Z-deadbeef", "20250102T000000Z-0badf00d"
    body = b"not a zip"
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.client.put_object(Bucket=s3.bucket, Key=capture_key(junk_id), Body=body, ContentMD5=md5)
    # an object whose metadata claims to be another capture, and has no seeds to list
    s3.client.put_object(Bucket=s3.bucket, Key=capture_key(liar_id), Body=body, ContentMD5=md5,
                         Metadata={"capture-id": out["capture_id"]})
    listed = run("ls", s3.address(), "--json")
    assert listed.code == 0, listed
    rows = {row["id"]: row for row in json.loads(listed.out)}
    assert set(rows) == {junk_id, liar_id, out["capture_id"]}       # ids from the keys
    assert rows[out["capture_id"]]["seeds"] == [site.url("/")] and "problem" not in rows[out["capture_id"]]
    assert "not a WACZ" in rows[junk_id]["problem"] and "not a WACZ" in rows[liar_id]["problem"]
    text = run("ls", s3.address())
    assert text.code == 0 and f"{junk_id}" in text.out and "UNREADABLE" in text.out
    assert out["capture_id"] in text.out


def test_a_large_capture_goes_up_in_parts_and_verifies_from_s3(run, key, pubkey, site, s3, tmp_path,
                                                               monkeypatch, s3_proxy):
    site.site.add("/big.bin", random.Random(7).randbytes(11 << 20), content_type="application/octet-stream")
    monkeypatch.setenv("ARCHIVE_S3_PART_SIZE", "5")
    result = capture_to_s3(run, key, site, tmp_path, s3.address(), paths=("/big.bin",))
    assert result.code == 0, result
    out = json.loads(result.out)
    wacz_key = capture_key(out["capture_id"])
    head = s3.client.head_object(Bucket=s3.bucket, Key=wacz_key)
    assert head["ETag"].rstrip('"').endswith("-3")            # three parts
    s3_proxy.seen.clear()
    verified = run("verify", out["address"], "--trust", pubkey)
    assert verified.code == 0, verified
    # read straight from the store by ranged GETs, about once
    gets = [n for method, path, n in s3_proxy.seen if method == "GET"]
    assert len(gets) > 1 and sum(gets) < out["size"] * 1.1


def test_a_corrupted_upload_is_not_reported_as_stored_and_the_local_copy_is_kept(
        run, key, pubkey, site, s3, s3_proxy, tmp_path):
    def flip(exchange):
        if exchange.is_object_put and exchange.path.endswith(".wacz"):
            body = bytearray(exchange.body)
            body[len(body) // 2] ^= 0x40
            exchange.body = bytes(body)

    s3_proxy.on_request = flip
    result = capture_to_s3(run, key, site, tmp_path, s3.address())
    assert result.code == 2, result
    assert result.out == ""
    [line] = result.err.strip().splitlines()
    assert "was not stored" in line and "corrupted" in line and "kept at" in line
    kept = Path(line.rsplit("kept at ", 1)[1].split(";")[0])
    assert kept.is_file()
    assert not [k for k in s3.keys() if k.endswith(".wacz")]
    assert run("verify", kept, "--trust", pubkey).code == 0      # the kept copy is whole
    # and the message says how to store it: once the transfer is sound, that works
    assert f"`archive capture --resume {kept.parent}`" in line
    sealed_sha = hashlib.sha256(kept.read_bytes()).hexdigest()
    s3_proxy.on_request = None
    resumed = run("capture", "--resume", kept.parent, "--key", key, "--store", s3.address(),
                  "--quiet", "--json")
    assert resumed.code == 0, resumed
    stored = json.loads(resumed.out)
    assert stored["sha256"] == sealed_sha
    assert run("verify", stored["address"], "--trust", pubkey).code == 0
    assert not kept.parent.exists()                  # removed once stored


def test_a_tampered_object_in_s3_does_not_verify(run, key, pubkey, site, s3, tmp_path):
    out = json.loads(capture_to_s3(run, key, site, tmp_path, s3.address()).out)
    wacz_key = stored_key(s3)
    data = bytearray(s3.read(wacz_key))
    data[len(data) // 3] ^= 0x01
    s3.client.put_object(Bucket=s3.bucket, Key=wacz_key, Body=bytes(data))   # a new version on top
    result = run("verify", out["address"], "--trust", pubkey)
    assert result.code == 1, result
    assert result.out.startswith("NOT VERIFIED")


@pytest.mark.parametrize("smaller", [False, True])
def test_a_capture_replaced_between_the_reads_of_a_verification_is_not_judged(
        run, key, pubkey, site, s3, s3_proxy, tmp_path, smaller):
    """verify opens its target more than once (its kind first, then the check): another
    capture put under the address in between was judged as a mix of both (sizes of one,
    bytes of the other: "the zip container is damaged"). It is not a verdict: exit 2."""
    out = json.loads(capture_to_s3(run, key, site, tmp_path, s3.address()).out)
    wacz_key = stored_key(s3)
    other = capture_to_s3(run, key, site, tmp_path / "b", s3.address("other"),
                          paths=("/about",) if smaller else ("/", "/about"))
    other_bytes = s3.read(json.loads(other.out)["address"].split("/", 3)[3])
    heads = []

    def replace_after_the_first_look(exchange, status):
        if exchange.method == "HEAD" and wacz_key in exchange.path:
            heads.append(exchange.path)
            if len(heads) == 1:      # a new version on top, as anyone able to write may
                s3.client.put_object(Bucket=s3.bucket, Key=wacz_key, Body=other_bytes)
    s3_proxy.after = replace_after_the_first_look
    result = run("verify", out["address"], "--trust", pubkey, "--no-record")
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result
    assert "was replaced or changed while it was being checked" in result.err

    s3_proxy.after = None            # checked again, the object now there is judged whole
    again = run("verify", out["address"], "--trust", pubkey, "--no-record")
    assert again.code == 1 and "says it is capture" in again.out, again


def test_an_html_report_never_shows_a_screenshot_of_a_file_replaced_after_the_check(
        run, s3, s3_proxy, tmp_path):
    """The HTML report reads each screenshot again after the verdict: from a file replaced
    in between it showed another picture under the verdict. Now it shows none."""
    from tests.verifyhelp import build_wacz, new_signer, png
    signer, pub = new_signer(tmp_path / "keys")
    url = "https://example.org/statement"
    made = [build_wacz(tmp_path / f"{n}.wacz", [{"url": url, "body": b"<p>it</p>", "screenshot": png(64, 48, rgb)}],
                       signer) for n, rgb in enumerate(((255, 0, 0), (0, 0, 255)))]
    key = "shots/c.wacz"
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=made[0].read_bytes())
    heads = []

    def replace_after_the_check(exchange, status):
        if exchange.method == "HEAD" and key in exchange.path:
            heads.append(exchange.path)
            # resolved, its kind told, checked, found unchanged at the end: then the report is written
            if len(heads) == 4:
                s3.client.put_object(Bucket=s3.bucket, Key=key, Body=made[1].read_bytes())
    s3_proxy.after = replace_after_the_check
    report = tmp_path / "report.html"
    result = run("verify", s3.address(key), "--trust", pub, "--html", report)
    assert result.code == 0 and result.out.startswith("VERIFIED"), result
    text = report.read_text()
    assert "data:image/png" not in text and "its screenshot record cannot be shown" in text


def test_retention_without_a_mode_keeps_the_buckets_default_mode(run, key, site, s3, tmp_path):
    """--retain-days alone must not replace a bucket's COMPLIANCE default with a weaker
    GOVERNANCE lock on the object; a bucket without a default rule gets GOVERNANCE."""
    plain = s3.make_bucket(lock=True)
    result = capture_to_s3(run, key, site, tmp_path, f"s3://{plain}", "--retain-days", "2")
    assert result.code == 0, result
    assert json.loads(result.out)["lock"].startswith("GOVERNANCE until ")
    s3.client.put_object_lock_configuration(Bucket=s3.bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    result = capture_to_s3(run, key, site, tmp_path, s3.address(), "--retain-days", "2")
    assert result.code == 0, result
    out = json.loads(result.out)
    assert out["lock"].startswith("COMPLIANCE until ")
    head = s3.client.head_object(Bucket=s3.bucket, Key=stored_key(s3))
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_capture_keep_local_keeps_the_spool(run, key, site, s3, tmp_path):
    result = capture_to_s3(run, key, site, tmp_path, s3.address(), "--keep-local")
    assert result.code == 0, result
    out = json.loads(result.out)
    spool = Path(out["work_dir"]) / f"{out['capture_id']}.wacz"
    assert spool.read_bytes() == s3.read(stored_key(s3))


def test_store_init_creates_a_write_once_bucket(run, s3):
    result = run("store", "init", "s3://fresh-evidence", "--retain-days", "30")
    assert result.code == 0, result
    assert "versioning         Enabled" in result.out
    assert "object lock        Enabled" in result.out
    assert "GOVERNANCE for 30 days" in result.out and "public access      blocked" in result.out
    assert s3.client.get_bucket_versioning(Bucket="fresh-evidence")["Status"] == "Enabled"
    again = run("store", "init", "s3://fresh-evidence")
    assert again.code == 2 and "already exists; nothing was changed" in again.err
    assert len(again.err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (("ls", "s3://Bad_Bucket"), "not a valid bucket name"),
    (("ls", "s3://no-such-bucket-xyz"), "does not exist"),
    (("show", "20250308T121500Z-7f3a9c21", "--store", "s3://no-such-bucket-xyz"), "does not exist"),
    (("verify", "s3://no-such-bucket-xyz/captures/2025/03/08/20250308T121500Z-7f3a9c21.wacz"), "does not exist"),
    (("verify", "s3://no-such-bucket-xyz/other/thing.wacz"), "not found"),
    (("verify", "s3://bkt"), "names a bucket, not a capture"),
    (("ls", "s3://key:secret@bucket"), "takes no user, password"),
    (("ls", "ftp://x"), "unsupported store address"),
])
def test_bad_addresses_and_missing_buckets_give_one_line_and_exit_2(run, s3, args, message):
    result = run(*args)
    assert result.code == 2, result
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert "secret" not in result.err and "Traceback" not in result.err


def test_a_capture_to_a_missing_bucket_fails_before_crawling(run, key, site, s3, tmp_path):
    result = capture_to_s3(run, key, site, tmp_path, "s3://no-such-bucket-xyz")
    assert result.code == 2 and "does not exist" in result.err
    assert site.site.requests == []


def test_bad_credentials_give_one_line_and_exit_2(run, s3, monkeypatch):
    requests.post(f"{s3.endpoint}/moto-api/reset-auth", data=b"0", timeout=10)   # moto checks keys now
    try:
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        result = run("ls", s3.address())
        assert result.code == 2, result
        assert "refused access" in result.err or "rejected the credentials" in result.err
        assert "testing" not in result.err
        result = run("verify", s3.address("captures/2025/03/08/20250308T121500Z-7f3a9c21.wacz"))
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    finally:
        requests.post(f"{s3.endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)


def test_no_credentials_or_no_endpoint_give_one_line_and_exit_2(run, s3, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = run("ls", s3.address())
    assert result.code == 2 and "no AWS credentials found" in result.err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = run("ls", s3.address(), "--endpoint-url", "http://127.0.0.1:9")   # nothing listens
    assert result.code == 2 and "cannot reach the S3 endpoint" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_local_store_listing_still_works(capture, run, tmp_path):
    wacz = capture("/")
    listed = json.loads(run("ls", "--store", tmp_path / "store", "--json").out)
    assert [row["id"] for row in listed] == [wacz.name[:-5]]
    assert listed[0]["seeds"] and listed[0]["signer"]
    shown = run("show", wacz.name[:-5], "--store", tmp_path / "store")
    assert shown.code == 0 and "title" in shown.out
    with zipfile.ZipFile(wacz) as zf:
        assert "datapackage.json" in zf.namelist()


@pytest.mark.parametrize("endpoint, message", [
    ("localhost:9000", "not an S3 endpoint URL"),
    ("http://AKIAXX:topsecret@127.0.0.1:9", "takes no user or password"),
    ("http://AKIAXX:topsecret@bad host", "takes no user or password"),
    ("http://127.0.0.1:99999", "not an S3 endpoint URL"),
])
def test_bad_endpoint_urls_give_one_line_without_credentials(run, s3, monkeypatch, endpoint, message):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for args in (("ls", s3.address(), "--endpoint-url", endpoint),
                 ("verify", s3.address("20250308T121500Z-7f3a9c21"), "--endpoint-url", endpoint)):
        result = run(*args)
        assert result.code == 2, result
        assert message in result.err and len(result.err.strip().splitlines()) == 1
        assert "topsecret" not in result.err and "internal error" not in result.err
    # the same URL from the AWS chain (AWS_ENDPOINT_URL) is not echoed either
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://a:topsecret@bad host")
    result = run("ls", s3.address())
    assert result.code == 2 and "invalid S3 endpoint URL" in result.err, result
    assert "topsecret" not in result.err and "internal error" not in result.err


def test_a_lock_mode_without_retention_days_is_refused_not_ignored(run, key, site, s3, tmp_path):
    result = capture_to_s3(run, key, site, tmp_path, s3.address(), "--lock-mode", "COMPLIANCE")
    assert result.code == 2 and "--lock-mode applies to --retain-days only" in result.err, result
    assert site.site.requests == [] and s3.keys() == []
    result = run("store", "init", "s3://fresh-evidence", "--lock-mode", "COMPLIANCE")
    assert result.code == 2 and "--lock-mode applies to --retain-days only" in result.err, result
    assert "fresh-evidence" not in [b["Name"] for b in s3.client.list_buckets()["Buckets"]]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_upload_interrupted_aborts_it_and_says_where_the_capture_is_kept(key, site, s3, s3_proxy, tmp_path,
                                                                           monkeypatch, signum):
    """`archive capture` stopped mid-upload, by the user (Ctrl-C: SIGINT) or by SIGTERM
    (systemd, docker stop, timeout): exit 130, one line saying the capture was not stored
    and where the sealed capture is kept, no object and no dangling multipart upload."""
    site.site.add("/big.bin", random.Random(3).randbytes(11 << 20), content_type="application/octet-stream")
    parts, aborted = [], threading.Event()

    def hold_parts(exchange):
        # each part waits here: the upload is in flight when the signal comes, and cannot
        # complete before the capture has acted on it
        if exchange.is_part:
            parts.append(exchange.part_number)
            if aborted.wait(10):
                # S3's answer to a part of an aborted upload (moto's is a 500, which
                # boto3 retries for seconds while the stopped capture waits for it)
                return s3_error("NoSuchUpload", 404)
        return None

    def note_the_abort(exchange, status):
        if exchange.method == "DELETE" and "uploadId" in exchange.query:
            aborted.set()

    s3_proxy.on_request, s3_proxy.after = hold_parts, note_the_abort
    monkeypatch.setenv("ARCHIVE_S3_PART_SIZE", "5")
    work = tmp_path / "work"
    process = start_capture([site.url("/big.bin"), "--key", key, "--store", s3.address(), "--quiet"], work)
    try:
        # all three parts sent: the capture waits for them, and aborts as soon as it is
        # stopped. (Stopped while still sending them, it would wait for the parts before
        # aborting: the 10 s above would end that wait.)
        deadline = time.monotonic() + 60
        while len(parts) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        assert len(parts) == 3, (parts, ended(process, 30))
        process.send_signal(signum)
        out, err = ended(process, 60)
    finally:
        aborted.set()
        kill(process)
    assert process.returncode == 130, (out, err)
    [line] = err.strip().splitlines()
    assert "interrupted" in line and "was not stored" in line and "--resume" in line, line
    kept = Path(line.split("kept at ", 1)[1].split(";")[0])
    assert kept.is_file() and work in kept.parents, line
    assert not [k for k in s3.keys() if k.endswith(".wacz")]
    assert s3.uploads() == []


def test_resuming_a_capture_already_stored(run, key, site, s3, tmp_path):
    """Its very bytes in the store (a run stopped before it cleaned up): found, nothing
    written again. Other bytes under its key: refused, without a misleading hint."""
    out = json.loads(capture_to_s3(run, key, site, tmp_path, s3.address(), "--keep-local").out)
    wacz_key = capture_key(out["capture_id"])
    found = run("capture", "--resume", out["work_dir"], "--key", key, "--store", s3.address(),
                "--keep-local", "--json")
    assert found.code == 0, found
    assert json.loads(found.out)["sha256"] == out["sha256"]
    assert len(s3.versions(wacz_key)) == 1
    s3.client.put_object(Bucket=s3.bucket, Key=wacz_key, Body=b"another file")
    again = run("capture", "--resume", out["work_dir"], "--key", key, "--store", s3.address(), "--quiet")
    assert again.code == 2, again
    [line] = again.err.strip().splitlines()
    assert "already exists" in line and "never overwritten" in line and "kept at" in line
    # resuming into this store would be refused again: the way out is another store
    assert line.count("--resume") == 1 and "--store ANOTHER-STORE --override-saved`" in line
    assert len(s3.versions(wacz_key)) == 2


@pytest.mark.parametrize("value", ["4", "5121", "0", "-8", "eight"])
def test_a_part_size_s3_would_refuse_is_refused_before_the_crawl(run, key, site, s3, tmp_path,
                                                                  monkeypatch, value):
    """S3 takes parts of 5 MiB to 5 GiB (and no single PUT over 5 GiB): any other
    ARCHIVE_S3_PART_SIZE is a one-line error before anything is fetched."""
    monkeypatch.setenv("ARCHIVE_S3_PART_SIZE", value)
    with site.site.lock:
        site.site.requests.clear()
    result = capture_to_s3(run, key, site, tmp_path, s3.address())
    assert result.code == 2, result
    assert "ARCHIVE_S3_PART_SIZE must be a whole number of MiB from 5 to 5120" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not site.site.requests and not [k for k in s3.keys() if k.endswith(".wacz")]


def test_every_command_that_reads_a_store_takes_endpoint_url(run, key, pubkey, site, s3, tsa,
                                                             tmp_path, monkeypatch):
    """--endpoint-url reaches the store for timestamp, extract, diff and custody as it does
    for ls, show and verify: with the AWS chain's endpoint dead, each still works."""
    ids = []
    for _ in range(2):
        result = capture_to_s3(run, key, site, tmp_path, s3.address())
        assert result.code == 0, result
        ids.append(json.loads(result.out)["capture_id"])
    endpoint = s3.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")    # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ARCHIVE_KEY", str(key))
    store = s3.address()
    commands = [
        ("timestamp", ids[1], "--store", store, "--tsa", tsa.url),
        ("extract", ids[0], "--store", store, "--url", site.url("/"), "--out", tmp_path / "page.html"),
        ("diff", ids[0], ids[1], "--store", store),
        ("custody", "show", ids[0], "--store", store),
        ("custody", "verify", "--store", store, "--trust", pubkey, "--files"),
    ]
    for command in commands:
        cut_off = run(*command)
        assert cut_off.code == 2 and "cannot reach the S3 endpoint" in cut_off.err, (command, cut_off)
        result = run(*command, "--endpoint-url", endpoint)
        assert result.code == 0, (command, result)
    assert (tmp_path / "page.html").read_bytes() == site.site.served["/"]
    assert "every capture's bytes hash as recorded when stored (2 read" in result.out   # over S3


def test_text_from_a_capture_with_terminal_escapes_is_shown_not_obeyed(capture, run, site, tmp_path):
    """What a capture says of itself (its title, operator; page titles) may be anyone's
    text: `show`, `ls` and `diff` print escape sequences, carriage returns and bidi
    overrides as escapes, never raw."""
    evil = "\x1b[2K\rVERIFIED \u202eEVIL"
    site.site.html("/evil", "calm", "<p>x</p>")
    first = capture("/evil")
    site.site.html("/evil", evil, "<p>x</p>")
    time.sleep(1.1)                       # capture times have whole seconds
    second = capture("/evil", extra=("--title", evil, "--operator", evil))
    outputs = [run("show", second.name[:-5], "--store", tmp_path / "store"),
               run("ls", "--store", tmp_path / "store"),
               run("diff", first, second)]
    for result in outputs:
        assert result.code == 0, result
        assert "\x1b" not in result.out and "\r" not in result.out and "\u202e" not in result.out
    assert outputs[0].out.count("\\x1b[2K\\rVERIFIED \\u202eEVIL") == 2     # title and operator
    assert "\\x1b[2K VERIFIED" in outputs[2].out     # the page's new title (its CR read as a space)


def test_a_bucket_that_keeps_no_versions_is_warned_about(run, key, site, s3, tmp_path):
    """Captures are never overwritten (If-None-Match), but in a bucket with neither
    versioning nor Object Lock anyone with write access can delete one for good: the
    capture is stored, and the operator is told. A bucket that keeps versions is not."""
    plain = s3.make_bucket(lock=False, versioning=False)
    result = capture_to_s3(run, key, site, tmp_path, f"s3://{plain}")
    assert result.code == 0, result
    assert "archive: warning: " in result.err and "keeps no object versions and no Object Lock" in result.err
    assert "keeps no object versions" in json.loads(result.out)["warnings"][0]
    versioned = s3.make_bucket(lock=False, versioning=True)
    kept = capture_to_s3(run, key, site, tmp_path, f"s3://{versioned}")
    assert kept.code == 0 and json.loads(kept.out)["warnings"] == [] and "warning" not in kept.err
