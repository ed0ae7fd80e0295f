"""The recording proxy on its own, with requests as the client, and its HTTP framing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy
from archive.capture.proxy.framing import SocketReader, body_length, read_head, relay_body
from archive.hashing import warc_digest
from tests.site import SiteServer, slow, standard_site, streamed
from tests.tls import make_server_cert
from archive.capture.addresses import AddressPolicy  # noqa: E402

LOOPBACK = AddressPolicy(allow_private=True)   # the test servers are on 127.0.0.1


class Collected:
    """A sink that keeps every exchange with its recorded response bytes."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.lock = threading.Lock()

    def begin(self, url):
        return url

    def end(self, token, result, notes):
        raw = result.response.read() if result.response else None
        with self.lock:
            self.items.append((result, raw, notes))

    def one(self, url):
        found = [item for item in self.items if item[0].url == url]
        assert len(found) == 1, (url, [i[0].url for i in self.items])
        return found[0]


@pytest.fixture
def ca():
    authority = InterceptionCA()
    yield authority
    authority.close()


def test_the_interception_key_is_not_left_on_disk(tmp_path, monkeypatch):
    """A capture killed -9 cannot clean up: the proxy's leaf key must not sit in the temporary
    folder while the capture runs (it is on disk only while a TLS context loads it)."""
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    authority = InterceptionCA()
    context = authority.server_context("example.org")
    assert context is authority.server_context("EXAMPLE.org")       # made once per host
    assert list(tmp_path.iterdir()) == []
    key = authority._key_pem
    assert not any(key in f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    authority.close()


def proxied(proxy: RecordingProxy) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy.url, "https": proxy.url}
    return session


def test_recorded_bytes_are_the_bytes_served_and_passed_on(site, ca):
    site.site.add("/unchanged", handler=not_modified)
    sink = Collected()
    with RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        session = proxied(proxy)
        assert session.get(site.url("/unchanged")).status_code == 304
        chunked = session.get(site.url("/chunked"))
        gzipped = session.get(site.url("/gzipped"), headers={"Proxy-Connection": "keep-alive"})
        assert session.get(site.url("/missing")).status_code == 404
    served = site.site.served
    assert chunked.content == served["/chunked"]                     # de-chunked by requests
    assert gzipped.content == gzip.decompress(served["/gzipped"])

    result, raw, _ = sink.one(site.url("/chunked"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and body.startswith(b"7\r\n")
    assert body.endswith(b"0\r\n\r\n")
    assert b"".join(body.split(b"\r\n")[1::2]) == served["/chunked"]
    assert result.block_digest == warc_digest(hashlib.sha256(raw))
    assert result.payload_digest == warc_digest(hashlib.sha256(body))
    assert result.ip == "127.0.0.1" and result.status == 200 and not result.truncated

    result, raw, _ = sink.one(site.url("/gzipped"))
    assert raw.endswith(b"\r\n\r\n" + served["/gzipped"])               # content encoding kept
    # What went to the server: origin-form request line, no proxy headers, our encodings.
    sent = result.request.decode("latin-1")
    assert sent.startswith("GET /gzipped HTTP/1.1\r\n")
    assert "proxy-connection" not in sent.lower()
    assert "Accept-Encoding: gzip, deflate\r\n" in sent

    # A 304 has no body whatever its Content-Length says; the connection went on.
    result, raw, _ = sink.one(site.url("/unchanged"))
    assert result.status == 304 and raw.endswith(b"Content-Length: 5000\r\n\r\n")


def not_modified(handler) -> None:
    handler.send_response(304)
    handler.send_header("Content-Length", "5000")
    handler.end_headers()


def test_https_through_connect_records_the_real_servers_certificate(tmp_path, ca):
    cert = make_server_cert(tmp_path / "tls")
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_bytes(ca.ca_cert.public_bytes(serialization.Encoding.PEM))
    sink = Collected()
    with SiteServer(standard_site(), tls=cert) as server, \
            RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK, verify_tls=False)) as proxy:
        session = proxied(proxy)
        session.verify = str(bundle)          # the client trusts the proxy's CA only
        response = session.get(server.url("/about"))
        assert response.status_code == 200
        assert response.content == server.site.served["/about"]
    result, raw, _ = sink.one(server.url("/about"))
    assert result.cert_der == cert.der            # the server's certificate, not the proxy's
    assert result.tls["version"].startswith("TLS")
    assert raw.endswith(server.site.served["/about"])


def test_unverifiable_server_is_a_recorded_tls_failure(tmp_path, ca):
    cert = make_server_cert(tmp_path / "tls")
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_bytes(ca.ca_cert.public_bytes(serialization.Encoding.PEM))
    sink = Collected()
    with SiteServer(standard_site(), tls=cert) as server, RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        session = proxied(proxy)
        session.verify = str(bundle)
        assert session.get(server.url("/")).status_code == 502
    result, raw, _ = sink.one(server.url("/"))
    assert raw is None and result.status is None
    assert result.error_kind == "tls" and "CERTIFICATE_VERIFY_FAILED" in result.error


def test_refused_connection_is_recorded_and_answered_502(ca):
    sink = Collected()
    with socket.socket() as closed, RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/x"
        response = proxied(proxy).get(url)
    assert response.status_code == 502 and b"could not fetch" in response.content
    result, raw, _ = sink.one(url)
    # Nothing reached a server, so there is no request record, as with the crawler.
    assert raw is None and result.error_kind == "refused" and result.request == b""


def test_body_over_the_limit_is_truncated(site, ca):
    site.site.add("/big", handler=streamed(2_000_000))
    sink = Collected()
    with RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK, max_body=100_000)) as proxy:
        with pytest.raises(requests.exceptions.RequestException):
            proxied(proxy).get(site.url("/big"))
    result, raw, _ = sink.one(site.url("/big"))
    assert result.truncated == "length" and result.status == 200
    assert 100_000 < result.body_bytes < 2_000_000 and len(raw) == result.response_length


def test_closing_cuts_and_records_an_exchange_still_running(site, ca):
    site.site.add("/stuck", handler=slow(60))
    sink = Collected()
    proxy = RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)).start()
    errors = []
    client = threading.Thread(target=lambda: _get_quietly(proxied(proxy), site.url("/stuck"), errors))
    client.start()
    deadline = time.monotonic() + 10
    while "/stuck" not in site.site.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    proxy.close()
    assert time.monotonic() - began < 10
    client.join(10)
    result, raw, _ = sink.one(site.url("/stuck"))
    assert result.error_kind == "timeout" and "capture ended" in result.error and raw is None


def _get_quietly(session, url, errors):
    try:
        session.get(url, timeout=30)
    except requests.exceptions.RequestException as exc:
        errors.append(exc)


# -- framing ---------------------------------------------------------------------

class _Pieces:
    """A socket whose recv hands out predetermined pieces."""

    def __init__(self, data: bytes, cuts: list[int]) -> None:
        points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
        self.pieces = [data[a:b] for a, b in zip(points, points[1:])]

    def recv(self, size: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


def _chunked(body: bytes, sizes: list[int]) -> bytes:
    out, pos = [], 0
    for size in sizes:
        if pos >= len(body):
            break
        piece = body[pos:pos + size]
        out.append(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        pos += size
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    return b"".join(out) + b"0\r\nTrailer: yes\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), max_size=10),
       cuts=st.lists(st.integers(0, 10_000), max_size=20), chunked=st.booleans())
def test_framing_hands_on_exactly_one_message_however_it_arrives(body, sizes, cuts, chunked):
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    encoded = _chunked(body, sizes) if chunked else body
    message = b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n" + encoded
    following = b"HTTP/1.1 204 No Content\r\n\r\n"
    reader = SocketReader(_Pieces(message + following, cuts))
    emitted = []
    head = read_head(reader, emitted.append)
    relay_body(reader, body_length(head, "GET"), emitted.append)
    assert b"".join(emitted) == message
    assert read_head(reader).status == 204          # the next message starts where it should


def early_hints(handler) -> None:
    handler.send_response_only(103)
    handler.send_header("Link", "</style.css>; rel=preload")
    handler.end_headers()
    handler.wfile.flush()
    body = b"final body"
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def echo_websocket(handler) -> None:
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.end_headers()
    handler.wfile.flush()
    while data := handler.connection.recv(1024):
        handler.connection.sendall(data.upper())
    handler.close_connection = True


def _raw_exchange(proxy, request: bytes, then: bytes = b"", expect: bytes = b"") -> bytes:
    host, port = proxy.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        if then:
            while b"\r\n\r\n" not in received:
                received += sock.recv(4096)
            sock.sendall(then)
            while not received.endswith(expect):
                received += sock.recv(4096)
            return received
        while data := sock.recv(4096):
            received += data
        return received


def test_informational_response_is_passed_on_and_kept_apart(site, ca):
    site.site.add("/early", handler=early_hints)
    sink = Collected()
    url = site.url("/early")
    with RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        got = _raw_exchange(proxy, f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 103") and got.endswith(b"final body")
    result, raw, notes = sink.one(url)
    # The response record is the final response; the 103 goes to the metadata record.
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"final body")
    assert result.status == 200
    assert base64.b64decode(notes["informational-response"][0]).startswith(b"HTTP/1.1 103")


def test_websocket_upgrade_is_recorded_then_passed_through(site, ca):
    site.site.add("/socket", handler=echo_websocket)
    sink = Collected()
    url = site.url("/socket")
    with RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        got = _raw_exchange(
            proxy, f"GET {url} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".encode(),
            then=b"hello", expect=b"HELLO")
    assert got.startswith(b"HTTP/1.1 101") and got.endswith(b"HELLO")
    result, raw, notes = sink.one(url)
    assert result.status == 101 and raw.startswith(b"HTTP/1.1 101") and "not recorded" in notes["note"]


def test_proxy_benchmark_smoke():
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_proxy.py"
    proc = subprocess.run([sys.executable, str(script), "--mib", "4", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["response_bytes"] == 4 << 20 and result["ratio"] > 0 and result["peak_rss_mb"] > 0


class Held(Collected):
    """A sink whose end() of the first exchange waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.first_ending = threading.Event()

    def begin(self, url):
        return None                         # one token for all, as the media session's

    def end(self, token, result, notes):
        if not self.first_ending.is_set():
            self.first_ending.set()
            assert self.release.wait(30)
        super().end(token, result, notes)


def test_write_behind_serves_the_next_request_while_the_last_is_written(site, ca):
    """With write_behind, a connection carries its next request while the sink still takes
    the last exchange (a stream's next segment is fetched while the last is written); the
    exchanges reach the sink in order, settle() waits for the ones queued, and close()
    returns only when every exchange handed over has been taken."""
    sink = Held()
    first, second = site.url("/chunked"), site.url("/gzipped")
    proxy = RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK, write_behind=2)).start()
    try:
        session = proxied(proxy)
        assert session.get(first).status_code == 200
        assert sink.first_ending.wait(10)
        # the sink is still busy with the first exchange: the second is served all the same
        assert session.get(second).status_code == 200
        assert sink.items == []
        settled = threading.Thread(target=proxy.settle, args=(None, "test"))
        settled.start()
        settled.join(0.3)
        assert settled.is_alive()           # the first exchange is not yet taken by the sink
        sink.release.set()
        settled.join(10)
        assert not settled.is_alive()
    finally:
        sink.release.set()
        proxy.close()
    assert [item[0].url for item in sink.items] == [first, second]
    assert sink.one(second)[1].startswith(b"HTTP/1.1 200")
    assert proxy._in_flight == {}


def test_a_large_body_is_hashed_in_order_on_threads(site, ca):
    """Past recorder.SPREAD_AT the block and payload digests are computed on threads of
    their own: they are still those of the bytes received, in order (a body of random
    bytes: pieces hashed out of order or twice would give other digests)."""
    from archive.capture.recorder import SPREAD_AT
    body = random.Random(7).randbytes(SPREAD_AT + (3 << 20) + 12345)
    site.site.add("/large", body, content_type="application/octet-stream")
    sink = Collected()
    with RecordingProxy(sink, ca, ProxyOptions(policy=LOOPBACK)) as proxy:
        assert proxied(proxy).get(site.url("/large")).content == body
    result, raw, _ = sink.one(site.url("/large"))
    assert raw.endswith(body) and len(raw) == result.response_length
    assert result.block_digest == warc_digest(hashlib.sha256(raw))
    assert result.payload_digest == warc_digest(hashlib.sha256(body))
