"""The catalog and search, against SQLite and a real PostgreSQL (a throwaway cluster).

One store is captured once for the module: the search site twice, its /statement losing
a sentence in between, then once more with --no-text. Each test builds its own catalog
of that store (or of a copy) with `archive index` and asks it through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from archive.cli import main as cli_main
from tests.conftest import BIN, Result
from tests.pgserver import pg_cluster  # noqa: F401 - the session's PostgreSQL cluster
from tests.site import (
    ARABIC_VOWELLED, ARABIC_WORD, NEWS_SENTENCE, PDF_SENTENCE, REMOVED_SENTENCE, Site, SiteServer, search_site,
)

BACKENDS = ["sqlite", "postgresql"]


def cli(*args, capsys) -> Result:
    capsys.readouterr()
    code = cli_main([str(a) for a in args])
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """(store, site base URL, [capture ids]) of three captures of the search site."""
    root = tmp_path_factory.mktemp("searched")
    store = root / "store"
    ids = []
    site = search_site()
    with SiteServer(site) as server:
        for n in range(3):
            if n == 1:    # the statement loses its last sentence between the first two captures
                site.html("/statement", "Ministry statement", "<p>We mourn the victims.</p>")
            if ids:       # ids are to the second: each capture in a later second sorts after the last
                time.sleep(1.05 - time.time() % 1)
            extra = ["--no-text"] if n == 2 else []
            done = subprocess.run(
                [str(BIN / "archive"), "capture", server.url("/"), "--depth", "1", "--scope", "host",
                 "--unsigned", "--store", str(store), "--work-dir", str(root / "work"), "--quiet", "--json",
                 *extra], capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            ids.append(json.loads(done.stdout)["capture_id"])
            assert "catalog" not in done.stderr, done.stderr
        base = server.base
    return store, base, ids


@pytest.fixture(params=BACKENDS)
def catalog(request, tmp_path):
    """A fresh, empty catalog: an SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "catalog.sqlite3")
    return request.getfixturevalue("pg_cluster").database()


def index(store, catalog, capsys, *extra) -> Result:
    result = cli("index", "--store", store, "--catalog", catalog, "--quiet", *extra, capsys=capsys)
    assert result.code == 0, result
    return result


def search(store, catalog, capsys, query, *extra) -> Result:
    return cli("search", "--store", store, "--catalog", catalog, *extra, "--", query, capsys=capsys)


def hits(store, catalog, capsys, query, *extra) -> list[dict]:
    result = search(store, catalog, capsys, query, "--json", *extra)
    assert result.code == 0, result
    return json.loads(result.out)


def urls(found: list[dict]) -> set[str]:
    return {h["url"].split("/", 3)[-1] for h in found}


def test_found_by_phrase_word_and_script(searched, catalog, capsys):
    store, base, ids = searched
    report = json.loads(index(store, catalog, capsys, "--json").out)
    assert sorted(report["added"]) == sorted(ids) and not report["problems"]

    found = hits(store, catalog, capsys, '"Syrian Observatory for Human Rights"')
    assert urls(found) == {"news"} and {h["capture_id"] for h in found} == set(ids)
    hit = found[0]
    marked = [hit["snippet"][a:b] for a, b in hit["marks"]]
    assert marked == ["Syrian Observatory for Human Rights"] and NEWS_SENTENCE in hit["snippet"]
    assert hit["title"] == "Shelling resumes" and hit["url"] == base + "/news"
    text = search(store, catalog, capsys, '"Syrian Observatory for Human Rights"', "--limit", "1")
    assert "[Syrian Observatory for Human Rights]" in text.out and text.out.count(base) == 1

    # windows-1256 (declared only in a <meta>): found with and without harakat, shown as written
    for query in (ARABIC_WORD, ARABIC_VOWELLED, "\u0627\u0644\u0645\u0631\u0640\u0640\u0635\u062f"):   # tatweel too
        found = hits(store, catalog, capsys, query)
        assert urls(found) == {"arabic"}, query
        assert all(h["snippet"][a:b] == ARABIC_VOWELLED for h in found for a, b in h["marks"])
    assert urls(hits(store, catalog, capsys, "\u043e\u0431\u0441\u0442\u0440\u0435\u043b\u044b")) == {"russian"}

    assert urls(hits(store, catalog, capsys, "casualty figures")) == {"zipped"}     # chunked + gzip
    assert urls(hits(store, catalog, capsys, '"detention centres"')) == {"report.pdf"}
    assert hits(store, catalog, capsys, "scriptword") == []           # scripts are not text
    assert urls(hits(store, catalog, capsys, "observ*")) == {"news"}
    assert urls(hits(store, catalog, capsys, "casualty OR rassvete OR mourn")) == {"zipped", "statement"}
    assert urls(hits(store, catalog, capsys, "shelling")) == {"news"}
    assert hits(store, catalog, capsys, "shelling NOT dawn") == []
    assert urls(hits(store, catalog, capsys, "(shelling OR victims) -dawn")) == {"statement"}
    assert urls(hits(store, catalog, capsys, '"observatory for" AND syrian')) == {"news"}
    assert hits(store, catalog, capsys, '"rights for human"') == []    # a phrase is in order

    # filters: URL prefix, time, limit
    assert urls(hits(store, catalog, capsys, "mourn OR casualty", "--url", base + "/stat")) == {"statement"}
    assert hits(store, catalog, capsys, "shelling", "--until", "2000-01-01") == []
    assert len(hits(store, catalog, capsys, "shelling", "--since", "2000-01-01")) == 3
    assert len(hits(store, catalog, capsys, "shelling", "--limit", "2")) == 2


def test_history_shows_when_a_sentence_was_removed(searched, catalog, capsys):
    store, base, ids = searched
    index(store, catalog, capsys)
    rows = json.loads(search(store, catalog, capsys, f'"{REMOVED_SENTENCE}"', "--url", base + "/statement",
                             "--history", "--json").out)
    assert [r["capture_id"] for r in rows] == ids
    assert [r["present"] for r in rows] == [True, False, False]
    out = search(store, catalog, capsys, f'"{REMOVED_SENTENCE}"', "--url", base + "/statement", "--history").out
    lines = out.splitlines()
    assert "present" in lines[0] and "absent" in lines[1] and "removed" in lines[1] and "removed" not in lines[2]
    assert ids[0] in lines[0] and ids[1] in lines[1]


def test_backends_agree(searched, pg_cluster, tmp_path, capsys):  # noqa: F811
    store, _, _ = searched
    lite, pg = str(tmp_path / "c.sqlite3"), pg_cluster.database()
    for catalog in (lite, pg):
        index(store, catalog, capsys)
    queries = ['"Syrian Observatory"', ARABIC_VOWELLED, "victims OR casualty", "cas*", "human -shelling",
               "the", '"we mourn"', "\u0442\u0435\u043a\u0441\u0442 OR \u043d\u0430", "report"]
    for query in queries:
        a = hits(store, lite, capsys, query, "--limit", "100")
        b = hits(store, pg, capsys, query, "--limit", "100")
        assert {(h["capture_id"], h["url"]) for h in a} == {(h["capture_id"], h["url"]) for h in b}, query
        assert sorted(h["snippet"] for h in a) == sorted(h["snippet"] for h in b), query
        assert a or query in ("human -shelling", "the")


HOSTILE = ['"unclosed phrase', 'shelling" OR 1=1 --', "a)", "((a)", "NOT secret", "-secret", "a OR", "AND", "*", '"', "x*" * 600,
           "a OR NOT b", "(" * 40 + "a" + ")" * 40]


def test_hostile_queries_are_one_line_errors(searched, catalog, capsys):
    store, _, _ = searched
    index(store, catalog, capsys)
    for query in HOSTILE:
        result = search(store, catalog, capsys, query)
        assert result.code == 2, (query, result)
        assert result.err.startswith("archive: error: ") and result.err.count("\n") == 1, (query, result)
        assert "Traceback" not in result.err and not result.out
    # SQL and FTS5 syntax are words here: nothing runs, nothing breaks
    for query in ["'; DROP TABLE pages; --", 'shelling OR 1=1 --', 'x" OR "1"="1', "NEAR(shelling dawn)", "title:shelling",
                  "shelling^", "{title}: x", "pages_fts MATCH 'x'", "x\\'y", "%_% shelling"]:
        result = search(store, catalog, capsys, query)
        assert result.code == 0 and "Traceback" not in result.err, (query, result)
    assert len(hits(store, catalog, capsys, "shelling")) == 3        # the tables are all there


def _count(catalog: str, sql: str) -> int:
    if catalog.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(catalog) as db:
            return db.execute(sql).fetchone()[0]
    with sqlite3.connect(catalog) as db:
        return db.execute(sql).fetchone()[0]


def test_interrupted_index_resumes_without_doubling(searched, catalog, tmp_path, capsys):
    store, _, ids = searched
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    (copy / "catalog.sqlite3").unlink()
    for extra in copy.glob("catalog.sqlite3-*"):
        extra.unlink()
    # the second capture's file is a FIFO: an index run blocks on it, having added the first
    second = next(copy.glob(f"captures/*/*/*/{ids[1]}.wacz"))
    second.chmod(0o644)
    held = tmp_path / "held.wacz"
    second.rename(held)
    os.mkfifo(second)
    proc = subprocess.Popen([str(BIN / "archive"), "index", "--store", str(copy), "--catalog", catalog, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _count(catalog, "SELECT count(*) FROM captures") == 1:
                    break
            except Exception:  # noqa: BLE001 - the tables are being created
                pass
            time.sleep(0.1)
        else:
            pytest.fail("index never added the first capture")
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    second.unlink()
    held.rename(second)
    report = json.loads(index(copy, catalog, capsys, "--json").out)
    assert sorted(report["added"]) == sorted(ids[1:]) and report["already"] == 1
    index(copy, catalog, capsys)        # and once more: nothing new
    assert _count(catalog, "SELECT count(*) FROM captures") == 3
    pages = _count(catalog, "SELECT count(*) FROM pages")
    assert pages == _count(catalog, "SELECT count(*) FROM (SELECT DISTINCT capture_id, url FROM pages) d")
    assert pages == sum(len(_pages_jsonl(p)) for p in copy.glob("captures/*/*/*/*.wacz"))
    assert len(hits(copy, catalog, capsys, "shelling")) == 3


def _pages_jsonl(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as zf:
        return [json.loads(line) for line in zf.read("pages/pages.jsonl").splitlines()[1:]]


def test_capture_adds_itself_and_seals_page_text(searched, capsys):
    store, base, ids = searched
    # capture added each capture to the store's own catalog as it stored it: no index needed
    found = json.loads(cli("search", "shelling", "--store", store, "--json", capsys=capsys).out)
    assert {h["capture_id"] for h in found} == set(ids)
    paths = [next(store.glob(f"captures/*/*/*/{i}.wacz")) for i in ids]
    texts = {p["url"]: p.get("text") for p in _pages_jsonl(paths[0])}
    assert NEWS_SENTENCE in texts[base + "/news"] and "scriptword" not in texts[base + "/news"]
    assert ARABIC_VOWELLED in texts[base + "/arabic"] and PDF_SENTENCE in texts[base + "/report.pdf"]
    assert all("text" not in p for p in _pages_jsonl(paths[2]))      # --no-text
    verified = subprocess.run([str(BIN / "archive"), "verify", str(paths[0]), "--allow-unsigned"],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_unreachable_catalog_never_fails_a_capture(tmp_path, capsys):
    with SiteServer(search_site()) as server:
        result = cli("capture", server.url("/news"), "--unsigned", "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--catalog", "postgresql://nobody@127.0.0.1:1/none",
                     capsys=capsys)
    assert result.code == 0, result
    assert "was not added to the catalog" in result.err and "archive index" in result.err
    assert len(list((tmp_path / "store").glob("captures/*/*/*/*.wacz"))) == 1


def test_deleted_capture_is_reported_not_shown(searched, catalog, tmp_path, capsys):
    store, _, ids = searched
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    index(copy, catalog, capsys)
    gone = next(copy.glob(f"captures/*/*/*/{ids[0]}.wacz"))
    gone.unlink()
    result = search(copy, catalog, capsys, "shelling", "--json")
    assert result.code == 0 and {h["capture_id"] for h in json.loads(result.out)} == set(ids[1:])
    assert f"{ids[0]} is in the catalog but not in the store" in result.err
    report = index(copy, catalog, capsys)
    assert f"missing  {ids[0]}" in report.out
    listed = cli("ls", "--store", copy, "--catalog", catalog, "--json", capsys=capsys)
    assert [r["id"] for r in json.loads(listed.out)] == ids[1:]
    history = json.loads(search(copy, catalog, capsys, "victims", "--url", "x", "--history", "--json").out)
    assert history == []


def test_ls_and_show_read_the_catalog(searched, catalog, capsys):
    store, _, ids = searched
    index(store, catalog, capsys)
    # ls lists by capture id (its time, then its random part: two captures in one second
    # are in either order)
    rows = json.loads(cli("ls", "--store", store, "--catalog", catalog, "--json", capsys=capsys).out)
    assert [r["id"] for r in rows] == sorted(ids)
    direct = json.loads(cli("ls", "--store", store, "--no-catalog", "--json", capsys=capsys).out)
    assert [r["id"] for r in direct] == sorted(ids)
    for row, stored in zip(rows, direct):
        assert row["size"] == stored["size"] and row["seeds"] == stored["seeds"] and row["address"] == stored["address"]
        assert len(row["sha256"]) == 64
    shown = json.loads(cli("show", ids[0], "--store", store, "--catalog", catalog, "--json", capsys=capsys).out)
    assert shown["pages"] == 7 and shown["seeds"] == rows[0]["seeds"]


def test_old_catalog_is_rebuilt_with_a_message(searched, tmp_path, capsys):
    store, _, ids = searched
    catalog = str(tmp_path / "old.sqlite3")
    index(store, catalog, capsys)
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE catalog_meta SET value = '0' WHERE key = 'schema'")
    result = search(store, catalog, capsys, "shelling")
    assert result.code == 2 and "older version" in result.err and "archive index" in result.err
    result = index(store, catalog, capsys)
    assert "older version" in result.err and "rebuilt" in result.err
    assert len(hits(store, catalog, capsys, "shelling")) == 3
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE catalog_meta SET value = '99' WHERE key = 'schema'")
    result = search(store, catalog, capsys, "shelling")
    assert result.code == 2 and "newer version" in result.err


def test_jobs_run_adds_its_captures_with_changes_and_verdicts(tmp_path, capsys):
    from tests.jobfiles import write_job

    site = search_site()
    store = tmp_path / "store"
    with SiteServer(site) as server:
        job = write_job(tmp_path, "watch", [server.url("/")], None, store,
                        crawl={"depth": 1, "scope": "host"})
        first = cli("jobs", "run", job, capsys=capsys)
        assert first.code == 0, first
        site.html("/statement", "Ministry statement", "<p>We mourn the victims.</p>")
        time.sleep(1.1)     # captures are told apart by their time, to the second
        second = cli("jobs", "run", job, capsys=capsys)
        assert second.code == 0, second
    assert "catalog" not in first.err + second.err
    found = json.loads(cli("search", "--store", store, "--job", "watch", "--json", "--", "victims",
                           capsys=capsys).out)
    assert len(found) == 2
    assert json.loads(cli("search", "--store", store, "--job", "other", "--json", "--", "victims",
                          capsys=capsys).out) == []
    ids = sorted(h["capture_id"] for h in found)
    from archive.catalog.locate import open_catalog
    from archive.store.address import open_store
    catalog, _ = open_catalog(open_store(str(store)))
    try:
        assert catalog.changes(ids[1]) == [{"previous": ids[0], "url": site_url, "change": "changed"}
                                           for site_url in [server.url("/statement")]]
    finally:
        catalog.close()
    verified = cli("verify", ids[0], "--store", store, "--allow-unsigned", capsys=capsys)
    assert verified.code == 0, verified
    index(store, str(store / "catalog.sqlite3"), capsys)
    shown = json.loads(cli("show", ids[0], "--store", store, "--json", capsys=capsys).out)
    assert shown["verdict"] == "VERIFIED" and shown["verified_at"] and shown["job"] == "watch"


def test_unreadable_capture_and_broken_catalog_are_one_line_errors(searched, tmp_path, capsys):
    store, _, ids = searched
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    bogus = copy / "captures/2026/01/02/20260102T030405Z-0badf11e.wacz"
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    catalog = str(tmp_path / "c.sqlite3")
    result = cli("index", "--store", copy, "--catalog", catalog, "--json", capsys=capsys)
    assert result.code == 1 and "not indexed: 20260102T030405Z-0badf11e" in result.err, result
    assert sorted(json.loads(result.out)["added"]) == sorted(ids) and "Traceback" not in result.err
    assert len(hits(copy, catalog, capsys, "shelling")) == 3
    Path(catalog).write_bytes(b"not a database at all" * 100)
    for f in Path(tmp_path).glob("c.sqlite3-*"):
        f.unlink()
    result = search(copy, catalog, capsys, "shelling")
    assert result.code == 2 and result.err.count("\n") == 1 and "c.sqlite3" in result.err, result
    assert "--rebuild" in result.err
    assert cli("index", "--store", copy, "--catalog", catalog, "--rebuild", "--quiet", capsys=capsys).code == 1
    assert len(hits(copy, catalog, capsys, "shelling")) == 3


def test_s3_store_indexed_searched_and_listed_from_a_catalog(s3, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = s3.address("team")
    with SiteServer(search_site()) as server:
        made = cli("capture", server.url("/news"), "--unsigned", "--store", store, "--work-dir", tmp_path / "work",
                   "--quiet", "--json", capsys=capsys)
    assert made.code == 0 and "catalog" not in made.err, made
    capture_id = json.loads(made.out)["capture_id"]
    # the capture added itself to this user's cache catalog of the store
    cached = json.loads(cli("search", "--store", store, "--json", "--", "shelling", capsys=capsys).out)
    assert [h["capture_id"] for h in cached] == [capture_id] and list((tmp_path / "cache").rglob("*.sqlite3"))
    shared = str(tmp_path / "shared.sqlite3")
    report = json.loads(index(store, shared, capsys, "--json").out)
    assert report["added"] == [capture_id]
    assert [h["url"] for h in hits(store, shared, capsys, '"Syrian Observatory"')] == [server.url("/news")]
    listed = json.loads(cli("ls", store, "--catalog", shared, "--json", capsys=capsys).out)
    direct = json.loads(cli("ls", store, "--no-catalog", "--json", capsys=capsys).out)
    assert [(r["id"], r["sha256"], r["size"]) for r in listed] == [(r["id"], r["sha256"], r["size"]) for r in direct]


def test_ls_reads_the_store_when_the_catalog_is_unreachable(searched, capsys):
    store, _, ids = searched
    listed = cli("ls", "--store", store, "--catalog", "postgresql://nobody@127.0.0.1:1/none", "--json", capsys=capsys)
    assert listed.code == 0 and [r["id"] for r in json.loads(listed.out)] == ids, listed
    assert "reading the store itself" in listed.err


MANY = 2500     # pages of the big capture: PAGE_BATCH is 1000, so it is added in three batches


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """(store, capture id) of one capture of MANY pages captured with --no-text (the
    catalog reads each page's text from its record), plus a page whose text two share."""
    from archive.catalog.catalog import PAGE_BATCH

    assert MANY > 2 * PAGE_BATCH
    root = tmp_path_factory.mktemp("big")
    site = Site()
    site.html("/", "Many pages", "".join(f'<a href="/p/{n}">{n}</a>' for n in range(MANY)))
    for n in range(MANY):
        site.html(f"/p/{n}", f"Page {n}", f"<p>Report number {n} of the series, its own word w{n}x.</p>")
    site.html("/p/7", "Twin", "<p>The same words twice.</p>")
    site.html(f"/p/{MANY - 1}", "Twin", "<p>The same words twice.</p>")
    with SiteServer(site) as server:
        done = subprocess.run(
            [str(BIN / "archive"), "capture", server.url("/"), "--depth", "1", "--scope", "host", "--unsigned",
             "--store", str(root / "store"), "--work-dir", str(root / "work"), "--quiet", "--json", "--no-text",
             "--catalog", "off"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "store", json.loads(done.stdout)["capture_id"]


def _rows(catalog: str) -> list[tuple]:
    """Every page as the catalog holds it (its text unpacked), ids aside."""
    from archive.catalog.catalog import unpack

    sql = ("SELECT p.capture_id, p.url, p.ts, p.status, p.title, p.mime, p.digest, p.size, p.error, t.text "
           "FROM pages p LEFT JOIN texts t ON t.id = p.text_id ORDER BY p.url")
    if catalog.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(catalog) as db:
            rows = db.execute(sql).fetchall()
    else:
        with sqlite3.connect(catalog) as db:
            rows = db.execute(sql).fetchall()
    return [(*r[:-1], unpack(r[-1])) for r in rows]


def test_many_page_capture_is_added_in_batches_with_every_page(big_store, catalog, capsys):
    store, capture_id = big_store
    report = json.loads(index(store, catalog, capsys, "--json").out)
    assert report["added"] == [capture_id] and report["pages"] == MANY + 1
    rows = _rows(catalog)
    listed = _pages_jsonl(next(store.glob("captures/*/*/*/*.wacz")))
    assert [(r[1], r[2], r[3]) for r in rows] == sorted((p["url"], p["ts"], p.get("status")) for p in listed)
    texts = {r[1].split("/", 3)[-1]: (r[4], r[9]) for r in rows}
    assert texts["p/0"] == ("Page 0", "Report number 0 of the series, its own word w0x.")
    assert texts[f"p/{MANY - 2}"][1].endswith(f"w{MANY - 2}x.")
    assert texts["p/7"] == texts[f"p/{MANY - 1}"] == ("Twin", "The same words twice.")
    assert _count(catalog, "SELECT count(*) FROM texts") == MANY      # the twins' text once
    assert [h["url"].split("/", 3)[-1] for h in hits(store, catalog, capsys, f"w{MANY - 2}x")] == [f"p/{MANY - 2}"]
    assert urls(hits(store, catalog, capsys, '"same words twice"')) == {"p/7", f"p/{MANY - 1}"}
    assert json.loads(cli("show", capture_id, "--store", store, "--catalog", catalog, "--json",
                          capsys=capsys).out)["pages"] == MANY + 1


def test_interrupted_add_of_a_big_capture_resumes_without_doubling(big_store, catalog, tmp_path, capsys):
    store, capture_id = big_store
    proc = subprocess.Popen([str(BIN / "archive"), "index", "--store", str(store), "--catalog", catalog, "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if _count(catalog, "SELECT count(*) FROM pages") > 0:
                    break
            except Exception:  # noqa: BLE001 - the tables are being created
                pass
            time.sleep(0.005)
        proc.send_signal(signal.SIGSTOP)        # between batches or in one: either way
        assert proc.poll() is None, "index finished before it could be stopped"
        # a capture being added is not shown: its pages are there, its captures row is not
        assert _count(catalog, "SELECT count(*) FROM adding") == 1
        assert 0 < _count(catalog, "SELECT count(*) FROM pages") < MANY + 1
        assert _count(catalog, "SELECT count(*) FROM captures") == 0
        assert hits(store, catalog, capsys, "w0x") == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    report = json.loads(index(store, catalog, capsys, "--json").out)
    assert report["added"] == [capture_id]
    index(store, catalog, capsys)
    assert _count(catalog, "SELECT count(*) FROM adding") == 0
    clean = str(tmp_path / "clean.sqlite3")
    index(store, clean, capsys)
    assert _rows(catalog) == _rows(clean) and len(_rows(catalog)) == MANY + 1
    assert _count(catalog, "SELECT count(*) FROM texts") == MANY
    assert len(hits(store, catalog, capsys, "w0x")) == 1


V1_CATALOG = """
CREATE TABLE catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE captures (
    id TEXT PRIMARY KEY, created TEXT, title TEXT, seeds TEXT, signer TEXT, sha256 TEXT,
    size BIGINT, job TEXT, operator TEXT, address TEXT, lock TEXT, pages INTEGER, verdict TEXT,
    verified_at TEXT, indexed_at TEXT NOT NULL, missing_since TEXT);
CREATE TABLE pages (
    id INTEGER PRIMARY KEY, capture_id TEXT NOT NULL REFERENCES captures (id), url TEXT NOT NULL, ts TEXT,
    status INTEGER, title TEXT, mime TEXT, digest TEXT, size BIGINT, error TEXT, text BLOB);
CREATE TABLE media (
    capture_id TEXT NOT NULL REFERENCES captures (id), url TEXT NOT NULL, ts TEXT, mime TEXT,
    status INTEGER, digest TEXT, size BIGINT);
CREATE TABLE changes (
    capture_id TEXT NOT NULL REFERENCES captures (id), previous_id TEXT NOT NULL,
    url TEXT NOT NULL, change TEXT NOT NULL);
CREATE VIRTUAL TABLE page_words USING fts5(title, body, content='', tokenize='unicode61 remove_diacritics 2');
"""


def test_catalog_of_the_previous_version_is_rebuilt_with_a_message(searched, tmp_path, capsys):
    store, _, ids = searched
    catalog = tmp_path / "v1.sqlite3"
    with sqlite3.connect(catalog) as db:     # as the previous version (schema 1) left it
        db.executescript(V1_CATALOG)
        db.executemany("INSERT INTO catalog_meta VALUES (?, ?)",
                       [("schema", "1"), ("store", str(store.resolve())), ("created", "2026-01-01T00:00:00Z")])
        db.execute("INSERT INTO captures (id, indexed_at) VALUES (?, '2026-01-01T00:00:00Z')", (ids[0],))
        db.execute("INSERT INTO pages (id, capture_id, url, text) VALUES (1, ?, 'https://old.example/', NULL)", (ids[0],))
        db.execute("INSERT INTO page_words (rowid, title, body) VALUES (1, 'old', 'shelling')")
    result = search(store, catalog, capsys, "shelling")
    assert result.code == 2 and "older version" in result.err and "(schema 1)" in result.err, result
    result = index(store, catalog, capsys)
    assert "older version" in result.err and "rebuilt" in result.err
    found = hits(store, catalog, capsys, "shelling")
    assert len(found) == 3 and "https://old.example/" not in {h["url"] for h in found}
    assert _count(str(catalog), "SELECT count(*) FROM pages WHERE text_id IS NOT NULL") > 0


def test_add_reads_a_capture_s_pages_as_it_adds_them(catalog):
    """Memory stays flat: the pages of a capture are read a batch at a time, each batch
    committed before more are read (a capture of 1,000,000 pages is never held whole)."""
    from archive.catalog.backends import PostgresBackend, SqliteBackend
    from archive.catalog.catalog import PAGE_BATCH, CaptureEntry, Catalog, PageEntry

    backend = PostgresBackend(catalog) if catalog.startswith("postgresql://") else SqliteBackend(Path(catalog))
    opened = Catalog(backend, catalog)
    opened.prepare("bench", write=True)
    behind = []

    def pages():
        for n in range(5 * PAGE_BATCH):
            if n % PAGE_BATCH == 0:     # what is committed when the next batch is read
                behind.append(n - _count(catalog, "SELECT count(*) FROM pages"))
            yield PageEntry(url=f"https://example.org/{n}", title=f"Page {n}", text=f"word{n} shared")

    try:
        assert opened.add(CaptureEntry(id="20260101T000000Z-00000001", created="2026-01-01T00:00:00Z",
                                       title=None, seeds=[], signer=None, sha256=None, size=None, job=None,
                                       operator=None, address=None, pages=pages()))
        assert opened.counts()["pages"] == 5 * PAGE_BATCH
    finally:
        opened.close()
    assert len(behind) == 5 and max(behind) <= 2 * PAGE_BATCH, behind


def test_filtered_search_passes_over_best_texts_whose_pages_fail_the_filter(catalog):
    """The best texts are read a few at a time: when the pages of the 150 best-ranked texts
    all fail the filter, the hits are still the best of those that pass, in rank order,
    as reading every text at once would give."""
    from archive.catalog.backends import PostgresBackend, SqliteBackend
    from archive.catalog.catalog import CaptureEntry, Catalog, PageEntry

    backend = PostgresBackend(catalog) if catalog.startswith("postgresql://") else SqliteBackend(Path(catalog))
    opened = Catalog(backend, catalog)
    opened.prepare("test", write=True)
    # /hidden/ pages say the word often (ranked first), /kept/ pages less and less often
    pages = [PageEntry(url=f"https://example.org/hidden/{n}", title=f"Hidden {n}",
                       text=f"needle {'needle ' * 20} filler{n}") for n in range(150)]
    pages += [PageEntry(url=f"https://example.org/kept/{n:02d}", title=f"Kept {n}",
                        text=f"needle {'other ' * (5 * n)} filler{n}") for n in range(30)]
    try:
        assert opened.add(CaptureEntry(id="20260101T000000Z-00000001", created="2026-01-01T00:00:00Z",
                                       title=None, seeds=[], signer=None, sha256=None, size=None, job=None,
                                       operator=None, address=None, pages=pages))
        found = opened.search("needle", url_prefix="https://example.org/kept/", limit=10)
        everything = opened.search("needle", url_prefix="https://example.org/kept/", limit=30)
    finally:
        opened.close()
    assert len(everything) == 30 and all("/kept/" in h.url for h in everything)
    assert [h.url for h in found] == [h.url for h in everything[:10]]
    if catalog.endswith(".sqlite3"):    # bm25: the shorter the text, the better its one hit
        assert [h.url for h in found] == [f"https://example.org/kept/{n:02d}" for n in range(10)]
