"""`archive verify PATH`: exit 0 verified, 1 not verified, 2 could not check."""

from __future__ import annotations

import sys

from archive.cli import custody
from archive.cli.common import trusted_keys
from archive.errors import ArchiveError
from archive.store.address import locate_s3_capture, open_capture_target
from archive.verify.checks import CannotCheck, verify_wacz
from archive.verify.report import render_json, render_text


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a capture's integrity, signature and index")
    p.add_argument("target", metavar="PATH", help="a WACZ file or s3://bucket/.../ID.wacz")
    p.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                   help="public key (or folder of keys) whose signatures you accept (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept an unsigned capture when its contents hold (reported as UNSIGNED)")
    p.add_argument("--json", action="store_true", help="JSON report on stdout")
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS_ENDPOINT_URL or AWS)")
    custody.add_verify_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    trusted = trusted_keys(args.trust)
    # trusted TSAs; store, tokens and ledger around the file (a folder store or an S3 one)
    context = custody.VerifyContext(args, *(locate_s3_capture(args.target, args.endpoint_url) or ()))
    with open_capture_target(args.target, args.endpoint_url) as reader:
        try:
            report = verify_wacz(reader, reader.name, reader.size, trusted, args.allow_unsigned,
                                 **context.verify_kwargs())
            report.sha256 = reader.sha256()
        except CannotCheck as exc:
            if reader.failure is None:
                raise ArchiveError(str(exc)) from None
        if reader.failure is not None:   # a read error is not a verdict on the file
            raise ArchiveError(f"could not read all of {reader.name}: {reader.failure}")
    context.finish(report, trusted)
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return report.exit_code
