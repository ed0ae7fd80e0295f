"""One BrowserSession is one Chromium and one recording proxy for one capture: it starts
them, hands each page to the page driver (archive.capture.browser.page), writes what the
proxy recorded through the same code as the HTTP crawler, and stops them.

Playwright runs on an asyncio loop in a thread of the session's own, so capture_page()
may be called from any thread (one page at a time)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Callable
from urllib.parse import urldefrag

from playwright.async_api import Error as PlaywrightError

from archive.capture.addresses import AddressPolicy
from archive.capture.browser import page as driver
from archive.capture.browser.failures import BrowserGone, first_line
from archive.capture.browser.launch import CLOSE_TIMEOUT, RunningBrowser, find_chromium, launch
from archive.capture.browser.records import write_page_metadata, write_resource
from archive.capture.browser.result import BrowserPageResult
from archive.capture.browser.traffic import MAIN_DOCUMENT_WAIT, PageTraffic, Seen, judge
from archive.capture.dedup import Dedup
from archive.capture.exchange import Recorded, write_for_sink
from archive.capture.redaction import Redaction
from archive.capture.pageoptions import PageOptions
from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy, Refused
from archive.capture.recorder import FetchResult
from archive.capture.redaction import Redaction
from archive.errors import ArchiveError
from archive.warc.writer import RecordRef, WarcWriter

STRAGGLER_WAIT = 2.0         # for the page's exchanges still running when it is closed


def browser_temp_dir(spool_dir: str | None) -> str | None:
    """Where Playwright makes the browser's profile: beside the capture's spool."""
    return os.path.join(os.path.dirname(spool_dir), "browser") if spool_dir else None


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
    # a login's cookies and local storage (Playwright's storage state, from a profile or a
    # cookies file): the browser starts with them; held in memory, never written anywhere
    storage_state: dict | None = field(default=None, repr=False)
    redaction: Redaction | None = None   # secret request headers never sealed (the crawl's)
    extra_headers: Callable[[str], dict | None] | None = None   # URL -> headers the proxy adds
    # (URL, rendered DOM) -> why the page is a login wall, or None (capture.loginwall)
    login_wall: Callable[[str, bytes], str | None] | None = None


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
        self._current: PageTraffic | None = None
        self._lock = threading.Lock()
        self._page_lock = threading.Lock()
        self._failures: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ca: InterceptionCA | None = None
        self._proxy: RecordingProxy | None = None
        self._browser: RunningBrowser | None = None
        self._started = self._closed = False

    @property
    def executable(self) -> str:
        return self._executable

    # -- life cycle ------------------------------------------------------------
    def start(self) -> "BrowserSession":
        self._ca = InterceptionCA()
        o = self.options
        self._proxy = RecordingProxy(self, self._ca, ProxyOptions(
            timeout=o.fetch_timeout, max_body=o.max_body, verify_tls=o.verify_tls,
            spool_dir=o.spool_dir, policy=o.policy or AddressPolicy(),
            extra_headers=o.extra_headers,
        )).start()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="archive-browser", daemon=True)
        self._thread.start()
        self._started = True
        self._browser = RunningBrowser()
        try:
            page = o.page
            self._call(launch(
                self._browser, self._executable, self._ca.spki_hash, self._proxy.url,
                {"width": page.viewport_width, "height": page.viewport_height}, o.user_agent,
                o.storage_state, browser_temp_dir(o.spool_dir)))
            self.version = self._browser.version
        except BaseException:
            self.close()
            raise
        return self

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        """Close the browser, then the proxy (exchanges still running are recorded as
        cut short). Raises ArchiveError if any exchange could not be written."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                with self._page_lock:
                    self._call(self._browser.close())
        finally:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
                self._loop.close()
            if self._proxy is not None:
                self._proxy.close()
            if self._ca is not None:
                self._ca.close()
        if self._failures:
            raise ArchiveError(
                f"{len(self._failures)} browser exchange(s) could not be written to the WARC; "
                f"first: {self._failures[0]}")

    def __enter__(self) -> "BrowserSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the proxy's sink --------------------------------------------------------
    def begin(self, url: str) -> PageTraffic | None:
        with self._lock:
            traffic = self._current
        reason = self.exclude(url) if self.exclude else None
        if reason:
            if traffic is not None:
                traffic.refused(url)
            raise Refused(reason)
        if traffic is not None:
            traffic.began(url)
        return traffic

    def end(self, traffic: PageTraffic | None, result: FetchResult, notes: dict) -> None:
        written = write_for_sink(self.writer, self.record, result, notes, self.dedup, self._failures,
                                 self.options.redaction)
        if traffic is not None:
            traffic.ended(Seen(
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
        traffic = PageTraffic()
        with self._lock:
            self._current = traffic
        asked = urldefrag(url)[0]
        result = BrowserPageResult(url=url, final_url=asked, started=datetime.now(timezone.utc))
        page = None
        try:
            try:
                # Playwright gives new_page no timeout, and a browser killed while it opens
                # one may never answer (a capture waited for ever): bounded like a page.
                page = await asyncio.wait_for(self._browser.context.new_page(), opts.timeout)
            except PlaywrightError as exc:
                raise BrowserGone(f"the browser stopped: {first_line(exc)}") from None
            except asyncio.TimeoutError:
                raise BrowserGone(f"the browser stopped answering: no page opened within {opts.timeout:g}s") from None
            await self._load_and_snapshot(page, url, opts, traffic, result)
            if not await self._browser.alive():
                # What failed above failed because the browser went, not because of the page.
                raise BrowserGone("the browser stopped while the page was being captured")
        except PlaywrightError as exc:
            if not await self._browser.alive():
                raise BrowserGone(f"the browser stopped: {first_line(exc)}") from None
            # The page failed (a crashed renderer, say): it is recorded as failed with
            # what the proxy saw; the capture goes on.
            result.notes.append(f"the browser failed: {first_line(exc)}")
            if result.status is None and not result.error:
                result.error, result.error_kind = f"browser: {first_line(exc)}", "browser"
        finally:
            with self._lock:
                self._current = None
            if page is not None:
                await driver.close(page)
            await self._settle(traffic)
        traffic.summarize(result, {asked, result.final_url}, self.options.find_media)
        result.metadata = write_page_metadata(self.writer, result, opts, self.version, self._executable,
                                              self.options.redaction)
        return result

    async def _load_and_snapshot(self, page, url: str, opts: PageOptions, traffic: PageTraffic,
                                 result: BrowserPageResult) -> None:
        """Load the page, settle where it ends up, judge it from what the proxy recorded,
        and snapshot it when it came."""
        try:    # no timeout of Playwright's either (see new_page in _capture)
            await asyncio.wait_for(page.set_viewport_size(
                {"width": opts.viewport_width, "height": opts.viewport_height}), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            raise PlaywrightError(f"the viewport was not set within {CLOSE_TIMEOUT:g}s") from None
        navigations = driver.Navigations(page)
        navigation_error = await driver.load(page, url, opts, traffic, result, self._browser.alive)
        # A page that sends itself on (a meta refresh, a script) after the wait: the
        # snapshots are of where it went, so they wait for it and are named after it.
        if (navigation_error is None and not result.timed_out
                and not await navigations.settle(page, time.monotonic() + MAIN_DOCUMENT_WAIT)):
            result.notes.append("the page was still going to another address")
        documents = navigations.documents
        commits = navigations.commits
        driver.settle_address(result, documents, urldefrag(page.url)[0])
        await judge(traffic, result, navigation_error, documents[-1] if documents else None)
        if result.status is not None and navigation_error is None:
            keep = partial(self._keep, result)
            await driver.snapshot(page, result, opts.snapshot_timeout, keep, self.options.find_media,
                                  self.options.login_wall)
            if navigations.commits != commits:
                # Named after the page it was, they may show the page it went on to.
                result.notes.append(f"the page went on to {urldefrag(page.url)[0]} while it was "
                                    "being snapshotted: its snapshots may show that page")

    def _keep(self, result: BrowserPageResult, uri: str, data: bytes, content_type: str) -> RecordRef:
        return write_resource(self.writer, self.record, uri, data, content_type, result,
                              self.options.redaction)

    async def _settle(self, traffic: PageTraffic) -> None:
        """The page's exchanges still running when it was closed are given a moment,
        then cut short (and recorded as such): every record of a page is written before
        capture_page() returns, so the crawler can journal the page as one group."""
        def idle() -> bool:
            return not +traffic.pending
        if await traffic.wait(idle, time.monotonic() + STRAGGLER_WAIT):
            return
        self._proxy.cut(traffic, "the page's capture ended before this exchange was complete")
        await traffic.wait(idle, time.monotonic() + CLOSE_TIMEOUT)
