"""`archive verify TARGET`: exit 0 verified, 1 not verified, 2 could not check."""

from __future__ import annotations

import os
import sys

from archive.cli import custody
from archive.cli.common import Progress, add_store_arguments, trusted_keys
from archive.custody.head import parse_head_text
from archive.errors import ArchiveError
from archive.verify.report import render_json, render_text
from archive.reader.source import resolve
from archive.verifying import VerifyContext, store_around, store_key_warnings, verify_capture


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a capture's integrity, signature, index and time")
    p.add_argument("target", metavar="TARGET",
                   help="a WACZ or WARC file, a capture id (in --store), or s3://bucket/.../ID.wacz")
    add_store_arguments(p, "store holding the capture id (default: ./archive-store)")
    p.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                   help="public key (or folder of keys) whose signatures you accept (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept a capture whose contents hold but whose signature is missing "
                        "or cannot be checked here (reported as such)")
    p.add_argument("--sha256", metavar="HEX", help="a published SHA-256 the file must match")
    p.add_argument("--json", action="store_true", help="JSON report on stdout (report.schema.json)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    custody.add_verify_options(p)
    p.set_defaults(run=run)


def _hex(text: str | None) -> str | None:
    if text is None:
        return None
    value = text.strip().lower().removeprefix("sha256:")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ArchiveError(f"--sha256 wants 64 hex digits, got {text!r}")
    return value


def _html_target(path: str | None) -> None:
    """Refuse an --html path that cannot be written before the (long) check, not after."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ArchiveError(f"--html {path} is a directory; give a file name")
    if not os.path.isdir(folder):
        raise ArchiveError(f"--html {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ArchiveError(f"--html {path}: folder {folder} is not writable")


def run(args) -> int:
    sha256 = _hex(args.sha256)
    _html_target(args.html)
    # trusted TSAs; the store, later tokens and ledger around the capture (local or S3)
    actor = None if args.no_record else (lambda: custody.actor_from_args(args, key_from_env=False))
    anchor = parse_head_text(args.anchor) if getattr(args, "anchor", None) else None  # refused before anything is read
    context = VerifyContext(args.trust_tsa, *store_around(args.target, args.store, args.endpoint_url),
                            actor=actor, anchor=anchor)
    trusted = trusted_keys(args.trust)
    source = resolve(args.target, args.store, args.endpoint_url)
    progress = Progress(not args.quiet and not args.json)
    try:
        report = verify_capture(
            source, context, trusted, args.allow_unsigned, sha256,
            lambda done, total: progress.update(f"verifying {source.name}", done, total),
        )
    finally:
        progress.done()
    for warning in store_key_warnings(args.trust):
        report.notes.append(warning)
        print(f"archive: warning: {warning}", file=sys.stderr)
    for warning in context.warnings:
        print(f"archive: warning: {warning}", file=sys.stderr)
    if args.html:
        from archive.verify.html import write_html

        try:
            write_html(report, source, args.html)
        except OSError as exc:
            raise ArchiveError(f"--html {args.html}: {exc.strerror or exc} (verdict: {report.verdict})") from None
    sys.stdout.write(render_json(report) if args.json else render_text(report))
    return report.exit_code
