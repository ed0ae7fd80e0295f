"""`archive ls` and `archive show ID`: what a store holds (folder or s3://)."""

from __future__ import annotations

import sys
import zipfile
from dataclasses import asdict

from archive.catalog.listing import catalog_capture, catalog_rows
from archive.cli.common import add_store_arguments, at_least, human_bytes, print_json, print_table, store_address
from archive.custody.entry import STORED
from archive.custody.ledger import open_ledger
from archive.cli.store import store_options
from archive.errors import ArchiveError
from archive.store.address import open_existing_store
from archive.store.base import StoredCapture
from archive.store.s3 import is_s3_address, parse_s3_object
from archive.values import printable
from archive.wacz.zipreader import open_zip
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, DATAPACKAGE

def register(sub) -> None:
    ls = sub.add_parser("ls", help="list the captures in a store")
    add_store_arguments(ls, positional=True)
    ls.add_argument("--newest", type=at_least(1), metavar="N",
                    help="only the N newest captures (reads only the newest date folders)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    add_catalog_options(ls)
    ls.set_defaults(run=run_ls)

    show = sub.add_parser("show", help="describe one stored capture")
    show.add_argument("capture_id", metavar="ID", help="a capture id, or s3://bucket/prefix/ID")
    add_store_arguments(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    add_catalog_options(show)
    show.set_defaults(run=run_show)


def add_catalog_options(parser) -> None:
    parser.add_argument("--catalog", metavar="URL-or-FILE",
                        help="read this catalog (default: $ARCHIVE_CATALOG, else the store's own, when there is one)")
    parser.add_argument("--no-catalog", action="store_true", help="read the store itself, not its catalog")


def describe(store, capture_id: str) -> dict:
    """What a capture says about itself (unverified claims: run `archive verify`).

    Reads only datapackage.json and evidence/capture.json (ranged reads on S3)."""
    with store.open_capture(capture_id) as fh:
        try:
            zf = open_zip(fh)
        except (zipfile.BadZipFile, ValueError):   # ValueError: shorter than a zip end record
            raise ArchiveError(f"{capture_id}: not a WACZ (zip) file") from None
        try:
            with zf:
                claims = read_claims(zf, required=(DATAPACKAGE,), optional=(CAPTURE,))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ArchiveError(f"{capture_id}: cannot read its description ({exc})") from None
    return claims.description()


def summary(stored: StoredCapture) -> dict:
    row = {"id": stored.capture_id, **asdict(stored)}
    del row["capture_id"]
    row["seeds"] = list(stored.seeds) if stored.seeds is not None else None
    return row


def _row(store, stored: StoredCapture) -> dict:
    row = summary(stored)
    if stored.seeds is None:     # a store without metadata: read the claims from the file
        try:
            # by address: the object listed, whatever id its metadata claims
            claims = describe(store, stored.address)
        except ArchiveError as exc:
            # one damaged or foreign file must not hide the rest of the store
            row["problem"] = str(exc)
            return row
        row.update({k: claims[k] for k in ("created", "seeds", "signer")})
    return row


def _open(args):
    return open_existing_store(store_address(args), store_options(args))


def recorded_digests(store, capture_ids: list[str]) -> dict[str, str]:
    """capture id -> SHA-256 its first custody `stored` entry recorded: a folder store keeps
    no metadata beside a capture, and `capture` printed that hash (an unreadable ledger gives
    none; `custody verify` says why). A verifiable log is read for these captures' own entries
    only; a plain chain, whole. Object storage keeps the hash in each object's metadata,
    and its ledger is an object per entry: not read for this."""
    if getattr(store, "root", None) is None or not capture_ids:
        return {}
    try:
        ledger = open_ledger(store)
        if ledger.is_log():
            records = (ledger.entry_at(seq) for c in capture_ids for seq in ledger.seqs_of(c))
        else:
            records = ledger.iter_records()
        found: dict[str, str] = {}
        for record in records:
            entry = record.entry if record else None
            if (entry and entry.get("event") == STORED and isinstance(entry.get("capture"), str)
                    and isinstance(entry.get("wacz"), str)):
                found.setdefault(entry["capture"], entry["wacz"])
        return found
    except (ArchiveError, OSError, ValueError):
        return {}


def _seeds_column(row: dict) -> str:
    seeds = " ".join(row.get("seeds") or [])
    if row.get("problem"):
        return f"UNREADABLE: {row['problem']}"
    if row.get("warning") and "delete marker" in row["warning"]:
        return f"HIDDEN: {row['warning']}  {seeds}"
    return seeds


def run_ls(args) -> int:
    store = _open(args)
    rows, warnings = (None, []) if args.no_catalog else catalog_rows(store, args.catalog)
    for warning in warnings:
        print(printable(f"archive: warning: {warning}"), file=sys.stderr)
    if rows is None:
        rows = [_row(store, c) for c in store.list_captures(args.newest)]
    elif args.newest:
        rows = sorted(rows, key=lambda row: row["id"])[-args.newest:]   # ids sort by time
    missing = [row["id"] for row in rows if row.get("sha256") is None]
    if missing:
        recorded = recorded_digests(store, missing)
        for row in rows:
            row["sha256"] = row.get("sha256") or recorded.get(row["id"])
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no captures in {store.address}")
        return 0
    # what a capture says (seeds, titles) is the web's text: print_table shows it inert
    print_table(["CAPTURE", "CREATED", "SIZE", "SHA-256", "SIGNER", "SEEDS"], [
        [row["id"], row.get("created") or "-", human_bytes(row["size"]), row.get("sha256") or "-",
         (row.get("signer") or "UNSIGNED")[:16],
         _seeds_column(row)]
        for row in rows], right=("SIZE",), folded=("SHA-256", "SEEDS"))
    return 0


def run_show(args) -> int:
    if is_s3_address(args.capture_id) and not args.store:
        args.store = parse_s3_object(args.capture_id)[0].address
    store = _open(args)
    info = summary(store.stat_capture(args.capture_id))
    catalogued, warnings = (None, []) if args.no_catalog else catalog_capture(store, info["id"], args.catalog)
    for warning in warnings:
        print(printable(f"archive: warning: {warning}"), file=sys.stderr)
    # what the capture says of itself (one capture: read it), and what only the catalog
    # knows (its job, the last verification's verdict)
    claims = describe(store, args.capture_id)
    if catalogued:
        claims.update({k: catalogued[k] for k in ("job", "pages", "verdict", "verified_at") if catalogued.get(k) is not None})
    for key, value in claims.items():
        if info.get(key) in (None, [], ()):
            info[key] = value
        elif value is not None and key in ("seeds", "signer", "created") and info[key] != value:
            info[f"{key} (in the file)"] = value   # the store's record and the file disagree
    if info.get("sha256") is None:
        info["sha256"] = recorded_digests(store, [args.capture_id]).get(args.capture_id)
    if args.json:
        print_json(info)
    else:
        print_table(["FIELD", "VALUE"], [[key, shown(value)] for key, value in info.items()],
                    folded=("VALUE",))
        print("(claims as recorded; `archive verify` checks them)")
    return 0


def shown(value) -> str:
    """A value for people: lists joined, `{'pages': 3}` as `pages 3, ...`, None as -."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {shown(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple)):
        return " ".join(map(shown, value)) or "-"
    return str(value)
