"""`archive hash FILE...`: SHA-256 in sha256sum's format (`--all`: SHA-256, SHA-512 and
SHA3-256 in the tagged `ALGO (file) = hex` form that `sha256sum -c` also reads)."""

from __future__ import annotations

import hashlib
import sys

from archive.cli.common import print_json
from archive.errors import ArchiveError
from archive.hashing import Worker
from archive.reader.scan import CHUNK

ALGORITHMS = {"sha256": "SHA256", "sha512": "SHA512", "sha3_256": "SHA3-256"}


def register(sub) -> None:
    p = sub.add_parser("hash", help="print the SHA-256 of files (as sha256sum does)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--all", action="store_true", help="also SHA-512 and SHA3-256 (tagged lines)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=run)


def hash_file(path: str, algorithms: list[str]) -> dict[str, str]:
    """Hex digests of one file, read once; each algorithm on its own thread."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    workers = {name: Worker(f"hash-{name}") for name in algorithms[1:]}
    try:
        # "-" is standard input, as for sha256sum
        with open(sys.stdin.fileno() if path == "-" else path, "rb", closefd=path != "-") as fh:
            while chunk := fh.read(CHUNK):
                for name, hasher in hashers.items():
                    if name in workers:
                        workers[name].submit(hasher.update, chunk)
                    else:
                        hasher.update(chunk)
    except FileNotFoundError:
        raise ArchiveError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArchiveError(f"{path} is a directory") from None
    except OSError as exc:
        raise ArchiveError(f"{path}: {exc.strerror}") from None
    finally:
        for worker in workers.values():
            worker.close()
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _escaped(name: str) -> tuple[str, str]:
    """coreutils' escaping: a leading backslash marks a name with \\ or a newline."""
    if "\\" in name or "\n" in name:
        return "\\", name.replace("\\", "\\\\").replace("\n", "\\n")
    return "", name


def run(args) -> int:
    algorithms = list(ALGORITHMS) if args.all else ["sha256"]
    results = [(path, hash_file(path, algorithms)) for path in args.files]
    if args.json:
        print_json([{"file": path, **digests} for path, digests in results])
        return 0
    for path, digests in results:
        prefix, name = _escaped(path)
        if not args.all:
            print(f"{prefix}{digests['sha256']}  {name}")
            continue
        for algorithm, digest in digests.items():
            print(f"{prefix}{ALGORITHMS[algorithm]} ({name}) = {digest}")
    return 0
