"""`archive timestamp ID --tsa URL`: add an RFC 3161 token to a stored capture later
(the TSA was down at sealing, or another authority is wanted)."""

from __future__ import annotations

from archive.cli.capture_result import print_timestamps
from archive.cli.common import add_store_arguments, positive_duration, print_json, sealed_url
from archive.cli.custody import add_actor_options, actor_from_args
from archive.cli.store import store_options
from archive.custody.log import CustodyLog
from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.seal.timestamp import DEFAULT_TIMEOUT
from archive.store.address import open_existing_store
from archive.timestamping import timestamp_stored


def register(sub) -> None:
    p = sub.add_parser("timestamp", help="add a trusted timestamp to a stored capture")
    p.add_argument("capture_id", metavar="ID")
    p.add_argument("--tsa", action="append", required=True, metavar="URL",
                   help="RFC 3161 Time Stamping Authority (repeatable)")
    p.add_argument("--tsa-timeout", type=positive_duration, default=DEFAULT_TIMEOUT,
                   help=f"how long to wait for each TSA (default {DEFAULT_TIMEOUT:g}s)")
    add_store_arguments(p)
    add_actor_options(p, "sign the custody entry with this private key (default: $ARCHIVE_KEY)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    # a token is kept beside a capture in the store: a file named here (read from
    # wherever it is) would get a token and a custody entry under a name that is no capture
    if not is_capture_id(args.capture_id):
        raise ArchiveError(f"{args.capture_id!r} is not a capture id (like 20250308T121500Z-7f3a9c21)")
    urls = [sealed_url(u) for u in args.tsa]
    actor = actor_from_args(args, key_from_env=True)
    store = open_existing_store(args.store, store_options(args))
    sealed, entries, keys = timestamp_stored(store, args.capture_id, urls, args.tsa_timeout)
    custody = CustodyLog(store, actor)
    custody.record_timestamps(args.capture_id, sealed.wacz_sha256, entries, keys)
    if args.json:
        print_json([{**{k: e.get(k) for k in ("tsa", "time", "error")}, "object": key}
                    for e, key in zip(entries, keys)])
    else:
        print_timestamps(entries, args.capture_id)
    problems = custody.problems
    if not any(keys):
        problems = ["no TSA gave a token"] + problems
    if problems:
        raise ArchiveError("; ".join(problems))
    return 0
