"""`archive verify TARGET`: exit 0 verified, 1 not verified, 2 could not check."""

from __future__ import annotations

import sys

from archive.cli.common import Progress, trusted_keys
from archive.errors import ArchiveError
from archive.verify.checks import verify_source
from archive.verify.model import CannotCheck, VerifyOptions
from archive.verify.report import render_json, render_text
from archive.verify.source import resolve


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a capture's integrity, signature and index")
    p.add_argument("target", metavar="TARGET",
                   help="a WACZ or WARC file, a capture id (in --store), or an s3:// address")
    p.add_argument("--store", help="store holding the capture id (default: ./archive-store)")
    p.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                   help="public key (or folder of keys) whose signatures you accept (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept a capture whose contents hold but whose signature is missing "
                        "or cannot be checked here (reported as such)")
    p.add_argument("--sha256", metavar="HEX", help="a published SHA-256 the file must match")
    p.add_argument("--json", action="store_true", help="JSON report on stdout (report.schema.json)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(run=run)


def _hex(text: str | None) -> str | None:
    if text is None:
        return None
    value = text.strip().lower().removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ArchiveError(f"--sha256 wants 64 hex digits, got {text!r}")
    return value


def run(args) -> int:
    options = VerifyOptions(trusted_keys(args.trust), args.allow_unsigned, _hex(args.sha256))
    progress = Progress(not args.quiet and not args.json)
    try:
        source = resolve(args.target, args.store)
        report = verify_source(
            source, options,
            lambda done, total: progress.update(f"verifying {done * 100 // max(total, 1)}% of {source.name}"),
        )
    except CannotCheck as exc:
        raise ArchiveError(str(exc)) from None
    finally:
        progress.done()
    if args.html:
        from archive.verify.html import write_html

        write_html(report, source, args.html)
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return report.exit_code
