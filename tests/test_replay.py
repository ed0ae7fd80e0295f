"""Our captures in ReplayWeb.page 2.5.3 (wabac.js), the viewer most people given a WACZ
open: pages replay from the capture alone (the site is stopped first), and wabac.js
records our signature as matching, and a flipped byte of it as not.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from archive import SOFTWARE
from archive.replayweb import cache_root
from archive.wacz.zipwriter import ContainerWriter
from archive.seal.wacz import SealInput, seal
from archive.warc.cdxj import cdxj_line
from archive.warc.writer import WarcWriter
from archive.warc.zipnum import BLOCK_LINES
from tests.conftest import PASSPHRASE, stored_waczs, tool
from tests.replay import ReplayServer, Replayed, dump, launch
from tests.site import Site, SiteServer
from tests.verifyhelp import png, rezip
from tests.warcs import assert_third_party_checks_pass

PYWB = cache_root() / "pywb-2.10.0"       # scripts/install-pywb
MAP = png(24, 12, (200, 40, 10))
NEWS_TEXT = "Floods reach the capital; thousands displaced"
ARTICLE_TEXT = "Witnesses describe the night the river rose"


def news_site() -> Site:
    """A news front page and an article with two images, one of them served twice (same
    bytes at another URL: stored once, then a revisit in the same capture)."""
    site = Site()
    site.html("/", "Daily News", f'<h1>{NEWS_TEXT}</h1><a href="/article">read</a>'
              '<link rel="stylesheet" href="/site.css">')
    site.add("/site.css", "h1{color:#333}", content_type="text/css")
    site.html("/article", "The river", (
        f'<p>{ARTICLE_TEXT}</p><img id="a" src="/img/river.png"><img id="b" src="/img/map.png">'
        '<img id="c" src="/img/map-again.png">'))
    site.add("/img/river.png", png(40, 30, (10, 90, 200)), content_type="image/png")
    site.add("/img/map.png", MAP, content_type="image/png")
    site.add("/img/map-again.png", MAP, content_type="image/png")
    return site


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def replay():
    with ReplayServer() as server:
        yield server


def _capture(key: Path, folder: Path, *extra) -> tuple[Path, dict[str, str]]:
    """Capture the news site (stopped before anything replays); (WACZ, its URLs)."""
    with SiteServer(news_site()) as site:
        urls = {"news": site.url("/"), "article": site.url("/article")}
        proc = subprocess.run([tool("archive"), "capture", urls["news"], urls["article"], "--key", str(key),
                               "--store", str(folder / "store"), "--work-dir", str(folder / "work"),
                               "--quiet", *extra], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE))
        assert proc.returncode == 0, proc.stderr
    return Path(stored_waczs(folder / "store")[-1]), urls


@pytest.fixture(scope="module")
def captured(keydir, tmp_path_factory):
    return _capture(keydir / "signing-key.pem", tmp_path_factory.mktemp("replayed"))


def _index(wacz: Path) -> list[dict]:
    with zipfile.ZipFile(wacz) as zf:
        return [json.loads(line.split(" ", 2)[2])
                for line in gzip.decompress(zf.read("indexes/index.cdx.gz")).decode().splitlines()]


def _article_replays(replayed: Replayed) -> None:
    doc = replayed.document(images=3)
    assert ARTICLE_TEXT in doc["text"], doc
    sizes = {i["src"]: (i["width"], i["height"]) for i in doc["images"]}
    # decoded: the sizes are those of the archived PNGs (a broken image is 0x0)
    assert sizes == {"/img/river.png": (40, 30), "/img/map.png": (24, 12), "/img/map-again.png": (24, 12)}, doc


def test_news_page_and_article_with_a_revisit_replay_and_the_signature_is_confirmed(browser, replay, captured, keydir):
    wacz, urls = captured
    source = replay.serve(wacz)
    news = Replayed(browser, replay, source, urls["news"])
    try:
        doc = news.document()
        assert NEWS_TEXT in doc["text"] and doc["title"] == "Daily News", doc
        rows = news.verification()
        assert rows.get("signature", {}).get("matched") is True, dump(rows)
        # the receipt (getVerifyInfo) shows these two as they are
        assert rows["software"]["expected"] == SOFTWARE, dump(rows)
        signed = json.loads(zipfile.ZipFile(wacz).read("datapackage-digest.json"))["signedData"]
        assert rows["publicKey"]["expected"] == signed["publicKey"], dump(rows)
        public = (keydir / "signing-key.pub.pem").read_text()
        assert base64.b64decode(signed["publicKey"]) == base64.b64decode("".join(public.splitlines()[1:-1]))
        # each index block it loaded matches its idx digest (of the block's lines, as
        # wabac.js computes it). It records `matched: false` for files it hashes whole
        # (pages.jsonl, index.idx) and for datapackageHash (given no value) in every WACZ,
        # Webrecorder's own included: those records say nothing of the file
        blocks = [r for r in rows.values() if "indexes/index.cdx.gz:" in r["id"]]
        assert blocks and all(r["matched"] is True for r in blocks), dump(rows)
    finally:
        news.close()
    # one of the two maps (the same bytes at two URLs) is a revisit of the other: it
    # replays from the original in the same capture
    revisits = [f for f in _index(wacz) if f.get("recordType") == "revisit"]
    assert len(revisits) == 1 and revisits[0]["url"].endswith(("/img/map.png", "/img/map-again.png")), revisits
    article = Replayed(browser, replay, source, urls["article"])
    try:
        _article_replays(article)
    finally:
        article.close()
    assert replay.httpd.ranges > 0       # read by ranges, as over the web


def test_a_flipped_signature_byte_is_recorded_as_not_matching(browser, replay, captured, tmp_path):
    wacz, urls = captured
    with zipfile.ZipFile(wacz) as zf:
        digest = json.loads(zf.read("datapackage-digest.json"))
    signature = bytearray(base64.b64decode(digest["signedData"]["signature"]))
    signature[10] ^= 0x01
    digest["signedData"]["signature"] = base64.b64encode(bytes(signature)).decode()
    flipped = rezip(wacz, tmp_path / "flipped.wacz", {"datapackage-digest.json": json.dumps(digest).encode()})
    news = Replayed(browser, replay, replay.serve(flipped), urls["news"])
    try:
        rows = news.verification()
        assert rows.get("signature", {}).get("matched") is False, dump(rows)
    finally:
        news.close()


def test_pywb_replays_the_same_capture_and_its_revisit(captured, tmp_path):
    """pywb (in its own virtualenv) unpacks the WACZ and serves the article and both maps,
    the revisit with its original's bytes."""
    assert (PYWB / ".installed").exists(), f"pywb is not installed in {PYWB}: scripts/test installs it (scripts/install-pywb)"
    wacz, urls = captured

    def pywb(*args: str) -> str:
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    pywb(str(PYWB / "bin" / "wb-manager"), "init", "evidence")
    pywb(str(PYWB / "bin" / "wb-manager"), "add", "evidence", "--unpack-wacz", str(wacz))
    base = urls["news"].rstrip("/")
    out = pywb(str(PYWB / "bin" / "python"), str(Path(__file__).with_name("pywb_fetch.py")), "evidence",
               urls["article"], base + "/img/map.png", base + "/img/map-again.png")
    # pywb also prints lines of its own (its index watcher)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith('{"url"')]
    got = {r["url"]: (r["status"], base64.b64decode(r["body"])) for r in rows}
    assert got[urls["article"]][0] == "200 OK" and ARTICLE_TEXT.encode() in got[urls["article"]][1]
    assert got[base + "/img/map.png"] == got[base + "/img/map-again.png"] == ("200 OK", MAP)


def test_a_browser_capture_replays(browser, replay, keydir, tmp_path):
    wacz, urls = _capture(keydir / "signing-key.pem", tmp_path, "--browser")
    assert_third_party_checks_pass(wacz, tmp_path)     # warcio check, wacz validate
    article = Replayed(browser, replay, replay.serve(wacz), urls["article"])
    try:
        _article_replays(article)
    finally:
        article.close()



def _stored_gzip(data: bytes) -> bytes:
    """A gzip member holding `data` in one stored (uncompressed) deflate block: what a
    compressor makes of it at level 0, without a compressor's set-up cost per record."""
    size = len(data)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x01" + struct.pack("<HH", size, size ^ 0xFFFF)
            + data + struct.pack("<II", zlib.crc32(data), size))


def _filler_warc(count: int, date: str) -> tuple[bytes, list[str]]:
    """A WARC of `count` small resource records (one gzip member each, the same block in
    all, digests right) and their index lines: a capture's worth of records made in
    seconds, not by fetching."""
    block = b"filler"
    digest = "sha256:" + base64.b32encode(hashlib.sha256(block).digest()).decode()
    stamp = re.sub(r"\D", "", date)[:14]
    members, lines, offset = [], [], 0
    for i in range(count):
        url = f"http://filler.test/r/{i:06d}"
        head = (f"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:00000000-0000-4000-8000-{i:012x}>\r\n"
                f"WARC-Date: {date}\r\nWARC-Target-URI: {url}\r\nContent-Type: text/plain\r\n"
                f"WARC-Block-Digest: {digest}\r\nWARC-Payload-Digest: {digest}\r\n"
                f"Content-Length: {len(block)}\r\n\r\n").encode()
        data = _stored_gzip(head + block + b"\r\n\r\n")
        members.append(data)
        lines.append(f'test,filler)/r/{i:06d} {stamp} {{"url": "{url}", "mime": "text/plain", "digest": '
                     f'"{digest}", "length": "{len(data)}", "offset": "{offset}", "filename": '
                     '"filler.warc.gz", "recordType": "resource"}')
        offset += len(data)
    return b"".join(members), lines


def test_a_capture_of_200000_records_has_many_blocks_and_replays_from_the_last(browser, replay, tmp_path):
    """wabac.js loads only the blocks a URL can be in: a page whose key sorts after
    200,000 others is found through the idx, in the last block."""
    container = ContainerWriter(tmp_path / "big.wacz")
    writer = WarcWriter(container, "big", {"software": "tests"})
    page = "http://zz.test/last-page"
    body = b"<html><head><title>Last</title></head><body><p>found in the last block</p></body></html>"
    ref = writer.write("response", page, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body) + body)
    writer.close()
    data, lines = _filler_warc(200_000, ref.date)
    container.add_bytes("archive/filler.warc.gz", data)
    lines.append(cdxj_line(page, ref.date, ref.filename, ref.offset, ref.length, "response", None, "text/html", 200))
    sealed = seal(container, SealInput("big", lines, [{"url": page, "ts": ref.date, "title": "Last"}]), None)
    with zipfile.ZipFile(sealed.path) as zf:
        idx = zf.read("indexes/index.idx").decode().splitlines()
        last = json.loads(idx[-1].split(" ", 2)[2])
        blocks = zf.read("indexes/index.cdx.gz")
    assert len(idx) - 1 == -(-len(lines) // BLOCK_LINES) >= 60, idx[:3]
    # the page is the last line of the last block, found by that block's first key
    tail = gzip.decompress(blocks[last["offset"]:last["offset"] + last["length"]]).decode().splitlines()
    assert tail[-1].startswith("test,zz)/last-page ") and not idx[-1].startswith("test,zz)"), idx[-1]
    replayed = Replayed(browser, replay, replay.serve(sealed.path), page)
    try:
        assert "found in the last block" in replayed.document()["text"]
        # only the blocks the lookup needed were read, each checked against its idx digest
        blocks = [r for r in replayed.verification("signature", timeout=0).values()
                  if "indexes/index.cdx.gz:" in r["id"]]
        assert blocks and all(r["matched"] is True for r in blocks) and len(blocks) < 10, dump(blocks)
    finally:
        replayed.close()
