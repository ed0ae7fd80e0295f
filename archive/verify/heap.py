"""A steady heap for verification's streaming reads (glibc's malloc only).

Verification reads files in CHUNK pieces (1 MiB) and inflates gzip members into fresh
bytes, a few of each alive at a time. glibc's malloc serves pieces that size from its
heap only after its dynamic mmap threshold has risen, and gives the top of the heap back
to the kernel whenever more than twice that threshold lies free there: the next piece
faults its pages in again, and the kernel zeroes them first. On a 1 GiB capture that
was some 110,000 page faults and a third of a second of system time in the process
reading, as much again in the workers: about 5% of verification's wall time.

Fixed thresholds (pieces below MMAP_THRESHOLD come from the heap, and up to
TRIM_THRESHOLD of free heap is kept) end that, for at most TRIM_THRESHOLD more resident
memory. Elsewhere (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes

MMAP_THRESHOLD = 4 << 20        # above CHUNK and any piece a reader allocates per call
TRIM_THRESHOLD = 32 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # glibc's malloc.h

_done: bool | None = None


def steady() -> bool:
    """Fix this process's malloc thresholds (once); False where malloc is not glibc's."""
    global _done
    if _done is None:
        _done = False
        try:
            libc = ctypes.CDLL(None)
            if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt"):
                # mallopt returns 1 on success; setting either threshold also ends the
                # dynamic adjustment of both, so both are set
                _done = (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                         and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
        except (OSError, AttributeError):
            pass
    return _done
