"""A capture's signature checked with nothing but openssl (`archive extract --signature`),
signatures in both encodings and on both curves, and the notice to owners of P-256 keys."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from archive.keys import public_pem
from archive.seal.sign import Signer
from tests.conftest import PASSPHRASE
from tests.verifyhelp import build_wacz


class _DerSigner(Signer):
    """Signs as this tool did before P-384 keys: the signature in DER."""

    def sign(self, hash_value: str, created: str) -> dict:
        signed = super().sign(hash_value, created)
        der = self._key.sign(hash_value.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        return dict(signed, signature=base64.b64encode(der).decode("ascii"))


def _openssl_verify(files: dict[str, Path]) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(files["pub"]), "-signature",
                           str(files["sig"]), str(files["signed"])], capture_output=True, text=True)


def _files(folder: Path, name: str) -> dict[str, Path]:
    return {"signed": folder / f"{name}.signed.txt", "pub": folder / f"{name}.pub.pem",
            "sig": folder / f"{name}.sig.der", "datapackage": folder / f"{name}.datapackage.json"}


def test_openssl_verifies_the_exported_signature_of_a_stored_capture(capture, run, tmp_path, pubkey):
    wacz = capture("/")
    capture_id = wacz.stem
    out = tmp_path / "sig"
    result = run("extract", capture_id, "--signature", out, "--store", tmp_path / "store")
    assert result.code == 0, result
    files = _files(out, capture_id)
    assert f"openssl dgst -sha256 -verify {files['pub']} -signature {files['sig']} {files['signed']}" in result.out
    checked = _openssl_verify(files)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked
    # the signed text is the SHA-256 of the datapackage.json written beside it, which is the capture's
    datapackage = zipfile.ZipFile(wacz).read("datapackage.json")
    assert files["datapackage"].read_bytes() == datapackage
    assert files["signed"].read_bytes() == b"sha256:" + hashlib.sha256(datapackage).hexdigest().encode()
    assert files["pub"].read_bytes() == pubkey.read_bytes()
    # a changed byte of what was signed and openssl refuses it
    signed = files["signed"].read_bytes()
    files["signed"].write_bytes(signed[:-1] + (b"1" if signed.endswith(b"0") else b"0"))  # (one in 16 ends in 0)
    assert _openssl_verify(files).returncode != 0
    # taking it out of the store is on the custody record; nothing is ever overwritten
    ledger = " ".join(p.read_text() for p in (tmp_path / "store" / "custody").rglob("*")
                      if p.is_file() and p.suffix in (".json", ".jsonl"))   # the Merkle tree's files are binary
    assert '"signature"' in ledger and "exported" in ledger
    again = run("extract", capture_id, "--signature", out, "--store", tmp_path / "store")
    assert again.code == 2 and "already exists" in again.err and again.err.count("\n") == 1


def test_a_p256_der_signature_of_an_older_capture_verifies_here_and_with_openssl(tmp_path, run):
    """Captures sealed before P-384: a P-256 key, the signature in DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "old.pub.pem").write_bytes(public_pem(key.public_key()))
    old = build_wacz(tmp_path / "old-der.wacz", [{"url": "http://site.test/", "body": b"<p>old</p>"}],
                     _DerSigner(key))
    report = json.loads(run("verify", old, "--trust", tmp_path / "old.pub.pem", "--json").out)
    assert report["verdict"] == "VERIFIED", report["reason"]
    assert (report["signature"]["curve"], report["signature"]["encoding"]) == ("P-256", "DER")
    assert any("ReplayWeb.page cannot confirm" in n for n in report["notes"]), report["notes"]
    text = run("verify", old, "--trust", tmp_path / "old.pub.pem").out
    assert "ECDSA P-256, DER signature" in text
    result = run("extract", old, "--signature", tmp_path / "out", "--json")
    assert result.code == 0 and json.loads(result.out)["encoding"] == "DER", result
    assert _openssl_verify(_files(tmp_path / "out", "old-der")).returncode == 0


def test_a_capture_in_our_current_form_is_p384_raw_and_so_reported(capture, run, pubkey):
    report = json.loads(run("verify", capture("/"), "--trust", pubkey, "--json").out)
    assert report["verdict"] == "VERIFIED"
    assert (report["signature"]["curve"], report["signature"]["encoding"]) == ("P-384", "raw")
    assert not any("ReplayWeb.page" in n for n in report["notes"])


def test_an_unsigned_capture_has_no_signature_to_export(tmp_path, run):
    wacz = build_wacz(tmp_path / "u.wacz", [{"url": "http://site.test/", "body": b"x"}], None)
    result = run("extract", wacz, "--signature", tmp_path / "out")
    assert result.code == 2 and "is not signed" in result.err and result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    mixed = run("extract", wacz, "--signature", tmp_path / "out", "--url", "http://site.test/")
    assert mixed.code == 2 and "cannot be combined with --url" in mixed.err


def test_a_p256_key_owner_is_told_once_that_replaywebpage_cannot_confirm_it(run, site, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert run("keys", "generate", "--out", tmp_path / "k", "--curve", "p256").code == 0
    told = []
    for n in range(2):
        result = run("capture", site.url("/about"), "--key", tmp_path / "k" / "signing-key.pem", "--store",
                     tmp_path / "store", "--work-dir", tmp_path / f"work{n}", "--quiet", "--no-dedup")
        assert result.code == 0, result
        told.append("ReplayWeb.page confirms P-384 signatures only" in result.err)
    assert told == [True, False]


def test_a_p256_key_owner_running_a_job_is_told_once_too(run, site, tmp_path, monkeypatch):
    from tests.jobfiles import write_job

    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert run("keys", "generate", "--out", tmp_path / "k", "--curve", "p256").code == 0
    job = write_job(tmp_path, "about", [site.url("/about")], tmp_path / "k" / "signing-key.pem",
                    tmp_path / "store", crawl={"depth": 0})
    told = []
    for _ in range(2):
        result = run("jobs", "run", job, "--quiet")
        assert result.code == 0, result
        told.append("ReplayWeb.page confirms P-384 signatures only" in result.err)
    assert told == [True, False]
