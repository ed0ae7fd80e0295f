"""Command line: parse, call one function, print, exit with 0 / 1 / 2."""

from __future__ import annotations

import argparse
import os
import sys

from archive import __version__
from archive.cli import capture, custody, diff, extract, hash, jobs, keys, listing, store, timestamp, verify
from archive.errors import ArchiveError

COMMANDS = (keys, capture, verify, listing, store, timestamp, extract, hash, custody, diff, jobs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archive",
        description="Evidentiary web archive: capture, seal, store and verify web pages.",
    )
    parser.add_argument("--version", action="version", version=f"archive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except ArchiveError as exc:
        print(f"archive: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        notes = "; ".join(getattr(exc, "__notes__", ()))
        print("archive: interrupted" + (f"; {notes}" if notes else ""), file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users, a traceback on request
        if os.environ.get("ARCHIVE_DEBUG"):
            raise
        print(f"archive: internal error: {type(exc).__name__}: {exc} "
              "(set ARCHIVE_DEBUG=1 for details)", file=sys.stderr)
        return 2
