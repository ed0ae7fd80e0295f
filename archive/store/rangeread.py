"""A read-only, seekable file over ranged reads of a remote object, with read-ahead.

Verification needs a seekable file, and a WACZ may be larger than memory or the local
disk: this reads windows of the object on demand (a small window for a random read,
doubling while reads are sequential), keeps the last few, and so holds at most
`CACHED * MAX_WINDOW` bytes whatever the object's size.

It also hashes the whole object on the way: bytes are fed to a SHA-256 whenever a window
continues where the hash stopped (a small gap is fetched to close it), so a reader that
goes through the file mostly in order, as verification does, gets the object's hash for
the price of the few bytes it skipped (`sha256()` reads those).
"""

from __future__ import annotations

import hashlib
import io
from typing import Callable

KiB, MiB = 1 << 10, 1 << 20
MIN_WINDOW = 256 * KiB
MAX_WINDOW = 8 * MiB
CACHED = 3
GAP_FILL = 64 * KiB          # fetch up to this many skipped bytes to keep the hash going


class RangeReader(io.RawIOBase):
    """`fetch(start, end)` returns exactly the bytes [start, end) of an object of `size` bytes."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, name: str = "",
                 min_window: int = MIN_WINDOW, max_window: int = MAX_WINDOW,
                 on_close: Callable[[], None] | None = None, identity: object = None) -> None:
        super().__init__()
        self._fetch = fetch
        self._on_close = on_close
        self.size = size
        self.name = name
        self.identity = identity    # what tells this object (version) from another under its name
        self._min, self._max = min_window, max(max_window, min_window)
        self._pos = 0
        self._windows: list[tuple[int, bytes]] = []     # (start, data), most recent last
        self._next_window = self._min
        self._hasher = hashlib.sha256()
        self._hashed = 0
        self.fetches = 0
        self.fetched_bytes = 0
        self.failure: BaseException | None = None       # the first error of a fetch

    # -- io.RawIOBase ---------------------------------------------------------------
    def close(self) -> None:
        if not self.closed:
            self._windows.clear()
            if self._on_close:
                self._on_close()
        super().close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._pos < self.size:
            start, data = self._window_at(self._pos, len(view) - filled)
            offset = self._pos - start
            n = min(len(data) - offset, len(view) - filled)
            view[filled: filled + n] = data[offset: offset + n]
            filled += n
            self._pos += n
        return filled

    # -- windows ----------------------------------------------------------------------
    def _window_at(self, pos: int, wanted: int) -> tuple[int, bytes]:
        for i, (start, data) in enumerate(self._windows):
            if start <= pos < start + len(data):
                self._windows.append(self._windows.pop(i))
                self._feed(start, data)
                return start, data
        sequential = any(start + len(data) == pos for start, data in self._windows)
        self._next_window = min(self._next_window * 2, self._max) if sequential else self._min
        start = pos
        if self._hashed < pos <= self._hashed + GAP_FILL:
            start = self._hashed
        end = min(self.size, pos + max(self._next_window, min(wanted, self._max)))
        data = self._get(start, end)
        self._windows.append((start, data))
        del self._windows[:-CACHED]
        self._feed(start, data)
        return start, data

    def _get(self, start: int, end: int) -> bytes:
        try:
            data = self._fetch(start, end)
        except BaseException as exc:
            if self.failure is None:
                self.failure = exc
            raise
        if len(data) != end - start:
            error = OSError(f"{self.name}: asked for bytes {start}-{end - 1}, got {len(data)} bytes")
            self.failure = self.failure or error
            raise error
        self.fetches += 1
        self.fetched_bytes += len(data)
        return data

    def _feed(self, start: int, data: bytes) -> None:
        end = start + len(data)
        if start <= self._hashed < end:
            self._hasher.update(memoryview(data)[self._hashed - start:])
            self._hashed = end

    def sha256(self) -> str:
        """SHA-256 (hex) of the whole object: what was hashed on the way plus the rest."""
        while self._hashed < self.size:
            end = min(self.size, self._hashed + self._max)
            self._feed(self._hashed, self._get(self._hashed, end))
        return self._hasher.hexdigest()
