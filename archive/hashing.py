"""Hashing helpers shared by every stage: SHA-256 in the forms our formats use."""

from __future__ import annotations

import base64
import functools
import hashlib
import queue
import threading
import weakref
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

CHUNK = 1 << 20


def sha256_prefixed(hex_digest: str) -> str:
    """`sha256:<hex>`, the form of datapackage.json and the signing spec."""
    return "sha256:" + hex_digest


def warc_digest(hasher: "hashlib._Hash") -> str:
    """`sha256:<BASE32>`, the form our WARC digest headers use (as warcio and wget do)."""
    return "sha256:" + base64.b32encode(hasher.digest()).decode("ascii")


def read_chunks(stream: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        yield chunk


def stream_hasher(stream: BinaryIO) -> tuple["hashlib._Hash", int]:
    """A SHA-256 object over what is left to read in `stream`, and its size. Past the
    first chunk the hashing runs on a thread of its own (HashThread) while this one reads:
    0.28 s instead of 0.35 s for 483 MB in the page cache."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in read_chunks(stream):
        if size >= CHUNK and not isinstance(hasher, HashThread):
            hasher = HashThread(hasher)
        hasher.update(chunk)
        size += len(chunk)
    return (hasher.hasher() if isinstance(hasher, HashThread) else hasher), size


def stream_sha256(stream: BinaryIO) -> tuple[str, int]:
    """SHA-256 hex digest and size of what is left to read in `stream`, in chunks."""
    hasher, size = stream_hasher(stream)
    return hasher.hexdigest(), size


def file_sha256(path: str | Path) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read once in chunks."""
    with open(path, "rb") as fh:
        return stream_sha256(fh)


@functools.lru_cache(maxsize=4096)   # a crawl looks each payload digest up, then adds it
def parse_digest(value: str) -> tuple[str, bytes] | None:
    """Split `algo:value` into (algorithm, raw digest); accepts base32, base16 and base64.

    Returns None when the value cannot be decoded; the algorithm name is lowercased
    and normalised (`sha-1` -> `sha1`).
    """
    if ":" not in value:
        return None
    algo, _, text = value.strip().partition(":")
    algo = algo.lower().replace("-", "")
    try:
        size = hashlib.new(algo).digest_size
    except (ValueError, TypeError):
        return None
    text = text.strip()
    for decode in (_b32, _b16, _b64, _b64url):
        try:
            raw = decode(text)
        except (ValueError, TypeError):
            continue
        if raw is not None and len(raw) == size:
            return algo, raw
    return None


def _b32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def _b16(text: str) -> bytes:
    return base64.b16decode(text.upper())


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


QUEUE_DEPTH = 8           # chunks (of at most a few MiB) in flight per worker: memory stays flat


class Worker:
    """Runs submitted calls in order on one thread (hashlib and zlib release the GIL on
    large buffers, so the calls use a second core); errors come back from close()."""

    def __init__(self, name: str, depth: int = QUEUE_DEPTH) -> None:
        self._queue: queue.Queue = queue.Queue(depth)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                try:
                    item[0](*item[1:])
                except BaseException as exc:  # noqa: BLE001 - handed to close()
                    self.error = exc

    def submit(self, fn: Callable, *args) -> None:
        self._queue.put((fn, *args))

    def stop(self) -> None:
        """End the thread once the calls submitted are done (an error stays in `error`)."""
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        self.stop()
        if self.error is not None:
            raise self.error


class HashThread:
    """A hashlib object whose updates run in order on a Worker of its own, so two digests
    over one stream use two cores. update() queues at most `depth` buffers (memory stays
    flat); digest() waits for them. The buffers must not change once handed over (bytes,
    or views of bytes). The thread ends at digest() or close(), or when the object is
    dropped unfinished (a reading that stopped midway)."""

    def __init__(self, hasher: "hashlib._Hash", depth: int = 4) -> None:
        self.name = hasher.name
        self._hasher = hasher
        self._digest: bytes | None = None
        # the worker's thread holds the worker and the hasher, never this object
        self._worker = Worker(f"hash {hasher.name}", depth)
        self._stop = weakref.finalize(self, self._worker.stop)

    def update(self, data) -> None:
        if self._digest is not None:
            raise ValueError("update after digest")
        self._worker.submit(self._hasher.update, data)

    def close(self) -> None:
        """End the thread (all updates done); the digest may be asked for after."""
        self._stop()

    def hasher(self) -> "hashlib._Hash":
        """End the thread and give back the hashlib object with every update done in it
        (to go on hashing in the caller's thread)."""
        if self._digest is not None:
            raise ValueError("hasher after digest")
        self.close()
        if self._worker.error is not None:
            raise self._worker.error
        return self._hasher

    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = self.hasher().digest()
        return self._digest

    def hexdigest(self) -> str:
        return self.digest().hex()
