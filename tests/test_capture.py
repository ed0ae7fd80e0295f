import gzip
import json
import signal
import zlib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.site import Site, SiteServer, standard_site
from tests.stopped_seal import capture_stopped_in_seal, holding_tsa
from tests.warcs import assert_third_party_checks_pass, member, pages, records


def test_round_trip_bytes_in_warc_equal_bytes_served(capture, run, pubkey, site):
    wacz = capture("/")
    result = run("verify", wacz, "--trust", pubkey)
    assert result.code == 0, result
    assert result.out.startswith("VERIFIED")

    responses = {r["uri"]: r for r in records(wacz) if r["type"] == "response"}
    served = site.site.served
    # the page and every requisite, including those found in CSS (url() and @import)
    for path in ("/", "/style.css", "/print.css", "/app.js", "/img/a.png", "/img/b.png", "/img/bg.png"):
        assert site.url(path) in responses, path
        assert responses[site.url(path)]["payload"] == served[path], path
    # linked pages are not followed at depth 0
    assert site.url("/about") not in responses
    assert "/about" not in site.site.requests


def test_server_closing_after_each_answer_loses_no_body(run, key, pubkey, tmp_path):
    """An HTTP/1.0 server (or Connection: close) hands the connection to the response
    after the headers; the body that follows must still be read to its end. (It was cut
    off with EBADF: our recording reader did not hold the socket open.)"""
    with SiteServer(standard_site(), protocol="HTTP/1.0") as server:
        result = run("capture", server.url("/"), server.url("/about"), "--key", key,
                     "--store", tmp_path / "store", "--work-dir", tmp_path / "work", "--quiet")
        assert result.code == 0, result
        wacz = Path(stored_waczs(tmp_path / "store")[-1])
        served = server.site.served
    responses = {r["uri"]: r for r in records(wacz) if r["type"] == "response"}
    for path in ("/", "/about", "/style.css", "/print.css", "/app.js", "/img/a.png", "/img/bg.png"):
        response = responses[server.url(path)]
        assert "WARC-Truncated" not in response["headers"], path
        assert response["payload"] == served[path], path
    assert all("error" not in page for page in pages(wacz))
    assert run("verify", wacz, "--trust", pubkey).code == 0


def test_a_header_line_of_unicode_white_space_splits_the_payload_as_warcio_does(run, key, pubkey, tmp_path):
    """A server sends a header line that is white space only as text (NBSP): warcio ends
    the headers there, so the payload digest we write must start after it too, or warcio
    check rejects our capture."""
    def handler(h) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\xa0\r\n"
                      b"Content-Length: 5\r\n\r\nhello")
        h.close_connection = True

    site = Site()
    site.add("/odd", handler=handler)
    with SiteServer(site) as server:
        result = run("capture", server.url("/odd"), "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet")
        assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert_third_party_checks_pass(wacz, tmp_path)
    assert run("verify", wacz, "--trust", pubkey).code == 0


def test_raw_transfer_encoding_and_content_encoding_are_kept(capture, site):
    wacz = capture("/chunked", "/gzipped")
    by_uri = {r["uri"]: r for r in records(wacz) if r["type"] == "response"}
    chunked = by_uri[site.url("/chunked")]
    assert chunked["http"].get_header("Transfer-Encoding") == "chunked"
    assert chunked["payload"].startswith(b"7\r\n")          # chunk framing as transferred
    gzipped = by_uri[site.url("/gzipped")]
    assert gzipped["http"].get_header("Content-Encoding") == "gzip"
    assert gzip.decompress(gzipped["payload"]) == gzip.decompress(site.site.served["/gzipped"])


def test_warc_has_warcinfo_requests_and_metadata(capture, site):
    wacz = capture("/")
    recs = records(wacz)
    info = recs[0]
    assert info["type"] == "warcinfo"
    body = info["payload"].decode()
    for field in ("software: archive", "operator:", "hostname:", "command:"):
        assert field in body
    for rec in recs:
        assert rec["headers"]["WARC-Block-Digest"].startswith("sha256:")
        if rec["type"] != "warcinfo":
            assert rec["headers"]["WARC-Payload-Digest"].startswith("sha256:")
    request = next(r for r in recs if r["type"] == "request" and r["uri"] == site.url("/"))
    assert request["http"].protocol == "GET" or request["http"].statusline.startswith("/")
    meta = next(r for r in recs if r["type"] == "metadata" and r["uri"] == site.url("/"))
    assert b"ip-address: 127.0.0.1" in meta["payload"]
    assert b"outlink: " + site.url("/about").encode() in meta["payload"]
    response = next(r for r in recs if r["type"] == "response" and r["uri"] == site.url("/"))
    assert response["headers"]["WARC-IP-Address"] == "127.0.0.1"
    assert response["headers"]["WARC-Record-ID"] == request["headers"]["WARC-Concurrent-To"]


def test_warcio_check_and_wacz_validate_pass(capture, tmp_path):
    wacz = capture("/", "/chunked", "/gzipped", "/latin1", "/missing")
    assert_third_party_checks_pass(wacz, tmp_path)


def test_wacz_layout_and_signature_fields(capture):
    wacz = capture("/")
    names = zipfile.ZipFile(wacz).namelist()
    assert names[-2:] == ["datapackage.json", "datapackage-digest.json"]
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zipfile.ZipFile(wacz).infolist())
    assert "indexes/index.cdx.gz" in names and "pages/pages.jsonl" in names
    datapackage = json.loads(member(wacz, "datapackage.json"))
    assert datapackage["wacz_version"] == "1.1.1"
    listed = {r["path"] for r in datapackage["resources"]}
    assert listed == set(names) - {"datapackage.json", "datapackage-digest.json"}
    digest = json.loads(member(wacz, "datapackage-digest.json"))
    signed = digest["signedData"]
    assert set(signed) == {"hash", "created", "software", "version", "signature", "publicKey"}
    assert signed["hash"] == digest["hash"] and signed["created"] == datapackage["created"]
    lines = gzip.decompress(member(wacz, "indexes/index.cdx.gz")).decode().splitlines()
    assert lines == sorted(lines) and len(lines) >= 7


def test_failures_are_recorded_not_skipped(capture, site):
    wacz = capture("/", "/missing", "/error")
    entries = {p["url"]: p for p in pages(wacz)}
    assert entries[site.url("/missing")]["status"] == 404
    assert entries[site.url("/error")]["error"] == "HTTP 500"


def test_capture_without_key_is_refused(run, site, tmp_path, monkeypatch):
    monkeypatch.delenv("ARCHIVE_KEY", raising=False)
    result = run("capture", site.url("/"), "--store", tmp_path / "store")
    assert result.code == 2 and "--unsigned" in result.err
    assert not (tmp_path / "store").exists()


def test_unsigned_capture_is_reported_unsigned(run, site, tmp_path):
    result = run("capture", site.url("/"), "--unsigned", "--store", tmp_path / "s", "--quiet")
    assert result.code == 0, result
    assert "UNSIGNED" in result.out
    wacz = stored_waczs(tmp_path / "s")[0]
    strict = run("verify", wacz)
    assert strict.code == 1 and "UNSIGNED" in strict.out
    allowed = run("verify", wacz, "--allow-unsigned")
    assert allowed.code == 0 and allowed.out.startswith("VERIFIED (UNSIGNED)")


def test_bad_urls_and_bad_keys_are_one_line_errors(run, site, key, tmp_path, monkeypatch):
    for args in (["capture", "not a url", "--unsigned"],
                 ["capture", "ftp://example.org/", "--unsigned"],
                 ["capture", site.url("/"), "--key", tmp_path / "nokey.pem"]):
        result = run(*args)
        assert result.code == 2, (args, result)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", "wrong")
    result = run("capture", site.url("/"), "--key", key, "--store", tmp_path / "s")
    assert result.code == 2 and "wrong passphrase" in result.err
    assert site.site.requests == []           # a bad key fails before any traffic


def test_store_never_overwrites_and_leaves_no_partial_file(tmp_path, capture):
    import hashlib

    import pytest

    from archive.errors import AlreadyExists, ArchiveError
    from archive.store.local import LocalStore
    wacz = capture("/")
    capture_id = Path(wacz).name[:-5]
    store = LocalStore(tmp_path / "store")
    before = Path(wacz).read_bytes()
    other = tmp_path / "other.wacz"
    other.write_bytes(b"different bytes")
    try:
        store.put_capture(capture_id, other, hashlib.sha256(b"different bytes").hexdigest(), {})
        raise AssertionError("overwrite was allowed")
    except AlreadyExists:
        pass
    assert Path(wacz).read_bytes() == before
    assert not (Path(wacz).stat().st_mode & 0o222), "stored capture must be read-only"
    # a copy that does not match its sealed hash never appears under a final name
    with pytest.raises(ArchiveError):
        store.put_capture("20250101T000000Z-00000000", other, "0" * 64, {})
    assert [p for p in (tmp_path / "store" / "captures" / "2025").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_failed_seal_leaves_nothing_in_store(key, site, tmp_path, tsa_creds, signum):
    """A seal that does not finish, for real: the capture process is killed (a crash), or
    stopped by SIGTERM (systemd, `timeout`), after it signed, while its TSA holds the
    answer. Nothing is stored; the captured WARC data is kept in the unfinished container."""
    with holding_tsa(tsa_creds) as tsa:
        stopped = capture_stopped_in_seal([site.url("/"), "--key", key, "--store", tmp_path / "store",
                                           "--quiet"], tmp_path / "work", tsa, signum)
    if signum == signal.SIGTERM:
        # stopped as Ctrl-C stops it: one line, never a traceback
        assert stopped.returncode == 130 and stopped.stderr.count("\n") == 1, stopped
        assert "interrupted" in stopped.stderr and "internal error" not in stopped.stderr
        # and says where the capture is and how to finish it, as a stop during the crawl does
        work = next((tmp_path / "work").iterdir())
        assert "was not sealed" in stopped.stderr and f"archive capture --resume {work}" in stopped.stderr
    else:
        assert stopped.returncode == -signal.SIGKILL, stopped
    assert stored_waczs(tmp_path / "store") == []
    # the captured WARC data is kept (in the unfinished container); no WACZ under a final name
    kept = list((tmp_path / "work").glob("*/*.wacz.open"))
    assert len(kept) == 1
    data = kept[0].read_bytes()
    text, pos = b"", data.index(b"\x1f\x8b")
    while data[pos:pos + 2] == b"\x1f\x8b":
        member = zlib.decompressobj(31)
        text += member.decompress(data[pos:])
        pos = len(data) - len(member.unused_data)
    assert b"WARC-Type: response" in text and site.url("/").encode() in text
    assert list((tmp_path / "work").glob("*/*.wacz")) == []


def test_https_capture_records_the_server_certificate(run, key, pubkey, tmp_path):
    import base64
    import hashlib

    from tests.site import SiteServer, standard_site
    from tests.tls import make_server_cert

    cert = make_server_cert(tmp_path / "tls")
    with SiteServer(standard_site(), tls=cert) as server:
        refused = run("capture", server.url("/about"), "--key", key, "--store", tmp_path / "s",
                      "--work-dir", tmp_path / "w", "--quiet")
        result = run("capture", server.url("/about"), "--key", key, "--store", tmp_path / "s",
                     "--work-dir", tmp_path / "w", "--quiet", "--insecure")
    # an unverifiable certificate is a recorded TLS failure, not a silent skip (stored; but
    # the only page failed, so no success)
    assert refused.code == 1, refused
    first = pages(Path(stored_waczs(tmp_path / "s")[0]))[0]
    assert first["errorKind"] == "tls"
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "s")[-1])
    meta = next(r for r in records(wacz) if r["type"] == "metadata" and r["uri"].endswith("/about"))
    fields = dict(line.split(": ", 1) for line in meta["payload"].decode().splitlines() if ": " in line)
    assert base64.b64decode(fields["server-certificate"]) == cert.der
    assert fields["server-certificate-sha256"] == hashlib.sha256(cert.der).hexdigest()
    assert fields["tls-version"].startswith("TLS")
    assert run("verify", wacz, "--trust", pubkey).code == 0
