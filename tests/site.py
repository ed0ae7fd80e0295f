"""A real HTTP server on 127.0.0.1 serving a generated site with the awkward cases.

Every response body it sends is remembered by path, so tests can compare the bytes in
the WARC with the bytes that were served.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    chunked: bool = False
    gzip: bool = False
    chunk_size: int = 7                 # bytes of body in each chunk, when chunked
    gzip_level: int = 9                 # compression level, when gzip
    handler: Callable | None = None     # handler(request_handler) does everything itself


class Site:
    """Routes by path; edit `routes` between captures to change the site."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.served: dict[str, bytes] = {}   # path -> body bytes as sent (before chunking)
        self.times: list[tuple[str, float]] = []   # (path, time.monotonic()) of each request
        self.delay = 0.0
        self.active = 0          # requests being answered now, and the most at once
        self.max_active = 0
        self.lock = threading.Lock()

    def add(self, path: str, body: bytes | str = b"", **kwargs) -> Route:
        if isinstance(body, str):
            body = body.encode("utf-8")
        route = Route(body=body, **kwargs)
        self.routes[path] = route
        return route

    def html(self, path: str, title: str, body_html: str, **kwargs) -> Route:
        return self.add(
            path, f"<!doctype html><html><head><title>{title}</title></head>"
                  f"<body>{body_html}</body></html>", **kwargs)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site: Site

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes; without this every response stalls ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        site = self.site
        with site.lock:
            site.requests.append(self.path)
            site.times.append((self.path, time.monotonic()))
            site.active += 1
            site.max_active = max(site.max_active, site.active)
        try:
            self._answer(site)
        finally:
            with site.lock:
                site.active -= 1

    def _answer(self, site: Site) -> None:
        if site.delay:
            time.sleep(site.delay)
        route = site.routes.get(self.path)
        if route is None:
            route = Route(b"<html><body>not found</body></html>", status=404)
        if route.handler:
            route.handler(self)
            return
        body = gzip.compress(route.body, route.gzip_level, mtime=0) if route.gzip else route.body
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.gzip:
            self.send_header("Content-Encoding", "gzip")
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with site.lock:
            site.served[self.path] = body
        if route.chunked:
            for start in range(0, len(body), route.chunk_size):
                piece = body[start:start + route.chunk_size]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)


def reset_after(n_bytes: int, declared: int = 100_000):
    """A handler that promises `declared` bytes, sends n_bytes, then resets the connection."""
    def handler(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(b"x" * n_bytes)
        h.wfile.flush()
        time.sleep(0.05)
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.close_connection = True
    return handler


def slow(seconds: float, body: bytes = b"slow"):
    def handler(h: _Handler) -> None:
        time.sleep(seconds)
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return handler


def streamed(size: int, chunk: int = 1 << 20, fill: bytes | None = None):
    """A large binary body generated on the fly (deterministic bytes; `fill` repeated
    instead makes it as compressible as a body can be)."""
    def handler(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(size))
        h.end_headers()
        block = (fill or bytes(range(256))) * (chunk // len(fill or bytes(range(256))))
        sent = 0
        while sent < size:
            piece = block[: min(chunk, size - sent)]
            h.wfile.write(piece)
            sent += len(piece)
    return handler


def endless(chunk: int = 1 << 16):
    """A chunked response that never ends (until the client hangs up)."""
    def handler(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        piece = b"%x\r\n%s\r\n" % (chunk, b"x" * chunk)
        while True:
            h.wfile.write(piece)
    return handler


def fails_then(status: int, headers: dict, times: int = 1, body: bytes = b"<html>ok</html>"):
    """Answers `status` with `headers` the first `times` requests, then 200 with `body`."""
    calls = []

    def handler(h: _Handler) -> None:
        calls.append(1)
        code, extra, payload = (status, headers, b"busy") if len(calls) <= times else (200, {}, body)
        h.send_response(code)
        h.send_header("Content-Type", "text/html")
        for name, value in extra.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)
    return handler


# serve_forever() looks for shutdown() every poll_interval, 0.5 s by default: every test
# that stopped a server within half a second of starting it waited out the rest.
POLL_INTERVAL = 0.02


def serving_thread(server: socketserver.BaseServer) -> threading.Thread:
    """A daemon thread that serves `server`, whose shutdown() returns within POLL_INTERVAL."""
    return threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                            daemon=True)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A crawler that stops reading (--max-body, a timeout) breaks the pipe: expected.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class SiteServer:
    def __init__(self, site: Site, tls=None, host: str = "127.0.0.1",
                 protocol: str = "HTTP/1.1") -> None:
        """`tls`: a tests.tls.ServerCert to serve HTTPS with; `host`: any loopback
        address (127.0.0.2 makes a second host, like a CDN); `protocol` "HTTP/1.0": the
        server closes the connection after each answer, as many still do."""
        handler = type("Handler", (_Handler,), {"site": site, "protocol_version": protocol})
        self.site = site
        self.httpd = _Server((host, 0), handler)
        scheme = "http"
        if tls is not None:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert_file, tls.key_file)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.port = self.httpd.server_address[1]
        self.base = f"{scheme}://{host}:{self.port}"
        self.thread = serving_thread(self.httpd)

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> "SiteServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def standard_site() -> Site:
    """A page with requisites, a linked page, redirects, errors and odd encodings."""
    site = Site()
    site.html("/", "Home", (
        '<link rel="stylesheet" href="/style.css"><script src="/app.js"></script>'
        '<img src="/img/a.png"><img srcset="/img/b.png 2x">'
        '<a href="/about">About</a> <a href="/news/1">News</a>'
    ))
    site.add("/style.css", 'body{background:url("/img/bg.png")} @import "/print.css";',
             content_type="text/css")
    site.add("/print.css", "p{color:black}", content_type="text/css")
    site.add("/app.js", "console.log('app')", content_type="application/javascript")
    for name in ("a", "b", "bg"):
        site.add(f"/img/{name}.png", PNG + name.encode(), content_type="image/png")
    site.html("/about", "About", '<a href="/">home</a><img src="/img/a.png">')
    site.html("/news/1", "News 1", '<a href="/news/2">next</a>')
    site.html("/news/2", "News 2", '<a href="/news/3">next</a>')
    site.html("/news/3", "News 3", "end")
    site.html("/chunked", "Chunked", "<p>" + "chunked body " * 20 + "</p>", chunked=True)
    site.html("/gzipped", "Gzipped", "<p>" + "compressed " * 50 + "</p>", gzip=True)
    site.add("/latin1", "<html><head><title>Caf\xe9</title></head><body>na\xefve</body></html>"
             .encode("latin-1"), content_type="text/html; charset=iso-8859-1")
    site.add("/redirect", status=302, headers={"Location": "/about"})
    site.add("/missing", "<html>gone</html>", status=404)
    site.add("/error", "<html>oops</html>", status=500)
    return site


SJIS_TITLE = "\u65e5\u672c\u8a9e\u306e\u30da\u30fc\u30b8"   # "Japanese page"
SHARED_PNG = PNG + b"shared"


def crawl_site(cdn: str) -> Site:
    """A site to crawl at depth 3 with every awkward case; `cdn` is the base URL of a
    second host (tests.site.cdn_site) holding some of its requisites.

    In scope at --depth 3 --scope host: / , /section/{1,2}, /section/N/item/{1,2},
    /section/N/item/M/detail, /sjis, /sjis/next; /section/N/item/M/detail/deeper is depth 4.
    """
    site = Site()
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.html("/", "Crawl home", (
        '<link rel="stylesheet" href="/style.css">'
        f'<script src="{cdn}/cdn/lib.js"></script><img src="{cdn}/cdn/logo.png">'
        '<a href="/section/1">one</a> <a href="/section/2">two</a> <a href="/sjis">sjis</a>'
        '<a href="/private/secret">private</a>'
        f'<a href="{cdn}/cdn/page.html">a page on the CDN host: out of scope</a>'
    ))
    site.add("/style.css", 'body{background:url("/img/bg.png")}', content_type="text/css")
    site.add("/img/bg.png", PNG + b"bg", content_type="image/png")
    for n in (1, 2):
        site.html(f"/section/{n}", f"Section {n}", (
            f'<img src="/img/s{n}.png"><img src="{cdn}/cdn/logo.png">'
            + "".join(f'<a href="/section/{n}/item/{m}">item {m}</a>' for m in (1, 2))
        ))
        site.add(f"/img/s{n}.png", PNG + f"s{n}".encode(), content_type="image/png")
        for m in (1, 2):
            base = f"/section/{n}/item/{m}"
            # the same image bytes at every item's own URL: stored once, then revisits
            site.html(base, f"Item {n}.{m}", (
                f'<img src="/img/shared-{n}-{m}.png"><a href="{base}/detail">detail</a>'))
            site.add(f"/img/shared-{n}-{m}.png", SHARED_PNG, content_type="image/png")
            site.html(f"{base}/detail", f"Detail {n}.{m}", f'<a href="{base}/detail/deeper">deeper</a>')
            site.html(f"{base}/detail/deeper", "Too deep", "depth 4")
    site.add("/sjis", (
        '<html><head><meta charset="shift_jis"><title>' + SJIS_TITLE + '</title></head>'
        '<body><a href="/sjis/next">\u6b21</a></body></html>').encode("shift_jis"),
        content_type="text/html")
    site.html("/sjis/next", "After SJIS", "ok")
    site.html("/private/secret", "Secret", "robots.txt says no")
    return site


def failures_site() -> Site:
    """Every kind of failure a crawl must record, linked from /."""
    site = Site()
    links = ["/missing", "/error", "/reset", "/slow", "/busy", "/big.bin",
             "/chain/0", "/loop/a", "/long/0"]
    site.html("/", "Failures", "".join(f'<a href="{p}">{p}</a>' for p in links))
    site.add("/missing", "<html>gone</html>", status=404)
    site.add("/error", "<html>oops</html>", status=500)
    site.add("/reset", handler=reset_after(1000))
    site.add("/slow", handler=slow(5.0))
    site.add("/busy", handler=fails_then(503, {"Retry-After": "2"}))
    site.add("/big.bin", handler=streamed(3 * 1024 * 1024))
    for n in range(3):
        site.add(f"/chain/{n}", status=301, headers={"Location": f"/chain/{n + 1}"})
    site.html("/chain/3", "End of chain", "arrived")
    site.add("/loop/a", status=302, headers={"Location": "/loop/b"})
    site.add("/loop/b", status=302, headers={"Location": "/loop/a"})
    for n in range(12):
        site.add(f"/long/{n}", status=302, headers={"Location": f"/long/{n + 1}"})
    site.html("/long/12", "Never reached", "too far")
    return site


def cdn_site() -> Site:
    site = Site()
    site.add("/cdn/lib.js", "console.log('cdn')", content_type="application/javascript")
    site.add("/cdn/logo.png", PNG + b"cdn-logo", content_type="image/png")
    site.html("/cdn/page.html", "CDN page", "a page, not a requisite")
    return site


def generated_site(pages: int, fanout: int = 3) -> Site:
    """`pages` pages in a tree (page i links to pages fanout*i+1 ... fanout*i+fanout, so
    500 pages reach depth 5), each with its own stylesheet, script and two images, and
    a link home. Page 0 is `/`."""
    site = Site()

    def path(i: int) -> str:
        return "/" if i == 0 else f"/p/{i}.html"

    for i in range(pages):
        children = [c for c in range(fanout * i + 1, fanout * i + fanout + 1) if c < pages]
        site.html(path(i), f"Page {i}", (
            f'<link rel="stylesheet" href="/s/{i}.css"><script src="/j/{i}.js"></script>'
            f'<img src="/i/{i}-a.png"><img src="/i/{i}-b.png"><a href="/">home</a>'
            + "".join(f'<a href="{path(c)}">page {c}</a>' for c in children)
            + f"<p>{'Some text of page %d. ' % i * 20}</p>"
        ))
        site.add(f"/s/{i}.css", f"body{{margin:{i}px}}", content_type="text/css")
        site.add(f"/j/{i}.js", f"console.log({i})", content_type="application/javascript")
        for name in ("a", "b"):
            site.add(f"/i/{i}-{name}.png", PNG + f"{i}{name}".encode(), content_type="image/png")
    return site


NEWS_SENTENCE = "according to the Syrian Observatory for Human Rights, shelling resumed at dawn"
ARABIC_WORD = "\u0627\u0644\u0645\u0631\u0635\u062f"          # المرصد ("the observatory"), undiacritised
ARABIC_VOWELLED = "\u0627\u0644\u0652\u0645\u064e\u0631\u0652\u0635\u064e\u062f\u064f"   # ٱلْمَرْصَدُ as written with harakat
REMOVED_SENTENCE = "The ministry denies any involvement in the convoy attack"
PDF_SENTENCE = "Field report on detention centres"


def search_site() -> Site:
    """Pages to search: English news, an Arabic page in windows-1256 (charset only in a
    <meta>), Russian, a chunked gzip page, a PDF, and /statement, whose last sentence a test
    removes between two captures (`site.routes['/statement'] = ...`)."""
    site = Site()
    site.html("/", "Search home", "".join(f'<a href="{p}">{p}</a>' for p in (
        "/news", "/arabic", "/russian", "/statement", "/zipped", "/report.pdf")))
    site.html("/news", "Shelling resumes", (
        f'<p>Reporters said that, {NEWS_SENTENCE}.</p>'
        '<script>var hidden = "scriptword";</script><style>.x{color:red}</style>'))
    site.add("/arabic", (
        '<html><head><meta charset="windows-1256"><title>\u062a\u0642\u0631\u064a\u0631</title>'
        '<meta name="description" content="\u062a\u0642\u0631\u064a\u0631 \u0645\u064a\u062f\u0627\u0646\u064a"></head>'
        f'<body><p>\u0642\u0627\u0644 {ARABIC_VOWELLED} \u0627\u0644\u0633\u0648\u0631\u064a \u0644\u062d\u0642\u0648\u0642 '
        '\u0627\u0644\u0625\u0646\u0633\u0627\u0646 \u0625\u0646 \u0627\u0644\u0642\u0635\u0641 \u0627\u0633\u062a\u0623\u0646\u0641</p>'
        '</body></html>').encode("windows-1256"), content_type="text/html")
    site.html("/russian", "\u041d\u043e\u0432\u043e\u0441\u0442\u0438",
              "<p>\u041e\u0431\u0441\u0442\u0440\u0435\u043b\u044b \u0432\u043e\u0437\u043e\u0431\u043d\u043e\u0432\u0438\u043b\u0438\u0441\u044c "
              "\u043d\u0430 \u0440\u0430\u0441\u0441\u0432\u0435\u0442\u0435</p>")
    site.html("/statement", "Ministry statement", f"<p>We mourn the victims. {REMOVED_SENTENCE}.</p>")
    site.html("/zipped", "Zipped report", "<p>" + "casualty figures " * 30 + "</p>", chunked=True, gzip=True)
    site.add("/report.pdf", text_pdf(PDF_SENTENCE), content_type="application/pdf")
    return site


def text_pdf(sentence: str) -> bytes:
    """A one-page PDF showing `sentence` (ASCII) in Helvetica, xref offsets and all."""
    stream = f"BT /F1 12 Tf 72 720 Td ({sentence}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
