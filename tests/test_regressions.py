"""Behaviours a deliberate bug once broke without any test noticing: each test here was
seen to fail with that bug put back (an index check skipped, robots.txt Crawl-delay
ignored, --scope domain or --include ignored, `ls` not saying UNSIGNED, a forged
member of another tool's WACZ)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.shared import FOREIGN
from tests.site import Site, SiteServer
from tests.verifyhelp import build_wacz, new_signer

STATEMENT = b"<html><body><p>We did nothing wrong.</p></body></html>"


def _index_field(lines: list[str], name: str, change) -> list[str]:
    key, stamp, fields = lines[0].split(" ", 2)
    data = json.loads(fields)
    data[name] = change(data[name])
    return [f"{key} {stamp} {json.dumps(data)}", *lines[1:]]


@pytest.mark.parametrize("name, change, words", [
    ("url", lambda url: "http://example.test/another-page", "names http://example.test/another-page"),
    ("length", lambda length: str(int(length) // 2), "gives length"),
])
def test_a_signed_index_that_lies_about_a_record_is_not_verified(run, tmp_path, name, change, words):
    """Replay tools show what the index says: a signed index pointing a record at another
    URL, or cutting its length in half, must not verify."""
    signer, pub = new_signer(tmp_path / "keys")
    page = [{"url": "http://example.test/statement", "body": STATEMENT}]
    assert run("verify", build_wacz(tmp_path / "honest.wacz", page, signer), "--trust", pub).code == 0
    wacz = build_wacz(tmp_path / "lying.wacz", page, signer,
                      edit_index=lambda lines: _index_field(lines, name, change))
    result = run("verify", wacz, "--trust", pub, "--json")
    report = json.loads(result.out)
    assert result.code == 1 and report["verdict"] == "NOT VERIFIED"
    index = next(c for c in report["checks"] if c["name"] == "index")
    assert index["status"] == "fail" and words in json.dumps(index), index


def test_robots_crawl_delay_spaces_the_requests_to_a_host(run, tmp_path):
    site = Site()
    site.add("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain")
    site.html("/", "Home", '<a href="/a">a</a> <a href="/b">b</a>')
    site.html("/a", "A", "a")
    site.html("/b", "B", "b")
    with SiteServer(site) as server:
        result = run("capture", server.url("/"), "--depth", "1", "--scope", "host", "--unsigned", "--workers", "4",
                     "--host-workers", "4", "--store", tmp_path / "s", "--work-dir", tmp_path / "w", "--quiet")
    assert result.code == 0, result
    starts = [t for path, t in site.times if path in ("/", "/a", "/b")]
    assert len(starts) == 3, site.requests
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.9, gaps      # without the delay, /a and /b come at once


def test_scope_domain_keeps_other_domains_out_and_include_lets_a_url_in(run, tmp_path):
    site = Site()
    for path in ("/same", "/b-page", "/elsewhere"):
        site.html(path, path, path)
    with SiteServer(site) as server:
        # another domain: localhost, the same server
        site.html("/", "Home", '<a href="/same">same host</a> <a href="/b-page">b</a> '
                               f'<a href="http://localhost:{server.port}/elsewhere">another domain</a>')
        domain = run("capture", server.url("/"), "--depth", "1", "--scope", "domain", "--unsigned",
                     "--store", tmp_path / "s1", "--work-dir", tmp_path / "w", "--quiet",
                     "--exclude", "/b-page$")
        assert domain.code == 0, domain
        assert "/same" in site.requests and "/elsewhere" not in site.requests
        assert "/b-page" not in site.requests      # --exclude holds too
        site.requests.clear()
        # --scope page follows nothing; --include lets one URL in all the same
        include = run("capture", server.url("/"), "--depth", "1", "--scope", "page", "--unsigned",
                      "--include", "/b-page$", "--store", tmp_path / "s2", "--work-dir", tmp_path / "w",
                      "--quiet")
        assert include.code == 0, include
        assert "/b-page" in site.requests and "/same" not in site.requests


def test_ls_labels_an_unsigned_capture_unsigned(run, key, site, tmp_path):
    store = tmp_path / "store"
    for extra in (["--unsigned"], ["--key", key]):
        assert run("capture", site.url("/about"), *extra, "--store", store, "--work-dir",
                   tmp_path / "w", "--quiet").code == 0
    unsigned, signed = sorted(stored_waczs(store), key=lambda p: "UNSIGNED" in p)[:2]
    listing = run("ls", store)
    assert listing.code == 0
    rows = [line for line in listing.out.splitlines() if "Z-" in line]
    assert len(rows) == 2
    assert sum("UNSIGNED" in row for row in rows) == 1
    rows_json = json.loads(run("ls", store, "--json").out)
    assert sorted(bool(r.get("signer")) for r in rows_json) == [False, True]


def test_a_same_length_forgery_of_another_tools_pages_list_is_not_verified(run, tmp_path):
    """datapackage.json lists pages.jsonl with its hash: a same-length edit (no size changes,
    the zip rebuilt so its own CRCs hold) is caught by that hash alone."""
    original = FOREIGN / "valid_example_2.wacz"
    forged = tmp_path / "forged.wacz"
    with zipfile.ZipFile(original) as zin, zipfile.ZipFile(forged, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "pages/pages.jsonl":
                first_url = json.loads(data.splitlines()[1])["url"]
                fake = first_url.replace("example", "exbmple", 1)
                assert len(fake) == len(first_url) and fake != first_url
                data = data.replace(first_url.encode(), fake.encode(), 1)
            zout.writestr(info, data)
    honest = run("verify", original, "--allow-unsigned", "--json")
    assert json.loads(honest.out)["verdict"] == "VERIFIED", honest
    result = run("verify", forged, "--allow-unsigned", "--json")
    report = json.loads(result.out)
    assert result.code == 1 and report["verdict"] == "NOT VERIFIED", report["reason"]
    resources = next(c for c in report["checks"] if c["name"] == "resources")
    assert resources["status"] == "fail" and "pages/pages.jsonl" in json.dumps(resources)
