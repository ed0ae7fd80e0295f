"""`archive verify`, `archive hash`, `archive extract`: targets, reports, schema."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import pytest

from archive.verify.checks import verify_source
from archive.verify.model import VerifyOptions
from archive.verify.report import schema
from archive.reader.source import Source, local_source
from tests.verifyhelp import (
    FOREIGN, CountingFile, archive_cmd, build_wacz, gzip_members, make_capture, new_signer, png, refresh,
)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory, keydir) -> Path:
    return make_capture(tmp_path_factory.mktemp("cap"), keydir, "/", "/chunked", "/gzipped")


@pytest.fixture(scope="module")
def warc_file(sealed, tmp_path_factory) -> Path:
    """The capture's WARC, as a bare file."""
    out = tmp_path_factory.mktemp("warc")
    with zipfile.ZipFile(sealed) as zf:
        name = next(n for n in zf.namelist() if n.startswith("archive/"))
        path = out / name.rsplit("/", 1)[-1]
        path.write_bytes(zf.read(name))
    return path


def _store_and_id(wacz: Path) -> tuple[Path, str]:
    return wacz.parents[4], wacz.stem


def test_text_report_says_what_was_captured_and_who_signed(sealed, pubkey, run):
    store, capture_id = _store_and_id(sealed)
    result = run("verify", capture_id, "--store", store, "--trust", f"alice={pubkey}")
    assert result.code == 0, result
    lines = result.out.splitlines()
    # no trusted time here: a [warn], which the verdict line points to
    assert lines[0] == "VERIFIED: every check passed, with 1 warning to read"
    text = result.out
    assert f"capture       {capture_id}" in text
    assert "seed URLs     http://127.0.0.1:" in text
    assert "operator" in text and "3 pages" in text and "fetched" in text
    assert "signed by     alice (key " in text
    for title in ("zip container", "files and their hashes", "WARC record digests", "index of records",
                  "signature"):
        assert f"[ok  ] {title}" in text
    assert result.err == ""


def test_flipped_byte_report_names_file_record_url_and_offset(sealed, pubkey, run, tmp_path):
    data = bytearray(sealed.read_bytes())
    with zipfile.ZipFile(sealed) as zf:
        info = next(i for i in zf.infolist() if i.filename.startswith("archive/"))
        warc = zf.read(info.filename)
    # change the content of the /chunked response, rewriting its gzip member and every
    # hash above it: only the record digest and the signature can tell
    offset = 0
    for member in gzip_members(warc):
        text = gzip.decompress(member)
        if b"WARC-Type: response" in text and b"/chunked\r\n" in text.split(b"\r\n\r\n")[0]:
            break
        offset += len(member)
    assert b"</body>" in text
    tampered_member = gzip.compress(text.replace(b"</body>", b"</bodY>", 1))
    new_warc = warc[:offset] + tampered_member + warc[offset + len(member):]
    target = refresh(sealed, tmp_path / "t.wacz", {info.filename: new_warc})
    result = run("verify", target, "--trust", pubkey)
    assert result.code == 1
    assert result.out.startswith("NOT VERIFIED: ")
    record_lines = [ln for ln in result.out.splitlines() if "digest does not match" in ln]
    assert record_lines, result.out
    assert f"byte offset {offset}" in record_lines[0] and "/chunked" in record_lines[0]
    assert info.filename.rsplit("/", 1)[-1] in record_lines[0]
    assert sealed.read_bytes() == bytes(data)   # the original is untouched


def test_json_reports_follow_the_schema(sealed, pubkey, warc_file, run, tmp_path):
    validator = jsonschema.Draft202012Validator(schema())
    cases = [
        (("verify", sealed, "--trust", pubkey), 0, "VERIFIED"),
        (("verify", sealed), 1, "NOT VERIFIED"),
        (("verify", warc_file), 1, "NOT VERIFIED"),
        (("verify", warc_file, "--allow-unsigned"), 0, "VERIFIED"),
        (("verify", FOREIGN / "valid_signed_example_1.wacz"), 2, "COULD NOT CHECK"),
        (("verify", FOREIGN / "valid_example_1.wacz", "--allow-unsigned"), 0, "VERIFIED"),
        (("verify", FOREIGN / "example-digest.warc"), 1, "NOT VERIFIED"),
        (("verify", FOREIGN / "README.md", "--sha256", "0" * 64), 1, "NOT VERIFIED"),
    ]
    for args, code, verdict in cases:
        result = run(*args, "--json")
        report = json.loads(result.out)
        validator.validate(report)
        assert (result.code, report["verdict"], report["exitCode"]) == (code, verdict, code), args
    report = json.loads(run("verify", sealed, "--trust", pubkey, "--json").out)
    assert report["sha256"] == hashlib.sha256(sealed.read_bytes()).hexdigest()
    assert report["signature"]["fingerprint"] and report["capture"]["seeds"]
    assert {p["url"].rsplit("/", 1)[-1] for p in report["pages"]} == {"", "chunked", "gzipped"}
    assert all(len(p["sha256"]) == 64 for p in report["pages"])


def test_schema_rejects_a_report_that_breaks_it(sealed, pubkey, run):
    report = json.loads(run("verify", sealed, "--trust", pubkey, "--json").out)
    report["verdict"] = "PROBABLY FINE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema())


def _largest_gzip_member(data: bytes) -> tuple[int, int]:
    members, pos = [], 0
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[pos:])
        end = len(data) - len(inflater.unused_data)
        members.append((pos, end))
        pos = end
    return max(members, key=lambda m: m[1] - m[0])


def test_bare_warc_checks_record_integrity_only(warc_file, run, pubkey, tmp_path):
    """Anyone can write a WARC whose digests hold: like an unsigned WACZ, a bare WARC
    passes only with --allow-unsigned, and then says it was checked for integrity only."""
    for refused in (run("verify", warc_file), run("verify", warc_file, "--trust", pubkey)):
        assert refused.code == 1 and refused.out.startswith("NOT VERIFIED: UNSIGNED: a bare WARC"), refused
        assert "--allow-unsigned" in refused.out.splitlines()[0]
    result = run("verify", warc_file, "--allow-unsigned")
    assert result.code == 0, result
    assert result.out.startswith("VERIFIED (INTEGRITY ONLY): ")
    assert "no signature" in result.out.splitlines()[0]
    # a SHA-256 the investigator was given stands in for a signature
    published = hashlib.sha256(warc_file.read_bytes()).hexdigest()
    assert run("verify", warc_file, "--sha256", published).code == 0
    assert run("verify", warc_file, "--sha256", "1" * 64).code == 1
    data = bytearray(warc_file.read_bytes())
    # Inside the largest gzip member, well before its end: the padding bits after a
    # deflate stream's last code change nothing, so a flip there would rightly verify.
    start, end = _largest_gzip_member(bytes(data))
    data[start + (end - start) // 3] ^= 0x10
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(bytes(data))
    result = run("verify", broken, "--allow-unsigned")
    first = result.out.splitlines()[0]
    # (how many records the damage leaves readable depends on the member it falls in)
    assert result.code == 1 and first.startswith("NOT VERIFIED: ") and "UNSIGNED" not in first, result
    assert " in 1 WARC file: " in first and "problem" in first, result


def test_published_hash_of_any_file(sealed, run, tmp_path):
    other = tmp_path / "statement.pdf"
    other.write_bytes(b"%PDF-1.4 not really\n")
    good = hashlib.sha256(other.read_bytes()).hexdigest()
    result = run("verify", other, "--sha256", good)
    assert result.code == 0 and result.out.startswith("VERIFIED (HASH ONLY)")
    assert run("verify", other, "--sha256", "1" * 64).code == 1
    refused = run("verify", other)
    assert refused.code == 2 and refused.out == "" and refused.err.count("\n") == 1
    assert "--sha256" in refused.err
    assert run("verify", other, "--sha256", "xyz").code == 2
    # a WACZ is fully checked and compared with the published hash as well
    wacz_hash = hashlib.sha256(sealed.read_bytes()).hexdigest()
    result = run("verify", sealed, "--sha256", wacz_hash, "--allow-unsigned", "--json")
    checks = {c["name"]: c["status"] for c in json.loads(result.out)["checks"]}
    assert checks["file-hash"] == "pass" and checks["records"] == "pass"


def test_unknown_capture_id_and_missing_store_exit_2(run, tmp_path):
    for args in (("20250101T000000Z-00000000", "--store", tmp_path / "nowhere"),
                 ("not-a-capture",), ("s3://bucket/some.wacz",)):
        result = run("verify", *args)
        assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result


def test_a_file_named_as_a_capture_id_is_not_judged_as_the_stored_capture(sealed, pubkey, run, tmp_path):
    """`verify ID --store S` with a file named ID in the folder: which one? Checking the
    file while taking custody and later tokens from the store (and recording the verdict
    there) made a good copy here vouch for a stored capture that was altered, and a
    planted file condemn a good one. Both must be named apart."""
    store, capture_id = _store_and_id(sealed)
    ledger = store / "custody" / "ledger.jsonl"
    before = ledger.read_bytes()
    (tmp_path / capture_id).write_bytes(sealed.read_bytes())
    for command in ("verify", "extract"):
        result = run(command, capture_id, "--store", store, *(("--trust", pubkey) if command == "verify" else ("--url", "http://x/")))
        assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result
        assert "is both a file in this folder and a capture id" in result.err
    assert ledger.read_bytes() == before
    # named apart, each is what it says: the file here, or the capture in the store
    assert run("verify", f"./{capture_id}", "--trust", pubkey, "--no-record").code == 0
    (tmp_path / capture_id).unlink()
    assert run("verify", capture_id, "--store", store, "--trust", pubkey, "--no-record").code == 0


def test_each_byte_is_read_once(sealed):
    """File hash, member hashes and record digests come from one read of the file."""
    CountingFile.total = 0
    size = sealed.stat().st_size
    source = Source(str(sealed), size, lambda: CountingFile(str(sealed)))
    report = verify_source(source, VerifyOptions(allow_unsigned=True))
    assert report.sha256 == hashlib.sha256(sealed.read_bytes()).hexdigest()
    # the central directory and local headers are read twice (to plan the read): a few KB
    assert size <= CountingFile.total < size + 64 * 1024 + 2 * 8, (CountingFile.total, size)


def test_hash_matches_sha256sum_and_checks_with_it(sealed, tmp_path, run):
    result = run("hash", sealed)
    expected = subprocess.run(["sha256sum", str(sealed)], capture_output=True, text=True).stdout
    assert result.code == 0 and result.out == expected
    result = run("hash", "--all", sealed)
    data = sealed.read_bytes()
    assert result.out.splitlines() == [
        f"SHA256 ({sealed}) = {hashlib.sha256(data).hexdigest()}",
        f"SHA512 ({sealed}) = {hashlib.sha512(data).hexdigest()}",
        f"SHA3-256 ({sealed}) = {hashlib.sha3_256(data).hexdigest()}",
    ]
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(run("hash", sealed).out)
    assert subprocess.run(["sha256sum", "-c", str(sums)], capture_output=True).returncode == 0
    assert run("hash", tmp_path / "missing").code == 2


def test_extract_writes_the_decoded_payload_and_its_digests(keydir, tmp_path, run):
    from tests.site import SiteServer, standard_site
    from tests.verifyhelp import _env
    from tests.conftest import PASSPHRASE
    with SiteServer(standard_site()) as server, _env(ARCHIVE_KEY_PASSPHRASE=PASSPHRASE):
        assert run("capture", server.url("/"), server.url("/gzipped"), server.url("/chunked"),
                   "--key", keydir / "signing-key.pem", "--store", tmp_path / "store",
                   "--work-dir", tmp_path / "work", "--quiet").code == 0
        served = server.site.served
        capture_id = next((tmp_path / "store" / "captures").glob("*/*/*/*.wacz")).stem
        out = tmp_path / "article.html"
        result = run("extract", capture_id, "--store", tmp_path / "store",
                     "--url", server.url("/gzipped"), "--out", out)
        assert result.code == 0, result
        assert out.read_bytes() == gzip.decompress(served["/gzipped"])
        assert "digests hold" in result.out and "payload digest  sha256:" in result.out
        assert hashlib.sha256(out.read_bytes()).hexdigest() in result.out
        # never overwrites
        again = run("extract", capture_id, "--store", tmp_path / "store", "--url", server.url("/"), "--out", out)
        assert again.code == 2 and out.read_bytes() == gzip.decompress(served["/gzipped"])
        # to stdout: the payload alone on stdout, the digests on stderr
        proc = archive_cmd("extract", capture_id, "--store", tmp_path / "store", "--url", server.url("/chunked"))
        assert proc.returncode == 0 and "block digest" in proc.stderr
        assert proc.stdout.encode() == served["/chunked"]
        missing = run("extract", capture_id, "--store", tmp_path / "store", "--url", server.url("/nope"))
        assert missing.code == 2 and "was not captured" in missing.err


def test_screenshots_and_pages_are_in_the_report(tmp_path):
    signer, pub = new_signer(tmp_path / "k")
    picture = png(8, 6, (255, 0, 255))
    wacz = build_wacz(tmp_path / "b.wacz", [
        {"url": "http://example.test/", "body": b"<p>hello</p>", "screenshot": picture},
        {"url": "http://example.test/2", "body": b"<p>two</p>"},
    ], signer)
    report = verify_source(local_source(str(wacz)), VerifyOptions({signer.fingerprint: "tester"}))
    assert report.verdict == "VERIFIED", report.reason
    assert [p["screenshot"] for p in report.pages] == [True, False]
    assert report.pages[0]["sha256"] == hashlib.sha256(b"<p>hello</p>").hexdigest()
    from archive.reader.extract import read_record_block
    assert read_record_block(local_source(str(wacz)), report.screenshots["http://example.test/"], 1 << 20) == picture


def test_verify_benchmark_smoke():
    """The benchmark runs (small and untimed here; `--mib 1024` is the real run)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([__import__("sys").executable, str(root / "scripts" / "bench_verify.py"),
                           "--mib", "4", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["verdict"] == "VERIFIED" and result["exit_code"] == 0
    assert result["records"] > 100 and result["warcio_check_seconds"] > 0
    assert result["gzip_openssl_seconds"] > 0 and result["peak_rss_mb"] > 0


def test_odd_values_inside_a_tampered_capture_keep_the_report_readable_and_in_schema(tmp_path, run):
    """The file may say anything: a string where a count belongs, a number where a title
    belongs. The verdict stays NOT VERIFIED (exit 1), the text and HTML render, and the
    JSON still follows the schema."""
    signer, pub = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": "http://example.test/", "body": b"<p>hi</p>"}], signer)
    with zipfile.ZipFile(wacz) as zf:
        evidence = json.loads(zf.read("evidence/capture.json"))
        pages = zf.read("pages/pages.jsonl").decode().splitlines()
    evidence["stats"].update(bytes="3,258", failed=10 ** 400)
    evidence.update(operator=7, seeds=["http://example.test/", 5], captureId={"a": 1})
    page = json.loads(pages[1])
    page.update(ts=20260101, title=["x"], status=True)
    odd = refresh(wacz, tmp_path / "odd.wacz", {
        "evidence/capture.json": json.dumps(evidence).encode(),
        "pages/pages.jsonl": "\n".join([pages[0], json.dumps(page)]).encode() + b"\n"})
    result = run("verify", odd, "--trust", pub, "--html", tmp_path / "odd.html")
    assert result.code == 1 and result.out.startswith("NOT VERIFIED"), result
    report = json.loads(run("verify", odd, "--trust", pub, "--json").out)
    jsonschema.Draft202012Validator(schema()).validate(report)


def test_html_report_of_a_stored_capture_shows_its_custody_history(sealed, pubkey, run, tmp_path):
    from selectolax.lexbor import LexborHTMLParser
    store, capture_id = _store_and_id(sealed)
    page = tmp_path / "report.html"
    assert run("verify", capture_id, "--store", store, "--trust", pubkey, "--html", page).code == 0
    tree = LexborHTMLParser(page.read_text())
    assert tree.css_first("#verdict h1").text() == "VERIFIED"
    heading = next(h for h in tree.css("h2") if h.text() == "Custody history")
    rows = [[td.text() for td in tr.css("td")] for tr in tree.css("table.custody tr")][1:]
    assert heading and [r[2] for r in rows[:3]] == ["captured", "sealed", "stored"]
    assert capture_id in page.read_text()


def test_an_uncompressed_warc_ending_with_a_captured_zip_is_read_as_a_warc(tmp_path, run):
    """A zip's end record near the end of the file does not make a WARC a WACZ."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter
    document = io.BytesIO()
    with zipfile.ZipFile(document, "w") as zf:
        zf.writestr("word/document.xml", "<w:document>the leaked memo</w:document>")
    body = document.getvalue()
    path = tmp_path / "memo.warc"
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=False)
        http = StatusAndHeaders("200 OK", [("Content-Type", "application/zip"),
                                           ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record("http://example.test/memo.docx", "response",
                                                      payload=io.BytesIO(body), http_headers=http))
    result = run("verify", path, "--allow-unsigned")
    assert result.code == 0 and result.out.startswith("VERIFIED (INTEGRITY ONLY)"), result
    data = bytearray(path.read_bytes())
    data[data.index(b"the leaked memo")] ^= 1       # inside the zip's stored bytes
    path.write_bytes(bytes(data))
    assert run("verify", path, "--allow-unsigned").code == 1


def test_a_published_zip_document_is_checked_against_its_hash_not_as_a_wacz(tmp_path, run):
    """A .docx or .zip is a zip file but no WACZ: with --sha256 it is compared as any file."""
    memo = tmp_path / "memo.docx"
    with zipfile.ZipFile(memo, "w") as zf:
        zf.writestr("word/document.xml", "<w:document>the memo</w:document>")
    good = hashlib.sha256(memo.read_bytes()).hexdigest()
    result = run("verify", memo, "--sha256", good)
    assert result.code == 0 and result.out.startswith("VERIFIED (HASH ONLY)"), result
    assert run("verify", memo, "--sha256", "2" * 64).out.startswith("NOT VERIFIED")
    refused = run("verify", memo)
    assert refused.code == 2 and "--sha256" in refused.err
    # named .wacz, it is held to the WACZ layout
    claimed = tmp_path / "memo.wacz"
    claimed.write_bytes(memo.read_bytes())
    assert run("verify", claimed, "--sha256", good).code == 1


def test_a_published_gzip_file_that_is_no_warc_is_checked_against_its_hash(tmp_path, run):
    table = tmp_path / "figures.csv.gz"
    table.write_bytes(gzip.compress(b"district,count\nnorth,12\n"))
    good = hashlib.sha256(table.read_bytes()).hexdigest()
    result = run("verify", table, "--sha256", good)
    assert result.code == 0 and result.out.startswith("VERIFIED (HASH ONLY)"), result
    assert run("verify", table).code == 2
    # a gzipped WARC whose first member is damaged is still judged as a WARC
    damaged = tmp_path / "damaged.warc.gz"
    member = bytearray(gzip.compress(b"WARC/1.1\r\nWARC-Type: warcinfo\r\n\r\n" * 50))
    member[20] ^= 0xFF
    damaged.write_bytes(bytes(member))
    assert run("verify", damaged).code == 1


def test_hash_reads_standard_input_as_sha256sum_does():
    from tests.verifyhelp import BIN
    data = b"a statement\n" * 1000
    ours = subprocess.run([str(BIN / "archive"), "hash", "-"], input=data, capture_output=True)
    theirs = subprocess.run(["sha256sum", "-"], input=data, capture_output=True)
    assert ours.returncode == 0 and ours.stdout == theirs.stdout, ours.stderr


def test_a_reader_that_stops_early_gets_no_error_message(tmp_path):
    """`archive hash ... | head -1`: the closed pipe is no internal error."""
    from tests.verifyhelp import BIN
    small = tmp_path / "f"
    small.write_bytes(b"x")
    proc = subprocess.Popen([str(BIN / "archive"), "hash", *[str(small)] * 3000],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()                       # as head does after its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) != 0 and err == "", err


def test_text_report_counts_failed_fetches():
    from archive.verify.model import Report
    from archive.verify.report import facts
    report = Report("x.wacz", "wacz", capture={"pages": 3, "records": 9, "bytes": 10, "failed": 2})
    assert dict(facts(report))["contents"] == "3 pages, 9 records, 10 bytes fetched, 2 failed fetches (listed below)"
    report.capture["failed"] = 0
    assert "failed" not in dict(facts(report))["contents"]
