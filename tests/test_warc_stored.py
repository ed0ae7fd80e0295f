"""Records of compressed payloads (video, audio, images) are written as gzip members of
deflate stored blocks framed by the writer itself: every gzip reader must read them back
byte for byte, whatever the sizes of the writes around the 64 KiB block limit."""

from __future__ import annotations

import gzip
import io
import random
import zlib

import pytest
from warcio.archiveiterator import ArchiveIterator

from archive.warc.filesink import FileSink
from archive.warc.writer import STORED, STORED_BLOCK, StoredGzip, WarcWriter, _GzipMember


SIZES = [0, 1, STORED_BLOCK - 1, STORED_BLOCK, STORED_BLOCK + 1, 2 * STORED_BLOCK, (1 << 20) + 7]


@pytest.mark.parametrize("size", SIZES)
def test_a_stored_member_holds_every_byte_once_in_full_blocks(size):
    data = random.Random(size).randbytes(size)
    member = StoredGzip()
    raw = member.write(data[:size // 3]) + member.write(data[size // 3:]) + member.finish()
    blocks = size // STORED_BLOCK + 1          # full ones, then the final (possibly empty)
    assert len(raw) == 10 + size + 5 * blocks + 8
    assert zlib.decompress(raw, 31) == data
    assert data[:STORED_BLOCK] in raw          # the first block's bytes as they are


def test_a_stored_member_reads_back_with_zlib_and_gzip_whatever_the_writes():
    rng = random.Random(7)
    for _ in range(40):
        pieces = [rng.randbytes(rng.choice([0, 1, 100, STORED_BLOCK - 3, STORED_BLOCK, 70000, 300000]))
                  for _ in range(rng.randrange(1, 6))]
        out = io.BytesIO()
        member = _GzipMember(out)
        member.level = STORED
        for piece in pieces:
            member.write(piece)
        member.flush()
        raw = out.getvalue()
        whole = b"".join(pieces)
        assert zlib.decompress(raw, 31) == whole
        assert gzip.decompress(raw) == whole
        # the member is a whole gzip stream: nothing after it, and its trailer is checked
        d = zlib.decompressobj(31)
        assert d.decompress(raw) == whole and d.eof and d.unused_data == b""
        damaged = bytearray(raw)
        damaged[-6] ^= 1            # the CRC-32 in the trailer
        with pytest.raises(zlib.error):
            zlib.decompress(bytes(damaged), 31)


def test_records_of_compressed_types_are_stored_and_read_back_by_warcio(tmp_path):
    sink = FileSink(tmp_path)
    writer = WarcWriter(sink, "t", {"software": "test"})
    body = random.Random(1).randbytes(3 * STORED_BLOCK + 11)
    block = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n\r\n" + body
    writer.write("response", "http://example.test/v.mp4", block, level=STORED)
    writer.write("response", "http://example.test/p.html", b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * 5000)
    (written,) = writer.close()
    data = (tmp_path / written.name).read_bytes()
    records = [(r.rec_type, r.content_stream().read())
               for r in ArchiveIterator(io.BytesIO(data), check_digests="raise")]
    assert [t for t, _ in records] == ["warcinfo", "response", "response"]
    assert records[1][1] == body
    # the video's member holds its bytes as they are (stored), the page's is deflated
    assert block[:STORED_BLOCK // 2] in data and b"a" * 5000 not in data
