"""`archive extract ID`: take evidence out of a stored capture for use elsewhere."""

from __future__ import annotations

from pathlib import Path

from archive.cli.common import print_json
from archive.cli.custody import add_actor_options, actor_from_args
from archive.custody.entry import EXPORTED
from archive.custody.log import CustodyLog
from archive.errors import ArchiveError
from archive.store.address import open_store
from archive.timestamping import export_tokens, read_sealed_digest


def register(sub) -> None:
    p = sub.add_parser("extract", help="write evidence out of a stored capture")
    p.add_argument("capture_id", metavar="ID")
    p.add_argument("--timestamps", metavar="DIR", type=Path,
                   help="write its RFC 3161 tokens (.tsr), their certificates and datapackage.json")
    p.add_argument("--store", help="folder or s3://bucket/prefix (default: ./archive-store)")
    add_actor_options(p, "sign the custody entry with this private key (default: $ARCHIVE_KEY)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.timestamps is None:
        raise ArchiveError("say what to extract: --timestamps DIR")
    return run_timestamps(args)


def run_timestamps(args) -> int:
    """--timestamps DIR, and how to check each token with openssl."""
    actor = actor_from_args(args, key_from_env=True)
    store = open_store(args.store)
    files = export_tokens(store, args.capture_id, args.timestamps)
    custody = CustodyLog(store, actor)
    custody.record(EXPORTED, args.capture_id, read_sealed_digest(store, args.capture_id).wacz_sha256,
                   what="timestamps", to=str(args.timestamps), files=[f.name for f in files])
    if args.json:
        print_json({"files": [str(f) for f in files]})
    else:
        data = files[0]
        for token in (f for f in files if f.suffix == ".tsr"):
            certs = token.with_name(token.name.removesuffix(".tsr") + ".certs.pem")
            print(f"wrote {token}" + (f" and {certs.name}" if certs in files else ""))
        print(f"wrote {data} (the data the tokens are over)")
        print(f"check: openssl ts -verify -data {data} -in TOKEN.tsr -CAfile TSA-ROOT-CA.pem")
    if custody.problems:
        raise ArchiveError("; ".join(custody.problems))
    return 0
