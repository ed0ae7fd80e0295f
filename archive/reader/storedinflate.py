"""Reading gzip members of deflate stored blocks without inflating them: the way a
record of video, audio or an image is written (archive.warc.writer.StoredGzip), and
the bulk of a media capture's bytes.

zlib "inflates" a stored block by copying it through its 32 KiB window, a quarter of a
second per 500 MB; a stored block is five bytes of framing around the bytes themselves
(RFC 1951 3.2.4), so here they are sliced out and their CRC-32 computed by zlib-ng.

It reads as zlib reads, call for call: the same bytes out of each decompress() call and
the same errors, worded as zlib words them, raised by the same call (what one call gave
out before zlib fails in it is lost with it, here too). A member that does not start as
a plain gzip header and a stored block (a deflated record, a foreign tool's header) goes
to zlib from its first byte, nothing having been given out. One case it does not take
on: a deflated block after stored ones (zlib's window would be needed); it raises
Unusual, and the caller reads the file again with zlib alone.
"""

from __future__ import annotations

from archive.reader.fastzlib import crc32
from archive.reader.warcheader import Unusual

PLAIN = b"\x1f\x8b\x08\x00"     # gzip magic, deflate, no flags (then time, extra flags, OS)
GZIP_HEADER = 10
BLOCK_HEADER = 5                # BFINAL and BTYPE in a byte (and padding), LEN, NLEN
CHECK = 4                       # the trailer: CRC-32, then the size mod 2**32


class StoredFirst:
    """A module-like inflater for WarcChecker (decompressobj(), error): the stored fast
    path over `base` (zlib, or zlib-ng where only an acceptance is taken)."""

    def __init__(self, base) -> None:
        self.base = base
        self.error = base.error

    def decompressobj(self, wbits: int) -> "StoredInflater":
        return StoredInflater(self.base, wbits)


class StoredInflater:
    """decompressobj's interface (decompress, unconsumed_tail, eof, unused_data) for one
    gzip member (wbits for gzip: the only kind WARC members are read as)."""

    def __init__(self, base, wbits: int) -> None:
        self._base, self._wbits = base, wbits
        self._zlib = None           # the member went to zlib
        self._held = bytearray()    # bytes of a header or trailer not yet whole
        self._state = "start"       # start, block, data, crc, size, done
        self._left = 0              # bytes of the current block still to come
        self._final = False
        self._crc = 0
        self._size = 0
        self.unconsumed_tail = b""
        self.unused_data = b""
        self.eof = False

    def decompress(self, data, max_length: int = 0) -> bytes:
        if self._zlib is not None:
            return self._from_zlib(data, max_length)
        view = memoryview(data)
        out: list = []
        room = max_length if max_length > 0 else len(view)
        pos = 0
        # headers are read whatever the room left for output, as zlib reads them
        while pos < len(view) and self._state != "done":
            if self._state == "data":
                take = min(self._left, len(view) - pos, room)
                if take == 0:
                    break
                piece = view[pos:pos + take]
                out.append(piece)
                self._crc = crc32(piece, self._crc)
                self._size += take
                pos += take
                room -= take
                self._left -= take
                if self._left == 0:
                    self._state = "crc" if self._final else "block"
                continue
            need = {"start": GZIP_HEADER + BLOCK_HEADER, "block": BLOCK_HEADER, "crc": CHECK, "size": CHECK}[self._state]
            take = min(need - len(self._held), len(view) - pos)
            self._held += view[pos:pos + take]
            pos += take
            if self._state == "start" and not _may_be_plain_stored(self._held):
                held, self._held = bytes(self._held), bytearray()
                self._zlib = self._base.decompressobj(self._wbits)
                return self._from_zlib(held + bytes(view[pos:]), max_length)
            if self._state in ("start", "block") and len(self._held) > need - BLOCK_HEADER:
                self._block_type(self._held[need - BLOCK_HEADER])
            if len(self._held) == need:
                self._whole(bytes(self._held))
                self._held.clear()
        rest = bytes(view[pos:])
        if self._state == "done":
            self.unused_data, self.unconsumed_tail, self.eof = rest, b"", True
        else:
            self.unconsumed_tail = rest
        return b"".join(out)

    def _block_type(self, first: int) -> None:
        kind = (first >> 1) & 3
        if kind == 3:
            raise self._base.error("Error -3 while decompressing data: invalid block type")
        if kind != 0:
            raise Unusual("a deflated block after stored ones in a gzip member")

    def _whole(self, held: bytes) -> None:
        """A header or trailer read whole: take it in, as zlib would."""
        if self._state in ("start", "block"):
            head = held[-BLOCK_HEADER:]
            length = int.from_bytes(head[1:3], "little")
            if length ^ int.from_bytes(head[3:5], "little") != 0xFFFF:
                raise self._base.error("Error -3 while decompressing data: invalid stored block lengths")
            self._final = bool(head[0] & 1)
            self._left = length
            self._state = "data" if length else ("crc" if self._final else "block")
        elif self._state == "crc":
            if int.from_bytes(held, "little") != self._crc:
                raise self._base.error("Error -3 while decompressing data: incorrect data check")
            self._state = "size"
        else:
            if int.from_bytes(held, "little") != self._size & 0xFFFFFFFF:
                raise self._base.error("Error -3 while decompressing data: incorrect length check")
            self._state = "done"

    def _from_zlib(self, data, max_length: int) -> bytes:
        d = self._zlib
        out = d.decompress(data, max_length)
        self.unconsumed_tail, self.unused_data, self.eof = d.unconsumed_tail, d.unused_data, d.eof
        return out


def _may_be_plain_stored(held: bytearray) -> bool:
    """The bytes so far may start a plain gzip header followed by a stored block."""
    return held[:4] == PLAIN[:len(held)] and (len(held) <= GZIP_HEADER or (held[GZIP_HEADER] >> 1) & 3 == 0)
