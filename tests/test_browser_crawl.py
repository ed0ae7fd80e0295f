"""`archive capture --browser` as a crawl: scope, depth, robots.txt, exclusions, retries,
what the browser fetched not fetched again, resume after kill -9, and a missing Chromium."""

from __future__ import annotations

import collections
import gzip
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.killing import browser_pid, capture_killed_when, ended, group_lines, journal_when, kill, start_capture
from tests.site import PNG, Site, SiteServer, fails_then, generated_site, slow
from tests.warcs import member, pages, records


PAGE_DONE = b'"kind":"page","final":true'


def browser_crawl_site(cdn: str) -> Site:
    """A home page whose links are partly written by its script, on a site with robots.txt
    rules, a redirect, a page that is busy once, and requisites on a second host."""
    site = Site()
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.html("/", "Browser home", (
        f'<img src="{cdn}/cdn/logo.png"><img src="/excluded.png">'
        '<a href="/about">about</a> <a href="/old">old</a> <a href="/busy">busy</a>'
        '<a href="/private/secret">private</a> <a href="/api/links.json">the data</a>'
        f'<a href="{cdn}/cdn/page.html">a page on another host</a><div id="links"></div>'
        # The only link to /from-script is made by the script, from the JSON it fetches.
        '<script>fetch("/api/links.json").then(r => r.json()).then(d => {'
        '  const a = document.createElement("a"); a.href = d.link; a.textContent = "by script";'
        '  document.getElementById("links").appendChild(a); })</script>'
    ))
    site.add("/api/links.json", '{"link": "/from-script"}', content_type="application/json")
    site.add("/excluded.png", PNG, content_type="image/png")
    site.html("/about", "About", '<a href="/deeper">deeper</a>')
    site.html("/from-script", "Linked by script", '<a href="/deeper">deeper</a>')
    site.add("/old", status=301, headers={"Location": "/moved-here"})
    site.html("/moved-here", "Moved here", "arrived")
    site.add("/busy", handler=fails_then(503, {"Retry-After": "1"},
                                         body=b"<html><head><title>Busy</title></head>ok</html>"))
    site.html("/deeper", "Too deep", "depth 2")
    site.html("/private/secret", "Secret", "robots.txt says no")
    return site


def cdn_site() -> Site:
    site = Site()
    site.add("/cdn/logo.png", PNG + b"cdn", content_type="image/png")
    site.html("/cdn/page.html", "CDN page", "a page, not a requisite")
    return site


def test_depth_1_browser_crawl_follows_in_scope_links_of_the_rendered_page(run, key, pubkey, tmp_path):
    with SiteServer(cdn_site(), host="127.0.0.2") as cdn, \
            SiteServer(browser_crawl_site(cdn.base)) as main:
        result = run("capture", main.url("/"), "--browser", "--depth", "1", "--scope", "host",
                     "--allow-private-addresses", "--exclude", r"excluded\.png", "--retry-wait", "0.5s", "--page-timeout", "20s",
                     "--key", key, "--store", tmp_path / "store", "--work-dir", tmp_path / "work",
                     "--quiet")
        assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0

    entries = {p["url"]: p for p in pages(wacz)}
    assert set(entries) == {main.url(p) for p in (
        "/", "/about", "/from-script", "/moved-here", "/busy", "/private/secret")}
    # pages.jsonl: the title of the rendered page and where the browser ended up
    assert entries[main.url("/")]["title"] == "Browser home"
    assert entries[main.url("/from-script")]["title"] == "Linked by script"
    assert entries[main.url("/moved-here")]["redirectedFrom"] == main.url("/old")
    assert entries[main.url("/busy")]["attempts"] == 2 and entries[main.url("/busy")]["status"] == 200
    assert entries[main.url("/private/secret")]["errorKind"] == "robots"

    requests = collections.Counter(main.site.requests)
    # not fetched: too deep, disallowed, excluded, a page on another host
    for path in ("/deeper", "/private/secret", "/excluded.png"):
        assert path not in requests, path
    assert "/cdn/page.html" not in cdn.site.requests
    # what the browser fetched itself is not fetched again by the crawler, though linked
    assert requests["/api/links.json"] == 1 and main.url("/api/links.json") not in entries
    assert [p for p, n in requests.items() if n > 1 and p not in ("/busy", "/favicon.ico")] == []

    recs = records(wacz)
    assert_index_covers_every_record(wacz, recs)
    responses = {r["uri"]: r for r in recs if r["type"] == "response"}
    assert responses[cdn.url("/cdn/logo.png")]["payload"] == cdn.site.served["/cdn/logo.png"]
    assert cdn.site.requests.count("/cdn/logo.png") == 1
    screenshots = {r["uri"] for r in recs if r["type"] == "resource" and r["uri"].startswith("urn:screenshot:")}
    for url, entry in entries.items():
        if entry.get("status") == 200:
            assert "urn:screenshot:" + url in screenshots

    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["options"]["browser"]["wait"] == "load"
    assert evidence["stats"]["pages"] == 6 and evidence["stats"]["robotsBlocked"] == 1
    assert evidence["stats"]["requisites"] >= 2     # the JSON and the logo at least


def assert_index_covers_every_record(wacz: Path, recs: list[dict]) -> None:
    """The CDXJ index (what replay finds records by) names each response, revisit and
    resource record once: the browser's records are journaled with the crawler's."""
    lines = gzip.decompress(member(wacz, "indexes/index.cdx.gz")).decode().splitlines()
    indexed = collections.Counter(json.loads(line.split(" ", 2)[2])["url"] for line in lines)
    written = collections.Counter(r["uri"] for r in recs if r["type"] in ("response", "revisit", "resource"))
    assert indexed == written


def test_killed_browser_crawl_resumes_without_losing_or_repeating_a_page(run, key, pubkey, tmp_path):
    site = generated_site(8)
    with SiteServer(site) as server:
        seed = server.url("/")
        # --wait keeps each page open a second, so the kill most likely lands inside one
        args = [seed, "--browser", "--wait", "1s", "--depth", "5", "--scope", "host", "--key", key,
                "--store", tmp_path / "store", "--quiet"]
        journal = capture_killed_when(
            args, tmp_path / "w", lambda journal: group_lines(journal, PAGE_DONE) >= 3,
            then_wait=0.5)   # into the next page
        assert b'"t":"end"' not in journal.read_bytes()

        resumed = run("capture", "--resume", journal.parent, "--key", key,
                      "--store", tmp_path / "store", "--quiet")
        assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0

    urls = [p["url"] for p in pages(wacz)]
    assert sorted(urls) == sorted([seed] + [server.url(f"/p/{i}.html") for i in range(1, 8)])
    recs = records(wacz)
    assert_index_covers_every_record(wacz, recs)
    # The page the kill interrupted was cut off the WARC and captured again whole: no
    # payload stored twice (robots.txt and the favicon are asked for again by a new browser)
    stored = collections.Counter(r["uri"] for r in recs if r["type"] in ("response", "revisit"))
    assert [u for u, n in stored.items() if n > 1 and not u.endswith(("/robots.txt", "/favicon.ico"))] == []
    snapshots = collections.Counter(r["uri"] for r in recs if r["type"] == "resource")
    assert len(snapshots) == 16 and set(snapshots.values()) == {1}     # DOM and screenshot a page
    # every page's requisites are in the WARC, also for the page that was cut off
    for i in range(8):
        assert server.url(f"/s/{i}.css") in stored and server.url(f"/i/{i}-b.png") in stored
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert len(evidence["resumed"]) == 1 and evidence["stats"]["pages"] == 8


def test_a_browser_that_dies_stops_the_crawl_and_resume_captures_its_page_again(run, key, pubkey, tmp_path):
    """A crashed or killed browser is not a failure of the page it was loading: the crawl
    stops (work kept) instead of recording that page and every later one as failed."""
    with SiteServer(generated_site(6)) as server:
        process = start_capture([server.url("/"), "--browser", "--wait", "1s", "--depth", "5",
                                 "--scope", "host", "--key", key, "--store", tmp_path / "store",
                                 "--quiet"], tmp_path / "w")
        try:
            journal = journal_when(process, tmp_path / "w", lambda j: group_lines(j, PAGE_DONE) >= 2)
            # Playwright makes the browser's profile in the capture's work folder, not /tmp,
            # so that what a killed driver leaves goes with it
            assert list(journal.parent.glob("browser/playwright_chromiumdev_profile-*"))
            time.sleep(0.5)   # into the next page
            os.kill(browser_pid(process.pid), signal.SIGKILL)
            # Stopping takes 2-3 s, at load 22 too: what outlasts 90 s is stuck (the
            # failure shows where)
            _, err = ended(process, timeout=90)
        finally:
            kill(process)
        assert process.returncode == 2, err
        assert "the browser stopped" in err and "archive capture --resume" in err
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
        assert not any(line["t"] == "end" for line in lines)
        assert not any("error" in line.get("page", {}) for line in lines)

        resumed = run("capture", "--resume", journal.parent, "--key", key,
                      "--store", tmp_path / "store", "--quiet")
        assert resumed.code == 0, resumed
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    assert run("verify", wacz, "--trust", pubkey).code == 0
    entries = pages(wacz)
    assert sorted(p["url"] for p in entries) == sorted(
        [server.url("/")] + [server.url(f"/p/{i}.html") for i in range(1, 6)])
    assert all(p["status"] == 200 and "error" not in p for p in entries)
    recs = records(wacz)
    assert_index_covers_every_record(wacz, recs)
    screenshots = [r["uri"] for r in recs if r["type"] == "resource" and r["uri"].startswith("urn:screenshot:")]
    assert sorted(screenshots) == sorted("urn:screenshot:" + p["url"] for p in entries)


def test_browser_capture_without_chromium_says_how_to_install_it(run, site, key, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    result = run("capture", site.url("/"), "--browser", "--key", key,
                 "--store", tmp_path / "store", "--work-dir", tmp_path / "work")
    assert result.code == 2
    assert "apt-get install chromium" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists() and site.site.requests == []


@pytest.mark.parametrize("option", [["--wait-for", "#x"], ["--viewport", "800x600"], ["--no-scroll"]])
def test_browser_options_without_browser_are_refused(run, site, key, tmp_path, option):
    result = run("capture", site.url("/"), *option, "--key", key, "--store", tmp_path / "store")
    assert result.code == 2 and "only with --browser" in result.err
    assert site.site.requests == []


@pytest.mark.parametrize("option, message", [
    (["--page-timeout", "0"], "page timeouts must be positive"),
    (["--wait-for", ""], "empty selector"),
    (["--wait-for", "  "], "empty selector"),
])
def test_bad_browser_options_are_one_line_errors_before_anything_is_fetched(
        run, site, key, tmp_path, option, message):
    """Not silently replaced by a default (a zero timeout, an empty selector)."""
    result = run("capture", site.url("/"), "--browser", *option, "--key", key,
                 "--store", tmp_path / "store", "--work-dir", tmp_path / "work")
    assert result.code == 2 and message in result.err, result
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists() and site.site.requests == []


def test_max_time_bounds_the_page_the_browser_is_loading(run, key, tmp_path):
    """As the crawler's own fetches are cut at --max-time, so is the browser's wait for
    a page that never settles: it is captured as it is then, with a recorded timeout."""
    site = Site()
    site.html("/hanging", "Never settles", '<p>partly loaded</p><img src="/never.png">')
    site.add("/never.png", handler=slow(60))
    with SiteServer(site) as server:
        began = time.monotonic()
        result = run("capture", server.url("/hanging"), "--browser", "--max-time", "2s",
                     "--page-timeout", "40s", "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet")
        took = time.monotonic() - began
    assert result.code == 0, result
    assert took < 25, took
    [entry] = pages(Path(stored_waczs(tmp_path / "store")[0]))
    assert entry["timedOut"] is True and entry["status"] == 200
    screenshots = [r for r in records(Path(stored_waczs(tmp_path / "store")[0]))
                   if r["type"] == "resource" and r["uri"].startswith("urn:screenshot:")]
    assert len(screenshots) == 1
