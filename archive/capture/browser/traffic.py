"""What the recording proxy saw while one page was being captured, and what follows from
it: the page's own status (judged from the recorded response, never from the browser,
which would also show the proxy's error page), its requisites, their failures, its bytes.
Written from the proxy's threads, read (by polling) from the session's event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from archive.capture.browser.result import BrowserPageResult
from archive.capture.mediafind import find_in_traffic
from archive.warc.writer import RecordRef

QUIET = 0.5                  # seconds without a request in flight that count as idle
MAIN_DOCUMENT_WAIT = 5.0     # for the proxy to finish recording the page's own response
POLL = 0.05


@dataclass
class Seen:
    """One exchange the proxy finished for the page."""

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


class PageTraffic:
    """The exchanges the proxy saw while one page was being captured."""

    def __init__(self) -> None:
        self.begun: list[str] = []
        self.excluded: list[str] = []
        self.pending: Counter = Counter()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    # -- from the proxy's threads ------------------------------------------------
    def refused(self, url: str) -> None:
        with self.lock:
            self.excluded.append(url)

    def began(self, url: str) -> None:
        with self.lock:
            self.begun.append(url)
            self.pending[url] += 1

    def ended(self, seen: Seen) -> None:
        with self.lock:
            self.pending[seen.url] -= 1
            self.seen.append(seen)

    # -- from the session's event loop ---------------------------------------------
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

    def last(self, url: str) -> Seen | None:
        with self.lock:
            return next((s for s in reversed(self.seen) if s.url == url), None)

    def summarize(self, result: BrowserPageResult, chain: set[str], find_media: bool) -> None:
        """The page's requisites (all it fetched but the addresses in `chain`), what was
        refused, the bytes recorded, the requisites that failed, and (with `find_media`)
        the video and audio among its responses."""
        with self.lock:
            result.requisites = list(dict.fromkeys(u for u in self.begun if u not in chain))
            result.excluded = list(dict.fromkeys(self.excluded))
            result.bytes = sum(s.size for s in self.seen)
            result.requisite_failures = [{"url": s.url, "error": s.reason} for s in self.seen
                                         if s.url not in chain and s.failed]
            if find_media:
                traffic = [(s.url, s.headers.get("content-type")) for s in self.seen if not s.failed]
                result.media = list(dict.fromkeys(result.media + find_in_traffic(traffic)))


async def judge(traffic: PageTraffic, result: BrowserPageResult,
                navigation_error: str | None, document: tuple[str, int] | None) -> None:
    """The page's status and error, from what the proxy recorded of its document
    (never from the browser, which would also show the proxy's own error page) or,
    when no request for it reached the proxy, from the browser's cached `document`."""
    final = result.final_url
    await traffic.wait(lambda: traffic.pending[final] <= 0, time.monotonic() + MAIN_DOCUMENT_WAIT)
    seen = traffic.last(final)
    if seen is not None:
        result.status, result.response, result.size = seen.status, seen.response, seen.body
        result.retry_after = seen.headers.get("retry-after")
        if seen.status is None:
            result.error, result.error_kind = seen.error, seen.error_kind
    elif traffic.pending[final] > 0:
        result.notes.append("the page's own response was still arriving")
    elif document is not None and document[0] == final and not traffic.heard_of(final):
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
