"""SHA-256 of a stream read in chunks, hashed beside the reading past the first one
(archive.hashing.stream_hasher): the digest hashlib gives for the same bytes, whatever the
size and however the stream hands them out, and no thread left behind."""

from __future__ import annotations

import hashlib
import io
import random
import threading

import pytest

from archive.hashing import CHUNK, stream_hasher, stream_sha256


class Trickle(io.RawIOBase):
    """A stream giving at most `piece` bytes a read (a socket, a pipe)."""

    def __init__(self, data: bytes, piece: int, fail_at: int | None = None) -> None:
        self.data, self.piece, self.at, self.fail_at = data, piece, 0, fail_at

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.fail_at is not None and self.at >= self.fail_at:
            raise OSError("the disk went away")
        out = self.data[self.at:self.at + min(size, self.piece)]
        self.at += len(out)
        return out


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_the_digest_is_hashlibs_for_the_same_bytes(size):
    data = random.Random(size).randbytes(size)
    hasher, read = stream_hasher(io.BytesIO(data))
    assert (hasher.hexdigest(), read) == (hashlib.sha256(data).hexdigest(), size)
    assert stream_sha256(io.BytesIO(data)) == (hashlib.sha256(data).hexdigest(), size)
    # the object given back goes on hashing (a WARC digest is made from it, say)
    hasher.update(b"more")
    assert hasher.hexdigest() == hashlib.sha256(data + b"more").hexdigest()


def test_short_reads_and_a_failing_stream_leave_no_thread_behind():
    data = random.Random(9).randbytes(3 * CHUNK + 5)
    before = threading.active_count()
    assert stream_sha256(Trickle(data, 100_000))[0] == hashlib.sha256(data).hexdigest()
    with pytest.raises(OSError, match="went away"):
        stream_sha256(Trickle(data, 100_000, fail_at=2 * CHUNK))
    import gc
    gc.collect()
    assert threading.active_count() == before
