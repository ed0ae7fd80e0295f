"""Hashing helpers shared by every stage: SHA-256 in the forms our formats use."""

from __future__ import annotations

import base64
import functools
import hashlib
import queue
import threading
import weakref
from pathlib import Path
from typing import BinaryIO, Iterator

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


def stream_sha256(stream: BinaryIO) -> tuple[str, int]:
    """SHA-256 hex digest and size of what is left to read in `stream`, in chunks."""
    hasher = hashlib.sha256()
    size = 0
    for chunk in read_chunks(stream):
        hasher.update(chunk)
        size += len(chunk)
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


class HashThread:
    """A hashlib object whose updates run in order on a thread of its own (hashlib releases
    the GIL on large buffers), so two digests over one stream use two cores. update()
    queues at most `depth` buffers (memory stays flat); digest() waits for them. The
    buffers must not change once handed over (bytes, or views of bytes). The thread ends
    at digest() or close(), or when the object is dropped unfinished (a reading that
    stopped midway)."""

    def __init__(self, hasher: "hashlib._Hash", depth: int = 4) -> None:
        self.name = hasher.name
        self._hasher = hasher
        self._queue: queue.Queue = queue.Queue(depth)
        self._errors: list[BaseException] = []
        self._digest: bytes | None = None
        # the thread holds the queue, the hasher and the error list, never this object
        self._thread = threading.Thread(target=_hash_queued, args=(self._queue, hasher, self._errors),
                                        name=f"hash {hasher.name}", daemon=True)
        self._thread.start()
        self._stop = weakref.finalize(self, self._queue.put, None)

    def update(self, data) -> None:
        if self._digest is not None:
            raise ValueError("update after digest")
        self._queue.put(data)

    def close(self) -> None:
        """End the thread (all updates done); the digest may be asked for after."""
        if self._stop.alive:
            self._stop()
            self._thread.join()

    def digest(self) -> bytes:
        if self._digest is None:
            self.close()
            if self._errors:
                raise self._errors[0]
            self._digest = self._hasher.digest()
        return self._digest

    def hexdigest(self) -> str:
        return self.digest().hex()


def _hash_queued(pending: queue.Queue, hasher: "hashlib._Hash", errors: list) -> None:
    while (data := pending.get()) is not None:
        if not errors:
            try:
                hasher.update(data)
            except BaseException as exc:  # noqa: BLE001 - raised again by digest()
                errors.append(exc)
