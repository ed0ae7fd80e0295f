"""Bounded work, not refusal by ratio: what this tool writes, however compressible,
verifies; compression inside compression and small members declared huge are refused at
once (archive.wacz.bounds)."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import zipfile
import zlib
from pathlib import Path

from archive.wacz.bounds import WORK_PER_BYTE
from archive.verify.checks.records import index_check as _index_check
from archive.reader.members import IndexSink
from archive.verify.model import FAIL, SKIP, Report
from archive.reader.warcresult import RecordInfo, WarcResult
from archive.warc.cdxj import cdxj_line
from tests.site import Site, SiteServer, streamed
from tests.verifyhelp import FOREIGN, add_deflated, archive_cmd

ZEROS = 300 << 20        # past the 256 MiB at which verify used to call a record a bomb


def _zeros_deflate(blocks: int, block: int = 1 << 20) -> bytes:
    """A raw deflate stream of `blocks` * `block` zero bytes, built from one full-flushed
    block repeated (each is independent of what came before): gigabytes cost nothing."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(b"\0" * block) + c.flush(zlib.Z_FULL_FLUSH)
    return one * blocks + b"\x03\x00"        # an empty final fixed block ends the stream


def _gzip_of_zeros(head: bytes, blocks: int) -> bytes:
    """One gzip member: `head` then `blocks` MiB of zeros (its trailer not right: a reader
    that gets there has already read gigabytes)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + _zeros_deflate(blocks)[:-2]
            + b"\x03\x00" + struct.pack("<II", 0, 0))


def _base_entries() -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(FOREIGN / "valid_example_2.wacz") as zf:
        return [(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def _foreign(path: Path, skip: str | None = None, listed: dict[str, bytes] | None = None) -> Path:
    """Another tool's WACZ without `skip`; `listed`: members (added by the caller) its
    datapackage.json lists, replacing the WARC file, so only their content is wrong."""
    entries = dict(_base_entries())
    if listed:
        datapackage = json.loads(entries["datapackage.json"])
        datapackage["resources"] = [r for r in datapackage["resources"] if not r["path"].startswith("archive/")]
        datapackage["resources"] += [{"name": name.lower(), "path": name, "bytes": len(data),
                                      "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
                                     for name, data in listed.items()]
        entries["datapackage.json"] = json.dumps(datapackage).encode()
        entries["datapackage-digest.json"] = json.dumps({"path": "datapackage.json", "hash": "sha256:" + hashlib.sha256(
            entries["datapackage.json"]).hexdigest()}).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            if name != skip and not (listed and name.startswith("archive/")):
                zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 5)), data)
    return path


def test_a_genuine_capture_of_300_mib_of_zeros_verifies_and_extracts(tmp_path):
    """Stored with exit 0, so it must verify: 300 MiB that gzip makes 300 KB of is work
    in proportion to the file, not a bomb; extract writes every byte of it."""
    site = Site()
    site.add("/zeros", handler=streamed(ZEROS, fill=b"\0"))
    store = tmp_path / "store"
    with SiteServer(site) as server:
        proc = archive_cmd("capture", server.url("/zeros"), "--unsigned", "--store", store,
                           "--work-dir", tmp_path / "work", "--quiet", "--json")
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(proc.stdout)
    assert stored["size"] < ZEROS // 500         # as compressible as a body gets
    proc = archive_cmd("verify", stored["address"], "--allow-unsigned", "--json", "--no-record")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["verdict"] == "VERIFIED", report["checks"]
    assert {c["name"]: c["status"] for c in report["checks"]}["records"] == "pass"
    out = tmp_path / "zeros.bin"
    proc = archive_cmd("extract", stored["capture_id"], "--store", store, "--url", server.url("/zeros"),
                       "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size == ZEROS
    with out.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    assert digest == hashlib.sha256(b"\0" * ZEROS).hexdigest()


def test_compression_inside_compression_is_could_not_check_at_once(tmp_path):
    """A deflated zip entry holding a gzip WARC record of 8 GiB of zeros: each layer
    alone is within deflate's ratio, together they are a million to one."""
    head = (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\n"
            b"WARC-Target-URI: urn:zeros\r\nContent-Length: 8589934592\r\n\r\n")
    inner = _gzip_of_zeros(head, 8 << 10)
    outer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = outer.compress(inner) + outer.flush()
    assert len(inner) < WORK_PER_BYTE * len(raw)          # the zip entry alone declares nothing odd
    # in the place of the WARC file the index points into
    name = "archive/example-collection.warc"
    path = _foreign(tmp_path / "nested.wacz", listed={name: inner})
    add_deflated(path, name, raw, len(inner), zlib.crc32(inner))
    started = time.monotonic()
    proc = archive_cmd("verify", path, "--json", "--allow-unsigned", timeout=60, limit_mb=1024)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "COULD NOT CHECK"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["records"]["status"] == SKIP and "decompression bomb" in checks["records"]["summary"]
    assert checks["index"]["status"] == SKIP and report["reason"].count("not") >= 1
    assert {c["status"] for c in report["checks"]} <= {"pass", "warn", SKIP}
    assert elapsed < 10            # a child's start-up included; reading stops within 16 MiB


def test_a_small_member_declared_huge_is_refused_before_it_is_read(tmp_path):
    """datapackage.json deflated from 4000 MiB of zeros (4 MB of file, within deflate's
    ratio; it took 12 s to read and was then NOT VERIFIED): verify, extract and diff
    refuse it in one line, at once, without inflating it."""
    path = _foreign(tmp_path / "manifest-bomb.wacz", skip="datapackage.json")
    add_deflated(path, "datapackage.json", _zeros_deflate(4000), 4000 << 20)
    commands = [("verify", path), ("extract", path, "--url", "http://example.com/"),
                ("diff", path, path)]
    for command in commands:
        started = time.monotonic()
        proc = archive_cmd(*command, timeout=60, limit_mb=1024)
        assert proc.returncode == 2, (command, proc.stdout[-500:], proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert "datapackage.json" in proc.stderr and str(4000 << 20) in proc.stderr, proc.stderr
        assert time.monotonic() - started < 5, command


def test_index_lines_into_records_never_read_are_not_failed():
    """A WARC whose reading stopped at a bomb: lines pointing past that point are not
    judged (COULD NOT CHECK), while a line that contradicts a record read still fails."""
    sink = IndexSink("indexes/index.cdxj")
    sink.feed(cdxj_line("http://a/", "2026-01-01T00:00:00Z", "w.warc.gz", 0, 10, "response", None,
                        "text/html", 200).encode() + b"\n")
    sink.feed(cdxj_line("http://b/", "2026-01-01T00:00:00Z", "w.warc.gz", 5000, 10, "response", None,
                        "text/html", 200).encode() + b"\n")
    sink.finish()
    warc = WarcResult("archive/w.warc.gz")
    warc.records.append(RecordInfo(0, 10, "response", "http://a/", "<urn:uuid:1>", "20260101000000", None))
    warc.unchecked = "a bomb"
    report = Report("x", "wacz")
    _index_check(report, {"i": sink}, [warc], ours=False)
    assert report.check("index").status == SKIP
    warc.records[0].uri = "http://elsewhere/"
    report = Report("x", "wacz")
    _index_check(report, {"i": sink}, [warc], ours=False)
    assert report.check("index").status == FAIL
