"""The bytes of one HTTP exchange as they cross the wire, and the FetchResult made of
them. Both ways of fetching record through this: the crawler's fetcher (below
requests, fetch.py) and the recording proxy (proxy/server.py), so a page fetched
either way is kept with the same bytes, digests and evidence."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from archive.hashing import HashThread, warc_digest
from archive.httpmessage import PayloadSplitter

SPOOL_IN_MEMORY = 1 << 20
# Past this many bytes received, the two digests are computed on threads of their own: on
# a large body (a video) they cost more than relaying its bytes, and in the receiving
# thread they slowed the transfer itself; below it, a thread's start costs more than it saves.
SPREAD_AT = 8 << 20


@dataclass
class FetchResult:
    """One exchange. `response` holds the raw bytes received, positioned at 0."""

    url: str
    started: datetime
    request: bytes = b""
    response: BinaryIO | None = None
    response_length: int = 0
    block_digest: str | None = None
    payload_digest: str | None = None
    status: int | None = None
    headers: dict = field(default_factory=dict)   # lower-cased names, last value wins
    ip: str | None = None
    port: int | None = None
    cert_der: bytes | None = None
    cert_chain_der: list = field(default_factory=list)
    tls: dict = field(default_factory=dict)
    error_kind: str | None = None     # dns, refused, reset, timeout, tls, protocol, invalid-url
    error: str | None = None
    truncated: str | None = None       # WARC-Truncated reason: length, time, disconnect
    elapsed: float = 0.0
    body_bytes: int = 0

    @property
    def has_response(self) -> bool:
        return self.response is not None and self.status is not None

    def close(self) -> None:
        if self.response is not None:
            self.response.close()


class Recorder:
    """Collects the bytes of one request/response exchange while they cross the socket:
    digests as they arrive, the response spooled to disk past SPOOL_IN_MEMORY, so
    memory stays flat whatever the size of the body."""

    def __init__(self, spool_dir: str | None) -> None:
        self.request = bytearray()
        self.response: BinaryIO = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, dir=spool_dir)
        self.received_bytes = 0
        self.block_hash = hashlib.sha256()
        self.payload_hash = hashlib.sha256()
        self.splitter = PayloadSplitter()
        self.peer: tuple | None = None
        self.cert_der: bytes | None = None
        self.cert_chain_der: list[bytes] = []
        self.tls: dict = {}

    def sent(self, data: bytes) -> None:
        self.request += data

    def received(self, data: bytes) -> None:
        """A piece of the response (bytes: it may be hashed on another thread later)."""
        self.response.write(data)
        self.received_bytes += len(data)
        if self.received_bytes > SPREAD_AT and not isinstance(self.block_hash, HashThread):
            self.block_hash, self.payload_hash = HashThread(self.block_hash), HashThread(self.payload_hash)
        self.block_hash.update(data)
        if self.splitter.done:
            self.payload_hash.update(data)
        else:
            start = self.splitter.feed(data)
            if start is not None:
                self.payload_hash.update(data[start:])

    def connected(self, sock) -> None:
        """Note who we are talking to: address and, for TLS, the certificate presented."""
        try:
            self.peer = sock.getpeername()
        except OSError:
            self.peer = None
        if hasattr(sock, "getpeercert"):
            try:
                self.cert_der = sock.getpeercert(binary_form=True)
                self.tls = {"version": sock.version(), "cipher": (sock.cipher() or [None])[0]}
                chain = getattr(sock, "get_unverified_chain", None)  # Python 3.13+
                if chain:
                    self.cert_chain_der = [c.public_bytes() for c in chain() or []]
            except (OSError, ValueError, AttributeError):
                pass

    def finish(self, result: FetchResult) -> None:
        """Put what was recorded into `result`: the request, the peer and its certificate,
        and the response with its digests when one came back (the spool is closed when
        none did; otherwise `result` owns it)."""
        result.request = bytes(self.request)
        if self.peer:
            result.ip, result.port = self.peer[0], self.peer[1]
        result.cert_der, result.cert_chain_der, result.tls = (
            self.cert_der, self.cert_chain_der, self.tls,
        )
        if result.status is not None and self.received_bytes:
            self.response.seek(0)
            result.response = self.response
            result.response_length = self.received_bytes
            result.block_digest = warc_digest(self.block_hash)
            result.payload_digest = warc_digest(self.payload_hash)
        else:
            self.response.close()
            for hasher in (self.block_hash, self.payload_hash):
                if isinstance(hasher, HashThread):
                    hasher.close()
