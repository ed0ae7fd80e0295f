"""--media: video and audio downloaded by yt-dlp through our recording proxy, every
manifest and segment a response record, the finished file a resource record (or, when
it is byte for byte the payload of a response its download recorded, a revisit of that
response), sealed with the page. All local: media made by ffmpeg from a test pattern, served on 127.0.0.1."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from archive.cli import main as cli_main
from tests.conftest import BIN, PASSPHRASE, stored_waczs
from tests.media import SECONDS, build_media, ffprobe, media_site
from tests.site import SiteServer
from tests.warcs import assert_third_party_checks_pass, member, pages, records, warc_bytes

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

PAGES = ("/video.html", "/hls.html", "/dash.html", "/audio.html", "/gone.html", "/embed.html",
         "/cut.html")


@pytest.fixture(scope="session")
def media_files(tmp_path_factory) -> dict[str, bytes]:
    return build_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def msite(media_files):
    with SiteServer(media_site(media_files)) as server:
        yield server


def capture_cli(args: list, out: Path) -> tuple[int, Path | None]:
    """`archive capture ARGS` in this process, signed; (exit code, stored WACZ)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
        code = cli_main(["capture", *map(str, args), "--store", str(out / "store"),
                         "--work-dir", str(out / "work"), "--quiet"])
    found = stored_waczs(out / "store")
    return code, Path(found[-1]) if found else None


@pytest.fixture(scope="module")
def captured(msite, keydir, tmp_path_factory):
    """One capture of every media page with --media (the expensive part, done once)."""
    out = tmp_path_factory.mktemp("media-capture")
    code, wacz = capture_cli([*(msite.url(p) for p in PAGES), "--media",
                              "--key", keydir / "signing-key.pem"], out)
    assert code == 0 and wacz is not None
    return wacz


def evidence(wacz: Path) -> dict:
    return json.loads(member(wacz, "evidence/capture.json"))


def items_by_page(wacz: Path, site) -> dict[str, dict]:
    return {item["page"].removeprefix(site.base): item for item in evidence(wacz)["media"]["items"]}


def sha256_b32(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode()


def test_every_manifest_and_segment_served_is_a_response_record_with_its_bytes(captured, msite):
    recs = records(captured)
    responses = {}
    for rec in recs:
        if rec["type"] in ("response", "revisit"):    # the same bytes twice: a revisit
            responses.setdefault(rec["uri"], []).append(rec["headers"]["WARC-Payload-Digest"])
    served = msite.site.served
    media_paths = [p for p in served if p.startswith("/media/")]
    # the master playlist, both renditions' playlists, the chosen rendition's segments,
    # the DASH manifest, its init and media segments of both streams, the files
    for path in ("/media/hls/master.m3u8", "/media/hls/high.m3u8", "/media/hls/high-0.ts",
                 "/media/hls/high-2.ts", "/media/dash/manifest.mpd", "/media/dash/init-0.m4s",
                 "/media/dash/init-1.m4s", "/media/dash/chunk-1-00003.m4s", "/media/clip.mp4",
                 "/media/audio.m4a", "/media/embedded.mp4"):
        assert path in media_paths, path
    for path in media_paths:
        digests = responses.get(msite.url(path))
        assert digests, f"{path} was served but is not in the WARC"
        assert sha256_b32(served[path]) in digests, path
    # A video named by a page is yt-dlp's to fetch: the crawler does not fetch it twice.
    assert len(responses[msite.url("/media/clip.mp4")]) == 1
    assert msite.site.requests.count("/media/clip.mp4") == 1


def _resource(recs: list[dict], uri: str) -> dict:
    found = [r for r in recs if r["type"] == "resource" and r["uri"] == uri]
    assert len(found) == 1, uri
    return found[0]


def _file(recs: list[dict], uri: str) -> tuple[dict, bytes]:
    """The record of a finished file and the file's bytes: a resource record's payload, or,
    for a revisit, the payload of the response it refers to (by id, URL and date), whose
    payload digest it names."""
    found = [r for r in recs if r["type"] in ("resource", "revisit") and r["uri"] == uri]
    assert len(found) == 1, uri
    rec, headers = found[0], found[0]["headers"]
    if rec["type"] == "resource":
        assert headers["WARC-Block-Digest"] == sha256_b32(rec["payload"])
        return rec, rec["payload"]
    assert headers["Content-Length"] == "0" and headers["WARC-Profile"].endswith("/identical-payload-digest")
    original = next(r for r in recs if r["headers"].get("WARC-Record-ID") == headers["WARC-Refers-To"])
    assert original["type"] == "response" and original["uri"] == headers["WARC-Refers-To-Target-URI"]
    assert original["headers"]["WARC-Date"] == headers["WARC-Refers-To-Date"]
    assert original["headers"]["WARC-Payload-Digest"] == headers["WARC-Payload-Digest"] \
        == sha256_b32(original["payload"])
    return rec, original["payload"]


@pytest.mark.parametrize("page, streams, width, stored", [
    # a file served whole in one response: a revisit of it (its bytes are not written twice)
    ("/video.html", ["audio", "video"], 160, "revisit"),
    ("/hls.html", ["audio", "video"], 320, "resource"),      # the better of the two renditions
    ("/dash.html", ["audio", "video"], 160, "resource"),     # video and audio merged into one file
    ("/audio.html", ["audio"], None, "revisit"),
    ("/player.html", ["audio", "video"], 160, "revisit"),    # the player in an <iframe>
])
def test_the_finished_file_is_a_valid_media_file_of_the_right_duration(captured, msite, tmp_path,
                                                                       page, streams, width, stored):
    item = items_by_page(captured, msite)[page]
    assert item["status"] == "kept"
    rec, data = _file(records(captured), f"urn:media:{msite.url(page)}#1")
    assert rec["type"] == stored and ("stored" in item) == (stored == "revisit")
    assert hashlib.sha256(data).hexdigest() == item["sha256"]
    path = tmp_path / "file"
    path.write_bytes(data)
    probed = ffprobe(path)
    assert probed["streams"] == streams
    assert abs(probed["duration"] - SECONDS) < 0.5
    assert abs(item["duration"] - SECONDS) < 0.5
    if width:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                              "stream=width", "-of", "csv=p=0", str(path)],
                             capture_output=True, text=True, check=True).stdout
        assert int(out.strip()) == width


def test_metadata_names_the_format_chosen_the_extractor_the_version_and_the_hash(captured, msite):
    recs = records(captured)
    uri = f"urn:media:{msite.url('/hls.html')}#1"
    meta = [r for r in recs if r["type"] == "metadata" and r["uri"] == uri]
    assert len(meta) == 1
    data = json.loads(meta[0]["payload"])
    resource = _resource(recs, uri)
    assert data["media-record"] == resource["headers"]["WARC-Record-ID"]
    assert meta[0]["headers"]["WARC-Concurrent-To"] == resource["headers"]["WARC-Record-ID"]
    assert data["files"][0]["sha256"] == hashlib.sha256(resource["payload"]).hexdigest()
    assert data["extractor"] == "Generic" and data["yt-dlp"]
    assert data["format"]["selector"] and "best" in data["format"]["why"]
    assert data["format"]["parts"][0]["height"] == 240 and data["format"]["available"] >= 2
    assert data["media-url"] == msite.url("/media/hls/master.m3u8")
    # the exchanges the file was made from: the playlists and the chosen rendition's segments
    assert data["fetched"][0] == msite.url("/media/hls/master.m3u8")
    assert {msite.url(f"/media/hls/high-{n}.ts") for n in range(3)} <= set(data["fetched"])
    assert not any("clip-" in url for url in data["fetched"])
    # what yt-dlp would send (request headers, cookies) and local paths are not kept
    text = meta[0]["payload"].decode()
    assert "http_headers" not in text and '"cookies"' not in text and "filepath" not in text
    warcinfo = next(r for r in recs if r["type"] == "warcinfo")["payload"].decode()
    assert f"media-downloader: yt-dlp {data['yt-dlp']}" in warcinfo
    assert "media-merger: ffmpeg" in warcinfo


def test_errors_are_recorded_with_yt_dlps_message_and_the_capture_still_verifies(
        captured, msite, pubkey, tmp_path):
    items = items_by_page(captured, msite)
    assert items["/gone.html"]["status"] == "failed" and "404" in items["/gone.html"]["reason"]
    cut = items["/cut.html"]
    assert cut["status"] == "failed" and "bytes read" in cut["reason"], cut
    # the cut segment is in the WARC as it came: a response cut short
    cut_records = [r for r in records(captured)
                   if r["type"] == "response" and r["uri"] == msite.url("/media/cut-1.ts")]
    assert cut_records and all(r["headers"].get("WARC-Truncated") == "disconnect" for r in cut_records)
    # pages.jsonl says per page what became of its media
    listed = {p["url"].removeprefix(msite.base): p for p in pages(captured)}
    assert listed["/gone.html"]["media"][0]["status"] == "failed"
    assert listed["/video.html"]["media"][0]["status"] == "kept"
    assert listed["/video.html"]["media"][0]["record"] == f"urn:media:{msite.url('/video.html')}#1"
    # the player in an <iframe>: its video is listed with the page that embeds it
    embedded = listed["/embed.html"]["media"][0]
    assert embedded["frame"] == msite.url("/player.html") and embedded["status"] == "kept"
    stats = evidence(captured)["stats"]
    assert stats["media"] == 5 and stats["mediaFailed"] == 2
    verify = subprocess.run([str(BIN / "archive"), "verify", str(captured), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "media (video and audio found" in verify.stdout
    assert f"#1 kept  sha256 {items['/video.html']['sha256']}" in verify.stdout
    assert_third_party_checks_pass(captured, tmp_path)


def _zip_data_start(data: bytes, name: str, wacz: Path) -> int:
    info = zipfile.ZipFile(wacz).getinfo(name)
    n, e = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    return info.header_offset + 30 + n + e


def _record_start(wacz: Path, data: bytes, uri: str) -> tuple[int, int]:
    """(where in the WACZ's bytes the record of `uri` begins, its length), by the index."""
    index = gzip.decompress(member(wacz, "indexes/index.cdx.gz")).decode()
    line = next(line for line in index.splitlines() if f'"url": "{uri}"' in line)
    where = json.loads(line[line.index("{"):])
    return (_zip_data_start(data, f"archive/{where['filename']}", wacz) + int(where["offset"]),
            int(where["length"]))


@pytest.mark.parametrize("which", ["merged file", "response holding a direct file"])
def test_a_flipped_byte_in_a_media_record_fails_verify_and_names_it(captured, msite, pubkey, tmp_path,
                                                                    which):
    data = bytearray(captured.read_bytes())
    # a direct file's bytes are in its response record (its urn:media record a revisit of it)
    uri = f"urn:media:{msite.url('/dash.html')}#1" if which == "merged file" else msite.url("/media/clip.mp4")
    start, length = _record_start(captured, data, uri)
    data[start + length // 2] ^= 0x01
    flipped = tmp_path / "flipped.wacz"
    flipped.write_bytes(data)
    verify = subprocess.run([str(BIN / "archive"), "verify", str(flipped), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 1
    assert uri in verify.stdout


def test_a_direct_files_finished_file_is_a_revisit_of_its_response_and_extracts_as_served(
        captured, msite, pubkey, run, tmp_path):
    """A file served whole (one GET, nothing merged) is byte for byte the response's payload:
    its bytes are in the WARC once, the evidence says where, extract writes them out."""
    served = msite.site.served["/media/clip.mp4"]
    recs = records(captured)
    uri = f"urn:media:{msite.url('/video.html')}#1"
    rec, data = _file(recs, uri)
    assert rec["type"] == "revisit" and data == served
    original = rec["headers"]["WARC-Refers-To"]
    assert warc_bytes(captured).count(served) == 1      # not written twice
    item = items_by_page(captured, msite)["/video.html"]
    assert item["stored"] == f"revisit of {original}" and item["storedIn"] == msite.url("/media/clip.mp4")
    listed = next(p for p in pages(captured) if p["url"] == msite.url("/video.html"))["media"][0]
    assert listed["stored"] == item["stored"] and listed["storedIn"] == item["storedIn"]
    meta = json.loads(next(r for r in recs if r["type"] == "metadata" and r["uri"] == uri)["payload"])
    assert meta["media-record"] == rec["headers"]["WARC-Record-ID"]
    assert meta["files"][0]["stored"] == item["stored"]
    # the catalog (and the web app's list) takes it as media, of its original's size
    from archive.catalog.records import SpilledIndex
    index = SpilledIndex(gzip.decompress(member(captured, "indexes/index.cdx.gz")).decode().splitlines())
    try:
        listed_media = {r.url: r for r in index.media()}
    finally:
        index.close()
    assert listed_media[uri].record_type == "revisit" and listed_media[uri].mime == "video/mp4"
    assert len(served) < listed_media[uri].length < len(served) + 4096
    number = next(i["item"] for i in json.loads(run("extract", captured, "--media", "--json").out)["media"]
                  if i["page"] == msite.url("/video.html"))
    assert f"stored    {item['stored']}: the response of {item['storedIn']}" in run("extract", captured, "--media").out
    out = tmp_path / "video.mp4"
    written = run("extract", captured, "--media", number, "--out", out)
    assert written.code == 0, written
    assert out.read_bytes() == served and "byte for byte" in written.out
    probed = ffprobe(out)
    assert probed["streams"] == ["audio", "video"] and abs(probed["duration"] - SECONDS) < 0.5
    # the report shows its SHA-256 (the revisit's digest, checked against its original's)
    # and where its bytes are
    as_json = json.loads(run("verify", captured, "--trust", pubkey, "--json").out)
    row = next(p for p in as_json["pages"] if p["url"] == msite.url("/video.html"))["media"][0]
    assert row["sha256"] == item["sha256"] and row["found"] and row["contentType"] == "video/mp4"
    assert row["stored"] == item["stored"] and row["storedIn"] == item["storedIn"]


def _refer_elsewhere(wacz: Path, uri: str, tmp_path: Path) -> Path:
    """A copy of `wacz` whose revisit `uri` names another URL as its original (same length,
    the record's gzip CRC made right: the record reads, its original is not there)."""
    data = bytearray(wacz.read_bytes())
    start, length = _record_start(wacz, data, uri)
    record = zlib.decompress(bytes(data[start:start + length]), 31)
    text = record.replace(b".mp4\r\nWARC-Refers-To-Date", b".mp5\r\nWARC-Refers-To-Date")
    assert text != record
    # stored deflate blocks (a media type's level): the header's bytes are there verbatim
    at = data.index(record[:200], start)
    data[at:at + len(record)] = text
    data[start + length - 8:start + length - 4] = struct.pack("<I", zlib.crc32(text))
    altered = tmp_path / "refers-elsewhere.wacz"
    altered.write_bytes(data)
    return altered


def test_a_media_revisit_whose_original_is_not_in_the_capture_fails_verify_and_extract(
        captured, msite, pubkey, run, tmp_path):
    uri = f"urn:media:{msite.url('/video.html')}#1"
    altered = _refer_elsewhere(captured, uri, tmp_path)
    verify = subprocess.run([str(BIN / "archive"), "verify", str(altered), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 1
    assert f"media revisit refers to {msite.url('/media/clip.mp5')}" in verify.stdout and uri in verify.stdout
    number = next(i["item"] for i in json.loads(run("extract", captured, "--media", "--json").out)["media"]
                  if i["page"] == msite.url("/video.html"))
    refused = run("extract", altered, "--media", number, "--out", tmp_path / "video.mp4")
    assert refused.code == 1 and "the file's bytes are missing" in refused.err
    assert not (tmp_path / "video.mp4").exists()


def test_media_options_need_media_and_bad_values_are_one_line_errors(run, tmp_path):
    for args in (["--media-format", "best"], ["--media-max-size", "10MB"], ["--media-live", "10s"]):
        result = run("capture", "http://127.0.0.1:9/", "--unsigned", *args)
        assert result.code == 2 and "only with --media" in result.err and "Traceback" not in result.err
    result = run("capture", "http://127.0.0.1:9/", "--unsigned", "--media", "--media-cookies",
                 tmp_path / "missing.txt")
    assert result.code == 2 and "no such file" in result.err


@pytest.mark.parametrize("limit", ["--media-max-size", "--max-bytes"])
def test_a_size_limit_skips_an_item_and_says_why(msite, key, tmp_path, limit):
    # the clip is 45 KB; --max-bytes counts media with the rest
    code, wacz = capture_cli([msite.url("/video.html"), "--media", limit, "20KB", "--key", key],
                             tmp_path)
    assert code == 0
    item = items_by_page(wacz, msite)["/video.html"]
    assert item["status"] == "skipped" and limit in item["reason"]
    assert not [r for r in records(wacz) if (r["uri"] or "").startswith("urn:media:")]


@pytest.mark.parametrize("option", ["--media-cookies", "--cookies"])
def test_secrets_given_to_yt_dlp_never_appear_in_the_wacz(msite, key, tmp_path, option):
    # --cookies serves the crawl and media alike; --media-cookies, media only (as before)
    secret = "s3cr3t-session-7f0c1e9a"
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\t{secret}\n")
    code, wacz = capture_cli([msite.url("/hls.html"), "--media", option, cookies,
                              "--key", key], tmp_path / "out")
    assert code == 0
    assert items_by_page(wacz, msite)["/hls.html"]["status"] == "kept"
    # nothing sealed holds it: no member, no decompressed WARC record
    raw = wacz.read_bytes()
    assert secret.encode() not in raw
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            body = zf.read(name)
            if name.endswith(".gz"):
                body = gzip.GzipFile(fileobj=io.BytesIO(body)).read()
            assert secret.encode() not in body, name
    recs = records(wacz)
    requests = [r for r in recs if r["type"] == "request" and "/media/" in r["uri"]]
    # yt-dlp did send the cookie with every media request (so this test could fail): the
    # header is there, its value redacted
    assert requests and all(r["http"].get_header("Cookie").startswith("[redacted Cookie session=hmac-sha256:")
                            for r in requests)
    media_meta = [r for r in recs if r["type"] == "metadata" and "/media/" in (r["uri"] or "")]
    assert all(b"redacted: Cookie request header" in r["payload"] for r in media_meta)


def test_a_capture_killed_during_a_download_resumes_fetches_it_again_and_verifies(
        media_files, key, pubkey, tmp_path):
    from tests.killing import capture_killed_when
    from tests.media import trickle

    site = media_site(media_files)
    site.add("/media/slow.mp4", handler=trickle(media_files["/media/clip.mp4"]))
    site.html("/slow.html", "Slow", '<video src="/media/slow.mp4"></video>')
    with SiteServer(site) as server:
        work = tmp_path / "work"
        journal = capture_killed_when(
            [server.url("/slow.html"), "--media", "--key", key, "--store", tmp_path / "store"],
            work, lambda j: b"mediaFound" in j.read_bytes() and "/media/slow.mp4" in site.requests,
            then_wait=0.3)
        assert b"mediaDone" not in journal.read_bytes()     # killed mid-download
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
            code = cli_main(["capture", "--resume", str(journal.parent), "--key", str(key),
                             "--store", str(tmp_path / "store"), "--quiet"])
        assert code == 0
        assert site.requests.count("/media/slow.mp4") == 2
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    item = items_by_page(wacz, server)["/slow.html"]
    assert item["status"] == "kept" and "fetched anew" in item["fetchedAgain"]
    assert item["sha256"] == hashlib.sha256(media_files["/media/clip.mp4"]).hexdigest()
    # the partial first download left no record: one response, whole
    slow = [r for r in records(wacz) if r["uri"] == server.url("/media/slow.mp4")
            and r["type"] == "response"]
    assert len(slow) == 1 and "WARC-Truncated" not in slow[0]["headers"]
    verify = subprocess.run([str(BIN / "archive"), "verify", str(wacz), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout


def test_a_job_file_carries_the_media_options_and_refuses_them_without_media(tmp_path):
    from archive.jobs.request import capture_request
    from archive.jobs.spec import parse_job
    from tests.jobfiles import write_job

    (tmp_path / "cookies.txt").write_text("# Netscape HTTP Cookie File\n")
    path = write_job(tmp_path, "videos", ["https://example.org/"], None, tmp_path / "store",
                     crawl={"media": True, "media_max_size": "2GB", "media_format": "best[height<=720]",
                            "media_live": "10m", "media_cookies": "cookies.txt"})
    spec, problems = parse_job(path)
    assert problems == []
    media = capture_request(spec).crawl.media
    assert (media.max_size, media.format, media.live) == (2_000_000_000, "best[height<=720]", 600.0)
    assert Path(media.cookies) == tmp_path / "cookies.txt"
    path = write_job(tmp_path, "plain", ["https://example.org/"], None, tmp_path / "store",
                     crawl={"media_format": "best"})
    spec, problems = parse_job(path)
    assert spec is None and "applies with media = true only" in problems[0].message


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium")
def test_browser_capture_finds_media_in_the_rendered_page_and_its_frames(msite, key, tmp_path):
    code, wacz = capture_cli([msite.url("/hls.html"), msite.url("/embed.html"), "--browser",
                              "--media", "--key", key], tmp_path)
    assert code == 0
    items = items_by_page(wacz, msite)
    assert items["/hls.html"]["status"] == "kept"
    # the player in the <iframe>: found in the frame's rendered DOM, listed with the page
    assert items["/embed.html"]["status"] == "kept"
    assert items["/embed.html"]["url"] == msite.url("/media/embedded.mp4")
    listed = {p["url"].removeprefix(msite.base): p for p in pages(wacz)}
    assert listed["/embed.html"]["media"][0]["status"] == "kept"
    recs = records(wacz)
    _resource(recs, f"urn:media:{msite.url('/hls.html')}#1")
    assert [r for r in recs if r["type"] == "response" and r["uri"] == msite.url("/media/hls/high-2.ts")]


def test_extract_lists_the_media_and_writes_one_out(captured, msite, run, tmp_path):
    listing = run("extract", captured, "--media", "--json")
    assert listing.code == 0
    items = json.loads(listing.out)["media"]
    hls = next(i for i in items if i["page"] == msite.url("/hls.html"))
    assert hls["status"] == "kept" and hls["record"] == f"urn:media:{msite.url('/hls.html')}#1"
    text = run("extract", captured, "--media")
    assert text.code == 0 and hls["sha256"] in text.out and "404" in text.out
    out = tmp_path / "hls.mp4"
    written = run("extract", captured, "--media", hls["item"], "--out", out)
    assert written.code == 0, written
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hls["sha256"]
    assert ffprobe(out)["streams"] == ["audio", "video"]
    gone = next(i for i in items if i["page"] == msite.url("/gone.html"))
    refused = run("extract", captured, "--media", gone["item"], "--out", tmp_path / "gone.mp4")
    assert refused.code == 2 and "was not captured" in refused.err and not (tmp_path / "gone.mp4").exists()
    assert run("extract", captured, "--media", 99, "--out", tmp_path / "x").code == 2


def test_the_html_report_shows_each_media_items_format_duration_hash_and_extract_command(
        captured, msite, pubkey, run, tmp_path):
    report = tmp_path / "report.html"
    result = run("verify", captured, "--trust", pubkey, "--html", report)
    assert result.code == 0, result
    text = html.unescape(report.read_text())
    item = items_by_page(captured, msite)["/dash.html"]
    assert item["sha256"] in text and "DASH video" in text
    assert f"--url 'urn:media:{msite.url('/dash.html')}#1' --out media-1.mp4" in text
    assert "404" in text                       # what failed is shown too
    assert "<video" not in text and "data:video" not in text     # no media embedded
    as_json = json.loads(run("verify", captured, "--trust", pubkey, "--json").out)
    import jsonschema
    schema = json.loads((Path(__file__).parent.parent / "archive/verify/report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(as_json)
    page = next(p for p in as_json["pages"] if p["url"] == msite.url("/dash.html"))
    assert page["media"][0]["sha256"] == item["sha256"] and page["media"][0]["found"]


def test_a_live_stream_is_recorded_as_live_not_captured_unless_media_live_says_how_long(
        msite, key, tmp_path):
    code, wacz = capture_cli([msite.url("/live.html"), "--media", "--key", key], tmp_path / "a")
    assert code == 0
    item = items_by_page(wacz, msite)["/live.html"]
    assert item["status"] == "skipped" and item["reason"].startswith("live, not captured")
    code, wacz = capture_cli([msite.url("/live.html"), "--media", "--media-live", "2s",
                              "--key", key], tmp_path / "b")
    assert code == 0
    item = items_by_page(wacz, msite)["/live.html"]
    assert item["status"] == "kept" and "live stream" in item["live"]
    rec = _resource(records(wacz), item["record"])
    path = tmp_path / "live.mp4"
    path.write_bytes(rec["payload"])
    assert 1.5 <= ffprobe(path)["duration"] <= 2.6
    # what ffmpeg fetched went through our proxy: the segments are response records
    assert [r for r in records(wacz) if r["type"] in ("response", "revisit")
            and r["uri"] == msite.url("/media/hls/clip-0.ts")]


def test_delay_holds_between_media_requests_to_one_host(media_files, key, tmp_path):
    """The k-th request reaches the server at least k delays after the first. Not each
    gap: a request held up after its turn (a thread waiting for a core: 0.1 s seen under
    load) shortens the gap after it; it can never come before its turn, so only the first
    request's lateness counts against the bound. Without the delay they come 5-70 ms apart."""
    site = media_site(media_files)
    with SiteServer(site) as server:
        code, wacz = capture_cli([server.url("/hls.html"), "--media", "--delay", "0.3s",
                                  "--key", key], tmp_path)
    assert code == 0 and items_by_page(wacz, server)["/hls.html"]["status"] == "kept"
    times = [t for path, t in site.times if path.startswith("/media/")]
    assert len(times) >= 5
    assert all(t - times[0] >= 0.3 * k - 0.25 for k, t in enumerate(times)), \
        [round(b - a, 3) for a, b in zip(times, times[1:])]


def test_the_pages_poster_and_subtitle_track_are_kept_as_the_items_thumbnail_and_subtitles(
        captured, msite, pubkey, run, tmp_path):
    from tests.media import VTT
    from tests.site import PNG

    recs = records(captured)
    page = msite.url("/video.html")
    assert _resource(recs, f"urn:media-thumbnail:{page}#1")["payload"] == PNG
    assert _resource(recs, f"urn:media-subtitles:{page}#1:en")["payload"] == VTT
    extras = items_by_page(captured, msite)["/video.html"]["extras"]
    assert {e["kind"] for e in extras} == {"thumbnail", "subtitles"}
    report = tmp_path / "report.html"
    assert run("verify", captured, "--trust", pubkey, "--html", report).code == 0
    assert f'alt="thumbnail of media #1" src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' \
        in report.read_text()


def test_the_web_app_shows_a_video_item_with_its_thumbnail(captured, msite):
    """`archive serve` lists the video item with its poster beside it, served as the
    captured bytes (the thumbnail is not listed again as an image of its own)."""
    import requests

    from tests.serving import Served
    from tests.site import PNG

    store = next(p for p in captured.parents if p.name == "store")
    capture_id = evidence(captured)["captureId"]
    served = Served("--store", str(store), "--port", "0")
    try:
        page = requests.get(f"{served.url}/captures/{capture_id}", timeout=30)
        assert page.status_code == 200, page.text[:500]
        media = page.text[page.text.index('id="media"'):]
        media = media[:media.index("</table>")]
        item = msite.url("/video.html") + "#1"
        row = next(r for r in media.split("<tr>") if f">urn:media:{item}<" in html.unescape(r))
        src = html.unescape(row.split('<img class="thumb" src="', 1)[1].split('"', 1)[0])
        assert "urn%3Amedia-thumbnail%3A" in src
        assert requests.get(served.url + src, timeout=30).content == PNG
        assert f">urn:media-thumbnail:{item}<" not in html.unescape(media)
        # the file (a revisit of the response holding its bytes) downloads as served
        got = requests.get(f"{served.url}/captures/{capture_id}/resource",
                           params={"url": f"urn:media:{item}"}, timeout=30)
        assert got.status_code == 200 and got.content == msite.site.served["/media/clip.mp4"]
    finally:
        served.stop()


def test_sigterm_during_a_stalled_download_stops_at_once_and_the_capture_resumes(
        media_files, key, pubkey, tmp_path):
    import signal
    import time as clock

    from tests.killing import journal_when, kill, start_capture
    from tests.media import stall_after

    site = media_site(media_files)
    site.add("/media/stalled.mp4", handler=stall_after(media_files["/media/clip.mp4"], 8192))
    site.html("/stalled.html", "Stalled", '<video src="/media/stalled.mp4"></video>')
    with SiteServer(site) as server:
        work = tmp_path / "work"
        process = start_capture([server.url("/stalled.html"), "--media", "--key", key,
                                 "--store", tmp_path / "store", "--timeout", "60s"], work)
        try:
            journal = journal_when(process, work, lambda j: "/media/stalled.mp4" in site.requests)
            clock.sleep(0.5)
            stopped = clock.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            assert clock.monotonic() - stopped < 15      # not the 60 s read timeout
        finally:
            kill(process)
        assert process.returncode != 0 and "--resume" in process.stderr.read()
        assert b"mediaDone" not in journal.read_bytes()
        site.add("/media/stalled.mp4", media_files["/media/clip.mp4"], content_type="video/mp4")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
            code = cli_main(["capture", "--resume", str(journal.parent), "--key", str(key),
                             "--store", str(tmp_path / "store"), "--quiet"])
        assert code == 0
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert items_by_page(wacz, server)["/stalled.html"]["status"] == "kept"


def test_without_ffmpeg_a_single_file_is_kept_and_what_cannot_be_merged_is_said(
        msite, key, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path), ARCHIVE_KEY_PASSPHRASE=PASSPHRASE)   # no ffmpeg
    done = subprocess.run(
        [str(BIN / "archive"), "capture", msite.url("/video.html"), msite.url("/dash.html"),
         "--media", "--key", str(key), "--store", str(tmp_path / "store"),
         "--work-dir", str(tmp_path / "work"), "--quiet"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    items = items_by_page(wacz, msite)
    assert items["/video.html"]["status"] == "kept"
    # DASH keeps video and audio apart: without ffmpeg they cannot be merged, and it says so
    assert items["/dash.html"]["status"] == "failed" and "ffmpeg" in items["/dash.html"]["reason"]
    warcinfo = next(r for r in records(wacz) if r["type"] == "warcinfo")["payload"].decode()
    assert "media-merger: none (ffmpeg not found)" in warcinfo


def test_pages_and_players_yt_dlp_has_an_extractor_for_are_handed_to_it_first(tmp_path):
    from archive.capture.media import MediaSession
    from archive.capture.mediaoptions import MediaOptions

    session = MediaSession(None, None, MediaOptions(), tmp_path)    # not started: no network
    watch = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert session.extractor_for(watch) == "Youtube"
    assert session.extractor_for("https://news.example/2026/statement.html") is None
    found = ["https://news.example/clip.mp4"]
    player = "https://player.vimeo.com/video/76979871"
    assert session.with_extracted(watch, found, [player, "https://ads.example/frame"]) == [
        watch, player, "https://news.example/clip.mp4"]
    assert session.with_extracted("https://news.example/a.html", found) == found


def _trickled_site(media_files):
    """The media site with a page whose video comes slowly: about 10 s for its 45 KB."""
    from tests.media import trickle

    site = media_site(media_files)
    site.add("/media/slow.mp4", handler=trickle(media_files["/media/clip.mp4"], piece=2048, pause=0.4))
    site.html("/slow.html", "Slow", '<video src="/media/slow.mp4"></video>')
    return site


def _job_capture(server_urls: list[str], crawl: dict, key: Path, out: Path) -> tuple[int, Path | None]:
    """`archive jobs run` of a job capturing `server_urls` with `crawl` options; (exit code,
    stored WACZ)."""
    from tests.jobfiles import write_job

    job = write_job(out, "media-job", server_urls, key, out / "store",
                    crawl={"depth": 0, "scope": "page", "media": True, **crawl})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
        code = cli_main(["jobs", "run", str(job), "--quiet"])
    found = stored_waczs(out / "store")
    return code, Path(found[-1]) if found else None


@pytest.mark.parametrize("form", ["flag", "job file"])
def test_max_time_stops_a_slow_media_download_says_so_and_the_capture_stores_and_verifies(
        media_files, key, pubkey, tmp_path, form):
    import time as clock

    site = _trickled_site(media_files)
    with SiteServer(site) as server:
        started = clock.monotonic()
        if form == "flag":
            code, wacz = capture_cli([server.url("/slow.html"), "--media", "--max-time", "3s",
                                      "--key", key], tmp_path)
        else:
            code, wacz = _job_capture([server.url("/slow.html")], {"max_time": "3s"}, key, tmp_path)
        took = clock.monotonic() - started
        assert "/media/slow.mp4" in site.requests       # the download had begun
    assert code == 0 and wacz is not None
    assert took < 9, f"--max-time 3s, but the capture took {took:.1f} s (the video needs about 10)"
    item = items_by_page(wacz, server)["/slow.html"]
    assert item["status"] == "skipped" and "--max-time reached during the download" in item["reason"]
    assert "record" not in item
    assert evidence(wacz)["stopReason"] == "max-time"
    # what had come when it stopped is kept as it came: a response cut short
    slow = [r for r in records(wacz) if r["type"] == "response" and r["uri"] == server.url("/media/slow.mp4")]
    assert len(slow) == 1 and slow[0]["headers"].get("WARC-Truncated")
    assert 0 < len(slow[0]["payload"]) < len(media_files["/media/clip.mp4"])
    assert not [r for r in records(wacz) if (r["uri"] or "").startswith("urn:media:")]
    verify = subprocess.run([str(BIN / "archive"), "verify", str(wacz), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("form", ["flag", "job file"])
def test_media_format_picks_the_lower_hls_rendition_and_the_metadata_names_it(
        msite, key, pubkey, tmp_path, form):
    selector = "best[height<=120]"
    if form == "flag":
        code, wacz = capture_cli([msite.url("/hls.html"), "--media", "--media-format", selector,
                                  "--key", key], tmp_path)
    else:
        code, wacz = _job_capture([msite.url("/hls.html")], {"media_format": selector}, key, tmp_path)
    assert code == 0 and wacz is not None
    item = items_by_page(wacz, msite)["/hls.html"]
    assert item["status"] == "kept"
    recs = records(wacz)
    uri = f"urn:media:{msite.url('/hls.html')}#1"
    data = json.loads(next(r for r in recs if r["type"] == "metadata" and r["uri"] == uri)["payload"])
    assert data["format"]["selector"] == selector and data["format"]["why"] == "asked for with --media-format"
    assert [p.get("height") for p in data["format"]["parts"]] == [120]
    assert data["format"]["available"] >= 2            # there was a higher one to refuse
    # only the lower rendition was fetched, and the file is that rendition
    assert {msite.url(f"/media/hls/clip-{n}.ts") for n in range(3)} <= set(data["fetched"])
    assert not any("high-" in url for url in data["fetched"])
    assert not [r for r in recs if "/media/hls/high-" in (r["uri"] or "")]
    out = tmp_path / "file.mp4"
    out.write_bytes(_resource(recs, uri)["payload"])
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
         "-of", "json", str(out)], capture_output=True, text=True, check=True).stdout)
    assert [(s["width"], s["height"]) for s in probed["streams"]] == [(160, 120)]
    verify = subprocess.run([str(BIN / "archive"), "verify", str(wacz), "--trust", str(pubkey)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bench_media_smoke():
    """scripts/bench_media.py in a small size (not timed: the full run is `--mb 500`)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_media.py"
    proc = subprocess.run([sys.executable, str(script), "--mb", "2", "--repeat", "2", "--rate", "50", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = json.loads(proc.stdout)
    for kind in ("mp4", "hls"):
        assert result[kind]["ratio"] > 0 and result[kind]["archive_peak_rss_mb"] > 0
    assert result["verify"]["ratio"] > 0 and result["loadavg_before"] and result["rateMBps"] == 50
