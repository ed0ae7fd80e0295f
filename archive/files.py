"""Small file-system helpers: durable writes, file identity, bounded reads."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from archive.errors import AlreadyExists, ArchiveError


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or link inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_identity(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    """What tells a file from another put under its name, or from itself rewritten."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


# The SHA-256 of files this process has just read whole, by file_identity (ctime included,
# which any write, chmod, link or rename changes): a WACZ hashed when it was sealed is not
# read a second time to be stored. The last few only: one a capture.
_NOTED: OrderedDict = OrderedDict()
NOTED_MAX = 64


def note_sha256(stat: os.stat_result, sha256: str) -> None:
    """Remember that the file whose stat this is holds bytes with this SHA-256."""
    _NOTED[file_identity(stat)] = sha256
    while len(_NOTED) > NOTED_MAX:
        _NOTED.popitem(last=False)


def noted_sha256(stat: os.stat_result) -> str | None:
    """The SHA-256 noted for exactly this file, unchanged since; None when there is none."""
    return _NOTED.get(file_identity(stat))


def read_at_most(path: str | Path, limit: int) -> bytes:
    """A small file the user names (a key, a certificate bundle), read whole; ValueError
    when it holds more than `limit` bytes: /dev/zero, or a large file named by mistake,
    is not read into memory."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit >> 20} MiB")
    return data


def write_new_files(out_dir: Path, files: list[tuple[Path, bytes]]) -> None:
    """Write each (path, bytes) into out_dir (created if needed), replacing nothing: when
    any of them exists, nothing is written (AlreadyExists)."""
    for path, _ in files:
        if path.exists():
            raise AlreadyExists(f"{path} already exists; not overwritten")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, data in files:
            with open(path, "xb") as fh:
                fh.write(data)
    except OSError as exc:
        raise ArchiveError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None
