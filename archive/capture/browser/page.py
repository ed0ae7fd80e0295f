"""Driving one page: navigating, waiting (for the load, a selector, the network to fall
idle), scrolling so lazy loaders fire, following where the page sends itself, and taking
its snapshots (the rendered DOM, its frames' DOMs, a screenshot). Every call into the page
has a deadline: a page whose script never yields cannot hang the capture (Playwright's
evaluate() has no timeout of its own, so each call is bounded with asyncio.wait_for).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable
from urllib.parse import urldefrag

from playwright.async_api import Error as PlaywrightError

from archive.capture.browser.failures import first_line, is_timeout
from archive.capture.browser.launch import CLOSE_TIMEOUT
from archive.capture.browser.result import BrowserPageResult
from archive.capture.browser.traffic import POLL, PageTraffic
from archive.capture.links import extract_html
from archive.capture.mediafind import find_in_html
from archive.capture.pageoptions import PageOptions
from archive.warc.writer import RecordRef
from archive.warc import urns

SETTLE_AFTER_SCROLL = 5.0    # longest wait for scroll-triggered loads when not asked to idle
SCRIPT_GRACE = 5.0           # beyond its own budget, for a script we run in the page
MAX_FRAME_DOMS = 20          # frames of a page whose DOM is kept (ads nest frames without end)
DOM_TYPE = "text/html; charset=utf-8"

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

# Writes one snapshot as a resource record: (URI, bytes, content type) -> its record.
Keep = Callable[[str, bytes, str], RecordRef]


class PageStuck(Exception):
    """A call into the page did not return in time (its script may never yield)."""


async def bounded(awaitable, seconds: float):
    """Await a call into the page, giving up after `seconds`."""
    try:
        return await asyncio.wait_for(awaitable, max(seconds, 0.001))
    except asyncio.TimeoutError:
        raise PageStuck(f"the page did not answer within {seconds:g}s") from None


async def close(page) -> None:
    try:
        await asyncio.wait_for(page.close(), CLOSE_TIMEOUT)
    except (PlaywrightError, asyncio.TimeoutError):
        pass


class Navigations:
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


async def load(page, url: str, opts: PageOptions, traffic: PageTraffic, result: BrowserPageResult,
               alive: Callable[[], Awaitable[bool]]) -> str | None:
    """Navigate and wait; returns the browser's navigation error, if any. `alive()` tells
    a page's failure from the browser's."""
    deadline = time.monotonic() + opts.timeout

    def left_ms() -> float:
        return max(1.0, (deadline - time.monotonic()) * 1000)

    def timed_out(what: str) -> None:
        result.timed_out = True
        result.notes.append(f"{what} within {opts.timeout:g}s")

    try:
        await page.goto(url, wait_until=opts.wait, timeout=left_ms())
    except PlaywrightError as exc:
        if not is_timeout(exc):
            return first_line(exc)
        timed_out(f"the page did not reach '{opts.wait}'")
    if opts.selector and not result.timed_out:
        try:
            await page.wait_for_selector(opts.selector, timeout=left_ms())
        except PlaywrightError as exc:
            if is_timeout(exc):
                timed_out(f"the selector {opts.selector!r} did not appear")
            elif await alive():
                # A selector Chromium cannot parse is the operator's slip, not the
                # page's failure: the page is still judged and snapshotted.
                result.notes.append(
                    f"the selector {opts.selector!r} could not be used: {first_line(exc)}")
            else:
                raise
    if opts.scroll and not result.timed_out:
        await scroll(page, opts, traffic, deadline, result)
    if opts.delay and time.monotonic() < deadline:
        await asyncio.sleep(min(opts.delay, deadline - time.monotonic()))
    return None


async def scroll(page, opts: PageOptions, traffic: PageTraffic, deadline: float,
                 result: BrowserPageResult) -> None:
    budget = max(0.0, deadline - time.monotonic())
    try:
        await bounded(page.evaluate(
            SCROLL_JS, {"budgetMs": budget * 1000, "pauseMs": 150, "maxSteps": 200},
        ), budget + SCRIPT_GRACE)
    except (PlaywrightError, PageStuck) as exc:
        result.notes.append(f"scrolling failed: {first_line(exc)}")
        return
    # Whatever the scrolling set off should land before the snapshots.
    idle = opts.wait == "networkidle"
    until = deadline if idle else min(deadline, time.monotonic() + SETTLE_AFTER_SCROLL)
    try:
        await page.wait_for_function(
            IMAGES_COMPLETE_JS, timeout=max(1.0, (until - time.monotonic()) * 1000))
    except PlaywrightError:
        result.notes.append("images were still loading after scrolling")
    if not await traffic.wait_quiet(until):
        if idle:
            result.timed_out = True
            result.notes.append(f"the network did not fall idle within {opts.timeout:g}s")
        else:
            result.notes.append("requests were still running after scrolling")


def settle_address(result: BrowserPageResult, documents: list[tuple[str, int]], shown: str) -> None:
    """The page's final URL: the address it shows, unless the history API changed that
    without a request (the page is then still the last document the server sent)."""
    final = shown
    if (documents and shown.startswith(("http://", "https://"))
            and shown not in (u for u, _ in documents)):
        # The history API changes the address without a request: the page is still
        # the document the server sent, which is what the proxy recorded.
        final = documents[-1][0]
        result.notes.append(f"the page changed its address to {shown} without loading it")
    if final.startswith(("http://", "https://")):
        result.final_url = final


async def snapshot(page, result: BrowserPageResult, timeout: float, keep: Keep,
                   find_media: bool, login_wall: Callable[[str, bytes], str | None] | None = None) -> None:
    """The rendered DOM and a full-page screenshot, kept as resource records (taken even
    after the page timed out, each within `timeout` seconds). `login_wall`: (URL, DOM) ->
    why the rendered page is a login wall (capture.loginwall), or None."""
    try:
        result.title = await bounded(page.title(), timeout) or None
        dom = (await bounded(page.content(), timeout)).encode("utf-8")
    except PageStuck as exc:
        # A page whose script never yields answers nothing more: no screenshot either.
        result.timed_out = True
        result.notes.append(f"no DOM snapshot or screenshot: {exc} (a script may never yield)")
        return
    except PlaywrightError as exc:
        result.notes.append(f"no DOM snapshot: {first_line(exc)}")
    else:
        result.dom = keep(f"{urns.DOM}{result.final_url}", dom, DOM_TYPE)
        result.outlinks = extract_html(dom, result.final_url).pages
        if login_wall is not None:
            result.login_wall = login_wall(result.final_url, dom)
        if find_media:
            result.media += find_in_html(dom, result.final_url, frames=result.frames,
                                         extras=result.media_extras)
        await frame_doms(page, result, timeout, keep, find_media)
    png = await screenshot(page, timeout, result.notes)
    if png is not None:
        result.screenshot = keep(f"{urns.SCREENSHOT}{result.final_url}", png, "image/png")


async def screenshot(page, timeout: float, notes: list[str]) -> bytes | None:
    """A full-page PNG, else one of the viewport; what failed goes to `notes`."""
    for full_page in (True, False):
        try:
            return await bounded(page.screenshot(
                full_page=full_page, type="png", timeout=timeout * 1000, animations="disabled",
            ), timeout + SCRIPT_GRACE)
        except PageStuck as exc:
            notes.append(f"no screenshot: {exc}")
            return None
        except PlaywrightError as exc:
            # Some documents (an SVG file, say) cannot be shot whole: the viewport then.
            notes.append(f"no {'full-page' if full_page else 'viewport'} screenshot: "
                         f"{first_line(exc)}")
    return None


async def frame_doms(page, result: BrowserPageResult, timeout: float, keep: Keep,
                     find_media: bool) -> None:
    """The rendered DOM of each frame loaded from the web (an embedded post, a video
    player), as its own `urn:dom:<frame URL>` resource record: the page's own DOM
    holds only the <iframe> element, not what it showed."""
    frames = [f for f in page.frames[1:] if f.url.startswith(("http://", "https://"))]
    for frame in frames[:MAX_FRAME_DOMS]:
        try:
            dom = (await bounded(frame.content(), timeout)).encode("utf-8")
        except PageStuck as exc:
            result.notes.append(f"no DOM snapshot of the frame {frame.url}: {exc}")
            return      # a frame whose script never yields: the others wait behind it
        except PlaywrightError as exc:
            result.notes.append(f"no DOM snapshot of the frame {frame.url}: {first_line(exc)}")
            continue
        result.frame_doms.append(keep(f"{urns.DOM}{frame.url}", dom, DOM_TYPE))
        if find_media:       # a player in a frame: its media are the page's
            result.media += find_in_html(dom, frame.url)
    if len(frames) > MAX_FRAME_DOMS:
        result.notes.append(f"{len(frames)} frames: the DOM of the first {MAX_FRAME_DOMS} was kept")
