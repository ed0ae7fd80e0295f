"""The crawler against real local servers: scope, depth, requisites on a second host,
robots.txt, politeness, deduplication."""

from __future__ import annotations

import collections
import gzip
import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.site import SJIS_TITLE, SHARED_PNG, Site, SiteServer, cdn_site, crawl_site
from tests.verifyhelp import archive_cmd, rezip
from tests.warcs import member, pages, records


@pytest.fixture
def sites():
    """(main site, CDN-like site on another loopback address and port)."""
    with SiteServer(cdn_site(), host="127.0.0.2") as cdn:
        with SiteServer(crawl_site(cdn.base)) as main:
            yield main, cdn


@pytest.fixture
def crawl(run, key, tmp_path):
    """Capture URLs with extra options; returns the stored WACZ."""
    def _crawl(*args) -> Path:
        # the "CDN" is on 127.0.0.2: another host, at a loopback address
        result = run("capture", *args, "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--allow-private-addresses")
        assert result.code == 0, result
        return Path(stored_waczs(tmp_path / "store")[-1])
    return _crawl


IN_SCOPE = ["/", "/section/1", "/section/2", "/sjis", "/sjis/next"] + [
    f"/section/{n}/item/{m}{tail}" for n in (1, 2) for m in (1, 2) for tail in ("", "/detail")
]


def test_depth_3_crawl_gets_everything_in_scope_exactly_once(sites, crawl, run, pubkey):
    main, cdn = sites
    wacz = crawl(main.url("/"), "--depth", "3", "--scope", "host", "--workers", "4")
    assert run("verify", wacz, "--trust", pubkey).code == 0

    entries = pages(wacz)
    urls = [p["url"] for p in entries]
    assert len(urls) == len(set(urls)), "a page was recorded twice"
    assert set(urls) == {main.url(p) for p in IN_SCOPE} | {main.url("/private/secret")}

    # every URL fetched once: by the server's own log and by the WARC's response records
    counts = collections.Counter(main.site.requests)
    assert [p for p, n in counts.items() if n > 1] == []
    recs = records(wacz)
    stored = collections.Counter(r["uri"] for r in recs if r["type"] in ("response", "revisit"))
    assert [u for u, n in stored.items() if n > 1] == []

    # out of scope: too deep, on another host, or disallowed by robots.txt
    assert not any(p.endswith("/deeper") for p in main.site.requests)
    assert "/cdn/page.html" not in cdn.site.requests
    assert "/private/secret" not in main.site.requests
    blocked = next(p for p in entries if p["url"].endswith("/private/secret"))
    assert blocked["errorKind"] == "robots" and "robots.txt" in blocked["error"]

    # requisites on the second host are captured, bytes as served
    bodies = {r["uri"]: r["payload"] for r in recs if r["type"] == "response"}
    for path in ("/cdn/lib.js", "/cdn/logo.png"):
        assert bodies[cdn.url(path)] == cdn.site.served[path]
    assert cdn.site.requests.count("/cdn/logo.png") == 1   # linked from three pages

    # a page that is not UTF-8: title decoded from Shift_JIS and its link followed
    sjis = next(p for p in entries if p["url"] == main.url("/sjis"))
    assert sjis["title"] == SJIS_TITLE
    assert main.url("/sjis/next") in urls

    info = member(wacz, "evidence/capture.json")
    assert json.loads(info)["stats"]["robotsBlocked"] == 1
    warcinfo = next(r for r in recs if r["type"] == "warcinfo")["payload"].decode()
    assert "robots: obeyed" in warcinfo


def test_identical_payloads_become_revisits_in_crawl_and_across_captures(sites, crawl, run, pubkey):
    main, _ = sites
    first = crawl(main.url("/"), "--depth", "2", "--scope", "host")
    recs = records(first)
    shared = [r for r in recs if r["uri"] and "/img/shared-" in r["uri"]
              and r["type"] in ("response", "revisit")]
    assert len(shared) == 4
    originals = [r for r in shared if r["type"] == "response"]
    assert len(originals) == 1 and originals[0]["payload"] == SHARED_PNG
    original = originals[0]["headers"]
    for revisit in (r for r in shared if r["type"] == "revisit"):
        h = revisit["headers"]
        assert h["WARC-Profile"].endswith("/revisit/identical-payload-digest")
        assert h["WARC-Refers-To"] == original["WARC-Record-ID"]
        assert h["WARC-Refers-To-Target-URI"] == originals[0]["uri"]
        assert h["WARC-Refers-To-Date"] == original["WARC-Date"]
        assert h["WARC-Payload-Digest"] == original["WARC-Payload-Digest"]
        assert revisit["payload"] == b""           # the block is the HTTP headers only
        assert revisit["http"].get_statuscode() == "200"
    assert run("verify", first, "--trust", pubkey).code == 0

    # a second capture against the first: nothing changed, so every 2xx payload is a revisit
    main.site.routes["/section/1"].body += b"<!-- edited -->"
    second = crawl(main.url("/"), "--depth", "2", "--scope", "host", "--dedup-against", first)
    assert run("verify", second, "--trust", pubkey).code == 0
    by_uri = {r["uri"]: r for r in records(second) if r["type"] in ("response", "revisit")}
    first_ids = {r["headers"]["WARC-Record-ID"] for r in recs if r["type"] == "response"}
    assert by_uri[main.url("/section/1")]["type"] == "response"        # edited: stored again
    assert by_uri[main.url("/section/1")]["payload"].endswith(b"<!-- edited -->")
    for uri in (main.url("/"), main.url("/img/s2.png"), main.url("/section/2")):
        assert by_uri[uri]["type"] == "revisit", uri
        assert by_uri[uri]["headers"]["WARC-Refers-To"] in first_ids
    evidence = json.loads(member(second, "evidence/capture.json"))
    assert evidence["dedupAgainst"]["capture"] == first.name.removesuffix(".wacz")
    assert evidence["stats"]["revisits"] >= 5

    # the same by capture id, through the store
    third = crawl(main.url("/"), "--dedup-against", first.name.removesuffix(".wacz"))
    assert any(r["type"] == "revisit" for r in records(third))

    # a third capture against the second, whose copies were revisits: still revisits,
    # pointing through the second at the originals in the first (one stored copy)
    fourth = crawl(main.url("/"), "--depth", "2", "--scope", "host", "--dedup-against", second)
    assert run("verify", fourth, "--trust", pubkey).code == 0
    by_uri4 = {r["uri"]: r for r in records(fourth) if r["type"] in ("response", "revisit")}
    for uri in (main.url("/"), main.url("/img/s2.png"), main.url("/section/2")):
        assert by_uri4[uri]["type"] == "revisit", uri
        assert by_uri4[uri]["headers"]["WARC-Refers-To"] == by_uri[uri]["headers"]["WARC-Refers-To"]
    # the page edited before the second capture points at the second's full copy
    assert by_uri4[main.url("/section/1")]["type"] == "revisit"
    assert by_uri4[main.url("/section/1")]["headers"]["WARC-Refers-To"] == \
        by_uri[main.url("/section/1")]["headers"]["WARC-Record-ID"]


INDEX = "indexes/index.cdx.gz"


def test_dedup_against_a_hostile_earlier_capture(sites, crawl, tmp_path):
    """The earlier capture's index is read as a stream: a line of megabytes is skipped
    (the lines after it still serve), and an index that inflates without end is refused
    with a one-line error, in bounded memory, before anything is fetched."""
    main, _ = sites
    first = crawl(main.url("/"), "--depth", "1", "--scope", "host")
    with zipfile.ZipFile(first) as zf:
        index = gzip.decompress(zf.read(INDEX))
    long_line = rezip(first, tmp_path / "long.wacz", {INDEX: gzip.compress(b"x" * (3 << 20) + b"\n" + index)})
    second = crawl(main.url("/"), "--depth", "1", "--scope", "host", "--dedup-against", long_line)
    assert any(r["type"] == "revisit" for r in records(second))

    # 1.1 GiB of one endless line, from 1.1 MB of gzip members
    bomb = rezip(first, tmp_path / "bomb.wacz", {INDEX: gzip.compress(b"x" * (1 << 20)) * 1100})
    main.site.requests.clear()
    result = archive_cmd("capture", main.url("/"), "--dedup-against", bomb, "--unsigned", "--quiet",
                         "--store", tmp_path / "store2", "--work-dir", tmp_path / "work2", limit_mb=700)
    assert result.returncode == 2, result
    assert "cannot deduplicate against" in result.stderr and "decompression bomb" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert main.site.requests == []


def test_per_host_concurrency_and_delay_are_obeyed(sites, crawl):
    main, _ = sites
    main.site.delay = 0.2     # requests overlap if the crawler lets them
    crawl(main.url("/"), "--depth", "3", "--scope", "host", "--workers", "8",
          "--host-workers", "2", "--ignore-robots")
    assert main.site.max_active == 2
    main.site.delay = 0.0
    main.site.times.clear()
    main.site.requests.clear()
    crawl(main.url("/section/1"), "--depth", "1", "--scope", "host", "--delay", "1",
          "--ignore-robots")
    starts = sorted(t for _, t in main.site.times)
    assert len(starts) == 6
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.5, gaps    # 1 s apart when sent; arrival jitter is far smaller


def test_ignore_robots_fetches_and_says_so(sites, crawl):
    main, _ = sites
    wacz = crawl(main.url("/"), "--depth", "1", "--scope", "host", "--ignore-robots")
    assert "/private/secret" in main.site.requests and "/robots.txt" not in main.site.requests
    warcinfo = next(r for r in records(wacz) if r["type"] == "warcinfo")["payload"].decode()
    assert "robots: ignored" in warcinfo


def test_max_pages_keeps_the_shallowest_pages_and_records_the_rest(sites, crawl):
    main, _ = sites
    wacz = crawl(main.url("/"), "--depth", "3", "--scope", "host", "--max-pages", "3")
    urls = {p["url"] for p in pages(wacz)}
    assert len(urls) == 3
    assert main.url("/") in urls and not any("/item/" in u for u in urls)
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["stopReason"] == "max-pages"
    assert evidence["notFetched"], "URLs left in the queue must be listed"
    # requisites of the pages that were captured are still captured
    responses = {r["uri"] for r in records(wacz) if r["type"] == "response"}
    assert main.url("/style.css") in responses


def test_warc_files_roll_over_and_still_verify(sites, crawl, run, pubkey):
    main, _ = sites
    wacz = crawl(main.url("/"), "--depth", "3", "--scope", "host", "--warc-size", "4KB")
    names = [n for n in __import__("zipfile").ZipFile(wacz).namelist() if n.startswith("archive/")]
    assert len(names) > 3
    assert run("verify", wacz, "--trust", pubkey).code == 0


def test_requisites_and_refresh_named_only_in_http_headers_are_followed(crawl):
    """A page may ask for its stylesheet and fonts in an HTTP `Link` header (preload)
    instead of its HTML, or send the browser on with a `Refresh` header: a browser
    follows both, so the crawl does too."""
    site = Site()
    site.html("/", "Home", "<p>styled by a header</p>",
              headers={"Link": '</css/header.css>; rel=preload; as=style, </fonts/f.woff2>; rel="preload"; '
                               'as=font, </next>; rel=next'})
    site.add("/css/header.css", "body { color: red }", content_type="text/css")
    site.add("/fonts/f.woff2", b"wOF2 font bytes", content_type="font/woff2")
    site.html("/next", "Next", "not a requisite")
    site.html("/moved", "Moved", "<p>this page sends the browser on</p>", headers={"Refresh": "0; url=/new-home"})
    site.html("/new-home", "New home", "where the Refresh header leads")
    with SiteServer(site) as server:
        wacz = crawl(server.url("/"))
        crawl(server.url("/moved"), "--depth", "1", "--scope", "host")
        assert "/new-home" in site.requests, "a Refresh header is followed like a meta refresh"
    bodies = {r["uri"]: r["payload"] for r in records(wacz) if r["type"] == "response"}
    assert bodies[server.url("/css/header.css")] == site.served["/css/header.css"]
    assert bodies[server.url("/fonts/f.woff2")] == b"wOF2 font bytes"
    assert "/next" not in site.requests        # rel=next is a page, and --depth is 0


def test_max_bytes_holds_against_one_large_response(crawl):
    """--max-bytes was checked between fetches: one 8 MB response was kept whole past a
    1 MB limit. The body is now cut where the limit is reached, and marked so."""
    site = Site()
    site.html("/", "Home", '<p>a page with a large image</p><img src="/huge.bin">')
    site.add("/huge.bin", bytes(range(256)) * (8 << 12), content_type="application/octet-stream")
    with SiteServer(site) as server:
        wacz = crawl(server.url("/"), "--max-bytes", "1MB")
    huge = next(r for r in records(wacz) if r["type"] == "response" and r["uri"] == server.url("/huge.bin"))
    assert huge["headers"].get("WARC-Truncated") == "length"
    assert 0 < len(huge["payload"]) < (1 << 20) + (1 << 17)
    assert huge["payload"] == site.served["/huge.bin"][:len(huge["payload"])]
    assert json.loads(member(wacz, "evidence/capture.json"))["stopReason"] == "max-bytes"
