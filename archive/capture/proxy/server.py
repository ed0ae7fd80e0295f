"""A recording HTTP/HTTPS proxy for the capture browser.

The browser sends every request through this proxy. For HTTPS it opens a CONNECT
tunnel, which the proxy ends with a certificate from the capture's own throwaway CA
(archive.capture.proxy.ca) so that it can read the requests; it then makes its own
connection to the real server (verifying its certificate unless told not to) and
records that server's certificate, address and raw bytes. What is recorded is what
crossed the wire between the proxy and the server: the request as sent and the
response as received (status line, headers, chunk framing and content encoding
untouched), the same bytes that are passed on to the browser.

Each finished exchange is handed to a sink as a FetchResult, the same value the HTTP
crawler's fetcher produces, so both are written to the WARC the same way.
"""

from __future__ import annotations

import base64
import logging
import selectors
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import requests.certs

from archive.capture.addresses import AddressPolicy, AddressRefused, connect
from archive.capture.proxy.framing import (
    READ_CHUNK, Head, IncompleteMessage, ProtocolError, SocketReader, body_length,
    read_head, relay_body,
)
from archive.capture.proxy.ca import InterceptionCA
from archive.capture.recorder import FetchResult, Recorder
from archive.hashing import Worker

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 64 * 1024 * 1024
# Headers meant for the proxy itself, never passed on.
PROXY_HEADERS = {"proxy-connection", "proxy-authorization", "proxy-authenticate"}
DEFAULT_PORTS = {"http": 80, "https": 443}
# Sent again on a fresh connection when a kept-alive one turns out to be closed.
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
# How often the accepting thread looks whether it is to stop: close() waits up to this
# long (socketserver's half a second was a fixed cost of every media capture).
SHUTDOWN_POLL = 0.05


@dataclass
class ProxyOptions:
    timeout: float = 30.0                   # connecting upstream, and each read
    max_body: int | None = None              # body bytes kept per response
    verify_tls: bool = True                  # verify the real servers' certificates
    spool_dir: str | None = None
    # Only encodings every WARC reader can undo, as the HTTP crawler asks for.
    accept_encoding: str | None = "gzip, deflate"
    # which addresses upstream connections may go to: by default, public ones only
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    # A response whose client went away is still read to its end (a browser cancels
    # what the page needed all the same); False: it is cut there (a media downloader
    # that gave up on a file too large must not have us fetch it whole).
    finish_abandoned: bool = True
    # extra request headers for a URL (--header, a seed URL's credentials), set over the
    # client's own of the same name
    extra_headers: Callable[[str], dict | None] | None = None
    # Finished exchanges handed to the sink by a thread of the proxy's own, up to this many
    # waiting, so that a connection carries its next request while the last response is
    # written (a stream's segments come one after another on one connection, and writing
    # each is as long as fetching it); 0: by the connection's thread, before it reads on.
    write_behind: int = 0


class ExchangeSink(Protocol):
    """Where finished exchanges go. Called from the proxy's connection threads (end(), with
    ProxyOptions.write_behind, from its writer's thread, in the order the exchanges ended)."""

    def begin(self, url: str) -> Any:
        """A request for `url` arrived; the value returned is passed to end().
        Raising Refused turns the request away unrecorded (out of the capture's scope)."""

    def end(self, token: Any, result: FetchResult, notes: dict) -> None:
        """The exchange is over (complete, cut short or failed); `result.response`
        is only valid during the call. `notes` holds extra metadata fields."""


class Refused(Exception):
    """Raised by a sink's begin(): this URL is not to be fetched (the message says why)."""


class _BodyLimit(Exception):
    pass


class _ClientGone(Exception):
    pass


def error_kind(exc: BaseException) -> str:
    """The kind of a failed exchange, in the crawler's vocabulary."""
    if isinstance(exc, AddressRefused):
        return "address-refused"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, (ConnectionError, IncompleteMessage)):
        return "reset"
    return "protocol"


def _abort(sock: socket.socket) -> None:
    """Shut a socket down from another thread (also a TLS one, below its TLS layer)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _authority(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if DEFAULT_PORTS.get(scheme) == port else f"{shown}:{port}"


def _split_authority(authority: str, scheme: str) -> tuple[str, int]:
    parts = urlsplit(f"//{authority}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ProtocolError(f"bad port in {authority[:100]!r}") from None
    if not parts.hostname:
        raise ProtocolError(f"no host in {authority[:100]!r}")
    return parts.hostname, port


class _Upstream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = SocketReader(sock)


class _ClientConnection:
    """One connection from the browser: plain proxy requests, or one CONNECT tunnel."""

    def __init__(self, proxy: "RecordingProxy", sock: socket.socket) -> None:
        self.proxy = proxy
        self.sock = sock
        self.reader = SocketReader(sock)
        self.tunnel: tuple[str, int] | None = None
        self.upstreams: dict[tuple, _Upstream] = {}

    # -- the browser's side ---------------------------------------------------
    def serve(self) -> None:
        try:
            while not self.proxy.closing:
                head = read_head(self.reader)
                if head is None:
                    return
                parts = head.start_line.split()
                if len(parts) != 3:
                    raise ProtocolError(f"bad request line {head.start_line[:80]!r}")
                method, target = parts[0].upper(), parts[1]
                if method == "CONNECT":
                    self._open_tunnel(target)
                    continue
                scheme, host, port, path, url = self._target(target)
                length = body_length(head)
                body = bytearray()

                def collect(data: bytes) -> None:
                    body.extend(data)
                    if len(body) > MAX_REQUEST_BODY:
                        raise ProtocolError("request body too large for the proxy")

                relay_body(self.reader, length, collect)
                if not self._exchange(scheme, host, port, url, method, path, head, bytes(body)):
                    return
        except (OSError, ProtocolError) as exc:
            log.debug("browser connection ended: %s", exc)
        finally:
            for upstream in self.upstreams.values():
                upstream.sock.close()
            self.proxy._forget(self.sock)
            self.sock.close()

    def _open_tunnel(self, target: str) -> None:
        if self.tunnel is not None:
            raise ProtocolError("CONNECT inside a tunnel")
        host, port = _split_authority(target, "https")
        self.sock.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        raw = self.sock
        self.sock = self.proxy.ca.server_context(host).wrap_socket(raw, server_side=True)
        self.proxy._track(self.sock, replaces=raw)
        self.reader = SocketReader(self.sock)
        self.tunnel = (host, port)

    def _target(self, target: str) -> tuple[str, str, int, str, str]:
        """(scheme, host, port, path for the upstream request line, URL recorded)."""
        if self.tunnel is not None:
            host, port = self.tunnel
            path = target if target.startswith("/") else "/" + target.lstrip("*")
            return "https", host, port, path, f"https://{_authority('https', host, port)}{path}"
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.netloc:
            raise ProtocolError(f"not a proxy request: {target[:100]!r}")
        host, port = _split_authority(parts.netloc, "http")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return "http", host, port, path, target

    def _send_to_browser(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _answer(self, status: bytes, text: str) -> None:
        """A response of the proxy's own (never recorded), and the connection closes."""
        body = f"archive capture proxy: {text}\n".encode("utf-8", "replace")
        self._send_to_browser(
            b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
        )

    def _gateway_error(self, url: str, message: str) -> None:
        self._answer(b"502 Bad Gateway", f"could not fetch {url}\n{message}")

    def _refuse(self, url: str, reason: str) -> None:
        self._answer(b"403 Forbidden", f"not fetched: {url}\n{reason}")

    # -- the server's side ----------------------------------------------------
    def _connect(self, scheme: str, host: str, port: int) -> tuple[_Upstream, bool]:
        key = (scheme, host, port)
        upstream = self.upstreams.get(key)
        if upstream is not None:
            return upstream, True
        sock = connect(self.proxy.options.policy, host, port, self.proxy.options.timeout)
        self.proxy._track(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                tls = self.proxy.client_context.wrap_socket(sock, server_hostname=host)
                self.proxy._track(tls, replaces=sock)
                sock = tls
        except BaseException:
            self.proxy._forget(sock)
            sock.close()
            raise
        upstream = self.upstreams[key] = _Upstream(sock)
        return upstream, False

    def _drop(self, scheme: str, host: str, port: int) -> None:
        upstream = self.upstreams.pop((scheme, host, port), None)
        if upstream is not None:
            self.proxy._forget(upstream.sock)
            upstream.sock.close()

    def _request_bytes(self, method: str, path: str, head: Head, body: bytes, url: str) -> bytes:
        lines = [f"{method} {path} HTTP/1.1\r\n"]
        encoding = self.proxy.options.accept_encoding
        adding = self.proxy.options.extra_headers
        extra = (adding(url) if adding else None) or {}
        replaced = {name.lower() for name in extra}
        for name, value in head.fields:
            lower = name.lower()
            if lower in PROXY_HEADERS or lower in replaced:
                continue
            if lower == "accept-encoding" and encoding:
                value = encoding
            lines.append(f"{name}: {value}\r\n")
        lines += [f"{name}: {value}\r\n" for name, value in extra.items()]
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body

    def _exchange(
        self, scheme: str, host: str, port: int, url: str, method: str, path: str,
        head: Head, body: bytes,
    ) -> bool:
        """Carry one request to the server and its response back, recording both.
        Returns whether the browser's connection can carry another request."""
        proxy = self.proxy
        try:
            token = proxy.sink.begin(url)
        except Refused as exc:
            self._refuse(url, str(exc))
            return False
        key = object()              # this exchange, until the sink's end() has returned
        with proxy._lock:
            proxy._in_flight[key] = token
        try:
            outcome = self._attempts(token, scheme, host, port, url, method,
                                     self._request_bytes(method, path, head, body, url))
        except BaseException:
            proxy._ended(key)
            raise
        proxy._hand_over(key, token, outcome)
        if outcome.upgraded is not None:
            self.splice(outcome.upgraded)
            return False
        if outcome.result.status is None and outcome.browser_ok and not outcome.sent_to_browser:
            self._gateway_error(url, outcome.result.error or "no response")
            return False
        return outcome.keep_browser and (head.get("connection") or "").lower() != "close"

    def _attempts(self, token: Any, scheme: str, host: str, port: int, url: str, method: str,
                  request: bytes) -> "_Exchange":
        for attempt in (1, 2):
            outcome = _Exchange(self, scheme, host, port, url, method, request)
            with self.proxy._lock:
                self.proxy._running[outcome] = token
            try:
                outcome.run()
            finally:
                with self.proxy._lock:
                    self.proxy._running.pop(outcome, None)
            # A kept-alive connection the server had already closed: nothing was
            # exchanged, so the request goes once more on a fresh connection.
            if outcome.stale and attempt == 1:
                outcome.discard()
                continue
            break
        return outcome

    def splice(self, upstream: _Upstream) -> None:
        """After 101 Switching Protocols (WebSocket): pass bytes both ways unrecorded
        until one side closes."""
        pairs = {self.sock: upstream.sock, upstream.sock: self.sock}
        for source, reader in ((self.sock, self.reader), (upstream.sock, upstream.reader)):
            pending = reader.take_buffer()
            if pending:
                pairs[source].sendall(pending)
        upstream.sock.settimeout(None)
        with selectors.DefaultSelector() as selector:
            for sock in pairs:
                selector.register(sock, selectors.EVENT_READ)
            while not self.proxy.closing:
                for key, _ in selector.select(timeout=1.0):
                    source = key.fileobj
                    data = source.recv(READ_CHUNK)
                    if not data:
                        return
                    while isinstance(source, ssl.SSLSocket) and source.pending():
                        data += source.recv(source.pending())
                    pairs[source].sendall(data)


class _Exchange:
    """One attempt at one request: the recording, and what became of the connections."""

    def __init__(self, conn: _ClientConnection, scheme: str, host: str, port: int,
                 url: str, method: str, request: bytes) -> None:
        self.conn = conn
        self.key = (scheme, host, port)
        self.method = method
        self.request = request
        self.recorder = Recorder(conn.proxy.options.spool_dir)
        self.result = FetchResult(url=url, started=datetime.now(timezone.utc))
        self.notes: dict = {}
        self.began = time.monotonic()
        self.stale = False
        self.browser_ok = True          # the browser is still there to receive bytes
        self.sent_to_browser = False
        self.keep_browser = False
        self.in_body = False
        self.upgraded: _Upstream | None = None
        self.cut_reason: str | None = None
        self.cut_truncated = "time"     # WARC-Truncated of a response cut by cut()
        self._upstream_sock: socket.socket | None = None
        self._cut_lock = threading.Lock()

    def cut(self, reason: str, truncated: str = "time") -> None:
        """Cut this exchange short from another thread; it is recorded with `reason` (and a
        response begun, as WARC-Truncated `truncated`)."""
        with self._cut_lock:
            self.cut_reason, self.cut_truncated = reason, truncated
            sock = self._upstream_sock
        if sock is not None:
            _abort(sock)

    def _emit(self, data: bytes) -> None:
        """A piece of the response: recorded, and passed on to the browser."""
        self.recorder.received(data)
        if self.in_body:
            self.result.body_bytes += len(data)
        if self.browser_ok:
            # A browser that went away (a cancelled image, say) does not stop the
            # recording: the server's response is read to its end all the same.
            self.browser_ok = self.conn._send_to_browser(data)
            self.sent_to_browser = True
            if not self.browser_ok and not self.conn.proxy.options.finish_abandoned:
                raise _ClientGone()
        limit = self.conn.proxy.options.max_body
        if limit is not None and self.result.body_bytes > limit:
            raise _BodyLimit()

    def run(self) -> None:
        conn, result = self.conn, self.result
        reused = False
        length: int | str = "close"
        try:
            upstream, reused = conn._connect(*self.key)
            with self._cut_lock:
                self._upstream_sock = upstream.sock
                if self.cut_reason:
                    raise ConnectionAbortedError(self.cut_reason)
            self.recorder.connected(upstream.sock)
            upstream.sock.sendall(self.request)
            self.recorder.sent(self.request)
            while True:
                head = read_head(upstream.reader)
                if head is None:
                    raise IncompleteMessage("the server closed the connection without a response")
                status = head.status
                if 100 <= status < 200 and status != 101:
                    # Informational (103 Early Hints...): passed on, kept in the metadata.
                    self.notes.setdefault("informational-response", []).append(
                        base64.b64encode(head.raw).decode("ascii"))
                    self.browser_ok = conn._send_to_browser(head.raw)
                    continue
                break
            result.status = status
            result.headers = {name.lower(): value for name, value in head.fields}
            self._emit(head.raw)
            self.in_body = True
            if status == 101:
                self.notes["note"] = "switched protocols (WebSocket): frames not recorded"
                self.upgraded = upstream
                self._finish()
                return
            length = body_length(head, self.method)
            relay_body(upstream.reader, length, self._emit)
            reusable = length != "close" and (head.get("connection") or "").lower() != "close" \
                and not head.start_line.upper().startswith("HTTP/1.0")
            if not reusable:
                conn._drop(*self.key)
            self.keep_browser = self.browser_ok and length != "close"
        except _BodyLimit:
            result.truncated = "length"
            conn._drop(*self.key)
        except _ClientGone:
            result.truncated = "unspecified"
            self.notes["note"] = "the client stopped reading: the rest was not fetched"
            conn._drop(*self.key)
        except Exception as exc:  # noqa: BLE001 - every failure is evidence, recorded
            conn._drop(*self.key)
            nothing_back = self.recorder.received_bytes == 0 and result.status is None
            if reused and nothing_back and not conn.proxy.closing and not self.cut_reason \
                    and self.method in IDEMPOTENT \
                    and isinstance(exc, (IncompleteMessage, ConnectionError)):
                self.stale = True
                return
            if conn.proxy.closing:
                kind, message = "timeout", "the capture ended before the exchange was complete"
            elif self.cut_reason:
                kind, message = "timeout", self.cut_reason
            else:
                kind, message = error_kind(exc), f"{type(exc).__name__}: {exc}"
            if result.status is not None:
                result.truncated = self.cut_truncated if self.cut_reason and not conn.proxy.closing \
                    else "time" if kind == "timeout" else "disconnect"
                message = f"body cut short: {message}"
            result.error_kind, result.error = kind, message
        self._finish()

    def _finish(self) -> None:
        self.result.elapsed = time.monotonic() - self.began
        self.recorder.finish(self.result)

    def discard(self) -> None:
        self.recorder.response.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True       # server_close() waits for every connection's thread
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        log.debug("proxy connection failed", exc_info=True)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        proxy: RecordingProxy = self.server.proxy
        proxy._track(self.request)
        _ClientConnection(proxy, self.request).serve()


class RecordingProxy:
    """The proxy of one capture, on a free port of 127.0.0.1."""

    def __init__(self, sink: ExchangeSink, ca: InterceptionCA,
                 options: ProxyOptions | None = None) -> None:
        self.sink = sink
        self.ca = ca
        self.options = options or ProxyOptions()
        self.closing = False
        self.client_context = self._client_context(self.options.verify_tls)
        self._sockets: set[socket.socket] = set()
        self._running: dict[_Exchange, Any] = {}    # exchange -> the sink's token
        # an exchange's key -> the sink's token, from begin() until end() has returned
        self._in_flight: dict[object, Any] = {}
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._writer: Worker | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL,), name="archive-proxy", daemon=True)

    @staticmethod
    def _client_context(verify: bool) -> ssl.SSLContext:
        if verify:
            # The trust store the HTTP crawler uses (requests' CA bundle).
            context = ssl.create_default_context(cafile=requests.certs.where())
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
        return context

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "RecordingProxy":
        if self.options.write_behind:
            self._writer = Worker("archive-proxy-writer", self.options.write_behind)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, cut every open connection (exchanges still running are
        recorded as cut short), and wait for every connection thread to finish."""
        self.closing = True
        self._server.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _abort(sock)
        self._server.server_close()
        # every connection's thread is done: what they handed over is written before we return
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()

    def cut(self, token: Any, reason: str) -> None:
        """Cut short every running exchange whose begin() gave `token` (a page that
        is done, say); each is recorded as cut short, with `reason`."""
        with self._lock:
            running = [exchange for exchange, owner in self._running.items() if owner is token]
        for exchange in running:
            exchange.cut(reason)

    def settle(self, token: Any, reason: str, truncated: str = "time", grace: float = 0.0) -> None:
        """Wait until the sink's end() has returned for every exchange whose begin() gave
        `token`, so that whatever they add is written: those still running after `grace`
        seconds are cut short (recorded with `reason`, a response begun as WARC-Truncated
        `truncated`)."""
        def settled() -> bool:
            return not any(owner is token for owner in self._in_flight.values())
        with self._settled:
            if self._settled.wait_for(settled, timeout=grace):
                return
        while True:
            with self._lock:
                running = [exchange for exchange, owner in self._running.items() if owner is token]
            for exchange in running:
                exchange.cut(reason, truncated)
            with self._settled:
                # again after a while: an exchange begun but not yet running was not cut
                if self._settled.wait_for(settled, timeout=0.5):
                    return

    def __enter__(self) -> "RecordingProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _hand_over(self, key: object, token: Any, outcome: "_Exchange") -> None:
        """The finished exchange to the sink: now, or queued for the writer's thread."""
        writer = self._writer
        if writer is not None:
            writer.submit(self._end, key, token, outcome)
        else:
            self._end(key, token, outcome)

    def _end(self, key: object, token: Any, outcome: "_Exchange") -> None:
        try:
            self.sink.end(token, outcome.result, outcome.notes)
        except Exception:  # noqa: BLE001 - the sink reports its own failures; the next
            # exchanges must still be ended (on the writer's thread, nothing else would)
            log.warning("the sink failed to take an exchange of %s", outcome.result.url, exc_info=True)
        finally:
            outcome.discard()
            self._ended(key)

    def _ended(self, key: object) -> None:
        with self._lock:
            self._in_flight.pop(key, None)
            self._settled.notify_all()

    def _track(self, sock: socket.socket, replaces: socket.socket | None = None) -> None:
        with self._lock:
            if replaces is not None:
                self._sockets.discard(replaces)
            self._sockets.add(sock)
        if self.closing:
            _abort(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
