"""Sealing a crawl of any size in flat memory (issue 22): what grows with the crawl
(index lines, page entries, failures) is spooled to the capture's spool folder past the
memory bound, and the index, pages.jsonl and capture.json are written as they are read.
What is sealed does not depend on the bound."""

from __future__ import annotations

import json
import os
import re
import tracemalloc
import zipfile
from pathlib import Path

from archive.capture.journal import replay
from archive.seal.wacz import SealInput, json_chunks, seal
from archive.wacz.names import CAPTURE, IDX, INDEX, PAGES
from archive.wacz.zipwriter import ContainerWriter
from tests.conftest import stored_waczs
from tests.site import SiteServer, generated_site


def test_json_chunks_are_the_bytes_json_dumps_gives():
    value = {"a": 1, "nested": {"list": [1, {"x": []}]}, "failures": None, "last": "\u00fc\u2028"}
    for items in ([], [{"url": "http://x/"}], [{"url": "\u00e9", "n": [1, {"e": {}}]}, "s", 3, None, [], {}],
                  [{"url": "http://example.com/" + "x" * 100, "error": "HTTP 404"}] * 20000):
        chunks = list(json_chunks(value, "failures", iter(items)))
        assert b"".join(chunks) == json.dumps({**value, "failures": items}, indent=2).encode("utf-8")
    assert len(chunks) > 1, "a long array is written in several chunks"


def _journal(path: Path, pages: int) -> None:
    """A crawl journal of `pages` page fetches (two records each, every fifth failed)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"t": "seeds", "queue": [["http://example.com/", 0, False, []]]}) + "\n")
        for n in range(pages):
            url = f"http://example.com/page/{n}/{'x' * 60}"
            failed = n % 5 == 0
            page = {"id": f"{n:032x}", "url": url, "ts": "2026-12-07T18:00:00Z",
                    "title": f"Page {n} \u00e9", "status": 404 if failed else 200, "size": 1000 + n}
            if failed:
                page.update(error="HTTP 404", errorKind="http")
            index = [f"com,example)/page/{n}/{'x' * 60} 20261207180000 "
                     + json.dumps({"url": url, "mime": "text/html", "status": str(page["status"]),
                                   "digest": f"sha256:{n:064x}", "length": "900",
                                   "offset": str(1000 * n), "filename": "data-00000.warc.gz"}),
                     f"urn:request:{url} 20261207180000 " + json.dumps({"offset": str(1000 * n + 500)})]
            line = {"t": "group", "url": url, "kind": "page", "final": True, "queue": [],
                    "failed": failed, **({"error": "HTTP 404"} if failed else {}), "page": page,
                    "warc": ["data-00000.warc.gz", 1000 * (n + 1), n], "elapsed": 0.1,
                    "index": index, "bytes": 1000}
            fh.write(json.dumps(line, separators=(",", ":")) + "\n")
        fh.write(json.dumps({"t": "end", "stop": None, "notFetched": []}) + "\n")


def _seal_journal(work: Path) -> tuple[dict[str, bytes], int]:
    """The index, pages.jsonl and capture.json sealed from the journal in `work`, and the
    most memory (bytes) the replay and the seal took."""
    tracemalloc.start()
    try:
        state = replay(work / "crawl.jsonl", sealing=True)
        evidence = {"captureId": "test", "failures": []}
        container = ContainerWriter(work / "test.wacz")
        sealed = seal(container, SealInput("test", state.index_lines, state.pages,
                                           {CAPTURE: json_chunks(evidence, "failures", state.failures)}), None)
        peak = tracemalloc.get_traced_memory()[1]
        state.close()
    finally:
        tracemalloc.stop()
    with zipfile.ZipFile(sealed.path) as zf:
        members = {name: zf.read(name) for name in (INDEX, IDX, PAGES, CAPTURE)}
    sealed.path.unlink()
    return members, peak


def test_sealing_a_large_journal_holds_what_grows_with_it_on_disk(tmp_path, monkeypatch):
    """15,000 pages (30,000 index lines, 3,000 failures) sealed with a bound of 500: a
    few MB, where holding them takes several times that; the same bytes either way."""
    work = tmp_path / "work"
    (work / "spool").mkdir(parents=True)
    _journal(work / "crawl.jsonl", 15_000)
    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", "500")
    spooled, peak = _seal_journal(work)
    assert peak < 12 * 2**20, f"sealing took {peak / 2**20:.0f} MB"
    assert os.listdir(work / "spool") == [], "the spool files are removed"
    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", str(10**9))     # everything in memory
    held, peak_held = _seal_journal(work)
    assert held == spooled
    assert peak_held > 3 * peak, (peak_held, peak)
    pages = spooled[PAGES].decode().splitlines()
    assert len(pages) == 15_001 and json.loads(pages[1])["title"] == "Page 0 \u00e9"
    assert len(json.loads(spooled[CAPTURE])["failures"]) == 3_000


def _members(wacz: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wacz) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != "datapackage-digest.json"}


def test_a_capture_seals_the_same_whatever_the_memory_bound(run, key, tmp_path, monkeypatch):
    """A capture crawled and sealed with a bound of 2 (its frontier, index lines, page
    entries and failures all spill) is sealed again from the same work folder with the
    default bound: the index, pages.jsonl and the WARC data are byte for byte the same,
    and capture.json differs only in when it was finished."""
    site = generated_site(40)
    for path in ("/p/7.html", "/i/3-a.png", "/s/5.css"):      # failures too
        del site.routes[path]
    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", "2")
    with SiteServer(site) as server:
        done = run("capture", server.url("/"), "--depth", "10", "--scope", "host", "--key", key,
                   "--store", tmp_path / "store", "--work-dir", tmp_path / "w", "--keep-local", "--quiet")
        assert done.code == 0, done
    first = Path(stored_waczs(tmp_path / "store")[0])
    a = _members(first)
    work = next((tmp_path / "w").iterdir())
    # the work folder as it was before sealing: the container cut back to its WARC data
    # (a copy: the store may hold the sealed file itself, by a hard link)
    sealed = work / first.name
    with zipfile.ZipFile(sealed) as zf:
        warcs = [i for i in zf.infolist() if i.filename.startswith("archive/")]
    last = warcs[-1]
    end = last.header_offset + 30 + len(last.filename) + len(last.extra) + last.compress_size
    (work / (first.name + ".open")).write_bytes(sealed.read_bytes()[:end])
    sealed.unlink()

    monkeypatch.delenv("ARCHIVE_CRAWL_MEMORY")
    again = run("capture", "--resume", work, "--key", key, "--store", tmp_path / "store2", "--override-saved", "--quiet")
    assert again.code == 0, again
    second = Path(stored_waczs(tmp_path / "store2")[0])
    b = _members(second)
    assert a.keys() == b.keys()
    assert len(a[PAGES].splitlines()) > 30
    for name in a:
        if name not in ("datapackage.json", CAPTURE):
            assert a[name] == b[name], name
    ea, eb = json.loads(a[CAPTURE]), json.loads(b[CAPTURE])
    assert len(ea["failures"]) == 3
    assert {**ea, "finished": None} == {**eb, "finished": None}
    finished = re.compile(rb'"finished": "[^"]*"')
    assert finished.sub(b"", a[CAPTURE]) == finished.sub(b"", b[CAPTURE])


def test_page_texts_kept_on_disk_answer_what_the_ones_in_memory_do(run, key, tmp_path, monkeypatch):
    """pages.jsonl's `text` while sealing comes from SpilledTexts (flat in memory): on a
    real capture it gives every page the text page_texts gives, a revisit (a page whose
    body repeats an earlier one) its original's text, whatever the batch size."""
    from archive.catalog.records import SpilledIndex, SpilledTexts, page_texts
    from archive.wacz.zipreader import member_lines, open_container, open_zip

    site = generated_site(12)
    site.html("/p/1.html", "Same", "<a href='/p/13.html'>twin</a><p>Words said twice.</p>")
    site.routes["/p/13.html"] = site.routes["/p/1.html"]           # the same bytes: a revisit
    with SiteServer(site) as server:
        done = run("capture", server.url("/"), "--depth", "10", "--scope", "host", "--key", key,
                   "--store", tmp_path / "store", "--quiet")
        assert done.code == 0, done
        base = server.url("")
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    sealed = {p["url"]: p.get("text") for p in map(json.loads, _members(wacz)[PAGES].splitlines()[1:])}
    assert "Words said twice." in sealed[base + "/p/13.html"] == sealed[base + "/p/1.html"]
    assert "Some text of page 7." in sealed[base + "/p/7.html"]
    with open(wacz, "rb") as fh:
        size = wacz.stat().st_size
        container, zf = open_container(fh, size, str(wacz)), open_zip(fh, size)
        index = SpilledIndex(line.decode().rstrip("\n") for line in member_lines(zf, INDEX, 1 << 20))
        pages = [{"url": url} for url in sealed]
        assert any(index.first(p["url"]).record_type == "revisit" for p in pages)
        held = {url: text.searchable() for url, text in page_texts(fh, container, index.first, pages).items()}
        monkeypatch.setattr(SpilledTexts, "BATCH", 1)
        spilled = SpilledTexts(fh, container, index.first, reversed(pages))   # the original after its revisit
        assert {p["url"]: spilled.get(p["url"]) for p in pages} == {u: held.get(u) for u in sealed}
        assert {u: t for u, t in sealed.items() if t} == held
        spilled.close()
        index.close()
