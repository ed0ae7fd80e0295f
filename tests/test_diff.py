"""`archive diff`: redirects, incomplete captures, foreign files, bad input."""

import json
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import stored_waczs
from tests.site import Site, SiteServer
from tests.verifyhelp import rewrite_records
from tests.warcs import records

from tests.shared import FOREIGN  # noqa: E402


@pytest.fixture
def two_versions(run, key, tmp_path):
    """capture(site_changes) -> (earlier WACZ, later WACZ) of a small site, depth 1;
    `first(site)` sets the site up for the earlier one; `later_code`: the later capture's
    exit code (1: its only seed failed, stored as a record of that)."""
    def _capture(change, extra=(), first=lambda site: None, later_code=0):
        site = Site()
        site.html("/", "Home", '<a href="/promo">Promo</a> <a href="/keep">Keep</a> <a href="/more">More</a>')
        for path in ("/promo", "/keep", "/more"):
            site.html(path, path, f"<p>{path} v1</p>")
        first(site)
        paths = []
        with SiteServer(site) as server:
            for version in (1, 2):
                if version == 2:
                    change(site)
                    time.sleep(1.1)   # capture times have whole seconds
                result = run("capture", server.url("/"), "--depth", "1", "--scope", "prefix",
                             "--key", key, "--store", tmp_path / "store", "--work-dir", tmp_path / "work",
                             "--quiet", *(extra if version == 2 else ()))
                assert result.code == (later_code if version == 2 else 0), result
                paths.append(Path(stored_waczs(tmp_path / "store")[-1]))
        return paths, server
    return _capture


def diff_json(run, a, b):
    result = run("diff", a, b, "--json")
    assert result.code == 0, result
    return json.loads(result.out)


def test_a_page_replaced_by_a_redirect_is_reported_as_redirected(run, two_versions):
    def change(site):
        site.add("/promo", status=302, headers={"Location": "/keep"})
    (earlier, later), server = two_versions(change)
    diff = diff_json(run, earlier, later)
    assert [(c["kind"], c["url"]) for c in diff["changes"]] == [("redirected", server.url("/promo"))]
    assert f"was redirected to {server.url('/keep')}" in diff["changes"][0]["finding"]
    assert diff["counts"]["unchanged"] == 3


def test_a_redirect_to_a_new_page_names_the_target(run, two_versions):
    def change(site):
        site.add("/promo", status=301, headers={"Location": "/landing"})
        site.html("/landing", "Landing", "<p>new</p>")
    (earlier, later), server = two_versions(change)
    changes = {c["kind"]: c for c in diff_json(run, earlier, later)["changes"]}
    assert changes["redirected"]["finding"].startswith(
        f"The page {server.url('/promo')} was redirected to {server.url('/landing')} between ")


def test_pages_a_stopped_capture_did_not_reach_are_not_called_removed(run, two_versions):
    (earlier, later), server = two_versions(lambda site: None, extra=("--max-pages", "2"))
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == []
    assert diff["later"]["stopReason"] == "max-pages"
    unknown = [c["kind"] for c in diff["uncertain"]]
    assert unknown == ["not-reached", "not-reached"]
    text = run("diff", earlier, later).out
    assert "stopped at its max-pages limit: whether it is still online is unknown" in text
    assert "REMOVED" not in text


def test_a_server_error_is_unknown_not_a_change(run, two_versions):
    def change(site):
        site.html("/more", "oops", "<p>oops</p>", status=503)
    (earlier, later), server = two_versions(change)
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == []
    assert diff["uncertain"][0]["url"] == server.url("/more")
    assert "could not be captured" in diff["uncertain"][0]["finding"] and "HTTP 503" in diff["uncertain"][0]["finding"]


def test_pages_behind_a_page_that_failed_are_unknown_not_removed(run, two_versions):
    """The home page down for a moment (or geo-blocked) hides every page it links to:
    that is no finding of a takedown."""
    def change(site):
        site.html("/", "oops", "<p>down for maintenance</p>", status=503)
    (earlier, later), server = two_versions(change, extra=("--retries", "0"), later_code=1)
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == [] and diff["counts"]["removed"] == 0
    unknown = {c["url"]: c for c in diff["uncertain"]}
    assert unknown[server.url("/")]["kind"] == "unavailable"
    for path in ("/promo", "/keep", "/more"):
        assert unknown[server.url(path)]["kind"] == "not-reached"
        assert "whether it is still online is unknown" in unknown[server.url(path)]["finding"]
        assert server.url("/") in unknown[server.url(path)]["finding"]
    assert "REMOVED" not in run("diff", earlier, later).out


def test_a_page_blocked_in_both_captures_does_not_hide_a_removal(run, key, tmp_path):
    """Only a page that was online before and could not be captured now hides the pages
    behind it; one never captured (robots.txt) hid nothing new: an unlinked page is removed."""
    site = Site()
    site.add("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    site.html("/", "Home", '<a href="/a">A</a> <a href="/b">B</a> <a href="/private">P</a>')
    site.html("/a", "A", "<p>a</p>")
    site.html("/b", "B", "<p>b</p>")
    with SiteServer(site) as server:
        for version in (1, 2):
            if version == 2:
                site.html("/", "Home", '<a href="/a">A</a> <a href="/private">P</a>')
                time.sleep(1.1)
            result = run("capture", server.url("/"), "--depth", "1", "--scope", "prefix", "--key", key,
                         "--store", tmp_path / "store", "--work-dir", tmp_path / "work", "--quiet")
            assert result.code == 0, result
    earlier, later = stored_waczs(tmp_path / "store")[-2:]
    diff = diff_json(run, earlier, later)
    assert [(c["kind"], c["url"]) for c in diff["changes"]] == [
        ("changed", server.url("/")), ("removed", server.url("/b"))]
    assert diff["uncertain"] == []


def test_foreign_waczs_are_read_from_their_index(run):
    same = diff_json(run, FOREIGN / "valid_signed_example_1.wacz", FOREIGN / "valid_signed_example_1.wacz")
    assert same["changes"] == [] and same["counts"]["unchanged"] == 1
    other = diff_json(run, FOREIGN / "valid_signed_example_1.wacz", FOREIGN / "valid_example_2.wacz")
    # valid_example_2 (2021) is the earlier one, whatever the order given
    assert other["earlier"]["capture"] == "valid_example_2.wacz"
    assert {(c["kind"], c["url"]) for c in other["changes"]} == {
        ("removed", "http://www.example.com/"), ("added", "https://example.com/")}


def test_bad_input_is_one_line_and_exit_2(run, tmp_path):
    junk = tmp_path / "junk.wacz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    nopages = tmp_path / "nopages.wacz"
    with zipfile.ZipFile(nopages, "w") as zf:
        zf.writestr("indexes/index.cdx", "")
    badindex = tmp_path / "badindex.wacz"
    with zipfile.ZipFile(badindex, "w") as zf:
        zf.writestr("pages/pages.jsonl", '{"format": "json-pages-1.0"}\n{"url": "http://x/", "ts": "2020"}\n')
        zf.writestr("indexes/index.cdx.gz", b"not gzip")
    good = FOREIGN / "valid_example_2.wacz"
    cases = [
        (junk, "not a readable zip file"),
        (nopages, "no pages list"),
        (badindex, "cannot read its pages and index"),
        (FOREIGN / "invalid_example_1.wacz", "no pages list"),
        ("20991231T000000Z-00000000", "no capture 20991231T000000Z-00000000"),
        ("not-an-id-or-file", "neither a WACZ file nor a capture id"),
    ]
    (tmp_path / "store" / "captures").mkdir(parents=True)     # a store, without that capture
    for target, words in cases:
        result = run("diff", good, target, "--store", tmp_path / "store")
        assert result.code == 2, (target, result)
        assert words in result.err and result.err.count("\n") == 1 and "Traceback" not in result.err


def test_digests_are_compared_by_value_not_spelling():
    """The same SHA-256 in hex and in base32 (tools write either) is no change; digests
    of two different algorithms cannot say whether the page changed."""
    import base64
    import hashlib

    from archive.diff import CaptureSummary, PageState, compare

    raw = hashlib.sha256(b"the page").digest()
    hex_, b32 = f"sha256:{raw.hex()}", "sha256:" + base64.b32encode(raw).decode()
    sha1 = "sha1:" + base64.b32encode(hashlib.sha1(b"the page").digest()).decode()
    other = "sha256:" + hashlib.sha256(b"edited").hexdigest()

    def summary(label, digest):
        page = PageState("http://x.org/", ts=f"2026-01-0{label}T00:00:00Z", status=200, digest=digest)
        return CaptureSummary(label, page.ts, pages={page.url: page})

    def kinds(a, b):
        diff = compare(summary("1", a), summary("2", b))
        return [c.kind for c in diff.changes], [c.kind for c in diff.uncertain], diff.unchanged

    assert kinds(hex_, b32) == ([], [], 1)
    assert kinds(hex_, other) == (["changed"], [], 0)
    assert kinds(sha1, hex_) == ([], ["no-digest"], 0)
    assert kinds("ABCDEF", "ABCDEF") == ([], [], 1)     # bare values of one tool: as text


def test_hostile_fields_and_bombs_are_read_as_such(run, tmp_path):
    """Fields of the wrong type were an internal error; a member inflating to gigabytes
    (a title line without end, a huge evidence file) was read whole into memory."""
    import gzip

    index = gzip.compress(b'test,x)/ 20210101000000 {"url": "http://x.test/", "digest": "sha256:aa", "status": "200"}\n')
    page = '{"url": "http://x.test/", "ts": "2021-01-01T00:00:00Z", "status": 200}\n'

    def wacz(name, pages=page, **members):
        path = tmp_path / f"{name}.wacz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("pages/pages.jsonl", pages)
            zf.writestr("indexes/index.cdx.gz", index)
            for member, data in members.items():
                zf.writestr(member.replace("__", "/").replace("_json", ".json"), data)
        return path

    typed = [
        wacz("started", evidence__capture_json=json.dumps({"started": 5, "seeds": 5, "stopReason": [1]})),
        wacz("ts", pages='{"url": "http://x.test/", "ts": 5, "title": [1], "status": "99999999999"}\n'
                         '{"url": "http://y.test/", "ts": "2021-01-01T00:00:00Z", "redirectTo": {}}\n'),
    ]
    for path in typed:
        result = run("diff", FOREIGN / "valid_example_2.wacz", path, "--json")
        assert result.code == 0, (path, result)
        diff = json.loads(result.out)
        # a value of the wrong type is no value: never shown as if the file had said it
        assert diff["later"]["seeds"] == [] and diff["later"]["stopReason"] is None
        added = next(c["after"] for c in diff["changes"] if c["url"] == "http://x.test/")
        assert added["title"] is None and added["status"] == 200 and added["digest"] == "sha256:aa"
        assert added["ts"] == (None if path.name == "ts.wacz" else "2021-01-01T00:00:00Z")
        assert diff["later"]["time"] != 5
    bombs = [
        (wacz("longline", pages=page + " " * (40 << 20)), "line longer than"),
        (wacz("evidence", evidence__capture_json=b" " * (40 << 20)), "larger than"),
    ]
    for path, words in bombs:
        result = run("diff", FOREIGN / "valid_example_2.wacz", path)
        assert result.code == 2 and words in result.err and result.err.count("\n") == 1, (path, result)


def test_times_with_a_utc_offset_are_ordered_and_shown_in_utc():
    """Compared as text, 05:00+05:00 (00:00 UTC) came after 01:00Z: added and removed were
    swapped; and it was shown as '05:00:00 UTC'."""
    from archive.diff import CaptureSummary, chronological, when

    a = CaptureSummary("a", "2026-01-01T05:00:00+05:00")
    b = CaptureSummary("b", "2026-01-01T01:00:00Z")
    assert chronological(b, a) == (a, b) and chronological(a, b) == (a, b)
    assert when(a.time) == "2026-01-01 00:00:00 UTC"
    assert when("2026-01-01T00:00:00") == "2026-01-01 00:00:00 UTC" and when("yesterday") == "yesterday"


def test_a_container_verify_refuses_is_not_read(run, tmp_path):
    """Two pages lists of one name: zip readers differ on which is the capture's, and
    diff read the last as if nothing were amiss."""
    import gzip
    import warnings

    twice = tmp_path / "twice.wacz"
    with warnings.catch_warnings(), zipfile.ZipFile(twice, "w") as zf:
        warnings.simplefilter("ignore")         # zipfile warns of the repeated name
        zf.writestr("pages/pages.jsonl", '{"url": "http://x.test/", "ts": "2021-01-01T00:00:00Z", "status": 200}\n')
        zf.writestr("pages/pages.jsonl", '{"url": "http://y.test/", "ts": "2021-01-01T00:00:00Z", "status": 200}\n')
        zf.writestr("indexes/index.cdx.gz", gzip.compress(b""))
    result = run("diff", FOREIGN / "valid_example_2.wacz", twice)
    assert result.code == 2 and "appears twice" in result.err and result.err.count("\n") == 1, result


# -- pages whose payload digests differ: compared by their content decoded ---------

TEXT = "<p>" + " ".join(f"sentence {n} of a long statement that compresses" for n in range(300)) + "</p>"


def index_digests(wacz) -> dict[str, str]:
    from archive.diff import read_summary

    with open(wacz, "rb") as fh:
        return {url: page.digest for url, page in read_summary(fh, "x").pages.items()}


def coded(**route):
    """A change setting /keep and /more to TEXT, sent as `route` says (chunked, gzip...)."""
    def change(site):
        for path in ("/keep", "/more"):
            site.html(path, path, TEXT, **route)
    return change


def test_the_same_page_chunked_or_compressed_otherwise_is_not_changed(run, two_versions):
    """A payload digest is over the body as transferred: a server re-chunking a page, or
    compressing it at another level, made 'The page X changed' of an unchanged page."""
    def first(site):
        site.html("/keep", "/keep", TEXT, chunked=True, chunk_size=7)
        site.html("/more", "/more", TEXT, gzip=True, gzip_level=9)
        site.html("/promo", "/promo", TEXT, gzip=True, chunked=True)

    def change(site):
        site.routes["/keep"].chunk_size = 300
        site.routes["/more"].gzip_level = 1
        site.routes["/promo"].chunked = False            # gzip, Content-Length instead of chunks
    (earlier, later), server = two_versions(change, first=first)
    urls = [server.url(p) for p in ("/keep", "/more", "/promo")]
    before, after = index_digests(earlier), index_digests(later)
    assert all(before[url] != after[url] for url in urls)     # as transferred, they differ
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == [] and diff["uncertain"] == []
    assert diff["counts"]["unchanged"] == 4 and diff["counts"]["transferOnly"] == 3
    assert diff["transferOnly"] == sorted(urls)
    text = run("diff", earlier, later).out
    assert "CHANGED" not in text
    assert "4 unchanged (3 of them sent with other chunking or compression: the same content once decoded)" in text


def test_a_page_whose_decoded_content_differs_is_changed(run, two_versions):
    def first(site):
        coded(chunked=True, gzip=True)(site)

    def change(site):
        site.html("/keep", "/keep", TEXT.replace("sentence 150", "sentence 15O"), chunked=True, gzip=True)
        site.html("/more", "/more", TEXT + "<p>added</p>", chunked=True, chunk_size=11)
    (earlier, later), server = two_versions(change, first=first)
    diff = diff_json(run, earlier, later)
    assert [(c["kind"], c["url"]) for c in diff["changes"]] == [
        ("changed", server.url("/keep")), ("changed", server.url("/more"))]
    assert diff["counts"]["transferOnly"] == 0 and diff["uncertain"] == []
    assert diff["changes"][0]["finding"].startswith(f"The page {server.url('/keep')} changed between ")


def test_a_page_sent_in_an_encoding_diff_cannot_decode_is_unknown_not_changed(run, two_versions):
    def change(site):
        # bytes no brotli decoder is needed for: diff refuses the coding by its name
        site.add("/keep", b"\x1b\x0e\x00\xf8 opaque brotli stream", headers={"Content-Encoding": "br"})
    (earlier, later), server = two_versions(change)
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == [] and diff["counts"]["changed"] == 0
    [unknown] = diff["uncertain"]
    assert unknown["kind"] == "unreadable" and unknown["url"] == server.url("/keep")
    assert f"its record in {later.name} does not decode (it is encoded with br, " in unknown["finding"]
    assert unknown["finding"].endswith("whether its content changed is unknown.")
    result = run("diff", earlier, later)
    assert result.code == 0 and "CHANGED" not in result.out and "Traceback" not in result.out + result.err
    assert "UNKNOWN" in result.out and "1 could not be compared" in result.out


def test_a_damaged_record_is_unknown_not_changed(run, two_versions, tmp_path):
    """Its digests fail: what it holds is no evidence of a change (nor of none)."""
    (earlier, later), server = two_versions(coded(chunked=True, chunk_size=4096), first=coded())
    damaged = rewrite_records(later, tmp_path / "damaged.wacz",
                              lambda record: record.replace(b"sentence 150 ", b"sentence 151 "))
    diff = diff_json(run, earlier, damaged)
    assert diff["changes"] == []
    unknown = {c["url"]: c for c in diff["uncertain"]}
    assert set(unknown) == {server.url("/keep"), server.url("/more")}
    assert all(c["kind"] == "unreadable" and "digests do not match" in c["finding"] for c in unknown.values())
    assert "Traceback" not in run("diff", earlier, damaged).err


def test_a_page_decoding_beyond_the_limit_is_unknown(run, two_versions, monkeypatch):
    """A gzip bomb (or a page too large to compare): read as a stream up to the limit, then left."""
    import archive.diff

    def change(site):
        site.add("/keep", b"\0" * (8 << 20), gzip=True, content_type="text/html")
    (earlier, later), server = two_versions(change, first=lambda site: site.add(
        "/keep", b"\0" * (4 << 20), gzip=True, content_type="text/html"))
    monkeypatch.setattr(archive.diff, "DECODED_LIMIT", 1 << 20)
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == []
    [unknown] = diff["uncertain"]
    assert unknown["kind"] == "unreadable" and "decodes to more than 1048576 bytes" in unknown["finding"]


def test_a_revisit_into_another_capture_is_compared_when_sent_as_is(run, key, tmp_path):
    """A page stored as a revisit holds its content in an earlier capture. Sent as is (no
    chunking, no compression) both ways, its payload digest is of the content itself: a
    change is a change. Compressed, its content cannot be decoded here: changed, as its
    bytes as sent are, and the finding says what could not be ruled out. (A scheduled
    job's captures deduplicate against each other: this is how most real edits look.)"""
    site = Site()
    site.html("/", "Home", '<a href="/plain">Plain</a> <a href="/zipped">Zipped</a>')
    site.html("/plain", "Plain", TEXT)
    site.html("/zipped", "Zipped", TEXT, gzip=True)
    with SiteServer(site) as server:
        for version in (1, 2, 3):
            if version == 3:
                site.html("/plain", "Plain", TEXT + "<p>edited</p>")
                site.html("/zipped", "Zipped", TEXT + "<p>edited</p>", gzip=True)
            time.sleep(1.1 if version > 1 else 0)
            earlier = stored_waczs(tmp_path / "store")[-1:]
            result = run("capture", server.url("/"), "--depth", "1", "--scope", "prefix", "--key", key,
                         "--store", tmp_path / "store", "--work-dir", tmp_path / "work", "--quiet",
                         *(("--dedup-against", earlier[0]) if earlier else ()))
            assert result.code == 0, result
    second, third = stored_waczs(tmp_path / "store")[1:]
    stored_as = {r["uri"]: r["type"] for r in records(second) if r["type"] in ("response", "revisit")}
    assert stored_as[server.url("/plain")] == stored_as[server.url("/zipped")] == "revisit"
    diff = diff_json(run, second, third)
    changes = {c["url"]: c for c in diff["changes"]}
    assert sorted(changes) == [server.url("/plain"), server.url("/zipped")] and diff["uncertain"] == []
    assert {c["kind"] for c in changes.values()} == {"changed"}
    assert "not decoded" not in changes[server.url("/plain")]["finding"]
    zipped = changes[server.url("/zipped")]["finding"]
    assert "its content was not decoded to rule out a change of chunking or compression only" in zipped
    assert "is stored as a revisit" in zipped and "not in this capture" in zipped

    # From the store, the revisit is followed into the capture that holds its content:
    # compared by content, no caveat.
    ids = [Path(w).name.removesuffix(".wacz") for w in (second, third)]
    stored = json.loads(run("diff", *ids, "--store", tmp_path / "store", "--json").out)
    assert {c["url"]: c["kind"] for c in stored["changes"]} == {
        server.url("/plain"): "changed", server.url("/zipped"): "changed"}
    assert not any("not decoded" in c["finding"] for c in stored["changes"]) and stored["uncertain"] == []


def test_a_page_cut_short_in_one_capture_is_unknown_not_changed(run, two_versions):
    """--max-body kept only the start of the page: its payload digest differs, what the
    server sent may not."""
    def big(site):
        site.html("/keep", "/keep", TEXT * 30)
    (earlier, later), server = two_versions(big, first=big, extra=("--max-body", "100KB"))
    diff = diff_json(run, earlier, later)
    assert diff["changes"] == []
    [unknown] = diff["uncertain"]
    assert unknown["url"] == server.url("/keep")
    assert "was cut short (WARC-Truncated: length)" in unknown["finding"]


def test_a_recompressed_page_whose_earlier_copy_is_a_revisit_is_unchanged_from_the_store(run, key, tmp_path):
    """A scheduled job's captures deduplicate one against the other, so an unchanged page
    is a revisit of an older capture. When the server then compresses it differently,
    the store is searched for the content the revisit stands for, and the page is found
    the same once decoded: not an edit."""
    site = Site()
    site.html("/", "Home", '<a href="/zipped">Zipped</a>')
    site.html("/zipped", "Zipped", TEXT, gzip=True, gzip_level=9)
    with SiteServer(site) as server:
        for version in (1, 2, 3):
            if version == 3:
                site.html("/zipped", "Zipped", TEXT, gzip=True, gzip_level=1)
            time.sleep(1.1 if version > 1 else 0)
            earlier = stored_waczs(tmp_path / "store")[-1:]
            result = run("capture", server.url("/"), "--depth", "1", "--scope", "prefix", "--key", key,
                         "--store", tmp_path / "store", "--work-dir", tmp_path / "work", "--quiet",
                         *(("--dedup-against", earlier[0]) if earlier else ()))
            assert result.code == 0, result
    ids = [Path(w).name.removesuffix(".wacz") for w in stored_waczs(tmp_path / "store")[1:]]
    diff = json.loads(run("diff", *ids, "--store", tmp_path / "store", "--json").out)
    assert diff["changes"] == [] and diff["uncertain"] == []
    assert diff["transferOnly"] == [server.url("/zipped")]
