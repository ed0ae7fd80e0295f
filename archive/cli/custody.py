"""`archive custody show [ID]` and `archive custody verify`, and the custody side of
other commands: who the actor is, and what `archive verify` adds (trusted TSA
certificates, tokens kept in the store, the capture's custody history, a 'verified'
entry)."""

from __future__ import annotations

import os

from archive.cli.common import Progress, add_store_arguments, print_json, trusted_keys
from archive.custody.audit import audit_custody
from archive.custody.entry import Actor
from archive.custody.head import parse_head_text
from archive.custody.history import entries_in_chain, summary_of
from archive.custody.ledger import open_ledger
from archive.custody.log import upgrade_to_log
from archive.custody.proof import head_summary, prove_capture
from archive.keys import KEY_ENV, load_signer
from archive.timestamping import PREFIX as TIMESTAMPS_PREFIX
from archive.values import human_bytes, printable
from archive.warc.records import default_operator

def register(sub) -> None:
    parser = sub.add_parser("custody", help="the chain of custody of a store's captures")
    actions = parser.add_subparsers(dest="custody_command", metavar="ACTION")
    actions.required = True

    show = _action(actions, "show", "the custody history of one capture, or of the store", run_show)
    show.add_argument("capture_id", nargs="?", metavar="ID")

    verify = _action(actions, "verify", "check the whole ledger: links, sequence, signatures, "
                     "its Merkle tree and heads", run_verify)
    verify.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                        help="accept only signatures by these public keys (repeatable)")
    verify.add_argument("--anchor", action="append", default=[], metavar="HEAD",
                        help="a head noted earlier (SIZE:ROOT, the `head` a previous run printed; "
                             "or SEQ:sha256:HASH, an entry of a plain hash chain): fail unless the "
                             "ledger still holds it unchanged (repeatable)")
    verify.add_argument("--since", metavar="SIZE:ROOT",
                        help="check only what was appended after this head noted earlier, and that "
                             "the log then was a prefix of the log now (a scheduled check)")
    verify.add_argument("--files", action="store_true",
                        help="also read every stored capture and compare its SHA-256 with the one "
                             "recorded when it was stored (a fixity check: reads the whole store)")
    verify.add_argument("--quiet", action="store_true", help="no progress line")

    upgrade = _action(actions, "upgrade", "make a plain hash-chain ledger a verifiable log (Merkle "
                      "tree and signed heads), recorded in the ledger itself", run_upgrade)
    add_actor_options(upgrade, "sign the head and the 'upgraded' entry with this private key "
                      "(default: $ARCHIVE_KEY)")

    _action(actions, "repair", "set aside the torn last line an interrupted append left, and cover "
            "entries no head covers yet", run_repair)


def _action(actions, name: str, help_text: str, run):
    """A custody action on a store: --store, --endpoint-url and --json, and what it runs."""
    parser = actions.add_parser(name, help=help_text)
    add_store_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)
    return parser


def add_actor_options(parser, key_help: str) -> None:
    parser.add_argument("--operator", help="your name in the custody ledger (default: your user name)")
    parser.add_argument("--key", help=key_help)


def actor_from_args(args, key_from_env: bool) -> Actor:
    """The actor of a command's custody entries; unsigned without a key."""
    key = args.key or (os.environ.get(KEY_ENV) if key_from_env else None)
    signer = load_signer(key) if key else None
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
    from archive.store.address import open_existing_store

    store = open_existing_store(args.store, store_options(args))
    return store, open_ledger(store)


def run_show(args) -> int:
    store, ledger = _ledger_of(args)
    if args.capture_id and ledger.is_log():
        return _show_capture(ledger, args)
    chosen, chain = entries_in_chain(ledger, args.capture_id)
    broken = f"chain: BROKEN at {chain.breaks[0]}" if chain.breaks else None
    held = f"chain: {chain.entries} entries, links and signatures intact" if chain.entries else None
    return _print_entries(ledger, args, chosen, {"chain": chain.to_dict()}, broken, held)


def _show_capture(ledger, args) -> int:
    """One capture's entries out of a log: its own entries and their proofs, not the log."""
    proof = prove_capture(ledger, args.capture_id)
    entries = [r.entry for r in proof.records]
    broken = f"log: BROKEN: {proof.problems[0]}" if proof.problems else None
    held = (f"log: {len(entries)} entries, signatures intact, {proof.proven} proven in the log under "
            f"{head_summary(proof.head, None)}"
            + (f"; {proof.forged[0]}: run `archive custody verify`" if proof.forged else "")) if entries else None
    return _print_entries(ledger, args, entries, {"head": proof.head, "proven": proof.proven,
                                                  "problems": proof.problems, "elsewhere": proof.elsewhere},
                          broken, held)


def _print_entries(ledger, args, entries: list[dict], extra: dict, broken: str | None,
                   held: str | None) -> int:
    """`custody show`'s output: the entries, then what holds of them (or where it breaks)."""
    if args.json:
        print_json({"location": ledger.location, "entries": entries, **extra})
        return 0
    if not entries:
        print(f"no custody entries{' for ' + args.capture_id if args.capture_id else ''} in {ledger.location}")
    for entry in entries:
        print(format_entry(entry))
    if broken:
        print(printable(f"{broken} (run `archive custody verify`)"))
    elif held:
        print(held)
    return 0


def run_verify(args) -> int:
    store, ledger = _ledger_of(args)
    trusted = trusted_keys(args.trust) if args.trust else None
    since = parse_head_text(args.since) if args.since else None
    progress = Progress(not args.quiet and not args.json)
    hashing = Progress(not args.quiet and not args.json, unit="items")
    try:
        report = audit_custody(
            store, ledger, trusted, args.anchor, since, args.files, TIMESTAMPS_PREFIX,
            lambda n: progress.update(f"checking entry {n}"),
            lambda capture_id, done, total: hashing.update(f"hashing {capture_id}", done, total))
    finally:
        progress.done()
        hashing.done()
    if args.json:
        print_json(report.to_dict())
    else:
        _print_verify(report, trusted, since)
    return 0 if report.intact else 1


def _print_verify(report, trusted, since) -> None:
    files = report.files
    what = f"{report.entries} entries appended since {since[0]}:{since[1].hex()}" if since \
        else f"{report.entries} entries"
    if report.intact:
        held = "every link, sequence number and signature holds"
        if report.log:
            held += f", the Merkle tree and {report.log['heads_checked']} signed heads match the entries"
        accounted = "" if since else ", and every capture and token in the store is accounted for"
        print(f"INTACT: {what} in {report.location}, {held}{accounted}"
              + (f"; every capture's bytes hash as recorded when stored ({files['checked']} read, "
                 f"{human_bytes(files['bytes'], exact=True)})" if files else ""))
    else:
        print(f"BROKEN: {report.location} ({what})")
        for problem in [*report.breaks, *report.unaccounted, *(files or {}).get("problems", ())]:
            print(printable(f"  - {problem}"))
    for note in report.notes:
        print(printable(f"  note: {note}"))
    for key, count in sorted(report.signers.items()):
        name = f" ({trusted[key]})" if trusted and key in trusted else ""
        print(f"  signed by {key}{name}: {count} entries")
    if report.unsigned:
        print(f"  unsigned: {report.unsigned} entries (actors without a key; they rest on the store's access control)")
    if report.unprotected and not report.log:
        first, last = report.unprotected[0], report.unprotected[-1]
        span, them = (f"entry {first} is", "it") if first == last else (f"entries {first} to {last} are", "them")
        print(f"  {span} unsigned and after the last signed entry: no signature covers {them}, "
              f"so only an --anchor noted earlier would show a change to {them}")
    if not trusted and report.signers:
        print("  signatures checked against the keys named in the entries; give --trust to require your keys")
    latest = (report.log or {}).get("latest_head")
    if not report.intact:
        return
    if latest:
        who = "unsigned" if not latest["signed"] else f"signed by {latest['key']}"
        print(f"  head: {latest['text']} ({who}; keep it: --anchor or --since checks it later)")
    elif report.log is None and report.head:
        print(f"  head: {report.head['seq']}:{report.head['hash']} (keep it; --anchor checks it later)")
        print("  this ledger is a plain hash chain: `archive custody upgrade` makes it a verifiable log")


def run_upgrade(args) -> int:
    store, ledger = _ledger_of(args)
    result = upgrade_to_log(store, ledger, lambda: actor_from_args(args, key_from_env=True))
    if args.json:
        print_json(result)
    else:
        print(f"upgraded {ledger.location}: {result['entries']} entries under root {result['root']}; "
              f"the upgrade is entry {result['upgraded_entry']}")
    return 0


def run_repair(args) -> int:
    store, ledger = _ledger_of(args)
    done = ledger.repair()
    if args.json:
        print_json({"location": ledger.location, "done": done})
    else:
        for line in done or [f"nothing to repair in {ledger.location}"]:
            print(printable(line))
    return 0


# -- the custody side of `archive verify` ---------------------------------------------

def add_verify_options(parser) -> None:
    parser.add_argument("--trust-tsa", action="append", metavar="CERT",
                        help="TSA root certificate (PEM or DER) whose timestamps you accept (repeatable)")
    parser.add_argument("--no-record", action="store_true",
                        help="do not add a 'verified' entry to the store's custody ledger")
    parser.add_argument("--anchor", metavar="SIZE:ROOT",
                        help="a head of the custody log noted earlier: the log must still hold it "
                             "(a consistency proof)")
    add_actor_options(parser, "sign the 'verified' custody entry with this private key")
