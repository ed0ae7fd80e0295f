"""Fetch one URL with requests and keep the exact bytes that crossed the wire.

requests (like http.client below it) de-chunks and parses what it reads, so the raw
bytes are recorded one level lower: each connection's socket is wrapped so that every
byte sent and every byte received is handed to the exchange that is running on this
thread. Digests are computed as the bytes arrive and the response is spooled to disk,
so memory stays flat whatever the size of the body.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from datetime import datetime, timezone

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from archive import __version__
from archive.capture.recorder import FetchResult, Recorder

__all__ = ["DEFAULT_USER_AGENT", "FetchResult", "fetch", "make_session"]

DEFAULT_USER_AGENT = f"Mozilla/5.0 (compatible; archive/{__version__}; evidentiary capture)"
READ_CHUNK = 1 << 16

_current = threading.local()


class _TeeReader(io.RawIOBase):
    """Raw reader over a socket that reports every byte it returns to a recorder."""

    def __init__(self, sock, recorder: Recorder) -> None:
        self._sock = sock
        self._recorder = recorder

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        n = self._sock.recv_into(view)
        if n:
            self._recorder.received(bytes(view[:n]))
        return n

    def close(self) -> None:
        # The socket belongs to the connection, which may be reused: only this view closes.
        self._sock = None
        super().close()


class _RecordingSocket:
    """A socket proxy: sendall and makefile are recorded, everything else passes through."""

    def __init__(self, sock) -> None:
        self._sock = sock

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data, *args):
        recorder = getattr(_current, "recorder", None)
        result = self._sock.sendall(data, *args)
        if recorder is not None:
            recorder.sent(bytes(data))
        return result

    def makefile(self, mode="r", *args, **kwargs):
        recorder = getattr(_current, "recorder", None)
        if recorder is None or "r" not in mode:
            return self._sock.makefile(mode, *args, **kwargs)
        recorder.connected(self._sock)
        return io.BufferedReader(_TeeReader(self._sock, recorder), READ_CHUNK)


class _RecordingHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _RecordingSocket(self.sock)


class _RecordingHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = _RecordingSocket(self.sock)


class _RecordingHTTPPool(HTTPConnectionPool):
    ConnectionCls = _RecordingHTTPConnection


class _RecordingHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _RecordingHTTPSConnection


class _RecordingAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _RecordingHTTPPool,
            "https": _RecordingHTTPSPool,
        }


def make_session(
    user_agent: str = DEFAULT_USER_AGENT, verify_tls: bool = True, pool_size: int = 10
) -> requests.Session:
    """A requests session whose connections record raw bytes. One per thread."""
    session = requests.Session()
    # No retries below us: a retried request would mix two exchanges in one recording.
    adapter = _RecordingAdapter(
        max_retries=Retry(total=0, read=False, redirect=False),
        pool_connections=pool_size, pool_maxsize=pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({
        "User-Agent": user_agent,
        # Only encodings that every WARC reader can undo.
        "Accept-Encoding": "gzip, deflate",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    })
    session.verify = verify_tls
    if not verify_tls:
        # The operator chose this and it is recorded in warcinfo; no warning per request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session.trust_env = False  # no proxy or .netrc from the environment: we record what we sent
    return session


def _classify(exc: BaseException) -> str:
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__ or (
            seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        )
        if hasattr(chain[-1], "reason") and isinstance(chain[-1].reason, BaseException):
            chain.append(chain[-1].reason)
    names = " ".join(type(e).__name__ for e in chain) + " " + " ".join(str(e) for e in chain)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, urllib3.exceptions.LocationParseError)):
        return "invalid-url"
    if isinstance(exc, requests.exceptions.SSLError) or "SSLError" in names:
        return "tls"
    if "NameResolutionError" in names or isinstance(exc, socket.gaierror) or "gaierror" in names:
        return "dns"
    if isinstance(exc, (requests.exceptions.Timeout, socket.timeout, TimeoutError)) or \
            "Timeout" in names or "timed out" in names:
        return "timeout"
    if "ConnectionRefusedError" in names or "Connection refused" in names:
        return "refused"
    if "ConnectionResetError" in names or "Connection reset" in names or \
            "RemoteDisconnected" in names or "IncompleteRead" in names or \
            "BrokenPipe" in names:
        return "reset"
    return "protocol"


def fetch(
    session: requests.Session,
    url: str,
    *,
    timeout: float = 30.0,
    max_body: int | None = None,
    deadline: float | None = None,
    spool_dir: str | None = None,
    headers: dict | None = None,
) -> FetchResult:
    """GET `url` once, no redirects followed, recording the raw exchange.

    `max_body` caps the bytes of body kept (the rest is not read: WARC-Truncated: length);
    `deadline` (time.monotonic) caps the whole exchange (WARC-Truncated: time).
    """
    result = FetchResult(url=url, started=datetime.now(timezone.utc))
    recorder = Recorder(spool_dir)
    began = time.monotonic()
    if deadline is None:
        deadline = began + max(timeout * 4, 120.0)
    _current.recorder = recorder
    response = None
    try:
        try:
            prepared = session.prepare_request(requests.Request("GET", url, headers=headers))
            result.url = prepared.url
            response = session.send(prepared, stream=True, allow_redirects=False, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - every failure is evidence, recorded below
            result.error_kind = _classify(exc)
            result.error = f"{type(exc).__name__}: {exc}"
        else:
            result.status = response.status_code
            result.headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                for chunk in response.raw.stream(READ_CHUNK, decode_content=False):
                    result.body_bytes += len(chunk)
                    if max_body is not None and result.body_bytes > max_body:
                        result.truncated = "length"
                        break
                    if time.monotonic() > deadline:
                        result.truncated = "time"
                        break
            except Exception as exc:  # noqa: BLE001
                kind = _classify(exc)
                result.truncated = "time" if kind == "timeout" else "disconnect"
                result.error_kind = kind
                result.error = f"body cut short: {type(exc).__name__}: {exc}"
    finally:
        _current.recorder = None
        if response is not None:
            if result.truncated:
                # Never hand a half-read connection back to the pool.
                response.raw.close()
            response.close()
        result.elapsed = time.monotonic() - began

    recorder.finish(result)
    return result
