#!/usr/bin/env python3
"""Catalog indexing and search speed against ripgrep over the same text, in the same run.

Generates N pages of text (several captures of a generated site: each capture holds the
site's pages, a few of them edited since the last; English, Arabic with and without
harakat, Russian), adds them to a catalog with each backend (SQLite FTS5; PostgreSQL, a
throwaway cluster started here as the tests do, when its binaries are installed), runs
100 queries (words, phrases, prefixes, Arabic) through the catalog's search (ranked, 20
results, snippets) and, as ArchiveBox searches by default, `rg --files-with-matches
--ignore-case --fixed-strings` over the same text written as one file per page. Prints
pages/s indexed, query latency p50 and p95, their ratios, and the catalog's size against
the text's.

What is timed for indexing is the catalog's own work (folding, word index, rows), not
reading WACZ files or extracting HTML: `archive index` adds that per capture.

    scripts/bench_search.py                     # 100,000 pages
    scripts/bench_search.py --pages 2000        # a quick run
    scripts/bench_search.py --no-postgres
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.catalog.backends import PostgresBackend, SqliteBackend  # noqa: E402
from archive.catalog.catalog import CaptureEntry, Catalog, PageEntry  # noqa: E402

HARAKAT = "\u064e\u064f\u0650\u0652"
PAGES_PER_CAPTURE = 1000
WORDS_PER_PAGE = 220
VOCABULARY = 40_000     # words of each language, used with Zipf's law as in real text


def vocabulary(rng: random.Random, letters: str, size: int) -> list[str]:
    """`size` distinct made-up words of 2 to 10 letters, the short ones first (the common ones)."""
    found: dict[str, None] = {}
    while len(found) < size:
        length = min(10, 2 + int(rng.expovariate(1 / (1 + 3 * len(found) / size))))
        found.setdefault("".join(rng.choice(letters) for _ in range(length)))
    return list(found)


_RNG = random.Random(3)
ENGLISH = vocabulary(_RNG, "etaoinshrdlcumwfgypbvk", VOCABULARY)
ARABIC = vocabulary(_RNG, "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", VOCABULARY // 4)
RUSSIAN = vocabulary(_RNG, "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё", VOCABULARY // 4)
_ZIPF: dict[int, list[float]] = {}


def zipf(rng: random.Random, words: list[str]) -> str:
    weights = _ZIPF.get(len(words))
    if weights is None:
        total, weights = 0.0, []
        for rank in range(1, len(words) + 1):
            total += 1 / rank
            weights.append(total)
        _ZIPF[len(words)] = weights
    return rng.choices(words, cum_weights=weights)[0]


def vowelled(word: str, rng: random.Random) -> str:
    return "".join(c + (rng.choice(HARAKAT) if rng.random() < 0.5 else "") for c in word)


def page_text(rng: random.Random, serial: int) -> str:
    words = []
    for _ in range(WORDS_PER_PAGE):
        r = rng.random()
        if r < 0.12:
            word = zipf(rng, ARABIC)
            words.append(vowelled(word, rng) if rng.random() < 0.3 else word)
        elif r < 0.18:
            words.append(zipf(rng, RUSSIAN))
        else:
            words.append(zipf(rng, ENGLISH))
    words.append(f"case{serial}")      # a word found on one page only
    return " ".join(words)


def generate(pages: int, edited: float = 0.05, seed: int = 7) -> list[CaptureEntry]:
    """Captures of a site of PAGES_PER_CAPTURE pages, `edited` of them edited between captures."""
    rng = random.Random(seed)
    site = [page_text(rng, n) for n in range(min(pages, PAGES_PER_CAPTURE))]
    captures, made = [], 0
    for c in range(0, (pages + PAGES_PER_CAPTURE - 1) // PAGES_PER_CAPTURE):
        for n in rng.sample(range(len(site)), round(len(site) * edited) if c else 0):
            site[n] = page_text(rng, made + n)
        count = min(len(site), pages - made)
        capture_id = f"2026{1 + c // 28 % 12:02d}{1 + c % 28:02d}T120000Z-{c:08x}"
        created = f"{capture_id[:4]}-{capture_id[4:6]}-{capture_id[6:8]}T12:00:00Z"
        captures.append(CaptureEntry(
            id=capture_id, created=created, title=f"Capture {c}", seeds=["https://example.org/"],
            signer=None, sha256="0" * 64, size=1, job="bench", operator="bench", address=capture_id,
            pages=[PageEntry(url=f"https://example.org/p/{n}.html", ts=created, status=200, title=f"Page {n}",
                             mime="text/html", digest=f"sha256:{hash(site[n]) & (2**64 - 1):x}", size=len(site[n]),
                             text=site[n]) for n in range(count)]))
        made += count
    return captures


def queries(rng: random.Random, captures: list[CaptureEntry]) -> list[str]:
    """100 queries: words, phrases taken from pages, prefixes, Arabic with and without harakat, Russian."""
    out = []
    texts = [p.text for c in captures[:3] for p in c.pages]
    for n in range(100):
        kind = n % 5
        if kind == 0:
            out.append(rng.choice(ENGLISH[50:5000]))
        elif kind == 1:
            words = rng.choice(texts).split()
            start = rng.randrange(len(words) - 3)
            out.append('"' + " ".join(words[start:start + 3]) + '"')
        elif kind == 2:
            out.append(f"case{rng.randrange(len(texts))}")
        elif kind == 3:
            word = rng.choice(ARABIC[20:2000])
            out.append(vowelled(word, rng) if n % 2 else word)
        else:
            out.append(rng.choice(RUSSIAN[20:2000]))
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def bench_catalog(name: str, catalog: Catalog, captures: list[CaptureEntry], qs: list[str]) -> dict:
    catalog.prepare("bench", write=True)
    pages = sum(len(c.pages) for c in captures)
    progress = sys.stderr.isatty()     # a progress line on a terminal only, never in a log
    started, cpu_started = time.perf_counter(), time.process_time()
    for n, capture in enumerate(captures, 1):
        catalog.add(capture)
        if n == len(captures):
            catalog.compact()       # as `archive index` does after adding most of a catalog
        if progress:
            print(f"\r  {name}: indexed {n * PAGES_PER_CAPTURE if n < len(captures) else pages} pages",
                  end="", file=sys.stderr, flush=True)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if progress:
        print(file=sys.stderr)
    latencies, cpu = [], []
    for query in qs:
        t, c = time.perf_counter(), time.process_time()
        catalog.search(query, limit=20)
        latencies.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"pages_per_s": pages / seconds, "index_s": seconds, "cpu_pages_per_s": pages / cpu_seconds,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "cpu_p50": percentile(cpu, 50), "cpu_p95": percentile(cpu, 95)}


def bench_ripgrep(captures: list[CaptureEntry], qs: list[str], folder: Path) -> dict:
    for capture in captures:
        out = folder / capture.id
        out.mkdir(parents=True)
        for n, page in enumerate(capture.pages):
            (out / f"{n}.txt").write_text(page.text, encoding="utf-8")
    latencies, cpu = [], []
    for query in qs:
        t = time.perf_counter()
        process = subprocess.Popen(["rg", "--files-with-matches", "--ignore-case", "--fixed-strings", "--",
                                    query.strip('"'), str(folder)], stdout=subprocess.DEVNULL)
        _, _, usage = os.wait4(process.pid, 0)
        latencies.append(time.perf_counter() - t)
        cpu.append(usage.ru_utime + usage.ru_stime)
    return {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "cpu_p50": percentile(cpu, 50), "cpu_p95": percentile(cpu, 95)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite and ripgrep only")
    parser.add_argument("--edited", type=float, default=0.05,
                        help="share of the site's pages edited between two captures (1: every page's text "
                             "differs, nothing is kept once for several pages; default 0.05)")
    parser.add_argument("--size-of", metavar="GLOB",
                        help="also the SQLite catalog's size against real text: these files as pages "
                             "(e.g. '/usr/share/doc/*/copyright')")
    args = parser.parse_args()
    if shutil.which("rg") is None:
        raise SystemExit("ripgrep (rg) is needed: apt-get install ripgrep")
    captures = generate(args.pages, args.edited)
    qs = queries(random.Random(11), captures)
    text_bytes = sum(len(p.text.encode("utf-8")) + len((p.title or "").encode("utf-8"))
                     for c in captures for p in c.pages)
    distinct_bytes = sum(len(t.encode("utf-8")) + len(title.encode("utf-8"))
                         for title, t in {(p.title or "", p.text) for c in captures for p in c.pages})
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        tmp = Path(tmp)
        lite = Catalog(SqliteBackend(tmp / "catalog.sqlite3"), "sqlite")
        results["sqlite"] = bench_catalog("sqlite", lite, captures, qs)
        lite.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        lite.close()
        results["sqlite"]["bytes"] = sum(f.stat().st_size for f in tmp.glob("catalog.sqlite3*"))
        cluster = None
        if not args.no_postgres:
            from tests.pgserver import PgCluster, pg_bin
            if pg_bin() is not None:
                cluster = PgCluster()
                try:
                    pg = Catalog(PostgresBackend(cluster.database()), "postgresql")
                    results["postgresql"] = bench_catalog("postgresql", pg, captures, qs)
                    results["postgresql"]["bytes"] = pg.db.execute("SELECT pg_database_size(current_database())")[0][0]
                    pg.close()
                finally:
                    cluster.stop()
        results["ripgrep"] = bench_ripgrep(captures, qs, tmp / "text")
    pages = sum(len(c.pages) for c in captures)
    rg = results["ripgrep"]
    print(f"{pages} pages in {len(captures)} captures ({args.edited:.0%} of the pages edited between two), "
          f"{text_bytes / 1e6:.1f} MB of text ({distinct_bytes / 1e6:.1f} MB distinct: a text several pages hold "
          f"counted once), {len(qs)} queries")
    print("query latency: wall clock, and CPU time (of this process, or of rg; PostgreSQL's own CPU not counted)")
    print(f"{'':<11} {'pages/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'rg/ours p95':>12} "
          f"{'cpu p50':>9} {'cpu p95':>9} {'rg/ours':>8} {'size/text':>10}")
    for name, r in results.items():
        if name == "ripgrep":
            print(f"{name:<11} {'-':>9} {r['p50'] * 1e3:9.1f} {r['p95'] * 1e3:9.1f} {'-':>12} "
                  f"{r['cpu_p50'] * 1e3:9.1f} {r['cpu_p95'] * 1e3:9.1f} {'-':>8} {'-':>10}")
        else:
            print(f"{name:<11} {r['pages_per_s']:9.0f} {r['p50'] * 1e3:9.1f} {r['p95'] * 1e3:9.1f} "
                  f"{rg['p95'] / r['p95']:11.0f}x {r['cpu_p50'] * 1e3:9.1f} {r['cpu_p95'] * 1e3:9.1f} "
                  f"{rg['cpu_p95'] / max(r['cpu_p95'], 1e-6):7.0f}x {r['bytes'] / text_bytes:9.2f}x")
    for name in ("sqlite", "postgresql"):
        if name in results:
            print(f"{name}: {results[name]['cpu_pages_per_s']:.0f} pages per CPU second of this process "
                  "(SQLite's work included; PostgreSQL's server not)")
    for name in ("sqlite", "postgresql"):
        if name in results:
            print(f"{name}: catalog {results[name]['bytes'] / 1e6:.1f} MB = {results[name]['bytes'] / text_bytes:.2f}x "
                  f"the text, {results[name]['bytes'] / distinct_bytes:.2f}x the distinct text")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("goals: SQLite >= 1000 pages/s; p95 >= 50x faster than ripgrep; catalog <= 1.5x the text")
    if args.size_of:
        print(real_text_size(args.size_of))
    return 0


def real_text_size(pattern: str) -> str:
    """The SQLite catalog's size against the text it holds, for real files as pages (the
    generated text is made-up words drawn at random: it compresses and indexes worse)."""
    import glob
    texts = [Path(f).read_text(encoding="utf-8", errors="replace") for f in sorted(glob.glob(pattern))]
    total = sum(len(t.encode("utf-8")) for t in texts)
    if not total:
        return f"no text in {pattern}"
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        catalog = Catalog(SqliteBackend(Path(tmp) / "c.sqlite3"), "sqlite")
        catalog.prepare("bench", write=True)
        catalog.add(CaptureEntry(
            id="20260101T000000Z-00000000", created="2026-01-01T00:00:00Z", title="real text", seeds=[],
            signer=None, sha256=None, size=None, job=None, operator=None, address=None,
            pages=[PageEntry(url=f"file:{n}", title=f"file {n}", digest="sha256:" + "0" * 64, text=t)
                   for n, t in enumerate(texts)]))
        catalog.compact()
        catalog.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        catalog.close()
        size = sum(f.stat().st_size for f in Path(tmp).glob("c.sqlite3*"))
    return f"real text ({len(texts)} files of {pattern}, {total / 1e6:.1f} MB): SQLite catalog {size / total:.2f}x the text"


if __name__ == "__main__":
    sys.exit(main())
