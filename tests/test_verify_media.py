"""Verification of a capture holding large media records (a video as received and as the
finished file): their block and payload digests are hashed side by side on threads of
their own (archive.reader.digests `spread`), and that must change nothing but the time.
Every digest a report counts as checked is computed from the bytes: a wrong claim over
any of the four ranges (the WACZ file, the zip member, a record's block, its payload)
fails, and a flipped byte anywhere in the media record fails and names it. A capture
whose finished file is a revisit of the response holding its bytes (as a direct file's
is now; older captures hold both) verifies when that response is there with that payload,
and names the record when it is not."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import random
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import pytest

from archive.capture.dedup import Original, revisit_headers
from archive.hashing import warc_digest
from archive.reader import warcs
from archive.reader.scan import CHUNK
from archive.reader.source import local_source
from archive.reader.warcs import WarcChecker
from archive.seal.wacz import SealInput, seal
from archive.verify import segments
from archive.verify.checks import verify_source
from archive.verify.model import NOT_VERIFIED, VERIFIED, VerifyOptions
from archive.verify.report import render_json
from archive.wacz.zipwriter import ContainerWriter
from archive.warc.cdxj import cdxj_line
from archive.warc.urns import MEDIA
from archive.warc.writer import STORED, WarcWriter, block_digests
from tests.verifyhelp import CountingFile, gzip_members

ROOT = Path(__file__).resolve().parent.parent
PAGE = "http://media.test/clip.html"
VIDEO = "http://media.test/clip.mp4"
ITEM = MEDIA + PAGE + "#1"
BODY = (3 << 20) + 12345            # several reads' worth, not a multiple of anything
WRONG = warc_digest(hashlib.sha256(b"another video"))


def _media_wacz(path: Path, lie: tuple[str, str] | None = None, refers: dict | None = None) -> Path:
    """An unsigned WACZ made by our writer: a page, the video as its server sent it (a
    response) and the finished file (a resource), stored as the capture stores media.
    `lie`: (record, "block" or "payload") whose digest header claims another value.
    `refers`: the finished file is a revisit of the response instead (as a capture makes
    it of a file served whole), its revisit headers changed by these."""
    body = random.Random(20).randbytes(BODY)
    container = ContainerWriter(path)
    writer = WarcWriter(container, "media", {"software": "tests"})
    html = b"<html><video src=clip.mp4></video></html>"
    page = writer.write("response", PAGE, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + html)
    lines = [cdxj_line(PAGE, page.date, page.filename, page.offset, page.length, "response", None, "text/html", 200)]
    for kind, uri, block in (
            ("response", VIDEO, b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: "
             + str(BODY).encode() + b"\r\n\r\n" + body),
            ("resource", ITEM, body)):
        digests = dict(zip(("block", "payload"), block_digests(kind, uri, block)))
        if lie and lie[0] == kind:
            digests[lie[1]] = WRONG
        if kind == "resource" and refers is not None:
            headers = {**revisit_headers(Original(VIDEO, video.date, video.record_id), digests["payload"]),
                       **refers}
            kind = "revisit"
            ref = writer.write(kind, uri, b"", content_type="video/mp4", extra=headers, level=STORED)
        else:
            ref = writer.write(kind, uri, io.BytesIO(block), len(block), digests["block"], digests["payload"],
                               content_type="video/mp4" if kind == "resource" else None, level=STORED)
        video = ref
        lines.append(cdxj_line(uri, ref.date, ref.filename, ref.offset, ref.length, kind, None, "video/mp4",
                               200 if kind == "response" else None))
    writer.close()
    evidence = {"captureId": "media", "seeds": [PAGE], "operator": "tester",
                "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:05Z",
                "stats": {"pages": 1, "bytes": 2 * BODY}}
    seal(container, SealInput("media", lines, [{"url": PAGE, "ts": "2026-01-01T00:00:00Z", "title": "clip"}],
                              {"evidence/capture.json": json.dumps(evidence).encode()}), None)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return _media_wacz(tmp_path_factory.mktemp("media") / "media.wacz")


@pytest.fixture(params=["spread", "one thread"])
def spread(request, monkeypatch) -> bool:
    """Large records hashed side by side (as a video is), or every digest on one thread."""
    monkeypatch.setattr(warcs, "SPREAD_MIN", 1 << 20 if request.param == "spread" else 1 << 60)
    return request.param == "spread"


def _verify(path: Path, **options):
    return verify_source(local_source(str(path)), VerifyOptions(allow_unsigned=True, **options))


def _warc(path: Path) -> tuple[str, int, bytes]:
    """The WARC member's name, where its data begins in the file, and its bytes."""
    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if i.filename.startswith("archive/"))
        data = zf.read(info)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
    return info.filename, info.header_offset + 30 + name_len + extra_len, data


def _record_span(warc: bytes, uri: str) -> tuple[int, int]:
    """(start, end) in the WARC file of the gzip member holding the record of `uri`."""
    pos = 0
    for member in gzip_members(warc):
        if f"WARC-Target-URI: {uri}\r\n".encode() in zlib.decompressobj(31).decompress(member, 2048):
            return pos, pos + len(member)
        pos += len(member)
    raise AssertionError(uri)


def _problems(report, check: str) -> list[dict]:
    found = report.check(check)
    return [p.to_dict() for p in found.problems] if found else []


def _failed(report) -> set[str]:
    return {c.name for c in report.checks if c.status == "fail"}


def test_the_media_capture_verifies_and_every_digest_is_counted(media, spread):
    report = _verify(media)
    assert report.verdict == VERIFIED, report.reason
    assert report.sha256 == hashlib.sha256(media.read_bytes()).hexdigest()
    # warcinfo: block; page, video as received, finished file: block and payload each
    assert "4 records in 1 WARC file, 7 digests checked" in report.check("records").summary


def test_spread_hashing_gives_the_one_thread_report(media, tmp_path, monkeypatch):
    """The same report, byte for byte, whichever way the digests were hashed, on the
    untouched capture and with bytes flipped or cut in and around both media records."""
    data = media.read_bytes()
    _, at, warc = _warc(media)
    cases = {"untouched": data}
    for uri in (VIDEO, ITEM):
        start, end = _record_span(warc, uri)
        for where in (start + 2, start + 40, start + 300, (start + end) // 2, end - 6, end - 2):
            damaged = bytearray(data)
            damaged[at + where] ^= 0x20
            cases[f"flip {uri} {where - start}"] = bytes(damaged)
        cases[f"cut {uri}"] = data[: at + (start + end) // 2]
    before = threading.active_count()
    for name, content in cases.items():
        path = tmp_path / "case.wacz"
        path.write_bytes(content)
        reports = []
        for spread_min in (1 << 20, 1 << 60):
            monkeypatch.setattr(warcs, "SPREAD_MIN", spread_min)
            reports.append(render_json(_verify(path)))
        assert reports[0] == reports[1], name
        assert (json.loads(reports[0])["verdict"] == VERIFIED) == (name == "untouched"), name
    assert threading.active_count() <= before          # no hashing thread left behind


def test_the_checker_alone_says_the_same_whichever_way(media, tmp_path, monkeypatch):
    """A WARC checker fed as the scan feeds it (threaded) and as a segment worker runs it
    (not threaded): with large records spread, what each says is what one thread says."""
    _, _, warc = _warc(media)
    start, end = _record_span(warc, ITEM)

    def said(data: bytes, threaded: bool, spread_min: int):
        monkeypatch.setattr(warcs, "SPREAD_MIN", spread_min)
        checker = WarcChecker("media.warc.gz", threaded=threaded)
        for pos in range(0, len(data), CHUNK):
            checker.feed(data[pos: pos + CHUNK])
        result = checker.finish()
        return (checker.needs_fallback, result.readable, result.digests_checked,
                [p.to_dict() for p in result.problems], [(r.offset, r.length, r.uri) for r in result.records])

    for data in (warc, warc[:start + 1000] + bytes([warc[start + 1000] ^ 1]) + warc[start + 1001:],
                 warc[: (start + end) // 2]):
        one = said(data, True, 1 << 60)
        assert said(data, True, 1 << 20) == one
        assert said(data, False, 1 << 20) == one


def _fix_zip_crc(data: bytearray, name: str, member_start: int, member_end: int) -> None:
    """Make the zip's CRC-32 of member `name` (local header and central directory) match
    its bytes again, as a careful tamperer would."""
    crc = struct.pack("<I", zlib.crc32(data[member_start:member_end]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        local, central = zf.getinfo(name).header_offset, zf.start_dir
    data[local + 14: local + 18] = crc
    while data[central: central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[central + 28: central + 34])
        if data[central + 46: central + 46 + name_len] == name.encode():
            data[central + 16: central + 20] = crc
            return
        central += 46 + name_len + extra_len + comment_len
    raise AssertionError(name)


def test_the_file_hash_is_computed_from_the_bytes(media, tmp_path, spread):
    data = bytearray(media.read_bytes())
    real = hashlib.sha256(data).hexdigest()
    assert _verify(media, expected_sha256=real).verdict == VERIFIED
    report = _verify(media, expected_sha256=hashlib.sha256(b"another file").hexdigest())
    assert report.verdict == NOT_VERIFIED and _failed(report) == {"file-hash"}
    _, at, warc = _warc(media)
    start, end = _record_span(warc, ITEM)
    data[at + (start + end) // 2] ^= 1
    path = tmp_path / "flipped.wacz"
    path.write_bytes(data)
    report = _verify(path, expected_sha256=real)
    assert report.sha256 == hashlib.sha256(data).hexdigest() != real
    assert "file-hash" in _failed(report)


def test_the_member_hash_is_computed_from_the_bytes(media, tmp_path, spread):
    """A byte of the media record's gzip header that inflating ignores (its time), changed
    and the zip CRC-32 made to match: only the member's SHA-256 in datapackage.json can
    tell, and it does."""
    data = bytearray(media.read_bytes())
    name, at, warc = _warc(media)
    start, _ = _record_span(warc, ITEM)
    assert data[at + start: at + start + 3] == b"\x1f\x8b\x08"
    data[at + start + 4] ^= 0x01                       # MTIME, first byte
    _fix_zip_crc(data, name, at, at + len(warc))
    path = tmp_path / "member.wacz"
    path.write_bytes(data)
    report = _verify(path)
    assert report.verdict == NOT_VERIFIED
    assert _failed(report) == {"resources"}, [c.to_dict() for c in report.checks if c.status == "fail"]
    assert any(name in json.dumps(p) for p in _problems(report, "resources"))
    assert report.check("records").status == "pass"


@pytest.mark.parametrize("record,uri", [("response", VIDEO), ("resource", ITEM)])
@pytest.mark.parametrize("digest", ["block", "payload"])
def test_a_wrong_digest_claim_fails_and_names_the_record(tmp_path, spread, record, uri, digest):
    """Each claim compared with a digest of its own bytes: a resource's payload is its
    whole block, so one hash serves both claims, and each claim is still compared."""
    path = _media_wacz(tmp_path / "lie.wacz", (record, digest))
    report = _verify(path)
    assert report.verdict == NOT_VERIFIED
    assert _failed(report) == {"records"}
    problems = _problems(report, "records")
    assert [(p["uri"], p["message"].split(" digest")[0]) for p in problems] == [(uri, digest)], problems


@pytest.fixture(scope="module")
def media_revisit(tmp_path_factory) -> Path:
    return _media_wacz(tmp_path_factory.mktemp("media") / "revisit.wacz", refers={})


def test_a_finished_file_stored_as_a_revisit_of_its_response_verifies(media_revisit, spread):
    report = _verify(media_revisit)
    assert report.verdict == VERIFIED, report.reason
    # warcinfo: block; page and video as received: block and payload; the revisit: no content
    assert "4 records in 1 WARC file, 5 digests checked" in report.check("records").summary
    assert media_revisit.stat().st_size < BODY * 1.1


def test_a_flipped_byte_in_the_response_a_revisit_stands_on_fails_and_names_it(media_revisit, tmp_path,
                                                                               spread):
    data = bytearray(media_revisit.read_bytes())
    _, at, warc = _warc(media_revisit)
    start, end = _record_span(warc, VIDEO)
    data[at + (start + end) // 2] ^= 0x01
    path = tmp_path / "flipped.wacz"
    path.write_bytes(data)
    report = _verify(path)
    assert report.verdict == NOT_VERIFIED
    assert VIDEO in json.dumps(_problems(report, "records"))


@pytest.mark.parametrize("change, said", [
    ({"WARC-Refers-To-Date": "2001-01-01T00:00:00Z"}, "media revisit refers to"),
    ({"WARC-Refers-To-Target-URI": "http://media.test/other.mp4"}, "media revisit refers to"),
    ({"WARC-Payload-Digest": WRONG}, "revisit says its payload is"),
])
def test_a_media_revisit_without_its_original_in_the_capture_fails_and_names_it(tmp_path, spread, change,
                                                                                said):
    report = _verify(_media_wacz(tmp_path / "refers.wacz", refers=change))
    assert report.verdict == NOT_VERIFIED
    problems = _problems(report, "records")
    assert [p["uri"] for p in problems] == [ITEM] and said in problems[0]["message"], problems


def _inflates_to(member: bytes) -> bytes | None:
    try:
        return zlib.decompress(member, 31)
    except zlib.error:
        return None


def test_a_flipped_byte_anywhere_in_the_media_record_fails_and_names_it(media, tmp_path, spread):
    """Named: the WARC file always (its zip CRC-32 and SHA-256), and the record too unless
    the flip left what it inflates to unchanged (bits deflate ignores: the gzip header's
    time and OS, the padding of a stored block's header)."""
    data = media.read_bytes()
    name, at, warc = _warc(media)
    start, end = _record_span(warc, ITEM)
    record = _inflates_to(warc[start:end])
    rng = random.Random(3)
    positions = sorted({*range(start, start + 12), *range(start + 200, start + 230, 7), end - 9, end - 5, end - 1,
                        *(rng.randrange(start, end) for _ in range(12))})
    for pos in positions:
        for bit in (pos % 8, 0):
            damaged = bytearray(data)
            damaged[at + pos] ^= 1 << bit
            path = tmp_path / "flip.wacz"
            path.write_bytes(damaged)
            report = _verify(path)
            assert report.verdict == NOT_VERIFIED, (pos - start, bit)
            named = json.dumps([p.to_dict() for c in report.checks if c.status == "fail" for p in c.problems])
            assert name in named, (pos - start, bit)
            if _inflates_to(bytes(damaged[at + start: at + end])) != record:
                assert ITEM in named or f'"offset": {start}' in named, (pos - start, bit, named[:2000])


def test_a_warc_of_large_records_is_checked_in_the_reading_process(media, tmp_path, monkeypatch):
    """Worker processes would each read a video through again for one record's digests:
    a WARC of large records is checked where it is read (its digests spread over the cores
    by threads), and the search for segment cuts does not read through the records. A WARC
    of many records still goes to the workers."""
    monkeypatch.setattr(segments, "SEGMENT", 256 << 10)
    monkeypatch.setattr(segments, "SEARCH", 64 << 10)
    monkeypatch.setattr(segments, "PARALLEL_MIN", 1 << 20)
    monkeypatch.setattr(segments, "cpus", lambda: 2)
    name, _, warc = _warc(media)
    path = tmp_path / "media.warc.gz"
    path.write_bytes(warc)
    CountingFile.total = 0
    with CountingFile(str(path)) as fh:
        assert segments.parallel_for(str(path), fh, [(name, 0, len(warc))]) is None
    assert CountingFile.total < len(warc) // 2
    spec = importlib.util.spec_from_file_location("bench_verify", ROOT / "scripts" / "bench_verify.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.make_capture(tmp_path / "crawl.wacz", 3)
    name, _, warc = _warc(tmp_path / "crawl.wacz")
    path.write_bytes(warc)
    with open(path, "rb") as fh:
        parallel = segments.parallel_for(str(path), fh, [(name, 0, len(warc))])
        assert parallel is not None
        try:
            result, fallback = parallel.results(fh)[name]
        finally:
            parallel.close()
    assert fallback is None and not result.problems and len(result.records) > 20


def test_bench_media_verify_smoke(tmp_path):
    """scripts/bench_media.py --verify-only in a small size (not timed): it captures the
    MP4 page once, verifies it and runs warcio check on its WARC."""
    if importlib.util.find_spec("yt_dlp") is None:
        pytest.skip("yt-dlp is not installed")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_media.py"), "--verify-only", "--mb", "2",
                           "--repeat", "1", "--media-dir", str(tmp_path / "media"), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    verify = json.loads(proc.stdout)["verify"]
    assert verify["archive_s"] > 0 and verify["warcio_s"] > 0 and verify["archive_peak_rss_mb"] > 0
    assert (tmp_path / "media" / "capture.wacz").exists()
