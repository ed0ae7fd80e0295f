"""A sealed capture that was altered in any way must not verify."""

import hashlib
import json
import random
import subprocess
import zipfile

import pytest

from archive.verify.checks import verify_path
from archive.cli.common import trusted_keys
from tests.conftest import tool
from tests.verifyhelp import gzip_members, refresh, rezip


@pytest.fixture
def sealed(capture):
    return capture("/", "/about")


def _verify(path, pubkey):
    return verify_path(str(path), trusted_keys([str(pubkey)]))


def test_every_region_of_the_file_is_protected(sealed, pubkey, tmp_path):
    data = sealed.read_bytes()
    assert _verify(sealed, pubkey).exit_code == 0
    rng = random.Random(1234)
    # every byte of the zip structures near both ends, and random bytes everywhere
    positions = set(range(0, 200)) | set(range(len(data) - 400, len(data)))
    positions |= {rng.randrange(len(data)) for _ in range(300)}
    target = tmp_path / "flipped.wacz"
    for pos in sorted(positions):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << rng.randrange(8)
        target.write_bytes(flipped)
        report = _verify(target, pubkey)
        assert report.exit_code == 1, f"flip at byte {pos} verified: {report.reason}"
        assert any(c.status == "fail" for c in report.checks)


def test_flip_names_the_failing_file(sealed, pubkey, tmp_path):
    zf = zipfile.ZipFile(sealed)
    info = next(i for i in zf.infolist() if i.filename.startswith("archive/"))
    data = bytearray(sealed.read_bytes())
    # a byte in the middle of the WARC's data
    pos = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[pos] ^= 0x40
    target = tmp_path / "t.wacz"
    target.write_bytes(data)
    report = _verify(target, pubkey)
    failing = {c.name: c for c in report.checks if c.status == "fail"}
    assert "resources" in failing
    assert any(p.file == info.filename for p in failing["resources"].problems)


def _rewrite(src, dst, replace: dict[str, bytes]):
    """Re-zip with some members replaced (what a tamperer without our key can do)."""
    rezip(src, dst, replace)


def _refresh_hashes(wacz, dst, changed: dict[str, bytes]):
    """Everything consistent except the signature (tests.verifyhelp.refresh)."""
    refresh(wacz, dst, changed)


def _drop_record(warc_gz: bytes, uri_part: bytes) -> bytes:
    """Remove one gzip member (one record) whose content mentions uri_part."""
    import gzip
    out, members = [], gzip_members(warc_gz)
    dropped = False
    for m in members:
        if not dropped and b"WARC-Type: response" in gzip.decompress(m) and uri_part in gzip.decompress(m):
            dropped = True
            continue
        out.append(m)
    assert dropped
    return b"".join(out)


def test_deleted_record_is_detected_even_with_hashes_recomputed(sealed, pubkey, tmp_path):
    zf = zipfile.ZipFile(sealed)
    warc_name = next(n for n in zf.namelist() if n.startswith("archive/"))
    smaller = _drop_record(zf.read(warc_name), b"/about")
    plain = tmp_path / "plain.wacz"
    _rewrite(sealed, plain, {warc_name: smaller})
    report = _verify(plain, pubkey)
    assert report.exit_code == 1
    assert {"resources", "index"} <= {c.name for c in report.checks if c.status == "fail"}

    consistent = tmp_path / "consistent.wacz"
    _refresh_hashes(sealed, consistent, {warc_name: smaller})
    report = _verify(consistent, pubkey)
    assert report.exit_code == 1
    failing = {c.name for c in report.checks if c.status == "fail"}
    assert "signature" in failing and "index" in failing


def test_swapped_datapackage_is_detected(capture, pubkey, tmp_path):
    first = capture("/")
    second = capture("/about")
    other = zipfile.ZipFile(second).read("datapackage.json")
    swapped = tmp_path / "swapped.wacz"
    _rewrite(first, swapped, {"datapackage.json": other})
    report = _verify(swapped, pubkey)
    assert report.exit_code == 1
    assert "datapackage-digest" in {c.name for c in report.checks if c.status == "fail"}


def test_signature_replayed_from_another_capture_fails(capture, pubkey, tmp_path):
    first, second = capture("/"), capture("/about")
    digest = zipfile.ZipFile(second).read("datapackage-digest.json")
    replayed = tmp_path / "replayed.wacz"
    _rewrite(first, replayed, {"datapackage-digest.json": digest})
    assert _verify(replayed, pubkey).exit_code == 1


def test_a_broken_or_replayed_signature_next_to_a_trusted_key_names_no_signer(capture, pubkey, run, tmp_path):
    """The key inside the file is a trusted one, but its signature does not hold for this
    file: the report must not say who signed it."""
    import base64
    first, second = capture("/"), capture("/about")
    digest = json.loads(zipfile.ZipFile(first).read("datapackage-digest.json"))
    signature = bytearray(base64.b64decode(digest["signedData"]["signature"]))
    signature[-1] ^= 0x01
    digest["signedData"]["signature"] = base64.b64encode(bytes(signature)).decode()
    broken, replayed = tmp_path / "broken.wacz", tmp_path / "replayed.wacz"
    _rewrite(first, broken, {"datapackage-digest.json": json.dumps(digest).encode()})
    _rewrite(first, replayed, {"datapackage-digest.json": zipfile.ZipFile(second).read("datapackage-digest.json")})
    for path in (broken, replayed):
        text = run("verify", path, "--trust", f"alice={pubkey}").out
        assert text.startswith("NOT VERIFIED") and "signed by     NOT PROVEN" in text and "alice (key" not in text
        report = json.loads(run("verify", path, "--trust", f"alice={pubkey}", "--json").out)
        assert report["signature"]["trustedAs"] is None and report["signature"]["holds"] is False
    report = json.loads(run("verify", first, "--trust", f"alice={pubkey}", "--json", "--no-record").out)
    assert report["signature"]["trustedAs"] == "alice" and report["signature"]["holds"] is True


def test_a_capture_of_ours_turned_into_the_old_unsigned_layout_does_not_pass_as_unsigned(capture, pubkey, tmp_path):
    """Dropping datapackage-digest.json and saying wacz_version 1.0.0 (kept in our
    canonical zip form, or not) must not make a signed capture read as an old unsigned one."""
    sealed = capture("/")
    with zipfile.ZipFile(sealed) as zf:
        parts = {name: zf.read(name) for name in zf.namelist() if name != "datapackage-digest.json"}
    datapackage = json.loads(parts["datapackage.json"])
    parts["datapackage.json"] = json.dumps(dict(datapackage, wacz_version="1.0.0")).encode()
    _canonical(tmp_path / "canonical.wacz", parts)
    parts["datapackage.json"] = json.dumps(dict(datapackage, wacz_version="1.0.0", software="other 1")).encode()
    disguised = rezip(sealed, tmp_path / "disguised.wacz", parts, drop={"datapackage-digest.json"})
    for path in (tmp_path / "canonical.wacz", disguised):
        report = verify_path(str(path), trusted_keys([str(pubkey)]), allow_unsigned=True)
        assert report.exit_code == 1 and not report.signature.get("signed"), (path, report.reason)
        assert "datapackage-digest.json is missing" in report.reason or "signature was removed" in report.reason


def _canonical(path, parts: dict[str, bytes]):
    """Members written in our canonical zip form (as our writer lays them out)."""
    from archive.wacz.zipwriter import ContainerWriter
    writer = ContainerWriter(path)
    for name, body in parts.items():
        writer.add_bytes(name, body)
    writer.finish()
    writer.close()
    return path


def test_a_capture_of_ours_re_signed_in_the_domain_identity_form_does_not_pass(capture, pubkey, tmp_path):
    """A domain-identity signature cannot be checked offline (--allow-unsigned accepts it
    as SIGNATURE NOT CHECKED), so one made with any certificate must not stand in for the
    signature of a capture of ours, whether its evidence still names its key or not."""
    import base64
    import datetime as dt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    sealed = capture("/")
    with zipfile.ZipFile(sealed) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    key, name = ec.generate_private_key(ec.SECP256R1()), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))

    def resigned(evidence: dict, path):
        parts["evidence/capture.json"] = json.dumps(evidence).encode()
        datapackage = json.loads(parts["datapackage.json"])
        for resource in datapackage["resources"]:
            body = parts[resource["path"]]
            resource.update(hash="sha256:" + hashlib.sha256(body).hexdigest(), bytes=len(body))
        parts["datapackage.json"] = json.dumps(datapackage).encode()
        value = "sha256:" + hashlib.sha256(parts["datapackage.json"]).hexdigest()
        signed = {"hash": value, "created": datapackage["created"], "software": "x", "version": "0.1.0",
                  "signature": base64.b64encode(key.sign(value.encode(), ec.ECDSA(hashes.SHA256()))).decode(),
                  "domain": "example.org", "domainCert": cert.public_bytes(serialization.Encoding.PEM).decode(),
                  "timeSignature": "", "timestampCert": ""}
        parts["datapackage-digest.json"] = json.dumps({"path": "datapackage.json", "hash": value,
                                                       "signedData": signed}).encode()
        return verify_path(str(_canonical(path, parts)), trusted_keys([str(pubkey)]), allow_unsigned=True)

    evidence = dict(json.loads(parts["evidence/capture.json"]), operator="someone else")
    report = resigned(evidence, tmp_path / "resigned.wacz")
    assert report.exit_code == 1 and "the signature was replaced" in report.reason, report.reason
    evidence.pop("signer")          # the key named nowhere: the file is still in our own form
    report = resigned(evidence, tmp_path / "unnamed.wacz")
    assert report.exit_code == 1 and "written by this tool" in report.reason, report.reason


def test_untrusted_key_fails(sealed, tmp_path, run, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "other")
    assert run("keys", "generate", "--out", tmp_path / "other").code == 0
    result = run("verify", sealed, "--trust", tmp_path / "other" / "signing-key.pub.pem")
    assert result.code == 1
    assert "not among the keys you trust" in result.out


def test_missing_file_and_non_zip_exit_2_without_traceback(tmp_path, pubkey):
    junk = tmp_path / "junk.wacz"
    junk.write_bytes(b"this is not a zip file at all\n" * 10)
    for target in (tmp_path / "nope.wacz", junk, tmp_path):
        proc = subprocess.run([tool("archive"), "verify", str(target), "--trust", str(pubkey)],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert proc.stdout == ""


def test_json_report(sealed, pubkey, run):
    result = run("verify", sealed, "--trust", pubkey, "--json")
    report = json.loads(result.out)
    assert report["verdict"] == "VERIFIED" and result.code == 0
    assert {c["name"] for c in report["checks"]} >= {
        "container", "resources", "records", "index", "datapackage-digest", "signature"}
    assert report["sha256"] == hashlib.sha256(sealed.read_bytes()).hexdigest()


def test_a_record_left_out_of_the_index_fails_even_when_everything_is_re_signed(sealed, key, pubkey, tmp_path):
    """An index that silently misses records (a writer bug, or an editor hiding a record
    from replay) fails the index check, even with every hash and the signature redone."""
    import gzip as gz

    from archive.keys import load_private_key
    from archive.seal.sign import Signer
    from tests.conftest import PASSPHRASE

    lines = gz.decompress(zipfile.ZipFile(sealed).read("indexes/index.cdx.gz")).decode().splitlines()
    dropped = next(line for line in lines if '"/about"' in line or "/about" in line.split(" ", 2)[2])
    index = gz.compress("".join(f"{line}\n" for line in lines if line != dropped).encode())
    refreshed = tmp_path / "refreshed.wacz"
    _refresh_hashes(sealed, refreshed, {"indexes/index.cdx.gz": index})
    with zipfile.ZipFile(refreshed) as zf:
        dp = zf.read("datapackage.json")
        digest = json.loads(zf.read("datapackage-digest.json"))
    signer = Signer(load_private_key(key, PASSPHRASE.encode()))
    digest["signedData"] = signer.sign(digest["hash"], json.loads(dp)["created"])
    resigned = tmp_path / "resigned.wacz"
    _rewrite(refreshed, resigned, {"datapackage-digest.json": json.dumps(digest).encode()})
    report = _verify(resigned, pubkey)
    checks = {c.name: c for c in report.checks}
    assert report.exit_code == 1
    assert checks["signature"].status == "pass"
    assert checks["index"].status == "fail"
    assert any("not in the index" in p.message and p.uri and p.uri.endswith("/about")
               for p in checks["index"].problems)
