"""Files written by other tools (../shared/testdata/foreign, read in place): our verdict
agrees with `warcio check` on every WARC, and every WACZ gets a clear verdict saying
what could and could not be checked."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from warcio.checker import Checker

from archive.reader.warcioreader import check_warc_slow
from archive.reader.warcs import WarcChecker
from tests.verifyhelp import FOREIGN, archive_cmd, warcio_check

WARCS = sorted(p.name for p in FOREIGN.glob("*.warc*"))


def test_the_foreign_files_are_there():
    assert len(WARCS) == 17 and len(list(FOREIGN.glob("*.wacz"))) == 5


@pytest.mark.parametrize("name", WARCS)
def test_warc_verdict_agrees_with_warcio_check(name):
    path = FOREIGN / name
    reference = warcio_check(path)            # the real command, as the reference
    proc = archive_cmd("verify", path, "--allow-unsigned", "--json")
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == ""                  # warcio's warnings do not leak
    report = json.loads(proc.stdout)
    assert proc.returncode == reference, (name, report["reason"])
    if reference == 0:
        assert report["verdict"] == "VERIFIED" and report["qualifier"] == "INTEGRITY ONLY"
    else:
        failing = [c for c in report["checks"] if c["status"] == "fail"]
        assert failing and failing[0]["problems"], report


def test_text_for_a_broken_foreign_warc_names_record_and_offset():
    proc = archive_cmd("verify", FOREIGN / "example-extra.warc", "--allow-unsigned")
    assert proc.returncode == 1
    assert proc.stdout.startswith("NOT VERIFIED")
    assert "payload digest failed" in proc.stdout and "byte offset 3207" in proc.stdout
    assert "<urn:uuid:6d058047-ede2-4a13-be79-90c17c631dd4>" in proc.stdout


EXPECTED_WACZ = {
    # name: (exit code, verdict, words the report must contain)
    "valid_signed_example_1.wacz": (2, "COULD NOT CHECK", ["domain-identity", "btrix-sign-test.webrecorder.net",
                                                            "cannot be checked offline", "NOT CHECKED"]),
    "invalid_signed_example_1.wacz": (2, "COULD NOT CHECK", ["domain-identity", "cannot be checked offline"]),
    "valid_example_2.wacz": (1, "NOT VERIFIED", ["UNSIGNED", "--allow-unsigned"]),
    "valid_example_1.wacz": (1, "NOT VERIFIED", ["WACZ 1.0.0", "UNSIGNED"]),
    "invalid_example_1.wacz": (1, "NOT VERIFIED", ["no WARC files", "datapackage-digest.json is missing"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_WACZ))
def test_foreign_wacz_gets_a_clear_verdict(name):
    code, verdict, words = EXPECTED_WACZ[name]
    proc = archive_cmd("verify", FOREIGN / name)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert proc.stdout.startswith(verdict + ":") or proc.stdout.startswith(verdict + " (")
    assert proc.stderr == ""
    for word in words:
        assert word in proc.stdout, (word, proc.stdout)
    if name != "invalid_example_1.wacz":
        assert "headers were read leniently" in proc.stdout   # not our canonical container


def test_foreign_wacz_contents_pass_when_the_signature_question_is_waived():
    for name, qualifier in (("valid_signed_example_1.wacz", "SIGNATURE NOT CHECKED"),
                            ("valid_example_2.wacz", "UNSIGNED"), ("valid_example_1.wacz", "UNSIGNED")):
        proc = archive_cmd("verify", FOREIGN / name, "--allow-unsigned")
        assert proc.returncode == 0 and proc.stdout.startswith(f"VERIFIED ({qualifier})"), proc.stdout


# -- differential: the fast reader and warcio's, on damaged copies --------------------------

def _warcio_exit(data: bytes, tmp: Path) -> int:
    """warcio check in-process (its Checker), a crash counted as a failure."""
    path = tmp / "case.warc"
    path.write_bytes(data)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return Checker(SimpleNamespace(inputs=[str(path)], verbose=False)).process_all()
    except Exception:  # noqa: BLE001 - warcio crashing on a damaged file is a failure too
        return 1


def _ours(data: bytes, pieces: int) -> bool:
    """True when our reader verifies every record (fed in `pieces` random pieces)."""
    checker = WarcChecker("case")
    rng = random.Random(pieces)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, max(1, len(data) // pieces))
        checker.feed(data[pos:pos + step])
        pos += step
    result = checker.finish()
    if checker.needs_fallback:
        result = check_warc_slow(io.BytesIO(data), "case")
    return not result.problems and result.readable and result.unchecked is None


SOURCES = [FOREIGN / n for n in WARCS if n not in ("example-iana.warc",)]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(SOURCES) - 1), where=st.floats(0, 1), how=st.sampled_from(["flip", "cut", "insert"]),
       bit=st.integers(0, 7), pieces=st.integers(1, 40))
def test_never_verified_where_warcio_check_fails(tmp_path, which, where, how, bit, pieces):
    data = bytearray(SOURCES[which].read_bytes())
    pos = min(int(where * len(data)), len(data) - 1)
    if how == "flip":
        data[pos] ^= 1 << bit
    elif how == "cut":
        del data[pos:]
    else:
        data[pos:pos] = bytes([bit + 65])
    data = bytes(data)
    if not _ours(data, pieces):
        return
    assert _warcio_exit(data, tmp_path) == 0, f"{how} at {pos} of {SOURCES[which].name}: we verified, warcio check fails"


# the foreign WARCs the fast reader leaves to warcio's reader, with what that finds first
DAMAGED = {
    "example-bad-non-chunked.warc.gz": "cannot read past this point: the file is one gzip stream",
    "example-extra.warc": "payload digest failed",
    "example-trunc.warc": "block digest failed",
    "example-wrong-chunks.warc.gz": "record is cut short",
}


@pytest.mark.parametrize("name", WARCS)
def test_fast_reader_agrees_with_warcio_reader_on_records(name):
    data = (FOREIGN / name).read_bytes()
    checker = WarcChecker(name)
    checker.feed(data)
    fast = checker.finish()
    slow = check_warc_slow(io.BytesIO(data), name)
    if checker.needs_fallback:
        # the fast reader hands exactly the damaged files to warcio's reader, which names
        # their damage (warcio check fails on each too)
        assert name in DAMAGED, name
        assert [p.message for p in slow.problems.all()][0].startswith(DAMAGED[name])
        return
    assert name not in DAMAGED, f"{name}: the fast reader took a damaged file as readable"
    assert [(r.offset, r.length, r.record_type, r.uri) for r in fast.records] == \
        [(r.offset, r.length, r.record_type, r.uri) for r in slow.records]
    assert bool(fast.problems) == bool(slow.problems)


@pytest.mark.parametrize("name", [n for n in WARCS if n.startswith("example-")])
def test_no_problem_names_a_negative_byte_offset(name):
    """warcio's offsets go below zero in a file that is one gzip stream: never shown."""
    report = json.loads(archive_cmd("verify", FOREIGN / name, "--allow-unsigned", "--json").stdout)
    offsets = [p.get("offset") for c in report["checks"] for p in c["problems"]]
    assert all(o is None or o >= 0 for o in offsets), offsets


def test_a_warc_without_digests_does_not_read_as_checked():
    """warcio check passes a WARC whose records carry no digest; so do we, but saying so."""
    proc = archive_cmd("verify", FOREIGN / "c1_warcinfo.warc", "--allow-unsigned", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["capture"]["digestsChecked"] == 0
    assert "no record in it carries a digest" in report["reason"] and "holds" not in report["reason"]


def test_records_without_a_digest_among_checked_ones_are_named(tmp_path):
    """A WARC whose records mostly carry digests but one does not: it passes as warcio
    check passes it, but the report says that record's content was not checked."""
    def record(n: int, digests: bool) -> bytes:
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npage %d" % n
        payload = block.split(b"\r\n\r\n", 1)[1]
        head = [b"WARC/1.1", b"WARC-Type: response", b"WARC-Record-ID: <urn:uuid:%d>" % n,
                b"WARC-Date: 2026-01-01T00:00:00Z", b"WARC-Target-URI: http://example.test/%d" % n,
                b"Content-Type: application/http; msgtype=response"]
        if digests:
            for name, data in ((b"Block", block), (b"Payload", payload)):
                value = base64.b32encode(hashlib.sha1(data).digest())
                head.append(b"WARC-%s-Digest: sha1:%s" % (name, value))
        head.append(b"Content-Length: %d" % len(block))
        return b"\r\n".join(head) + b"\r\n\r\n" + block + b"\r\n\r\n"

    path = tmp_path / "mixed.warc"
    path.write_bytes(b"".join(record(n, digests=n != 1) for n in range(3)))
    proc = archive_cmd("verify", path, "--allow-unsigned", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["verdict"] == "VERIFIED", report
    assert report["capture"]["undigested"] == 1 and report["capture"]["digestsChecked"] == 4
    assert "1 record with content and no digest could not be checked" in report["reason"]
    [records] = [c for c in report["checks"] if c["name"] == "records"]
    assert "1 record with content but no digest (not checked)" in records["summary"]


def test_counts_read_as_words():
    out = archive_cmd("verify", FOREIGN / "example-bad-non-chunked.warc.gz", "--allow-unsigned").stdout
    assert "1 record in 1 WARC file: 1 problem" in out and "1 records" not in out
    out = archive_cmd("verify", FOREIGN / "valid_example_2.wacz").stdout
    assert "1 page listed" in out and "contents      1 page, 4 records" in out


def test_a_domain_certificate_with_a_damaged_key_is_said_so():
    """The certificate parses, its key does not (a point off the curve): one clear line,
    not an internal error."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from archive.verify.domainsig import check_domain_signature
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    start = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    der[bytes(der).index(point) + 64] ^= 1
    pem = x509.load_der_x509_certificate(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    result = check_domain_signature({"domainCert": pem, "signature": base64.b64encode(b"sig").decode(),
                                     "hash": "sha256:" + "0" * 64})
    assert result.matches is None and "cannot be read" in result.detail


def test_files_hashed_with_md5_or_sha1_are_pointed_out(tmp_path):
    """valid_example_2.wacz with its files hashed in MD5 and SHA-1 (its manifest and digest
    rewritten to match): the contents still verify, with a warning that such hashes
    show damage, not replacement."""
    import zipfile

    with zipfile.ZipFile(FOREIGN / "valid_example_2.wacz") as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    datapackage = json.loads(members["datapackage.json"])
    for n, resource in enumerate(datapackage["resources"]):
        algorithm = ("md5", "sha1")[n % 2]
        resource["hash"] = f"{algorithm}:" + hashlib.new(algorithm, members[resource["path"]]).hexdigest()
    members["datapackage.json"] = json.dumps(datapackage).encode()
    digest = json.loads(members["datapackage-digest.json"])
    digest["hash"] = "sha256:" + hashlib.sha256(members["datapackage.json"]).hexdigest()
    members["datapackage-digest.json"] = json.dumps(digest).encode()
    weak = tmp_path / "weak.wacz"
    with zipfile.ZipFile(weak, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)

    proc = archive_cmd("verify", weak, "--allow-unsigned", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "VERIFIED"
    resources = next(c for c in report["checks"] if c["name"] == "resources")
    assert resources["status"] == "warn" and "MD5 and SHA-1" in resources["summary"]
    text = archive_cmd("verify", weak, "--allow-unsigned").stdout
    assert "colliding files can be made" in text

    # a mismatch still fails, whatever the algorithm
    warc = bytearray(members["archive/example-collection.warc"])
    warc[len(warc) // 2] ^= 1
    members["archive/example-collection.warc"] = bytes(warc)
    with zipfile.ZipFile(weak, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    assert archive_cmd("verify", weak, "--allow-unsigned").returncode == 1


def test_a_wacz_zipped_again_with_zip_r_verifies_as_the_original(tmp_path):
    """Unzipped to look inside and zipped again with `zip -r`, which adds an empty entry per
    folder: those entries hold nothing and every zip reader passes them over. They were
    refused as a 'zip slip'; now the capture is checked as the original is."""
    import subprocess
    import zipfile

    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(FOREIGN / "valid_example_1.wacz") as zf:
        zf.extractall(folder)
    rezipped = tmp_path / "rezipped.wacz"
    subprocess.run(["zip", "-q", "-r", "-0", str(rezipped), "."], cwd=folder, check=True)
    with zipfile.ZipFile(rezipped) as zf:
        assert any(name.endswith("/") for name in zf.namelist()), "zip -r added folder entries"
    original = json.loads(archive_cmd("verify", FOREIGN / "valid_example_1.wacz", "--allow-unsigned",
                                      "--json").stdout)
    again = json.loads(archive_cmd("verify", rezipped, "--allow-unsigned", "--json").stdout)
    assert again["verdict"] == original["verdict"] == "VERIFIED", again
    assert [(c["name"], c["status"]) for c in again["checks"]] == [(c["name"], c["status"]) for c in original["checks"]]
