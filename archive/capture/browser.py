"""Browser capture: a real headless Chromium (Debian's, driven by Playwright) loads
the page through our recording proxy, so every request and response it makes lands in
the WARC exactly as the HTTP crawler writes them; then the page as a person saw it is
kept too: a full-page PNG screenshot (`urn:screenshot:<url>`) and the rendered DOM
(`urn:dom:<url>`, and `urn:dom:<frame url>` for each frame loaded from the web) as
resource records, and a metadata record saying how it was loaded.

One BrowserSession is one Chromium and one proxy for one capture. Playwright runs on
an asyncio loop in a thread of the session's own, so capture_page() may be called from
any thread (one page at a time), and every step has a deadline: a page whose script
never yields cannot hang the capture (Playwright's evaluate() has no timeout of its
own, so each call is bounded with asyncio.wait_for).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urldefrag

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from archive import utctime
from archive.capture.addresses import AddressPolicy
from archive.capture.dedup import Dedup
from archive.capture.exchange import Recorded, write_for_sink
from archive.capture.links import extract_html
from archive.capture.mediafind import find_in_html, find_in_traffic
from archive.capture.pageoptions import PageOptions
from archive.capture.proxy import ProxyOptions, RecordingProxy, Refused
from archive.capture.proxyca import InterceptionCA
from archive.capture.recorder import FetchResult
from archive.errors import ArchiveError
from archive.warc.cdxj import cdxj_line
from archive.warc.writer import RecordRef, WarcWriter, block_digests, warc_fields

CHROMIUM_ENV = "ARCHIVE_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DEBIAN_BINARY = "/usr/lib/chromium/chromium"
INSTALL_HINT = (
    "install it with `apt-get install chromium` (Debian, Ubuntu), "
    f"or set {CHROMIUM_ENV} to a Chromium or Chrome executable"
)
# Keep Chromium from calling Google's services on its own: nothing but the pages belongs
# in the WARC (what it still tries goes to a dead end, see _launch).
CHROMIUM_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-quic", "--disable-domain-reliability", "--no-pings",
    "--disable-breakpad", "--metrics-recording-only", "--no-default-browser-check",
]
SETTLE_AFTER_SCROLL = 5.0    # longest wait for scroll-triggered loads when not asked to idle
QUIET = 0.5                  # seconds without a request in flight that count as idle
MAIN_DOCUMENT_WAIT = 5.0     # for the proxy to finish recording the page's own response
STRAGGLER_WAIT = 2.0         # for the page's exchanges still running when it is closed
SCRIPT_GRACE = 5.0           # beyond its own budget, for a script we run in the page
CLOSE_TIMEOUT = 10.0         # for closing a page or the browser
MAX_FRAME_DOMS = 20          # frames of a page whose DOM is kept (ads nest frames without end)
POLL = 0.05

# Scroll down a screen at a time until the bottom (or the budget) is reached, pausing so
# that lazy loaders see each part of the page, then return to the top.
SCROLL_JS = """async ({budgetMs, pauseMs, maxSteps}) => {
  const until = Date.now() + budgetMs;
  let steps = 0;
  while (steps < maxSteps && Date.now() < until) {
    const bottom = Math.max(document.body ? document.body.scrollHeight : 0,
                            document.documentElement.scrollHeight);
    if (window.scrollY + window.innerHeight >= bottom - 1) break;
    window.scrollBy(0, Math.max(1, Math.floor(window.innerHeight * 0.8)));
    steps++;
    await new Promise(r => setTimeout(r, pauseMs));
  }
  window.scrollTo(0, 0);
  return steps;
}"""
IMAGES_COMPLETE_JS = "() => Array.from(document.images).every(i => i.complete)"


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable to drive: `explicit`, $ARCHIVE_CHROMIUM, or on PATH."""
    candidate = explicit or os.environ.get(CHROMIUM_ENV)
    if candidate:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise ArchiveError(f"Chromium not found at {candidate}: {INSTALL_HINT}")
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return _behind_launcher(path)
    raise ArchiveError(f"browser capture needs Chromium, which is not installed: {INSTALL_HINT}")


def check_chromium(explicit: str | None = None) -> str:
    """find_chromium(), and the executable found answers `--version` as Chromium does: a
    browser that cannot even start stops a capture before anything is created."""
    path = find_chromium(explicit)
    try:
        answer = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                                errors="replace")
        version = re.search(r"\d+\.\d+\.\d+", answer.stdout)
        problem = None if answer.returncode == 0 and version else \
            f"`{path} --version` exited {answer.returncode} without a version"
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"`{path} --version` failed ({type(exc).__name__})"
    if problem:
        raise ArchiveError(f"Chromium does not run: {problem}; {INSTALL_HINT}")
    return path


def _behind_launcher(path: str) -> str:
    """Debian's /usr/bin/chromium is a shell script that adds flags and Google API keys
    from /etc/chromium.d; the binary behind it is run directly, so that a capture does
    not depend on (or leak through) local launcher settings."""
    try:
        with open(path, "rb") as fh:
            is_script = fh.read(2) == b"#!"
    except OSError:
        return path
    return DEBIAN_BINARY if is_script and os.access(DEBIAN_BINARY, os.X_OK) else path


@dataclass
class BrowserOptions:
    page: PageOptions = field(default_factory=PageOptions)
    executable: str | None = None      # default: find_chromium()
    user_agent: str | None = None      # default: Chromium's own
    verify_tls: bool = True
    fetch_timeout: float = 30.0        # the proxy's connect and read timeout
    max_body: int | None = None
    spool_dir: str | None = None
    policy: AddressPolicy | None = None  # addresses the proxy may connect to (default: public only)
    find_media: bool = False           # list the video and audio of each page (--media)


@dataclass
class BrowserPageResult:
    """What the crawler needs to know about one page captured with the browser."""

    url: str                           # as asked for
    final_url: str                     # after redirects
    started: datetime
    title: str | None = None
    status: int | None = None
    outlinks: list[str] = field(default_factory=list)     # links in the rendered DOM
    requisites: list[str] = field(default_factory=list)   # everything else it fetched
    excluded: list[str] = field(default_factory=list)     # what it was not let fetch
    response: RecordRef | None = None  # the page's own response record
    screenshot: RecordRef | None = None
    dom: RecordRef | None = None
    frame_doms: list[RecordRef] = field(default_factory=list)   # of frames loaded from the web
    metadata: RecordRef | None = None
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)        # what did not happen in time
    error: str | None = None
    error_kind: str | None = None
    retry_after: str | None = None     # the page's own Retry-After header
    # requisites that failed (no response, 4xx/5xx, cut short): [{"url", "error"}]
    requisite_failures: list[dict] = field(default_factory=list)
    bytes: int = 0                     # response bytes recorded for this page, requisites too
    size: int = 0                      # body bytes of the page's own response
    media: list[str] = field(default_factory=list)        # video and audio found (find_media)
    frames: list[str] = field(default_factory=list)       # its frames' URLs (find_media)
    media_extras: dict = field(default_factory=dict)      # posters, subtitle tracks (find_media)


def page_entry(result: BrowserPageResult) -> dict:
    """The pages.jsonl entry of a browser-captured page (the crawler's fields)."""
    page_id = (
        result.response.record_id.strip("<>").rsplit(":", 1)[-1]
        if result.response else uuid.uuid4().hex
    )
    entry: dict = {
        "id": page_id, "url": result.final_url,
        "ts": utctime.seconds(result.started),
    }
    if result.title:
        entry["title"] = result.title
    if result.status is not None:
        entry["status"] = result.status
    if result.response is not None:
        entry["size"] = result.size
    if result.final_url != urldefrag(result.url)[0]:
        entry["redirectedFrom"] = result.url
    if result.timed_out:
        entry["timedOut"] = True
    error = result.error or (
        f"HTTP {result.status}" if result.status and result.status >= 400 else None)
    if error:
        entry["error"] = error
        entry["errorKind"] = result.error_kind or "http"
    return entry


@dataclass
class _Seen:
    url: str
    status: int | None
    error: str | None
    error_kind: str | None
    response: RecordRef | None
    size: int            # bytes recorded (head and body)
    body: int            # body bytes
    headers: dict

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 400 or self.error is not None

    @property
    def reason(self) -> str:
        """Why it failed, in the words pages.jsonl uses."""
        return self.error or (f"HTTP {self.status}" if self.status is not None else "no response")


class BrowserGone(ArchiveError):
    """The browser itself stopped (crashed, killed, its driver gone): no page can be
    captured any more. Not a page's failure: the crawl stops, and a resumed capture
    loads the page again."""


class _PageStuck(Exception):
    """A call into the page did not return in time (its script may never yield)."""


class _PageState:
    """The exchanges the proxy saw while one page was being captured. Written from the
    proxy's threads, read (by polling) from the session's event loop."""

    def __init__(self) -> None:
        self.begun: list[str] = []
        self.excluded: list[str] = []
        self.pending: Counter = Counter()
        self.seen: list[_Seen] = []
        self.lock = threading.Lock()

    async def wait(self, done: Callable[[], bool], until: float) -> bool:
        while True:
            with self.lock:
                if done():
                    return True
            if time.monotonic() >= until:
                return False
            await asyncio.sleep(POLL)

    async def wait_quiet(self, until: float) -> bool:
        """Wait for QUIET seconds with no exchange in flight; False at `until`."""
        quiet_from = None
        while True:
            with self.lock:
                busy = bool(+self.pending)
            now = time.monotonic()
            if busy:
                quiet_from = None
            elif quiet_from is None:
                quiet_from = now
            elif now - quiet_from >= QUIET:
                return True
            if now >= until:
                return False
            await asyncio.sleep(POLL)

    def heard_of(self, url: str) -> bool:
        """Whether the browser asked the proxy for `url` (refused requests too)."""
        with self.lock:
            return url in self.begun or url in self.excluded

    def last(self, url: str) -> _Seen | None:
        with self.lock:
            return next((s for s in reversed(self.seen) if s.url == url), None)


class _Navigations:
    """The page's main-frame navigations as the browser reports them: the documents it
    was served (redirects, then the page; a page that sends itself on adds more), and
    whether one it asked for has not arrived yet."""

    def __init__(self, page) -> None:
        self.documents: list[tuple[str, int]] = []   # (URL, status)
        self.commits = 0                             # documents (or addresses) shown
        self.asked = False                           # a navigation under way
        main = page.main_frame

        def on_request(request) -> None:
            if request.is_navigation_request() and request.frame == main:
                self.asked = True

        def on_response(response) -> None:
            if response.request.is_navigation_request() and response.frame == main:
                self.documents.append((urldefrag(response.url)[0], response.status))

        def on_shown(frame) -> None:
            if frame == main:
                self.asked = False
                self.commits += 1

        def on_failed(request) -> None:
            if request.is_navigation_request() and request.frame == main:
                self.asked = False
        page.on("request", on_request)
        page.on("response", on_response)
        page.on("framenavigated", on_shown)
        page.on("requestfailed", on_failed)

    async def settle(self, page, until: float) -> bool:
        """Wait for a navigation under way to be shown and loaded; False at `until`."""
        if not self.asked:
            return True
        while self.asked and time.monotonic() < until:
            await asyncio.sleep(POLL)
        try:
            await page.wait_for_load_state("load", timeout=max(1.0, (until - time.monotonic()) * 1000))
        except PlaywrightError:
            return False
        return not self.asked


async def _bounded(awaitable, seconds: float):
    """Await a call into the page, giving up after `seconds`."""
    try:
        return await asyncio.wait_for(awaitable, max(seconds, 0.001))
    except asyncio.TimeoutError:
        raise _PageStuck(f"the page did not answer within {seconds:g}s") from None


class BrowserSession:
    """One Chromium behind one recording proxy, writing into `writer`.

    `record` is called with what each write adds to the crawl's memory (index lines,
    deduplication originals, bytes), while the writer's lock is still held, so that
    whoever journals the WARC position under that lock knows every record before it.
    Use as a context manager, or call start() and close().
    """

    def __init__(
        self,
        writer: WarcWriter,
        record: Callable[[Recorded], None],
        options: BrowserOptions | None = None,
        exclude: Callable[[str], str | None] | None = None,
        dedup: Dedup | None = None,
    ) -> None:
        """`exclude(url)` says why a URL must not be fetched (the crawler's --exclude),
        or None; the browser gets a refusal and nothing is recorded for it. With
        `dedup`, payloads captured before are written as revisit records."""
        self.writer = writer
        self.record = record
        self.exclude = exclude
        self.dedup = dedup
        self.options = options or BrowserOptions()
        self.version: str | None = None
        self._executable = find_chromium(self.options.executable)
        self._current: _PageState | None = None
        self._lock = threading.Lock()
        self._page_lock = threading.Lock()
        self._failures: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ca: InterceptionCA | None = None
        self._proxy: RecordingProxy | None = None
        self._dead_end: socket.socket | None = None
        self._playwright = self._browser = self._context = None
        self._started = self._closed = False

    @property
    def executable(self) -> str:
        return self._executable

    # -- life cycle ------------------------------------------------------------
    def start(self) -> "BrowserSession":
        self._ca = InterceptionCA()
        self._dead_end = socket.socket()
        self._dead_end.bind(("127.0.0.1", 0))     # bound, never listening: refuses
        o = self.options
        self._proxy = RecordingProxy(self, self._ca, ProxyOptions(
            timeout=o.fetch_timeout, max_body=o.max_body, verify_tls=o.verify_tls,
            spool_dir=o.spool_dir, policy=o.policy or AddressPolicy(),
        )).start()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="archive-browser", daemon=True)
        self._thread.start()
        self._started = True
        try:
            self._call(self._launch())
        except BaseException:
            self.close()
            raise
        return self

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _launch(self) -> None:
        self._playwright = await async_playwright().start()
        root = hasattr(os, "geteuid") and os.geteuid() == 0
        args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={self._ca.spki_hash}"]
        if root:
            args.append("--no-sandbox")      # Chromium refuses to start as root otherwise
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=self._executable, headless=True, args=args,
                chromium_sandbox=not root,
                # Signals are for the capture process to decide on (finish the page,
                # journal it, stop): the driver must not close the browser under it.
                handle_sigint=False, handle_sigterm=False, handle_sighup=False,
                # Chromium's own requests (sign-in, updates) take the browser-wide
                # proxy: a port of ours where nothing listens, so they go nowhere.
                proxy={"server": f"http://127.0.0.1:{self._dead_end.getsockname()[1]}"},
            )
            self.version = self._browser.version
            page = self.options.page
            self._context = await self._browser.new_context(
                viewport={"width": page.viewport_width, "height": page.viewport_height},
                user_agent=self.options.user_agent,
                # A service worker could answer from its own cache, out of the proxy's sight.
                service_workers="block",
                # A download is cancelled in the browser; the proxy still reads it whole.
                accept_downloads=False,
                # The pages' requests (loopback too: Playwright adds <-loopback>).
                proxy={"server": self._proxy.url},
            )
        except PlaywrightError as exc:
            raise ArchiveError(
                f"could not start Chromium ({self._executable}): {_first_line(exc)}") from None

    def close(self) -> None:
        """Close the browser, then the proxy (exchanges still running are recorded as
        cut short). Raises ArchiveError if any exchange could not be written."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                with self._page_lock:
                    self._call(self._shutdown_browser())
        finally:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
                self._loop.close()
            if self._proxy is not None:
                self._proxy.close()
            if self._ca is not None:
                self._ca.close()
                self._dead_end.close()
        if self._failures:
            raise ArchiveError(
                f"{len(self._failures)} browser exchange(s) could not be written to the WARC; "
                f"first: {self._failures[0]}")

    async def _shutdown_browser(self) -> None:
        for thing in (self._context, self._browser):
            if thing is not None:
                try:
                    await asyncio.wait_for(thing.close(), CLOSE_TIMEOUT)
                except (PlaywrightError, asyncio.TimeoutError):
                    pass
        if self._playwright is not None:
            try:
                await asyncio.wait_for(self._playwright.stop(), CLOSE_TIMEOUT)
            except Exception:  # noqa: BLE001 - a driver already gone has nothing left to stop
                pass

    def __enter__(self) -> "BrowserSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the proxy's sink --------------------------------------------------------
    def begin(self, url: str) -> _PageState | None:
        with self._lock:
            state = self._current
        reason = self.exclude(url) if self.exclude else None
        if reason:
            if state is not None:
                with state.lock:
                    state.excluded.append(url)
            raise Refused(reason)
        if state is not None:
            with state.lock:
                state.begun.append(url)
                state.pending[url] += 1
        return state

    def end(self, state: _PageState | None, result: FetchResult, notes: dict) -> None:
        written = write_for_sink(self.writer, self.record, result, notes, self.dedup, self._failures)
        if state is not None:
            with state.lock:
                state.pending[result.url] -= 1
                state.seen.append(_Seen(
                    result.url, result.status, result.error, result.error_kind,
                    written.response if written else None, result.response_length,
                    result.body_bytes, result.headers,
                ))

    # -- pages -----------------------------------------------------------------
    def capture_page(self, url: str, options: PageOptions | None = None) -> BrowserPageResult:
        """Load `url`, wait as `options` say, and record the page and its snapshots."""
        if not url.lower().startswith(("http://", "https://")):
            raise ArchiveError(f"browser capture takes http and https URLs only, not {url[:100]!r}")
        with self._page_lock:
            if not self._started or self._closed:
                raise RuntimeError("the browser session is not running")
            return self._call(self._capture(url, options or self.options.page))

    async def _capture(self, url: str, opts: PageOptions) -> BrowserPageResult:
        state = _PageState()
        with self._lock:
            self._current = state
        asked = urldefrag(url)[0]
        result = BrowserPageResult(url=url, final_url=asked, started=datetime.now(timezone.utc))
        page = None
        try:
            try:
                page = await self._context.new_page()
            except PlaywrightError as exc:
                raise BrowserGone(f"the browser stopped: {_first_line(exc)}") from None
            await page.set_viewport_size({"width": opts.viewport_width, "height": opts.viewport_height})
            navigations = _Navigations(page)
            navigation_error = await self._load(page, url, opts, state, result)
            # A page that sends itself on (a meta refresh, a script) after the wait: the
            # snapshots are of where it went, so they wait for it and are named after it.
            if (navigation_error is None and not result.timed_out
                    and not await navigations.settle(page, time.monotonic() + MAIN_DOCUMENT_WAIT)):
                result.notes.append("the page was still going to another address")
            documents = navigations.documents
            commits = navigations.commits
            shown = urldefrag(page.url)[0]
            final = shown
            if (documents and shown.startswith(("http://", "https://"))
                    and shown not in (u for u, _ in documents)):
                # The history API changes the address without a request: the page is still
                # the document the server sent, which is what the proxy recorded.
                final = documents[-1][0]
                result.notes.append(f"the page changed its address to {shown} without loading it")
            if final.startswith(("http://", "https://")):
                result.final_url = final
            await self._judge(state, result, navigation_error, documents[-1] if documents else None)
            if result.status is not None and navigation_error is None:
                await self._snapshot(page, result, opts.snapshot_timeout)
                if navigations.commits != commits:
                    # Named after the page it was, they may show the page it went on to.
                    result.notes.append(f"the page went on to {urldefrag(page.url)[0]} while it was "
                                        "being snapshotted: its snapshots may show that page")
            if not await self._alive():
                # What failed above failed because the browser went, not because of the page.
                raise BrowserGone("the browser stopped while the page was being captured")
        except PlaywrightError as exc:
            if not await self._alive():
                raise BrowserGone(f"the browser stopped: {_first_line(exc)}") from None
            # The page failed (a crashed renderer, say): it is recorded as failed with
            # what the proxy saw; the capture goes on.
            result.notes.append(f"the browser failed: {_first_line(exc)}")
            if result.status is None and not result.error:
                result.error, result.error_kind = f"browser: {_first_line(exc)}", "browser"
        finally:
            with self._lock:
                self._current = None
            if page is not None:
                try:
                    await asyncio.wait_for(page.close(), CLOSE_TIMEOUT)
                except (PlaywrightError, asyncio.TimeoutError):
                    pass
            await self._settle(state)
        chain = {asked, result.final_url}
        with state.lock:
            result.requisites = list(dict.fromkeys(u for u in state.begun if u not in chain))
            result.excluded = list(dict.fromkeys(state.excluded))
            result.bytes = sum(s.size for s in state.seen)
            result.requisite_failures = [{"url": s.url, "error": s.reason} for s in state.seen
                                         if s.url not in chain and s.failed]
            if self.options.find_media:
                traffic = [(s.url, s.headers.get("content-type")) for s in state.seen if not s.failed]
                result.media = list(dict.fromkeys(result.media + find_in_traffic(traffic)))
        result.metadata = self._write_page_metadata(result, opts)
        return result

    async def _alive(self) -> bool:
        """Whether the browser still answers (a round trip to it: its driver may not have
        told us yet that it is gone)."""
        if not self._browser.is_connected():
            return False
        try:
            await asyncio.wait_for(self._context.cookies(), CLOSE_TIMEOUT)
            return True
        except (PlaywrightError, asyncio.TimeoutError):
            return False

    async def _settle(self, state: _PageState) -> None:
        """The page's exchanges still running when it was closed are given a moment,
        then cut short (and recorded as such): every record of a page is written before
        capture_page() returns, so the crawler can journal the page as one group."""
        def idle() -> bool:
            return not +state.pending
        if await state.wait(idle, time.monotonic() + STRAGGLER_WAIT):
            return
        self._proxy.cut(state, "the page's capture ended before this exchange was complete")
        await state.wait(idle, time.monotonic() + CLOSE_TIMEOUT)

    async def _load(self, page, url: str, opts: PageOptions, state: _PageState,
                    result: BrowserPageResult) -> str | None:
        """Navigate and wait; returns the browser's navigation error, if any."""
        deadline = time.monotonic() + opts.timeout

        def left_ms() -> float:
            return max(1.0, (deadline - time.monotonic()) * 1000)

        def timed_out(what: str) -> None:
            result.timed_out = True
            result.notes.append(f"{what} within {opts.timeout:g}s")

        try:
            await page.goto(url, wait_until=opts.wait, timeout=left_ms())
        except PlaywrightError as exc:
            if not _is_timeout(exc):
                return _first_line(exc)
            timed_out(f"the page did not reach '{opts.wait}'")
        if opts.selector and not result.timed_out:
            try:
                await page.wait_for_selector(opts.selector, timeout=left_ms())
            except PlaywrightError as exc:
                if _is_timeout(exc):
                    timed_out(f"the selector {opts.selector!r} did not appear")
                elif await self._alive():
                    # A selector Chromium cannot parse is the operator's slip, not the
                    # page's failure: the page is still judged and snapshotted.
                    result.notes.append(
                        f"the selector {opts.selector!r} could not be used: {_first_line(exc)}")
                else:
                    raise
        if opts.scroll and not result.timed_out:
            await self._scroll(page, opts, state, deadline, result)
        if opts.delay and time.monotonic() < deadline:
            await asyncio.sleep(min(opts.delay, deadline - time.monotonic()))
        return None

    async def _scroll(self, page, opts: PageOptions, state: _PageState, deadline: float,
                      result: BrowserPageResult) -> None:
        budget = max(0.0, deadline - time.monotonic())
        try:
            await _bounded(page.evaluate(
                SCROLL_JS, {"budgetMs": budget * 1000, "pauseMs": 150, "maxSteps": 200},
            ), budget + SCRIPT_GRACE)
        except (PlaywrightError, _PageStuck) as exc:
            result.notes.append(f"scrolling failed: {_first_line(exc)}")
            return
        # Whatever the scrolling set off should land before the snapshots.
        idle = opts.wait == "networkidle"
        until = deadline if idle else min(deadline, time.monotonic() + SETTLE_AFTER_SCROLL)
        try:
            await page.wait_for_function(
                IMAGES_COMPLETE_JS, timeout=max(1.0, (until - time.monotonic()) * 1000))
        except PlaywrightError:
            result.notes.append("images were still loading after scrolling")
        if not await state.wait_quiet(until):
            if idle:
                result.timed_out = True
                result.notes.append(f"the network did not fall idle within {opts.timeout:g}s")
            else:
                result.notes.append("requests were still running after scrolling")

    async def _judge(self, state: _PageState, result: BrowserPageResult,
                     navigation_error: str | None, document: tuple[str, int] | None) -> None:
        """The page's status and error, from what the proxy recorded of its document
        (never from the browser, which would also show the proxy's own error page) or,
        when no request for it reached the proxy, from the browser's cached `document`."""
        final = result.final_url
        await state.wait(lambda: state.pending[final] <= 0, time.monotonic() + MAIN_DOCUMENT_WAIT)
        seen = state.last(final)
        if seen is not None:
            result.status, result.response, result.size = seen.status, seen.response, seen.body
            result.retry_after = seen.headers.get("retry-after")
            if seen.status is None:
                result.error, result.error_kind = seen.error, seen.error_kind
        elif state.pending[final] > 0:
            result.notes.append("the page's own response was still arriving")
        elif document is not None and document[0] == final and not state.heard_of(final):
            # Served from the browser's HTTP cache (service workers are blocked): its copy
            # came through the proxy earlier in this session, so it is already recorded.
            result.status = document[1]
            result.notes.append(f"the browser showed its cached copy of {final}, "
                                "recorded earlier in this capture")
        if navigation_error:
            # The server's response is recorded all the same (a PDF the browser would
            # only download, say); the browser's complaint is a note unless nothing came.
            result.notes.append(f"the browser did not show the page: {navigation_error}")
            if result.status is None and not result.error:
                result.error, result.error_kind = f"browser: {navigation_error}", "browser"
        if seen is None and result.status is None and not result.error:
            result.error, result.error_kind = "the browser fetched no document", "browser"

    async def _snapshot(self, page, result: BrowserPageResult, timeout: float) -> None:
        """The rendered DOM and a full-page screenshot, as resource records (taken even
        after the page timed out, each within `timeout` seconds)."""
        try:
            result.title = await _bounded(page.title(), timeout) or None
            dom = (await _bounded(page.content(), timeout)).encode("utf-8")
        except _PageStuck as exc:
            # A page whose script never yields answers nothing more: no screenshot either.
            result.timed_out = True
            result.notes.append(f"no DOM snapshot or screenshot: {exc} (a script may never yield)")
            return
        except PlaywrightError as exc:
            result.notes.append(f"no DOM snapshot: {_first_line(exc)}")
        else:
            result.dom = self._resource(f"urn:dom:{result.final_url}", dom, "text/html; charset=utf-8", result)
            result.outlinks = extract_html(dom, result.final_url).pages
            if self.options.find_media:
                result.media += find_in_html(dom, result.final_url, frames=result.frames,
                                             extras=result.media_extras)
            await self._frame_doms(page, result, timeout)
        png = None
        for full_page in (True, False):
            try:
                png = await _bounded(page.screenshot(
                    full_page=full_page, type="png", timeout=timeout * 1000, animations="disabled",
                ), timeout + SCRIPT_GRACE)
                break
            except _PageStuck as exc:
                result.notes.append(f"no screenshot: {exc}")
                break
            except PlaywrightError as exc:
                # Some documents (an SVG file, say) cannot be shot whole: the viewport then.
                result.notes.append(f"no {'full-page' if full_page else 'viewport'} screenshot: "
                                    f"{_first_line(exc)}")
        if png is not None:
            result.screenshot = self._resource(f"urn:screenshot:{result.final_url}", png, "image/png", result)

    async def _frame_doms(self, page, result: BrowserPageResult, timeout: float) -> None:
        """The rendered DOM of each frame loaded from the web (an embedded post, a video
        player), as its own `urn:dom:<frame URL>` resource record: the page's own DOM
        holds only the <iframe> element, not what it showed."""
        frames = [f for f in page.frames[1:] if f.url.startswith(("http://", "https://"))]
        for frame in frames[:MAX_FRAME_DOMS]:
            try:
                dom = (await _bounded(frame.content(), timeout)).encode("utf-8")
            except _PageStuck as exc:
                result.notes.append(f"no DOM snapshot of the frame {frame.url}: {exc}")
                return      # a frame whose script never yields: the others wait behind it
            except PlaywrightError as exc:
                result.notes.append(f"no DOM snapshot of the frame {frame.url}: {_first_line(exc)}")
                continue
            result.frame_doms.append(
                self._resource(f"urn:dom:{frame.url}", dom, "text/html; charset=utf-8", result))
            if self.options.find_media:       # a player in a frame: its media are the page's
                result.media += find_in_html(dom, frame.url)
        if len(frames) > MAX_FRAME_DOMS:
            result.notes.append(f"{len(frames)} frames: the DOM of the first {MAX_FRAME_DOMS} was kept")

    def _resource(self, uri: str, data: bytes, content_type: str,
                  result: BrowserPageResult) -> RecordRef:
        with self.writer.batch():
            ref = self.writer.write(
                "resource", uri, data, content_type=content_type,
                extra={"WARC-Concurrent-To": result.response.record_id if result.response else None},
            )
            digest = block_digests("resource", uri, data)[1]
            self.record(Recorded(index=[cdxj_line(uri, ref.date, ref.filename, ref.offset, ref.length,
                                                  "resource", digest, content_type.split(";")[0])]))
        return ref

    def _write_page_metadata(self, result: BrowserPageResult, opts: PageOptions) -> RecordRef:
        fields = {
            "browser": f"Chromium {self.version}",
            "browser-executable": self._executable,
            "viewport": f"{opts.viewport_width}x{opts.viewport_height}",
            "wait": opts.wait,
            "wait-selector": opts.selector,
            "delay-seconds": f"{opts.delay:g}" if opts.delay else None,
            "scroll": "yes" if opts.scroll else "no",
            "timeout-seconds": f"{opts.timeout:g}",
            "page-started": utctime.micros(result.started),
            "page-url": result.url,
            "final-url": result.final_url,
            "title": result.title,
            "http-status": result.status,
            "timed-out": "yes" if result.timed_out else "no",
            "note": result.notes,
            "error-kind": result.error_kind,
            "error": result.error,
            "screenshot-record": result.screenshot.record_id if result.screenshot else None,
            "dom-record": result.dom.record_id if result.dom else None,
            "frame-dom-record": [ref.record_id for ref in result.frame_doms],
            "outlink": result.outlinks,
            "requisite": result.requisites,
            "excluded": result.excluded,
        }
        return self.writer.write(
            "metadata", result.final_url, warc_fields(fields),
            extra={"WARC-Concurrent-To": result.response.record_id if result.response else None},
        )


def _is_timeout(exc: PlaywrightError) -> bool:
    return type(exc).__name__ == "TimeoutError"


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
