"""Default limits: an endless response or a crawl trap stops cleanly, before the disk is full."""

from __future__ import annotations

import json
from pathlib import Path

from archive.capture import crawl
from archive.capture.options import OPTION
from tests.conftest import stored_waczs
from tests.warcs import warc_bytes
from tests.site import Site, SiteServer, endless, streamed


def _truncations(wacz: Path) -> list[bytes]:
    return [line for line in warc_bytes(wacz).split(b"\r\n") if line.startswith(b"WARC-Truncated")]


def test_the_defaults_are_the_ones_the_readme_states():
    assert crawl.DEFAULT_MAX_BODY == 1 << 30 and crawl.DEFAULT_MAX_BYTES == 10 << 30
    assert crawl.CrawlOptions(seeds=[]).max_body == 1 << 30


def test_an_endless_response_stops_at_the_default_body_limit(run, tmp_path, monkeypatch):
    monkeypatch.setattr(OPTION["max_body"], "default", 3 << 20)     # the real one is 1 GiB
    site = Site()
    site.add("/", handler=endless())
    with SiteServer(site) as server:
        result = run("capture", server.url("/"), "--unsigned", "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--json")
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[-1])
    assert _truncations(wacz) == [b"WARC-Truncated: length"]
    assert 3 << 20 <= json.loads(result.out)["bytes"] < 4 << 20
    assert run("verify", wacz, "--allow-unsigned", "--no-record").code == 0


def test_a_crawl_stops_at_the_default_byte_limit_and_none_lifts_it(run, tmp_path, monkeypatch):
    monkeypatch.setattr(OPTION["max_bytes"], "default", 3 << 20)
    site = Site()
    site.html("/", "Many", "".join(f'<img src="/{n}.bin">' for n in range(8)))
    for n in range(8):
        site.add(f"/{n}.bin", handler=streamed(1 << 20))
    with SiteServer(site) as server:
        result = run("capture", server.url("/"), "--unsigned", "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--json", "--workers", "1")
        assert result.code == 0, result
        summary = json.loads(result.out)
        assert summary["stop_reason"] == "max-bytes" and summary["bytes"] < 5 << 20
        result = run("capture", server.url("/"), "--unsigned", "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--json", "--max-bytes", "none")
        assert result.code == 0, result
        summary = json.loads(result.out)
        assert summary["stop_reason"] is None and summary["bytes"] > 8 << 20


def test_job_files_take_the_same_limits(tmp_path):
    from archive.jobs.spec import parse_job
    job = tmp_path / "t.toml"
    job.write_text('name = "t"\nseeds = ["http://127.0.0.1:1/"]\nstore = "%s"\n[crawl]\nmax_body = "none"\n'
                   'allow_private_addresses = true\n[signing]\nunsigned = true\n' % (tmp_path / "store"))
    spec, problems = parse_job(job)
    assert problems == []
    assert spec.crawl.max_body is None and spec.crawl.max_bytes == 10 << 30
    assert spec.crawl.allow_private_addresses and not spec.crawl.allow_metadata_addresses
