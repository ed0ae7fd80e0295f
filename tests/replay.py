"""ReplayWeb.page itself (the pinned npm package, installed by scripts/install-replay),
embedded in a page served from 127.0.0.1 with the WACZ files beside it (answering Range
requests, as wabac.js reads a WACZ), driven in Debian's Chromium by Playwright.

What a court clerk given a capture sees: the replayed page (its frame), and what wabac.js
recorded of its checks (its IndexedDB `verification` store: the signature, the index
blocks' digests, the datapackage hash).
"""

from __future__ import annotations

import html
import json
import mimetypes
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from archive import replayweb
from archive.capture.browser import CHROMIUM_ARGS, find_chromium
from archive.serve.ranges import byte_range
from tests.site import serving_thread

TYPES = {".js": "application/javascript", ".wacz": "application/wacz", ".json": "application/json",
         ".html": "text/html; charset=utf-8"}


def replay_folder() -> Path:
    found = replayweb.locate()
    assert found, (f"ReplayWeb.page {replayweb.VERSION} is not installed in {replayweb.folder()}: "
                   "scripts/test installs it (scripts/install-replay)")
    return found


def embed_page(source: str, url: str) -> bytes:
    """The page embedding ReplayWeb.page on one WACZ, at one URL of it."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><script src='/replay/ui.js'></script></head>"
        "<body style='margin:0'>"
        f"<replay-web-page source='{html.escape(source)}' url='{html.escape(url)}' replayBase='/replay/' "
        # wabac.js checks the hashes of what it reads (files, index blocks) only when its
        # service worker is started with useHashCheck=1; ReplayWeb.page adds
        # `?serveIndex=1` to this name, which the `#` turns into a fragment
        "swName='sw.js?serveIndex=1&amp;useHashCheck=1#' "
        "embed='replayonly' style='display:block;width:1000px;height:700px'></replay-web-page>"
        "</body></html>"
    ).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without this each answer waits ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path == "/":
            query = parse_qs(parts.query)
            return self._send(200, "text/html; charset=utf-8", embed_page(query["source"][0], query["url"][0]), head)
        if path.startswith("/replay/"):
            file = (self.server.replay / path.removeprefix("/replay/")).resolve()
            if not file.is_relative_to(self.server.replay) or not file.is_file():
                self.server.missing.append(path)
                return self._send(404, "text/plain", b"not found", head)
        elif path.startswith("/w/") and path.removeprefix("/w/") in self.server.files:
            file = self.server.files[path.removeprefix("/w/")]
        else:
            self.server.missing.append(path)
            return self._send(404, "text/plain", b"not found", head)
        self.server.requests.append(path)
        kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        size = file.stat().st_size
        wanted = byte_range(self.headers.get("Range"), size)
        if wanted is None:
            return self._send(200, kind, file.read_bytes(), head)
        if wanted is False:
            return self._send(416, "text/plain", b"", head, {"Content-Range": f"bytes */{size}"})
        start, end = wanted
        with file.open("rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        self.server.ranges += 1
        self._send(206, kind, body, head, {"Content-Range": f"bytes {start}-{end}/{size}"})

    def _send(self, status: int, kind: str, body: bytes, head: bool, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replay: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replay = replay.resolve()
        self.files: dict[str, Path] = {}
        self.requests: list[str] = []
        self.missing: list[str] = []
        self.ranges = 0


class ReplayServer:
    """ReplayWeb.page and the WACZ files given to serve(), on a loopback port."""

    def __init__(self) -> None:
        self.httpd = _Server(replay_folder())
        self.thread = serving_thread(self.httpd)

    def __enter__(self) -> "ReplayServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve(self, wacz: Path, name: str | None = None) -> str:
        """Serve `wacz`; returns its path on this server."""
        name = name or wacz.name
        self.httpd.files[name] = wacz
        return f"/w/{quote(name)}"

    def page_url(self, source: str, url: str) -> str:
        port = self.httpd.server_address[1]
        return f"http://127.0.0.1:{port}/?source={quote(source, safe='')}&url={quote(url, safe='')}"


def launch(playwright):
    """Debian's Chromium, as browser capture starts it (no Google services), service
    workers allowed (ReplayWeb.page is one)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return playwright.chromium.launch(
        executable_path=find_chromium(), headless=True,
        args=[*CHROMIUM_ARGS, *(["--no-sandbox"] if root else [])], chromium_sandbox=not root)


# Everything wabac.js recorded in the `verification` stores of this origin's IndexedDB.
VERIFICATION_JS = """async () => {
  const out = [];
  for (const info of await indexedDB.databases()) {
    const db = await new Promise((ok, fail) => {
      const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
    });
    if (db.objectStoreNames.contains("verification")) {
      const rows = await new Promise((ok, fail) => {
        const r = db.transaction("verification").objectStore("verification").getAll();
        r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error);
      });
      for (const row of rows) out.push({db: info.name, ...row});
    }
    db.close();
  }
  return out;
}"""

# What the replayed document shows: its text, and every image with whether it decoded.
DOCUMENT_JS = """() => ({
  title: document.title,
  text: document.body ? document.body.innerText : "",
  images: Array.from(document.images).map(i => ({src: i.getAttribute("src"), complete: i.complete,
                                                 width: i.naturalWidth, height: i.naturalHeight})),
})"""


def replayed_frame(page, url: str, timeout: float = 45):
    """The frame wabac.js replays `url` in (`.../<ts>mp_/<url>`), once it has loaded. On a
    loaded machine ReplayWeb.page's service worker now and then stays at "loading" for good
    (seen under pytest-xdist): the page is loaded again once, as a person would, before
    giving up."""
    for attempt in range(2):
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            for frame in page.frames:
                if "mp_/" in frame.url and frame.url.split("mp_/", 1)[1] == url:
                    frame.wait_for_load_state("load", timeout=max(1, until - time.monotonic()) * 1000)
                    return frame
            page.wait_for_timeout(200)
        if attempt == 0:
            page.reload()
    raise AssertionError(f"ReplayWeb.page did not replay {url} (frames {[f.url for f in page.frames]})")


class Replayed:
    """One URL of one WACZ opened in ReplayWeb.page, in its own browser context."""

    def __init__(self, browser, server: ReplayServer, source: str, url: str, timeout: float = 45) -> None:
        self.server = server
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.messages: list[str] = []
        self.page.on("console", lambda m: self.messages.append(m.text))
        self.page.goto(server.page_url(source, url))
        self.url = url
        self.frame = self._replay_frame(url, timeout)

    def _replay_frame(self, url: str, timeout: float):
        try:
            return replayed_frame(self.page, url, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e} (console {self.messages[-10:]}, not found "
                                 f"{self.server.httpd.missing[-10:]})") from None

    def document(self, images: int = 0, timeout: float = 15) -> dict:
        """The replayed document, once at least `images` images have finished loading."""
        until = time.monotonic() + timeout
        while True:
            seen = self.frame.evaluate(DOCUMENT_JS)
            done = [i for i in seen["images"] if i["complete"]]
            if len(done) >= images and len(done) == len(seen["images"]) or time.monotonic() > until:
                return seen
            self.page.wait_for_timeout(100)

    def verification(self, wanted: str = "signature", timeout: float = 15) -> dict[str, dict]:
        """wabac.js's verification records by id, once `wanted` is among them."""
        until = time.monotonic() + timeout
        while True:
            rows = {r["id"]: r for r in self.page.evaluate(VERIFICATION_JS)}
            if wanted in rows or time.monotonic() > until:
                return rows
            self.page.wait_for_timeout(100)

    def close(self) -> None:
        self.context.close()


def dump(rows: dict) -> str:
    return json.dumps(rows, indent=1, default=str)[:4000]
