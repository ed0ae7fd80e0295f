"""Hostile servers: what they send is recorded within bounds, and never stalls a crawl."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

from tests.conftest import stored_waczs
from tests.site import Site, SiteServer


def raw_head(fields: list[bytes], body: bytes = b"<html>many</html>"):
    """A response with exactly these header fields, as bytes."""
    def handler(h) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"".join(f + b"\r\n" for f in fields)
                      + b"Content-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    return handler


def warc_text(wacz: Path) -> bytes:
    out = []
    with zipfile.ZipFile(wacz) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            while name.startswith("archive/") and data:
                d = zlib.decompressobj(31)
                out.append(d.decompress(data))
                data = d.unused_data
    return b"".join(out)


def capture(run, tmp_path, url, *extra) -> tuple[dict, Path]:
    result = run("capture", url, "--unsigned", "--store", tmp_path / "store", "--work-dir",
                 tmp_path / "work", "--quiet", "--json", "--retries", "0", *extra)
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert run("verify", wacz, "--allow-unsigned", "--no-record").code == 0
    return json.loads(result.out), wacz


def test_a_response_with_hundreds_of_header_fields_is_captured_whole(run, tmp_path):
    cookies = [b"Set-Cookie: c%d=%s; Path=/" % (n, b"v" * 20) for n in range(300)]
    site = Site()
    site.add("/", handler=raw_head(cookies))
    site.add("/huge-head", handler=raw_head([b"X-Junk: " + b"j" * 60000] * 6))
    site.html("/page", "Page", '<img src="/huge-head">')
    with SiteServer(site) as server:
        summary, wacz = capture(run, tmp_path, server.url("/"))
        assert summary["failed"] == 0
        text = warc_text(wacz)
        assert all(c in text for c in cookies) and b"<html>many</html>" in text
        # a head beyond 256 KiB is refused as the recording proxy refuses it: a recorded failure
        summary, wacz = capture(run, tmp_path, server.url("/page"))
        assert summary["failed"] == 1
        assert b"response head longer than 262144 bytes" in warc_text(wacz)
