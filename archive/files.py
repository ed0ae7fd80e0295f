"""Small file-system helpers: durable writes, file identity, bounded reads."""

from __future__ import annotations

import os
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
