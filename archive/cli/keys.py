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
    # before the passphrase is asked for: a mistyped folder is found at once
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ArchiveError(f"--out {args.out} is a file, not a folder: the key files "
                           f"({keys.PRIVATE_NAME}, {keys.PUBLIC_NAME}) are written into a folder")
    passphrase = None
    if not args.no_passphrase:
        passphrase = keys.passphrase_from_env_or_prompt(confirm=True)
        if not passphrase:
            raise ArchiveError(
                f"no passphrase: set {keys.PASSPHRASE_ENV}, run from a terminal, "
                "or pass --no-passphrase to write an unencrypted key"
            )
    try:
        files = keys.generate(args.out, passphrase, args.curve)
    except OSError as exc:     # a folder that cannot be made or written to
        raise ArchiveError(f"cannot write the key files into {args.out}: "
                           f"{exc.strerror or exc}") from None
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
        public = keys.load_signing_key(args.file).public_key()
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
