"""RFC 3161 timestamps: tokens at sealing and later, checked by us and by openssl."""

import base64
import json
import socket
import subprocess
import time
import zipfile
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from archive.custody.ledger import FileLedger
from archive.verify.timestamps import INVALID, TRUSTED, UNTRUSTED, check_token, load_tsa_certificates
from tests.conftest import tool
from tests.tsa import TestTsa, make_tsa_credentials


def members(wacz) -> dict:
    with zipfile.ZipFile(wacz) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def digest_of(wacz) -> dict:
    return json.loads(members(wacz)["datapackage-digest.json"])


def verify_json(run, wacz, *args):
    result = run("verify", wacz, "--json", *args)
    assert result.code in (0, 1), result
    report = json.loads(result.out)
    return result.code, report, {c["name"]: c for c in report["checks"]}


def ledger_entries(store) -> list[dict]:
    return [r.entry for r in FileLedger(store / "custody" / "ledger.jsonl").records()]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsr"


def iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_token_at_sealing_verifies_with_the_trusted_tsa_and_with_openssl(
        capture, tsa, tsa_ca, pubkey, run, tmp_path):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    wacz = capture("/", extra=("--tsa", tsa.url))
    digest = digest_of(wacz)
    [entry] = digest["timestamps"]
    assert entry["tsa"] == tsa.url and entry["imprint"] == digest["hash"] and entry["token"]
    assert "timestamps" not in digest["signedData"]   # the anonymous form admits no extra fields

    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 0 and checks["timestamps"]["status"] == "pass"
    assert report["time"]["trusted"] is True
    assert before <= iso(report["time"]["time"]) <= datetime.now(timezone.utc)

    out = tmp_path / "tokens"
    capture_id = wacz.name.removesuffix(".wacz")
    result = run("extract", capture_id, "--store", tmp_path / "store", "--timestamps", out)
    assert result.code == 0, result
    data, token = out / f"{capture_id}.datapackage.json", out / f"{capture_id}.token1.tsr"
    assert data.read_bytes() == members(wacz)["datapackage.json"]
    assert (out / f"{capture_id}.token1.certs.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    openssl = ["openssl", "ts", "-verify", "-data", str(data), "-in", str(token)]
    ok = subprocess.run(openssl + ["-CAfile", str(tsa_ca)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok
    other_ca = make_tsa_credentials("Other").write_ca(tmp_path / "other-ca.pem")
    refused = subprocess.run(openssl + ["-CAfile", str(other_ca)], capture_output=True, text=True)
    assert refused.returncode != 0   # openssl really checks the chain

    # extracting again never overwrites what an investigator already has
    again = run("extract", capture_id, "--store", tmp_path / "store", "--timestamps", out)
    assert again.code == 2 and "already exists" in again.err
    (tmp_path / "a-file").write_text("x")
    into_file = run("extract", capture_id, "--store", tmp_path / "store", "--timestamps", tmp_path / "a-file")
    assert into_file.code == 2 and into_file.err.count("\n") == 1 and "internal" not in into_file.err


def test_token_is_not_trusted_without_its_ca(capture, tsa, tsa_creds, pubkey, run, tmp_path):
    wacz = capture("/", extra=("--tsa", tsa.url))
    code, report, checks = verify_json(run, wacz, "--trust", pubkey)
    assert code == 0 and checks["timestamps"]["status"] == "warn"
    assert checks["timestamps"]["summary"].startswith("no trusted time")
    assert report["time"]["trusted"] is False

    other_ca = make_tsa_credentials("Other").write_ca(tmp_path / "other-ca.pem")
    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", other_ca)
    assert checks["timestamps"]["status"] == "warn" and report["time"]["trusted"] is False
    assert [t["state"] for t in report["time"]["tokens"]] == [UNTRUSTED]
    text = run("verify", wacz, "--trust", pubkey, "--trust-tsa", other_ca).out
    assert "no trusted time" in text
    [token] = report["time"]["tokens"]
    assert "token by CN=Test Time Stamping Authority" in token["message"]   # which of several tokens

    # the TSA's own certificate (what TSAs publish beside their root) is not a root: said so
    leaf = tmp_path / "tsa-leaf.pem"
    leaf.write_bytes(tsa_creds.tsa_cert.public_bytes(serialization.Encoding.PEM))
    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", leaf)
    assert code == 0 and report["time"]["trusted"] is False
    assert "give the root CA certificate that issued it" in report["time"]["tokens"][0]["message"]


def test_a_trust_tsa_file_that_never_ends_is_refused_in_one_line(capture, pubkey):
    """--trust-tsa /dev/zero (or any huge file) was read whole into memory."""
    from tests.verifyhelp import archive_cmd
    proc = archive_cmd("verify", capture("/"), "--trust", pubkey, "--trust-tsa", "/dev/zero",
                       limit_mb=1024, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert "larger than any certificate bundle" in proc.stderr


def test_capture_without_token_verifies_with_no_trusted_time(capture, pubkey, run):
    wacz = capture("/")
    assert "timestamps" not in digest_of(wacz)
    result = run("verify", wacz, "--trust", pubkey)
    assert result.code == 0
    assert "\n  time          no trusted time" in result.out
    assert "no trusted time: the capture holds no RFC 3161 timestamp token" in result.out


def _token_der(wacz) -> bytes:
    return base64.b64decode(digest_of(wacz)["timestamps"][0]["token"])


def _entry(der: bytes) -> dict:
    return {"tsa": "http://tsa", "token": base64.b64encode(der).decode()}


def keep_and_verify(run, tmp_path, capture_id: str, token: bytes, pubkey, tsa_ca):
    """Keep a token beside a stored capture (as anyone able to write to the store can),
    then verify the capture by id: (exit code, report, checks by name)."""
    kept = tmp_path / "store" / "timestamps" / capture_id / "1.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps(_entry(token)))
    return verify_json(run, capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                       "--trust-tsa", tsa_ca, "--no-record")


def test_altered_tokens_and_tokens_over_other_data_are_rejected(capture, tsa, tsa_ca, tsa_creds):
    wacz = capture("/", extra=("--tsa", tsa.url))
    der = _token_der(wacz)
    data = members(wacz)["datapackage.json"]
    roots = load_tsa_certificates([str(tsa_ca)])
    assert check_token(_entry(der), data, roots, "x").state == TRUSTED

    signature = bytearray(der)
    signature[-20] ^= 0x01          # the TSA's RSA signature is the last field
    assert check_token(_entry(bytes(signature)), data, roots, "x").state == INVALID

    gen_time = _tst_gen_time(der)   # "YYYYMMDDhhmmssZ"
    for digit, reason in ((13, "signature does not match"), (3, "is not yet valid (at the time the token states)")):
        moved = bytearray(der)      # another second (or year) of the stated time
        moved[gen_time + digit] = ord("1") if moved[gen_time + digit] != ord("1") else ord("2")
        result = check_token(_entry(bytes(moved)), data, roots, "x")
        assert result.state == INVALID and reason in result.message, result

    other = check_token(_entry(der), data + b" ", roots, "x")
    assert other.state == INVALID and "over another hash" in other.message
    # without any trusted certificate a token over other data is still caught
    assert check_token(_entry(der), data + b" ", [], "x").state == INVALID
    assert check_token({"token": "not base64!"}, data, roots, "x").state == INVALID
    assert check_token(_entry(b"\x30\x03\x02\x01\x00"), data, roots, "x").state == INVALID


@pytest.mark.parametrize("usage, days, reason", [
    (None, (-1, 3650), "not a time-stamping one"),
    ("server", (-1, 3650), "not a time-stamping one"),
    ("time", (-30, -10), "has expired (at the time the token states)"),
])
def test_a_token_by_a_certificate_not_fit_to_time_stamp_then_fails_and_says_why(capture, pubkey, run, tmp_path,
                                                                                usage, days, reason):
    """A chain to the root you trust is not enough: the signer must be a time-stamping
    certificate, valid at the time the token states. Such a token fails (the report
    said 'altered', and OpenSSL's 'system clock' words), and states no trusted time."""
    from cryptography.x509.oid import ExtendedKeyUsageOID
    usages = {None: None, "server": ExtendedKeyUsageOID.SERVER_AUTH, "time": ExtendedKeyUsageOID.TIME_STAMPING}
    creds = make_tsa_credentials("Unfit", usage=usages[usage], days=days)
    with TestTsa(creds) as unfit:
        wacz = capture("/", extra=("--tsa", unfit.url))
    root = creds.write_ca(tmp_path / "unfit-root.pem")
    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", root)
    [token] = report["time"]["tokens"]
    assert code == 1 and token["state"] == INVALID and reason in token["message"], token
    assert not report["time"]["trusted"] and report["time"]["time"] is None
    summary = checks["timestamps"]["summary"]
    assert summary.startswith("1 timestamp token does not hold: ") and reason in summary and "altered" not in summary
    assert "system clock" not in json.dumps(report)


def test_a_bare_token_as_openssl_writes_it_is_read_as_its_response(capture, tsa, tsa_ca, pubkey, run, tmp_path):
    """An entry's `token` may be a TimeStampResp or the bare TimeStampToken (FACTS.md),
    as `openssl ts -reply -token_out` writes it: the bare token was judged unreadable,
    so the capture NOT VERIFIED; it is the same token, trusted, and exported as a reply."""
    from asn1crypto import tsp
    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    response = _token_der(wacz)
    bare = tsp.TimeStampResp.load(response)["time_stamp_token"].dump()
    ok = subprocess.run(["openssl", "ts", "-reply", "-in", "/dev/stdin", "-token_out"], input=response,
                        capture_output=True)
    assert ok.returncode == 0 and ok.stdout == bare      # what openssl writes is this
    code, report, checks = keep_and_verify(run, tmp_path, capture_id, bare, pubkey, tsa_ca)
    assert code == 0 and [t["state"] for t in report["time"]["tokens"]] == [TRUSTED, TRUSTED], checks["timestamps"]
    out = tmp_path / "tokens"
    assert run("extract", capture_id, "--store", tmp_path / "store", "--timestamps", out).code == 0
    assert (out / f"{capture_id}.token2.tsr").read_bytes() == response


def _tst_gen_time(der: bytes) -> int:
    """Offset of the TSTInfo genTime (GeneralizedTime, 4-digit year; the CMS signing
    time is a UTCTime with 2 digits)."""
    year = str(datetime.now(timezone.utc).year).encode()
    pos = der.find(b"\x18\x0f" + year)
    assert pos > 0
    return pos + 2


def test_token_moved_to_another_capture_fails_verification(capture, tsa, tsa_ca, pubkey, run, tmp_path):
    first = capture("/", extra=("--tsa", tsa.url))
    second = capture("/about")
    digest = digest_of(second)
    digest["timestamps"] = digest_of(first)["timestamps"]
    moved = tmp_path / "moved.wacz"
    parts = members(second)
    with zipfile.ZipFile(moved, "w") as zf:
        for name, body in parts.items():
            zf.writestr(name, json.dumps(digest).encode() if name == "datapackage-digest.json" else body)
    code, report, checks = verify_json(run, moved, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 1
    assert checks["timestamps"]["status"] == "fail"
    assert "over another hash" in checks["timestamps"]["problems"][0]["message"]


@pytest.mark.parametrize("mode, reason", [
    ("down", "unreachable"),
    ("slow", "did not answer within 2s"),
    ("trickle", "did not answer within 2s"),           # each byte within the read timeout
    ("trickle-headers", "did not answer within 2s"),
    ("garbage", "not an RFC 3161 response"),
    ("http-error", "HTTP 500"),
    ("reject", "refused"),
    ("wrong-hash", "over another hash"),
])
def test_tsa_failure_keeps_the_capture_and_a_later_token_can_be_added(
        mode, reason, capture, tsa, tsa_creds, tsa_ca, pubkey, run, tmp_path):
    bad = TestTsa(tsa_creds, mode=mode, delay=60)
    url = closed_port_url() if mode == "down" else bad.url
    started = time.monotonic()
    with bad:
        wacz = capture("/", extra=("--tsa", url, "--tsa-timeout", "2"))
    assert time.monotonic() - started < 30      # a slow TSA (60 s) does not hold the capture
    capture_id = wacz.name.removesuffix(".wacz")
    store = tmp_path / "store"
    [missing] = digest_of(wacz)["timestamps"]
    assert missing["token"] is None and reason in missing["error"] and missing["tsa"] == url
    events = [(e["event"], e["details"].get("tsa")) for e in ledger_entries(store)]
    assert ("timestamp-missing", url) in events and ("stored", None) in events

    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 0 and checks["timestamps"]["status"] == "warn"
    assert reason in checks["timestamps"]["problems"][0]["message"]

    sealed_at = iso(json.loads(members(wacz)["datapackage.json"])["created"])
    sealed_bytes = wacz.read_bytes()
    result = run("timestamp", capture_id, "--store", store, "--tsa", tsa.url)
    assert result.code == 0, result
    later = json.loads((store / "timestamps" / capture_id / "1.json").read_bytes())
    assert later["token"] and iso(later["time"]) >= sealed_at and iso(later["added"]) >= iso(later["time"])
    assert wacz.read_bytes() == sealed_bytes    # the stored capture is untouched: write-once

    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 0 and checks["timestamps"]["status"] == "pass"
    assert "added after sealing" in checks["timestamps"]["summary"]
    assert report["time"]["time"] == later["time"]
    stamped = [e for e in ledger_entries(store) if e["event"] == "timestamped"]
    assert stamped[-1]["details"]["object"] == f"timestamps/{capture_id}/1.json"
    assert run("custody", "verify", "--store", store).code == 0


def test_timestamp_command_failures_are_one_line_and_store_nothing(capture, tsa, run, tmp_path):
    wacz = capture("/")
    capture_id = wacz.name.removesuffix(".wacz")
    store = tmp_path / "store"
    result = run("timestamp", capture_id, "--store", store, "--tsa", closed_port_url(), "--tsa-timeout", "2")
    assert result.code == 2 and "no TSA gave a token" in result.err and result.err.count("\n") == 1
    assert not (store / "timestamps").exists()
    assert ledger_entries(store)[-1]["event"] == "timestamp-missing"
    for args in (("20990101T000000Z-00000000",), (capture_id, "--tsa", "not a url")):
        bad = run("timestamp", *args, "--store", store, *(() if len(args) > 1 else ("--tsa", tsa.url)))
        assert bad.code == 2 and bad.err.count("\n") == 1, bad
    nothing = run("extract", capture_id, "--store", store, "--timestamps", tmp_path / "out")
    assert nothing.code == 2 and "no timestamp token" in nothing.err


def test_timestamp_takes_a_capture_id_not_a_file(capture, tsa, run, tmp_path, monkeypatch):
    """`archive timestamp ID`: a file named instead (read from wherever it is, not the
    store) would get a token and a custody entry under a name that is no capture."""
    wacz = capture("/")
    store = tmp_path / "store"
    entries = len(ledger_entries(store))
    monkeypatch.chdir(wacz.parent)
    for target in (wacz.name, str(wacz), wacz.name.removesuffix(".wacz") + "\n"):
        result = run("timestamp", target, "--store", store, "--tsa", tsa.url)
        assert result.code == 2 and result.err.count("\n") == 1 and "not a capture id" in result.err, result
    assert not (store / "timestamps").exists() and tsa.requests == 0
    assert len(ledger_entries(store)) == entries


def test_wacz_with_tokens_still_validates_with_py_wacz(capture, tsa):
    wacz = capture("/", extra=("--tsa", tsa.url, "--tsa", closed_port_url()))
    assert len(digest_of(wacz)["timestamps"]) == 2
    validate = subprocess.run([tool("wacz"), "validate", "-f", str(wacz)], capture_output=True, text=True)
    assert validate.returncode == 0 and "Validation succeeded" in validate.stdout, validate


def test_a_later_token_in_an_s3_store_is_kept_found_and_accounted_for(run, key, pubkey, site, s3, tsa, tsa_ca, tmp_path):
    address = s3.address("evidence")
    result = run("capture", site.url("/"), "--key", key, "--store", address, "--work-dir", tmp_path / "work",
                 "--quiet", "--json", "--tsa", closed_port_url(), "--tsa-timeout", "2")
    assert result.code == 0, result
    capture_id = json.loads(result.out)["capture_id"]
    stamped = run("timestamp", capture_id, "--store", address, "--tsa", tsa.url, "--key", key, "--json")
    assert stamped.code == 0, stamped
    [kept] = json.loads(stamped.out)
    assert kept["object"] == f"timestamps/{capture_id}/1.json"
    assert f"evidence/timestamps/{capture_id}/1.json" in s3.keys()

    code, report, checks = verify_json(run, capture_id, "--store", address, "--trust", pubkey,
                                       "--trust-tsa", tsa_ca, "--no-record")
    assert code == 0 and checks["timestamps"]["status"] == "pass", checks["timestamps"]
    assert "added after sealing" in checks["timestamps"]["summary"] and checks["custody"]["status"] == "pass"
    assert run("custody", "verify", "--store", address, "--trust", pubkey).code == 0
    out = tmp_path / "tokens"
    assert run("extract", capture_id, "--store", address, "--timestamps", out).code == 0
    ok = subprocess.run(["openssl", "ts", "-verify", "-data", str(out / f"{capture_id}.datapackage.json"),
                         "-in", str(out / f"{capture_id}.token1.tsr"), "-CAfile", str(tsa_ca)],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok


def test_a_token_whose_certificate_cannot_be_parsed_is_invalid_not_a_crash(capture, tsa, tsa_ca, pubkey,
                                                                            run, tmp_path):
    """Tokens are outside the signature (anyone can add one beside a stored capture): a
    token carrying a certificate the parser chokes on (an impossible X.509 version) is
    reported invalid, and its certificates are left out of an export, never a crash."""
    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    der = _token_der(wacz)
    version = der.find(b"\xa0\x03\x02\x01\x02")     # the TSA certificate's version, v3
    assert version > 0
    hostile = der[:version + 4] + b"\x42" + der[version + 5:]
    data = members(wacz)["datapackage.json"]
    for roots in ([], load_tsa_certificates([str(tsa_ca)])):
        assert check_token(_entry(hostile), data, roots, "x").state == INVALID

    code, report, checks = keep_and_verify(run, tmp_path, capture_id, hostile, pubkey, tsa_ca)
    assert code == 1 and checks["timestamps"]["status"] == "fail", checks["timestamps"]
    assert any("cannot be read" in t["message"] for t in report["time"]["tokens"] if t["later"])
    out = tmp_path / "tokens"
    result = run("extract", capture_id, "--store", tmp_path / "store", "--timestamps", out)
    assert result.code == 0, result
    assert (out / f"{capture_id}.token2.tsr").read_bytes() == hostile
    assert not (out / f"{capture_id}.token2.certs.pem").exists()


def test_a_token_certificate_with_a_negative_serial_is_judged_in_the_report_not_on_stderr(
        capture, tsa, tsa_creds, tsa_ca, pubkey, tmp_path):
    """cryptography warns of such certificates on stderr: around a verdict (or an
    export) those lines were not the one-line output a script or a person expects."""
    from tests.verifyhelp import archive_cmd
    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    der = bytearray(_token_der(wacz))
    # the TSA certificate's serial comes first (then the signer's id): now negative
    der[der.find(tsa_creds.tsa_cert.serial_number.to_bytes(20, "big"))] |= 0x80
    kept = tmp_path / "store" / "timestamps" / capture_id / "1.json"
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps(_entry(bytes(der))))
    proc = archive_cmd("verify", capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                       "--trust-tsa", tsa_ca, "--no-record", "--json")
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    assert [t["state"] for t in json.loads(proc.stdout)["time"]["tokens"]] == [TRUSTED, INVALID]
    proc = archive_cmd("extract", capture_id, "--store", tmp_path / "store", "--timestamps", tmp_path / "out")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_trusted_time_before_the_capture_says_it_started_is_pointed_out(capture, tsa, tsa_creds, tsa_ca,
                                                                          pubkey, run, tmp_path):
    """A capture cannot exist before it started: a trusted token saying it did shows that
    the capture's own times (its machine's clock, or its operator) are wrong."""
    import datetime as dt
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder
    from tests.tsa import issue_response

    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    data = members(wacz)["datapackage.json"]
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    earlier = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    token = issue_response(request.as_bytes(), tsa_creds, 7, gen_time=earlier)
    code, report, checks = keep_and_verify(run, tmp_path, capture_id, token, pubkey, tsa_ca)
    assert code == 0 and report["time"]["trusted"], checks["timestamps"]
    assert checks["timestamps"]["status"] == "warn"
    [clash] = checks["timestamps"]["problems"]
    assert "clock was at least" in clash["message"] and report["capture"]["started"] in clash["message"]
    assert report["time"]["time"] == report["time"]["tokens"][1]["time"]
    assert [t["accuracy"] for t in report["time"]["tokens"]] == [1, 1]

    (tmp_path / "store" / "timestamps" / capture_id / "1.json").unlink()   # the sealing token: no clash
    code, report, checks = verify_json(run, capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                                       "--trust-tsa", tsa_ca, "--no-record")
    assert code == 0 and checks["timestamps"]["status"] == "pass" and not checks["timestamps"]["problems"]


def test_the_trusted_time_counts_the_accuracy_its_tsa_states(capture, tsa, tsa_creds, tsa_ca, pubkey, run,
                                                              tmp_path):
    """A token says its data existed by its time give or take its accuracy: one an hour
    earlier but good to a day says less than one good to a second. The earliest stated
    time was shown as the trusted time, with no word of its accuracy."""
    import datetime as dt
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder
    from tests.tsa import issue_response

    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    request = TimestampRequestBuilder().data(members(wacz)["datapackage.json"]) \
        .hash_algorithm(HashAlgorithm.SHA256).build()
    vague = issue_response(request.as_bytes(), tsa_creds, 9, accuracy=86400,
                           gen_time=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    code, report, checks = keep_and_verify(run, tmp_path, capture_id, vague, pubkey, tsa_ca)
    sealed, kept = report["time"]["tokens"]
    assert code == 0 and sealed["state"] == kept["state"] == TRUSTED and kept["accuracy"] == 86400
    assert (report["time"]["time"], report["time"]["accuracy"]) == (sealed["time"], 1)
    assert checks["timestamps"]["summary"].startswith(f"trusted time: datapackage.json existed by {sealed['time']} ±1s,")
    text = run("verify", capture_id, "--store", tmp_path / "store", "--trust", pubkey, "--trust-tsa", tsa_ca,
               "--no-record").out
    assert f"\n  time          {sealed['time']} ±1s (trusted timestamp" in text, text


def test_a_huge_object_kept_as_a_token_beside_a_capture_is_not_read_into_memory(capture, pubkey, tmp_path):
    from tests.verifyhelp import archive_cmd
    wacz = capture("/")
    capture_id = wacz.name.removesuffix(".wacz")
    kept = tmp_path / "store" / "timestamps" / capture_id / "1.json"
    kept.parent.mkdir(parents=True)
    with open(kept, "wb") as fh:
        fh.truncate(8 << 30)                    # sparse: 8 GiB to read, no disk used
    proc = archive_cmd("verify", capture_id, "--store", tmp_path / "store", "--trust", pubkey, "--json",
                       "--no-record", limit_mb=1024)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["timestamps"]["status"] == "fail" and checks["signature"]["status"] == "pass"


def test_a_flood_of_timestamp_entries_is_refused_whole_in_bounded_time_and_memory(capture, tsa, tsa_ca,
                                                                                   pubkey, run, tmp_path):
    """Tokens are outside the signature: anyone can add entries to the `timestamps` list
    or objects beside a stored capture. A million of them took half a minute and a 400 MB
    report, one problem each; more than any capture has (the documented 100) fail as one."""
    from tests.verifyhelp import archive_cmd
    wacz = capture("/", extra=("--tsa", tsa.url))
    digest = digest_of(wacz)
    digest["timestamps"] += [{}] * 300_000
    flooded = tmp_path / "flooded.wacz"
    with zipfile.ZipFile(flooded, "w") as zf:
        for name, body in members(wacz).items():
            zf.writestr(name, json.dumps(digest).encode() if name == "datapackage-digest.json" else body)
    started = time.monotonic()
    proc = archive_cmd("verify", flooded, "--trust", pubkey, "--trust-tsa", tsa_ca, "--json", limit_mb=1024)
    assert proc.returncode == 1 and proc.stderr == "" and len(proc.stdout) < 100_000, proc.stderr
    assert time.monotonic() - started < 10
    report = json.loads(proc.stdout)
    [token] = report["time"]["tokens"]
    assert token["state"] == INVALID and "none was checked" in token["message"] and not report["time"]["trusted"]

    # beside a stored capture: past the limit nothing more is read, and no more is added
    capture_id = wacz.name.removesuffix(".wacz")
    beside = tmp_path / "store" / "timestamps" / capture_id
    beside.mkdir(parents=True)
    MAX_TOKENS = 100      # the docs promise this number: pinned here, not read from the code
    for n in range(1, MAX_TOKENS + 1):
        (beside / f"{n}.json").write_text(json.dumps(_entry(_token_der(wacz))))
    code, report, checks = verify_json(run, capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                                       "--trust-tsa", tsa_ca, "--no-record")
    assert code == 1 and checks["timestamps"]["status"] == "fail" and not report["time"]["trusted"]
    assert "none was checked" in checks["timestamps"]["problems"][0]["message"]
    refused = run("timestamp", capture_id, "--store", tmp_path / "store", "--tsa", tsa.url)
    assert refused.code == 2 and f"at most {MAX_TOKENS}" in refused.err and tsa.requests == 1, refused
    (beside / f"{MAX_TOKENS}.json").unlink()
    code, report, checks = verify_json(run, capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                                       "--trust-tsa", tsa_ca, "--no-record")
    assert code == 0 and checks["timestamps"]["status"] == "pass", checks["timestamps"]


def test_a_token_from_a_self_signed_tsa_you_do_not_trust_is_untrusted_not_altered(capture, tsa, tsa_ca, pubkey,
                                                                                  run, tmp_path):
    """OpenSSL says "self-signed certificate" for a TSA with no CA above it: that is a TSA
    you do not trust (the capture still verifies), not an altered token."""
    from tests.tsa import make_self_signed_tsa_credentials
    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    with TestTsa(make_self_signed_tsa_credentials()) as lone:
        assert run("timestamp", capture_id, "--store", tmp_path / "store", "--tsa", lone.url).code == 0
    code, report, checks = verify_json(run, capture_id, "--store", tmp_path / "store", "--trust", pubkey,
                                       "--trust-tsa", tsa_ca, "--no-record")
    assert code == 0 and checks["timestamps"]["status"] == "pass", checks["timestamps"]
    assert [t["state"] for t in report["time"]["tokens"]] == [TRUSTED, UNTRUSTED]


def test_a_token_without_its_certificate_is_untrusted_not_altered(capture, tsa, tsa_creds, tsa_ca, pubkey,
                                                                  run, tmp_path):
    """A TSA asked without certReq leaves its certificate out (RFC 3161): such a token
    cannot be tied to a certificate you trust, which does not make it altered."""
    from asn1crypto import tsp
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder
    from tests.tsa import issue_response

    wacz = capture("/", extra=("--tsa", tsa.url))
    capture_id = wacz.name.removesuffix(".wacz")
    asked = tsp.TimeStampReq.load(TimestampRequestBuilder().data(members(wacz)["datapackage.json"])
                                  .hash_algorithm(HashAlgorithm.SHA256).build().as_bytes())
    asked["cert_req"] = False
    token = issue_response(asked.dump(), tsa_creds, 8)
    code, report, checks = keep_and_verify(run, tmp_path, capture_id, token, pubkey, tsa_ca)
    assert code == 0 and checks["timestamps"]["status"] == "pass", checks["timestamps"]
    later = report["time"]["tokens"][1]
    assert later["state"] == UNTRUSTED and "carries no certificate" in later["message"]


def _with_digest(wacz, out, change) -> None:
    """The capture written again in its canonical layout, datapackage-digest.json
    changed by change(dict): what anyone holding the file can do, the digest file being
    outside the signature."""
    from archive.wacz.zipwriter import ContainerWriter

    container = ContainerWriter(out)
    for name, data in members(wacz).items():
        if name == "datapackage-digest.json":
            digest = json.loads(data)
            change(digest)
            data = json.dumps(digest, indent=2).encode()
        container.add_bytes(name, data)
    container.finish()


def test_a_timestamp_entry_removed_from_the_file_is_found_by_the_signed_count(capture, tsa, tsa_ca, pubkey,
                                                                              run, tmp_path):
    """The digest file holds an entry for each TSA asked at sealing, but is not signed:
    without the count in the signed capture.json a token taken out read as a capture that
    never had one."""
    wacz = capture("/", extra=("--tsa", tsa.url))
    assert json.loads(members(wacz)["evidence/capture.json"])["timestampsAsked"] == 1
    code, report, checks = verify_json(run, wacz, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 0 and checks["timestamps"]["status"] == "pass", checks["timestamps"]

    stripped = tmp_path / "stripped.wacz"
    _with_digest(wacz, stripped, lambda d: d.pop("timestamps"))
    code, report, checks = verify_json(run, stripped, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 1 and checks["timestamps"]["status"] == "fail", checks["timestamps"]
    assert "1 of the 1 timestamp entries made at sealing were removed" in report["reason"]

    # an entry replaced by one saying the TSA gave none: the count holds, the reason is
    # the file's word, not a fact
    said = tmp_path / "said.wacz"
    _with_digest(wacz, said, lambda d: d.update(timestamps=[{"tsa": tsa.url, "token": None,
                                                             "error": "the TSA was down"}]))
    code, report, checks = verify_json(run, said, "--trust", pubkey, "--trust-tsa", tsa_ca)
    assert code == 0 and report["time"]["trusted"] is False
    assert "(the capture says: the TSA was down)" in checks["timestamps"]["problems"][0]["message"]


def test_a_trusted_time_in_the_future_is_pointed_out(capture, tsa, tsa_creds, tsa_ca, pubkey, run, tmp_path):
    """A TSA you trust that dates a token a day ahead: its clock (or this one) is wrong, and
    the time it attests is not to be taken as a fact without a remark."""
    import datetime as dt
    from rfc3161_client import HashAlgorithm, TimestampRequestBuilder
    from tests.tsa import issue_response

    wacz = capture("/")
    capture_id = wacz.name.removesuffix(".wacz")
    request = TimestampRequestBuilder().data(members(wacz)["datapackage.json"]) \
        .hash_algorithm(HashAlgorithm.SHA256).build()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    token = issue_response(request.as_bytes(), tsa_creds, 8, gen_time=later)
    code, report, checks = keep_and_verify(run, tmp_path, capture_id, token, pubkey, tsa_ca)
    assert code == 0 and report["time"]["trusted"], checks["timestamps"]
    assert checks["timestamps"]["status"] == "warn"
    assert any("after this machine's clock" in p["message"] for p in checks["timestamps"]["problems"])
