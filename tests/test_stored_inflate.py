"""The stored-block reader (archive.reader.storedinflate) against zlib, on the same bytes
fed the same ways: it may only ever accept what zlib accepts, giving the same bytes, and
on anything else it gives way (to zlib before it gave anything out, or by Unusual)."""

from __future__ import annotations

import random
import zlib

import pytest
from zlib_ng import zlib_ng

from archive.reader.storedinflate import StoredFirst
from archive.reader.warcheader import Unusual
from archive.warc.writer import StoredGzip

WBITS = zlib.MAX_WBITS | 16


def _ours(data: bytes) -> bytes:
    member = StoredGzip()
    return member.write(data) + member.finish()


def _zlib_ng_stored(data: bytes) -> bytes:
    c = zlib_ng.compressobj(0, zlib.DEFLATED, WBITS)
    return c.compress(data) + c.flush()


def _deflated(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, WBITS)
    return c.compress(data) + c.flush()


def _read(inflate, member: bytes, rng: random.Random, cap: int):
    """Feed `member` (and a tail after it) in random pieces as WarcChecker does. Returns
    (what each call gave out, how it ended: "ok", "cut", zlib's error message or
    "unusual", what follows the member) and the reader."""
    d = inflate.decompressobj(WBITS)
    calls, pos = [], 0
    data = member + b"TAIL"
    try:
        while pos < len(data) and not d.eof:
            step = rng.choice([1, 3, 5, 7, 100, 4096, 65536, 1 << 20]) if pos < 64 else \
                rng.choice([1, 5, 4096, 65536, 1 << 20])
            piece = data[pos:pos + step]
            pos += len(piece)
            calls.append(d.decompress(piece, cap))
            while d.unconsumed_tail and not d.eof:
                calls.append(d.decompress(d.unconsumed_tail, cap))
    except zlib.error as exc:
        return (calls, str(exc), None), d
    except Unusual:
        return (calls, "unusual", None), d
    if not d.eof:
        return (calls, "cut", None), d
    return (calls, "ok", d.unused_data + data[pos:]), d


def _damaged(member: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(member)
    for _ in range(rng.choice([1, 1, 2])):
        at = rng.choice([rng.randrange(len(damaged)), rng.randrange(min(40, len(damaged))),
                         len(damaged) - 1 - rng.randrange(8)])
        damaged[at] ^= 1 << rng.randrange(8)
    return bytes(damaged)


MAKERS = [_ours, _zlib_ng_stored, _deflated]


@pytest.mark.parametrize("seed", range(6))
def test_the_stored_reader_reads_call_for_call_as_zlib(seed):
    """Same pieces, same output limit: the same bytes from every call, the same end (the
    same words), unless it gave way with Unusual (a deflated block after stored ones)."""
    rng = random.Random(seed)
    fast = StoredFirst(zlib)
    taken = 0
    for n in range(120):
        size = rng.choice([0, 1, 17, 65534, 65535, 65536, 70000, 200000])
        data = rng.randbytes(size) if rng.random() < 0.7 else b"ab" * (size // 2)
        member = rng.choice(MAKERS)(data)
        if n % 3:
            member = _damaged(member, rng)
        cap = rng.choice([0, 1 << 20, 4096, 1000])
        ours, d = _read(fast, member, random.Random(n), cap)
        if ours[1] == "unusual":
            assert d._zlib is None      # never after it handed the member to zlib
            continue
        assert ours == _read(zlib, member, random.Random(n), cap)[0], n
        taken += d._zlib is None and ours[1] == "ok"
    assert taken > 10           # the fast path was taken, not only given way


def test_our_members_are_read_without_zlib_and_every_framing_byte_is_checked():
    data = random.Random(1).randbytes(300000)
    member = _ours(data)
    (calls, kind, unused), d = _read(StoredFirst(zlib), member, random.Random(2), 1 << 20)
    assert (b"".join(calls), kind, unused, d._zlib) == (data, "ok", b"TAIL", None)
    second = 10 + 5 + 65535            # the second block's header
    error = "Error -3 while decompressing data: "
    cases = [(len(member) - 8, 0x10, error + "incorrect data check"),     # the CRC-32
             (len(member) - 1, 0x01, error + "incorrect length check"),   # the size
             (10 + 5 + 1000, 0x10, error + "incorrect data check"),       # a byte of the data
             (10 + 1, 0x01, error + "invalid stored block lengths"),      # LEN of the first block
             (second + 4, 0x80, error + "invalid stored block lengths"),  # NLEN of the second
             (second, 0x06, error + "invalid block type"),                # BTYPE 11
             (second, 0x02, "unusual"),              # BTYPE 01: a deflated block among stored ones
             (second, 0x01, error + "incorrect data check"),  # BFINAL too soon: the trailer is data
             (second, 0x10, "ok"),                   # padding bits, which deflate ignores
             (5, 0x01, "ok")]                        # the header's time, which gzip ignores
    for at, bit, expected in cases:
        damaged = bytearray(member)
        damaged[at] ^= bit
        (calls, kind, _), d = _read(StoredFirst(zlib), bytes(damaged), random.Random(3), 1 << 20)
        assert (kind, d._zlib) == (expected, None), at
        if kind != "unusual":
            assert (calls, kind) == _read(zlib, bytes(damaged), random.Random(3), 1 << 20)[0][:2], at
