"""`archive capture --store s3://`, `verify s3://`, `ls`, `show` and `store init` end to end:
a real HTTP site, a real S3 endpoint (moto's server) over HTTP, the CLI in-process."""

import hashlib
import json
import random
import zipfile
from pathlib import Path

import pytest
import requests

from archive.store.base import capture_key


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
    assert "custody: 3 custody entries (captured, sealed, stored), ledger chain intact" in verified.out
    assert len([k for k in s3.keys() if k.startswith("evidence/2025/custody/")]) == 4
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
    kept = Path(line.rsplit("kept at ", 1)[1].rstrip(")"))
    assert kept.is_file()
    assert not [k for k in s3.keys() if k.endswith(".wacz")]
    assert run("verify", kept, "--trust", pubkey).code == 0      # the kept copy is whole


def test_a_tampered_object_in_s3_does_not_verify(run, key, pubkey, site, s3, tmp_path):
    out = json.loads(capture_to_s3(run, key, site, tmp_path, s3.address()).out)
    wacz_key = stored_key(s3)
    data = bytearray(s3.read(wacz_key))
    data[len(data) // 3] ^= 0x01
    s3.client.put_object(Bucket=s3.bucket, Key=wacz_key, Body=bytes(data))   # a new version on top
    result = run("verify", out["address"], "--trust", pubkey)
    assert result.code == 1, result
    assert result.out.startswith("NOT VERIFIED")


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
