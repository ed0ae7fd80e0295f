"""Hostile inputs: a one-line error and exit 2 (or NOT VERIFIED where a file's contents
are simply damaged), never a traceback, with memory and time bounded. Each case runs
the real command in a child process with its address space capped."""

from __future__ import annotations

import gzip
import os
import json
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.verifyhelp import FOREIGN, add_deflated, archive_cmd, warcio_check

MEMORY_MB = 1024      # address space of the child: far below what buffering a bomb would need
SECONDS = 90


def _zip(path: Path, entries: list[tuple[str, bytes]], method=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 5)), data, compress_type=method)
    return path


def _base_entries() -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(FOREIGN / "valid_example_2.wacz") as zf:
        return [(i.filename, zf.read(i.filename)) for i in zf.infolist()]


def _refused(path: Path, *words: str) -> None:
    started = time.monotonic()
    proc = archive_cmd("verify", path, timeout=SECONDS, limit_mb=MEMORY_MB)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith("archive: error: ") and "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert time.monotonic() - started < SECONDS


def _not_verified(path: Path, *words: str) -> dict:
    proc = archive_cmd("verify", path, "--allow-unsigned", "--json", timeout=SECONDS, limit_mb=MEMORY_MB)
    assert proc.returncode == 1, (proc.stdout[-3000:], proc.stderr[-2000:])
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    assert report["verdict"] == "NOT VERIFIED"
    text = json.dumps(report)
    for word in words:
        assert word in text, (word, text[:3000])
    return report


@pytest.mark.parametrize("evil", ["../../evil.txt", "/etc/evil", "archive/../../evil", "C:\\evil.txt",
                                  "archive\\..\\evil"])
def test_zip_slip_paths_are_refused(tmp_path, evil):
    path = _zip(tmp_path / "slip.wacz", _base_entries() + [(evil, b"owned")])
    _refused(path, "not a plain relative path")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_duplicate_entries_are_refused(tmp_path):
    entries = _base_entries()
    warc = next(e for e in entries if e[0].startswith("archive/"))
    with pytest.warns(UserWarning):
        path = _zip(tmp_path / "dupe.wacz", entries + [(warc[0], b"WARC/1.0\r\n\r\nsomething else")])
    _refused(path, "appears twice")


def test_declared_sizes_beyond_the_file_are_refused(tmp_path):
    path = _zip(tmp_path / "big.wacz", _base_entries())
    data = bytearray(path.read_bytes())
    # claim 2**31 bytes for the first entry in its central directory record
    first = data.find(b"PK\x01\x02")
    struct.pack_into("<II", data, first + 20, 0x7FFFFFF0, 0x7FFFFFF0)
    path.write_bytes(bytes(data))
    _refused(path, "claims 2147483632 bytes, more than the file holds")


def test_deflate_bomb_claiming_impossible_ratio_is_refused(tmp_path):
    path = _zip(tmp_path / "ratio.wacz", _base_entries() + [("archive/bomb.warc", b"\0" * (4 << 20))],
                zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    # make the central directory claim far more than deflate can produce from those bytes
    name = b"archive/bomb.warc"
    at = data.find(name, data.find(b"PK\x01\x02")) - 46
    struct.pack_into("<I", data, at + 24, 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    _refused(path, "zip bomb")


def test_zip_bomb_member_streams_in_bounded_memory(tmp_path):
    """1 GiB of zeros deflated to about 1 MB: read as a stream, never held."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 20)
    raw = b"".join(bomb.compress(chunk) for _ in range(1024)) + bomb.flush()
    path = _zip(tmp_path / "bomb.wacz", _base_entries())
    # add the deflated member by hand: zipfile would inflate 1 GiB to write it
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(chunk, crc)
    add_deflated(path, "archive/bomb.warc", raw, 1 << 30, crc)
    started = time.monotonic()
    report = _not_verified(path, "archive/bomb.warc")
    assert time.monotonic() - started < SECONDS
    assert report["checks"]


def test_nested_archive_and_gzip_bomb_inside_a_warc(tmp_path):
    zeros = gzip.compress(b"\0" * (256 << 20), 9)
    inner = _zip(tmp_path / "inner.zip", _base_entries())
    path = _zip(tmp_path / "nested.wacz", _base_entries() + [
        ("archive/zeros.warc.gz", zeros), ("archive/inner.warc", inner.read_bytes())])
    _not_verified(path, "archive/zeros.warc.gz", "archive/inner.warc")


def test_bad_gzip_member_in_a_warc(tmp_path):
    source = (FOREIGN / "example.warc.gz").read_bytes()
    broken = bytearray(source)
    broken[len(broken) // 2] ^= 0xFF
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(bytes(broken))
    assert warcio_check(path) == 1
    _not_verified(path, "broken.warc.gz")
    entries = [(n, d) for n, d in _base_entries() if not n.startswith("archive/")]
    wacz = _zip(tmp_path / "badgz.wacz", entries + [("archive/data.warc.gz", bytes(broken))])
    _not_verified(wacz, "archive/data.warc.gz")


def _warc(headers: bytes, body: bytes = b"hello") -> bytes:
    return (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\n" + headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n\r\n")


def test_absurdly_long_warc_header_line(tmp_path):
    path = tmp_path / "long.warc"
    path.write_bytes(_warc(b"WARC-Target-URI: http://x/" + b"a" * (64 << 20) + b"\r\n"))
    _not_verified(path, "header")


def test_flood_of_warc_header_lines(tmp_path):
    path = tmp_path / "flood.warc.gz"
    path.write_bytes(gzip.compress(_warc(b"X-Junk: a\r\n" * (4 << 20)), 6))
    _not_verified(path, "header")


def test_header_without_end(tmp_path):
    path = tmp_path / "endless.warc.gz"
    path.write_bytes(gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\n" + b"X: y\r\n" * (3 << 20), 9))
    _not_verified(path)


def test_invalid_utf8_in_headers(tmp_path):
    import base64
    import hashlib
    body = b"hello"
    digest = "sha256:" + base64.b32encode(hashlib.sha256(body).digest()).decode()
    path = tmp_path / "latin.warc"
    path.write_bytes(_warc(b"WARC-Target-URI: http://x/caf\xe9\xff\r\nWARC-Block-Digest: "
                           + digest.encode() + b"\r\n", body))
    assert warcio_check(path) == 0
    proc = archive_cmd("verify", path, "--allow-unsigned", timeout=SECONDS, limit_mb=MEMORY_MB)
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert proc.stdout.startswith("VERIFIED (INTEGRITY ONLY)")
    proc = archive_cmd("verify", path, "--allow-unsigned", "--json")
    assert json.loads(proc.stdout)["verdict"] == "VERIFIED"
    bad = tmp_path / "latin-bad.warc"
    bad.write_bytes(path.read_bytes().replace(b"hello", b"jello"))
    assert warcio_check(bad) == 1
    _not_verified(bad, "block digest")


@pytest.mark.parametrize("content, code, words", [
    (b"", 2, "neither a WACZ nor a WARC file"),
    (b"PK\x03\x04" + b"\0" * 100, 1, "the zip container is damaged"),   # a zip, damaged
    (b"\x1f\x8b garbage", 1, "0 records in 1 WARC file: 1 problem"),       # a .warc.gz, damaged
    (b"just some text\n" * 100, 2, "neither a WACZ nor a WARC file")])
def test_junk_gets_one_line_or_not_verified(tmp_path, content, code, words):
    path = tmp_path / "junk.wacz"
    path.write_bytes(content)
    if code == 2:
        _refused(path, words)
    else:
        _not_verified(path, words)


def test_json_nested_too_deeply_for_the_parser_is_malformed_not_a_crash(tmp_path):
    """Python's JSON parser gives up on deep nesting with RecursionError: in the digest
    file (outside any signature), a page line or an index line it is bad JSON."""
    deep = b"[" * 200_000 + b"]" * 200_000
    entries = dict(_base_entries())
    index = next(name for name in entries if name.startswith("indexes/"))
    lines = gzip.decompress(entries[index]) if index.endswith(".gz") else entries[index]
    lines += b"com,example)/ 20240101000000 " + deep + b"\n"
    entries.update({"datapackage-digest.json": deep, "pages/pages.jsonl": entries["pages/pages.jsonl"] + deep,
                    index: gzip.compress(lines) if index.endswith(".gz") else lines})
    path = _zip(tmp_path / "deep.wacz", list(entries.items()))
    _not_verified(path, "datapackage-digest.json is not valid JSON", "not JSON", "cannot be read")


@pytest.mark.parametrize("change", ['"digest": 5', '"digest": ["sha1:x"]', '"url": {"a": 1}', '"offset": Infinity'])
def test_index_values_of_the_wrong_kind_give_a_verdict_not_an_internal_error(tmp_path, change):
    """An index line whose digest is a number, whose URL is an object or whose offset is
    Infinity (JSON as Python reads it) made verify and diff stop with an internal error."""
    entries = dict(_base_entries())
    line = gzip.decompress(entries["indexes/index.cdx.gz"]).decode().splitlines()[0]
    key, stamp, fields = line.split(" ", 2)
    name = change.split(":")[0].strip('"')
    fields = json.dumps({**json.loads(fields), name: "X"}).replace('"X"', change.split(": ", 1)[1])
    entries["indexes/index.cdx.gz"] = gzip.compress(f"{key} {stamp} {fields}\n".encode())
    path = _zip(tmp_path / "odd-index.wacz", list(entries.items()))
    report = _not_verified(path, "index line 1 cannot be read")
    assert report["exitCode"] == 1
    for args in (("extract", path, "--url", "http://www.example.com/", "--out", tmp_path / "page.html"),
                 ("diff", path, FOREIGN / "valid_example_2.wacz")):
        proc = archive_cmd(*args, timeout=SECONDS, limit_mb=MEMORY_MB)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        if args[0] == "extract":    # the record asked for cannot be found through that line
            assert proc.returncode == 2 and "index line 1 cannot be read" in proc.stderr, proc.stderr
        else:                       # the line is left out; the rest is compared
            assert proc.returncode == 0 and proc.stdout.startswith("earlier "), proc


def test_a_pages_list_damaged_where_it_is_read_gives_no_count_of_pages(tmp_path):
    """A deflated pages.jsonl whose stream breaks part way: the capture is NOT VERIFIED and
    the pages check fails naming why, rather than passing with the pages read before it."""
    pages = b'{"format": "json-pages-1.0"}\n' + b"".join(
        b'{"url": "http://example.test/%d", "ts": "2024-01-02T03:04:05Z"}\n' % n for n in range(400))
    entries = [(n, d) for n, d in _base_entries() if n != "pages/pages.jsonl"] + [("pages/pages.jsonl", pages)]
    path = _zip(tmp_path / "pages.wacz", entries, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(b"pages/pages.jsonl") + len(b"pages/pages.jsonl")   # its local header's name
    for at in range(start + 200, start + 260):
        data[at] ^= 0x55                                                  # the stream, broken mid-way
    path.write_bytes(bytes(data))
    report = _not_verified(path)
    check = next(c for c in report["checks"] if c["name"] == "pages")
    assert check["status"] == "fail", check
    assert "pages/pages.jsonl" in check["summary"] and "listed" not in check["summary"], check


def test_a_pipe_or_a_device_is_refused_not_read_forever(tmp_path):
    """verify reads its target more than once, by offset: /dev/zero was read to its
    (never) end into memory, and a named pipe with no writer held it forever."""
    fifo = tmp_path / "pipe.warc"
    os.mkfifo(fifo)
    for target in ("/dev/zero", fifo):
        proc = archive_cmd("verify", target, timeout=SECONDS, limit_mb=MEMORY_MB)
        assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
        assert "is not a regular file" in proc.stderr


def test_an_index_of_millions_of_lines_in_a_few_megabytes_is_checked_in_flat_memory(tmp_path):
    """Each index line was kept as an object (about 370 bytes) until the records were
    read: 8 MB of gzip held 3 million lines and took 1.1 GB. An index cannot name more
    records than its WARC files hold (each takes bytes): past that the lines are read,
    said, and not kept."""
    import subprocess
    import sys

    lines = b"".join(b'a %d {"url":"u","filename":"x","offset":%d}\n' % (20200101000000 + i % 7, i)
                     for i in range(500_000))
    packed = zlib.compressobj(9, zlib.DEFLATED, 31)
    index = packed.compress(lines) + packed.flush()
    entries = [(n, index if n == "indexes/index.cdx.gz" else d) for n, d in _base_entries()]
    path = _zip(tmp_path / "long-index.wacz", entries)
    # its own peak (VmHWM: ru_maxrss carries the parent's over exec, and this one built
    # the lines), not that of every child this test process ever waited for
    measured = ("import re, sys\nfrom archive.cli import main\ncode = main(sys.argv[1:])\n"
                "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr)\n"
                "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", measured, "verify", str(path), "--allow-unsigned", "--json"],
                          capture_output=True, text=True, timeout=SECONDS)
    assert proc.returncode == 1, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    problems = [p["message"] for c in report["checks"] for p in c["problems"]]
    assert any("more lines than the WARC files can hold records" in p for p in problems), problems[:5]
    peak_mb = int(proc.stderr.split()[-1]) / 1024
    assert peak_mb < 120, f"peak RSS {peak_mb:.0f} MB for {len(index) >> 20} MB of index"
