"""`archive keys generate` and `archive keys show`."""

from __future__ import annotations

import os

from archive import keys
from archive.cli.common import print_json
from archive.errors import ArchiveError


def register(sub) -> None:
    parser = sub.add_parser("keys", help="create and inspect signing keys")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True

    generate = actions.add_parser("generate", help="create an ECDSA signing key pair (P-384 by default)")
    generate.add_argument("--curve", choices=sorted(keys.CURVES), default=keys.DEFAULT_CURVE,
                          help="p384 (default: what ReplayWeb.page verifies) or p256 (the curve of "
                               "keys made before; ReplayWeb.page cannot confirm their signatures)")
    generate.add_argument("--out", default=".", help="folder for the key files (default: .)")
    generate.add_argument("--no-passphrase", action="store_true",
                          help="write the private key unencrypted (not recommended)")
    generate.add_argument("--json", action="store_true", help="machine-readable output")
    generate.set_defaults(run=run_generate)

    show = actions.add_parser("show", help="print a key's fingerprint and algorithm")
    show.add_argument("file", help="public key (.pub.pem) or private key file")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)


def run_generate(args) -> int:
    passphrase = None
    if not args.no_passphrase:
        passphrase = keys.passphrase_from_env_or_prompt(confirm=True)
        if not passphrase:
            raise ArchiveError(
                f"no passphrase: set {keys.PASSPHRASE_ENV}, run from a terminal, "
                "or pass --no-passphrase to write an unencrypted key"
            )
    files = keys.generate(args.out, passphrase, args.curve)
    info = {
        "private_key": str(files.private), "public_key": str(files.public),
        "fingerprint": files.fingerprint, "algorithm": files.algorithm,
        "encrypted": passphrase is not None,
    }
    if args.json:
        print_json(info)
    else:
        print(f"private key  {files.private} (mode 0600, "
              f"{'encrypted' if passphrase else 'NOT encrypted'})")
        print(f"public key   {files.public}")
        print(f"fingerprint  {files.fingerprint}")
        print(f"algorithm    {files.algorithm}")
    return 0


def run_show(args) -> int:
    data = keys.read_key_file(args.file)
    if b"PRIVATE KEY" in data:
        passphrase = keys.passphrase_from_env_or_prompt() if keys.is_encrypted_pem(data) else None
        public = keys.load_private_key(args.file, passphrase).public_key()
        kind = "private"
    else:
        public = keys.load_public_key(args.file)
        kind = "public"
    info = {"file": os.fspath(args.file), "kind": kind, "fingerprint": keys.fingerprint(public),
            "algorithm": keys.algorithm(public)}
    if args.json:
        print_json(info)
    else:
        print(f"fingerprint  {info['fingerprint']}")
        print(f"algorithm    {info['algorithm']}")
        print(f"kind         {kind} key")
    return 0
