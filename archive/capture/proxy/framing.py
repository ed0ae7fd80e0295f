"""HTTP/1.1 message framing over a socket, byte for byte.

The recording proxy must pass on and record exactly the bytes the server sent (chunk
framing and content encoding included) and know where each message ends so that a
connection can carry the next one. http.client cannot do both (it de-chunks, reads
ahead, and takes a 103 Early Hints for the final response), so this module reads the
head and the body framing itself and hands every raw piece to a callback.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable

from archive.errors import ArchiveError

READ_CHUNK = 1 << 16
# A body is relayed in pieces this large: each piece costs the same few calls (recorded,
# hashed, spooled, passed on) whatever its size, and a multi-gigabyte video is many pieces.
BODY_CHUNK = 1 << 20
MAX_LINE = 64 * 1024
MAX_HEAD = 256 * 1024


class ProtocolError(ArchiveError):
    """The peer sent something that is not HTTP/1.x framing."""


class IncompleteMessage(ProtocolError):
    """The connection closed in the middle of a message."""


class SocketReader:
    """Buffered reads from a socket that return exactly the bytes consumed, so nothing
    read ahead is ever attributed to the wrong message."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(READ_CHUNK)
        if not data:
            return False
        self.buffer += data
        return True

    def readline(self, limit: int = MAX_LINE) -> bytes:
        """One line with its line ending; what is left at end of stream; b"" at EOF."""
        while True:
            newline = self.buffer.find(b"\n", 0, limit)
            if newline >= 0:
                return self._take(newline + 1)
            if len(self.buffer) >= limit:
                raise ProtocolError(f"line longer than {limit} bytes")
            if not self._fill():
                return self._take(len(self.buffer))

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (at least one unless the stream has ended)."""
        if not self.buffer:
            # straight from the socket: nothing read ahead to keep, so no copy through the buffer
            data = self.sock.recv(size)
            if len(data) <= size:
                return data
            self.buffer += data[size:]      # (a socket-like object that gave more than asked)
            return data[:size]
        return self._take(min(size, len(self.buffer)))

    def take_buffer(self) -> bytes:
        """Whatever was received but not yet consumed."""
        return self._take(len(self.buffer))

    def _take(self, n: int) -> bytes:
        if n == len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
            return data
        data = bytes(memoryview(self.buffer)[:n])
        del self.buffer[:n]
        return data


@dataclass
class Head:
    """A request or status line and its header fields, with the exact bytes read."""

    raw: bytes
    start_line: str
    fields: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The last value of a header field (case-insensitive)."""
        values = self.values(name)
        return values[-1] if values else None

    def values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.fields if key.lower() == name]

    @property
    def status(self) -> int:
        """The status code of a response head."""
        parts = self.start_line.split(None, 2)
        if len(parts) < 2 or not parts[0].upper().startswith("HTTP/") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP status line: {self.start_line[:80]!r}")
        return int(parts[1])


def read_head(reader: SocketReader, emit: Callable[[bytes], None] | None = None) -> Head | None:
    """Read a message head up to and including its blank line; None at a clean EOF.

    The head ends at the first line that is empty once white space is stripped, the
    rule warcio and our payload digests use. Each raw line goes to `emit` as it is read.
    """
    raw = bytearray()
    lines: list[str] = []
    while True:
        line = reader.readline()
        if not line:
            if not raw:
                return None
            raise IncompleteMessage("connection closed inside the message head")
        raw += line
        if emit is not None:
            emit(line)
        if len(raw) > MAX_HEAD:
            raise ProtocolError(f"message head longer than {MAX_HEAD} bytes")
        if not line.strip():
            break
        if not line.endswith(b"\n"):
            raise IncompleteMessage("connection closed inside the message head")
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    if not lines:
        raise ProtocolError("empty message head")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and fields:   # obsolete line folding
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            fields.append((name.strip(), value.strip()))
    return Head(bytes(raw), lines[0], fields)


def body_length(head: Head, response_to: str | None = None) -> int | str:
    """How the body of a message is delimited (RFC 9112, section 6.3): a byte count,
    "chunked", or "close" (a response that runs until the connection closes).

    `response_to` is the request method for a response head, None for a request.
    """
    if response_to is not None:
        status = head.status
        if response_to.upper() == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return 0
    codings = [c.strip().lower() for v in head.values("transfer-encoding") for c in v.split(",")]
    if codings and codings[-1] == "chunked":
        return "chunked"
    if codings:
        if response_to is None:
            raise ProtocolError("request body with a transfer coding other than chunked")
        return "close"
    lengths = {v.strip() for v in head.values("content-length")}
    if len(lengths) == 1:
        value = lengths.pop()
        if value.isdigit():
            return int(value)
    if lengths:
        raise ProtocolError(f"unusable Content-Length: {', '.join(sorted(lengths))}")
    return "close" if response_to is not None else 0


def relay_body(reader: SocketReader, length: int | str, emit: Callable[[bytes], None]) -> None:
    """Read one body as framed by `length` (from body_length), handing every raw byte,
    chunk sizes and trailers included, to `emit`."""
    if length == "chunked":
        _relay_chunked(reader, emit)
    elif length == "close":
        while data := reader.read(BODY_CHUNK):
            emit(data)
    else:
        _relay_exact(reader, int(length), emit)


def _relay_exact(reader: SocketReader, remaining: int, emit: Callable[[bytes], None]) -> None:
    while remaining > 0:
        data = reader.read(min(remaining, BODY_CHUNK))
        if not data:
            raise IncompleteMessage(f"connection closed with {remaining} body bytes missing")
        emit(data)
        remaining -= len(data)


def _line(reader: SocketReader, emit: Callable[[bytes], None]) -> bytes:
    line = reader.readline()
    if not line.endswith(b"\n"):
        if line:
            emit(line)
        raise IncompleteMessage("connection closed inside chunked framing")
    emit(line)
    return line


def _relay_chunked(reader: SocketReader, emit: Callable[[bytes], None]) -> None:
    while True:
        line = _line(reader, emit)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        if size < 0:
            raise ProtocolError("negative chunk size")
        if size == 0:
            while _line(reader, emit).strip():   # trailer fields, then the blank line
                pass
            return
        _relay_exact(reader, size, emit)
        _line(reader, emit)                      # the CRLF after the chunk data
