"""The seekable ranged reader: any sequence of seeks and reads returns the object's bytes,
and its whole-object SHA-256 is right whatever the reads were."""

import hashlib
import io
import random

import pytest
from hypothesis import given, settings, strategies as st

from archive.store.rangeread import RangeReader

DATA = random.Random(3).randbytes(300_000)


def reader(data: bytes, fetches: list | None = None) -> RangeReader:
    def fetch(start, end):
        if fetches is not None:
            fetches.append((start, end))
        return data[start:end]
    return RangeReader(fetch, len(data), "test", min_window=1024, max_window=16 * 1024)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(DATA) + 10), st.integers(-1, 70_000)), max_size=30))
def test_reads_return_the_objects_bytes_and_the_hash_is_right(ops):
    r, plain = reader(DATA), io.BytesIO(DATA)
    for pos, n in ops:
        r.seek(pos)
        plain.seek(pos)
        assert r.read(n) == plain.read(n)
        assert r.tell() == plain.tell()
    assert r.sha256() == hashlib.sha256(DATA).hexdigest()


def test_sequential_reading_fetches_each_byte_about_once_in_growing_windows():
    fetches = []
    r = reader(DATA, fetches)
    r.seek(-22, io.SEEK_END)
    r.read(22)
    r.seek(0)
    while r.read(4096):
        pass
    assert r.sha256() == hashlib.sha256(DATA).hexdigest()
    assert sum(e - s for s, e in fetches) < len(DATA) + 1024
    sizes = [e - s for s, e in fetches[1:]]
    assert max(sizes) == 16 * 1024 and len(fetches) < len(DATA) // (16 * 1024) + 10


def test_a_short_fetch_is_an_error_not_a_short_file():
    r = RangeReader(lambda s, e: DATA[s:e - 1], len(DATA), "short")
    with pytest.raises(OSError, match="asked for bytes 0-"):
        r.read(10)
    assert r.failure is not None
