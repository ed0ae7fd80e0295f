"""`archive diff ID1 ID2`: what changed on the captured site between two captures."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from archive.cli.common import add_store_arguments, print_json
from archive.cli.store import store_options
from archive.diff import diff_captures, render_text
from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.store.address import open_existing_store
from archive.reader.source import Source, pinned


def register(sub) -> None:
    p = sub.add_parser("diff", help="pages added, removed, redirected and changed between two captures")
    p.add_argument("first", metavar="ID1", help="a capture id in the store, or a WACZ file")
    p.add_argument("second", metavar="ID2", help="a capture id in the store, or a WACZ file")
    add_store_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def _source(target: str, args) -> Source:
    path = Path(target)
    if path.is_file():
        opener, label = (lambda: open(path, "rb")), path.name
    elif is_capture_id(target):
        store = open_existing_store(args.store, store_options(args))
        opener, label = (lambda: store.open_capture(target)), target
    else:
        raise ArchiveError(f"{target} is neither a WACZ file nor a capture id")
    try:
        return pinned(label, opener, str(path) if path.is_file() else None)
    except OSError as exc:
        raise ArchiveError(f"cannot read {target}: {exc.strerror or exc}") from None


def _in_store(args):
    """capture id -> Source in the store the captures come from (or --store): where a
    revisit's content is looked for (never a local file). None when only files were given."""
    if not (args.store or any(_is_stored(target) for target in (args.first, args.second))):
        return None
    store = functools.cache(lambda: open_existing_store(args.store, store_options(args)))
    return lambda capture_id: pinned(capture_id, lambda: store().open_capture(capture_id))


def _is_stored(target: str) -> bool:
    return not Path(target).is_file() and is_capture_id(target)


def run(args) -> int:
    first, second = _source(args.first, args), _source(args.second, args)
    try:
        diff = diff_captures(first, second, _in_store(args))
    except OSError as exc:
        raise ArchiveError(f"cannot read a capture: {exc.strerror or exc}") from None
    if args.json:
        print_json(diff.to_dict())
    else:
        sys.stdout.write(render_text(diff))
    return 0
