"""`archive serve`: the investigators' web app (browse, verify, replay, compare, search)."""

from __future__ import annotations

import sys

from archive.cli.common import add_store_arguments, print_json, trusted_keys
from archive.cli.search import add_catalog_option
from archive.errors import ArchiveError
from archive.serve.config import ServeConfig
from archive.serve.guard import read_token
from archive.verify.timestamps import load_tsa_certificates
from archive.warc.records import default_operator


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ArchiveError(f"not a port number: {text!r}")
    return int(text)


def register(sub) -> None:
    p = sub.add_parser("serve", help="a read-only web app to browse, verify, replay, compare and search captures")
    add_store_arguments(p)
    add_catalog_option(p)
    p.add_argument("--trust", action="append", metavar="[NAME=]KEY",
                   help="public key (or folder of keys) whose signatures you accept (repeatable)")
    p.add_argument("--trust-tsa", action="append", metavar="CERT",
                   help="TSA root certificate (PEM or DER) whose timestamps you accept (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="Verify now accepts a capture whose contents hold but which is not signed "
                        "(shown as VERIFIED (UNSIGNED)), as archive verify --allow-unsigned")
    p.add_argument("--bind", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; any other needs --token-file)")
    p.add_argument("--port", default="8080", help="port of the app (default 8080; 0: any free port)")
    p.add_argument("--replay-port", help="port of the replay origin (default: the app's port + 1)")
    p.add_argument("--token-file", metavar="FILE", help="a secret every request must then carry")
    p.add_argument("--operator", help="your name in the 'verified' custody entries (default: your user name)")
    p.add_argument("--no-record", action="store_true",
                   help="Verify now adds no 'verified' entry to the custody ledger")
    p.add_argument("--json", action="store_true", help="print the addresses as JSON once listening")
    p.set_defaults(run=run)


def run(args) -> int:
    from archive.serve.server import serve   # uvicorn and Starlette only for this command

    token = read_token(args.token_file)
    load_tsa_certificates(args.trust_tsa)    # a bad certificate is refused now, not at Verify now
    config = ServeConfig(
        store=args.store, catalog=args.catalog, endpoint_url=args.endpoint_url,
        trusted=trusted_keys(args.trust), tsa_paths=args.trust_tsa or [], bind=args.bind,
        port=_port(args.port), replay_port=_port(args.replay_port) if args.replay_port else None,
        token=token, operator=args.operator or default_operator(), record=not args.no_record,
        allow_unsigned=args.allow_unsigned)

    def announce(where: dict) -> None:
        if args.json:
            print_json(where)
        else:
            print(f"serving  {where['url']}" + ("  (open it with ?token=<your token> once)" if where["token"] else ""))
            print(f"store    {where['store']}")
            print(f"replay   {where['replay'] or where['replay_hint']}")
            print("Ctrl-C stops it")
        sys.stdout.flush()

    try:
        serve(config, announce)
    except KeyboardInterrupt:
        pass
    return 0
