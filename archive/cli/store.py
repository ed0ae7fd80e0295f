"""`archive store init s3://bucket`, and the store options other commands share."""

from __future__ import annotations

import argparse

from archive.cli.common import add_endpoint_option, add_store_arguments, print_json
from archive.errors import ArchiveError
from archive.store.address import StoreOptions
from archive.store.base import LOCK_MODES, MAX_RETAIN_DAYS
from archive.store.s3 import Retention, init_bucket, make_client, parse_s3_address


def days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if not 1 <= value <= MAX_RETAIN_DAYS:
        raise argparse.ArgumentTypeError(f"retention must be 1 to {MAX_RETAIN_DAYS} days, not {value}")
    return value


def add_retention_options(parser, default_help: str = "") -> None:
    parser.add_argument("--retain-days", type=days, metavar="N",
                        help="Object Lock retention of each capture, in days" + default_help)
    parser.add_argument("--lock-mode", choices=LOCK_MODES,
                        help="Object Lock mode of that retention (default: the bucket's default "
                             "mode, else GOVERNANCE; COMPLIANCE cannot be shortened or lifted "
                             "by anyone)")


def add_store_options(parser) -> None:
    """--store, --endpoint-url, --retain-days, --lock-mode, --legal-hold (for commands that store)."""
    add_store_arguments(parser)
    add_retention_options(parser)
    parser.add_argument("--legal-hold", action="store_true",
                        help="put each capture under an Object Lock legal hold")


def retention(args) -> Retention:
    days, mode = getattr(args, "retain_days", None), getattr(args, "lock_mode", None)
    if mode and not days:
        # a mode alone would be silently ignored: the user believes the capture is locked
        raise ArchiveError("--lock-mode applies to --retain-days only: give both")
    return Retention(days, mode, getattr(args, "legal_hold", False))


def store_options(args, progress=None) -> StoreOptions:
    return StoreOptions(endpoint_url=getattr(args, "endpoint_url", None), retention=retention(args),
                        progress=progress)


def register(sub) -> None:
    p = sub.add_parser("store", help="set up a store")
    commands = p.add_subparsers(dest="store_command", metavar="COMMAND")
    commands.required = True
    init = commands.add_parser(
        "init", help="create an S3 bucket with versioning, Object Lock and no public access")
    init.add_argument("address", metavar="s3://BUCKET")
    add_endpoint_option(init)
    add_retention_options(init, " (default retention of the bucket; none if not given)")
    init.add_argument("--json", action="store_true", help="machine-readable output")
    init.set_defaults(run=run_init)


def run_init(args) -> int:
    location = parse_s3_address(args.address)
    if location.prefix:
        raise ArchiveError(f"store init takes a bucket (s3://{location.bucket}), not a prefix")
    client = make_client(args.endpoint_url)
    settings = init_bucket(client, location.bucket, client.meta.region_name, retention(args))
    if args.json:
        print_json(dict(settings))
    else:
        print(f"created {location.url()}")
        for name, value in settings[1:]:
            print(f"  {name:<18} {value}")
    return 0
