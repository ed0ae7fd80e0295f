"""Fetch one URL and keep the exact bytes that crossed the wire.

urllib3 (requests' engine, used directly for speed) and http.client below it de-chunk
and parse what they read, so the raw bytes are recorded one level lower: each connection's socket is wrapped so that every
byte sent and every byte received is handed to the exchange that is running on this
thread. Digests are computed as the bytes arrive and the response is spooled to disk,
so memory stays flat whatever the size of the body.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import requests
import requests.certs
import urllib3
import urllib3.util.connection
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, get_cookie_header
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from archive import __version__
from archive.capture.addresses import AddressPolicy, AddressRefused
from archive.capture.proxy.framing import MAX_HEAD
from archive.capture.recorder import FetchResult, Recorder

__all__ = ["DEFAULT_USER_AGENT", "FetchResult", "FetchSession", "fetch", "make_session"]

DEFAULT_USER_AGENT = f"Mozilla/5.0 (compatible; archive/{__version__}; evidentiary capture)"
READ_CHUNK = 1 << 16
# The least a connect or a wait for the response's head is given when the deadline is
# nearer than --timeout: the deadline bounds them, but a wait of 0 would raise at once
# on some platforms before the socket is even tried.
MIN_WAIT = 0.05

_current = threading.local()


def _cookie_view(url: str, headers: dict) -> SimpleNamespace:
    """What requests' cookie helpers read of a request: its URL and headers."""
    return SimpleNamespace(url=url, headers=headers)


class _TeeReader(io.RawIOBase):
    """Raw reader over a socket that reports every byte it returns to a recorder.

    It reads through the socket's own raw file (socket.SocketIO), which holds the socket
    open while it is in use: http.client closes the connection as soon as a response
    that ends the connection (HTTP/1.0, Connection: close) has its headers, and the body
    is then read from this file alone. Closing it only lets go of the socket, which the
    connection may still reuse."""

    def __init__(self, sock, recorder: Recorder) -> None:
        self._raw = sock.makefile("rb", buffering=0)
        self._recorder = recorder

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        view = memoryview(buffer)
        n = self._raw.readinto(view)
        if n:
            self._recorder.received(bytes(view[:n]))
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
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


# http.client refuses a response with more than 100 header fields ("got more than 100
# headers"): sites sending many Set-Cookie lines lost their page. The bound that matters
# is on the bytes of the head, as the recording proxy has it (MAX_HEAD), not the count;
# raising the count is harmless to other users of http.client in this process.
http.client._MAXHEADERS = max(http.client._MAXHEADERS, MAX_HEAD)


class _HeadBudget:
    """A response's file, counting the bytes http.client reads line by line while it
    parses the status line and headers: past MAX_HEAD, the response is refused."""

    def __init__(self, fp) -> None:
        self._fp = fp
        self.armed, self.used = True, 0

    def readline(self, limit: int = -1) -> bytes:
        line = self._fp.readline(limit)
        if self.armed:
            self.used += len(line)
            if self.used > MAX_HEAD:
                raise http.client.HTTPException(f"response head longer than {MAX_HEAD} bytes")
        return line

    def __getattr__(self, name):
        return getattr(self._fp, name)


class _BoundedHeadResponse(http.client.HTTPResponse):
    def begin(self) -> None:
        budget = self.fp = _HeadBudget(self.fp)
        try:
            super().begin()
        finally:
            budget.armed = False


class _CheckedAddress:
    """A urllib3 connection made only to addresses the thread's AddressPolicy allows,
    decided when it connects, to the very address checked (archive.capture.addresses)."""

    def _new_conn(self) -> socket.socket:
        policy = getattr(_current, "policy", None) or AddressPolicy()
        try:
            answers = policy.resolve(self._dns_host, self.port)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc
        except AddressRefused as exc:
            raise urllib3.exceptions.NewConnectionError(self, str(exc)) from exc
        error: Exception | None = None
        for answer in answers:
            try:
                sock = urllib3.util.connection.create_connection(
                    (answer[4][0], self.port), self.timeout, source_address=self.source_address,
                    socket_options=self.socket_options)
            except socket.timeout as exc:
                error = urllib3.exceptions.ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})")
                error.__cause__ = exc
            except OSError as exc:
                error = urllib3.exceptions.NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
            else:
                return sock
        raise error


class _RecordingHTTPConnection(_CheckedAddress, HTTPConnection):
    response_class = _BoundedHeadResponse

    def connect(self) -> None:
        super().connect()
        self.sock = _RecordingSocket(self.sock)


class _RecordingHTTPSConnection(_CheckedAddress, HTTPSConnection):
    response_class = _BoundedHeadResponse

    def connect(self) -> None:
        super().connect()
        self.sock = _RecordingSocket(self.sock)


class _RecordingHTTPPool(HTTPConnectionPool):
    ConnectionCls = _RecordingHTTPConnection


class _RecordingHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _RecordingHTTPSConnection


class FetchSession:
    """One worker's connections (urllib3 pools whose sockets record raw bytes), default
    headers and cookie jar. Not thread safe: make one per thread."""

    def __init__(self, user_agent: str, verify_tls: bool, pool_size: int,
                 policy: AddressPolicy | None = None) -> None:
        self.policy = policy or AddressPolicy()
        self.pool = urllib3.PoolManager(
            num_pools=pool_size, maxsize=1, block=False,
            cert_reqs="CERT_REQUIRED" if verify_tls else "CERT_NONE",
            ca_certs=requests.certs.where() if verify_tls else None,
        )
        self.pool.pool_classes_by_scheme = {"http": _RecordingHTTPPool, "https": _RecordingHTTPSPool}
        self.headers = {
            "User-Agent": user_agent,
            # Only encodings that every WARC reader can undo.
            "Accept-Encoding": "gzip, deflate",
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        }
        self.cookies = RequestsCookieJar()

    def close(self) -> None:
        self.pool.clear()


def make_session(
    user_agent: str = DEFAULT_USER_AGENT, verify_tls: bool = True, pool_size: int = 10,
    policy: AddressPolicy | None = None,
) -> FetchSession:
    """Connections whose every byte is recorded. One per thread.

    urllib3 directly, not a requests.Session: the crawler spends most of its time in
    per-request overhead, and requests' session layer doubled it. requests still gives
    the URL preparation (IDNA, quoting) and the cookie handling, so a request is the
    one requests would have sent.
    """
    if not verify_tls:
        # The operator chose this and it is recorded in warcinfo; no warning per request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return FetchSession(user_agent, verify_tls, pool_size, policy)


def _classify(exc: BaseException) -> str:
    """The kind of a fetch failure, for the evidence: what went wrong on the wire."""
    causes, seen = [], exc
    while seen is not None and len(causes) < 10:
        causes.append(seen)
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (seen.__cause__ or seen.__context__)
    text = " ".join(f"{type(e).__name__} {e}" for e in causes)
    if any(isinstance(e, AddressRefused) for e in causes):
        return "address-refused"
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, urllib3.exceptions.LocationValueError)):
        return "invalid-url"
    if any(isinstance(e, (urllib3.exceptions.SSLError, ssl.SSLError)) for e in causes):
        return "tls"
    if any(isinstance(e, (urllib3.exceptions.NameResolutionError, socket.gaierror)) for e in causes):
        return "dns"
    # before timeouts: urllib3's NewConnectionError is a kind of ConnectTimeoutError
    if any(isinstance(e, ConnectionRefusedError) for e in causes) or "Connection refused" in text:
        return "refused"
    if any(isinstance(e, (urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)) for e in causes):
        return "timeout"
    if any(isinstance(e, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                          http.client.IncompleteRead)) for e in causes) or "IncompleteRead" in text:
        return "reset"
    return "protocol"


def _prepare_url(url: str) -> str:
    """The URL as requests would send it: IDNA host, invalid characters quoted."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    return prepared.url


def fetch(
    session: FetchSession,
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
    `deadline` (time.monotonic) caps the whole exchange: a body still coming then is cut
    (WARC-Truncated: time), and a server that has not answered by then (stalled before
    its headers, or not accepting the connection) fails with a timeout there instead of
    after the full `timeout`.
    """
    result = FetchResult(url=url, started=datetime.now(timezone.utc))
    recorder = Recorder(spool_dir)
    began = time.monotonic()
    if deadline is None:
        deadline = began + max(timeout * 4, 120.0)
    # the crawl's deadline (--max-time) bounds the wait for the connection and the head
    # too, not only the body: a server stalled before its headers would otherwise hold
    # the crawl for the whole --timeout past its end
    wait = min(timeout, max(MIN_WAIT, deadline - began))
    _current.recorder = recorder
    _current.policy = session.policy
    response = None
    try:
        try:
            result.url = _prepare_url(url)
            sent = {**session.headers, **(headers or {})}
            if session.cookies:
                cookie = get_cookie_header(session.cookies, _cookie_view(result.url, sent))
                if cookie:
                    sent["Cookie"] = cookie
            response = session.pool.urlopen(
                "GET", result.url, headers=sent, redirect=False, retries=False,
                preload_content=False, decode_content=False,
                timeout=urllib3.Timeout(connect=wait, read=wait),
            )
        except Exception as exc:  # noqa: BLE001 - every failure is evidence, recorded below
            result.error_kind = _classify(exc)
            result.error = f"{type(exc).__name__}: {exc}"
            if result.error_kind == "timeout" and wait < timeout:
                result.error = f"no answer before the crawl's deadline (--max-time): {result.error}"
        else:
            result.status = response.status
            result.headers = {k.lower(): v for k, v in response.headers.items()}
            if "set-cookie" in result.headers:
                extract_cookies_to_jar(session.cookies, _cookie_view(result.url, sent), response)
            try:
                for chunk in response.stream(READ_CHUNK, decode_content=False):
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
        _current.recorder = _current.policy = None
        if response is not None:
            if result.truncated:
                # Never hand a half-read connection back to the pool.
                response.close()
            response.release_conn()
        result.elapsed = time.monotonic() - began

    recorder.finish(result)
    return result
