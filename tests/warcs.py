"""Reading what we wrote, with warcio, for tests."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
import zlib
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from tests.conftest import tool


def records(wacz: Path) -> list[dict]:
    """Every record of every WARC in a WACZ: type, uri, headers, raw block, payload."""
    out = []
    with zipfile.ZipFile(wacz) as zf:
        for name in sorted(n for n in zf.namelist() if n.startswith("archive/")):
            data = zf.read(name)
            for rec in ArchiveIterator(io.BytesIO(data)):
                headers = dict(rec.rec_headers.headers)
                raw = rec.raw_stream.read()
                out.append({
                    "file": name, "type": rec.rec_type, "headers": headers,
                    "uri": rec.rec_headers.get_header("WARC-Target-URI"),
                    "http": rec.http_headers, "payload": raw,
                })
    return out


def warc_bytes(wacz: Path) -> bytes:
    """Every WARC file of a capture, decompressed and joined: to search for bytes that
    must (or must never) have been recorded."""
    out = []
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            while name.startswith("archive/") and data:
                d = zlib.decompressobj(31)
                out.append(d.decompress(data))
                data = d.unused_data
    return b"".join(out)


def member(wacz: Path, name: str) -> bytes:
    with zipfile.ZipFile(wacz) as zf:
        return zf.read(name)


def pages(wacz: Path) -> list[dict]:
    lines = member(wacz, "pages/pages.jsonl").decode().splitlines()
    return [json.loads(line) for line in lines[1:]]


def assert_third_party_checks_pass(wacz: Path, scratch: Path) -> None:
    """`warcio check` passes every WARC in the WACZ and `wacz validate` passes the file."""
    out = scratch / "unzipped"
    zipfile.ZipFile(wacz).extractall(out)
    warcs = sorted(str(p) for p in (out / "archive").glob("*.warc.gz"))
    check = subprocess.run([tool("warcio"), "check", "-v", *warcs], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "digest pass" in check.stdout and "fail" not in check.stdout
    validate = subprocess.run([tool("wacz"), "validate", "-f", str(wacz)], capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "Validation succeeded" in validate.stdout
