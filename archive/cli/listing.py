"""`archive ls` and `archive show ID`: what a store holds."""

from __future__ import annotations

import json
import zipfile

from archive.cli.common import human_bytes, print_json
from archive.errors import ArchiveError
from archive.store.address import open_store


def register(sub) -> None:
    ls = sub.add_parser("ls", help="list the captures in a store")
    ls.add_argument("--store", help="folder or s3://bucket/prefix (default: ./archive-store)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=run_ls)

    show = sub.add_parser("show", help="describe one stored capture")
    show.add_argument("capture_id", metavar="ID")
    show.add_argument("--store", help="folder or s3://bucket/prefix (default: ./archive-store)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)


def describe(store, capture_id: str) -> dict:
    """What a capture says about itself (unverified claims: run `archive verify`)."""
    with store.open_capture(capture_id) as fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                datapackage = json.loads(zf.read("datapackage.json"))
                evidence = json.loads(zf.read("evidence/capture.json")) if "evidence/capture.json" in zf.namelist() else {}
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ArchiveError(f"{capture_id}: cannot read its description ({exc})") from None
    return {
        "id": capture_id,
        "created": datapackage.get("created"),
        "title": datapackage.get("title"),
        "seeds": evidence.get("seeds"),
        "operator": evidence.get("operator"),
        "signer": evidence.get("signer"),
        "stats": evidence.get("stats"),
    }


def run_ls(args) -> int:
    store = open_store(args.store)
    rows = [dict(describe(store, c.capture_id), address=c.address, size=c.size)
            for c in store.list_captures()]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        seeds = " ".join(row.get("seeds") or [])
        print(f"{row['id']}  {human_bytes(row['size']):>9}  {(row['signer'] or 'UNSIGNED')[:16]}  {seeds}")
    if not rows:
        print(f"no captures in {store.address}")
    return 0


def run_show(args) -> int:
    store = open_store(args.store)
    info = describe(store, args.capture_id)
    if args.json:
        print_json(info)
    else:
        for key, value in info.items():
            print(f"{key:<9} {value}")
    return 0
