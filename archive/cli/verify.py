"""`archive verify PATH`: exit 0 verified, 1 not verified, 2 could not check."""

from __future__ import annotations

import sys

from archive.cli import custody
from archive.cli.common import trusted_keys
from archive.errors import ArchiveError
from archive.verify.checks import CannotCheck, verify_path
from archive.verify.report import render_json, render_text


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a capture's integrity, signature and index")
    p.add_argument("target", metavar="PATH", help="a WACZ file")
    p.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                   help="public key (or folder of keys) whose signatures you accept (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept an unsigned capture when its contents hold (reported as UNSIGNED)")
    p.add_argument("--json", action="store_true", help="JSON report on stdout")
    custody.add_verify_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    trusted = trusted_keys(args.trust)
    context = custody.VerifyContext(args)   # trusted TSAs; store, tokens and ledger around the file
    try:
        report = verify_path(args.target, trusted, args.allow_unsigned, **context.verify_kwargs())
    except CannotCheck as exc:
        raise ArchiveError(str(exc)) from None
    context.finish(report, trusted)
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return report.exit_code
