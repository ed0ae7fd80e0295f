"""`archive extract ID --url URL`: what it writes must be the captured content of that
URL, or it says plainly why not (a wrong index, a revisit, a cut-short record)."""

from __future__ import annotations

import gzip
import json
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.site import Site, SiteServer
from tests.verifyhelp import _env, build_wacz, new_signer, refresh, rewrite_records

SHARED = b"<p>the same statement, published at two addresses</p>"


@pytest.fixture(scope="module")
def twin_capture(tmp_path_factory, keydir) -> tuple[Path, str, str]:
    """A real capture of two URLs serving the same bytes: the second is a revisit."""
    tmp = tmp_path_factory.mktemp("twins")
    site = Site()
    site.add("/first", SHARED)
    site.add("/second", SHARED)
    with SiteServer(site) as server, _env(ARCHIVE_KEY_PASSPHRASE=PASSPHRASE):
        from archive.cli import main
        assert main(["capture", server.url("/first"), server.url("/second"), "--key",
                     str(keydir / "signing-key.pem"), "--store", str(tmp / "store"),
                     "--work-dir", str(tmp / "work"), "--quiet"]) == 0
        first, second = server.url("/first"), server.url("/second")
    wacz = next((tmp / "store" / "captures").glob("*/*/*/*.wacz"))
    # the two are fetched at once: which one became the revisit depends on who came first
    with zipfile.ZipFile(wacz) as zf:
        warc = gzip.decompress(zf.read(next(n for n in zf.namelist() if n.startswith("archive/"))))
    revisit = warc[warc.index(b"WARC-Type: revisit"):].split(b"\r\n\r\n")[0]
    if b"\r\nWARC-Target-URI: " + first.encode() + b"\r\n" in revisit:
        first, second = second, first
    assert b"\r\nWARC-Target-URI: " + second.encode() + b"\r\n" in revisit
    return wacz, first, second     # (the original's URL, the revisit's)


def test_a_revisit_gives_the_payload_of_the_record_it_refers_to(twin_capture, run, tmp_path):
    wacz, first, second = twin_capture
    out = tmp_path / "second.html"
    result = run("extract", wacz, "--url", second, "--out", out)
    assert result.code == 0, result
    assert out.read_bytes() == SHARED
    assert "(revisit," in result.out and f"({first}, " in result.out and "digests hold" in result.out
    report = json.loads(run("extract", wacz, "--url", second, "--out", tmp_path / "2.html", "--json").out)
    assert report["record_type"] == "revisit" and first in report["revisit_of"]


def test_a_revisit_whose_original_is_elsewhere_is_refused(twin_capture, run, tmp_path):
    wacz, first, second = twin_capture
    # the original's URL no longer in this capture: as when it lives in an earlier capture
    elsewhere = rewrite_records(wacz, tmp_path / "elsewhere.wacz", lambda record: record.replace(
        b"WARC-Refers-To-Target-URI: " + first.encode(), b"WARC-Refers-To-Target-URI: " + first.encode() + b"x"))
    out = tmp_path / "none.html"
    result = run("extract", elsewhere, "--url", second, "--out", out)
    assert result.code == 2 and "stored as a revisit" in result.err and "earlier capture" in result.err
    assert not out.exists()


def test_an_index_pointing_at_another_url_is_refused(tmp_path, run):
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [
        {"url": "http://example.test/statement", "body": b"<p>the statement</p>"},
        {"url": "http://example.test/other", "body": b"<p>something else</p>"},
    ], signer)
    with zipfile.ZipFile(wacz) as zf:
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()
    fields = [json.loads(line.split(" ", 2)[2]) for line in lines]
    statement = next(i for i, f in enumerate(fields) if f["url"].endswith("/statement"))
    other = next(f for f in fields if f["url"].endswith("/other"))
    fields[statement].update(offset=other["offset"], length=other["length"])
    lines[statement] = " ".join(lines[statement].split(" ", 2)[:2]) + " " + json.dumps(fields[statement])
    misled = refresh(wacz, tmp_path / "misled.wacz",
                     {"indexes/index.cdx.gz": gzip.compress(("\n".join(lines) + "\n").encode())})
    out = tmp_path / "statement.html"
    result = run("extract", misled, "--url", "http://example.test/statement", "--out", out)
    assert result.code == 2, result
    assert "the capture's index is wrong" in result.err and "http://example.test/other" in result.err
    assert not out.exists()


def test_altered_content_is_written_but_flagged(tmp_path, run):
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": "http://example.test/s", "body": b"<p>said this</p>"}],
                      signer)
    # the index made to match: only the digests can tell
    altered = rewrite_records(wacz, tmp_path / "altered.wacz", lambda record: record.replace(b"said this", b"said that"))
    result = run("extract", altered, "--url", "http://example.test/s", "--out", tmp_path / "s.html")
    assert result.code == 1 and "DIGESTS DO NOT MATCH" in result.out


def one_record_wacz(path: Path, url: str, block: bytes, extra: dict | None = None) -> Path:
    """A signed WACZ holding one response record with exactly this HTTP block."""
    from archive.wacz.zipwriter import ContainerWriter
    from archive.seal.wacz import SealInput, seal
    from archive.warc.cdxj import cdxj_line
    from archive.warc.writer import WarcWriter

    signer, _ = new_signer(path.parent / "k")
    container = ContainerWriter(path)
    writer = WarcWriter(container, "one", {"software": "tests"})
    ref = writer.write("response", url, block, extra=extra)
    writer.close()
    line = cdxj_line(url, ref.date, ref.filename, ref.offset, ref.length, "response", None, "text/html", 200)
    seal(container, SealInput("one", [line], [{"url": url, "ts": "2026-01-01T00:00:00Z"}], {}), signer)
    return path


def test_a_cut_short_record_is_said_to_be_incomplete(tmp_path, run):
    url = "http://example.test/long"
    wacz = one_record_wacz(tmp_path / "cut.wacz", url, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
                           extra={"WARC-Truncated": "disconnect"})
    result = run("extract", wacz, "--url", url, "--out", tmp_path / "long.html")
    assert result.code == 0, result
    assert "TRUNCATED" in result.out and "WARC-Truncated: disconnect" in result.out


BODY = b"<p>" + b"the statement as published " * 2000 + b"</p>"
GZ = gzip.compress(BODY)


def http(headers: str, body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + headers.encode() + b"\r\n\r\n" + body


@pytest.mark.parametrize("block, decoded", [
    (http("Content-Encoding: gzip, gzip", gzip.compress(GZ)), BODY),
    (http("Content-Encoding: deflate", zlib.compress(BODY)), BODY),
    (http("Content-Encoding: deflate", zlib.compress(BODY)[2:-4]), BODY),          # raw deflate
    (http("Transfer-Encoding: chunked\r\nContent-Encoding: gzip",
          b"%x;ext=1\r\n" % len(GZ) + GZ + b"\r\n0\r\nTrailer: x\r\n\r\n"), BODY),
    (http("Transfer-Encoding: chunked\r\nContent-Encoding: gzip", b""), b""),      # a 304, a HEAD
], ids=["gzip-twice", "deflate", "raw-deflate", "chunked-gzip", "no-body"])
def test_content_is_decoded_completely(block, decoded, tmp_path, run):
    url = "http://example.test/p"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, block)
    out = tmp_path / "p.html"
    result = run("extract", wacz, "--url", url, "--out", out)
    assert result.code == 0 and "digests hold" in result.out, result
    assert out.read_bytes() == decoded
    raw = tmp_path / "raw.bin"
    result = run("extract", wacz, "--url", url, "--out", raw, "--raw")
    assert result.code == 0 and "as transferred" in result.out, result
    assert raw.read_bytes() == block.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("block, why", [
    (http("Content-Encoding: gzip", GZ[:len(GZ) // 2]), "gzip data ends early"),
    (http("Content-Encoding: gzip", GZ[:40] + bytes(40) + GZ[80:]), "gzip data is damaged"),
    (http("Content-Encoding: gzip", GZ + b"<p>added</p>"), "after the end of its gzip data"),
    (http("Content-Encoding: gzip", gzip.compress(b"one ") + gzip.compress(b"two")), "a second gzip member"),
    (http("Content-Encoding: gzip", BODY), "not gzip data, though its Content-Encoding says so"),
    (http("Content-Encoding: br", b"\x8b\x02\x80hello\x03"), "encoded with br"),
    (http("Content-Encoding: compress", b"xyz"), "encoded with compress"),
    (http("Transfer-Encoding: chunked", b"5\r\nhello\r\nZZ\r\nworld\r\n0\r\n\r\n"), "bad chunk size"),
    (http("Transfer-Encoding: chunked", b"5\r\nhello\r\n10\r\nwor"), "ends before its last chunk"),
    (http("Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n<p>smuggled</p>"), "follow the last chunk"),
    (http("Content-Length: 5", b"hello<p>and a second body</p>"), "more than the 5 bytes its Content-Length"),
    (http("Content-Length: 50", b"hello"), "45 bytes before its Content-Length of 50"),
    (http("Content-Length: 5\r\nContent-Length: 6", b"hello!"), "Content-Length is given as 5, 6"),
], ids=["gzip-cut", "gzip-damaged", "after-gzip", "two-gzip-members", "stored-decoded", "br", "compress", "bad-chunk",
        "chunks-cut", "after-chunks", "longer-than-length", "shorter-than-length", "two-lengths"])
def test_content_that_does_not_decode_is_refused_not_passed_off(block, why, tmp_path, run):
    """warcio's reader wrote these half-decoded, still encoded or cut short, as 'decoded'
    (of two gzip members, which readers take differently, only the first), and a body
    longer or shorter than its Content-Length (a browser reads that many bytes) whole."""
    url = "http://example.test/p"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, block)
    out = tmp_path / "p.html"
    result = run("extract", wacz, "--url", url, "--out", out)
    assert result.code == 2 and why in result.err and "--raw" in result.err, result
    assert len(result.err.strip().splitlines()) == 1 and not out.exists()
    assert run("extract", wacz, "--url", url, "--out", out, "--raw").code == 0
    assert out.read_bytes() == block.split(b"\r\n\r\n", 1)[1]
    # to stdout: nothing at all, not the part that decoded before the refusal
    piped = run("extract", wacz, "--url", url)
    assert piped.code == 2 and piped.out == "" and "nothing was written to stdout" in piped.err


def test_many_tiny_chunks_decode_in_linear_time():
    """Each chunk sliced off the buffer made this quadratic: 300,000 1-byte chunks took 20 s."""
    import time

    from warcio.statusandheaders import StatusAndHeaders

    from archive.reader.decode import PayloadDecoder
    decoder = PayloadDecoder(StatusAndHeaders("200 OK", [("Transfer-Encoding", "chunked")], "HTTP/1.1"))
    payload = b"1\r\na\r\n" * 300_000 + b"0\r\n\r\n"
    # CPU time, not wall time: other processes on a loaded machine do not count against it
    started = time.process_time()
    out = b"".join(piece for at in range(0, len(payload), 1 << 20) for piece in decoder.feed(payload[at:at + (1 << 20)]))
    assert out == b"a" * 300_000 and list(decoder.finish()) == []
    assert time.process_time() - started < 4


def test_altered_content_that_no_longer_decodes_does_not_verify(tmp_path, run):
    """Its gzip body altered: 'does not decode' (exit 2) hid that its digests fail (exit 1)."""
    url = "http://example.test/p"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, http("Content-Encoding: gzip", GZ))
    altered = rewrite_records(wacz, tmp_path / "altered.wacz",
                              lambda record: record.replace(GZ[20:40], bytes(20)))
    out = tmp_path / "p.html"
    result = run("extract", altered, "--url", url, "--out", out)
    assert result.code == 1 and "digests do not match" in result.err, result
    assert not out.exists()


def test_a_cut_short_record_gives_what_decodes(tmp_path, run):
    url = "http://example.test/p"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, http("Content-Encoding: gzip", GZ[:len(GZ) // 2]),
                           extra={"WARC-Truncated": "length"})
    out = tmp_path / "p.html"
    result = run("extract", wacz, "--url", url, "--out", out)
    assert result.code == 0 and "TRUNCATED" in result.out, result
    assert BODY.startswith(out.read_bytes()) and 0 < len(out.read_bytes()) < len(BODY)


def test_an_index_pointing_into_the_middle_of_a_record_gives_one_line(tmp_path, run):
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": "http://example.test/s", "body": b"<p>said</p>"}], signer)
    with zipfile.ZipFile(wacz) as zf:
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()
    head, fields = lines[0].rsplit(" {", 1)
    fields = json.loads("{" + fields)
    fields["offset"] = str(int(fields["offset"]) + 10)      # inside the record's gzip member
    lines[0] = head + " " + json.dumps(fields)
    misled = refresh(wacz, tmp_path / "misled.wacz",
                     {"indexes/index.cdx.gz": gzip.compress(("\n".join(lines) + "\n").encode())})
    result = run("extract", misled, "--url", "http://example.test/s", "--out", tmp_path / "s.html")
    assert result.code == 2 and "internal error" not in result.err, result
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "s.html").exists()


def misindexed(wacz: Path, dst: Path, url: str, change) -> Path:
    """The WACZ with `change(fields)` applied to the index line of `url`."""
    with zipfile.ZipFile(wacz) as zf:
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()
    for number, line in enumerate(lines):
        head, fields = line.split(" {", 1)
        fields = json.loads("{" + fields)
        if fields["url"] == url:
            change(fields)
            lines[number] = head + " " + json.dumps(fields)
    return refresh(wacz, dst, {"indexes/index.cdx.gz": gzip.compress(("\n".join(lines) + "\n").encode())})


@pytest.mark.parametrize("change, words", [
    (lambda f: f.update(length=str(int(f["length"]) // 2)), "the capture's index is wrong"),
    (lambda f: f.update(length=str(int(f["length"]) - 30)), "the capture's index is wrong"),
    (lambda f: f.update(length="-5"), "the capture's index is wrong"),
    (lambda f: f.update(offset="-1"), "byte offset -1"),
    (lambda f: f.update(offset=str(10 ** 20)), f"byte offset {10 ** 20}"),
], ids=["half-length", "short-length", "negative-length", "negative-offset", "huge-offset"])
def test_an_index_line_with_a_wrong_length_or_offset_is_refused(change, words, tmp_path, run):
    """A window cut at a short index length made warcio see the record end early: part of
    the page was written, its digests reported as 'no digest to check', exit 0."""
    signer, _ = new_signer(tmp_path / "k")
    url = "http://example.test/s"
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": "http://example.test/a", "body": b"<p>first</p>"},
                                            {"url": url, "body": bytes(range(256)) * 200}], signer)
    misled = misindexed(wacz, tmp_path / "misled.wacz", url, change)
    out = tmp_path / "s.html"
    result = run("extract", misled, "--url", url, "--out", out)
    assert result.code == 2 and words in result.err, result
    assert len(result.err.strip().splitlines()) == 1 and not out.exists()


def two_versions(tmp_path: Path, url: str) -> Path:
    """A WACZ with two captures of `url`: "<p>v1</p>", then "<p>v2</p>"."""
    signer, _ = new_signer(tmp_path / "k")
    return build_wacz(tmp_path / "two.wacz", [{"url": url, "body": b"<p>v1</p>"},
                                             {"url": url, "body": b"<p>v2</p>"}], signer)


def test_an_index_that_cannot_be_read_whole_is_refused(tmp_path, run):
    """Its unreadable line was skipped: the earlier version was written as the only capture."""
    url = "http://example.test/s"
    wacz = two_versions(tmp_path, url)
    with zipfile.ZipFile(wacz) as zf:
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()
    lines[-1] = lines[-1].replace('"offset": "', '"offset": "x')
    for name, index in [("bad-line", gzip.compress(("\n".join(lines) + "\n").encode())),
                        ("cut-gzip", gzip.compress(("\n".join(lines) + "\n").encode())[:-12])]:
        misled = refresh(wacz, tmp_path / f"{name}.wacz", {"indexes/index.cdx.gz": index})
        out = tmp_path / f"{name}.html"
        result = run("extract", misled, "--url", url, "--out", out)
        assert result.code == 2 and "indexes/index.cdx.gz: " in result.err, (name, result)
        assert not out.exists()
    result = run("extract", wacz, "--url", url, "--out", tmp_path / "s.html")
    assert result.code == 0 and (tmp_path / "s.html").read_bytes() == b"<p>v2</p>", result


@pytest.mark.parametrize("line, time", [(0, "20991231235959"), (1, "20000101000000")],
                         ids=["earlier-made-later", "later-made-earlier"])
def test_an_index_time_that_is_not_its_records_is_refused(line, time, tmp_path, run):
    """The latest capture is picked by the index's time: an altered time handed out the
    earlier version as the latest, exit 0."""
    url = "http://example.test/s"
    wacz = two_versions(tmp_path, url)
    with zipfile.ZipFile(wacz) as zf:
        lines = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()
    key, _, fields = lines[line].split(" ", 2)
    lines[line] = f"{key} {time} {fields}"
    misled = refresh(wacz, tmp_path / "misled.wacz",
                     {"indexes/index.cdx.gz": gzip.compress(("\n".join(lines) + "\n").encode())})
    out = tmp_path / "s.html"
    result = run("extract", misled, "--url", url, "--out", out)
    assert result.code == 2 and f"the time {time}" in result.err and "index is wrong" in result.err, result
    assert not out.exists()


def test_a_metadata_record_of_the_url_indexed_after_its_response_is_passed_over(tmp_path, run):
    """Other tools index metadata records (Heritrix's outlinks) under the page's URL: the
    latest line was taken whatever its record, and extract refused the page."""
    from archive.wacz.zipwriter import ContainerWriter
    from archive.seal.wacz import SealInput, seal
    from archive.warc.cdxj import cdxj_line
    from archive.warc.writer import WarcWriter

    url = "http://example.test/p"
    signer, _ = new_signer(tmp_path / "k")
    container = ContainerWriter(tmp_path / "meta.wacz")
    writer = WarcWriter(container, "meta", {"software": "tests"})
    lines = []
    for kind, block in [("response", http("Content-Type: text/html", b"<p>the page</p>")),
                        ("metadata", b"outlink: http://example.test/q L a/@href\r\n")]:
        ref = writer.write(kind, url, block)
        lines.append(cdxj_line(url, ref.date, ref.filename, ref.offset, ref.length, kind))
    writer.close()
    seal(container, SealInput("meta", lines, [{"url": url, "ts": "2026-01-01T00:00:00Z"}], {}), signer)
    out = tmp_path / "p.html"
    result = run("extract", tmp_path / "meta.wacz", "--url", url, "--out", out)
    assert result.code == 0 and out.read_bytes() == b"<p>the page</p>", result
    assert "captures of this URL" not in result.out       # the metadata record is no capture


def test_without_an_index_the_latest_is_the_latest_by_its_date(tmp_path, run):
    """Read by scanning the WARC files, the latest was the last by file name."""
    url = "http://example.test/s"
    signer, _ = new_signer(tmp_path / "k")
    later = build_wacz(tmp_path / "later.wacz", [{"url": url, "body": b"<p>v2</p>"}], signer)
    earlier = rewrite_records(build_wacz(tmp_path / "e.wacz", [{"url": url, "body": b"<p>v1</p>"}], signer),
                              tmp_path / "earlier.wacz", lambda r: r.replace(b"WARC-Date: 20", b"WARC-Date: 19"))
    warcs = []
    for wacz in (later, earlier):
        with zipfile.ZipFile(wacz) as zf:
            warcs.append(zf.read(next(n for n in zf.namelist() if n.startswith("archive/"))))
    unindexed = tmp_path / "unindexed.wacz"
    with zipfile.ZipFile(unindexed, "w") as zf:
        zf.writestr("archive/a.warc.gz", warcs[0])      # the later capture, first by name
        zf.writestr("archive/b.warc.gz", warcs[1])
        zf.writestr("pages/pages.jsonl", json.dumps({"url": url, "ts": "2026-01-01T00:00:00Z"}) + "\n")
    out = tmp_path / "s.html"
    result = run("extract", unindexed, "--url", url, "--out", out)
    assert result.code == 0 and out.read_bytes() == b"<p>v2</p>", result
    assert "2 captures of this URL; this is the latest" in result.out


def test_a_record_shorter_than_its_content_length_is_refused(tmp_path, run):
    signer, _ = new_signer(tmp_path / "k")
    url = "http://example.test/s"
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": url, "body": bytes(range(256)) * 200}], signer)
    cut = rewrite_records(wacz, tmp_path / "cut.wacz",
                          lambda record: record[:-1000] if b"WARC-Type: response" in record else record)
    out = tmp_path / "s.html"
    result = run("extract", cut, "--url", url, "--out", out)
    assert result.code == 2 and "before its Content-Length" in result.err, result
    assert not out.exists()


def _file_size_capped(limit: int):
    """For a child process: files it writes stop at `limit` bytes (EFBIG, as a full disk)."""
    def cap():
        import resource
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return cap


@pytest.mark.parametrize("size", [3000, 300_000], ids=["fails-at-close", "fails-while-writing"])
def test_a_write_error_is_said_as_such_and_leaves_no_partial_file(size, tmp_path):
    """A full disk was 'the record cannot be read to its end: run archive verify' (the
    evidence blamed), or an internal error leaving part of the file behind."""
    import subprocess

    from tests.verifyhelp import BIN
    url = "http://example.test/s"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, http("Content-Type: text/plain", b"x" * size))
    out = tmp_path / "s.txt"
    result = subprocess.run([str(BIN / "archive"), "extract", str(wacz), "--url", url, "--out", str(out)],
                            capture_output=True, text=True, timeout=60, preexec_fn=_file_size_capped(1000))
    assert result.returncode == 2 and "cannot write " + str(out) in result.stderr, result
    assert "archive verify" not in result.stderr and "internal error" not in result.stderr
    assert not out.exists()


def test_a_reader_that_goes_away_is_no_damaged_record(tmp_path):
    import subprocess

    from tests.verifyhelp import BIN
    url = "http://example.test/s"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, http("Content-Type: text/plain", b"x" * (4 << 20)))
    child = subprocess.Popen([str(BIN / "archive"), "extract", str(wacz), "--url", url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.read(10) == b"x" * 10
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141 and "cannot be read" not in err, err


def test_an_index_pointing_outside_the_warc_files_is_refused(tmp_path, run):
    """A record planted in another member (evidence/) was written as the capture's."""
    from tests.verifyhelp import rezip

    url = "http://example.test/s"
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": url, "body": b"<p>as published</p>"}], signer)
    forged = build_wacz(tmp_path / "f.wacz", [{"url": url, "body": b"<p>planted</p>"}], signer)
    with zipfile.ZipFile(forged) as zf:
        planted = zf.read(next(n for n in zf.namelist() if n.startswith("archive/")))
        index = gzip.decompress(zf.read("indexes/index.cdx.gz")).decode()
    head, fields = index.splitlines()[0].split(" {", 1)
    fields = json.loads("{" + fields)
    fields["filename"] = "evidence/copy.warc.gz"
    with zipfile.ZipFile(wacz) as zf:
        names = zf.namelist()
    misled = rezip(wacz, tmp_path / "misled.wacz", order=names + ["evidence/copy.warc.gz"], replace={
        "evidence/copy.warc.gz": planted,
        "indexes/index.cdx.gz": gzip.compress((head + " " + json.dumps(fields) + "\n").encode())})
    out = tmp_path / "s.html"
    result = run("extract", misled, "--url", url, "--out", out)
    assert result.code == 2 and "not a WARC file of the capture" in result.err, result
    assert not out.exists()


def test_a_header_line_of_hundreds_of_megabytes_is_refused_in_bounded_memory(tmp_path):
    """warcio's reader holds a header line whole: an internal MemoryError (or the machine's
    memory) for a record that compresses to a few hundred KB."""
    from tests.verifyhelp import archive_cmd

    def huge_header(record: bytes) -> bytes:
        if b"WARC-Type: response" not in record:
            return record
        head, rest = record.split(b"\r\n", 1)
        return head + b"\r\nX-Padding: " + b"a" * (300 << 20) + b"\r\n" + rest

    url = "http://example.test/s"
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": url, "body": b"<p>x</p>"}], signer)
    hostile = rewrite_records(wacz, tmp_path / "hostile.wacz", huge_header)
    result = archive_cmd("extract", hostile, "--url", url, "--out", tmp_path / "s.html", limit_mb=400, timeout=120)
    assert result.returncode == 2 and "header line longer than" in result.stderr, result
    assert "internal error" not in result.stderr and not (tmp_path / "s.html").exists()


def test_a_url_typed_slightly_differently_is_pointed_at_what_was_captured(tmp_path, run):
    signer, _ = new_signer(tmp_path / "k")
    wacz = build_wacz(tmp_path / "a.wacz", [{"url": "http://example.test/", "body": b"<p>hi</p>"}], signer)
    for typed in ("http://example.test", "https://example.test/"):
        result = run("extract", wacz, "--url", typed)
        assert result.code == 2 and "was not captured" in result.err, result
        assert "it holds http://example.test/" in result.err
    assert "it holds" not in run("extract", wacz, "--url", "http://elsewhere.test/").err


def test_a_revisit_into_an_earlier_capture_is_followed_there_through_the_store(keydir, tmp_path, run):
    site = Site()
    site.add("/page", SHARED)
    store = tmp_path / "store"
    with SiteServer(site) as server, _env(ARCHIVE_KEY_PASSPHRASE=PASSPHRASE):
        def capture(*extra) -> str:
            result = run("capture", server.url("/page"), "--key", keydir / "signing-key.pem",
                         "--store", store, "--work-dir", tmp_path / "work", "--json", "--quiet", *extra)
            assert result.code == 0, result
            return json.loads(result.out)["capture_id"]
        first = capture()
        second = capture("--dedup-against", first)
        third = capture("--dedup-against", second)      # a revisit of a revisit: a chain
        url = server.url("/page")
    out = tmp_path / "page.html"
    result = run("extract", second, "--store", store, "--url", url, "--out", out, "--json")
    assert result.code == 0, result
    assert out.read_bytes() == SHARED
    report = json.loads(result.out)
    assert report["record_type"] == "revisit" and report["digests_ok"] is True
    assert report["revisit_of"].endswith(f"of capture {first}")
    chained = json.loads(run("extract", third, "--store", store, "--url", url, "--out",
                             tmp_path / "third.html", "--json").out)
    assert chained["revisit_of"].endswith(f"of capture {first}")
    assert (tmp_path / "third.html").read_bytes() == SHARED
    # a file alone (no store to look in) names the capture that holds the content
    wacz = next(store.rglob(f"{second}.wacz"))
    alone = run("extract", wacz, "--url", url, "--out", tmp_path / "alone.html")
    assert alone.code == 2 and "stored as a revisit" in alone.err and first in alone.err, alone
    assert not (tmp_path / "alone.html").exists()
    # and verifying the later capture says where that content is checked
    verified = run("verify", second, "--store", store, "--trust", keydir / "signing-key.pub.pem")
    assert verified.code == 0 and f"unchanged since {first}" in verified.out, verified


@pytest.mark.parametrize("name, url", [("valid_example_2.wacz", "http://www.example.com/"),
                                       ("valid_signed_example_1.wacz", "https://example.com/")])
def test_extract_from_a_foreign_wacz(name, url, tmp_path, run):
    from tests.verifyhelp import FOREIGN
    out = tmp_path / "page.html"
    result = run("extract", FOREIGN / name, "--url", url, "--out", out)
    assert result.code == 0 and "digests hold" in result.out, result
    assert b"Example Domain" in out.read_bytes()


def test_options_that_do_not_go_together_are_refused(tmp_path, run):
    """--timestamps silently ignored --url and --raw: the user got tokens, not the page."""
    url = "http://example.test/p"
    wacz = one_record_wacz(tmp_path / "a.wacz", url, http("Content-Type: text/plain", b"hello"))
    both = run("extract", wacz, "--timestamps", tmp_path / "tokens", "--url", url, "--raw")
    assert both.code == 2 and "--timestamps cannot be combined with --url, --raw" in both.err
    assert not (tmp_path / "tokens").exists()
    alone = run("extract", wacz, "--raw")
    assert alone.code == 2 and "go with --url URL" in alone.err


def test_a_revisit_is_followed_only_into_capture_ids_never_paths_and_each_opened_once(tmp_path):
    """The capture a revisit points into is named by the file being read: a path there
    (another local file) is never opened."""
    from contextlib import ExitStack

    from archive.errors import ArchiveError
    from archive.reader.extract import store_opener
    opened = []

    def not_in_store(capture_id):
        opened.append(capture_id)
        raise ArchiveError(f"no capture {capture_id}")
    with ExitStack() as stack:
        opener = store_opener(stack, not_in_store)
        assert opener("/etc/passwd") is None and opener("../other.wacz") is None
        assert opener("20260101T000000Z-0badcafe") is None      # opening it failed
        assert opener("20260101T000000Z-0badcafe") is None
    assert opened == ["20260101T000000Z-0badcafe"], "a capture is opened once, however often named"
