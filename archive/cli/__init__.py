"""Command line: parse, call one function, print, exit with 0 / 1 / 2."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import re
import sys

from archive import __version__
from archive.errors import ArchiveError
from archive.values import printable

# each command and the module of archive.cli that registers it, imported only when it is
# needed: `archive verify` then starts without the crawler, the browser driver and the
# job scheduler (a third of a second)
COMMANDS = {
    "keys": "keys", "capture": "capture", "verify": "verify", "ls": "listing", "show": "listing",
    "store": "store", "timestamp": "timestamp", "extract": "extract", "hash": "hash",
    "custody": "custody", "diff": "diff", "jobs": "jobs", "index": "search", "search": "search",
    "serve": "serve", "worker": "worker", "profile": "profile",
}


class Parser(argparse.ArgumentParser):
    """argparse, with a mistyped argument said in one line (not the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command, or only the module of `command` when it names one."""
    parser = Parser(
        prog="archive",
        description="Evidentiary web archive: capture, seal, store and verify web pages.",
    )
    parser.add_argument("--version", action="version", version=f"archive {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    modules = [COMMANDS[command]] if command in COMMANDS else dict.fromkeys(COMMANDS.values())
    for name in modules:
        importlib.import_module(f"archive.cli.{name}").register(sub)
    return parser


def negative_values_attached(argv: list[str]) -> list[str]:
    """`--delay -1s` as `--delay=-1s`: argparse takes `-1s` for an option and says only
    "expected one argument"; attached, the value reaches its type, which says what is
    wrong with it. No option of ours is a dash and a digit."""
    out: list[str] = []
    for arg in argv:
        if arg == "--" or (out and out[-1] == "--"):
            out.append(arg)
            continue
        if re.match(r"-\.?\d", arg) and out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = negative_values_attached(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:      # --help, --version, or a mistyped argument (said already)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args) or 0
    except ArchiveError as exc:
        # one line whatever the message carries (a file name, what a server answered)
        print(f"archive: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`archive hash --all F | head -1`): no error to report, and
        # none at exit when Python flushes stdout again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as exc:
        notes = "; ".join(getattr(exc, "__notes__", ()))
        print("archive: interrupted" + (f"; {notes}" if notes else ""), file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users, a traceback on request
        if os.environ.get("ARCHIVE_DEBUG"):
            raise
        print(f"archive: internal error: {type(exc).__name__}: {printable(str(exc))} "
              "(set ARCHIVE_DEBUG=1 for details)", file=sys.stderr)
        return 2


def entry() -> int:
    """The `archive` command (and `python -m archive`): main(), then the process ends."""
    code = main()
    # Nothing more runs in this process: the interpreter's collections at exit would walk
    # every object left (yt-dlp's 1,800 extractor classes and their patterns, say) to free
    # memory the exit frees anyway, 0.1-0.2 s of each capture. Frozen, they are not walked.
    # Every file was closed by the command itself; tests call main(), never this.
    gc.freeze()
    return code
