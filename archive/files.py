"""Small file-system helpers: durable writes, file identity, bounded reads."""

from __future__ import annotations

import os
from pathlib import Path


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
