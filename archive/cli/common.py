"""Argument types and output helpers shared by the commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from archive.errors import ArchiveError
from archive.keys import fingerprint, load_public_key, p256_notice
from archive.optionvalues import positive_duration_text, whole_text
from archive.values import human_bytes  # noqa: F401 - re-exported for the commands
from archive.values import printable
from archive.values import parse_duration, parse_limit, parse_regex, parse_sealed_url, parse_size


STORE_HELP = "folder or s3://bucket/prefix (default: ./archive-store)"
ENDPOINT_HELP = ("S3 endpoint for s3:// addresses (default: AWS_ENDPOINT_URL, the profile's, or AWS); "
                 "credentials always come from the AWS chain")


def add_store_arguments(parser, help_text: str = STORE_HELP, positional: bool = False) -> None:
    """--store and --endpoint-url, for every command that reads or writes a store; with
    `positional`, the store may be given as the command's argument too (`archive ls DIR`)."""
    if positional:
        parser.add_argument("store_arg", nargs="?", metavar="STORE", help=help_text)
    parser.add_argument("--store", help=help_text)
    add_endpoint_option(parser)


def add_endpoint_option(parser) -> None:
    parser.add_argument("--endpoint-url", metavar="URL", help=ENDPOINT_HELP)


def store_address(args) -> str | None:
    """The store a command was given: --store, or its argument where it takes one (not both)."""
    given = getattr(args, "store_arg", None)
    if args.store and given:
        raise ArchiveError("give the store once: as an argument or with --store")
    return args.store or given


def argument_type(read: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a reader that raises ValueError with its message (argparse
    shows the message of an ArgumentTypeError only)."""
    if read is str:
        return str

    def convert(text: str):
        try:
            return read(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(read, "__name__", "value")
    convert.__doc__ = read.__doc__
    return convert


size = argument_type(parse_size)                          # `500`, `10MB`, `1.5GiB` -> bytes
size_limit = argument_type(parse_limit)                   # a size, or `none` for no limit
duration = argument_type(parse_duration)                  # `90`, `90s`, `15m`, `2h`, `1d` -> seconds
regex = argument_type(parse_regex)                        # checked before anything is fetched
positive_duration = argument_type(positive_duration_text)  # a zero timeout would fail every fetch


def at_least(minimum: int) -> Callable[[str], int]:
    """An argument type: a whole number, `minimum` or more."""
    return argument_type(whole_text(minimum))


def sealed_url(text: str) -> str:
    """An http(s) URL a capture seals (a seed, a TSA): no credentials in it."""
    try:
        return parse_sealed_url(text)
    except ValueError as exc:
        raise ArchiveError(str(exc)) from None


def _name_and_path(spec: str) -> tuple[str, Path]:
    """`[NAME=]PATH`: a name holds no "=" and a path may, so the name ends at the first
    one, unless the whole argument is a file or folder."""
    name, sep, rest = spec.partition("=")
    if not sep or Path(spec).exists():
        return "", Path(spec)
    return name, Path(rest)


def trusted_keys(specs: list[str] | None) -> dict[str, str]:
    """`--trust [NAME=]FILE|DIR` -> {fingerprint: name}. A folder gives every *.pem in it."""
    trusted: dict[str, str] = {}
    for spec in specs or []:
        name, path = _name_and_path(spec)
        paths = sorted(path.glob("*.pem")) + sorted(path.glob("*.pub")) if path.is_dir() else [path]
        if path.is_dir() and not paths:
            raise ArchiveError(f"no public keys (*.pem, *.pub) in {path}")
        private = [item for item in paths if path.is_dir() and is_private_key_file(item)]
        for item in private:
            # the folder `keys generate` made holds the signing key too: trusting means
            # public keys only, so the private one is left out (and never read further)
            print(f"archive: note: {item} is a private key; only the public keys in {path} "
                  "are trusted", file=sys.stderr)
        paths = [item for item in paths if item not in private]
        if path.is_dir() and not paths:
            raise ArchiveError(f"no public keys (*.pem, *.pub) in {path}")
        for item in paths:
            key = load_public_key(item)
            label = name or item.name.removesuffix(".pem").removesuffix(".pub")
            trusted[fingerprint(key)] = label
    return trusted


def is_private_key_file(path: Path) -> bool:
    """A PEM private key (encrypted or not), by its header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False    # load_public_key says what is wrong with it
    return b"-----BEGIN" in head and b"PRIVATE KEY-----" in head


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


class Progress:
    """Progress on a terminal (stderr), drawn by rich: a bar with percentage, rate and time
    left when the total is known, a line of counts with the time elapsed otherwise. Silent
    when stderr is not a terminal (or with --quiet or --json: `enabled` False); nothing it
    shows goes to stdout, which --json output owns."""

    def __init__(self, enabled: bool, unit: str = "bytes") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.unit = unit              # "bytes" (rate in B/s) or "items"
        self._bar = None
        self._tasks: dict[str, object] = {}

    def _start(self) -> None:
        # loaded on first use: a command run without a terminal never imports rich
        from rich.console import Console
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress as Bar, SpinnerColumn, TaskProgressColumn,
            TextColumn, TimeElapsedColumn, TimeRemainingColumn, TransferSpeedColumn,
        )
        amount = TransferSpeedColumn() if self.unit == "bytes" else MofNCompleteColumn()
        self._bar = Bar(
            SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
            TaskProgressColumn(), amount, TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(file=sys.stderr, highlight=False), transient=True,
            redirect_stdout=False, redirect_stderr=False,
        )
        self._bar.start()

    def update(self, text: str, done: float | None = None, total: float | None = None,
               force: bool = False, stage: str = "") -> None:
        """Show `text`; with `done` (and `total`), how far along: a rate (and a bar and the
        time left). A new `stage` (crawling, then storing) starts a line of its own."""
        if not self.enabled:
            return
        if self._bar is None:
            self._start()
        if stage not in self._tasks:
            for task in self._tasks.values():
                self._bar.update(task, visible=False)
            self._tasks[stage] = self._bar.add_task("", total=None)
        # what the web or a file says may be in `text`: shown, never obeyed by the terminal
        self._bar.update(self._tasks[stage], description=printable(text), completed=done,
                         total=total, refresh=force)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def print_table(headers: list[str], rows: list[list[str]], right: tuple[str, ...] = (),
                folded: tuple[str, ...] = ()) -> None:
    """Aligned columns under a header line, fitted to the terminal (the `folded` columns
    wrapped rather than cut, the others kept whole); unbounded in width when stdout is a
    file or a pipe, one row a line. Cells are plain text (never rich markup) made safe
    for a terminal."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, markup=False, emoji=False,
                      width=None if sys.stdout.isatty() else 1 << 16)
    table = Table(box=None, pad_edge=False, header_style="bold" if console.is_terminal else None)
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left",
                         overflow="fold", no_wrap=header not in folded)
    for row in rows:
        table.add_row(*(Text(printable(str(cell))) for cell in row))
    with console.capture() as captured:
        console.print(table)
    # no padding after the last column: lines as a person or grep expects them
    sys.stdout.write("".join(line.rstrip(" ") + "\n" for line in captured.get().splitlines()))


def note_key_curve(signer) -> None:
    """Tell the owner of a P-256 key, once per key, that ReplayWeb.page cannot confirm its
    signatures (capture and jobs run alike)."""
    notice = p256_notice(signer.fingerprint, signer.curve) if signer else None
    if notice:
        print(f"archive: note: {notice}", file=sys.stderr)
