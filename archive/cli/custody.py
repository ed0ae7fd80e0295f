"""`archive custody show [ID]` and `archive custody verify`, and the custody side of
other commands: who the actor is, and what `archive verify` adds (trusted TSA
certificates, tokens kept in the store, the capture's custody history, a 'verified'
entry)."""

from __future__ import annotations

import os
from pathlib import Path

from archive.cli.common import Progress, print_json, trusted_keys
from archive.custody.chain import (
    anchor_breaks, check_chain, fixity_problem, stored_digests, unaccounted,
)
from archive.custody.entry import Actor
from archive.custody.history import summary_of
from archive.custody.ledger import open_ledger
from archive.errors import ArchiveError
from archive.hashing import stream_sha256
from archive.timestamping import PREFIX as TIMESTAMPS_PREFIX
from archive.values import human_bytes, printable
from archive.warc.records import default_operator

STORE_HELP = "folder or s3://bucket/prefix (default: ./archive-store)"


def register(sub) -> None:
    from archive.cli.store import add_endpoint_option   # not loaded by `archive verify FILE`

    parser = sub.add_parser("custody", help="the chain of custody of a store's captures")
    actions = parser.add_subparsers(dest="custody_command", metavar="ACTION")
    actions.required = True

    show = actions.add_parser("show", help="the custody history of one capture, or of the store")
    show.add_argument("capture_id", nargs="?", metavar="ID")
    show.add_argument("--store", help=STORE_HELP)
    add_endpoint_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)

    verify = actions.add_parser("verify", help="check the whole ledger: links, sequence, signatures")
    verify.add_argument("--store", help=STORE_HELP)
    add_endpoint_option(verify)
    verify.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                        help="accept only signatures by these public keys (repeatable)")
    verify.add_argument("--anchor", action="append", default=[], metavar="SEQ:HASH",
                        help="an entry noted earlier (the `head` a previous run printed): "
                             "fail unless the ledger still holds it unchanged (repeatable)")
    verify.add_argument("--files", action="store_true",
                        help="also read every stored capture and compare its SHA-256 with the one "
                             "recorded when it was stored (a fixity check: reads the whole store)")
    verify.add_argument("--quiet", action="store_true", help="no progress line")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    verify.set_defaults(run=run_verify)


def add_actor_options(parser, key_help: str) -> None:
    parser.add_argument("--operator", help="your name in the custody ledger (default: your user name)")
    parser.add_argument("--key", help=key_help)


def actor_from_args(args, key_from_env: bool) -> Actor:
    """The actor of a command's custody entries; unsigned without a key."""
    from archive.cli.capture import KEY_ENV, load_signer   # capture's key loading, one place
    key = args.key or (os.environ.get(KEY_ENV) if key_from_env else None)
    signer = load_signer(key, unsigned=False) if key else None
    return Actor(args.operator or default_operator(), signer)


def _short(value: str | None, n: int = 12) -> str:
    return (value[:n] + "…") if value and len(value) > n else (value or "-")


def format_entry(entry: dict) -> str:
    s = summary_of(entry)
    who = f"{s['actor']} ({'key ' + _short(s['key']) if s['signed'] else 'UNSIGNED'})"
    details = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                       for k, v in (s["details"] or {}).items() if not isinstance(v, dict))
    # anyone able to write to the store can append an entry: shown as one plain line
    capture = entry.get("capture") if isinstance(entry.get("capture"), str) else "-"
    return printable(f"{_or(s['seq'], '?'):>6}  {s['time']}  {_or(s['event'], '?'):<17} {capture:<26} "
                     f"{who}  wacz {_short(s['wacz'])}  {details}".rstrip())


def _or(value, default):
    return default if value is None else value


def _ledger_of(args):
    """The store and ledger custody commands read; a local store must exist (a mistyped
    folder would otherwise show an empty ledger, and `custody verify` call it INTACT)."""
    # not loaded by `archive verify FILE`
    from archive.cli.store import store_options
    from archive.store.address import open_store

    store = open_store(args.store, store_options(args))
    root = getattr(store, "root", None)
    if isinstance(root, Path) and not root.is_dir():
        raise ArchiveError(f"no store at {root}" if not root.exists() else f"{root} is not a store folder")
    return store, open_ledger(store)


def run_show(args) -> int:
    store, ledger = _ledger_of(args)
    records = ledger.records()
    chosen = [r.entry for r in records if r.entry and
              (args.capture_id is None or r.entry.get("capture") == args.capture_id)]
    chain = check_chain(records, ledger.location)
    if args.json:
        print_json({"location": ledger.location, "entries": chosen, "chain": chain.to_dict()})
        return 0
    if not chosen:
        print(f"no custody entries{' for ' + args.capture_id if args.capture_id else ''} in {ledger.location}")
    for entry in chosen:
        print(format_entry(entry))
    if chain.breaks:
        print(printable(f"chain: BROKEN at {chain.breaks[0]} (run `archive custody verify`)"))
    elif records:
        print(f"chain: {len(records)} entries, links and signatures intact")
    return 0


def anchor(text: str) -> tuple[int, str]:
    seq, _, value = text.partition(":")
    if not seq.isdigit() or not value.startswith("sha256:"):
        raise ArchiveError(f"not an anchor: {text!r} (give SEQ:sha256:HEX, as `head` prints it)")
    return int(seq), value


def run_verify(args) -> int:
    store, ledger = _ledger_of(args)
    trusted = trusted_keys(args.trust) if args.trust else None
    records = ledger.records()
    report = check_chain(records, ledger.location, trusted)
    captures = [c.capture_id for c in store.list_captures()]
    tokens = list(store.list_objects(TIMESTAMPS_PREFIX))
    report.unaccounted = unaccounted(records, captures, tokens)
    report.breaks += anchor_breaks(records, [anchor(a) for a in args.anchor])
    if args.files:
        report.files = _fixity(store, captures, stored_digests(records),
                               Progress(not args.quiet and not args.json))
    if args.json:
        print_json(report.to_dict())
        return 0 if report.intact else 1
    files = report.files
    if report.intact:
        print(f"INTACT: {report.entries} entries in {report.location}, every link, sequence number "
              "and signature holds, and every capture and token in the store is accounted for"
              + (f"; every capture's bytes hash as recorded when stored ({files['checked']} read, "
                 f"{human_bytes(files['bytes'], exact=True)})" if files else ""))
    else:
        print(f"BROKEN: {report.location} ({report.entries} entries)")
        for problem in [*report.breaks, *report.unaccounted, *(files or {}).get("problems", ())]:
            print(printable(f"  - {problem}"))
    for key, count in sorted(report.signers.items()):
        name = f" ({trusted[key]})" if trusted and key in trusted else ""
        print(f"  signed by {key}{name}: {count} entries")
    if report.unsigned:
        print(f"  unsigned: {report.unsigned} entries (actors without a key; they rest on the store's access control)")
    if report.unprotected:
        first, last = report.unprotected[0], report.unprotected[-1]
        span, them = (f"entry {first} is", "it") if first == last else (f"entries {first} to {last} are", "them")
        print(f"  {span} unsigned and after the last signed entry: no signature covers {them}, "
              f"so only an --anchor noted earlier would show a change to {them}")
    if not trusted and report.signers:
        print("  signatures checked against the keys named in the entries; give --trust to require your keys")
    if report.head:
        print(f"  head: {report.head['seq']}:{report.head['hash']} (keep it; --anchor checks it later)")
    return 0 if report.intact else 1


def _fixity(store, captures: list[str], recorded: dict[str, str], progress: Progress) -> dict:
    """Every stored capture read and hashed against the SHA-256 its 'stored' entry holds."""
    checked, total, problems = 0, 0, []
    for number, capture_id in enumerate(captures, 1):
        progress.update(f"hashing capture {number} of {len(captures)}: {capture_id}")
        try:
            with store.open_capture(capture_id) as fh:
                sha, size = stream_sha256(fh)
        except (ArchiveError, OSError) as exc:
            problems.append(f"capture {capture_id} could not be read: {exc}")
            continue
        checked, total = checked + 1, total + size
        problem = fixity_problem(capture_id, recorded.get(capture_id), sha)
        if problem:
            problems.append(problem)
    progress.done()
    return {"checked": checked, "bytes": total, "problems": problems}


# -- the custody side of `archive verify` ---------------------------------------------

def add_verify_options(parser) -> None:
    parser.add_argument("--trust-tsa", action="append", metavar="CERT",
                        help="TSA root certificate (PEM or DER) whose timestamps you accept (repeatable)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not add a 'verified' entry to the store's custody ledger")
    add_actor_options(parser, "sign the 'verified' custody entry with this private key")
