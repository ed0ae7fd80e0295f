"""`archive index` (build or update a store's catalog) and `archive search QUERY`."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict

from archive.catalog.catalog import Hit
from archive.catalog.indexer import held_captures, index_store
from archive.catalog.locate import CATALOG_ENV, open_catalog
from archive.cli.common import Progress, add_store_arguments, print_json, store_address
from archive.cli.store import store_options
from archive.errors import ArchiveError
from archive.store.address import open_store
from archive.values import printable

CATALOG_HELP = (f"postgresql://... for a shared catalog, or an SQLite file (default: ${CATALOG_ENV}, else "
                "catalog.sqlite3 in a folder store, or the user's cache folder for an s3:// store)")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?")


def add_catalog_option(parser) -> None:
    parser.add_argument("--catalog", metavar="URL-or-FILE", help=CATALOG_HELP)


def _time(end: bool):
    def parse(text: str) -> str:
        if not DATE.fullmatch(text):
            raise argparse.ArgumentTypeError(f"not a date or UTC time like 2026-11-25 or 2026-11-25T16:07:46Z: {text!r}")
        if "T" not in text:
            text += "T23:59:59Z" if end else "T00:00:00Z"
        elif text.count(":") == 1:
            text = text.rstrip("Z") + (":59Z" if end else ":00Z")
        return text if text.endswith("Z") else text + "Z"
    return parse


def register(sub) -> None:
    p = sub.add_parser("index", help="build or update the catalog of a store (for search, ls and show)")
    add_store_arguments(p, positional=True)
    add_catalog_option(p)
    p.add_argument("--rebuild", action="store_true", help="empty the catalog and read every capture again")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run_index)

    s = sub.add_parser("search", help="search the text of every captured page")
    s.add_argument("query", metavar="QUERY",
                   help='words (all must be there), "a phrase", prefix*, OR, NOT or -word, (groups)')
    add_store_arguments(s)
    add_catalog_option(s)
    s.add_argument("--url", metavar="PREFIX", help="only pages whose URL starts with this (with --history: this URL)")
    s.add_argument("--since", type=_time(False), metavar="DATE", help="only captures made on or after this (UTC)")
    s.add_argument("--until", type=_time(True), metavar="DATE", help="only captures made on or before this (UTC)")
    s.add_argument("--job", help="only captures made by this job")
    s.add_argument("--limit", type=int, default=20, help="most results shown (default 20)")
    s.add_argument("--history", action="store_true",
                   help="every capture of --url in time order, and whether the query is found there")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=run_search)


def run_index(args) -> int:
    store = open_store(store_address(args), store_options(args))
    catalog, message = open_catalog(store, args.catalog, write=True, fresh=args.rebuild)
    if message:
        print(f"archive: {message}", file=sys.stderr)
    progress = Progress(not args.quiet and not args.json)
    try:
        report = index_store(store, catalog, args.rebuild,
                             lambda n, total, cid: progress.update(f"indexing {n} of {total}  {cid}"))
    finally:
        progress.done()
        catalog.close()
    report.message = message
    if args.json:
        print_json(asdict(report))
    else:
        print(f"catalog  {report.catalog}")
        print(f"added    {len(report.added)} captures, {report.pages} pages"
              + (f" ({report.already} already there)" if report.already else ""))
        for capture_id in report.missing:
            print(f"missing  {capture_id}: in the catalog, no longer in the store (deleted by hand?); "
                  "not shown by search, ls or show")
        for capture_id in report.returned:
            print(f"back     {capture_id}: in the store again")
    for problem in report.problems:
        print(printable(f"archive: warning: not indexed: {problem}"), file=sys.stderr)
    return 1 if report.problems else 0


def _marked(hit: Hit, tty: bool) -> str:
    """The snippet with each hit marked (bold on a terminal, [brackets] otherwise)."""
    start, end = ("\033[1m", "\033[0m") if tty else ("[", "]")
    out, pos = [], 0
    for a, b in hit.marks:
        out += [printable(hit.snippet[pos:a]), start + printable(hit.snippet[a:b]) + end]
        pos = b
    out.append(printable(hit.snippet[pos:]))
    return "".join(out)


def run_search(args) -> int:
    if args.history and not args.url:
        raise ArchiveError("--history needs --url URL: the page whose history is asked for")
    store = open_store(args.store, store_options(args))
    catalog, _ = open_catalog(store, args.catalog)
    try:
        if args.history:
            return _history(args, store, catalog)
        hits = catalog.search(args.query, url_prefix=args.url, since=args.since, until=args.until,
                              job=args.job, limit=args.limit)
    finally:
        catalog.close()
    gone = set(held_captures(store, {h.capture_id for h in hits}, missing=True))
    hits = [h for h in hits if h.capture_id not in gone]
    _warn_gone(gone, store)
    if args.json:
        print_json([asdict(h) for h in hits])
        return 0
    tty = sys.stdout.isatty()
    for hit in hits:
        print(printable(f"{hit.capture_id}  {hit.time or '-'}  {hit.url}"))
        if hit.title:
            print(printable(f"    {hit.title}"))
        print(f"    {_marked(hit, tty)}")
    if not hits:
        print("no pages found")
    return 0


def _warn_gone(gone: set[str], store) -> None:
    for capture_id in sorted(gone):
        print(f"archive: warning: {capture_id} is in the catalog but not in the store {store.address} "
              "(deleted by hand?): not shown; `archive index` records that", file=sys.stderr)


def _history(args, store, catalog) -> int:
    rows = catalog.history(args.query, args.url)
    gone = set(held_captures(store, {r["capture_id"] for r in rows}, missing=True))
    rows = [r for r in rows if r["capture_id"] not in gone]
    _warn_gone(gone, store)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(printable(f"no capture of {args.url} in the catalog"))
        return 0
    before = None
    for row in rows:
        state = "present" if row["present"] else "absent"
        if not row["present"] and not row["has_text"]:
            state += f" (no text: {row['error'] or 'HTTP ' + str(row['status'])})" if row["error"] or row["status"] else " (no text)"
        change = "" if before is None or before == row["present"] else ("  <- appeared" if row["present"] else "  <- removed")
        before = row["present"]
        print(printable(f"{row['time'] or '-':<20}  {row['capture_id']}  {state}{change}"))
    return 0
