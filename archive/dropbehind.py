"""A spool read once, front to back, handing its pages back as it is read.

A response spooled to disk (by the recording proxy, or the crawler's fetch) is copied
into the WARC once, then thrown away. Copied as it is, a 500 MB video's spool and the
WARC it is copied into hold the same bytes twice in the page cache and on disk until the
copy ends, and every page the copy writes is one the kernel must find afresh: on our
2-core VM that copy took 1.25-1.5 s for 480 MB. Punching out of the spool what has been
read (Linux's fallocate PUNCH_HOLE, on the file systems that have it: ext4, xfs, btrfs,
tmpfs) frees those pages for the copy's own writes, and the copy took 0.15-0.25 s; the
spool's disk space is given back as the record grows, so that a video needs its size on
disk once for the spool and the WARC together, not twice.

Fenced off: only a caller that reads the spool once and never again may use it (a
punched range reads back as zeros), so it reads through `ReleasedBehind`, which has no
seek, and closes the spool when it has read to the end.
"""

from __future__ import annotations

import ctypes
import mmap
from typing import BinaryIO

RELEASE_EVERY = 8 << 20        # bytes read between two punches (one system call per 8 MiB)
_PUNCH_HOLE = 0x02 | 0x01      # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h)

_fallocate = None


def _punch_call():
    """libc's fallocate() with 64-bit offsets, or None where there is none (not Linux)."""
    global _fallocate
    if _fallocate is None:
        _fallocate = False
        try:
            call = ctypes.CDLL(None, use_errno=True).fallocate64
            call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
            call.restype = ctypes.c_int
            _fallocate = call
        except (OSError, AttributeError):
            pass
    return _fallocate or None


def _disk_fd(spool: BinaryIO) -> int | None:
    """The file descriptor of a spool that is on disk; None for one still in memory
    (a SpooledTemporaryFile under its size: asking its fileno() would write it out)."""
    if getattr(spool, "_rolled", True) is False:
        return None
    try:
        return spool.fileno()
    except (OSError, AttributeError, ValueError):
        return None


class ReleasedBehind:
    """Reads `spool` from where it stands to its end, punching what has been read out of
    the file as it goes (a no-op where the spool is in memory or the file system cannot
    punch). Closes the spool at its end: whatever read it later would fail, not find
    zeros where the bytes were."""

    def __init__(self, spool: BinaryIO) -> None:
        self._spool = spool
        self._fd = _disk_fd(spool)
        self._punch = _punch_call() if self._fd is not None else None
        self._released = spool.tell() // mmap.PAGESIZE * mmap.PAGESIZE

    def read(self, size: int = -1) -> bytes:
        data = self._spool.read(size)
        if self._punch is not None:
            position = self._spool.tell() // mmap.PAGESIZE * mmap.PAGESIZE
            if position - self._released >= RELEASE_EVERY or (not data and position > self._released):
                self._release(position)
        if not data:
            self._spool.close()
        return data

    def _release(self, upto: int) -> None:
        if self._punch(self._fd, _PUNCH_HOLE, self._released, upto - self._released) != 0:
            # a file system that cannot punch (EOPNOTSUPP): the copy goes on as before
            self._punch = None
            return
        self._released = upto

    def close(self) -> None:
        self._spool.close()

