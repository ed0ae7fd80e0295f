"""The crawl: worker threads take URLs from the frontier, fetch them, write their
records to the WARC and follow what they link to, journaling every step so that a
killed crawl can be resumed without losing or repeating a page.

With `browser` options, pages are loaded by one headless Chromium instead (one page at
a time, through its recording proxy): the browser fetches what a page needs itself,
and the crawler follows the links of the rendered page. Scope, limits, politeness,
robots.txt (for pages), retries, deduplication and the journal are the same.
"""

from __future__ import annotations

import copy
import email.utils
import os
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import BinaryIO, Callable

from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import (
    StatusAndHeaders, StatusAndHeadersParser, StatusAndHeadersParserException,
)

from archive import utctime
from archive.capture import credentials
from archive.capture.dedup import Dedup
from archive.capture.exchange import Recorded, write_exchange, write_metadata
from archive.capture.addresses import AddressPolicy
from archive.capture.fetch import DEFAULT_USER_AGENT, FetchResult, fetch, make_session
from archive.capture.frontier import Frontier, Item
from archive.capture.journal import (
    CrawlState, CrawlStats, Journal, end_line, group_line, recorded_in, resume_line, robots_line,
    seeds_line,
)
from archive.capture.loginwall import ERROR_KIND as LOGGED_OUT, LoginWall, check_selector
from archive.capture.redaction import Redaction
from archive.capture.links import (
    Links, absolute, extract_css, extract_html, header_requisites, refresh_target,
)
from archive.capture.mediafind import find_in_html
from archive.capture.cookiesfile import playwright_cookie
from archive.capture.login import Credentials
from archive.capture.mediaoptions import MediaOptions
from archive.capture.pageoptions import PageOptions
from archive.capture.robots import Robots, RobotsAnswer
from archive.capture.scope import Scope
from archive.capture.spill import SpillFile
from archive.warc.writer import RecordRef, WarcWriter

PARSE_LIMIT = 16 * 1024 * 1024   # HTML or CSS larger than this is kept but not parsed
ROBOTS_LIMIT = 500 * 1024        # RFC 9309: parse at least the first 500 KiB
ROBOTS_REDIRECTS = 5
REDIRECT_CODES = {301, 302, 303, 307, 308}
TRANSIENT_KINDS = {"timeout", "reset", "refused"}
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
MIN_PAGE_WAIT = 1.0              # seconds a browser page gets however near --max-time is
# The least each whole-number crawl option may be: one rule for the command line, job files
# and saved requests (no pages, or no workers, would store a capture of nothing).
LEAST = {"depth": 0, "max_pages": 1, "workers": 1, "host_workers": 1, "retries": 0,
         "max_redirects": 0}
# Durations that must be more than zero (a zero timeout fails every fetch).
POSITIVE = ("timeout", "max_time")
# Defaults that stop an endless response or a crawl trap before the disk is full; a
# capture cut by either says so (WARC-Truncated: length, stop reason max-bytes).
DEFAULT_MAX_BODY = 1 << 30       # one response body kept: 1 GiB
DEFAULT_MAX_BYTES = 10 << 30     # one crawl, everything received: 10 GiB


@dataclass
class CrawlOptions:
    seeds: list[str]
    depth: int = 0
    scope: str = "page"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_pages: int | None = None
    max_bytes: int | None = DEFAULT_MAX_BYTES     # None: no limit
    max_time: float | None = None
    max_body: int | None = DEFAULT_MAX_BODY       # None: no limit
    timeout: float = 30.0
    max_redirects: int = 10
    user_agent: str = DEFAULT_USER_AGENT
    verify_tls: bool = True
    workers: int = 8               # fetches at once, all hosts together
    host_workers: int = 4          # fetches at once to one host (scheme, name, port)
    delay: float = 0.0             # seconds between request starts to one host
    retries: int = 2               # extra attempts after a transient failure
    backoff: float = 1.0           # first retry wait in seconds; doubles each time
    max_retry_after: float = 120.0 # a longer Retry-After is recorded, not waited for
    obey_robots: bool = True
    dedup: bool = True
    browser: PageOptions | None = None   # load pages with Chromium, this way
    allow_private_addresses: bool = False   # fetch from loopback/private ranges beyond the seeds' hosts
    allow_metadata_addresses: bool = False  # and from link-local ones (cloud metadata services)
    media: MediaOptions | None = None    # download pages' video and audio with yt-dlp, this way
    # behind a login (archive.capture.credentials): never sealed, only named
    cookies: str | None = None           # a Netscape cookies.txt, read when each run starts
    headers: list[str] = field(default_factory=list)          # "Name: value", every request
    secret_headers: list[str] = field(default_factory=list)   # names redacted besides the defaults
    url_logins: dict = field(default_factory=dict)   # origin -> Authorization from a seed URL
    logged_out_url: list[str] = field(default_factory=list)       # REGEX: a login wall's address
    logged_out_selector: list[str] = field(default_factory=list)  # CSS: a login wall's content

    def __post_init__(self) -> None:
        if isinstance(self.browser, dict):   # as saved in a capture's request.json
            self.browser = PageOptions(**self.browser)
        if isinstance(self.media, dict):
            self.media = MediaOptions(**self.media)
        for name, least in LEAST.items():
            value = getattr(self, name)
            if value is not None and value < least:
                raise ValueError(f"{name.replace('_', '-')} must be {least} or more, not {value}")
        for name in POSITIVE:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name.replace('_', '-')} must be more than zero")
        for selector in self.logged_out_selector:
            check_selector(selector)

    @property
    def credentials_given(self) -> bool:
        return bool(self.cookies or self.url_logins
                    or any(credentials.parse_header(h)[0].lower() in
                           credentials.secret_header_names(self.secret_headers) for h in self.headers))


def decoded_body(result: FetchResult, limit: int = PARSE_LIMIT) -> bytes | None:
    """The response body with transfer and content encodings undone (warcio's decoders)."""
    if not result.has_response:
        return None
    stream = result.response
    stream.seek(0)
    try:
        http_headers = StatusAndHeadersParser([], verify=False).parse(stream)
        remaining = result.response_length - stream.tell()
        record = ArcWarcRecord(
            "warc", "response", StatusAndHeaders("", []), LimitReader(stream, remaining),
            http_headers, "", remaining,
        )
        return record.content_stream().read(limit)
    except Exception:  # noqa: BLE001 - undecodable bodies are kept, just not parsed
        return None
    finally:
        stream.seek(0)



def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass
class Outcome:
    """What one fetch leads to, worked out before the WARC writer is locked."""

    links: Links = field(default_factory=Links)
    redirect: str | None = None
    note: str | None = None
    new_items: list[Item] = field(default_factory=list)
    follows_redirect: bool = False   # the page entry belongs to where the redirect leads
    robots_blocked: bool = False
    media: list[str] = field(default_factory=list)   # video and audio found (with --media)
    media_extras: dict = field(default_factory=dict)  # their posters and subtitle tracks, by URL
    frames: list[str] = field(default_factory=list)   # its frames (players), with --media
    error_kind: str | None = None    # what the note says went wrong (logged-out), when not the fetch's


class Crawler:
    """Runs one crawl (or the rest of one, given the state a journal left) into a WARC
    writer, journaling each group of records as it is written."""

    def __init__(
        self,
        options: CrawlOptions,
        writer: WarcWriter,
        journal: Journal,
        spool_dir: str | None = None,
        dedup: Dedup | None = None,
        state: CrawlState | None = None,
        frontier: Frontier | None = None,
        robots: Robots | None = None,
        spill: SpillFile | None = None,
        reread: Callable[[str, int], BinaryIO] | None = None,
        redaction: Redaction | None = None,
        cookies: list | tuple = (),
        profile: Credentials | None = None,
    ) -> None:
        """`frontier` and `robots`: shared ones (a crawl spread over processes) instead
        of this process's own. `spill`: where this process's frontier puts what passes
        its memory bound (the deduplication given may share it); removed at the end.
        `reread(WARC file name, offset)`: a record written by an earlier run, opened at
        its start (a resume reads back the pages whose links it had not followed).
        `redaction`: the secret request headers and the key of their digests; `cookies`:
        those of options.cookies, read when the run started; `profile`: the browser
        profile the browser and the media downloads start with. Both kept in memory only."""
        self.options = options
        self.profile = profile
        self.writer = writer
        self.journal = journal
        self.spool_dir = spool_dir
        self.scope = Scope(options.scope, options.seeds, options.include, options.exclude)
        self.policy = AddressPolicy.for_seeds(options.seeds, options.allow_private_addresses,
                                              options.allow_metadata_addresses)
        self.frontier = frontier or Frontier(options.host_workers, options.delay, options.max_pages,
                                             spill)
        self._spill = spill
        self.robots = robots or (Robots(options.user_agent) if options.obey_robots else None)
        self.dedup = (dedup or Dedup()) if options.dedup else None
        self.redaction = redaction or Redaction.make(
            options.secret_headers, credentials_given=options.credentials_given)
        self.cookies = list(cookies)
        self.login_wall = LoginWall(tuple(options.logged_out_url), tuple(options.logged_out_selector),
                                    options.credentials_given or profile is not None)
        self._seed_hosts = {credentials.host_of(seed) for seed in options.seeds}
        self.stats = CrawlStats()
        self.stop_reason: str | None = None
        self.not_fetched: list[str] = []
        self.browser = None                  # the BrowserSession, while a browser crawl runs
        self.media = None                    # the MediaSession, while a --media crawl runs
        # pages whose media a stopped run had found but not recorded: fetched first
        self._media_todo = list(state.media_todo.items()) if state is not None else []
        self._media_todo_lock = threading.Lock()
        # fetched and journaled by a stopped run, their links not followed yet: done first
        self._links_todo = list(state.links_todo.values()) if state is not None else []
        self._reread = reread
        self._unjournaled = Recorded()       # written by the browser, not journaled yet
        self._journaled_at: tuple | None = None
        self._errors: list[BaseException] = []
        self._deadline: float | None = None
        self._run_started = time.monotonic()
        self._time_before = state.crawl_time if state is not None else 0.0
        if state is None:
            seeds = [item for item in (Item(s, 0) for s in options.seeds) if self.frontier.add(item)]
            journal.append(seeds_line(seeds))
        else:
            self.frontier.restore(state.seen, state.pending(), state.stats.page_fetches)
            if self.robots is not None:
                self.robots.restore(state.robots)
            self.stats = CrawlStats(**vars(state.stats))
            if self.dedup is not None:
                for digest, original in state.originals:
                    self.dedup.add(digest, original)
            journal.append(resume_line())

    def cut_at(self, deadline: float) -> None:
        """End the crawl at `deadline` (time.monotonic()): a shared crawl's --max-time,
        kept by its coordinator and learnt from Redis."""
        self._deadline = deadline

    # -- running ---------------------------------------------------------------
    def run(self, on_progress: Callable[[CrawlStats, int], None] | None = None) -> CrawlStats:
        """Crawl until the frontier is empty or a limit is reached. On an interrupt or a
        worker's error the workers finish what they fetch and the error is raised; the
        journal then holds everything needed to resume."""
        if self.options.max_time is not None:
            # the whole crawl's time: what earlier runs of it spent counts too
            left = self.options.max_time - self._time_before
            self._deadline = time.monotonic() + max(0.0, left)
            if left <= 0:
                self.frontier.stop("max-time")
        try:
            if self.options.browser is not None:
                self._start_browser()
            if self.options.media is not None:
                self._start_media()
        except BaseException:
            self._close_sessions(None)       # the one that started, when the other did not
            raise
        # The browser loads one page at a time: one worker feeds it.
        workers = 1 if self.browser is not None else max(1, self.options.workers)
        threads = [
            threading.Thread(target=self._work, name=f"crawl-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    if self._deadline is not None and time.monotonic() >= self._deadline:
                        self.frontier.stop("max-time")
                    if on_progress:
                        on_progress(self._progress(), self.frontier.queued)
        except BaseException as exc:
            self.frontier.stop("interrupted")
            if self.media is not None:
                self.media.stop()       # a download under way ends now, not at its next timeout
            for thread in threads:
                thread.join()
            self._close_sessions(exc)
            raise
        self._close_browser()
        self._close_media()
        if self._errors:
            raise self._errors[0]
        self.not_fetched = [item.url for item in self.frontier.remaining()]
        if self._spill is not None:
            self._spill.close()
        # The frontier ends quietly when only pages beyond --max-pages are left.
        self.stop_reason = self.frontier.stop_reason or ("max-pages" if self.not_fetched else None)
        more = self.frontier.over_limit_more      # left out by --max-pages, not named
        self.stats.not_fetched = len(self.not_fetched) + more
        self.journal.append(end_line(self.stop_reason, self.not_fetched, more))
        return self.stats

    def _close_sessions(self, exc: BaseException | None) -> None:
        """Close the browser and the media session after a failure: what goes wrong in
        closing is noted on the exception being raised (or dropped, with none)."""
        for close in (self._close_browser, self._close_media):
            try:
                close()
            except Exception as failure:  # noqa: BLE001 - the first failure is what is raised
                if exc is not None:
                    exc.add_note(f"closing failed too: {failure}")

    def _progress(self) -> CrawlStats:
        """The stats so far, with the bytes recorded but not journaled yet and those of
        a media download under way (a large video would freeze the progress line)."""
        if self.media is None:
            return self.stats
        with self.writer.batch():
            pending = self._unjournaled.bytes
        return replace(self.stats, bytes=self.stats.bytes + pending + self.media.downloading)

    # -- the browser -----------------------------------------------------------
    def _start_browser(self) -> None:
        # Imported here: loading Playwright takes most of a second, and only --browser needs it.
        from archive.capture.browser import BrowserOptions, BrowserSession

        o = self.options
        self.browser = BrowserSession(
            self.writer, self._browser_recorded,
            BrowserOptions(page=o.browser, user_agent=o.user_agent, verify_tls=o.verify_tls,
                           fetch_timeout=o.timeout, max_body=o.max_body, spool_dir=self.spool_dir,
                           policy=self.policy, find_media=o.media is not None,
                           redaction=self.redaction, extra_headers=self._headers,
                           login_wall=self.login_wall.page, storage_state=self._browser_login()),
            exclude=self._excluded, dedup=self.dedup,
        ).start()
        self.writer.describe({"browser": f"Chromium {self.browser.version}",
                              "browser-executable": self.browser.executable})

    def _browser_login(self) -> dict | None:
        """What the browser starts logged in with: the profile's cookies and local
        storage, else the cookies of --cookies (None: neither)."""
        if self.profile is not None:
            return self.profile.storage_state
        if self.cookies:
            return {"cookies": [playwright_cookie(c) for c in self.cookies], "origins": []}
        return None

    def _browser_recorded(self, recorded: Recorded) -> None:
        """Records written by the browser's or the media proxy: journaled with the next group."""
        with self.writer.batch():
            self._unjournaled.add(recorded)

    # -- media -----------------------------------------------------------------
    def _start_media(self) -> None:
        # Imported here: yt-dlp takes a while to load, and only --media needs it.
        from archive.capture.media import MediaSession

        o = self.options
        folder = os.path.join(os.path.dirname(self.spool_dir), "media") if self.spool_dir else None
        if folder is None:
            import tempfile
            folder = tempfile.mkdtemp(prefix="archive-media-")
        media = o.media
        if o.cookies and not media.cookies:     # --cookies serves media capture too
            media = replace(media, cookies=o.cookies)
        self.media = MediaSession(
            self.writer, self._browser_recorded, media, folder, user_agent=o.user_agent,
            verify_tls=o.verify_tls, timeout=o.timeout, retries=o.retries, delay=o.delay,
            spool_dir=self.spool_dir, exclude=self._excluded, dedup=self.dedup, policy=self.policy,
            redaction=self.redaction,
            cookies_txt=self.profile.cookies_txt() if self.profile else None,
        ).start()
        self.writer.describe(self.media.describe())

    def _close_media(self) -> None:
        media, self.media = self.media, None
        if media is not None:
            media.close()

    def _media_budget(self):
        from archive.capture.media import MediaBudget

        def bytes_left() -> int | None:
            if self.options.max_bytes is None:
                return None
            with self.writer.batch():
                return self.options.max_bytes - self.stats.bytes - self._unjournaled.bytes

        def stopping() -> str | None:
            reason = self.frontier.stop_reason
            return reason if reason in ("interrupted", "error") else None
        return MediaBudget(bytes_left, self._deadline, stopping)

    def _record_media(self, page: str, urls: list[str], extras: dict | None = None,
                      again: bool = False) -> None:
        """Download and record the media found on `page`, then journal what became of
        each (its exchanges and records are journaled with it)."""
        media = self.media
        if not urls or media is None:
            return
        from archive.capture.media import MediaInterrupted
        try:
            entries = media.capture(page, urls, self._media_budget(), again=again, extras=extras)
        except MediaInterrupted:
            return      # the crawl is stopping: a resume fetches these again
        if self.frontier.stop_reason in ("interrupted", "error"):
            return      # what failed may have failed because we stopped: a resume fetches them again
        with self.writer.batch():
            self._journal(group_line(page, "media", True, mediaDone={
                "page": page, "entries": entries, "downloader": media.describe()}))
        self._check_bytes()

    def _media_left_over(self) -> None:
        """The media a stopped run found but did not record, before anything else."""
        while True:
            with self._media_todo_lock:
                if not self._media_todo or self.frontier.stop_reason:
                    return
                page, found = self._media_todo.pop(0)
            self._record_media(page, found["urls"], found.get("extras"), again=True)

    def _excluded(self, url: str) -> str | None:
        return "excluded by --exclude" if self.scope.excluded(url) else None

    def _close_browser(self) -> None:
        """Close the browser (exchanges still running are recorded as cut short) and
        journal whatever it wrote after the last page."""
        browser, self.browser = self.browser, None
        if browser is None:
            return
        try:
            browser.close()
        finally:
            with self.writer.batch():
                if self.writer.position() != self._journaled_at:
                    self._journal(group_line(None, "browser", False))

    def _work(self) -> None:
        session = make_session(self.options.user_agent, self.options.verify_tls, policy=self.policy)
        for cookie in self.cookies:     # each thread's jar: the cookie policy picks per request
            session.cookies.set_cookie(copy.copy(cookie))
        try:
            self._links_left_over()
            self._media_left_over()
            while (item := self.frontier.claim()) is not None:
                try:
                    self._process(session, item)
                finally:
                    self.frontier.release(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            self._errors.append(exc)
            self.frontier.stop("error")
        finally:
            session.close()

    # -- one URL -------------------------------------------------------------
    def _process(self, session, item: Item) -> None:
        if self.robots is not None:
            rules = self.robots.rules(item.url, lambda url: self._robots_answer(session, url))
            delay = rules.crawl_delay(self.options.user_agent)
            if delay:
                self.frontier.slow_down(item.url, delay)
            if not rules.allows(item.url, self.options.user_agent):
                blocked = FetchResult(
                    url=item.url, started=datetime.now(timezone.utc), error_kind=rules.error_kind,
                    error=f"not fetched: disallowed by {rules.source}",
                )
                self._commit(item, blocked, final=True, outcome=Outcome(robots_blocked=True))
                return
        if self.browser is not None:
            self._browse(item)
            return
        result = fetch(
            session, item.url, timeout=self.options.timeout, max_body=self._body_budget(),
            deadline=self._deadline, spool_dir=self.spool_dir, headers=self._headers(item.url),
        )
        try:
            wait = self._retry_wait(item, result.error_kind, result.status,
                                    result.headers.get("retry-after"))
            if wait is not None:
                note = f"attempt {item.attempt + 1} failed; retrying in {wait:.1f}s"
                self._commit(item, result, final=False, outcome=Outcome(note=note), last_read=True)
                self.frontier.retry(item.retried(), time.monotonic() + wait)
                return
            # A shared crawl's worker hands over whole fetches (a hand-over waits, holding
            # the writer, for the fetches in hand: a second group would wait on it); one
            # killed mid-parse loses its lease and another worker fetches the URL.
            if self._parses(result) and not self.frontier.shared:
                # journaled before its links are read: a document slow to parse (or a
                # run stopped meanwhile) is never fetched again, its links read on resume
                pending = self._commit(item, result, final=True, outcome=Outcome(), pending=True)
                outcome = self._follow_links(item, result, pending)
            else:
                outcome = self._outcome(item, result)
                self._commit(item, result, final=True, outcome=outcome, last_read=True)
        finally:
            result.close()
        self._record_media(result.url, outcome.media, outcome.media_extras)

    # -- links read after the fetch is journaled -----------------------------------
    def _parses(self, result: FetchResult) -> bool:
        """Whether links are read from this response (a 2xx HTML or CSS body, whole)."""
        content_type = (result.headers.get("content-type") or "").lower()
        return (result.has_response and 200 <= result.status < 300 and not result.truncated
                and ("html" in content_type or "css" in content_type))

    def _follow_links(self, item: Item, result: FetchResult, pending: dict) -> Outcome:
        """Read a journaled response's links (and media), write its metadata record and
        journal what it leads to: its page entry, the URLs it queues."""
        outcome = self._outcome(item, result)
        kind = "requisite" if item.requisite else "page"
        told = self.frontier.add_many(outcome.new_items) if self.frontier.shared else None
        with self.writer.batch():
            fields = {**pending["metadata"], "outlink": outcome.links.pages + outcome.links.requisites}
            if outcome.links.cut:
                fields["links-cut"] = "; ".join(outcome.links.cut)
            write_metadata(self.writer, result.url, fields, pending["date"], pending["id"],
                           self.redaction)
            queued = told if told is not None else self.frontier.add_many(outcome.new_items)
            line = group_line(item.url, "links", True, queued)
            _found(line, result, outcome)
            if kind == "page":
                line["page"] = self._page_entry(item, result, outcome, None, pending["id"])
            self._journal(line)
        self._check_bytes()
        return outcome

    def _links_left_over(self) -> None:
        """The responses a stopped run journaled without following their links: read back
        from the WARC data, never fetched again."""
        while True:
            with self._media_todo_lock:
                if not self._links_todo or self.frontier.stop_reason:
                    return
                pending = self._links_todo.pop(0)
            raw = pending["item"]
            item = Item.from_json(raw[:4], raw[4])
            result = self._read_back(item, pending)
            try:
                outcome = self._follow_links(item, result, pending)
            finally:
                result.close()
            self._record_media(result.url, outcome.media, outcome.media_extras)

    def _read_back(self, item: Item, pending: dict) -> FetchResult:
        """A journaled response as the fetch had it (its raw HTTP bytes spooled), from the
        record an earlier run wrote; a revisit (its payload stored elsewhere) has no body."""
        import tempfile
        from warcio.archiveiterator import ArchiveIterator

        name, offset, length = pending["record"]
        result = FetchResult(url=item.url, started=utctime.parse_micros(pending["date"]),
                             body_bytes=pending.get("size", 0))
        if self._reread is None:
            return result
        with self._reread(name, offset) as fh:
            record = next(iter(ArchiveIterator(LimitReader(fh, length), no_record_parse=True)))
            spool = tempfile.SpooledTemporaryFile(1 << 20, dir=self.spool_dir)
            while chunk := record.raw_stream.read(1 << 16):
                spool.write(chunk)
            if record.rec_type != "response":
                spool.close()
                return result
        result.response_length = spool.tell()
        spool.seek(0)
        try:
            head = StatusAndHeadersParser([], verify=False).parse(spool)
            result.status = int(head.get_statuscode())
            result.headers = {k.lower(): v for k, v in head.headers}
        except (ValueError, TypeError, StatusAndHeadersParserException):
            result.status = None
        spool.seek(0)
        result.response = spool
        return result

    def _headers(self, url: str) -> dict[str, str] | None:
        """The extra request headers (--header, a seed URL's credentials) `url` gets."""
        o = self.options
        if not (o.headers or o.url_logins):
            return None
        return credentials.request_headers(url, o.headers, o.secret_headers, self._seed_hosts,
                                           o.url_logins)

    def _retry_wait(self, item: Item, error_kind: str | None, status: int | None,
                    retry_after_header: str | None) -> float | None:
        """Seconds to wait before fetching again, or None when this result is final."""
        transient = error_kind in TRANSIENT_KINDS or status in TRANSIENT_STATUS
        if not transient or item.attempt >= self.options.retries or self.frontier.stop_reason:
            return None
        wait = self.options.backoff * (2 ** item.attempt)
        asked = retry_after(retry_after_header) if status in (429, 503) else None
        if asked is not None:
            if asked > self.options.max_retry_after:
                return None
            wait = max(wait, asked)
            self.frontier.hold(item.url, time.monotonic() + asked)
        if self._deadline is not None and time.monotonic() + wait >= self._deadline:
            return None
        return wait

    def _robots_answer(self, session, url: str) -> RobotsAnswer:
        """robots.txt's answer, journaled after the records of its fetch: a resumed
        crawl goes on with it instead of fetching (and recording) the file again."""
        answer = self._fetch_robots(session, url)
        self.journal.append(robots_line(url, answer))
        return answer

    def _fetch_robots(self, session, url: str) -> RobotsAnswer:
        """Fetch robots.txt (following up to five redirects), every hop recorded."""
        for _ in range(ROBOTS_REDIRECTS + 1):
            result = fetch(session, url, timeout=self.options.timeout, max_body=ROBOTS_LIMIT * 4,
                           deadline=self._deadline, spool_dir=self.spool_dir)
            try:
                self._commit(Item(url, 0, requisite=True), result, final=False,
                             outcome=Outcome(), kind="robots")
                if not result.has_response:
                    return RobotsAnswer(None, error_kind=result.error_kind, error=result.error)
                if result.status in REDIRECT_CODES:
                    url = absolute(result.url, result.headers.get("location"))
                    if not url:
                        return RobotsAnswer(None, error="redirect without a usable Location")
                    continue
                body = decoded_body(result, ROBOTS_LIMIT) or b""
                return RobotsAnswer(result.status, body.decode("utf-8", errors="replace"))
            finally:
                result.close()
        return RobotsAnswer(None, error=f"more than {ROBOTS_REDIRECTS} redirects")

    # -- what a response leads to -------------------------------------------
    def _outcome(self, item: Item, result: FetchResult) -> Outcome:
        if not result.has_response:
            return Outcome()
        if result.status in REDIRECT_CODES:
            target = absolute(result.url, result.headers.get("location"))
            wall = None if item.requisite else self.login_wall.redirect(target)
            if wall:        # not followed: the login page is not the page asked for
                return Outcome(redirect=target, note=wall, error_kind=LOGGED_OUT)
            return self._redirect(item, target)
        if result.truncated:
            return Outcome()
        wall = None if item.requisite else self._login_wall(result)
        if wall:            # recorded as it came, but its links are not the content's
            return Outcome(note=wall, error_kind=LOGGED_OUT)
        links = self._links(result)
        media, extras, frames = self._media_found(result)
        if item.requisite and "css" not in (result.headers.get("content-type") or "").lower():
            # a requisite's own links are not followed (an iframe's page, say); its media are
            return Outcome(links, media=media, media_extras=extras)
        # With --media, a page's video and audio are yt-dlp's to fetch, not fetched twice.
        items = [Item(url, item.depth, requisite=True)
                 for url in links.requisites if not self.scope.excluded(url) and url not in media]
        if not item.requisite and item.depth < self.options.depth:
            items += [Item(url, item.depth + 1) for url in links.pages if self.scope.allows(url)]
        return Outcome(links, new_items=items, media=media, media_extras=extras, frames=frames)

    def _login_wall(self, result: FetchResult) -> str | None:
        """Why a page's answer is a login wall, not its content (None: it is not)."""
        wall = self.login_wall
        if not (wall.url_patterns or wall.selectors or wall.credentials_given) \
                or not 200 <= result.status < 300:
            return None
        html = "html" in (result.headers.get("content-type") or "").lower()
        return wall.page(result.url, decoded_body(result) if html else None)

    def _media_found(self, result: FetchResult) -> tuple[list[str], dict, list[str]]:
        """With --media, the video and audio an HTML response names (not excluded), their
        posters and subtitle tracks, and its frames (whose media are listed with it)."""
        if self.media is None or "html" not in (result.headers.get("content-type") or "").lower() \
                or not 200 <= result.status < 300:
            return [], {}, []
        body = decoded_body(result)
        if body is None:
            return [], {}, []
        frames: list[str] = []
        extras: dict = {}
        found = find_in_html(body, result.url, result.headers.get("content-type"), frames, extras)
        urls = [url for url in self.media.with_extracted(result.url, found, frames)
                if not self.scope.excluded(url)]
        return urls, {url: extra for url, extra in extras.items() if url in urls}, frames

    def _redirect(self, item: Item, target: str | None) -> Outcome:
        """A redirect's target is queued as its own fetch. A loop or an over-long chain is
        an error. A page redirecting out of scope is not followed, except from a seed,
        whose redirect (http -> https, say) is the page."""
        if not target:
            return Outcome(note="redirect without a usable Location header")
        chain = item.chain + (item.url,)
        if target in chain:
            return Outcome(redirect=target, note=f"redirect loop: {' -> '.join(chain + (target,))}")
        if len(chain) > self.options.max_redirects:
            return Outcome(redirect=target, note=f"more than {self.options.max_redirects} redirects")
        from_seed = item.depth == 0 and not item.requisite
        if not item.requisite and not from_seed and not self.scope.allows(target):
            return Outcome(redirect=target)
        return Outcome(redirect=target, new_items=[Item(target, item.depth, item.requisite, chain)],
                       follows_redirect=True)

    def _links(self, result: FetchResult) -> Links:
        content_type = (result.headers.get("content-type") or "").lower()
        is_html, is_css = "html" in content_type, "css" in content_type
        if not (is_html or is_css) or not 200 <= result.status < 300:
            return Links()
        body = decoded_body(result)
        if body is None:
            return Links()
        extract = extract_html if is_html else extract_css
        links = extract(body, result.url, content_type)
        links.requisites += header_requisites(result.url, result.headers.get("link"))
        if is_html:     # a Refresh header sends the browser on, as a meta refresh does
            links.add(result.url, refresh_target(result.headers.get("refresh")), requisite=False)
        return links

    # -- writing -------------------------------------------------------------
    def _commit(self, item: Item, result: FetchResult, *, final: bool, outcome: Outcome,
                kind: str | None = None, pending: bool = False, last_read: bool = False,
                ) -> dict | None:
        """Write one fetch's records as one uninterrupted group, queue what it links
        to, and journal it, all under the writer's lock (so the journal follows the WARC
        and a crash never separates a record from its journal line). `pending`: its links
        are read after this (`_follow_links` writes its metadata record); returns what
        that needs, as journaled. `last_read`: nothing reads the response after this
        (write_exchange's: its spool gives its pages back as it is copied)."""
        kind = kind or ("requisite" if item.requisite else "page")
        failed = bool(not result.has_response or result.truncated or result.status >= 400
                      or outcome.note)
        extra = {"attempt": item.attempt + 1} if item.attempt else {}
        if outcome.links.cut:       # a hostile document: what of its links was not taken
            extra["links-cut"] = "; ".join(outcome.links.cut)
        # A frontier shared through Redis is told before the writer is locked (a round trip
        # the other threads need not wait for; the coordinator orders its journal). This
        # process's own is told under the lock: the journal then queues a URL before any
        # line that fetched it.
        told = self.frontier.add_many(outcome.new_items) if self.frontier.shared else None
        with self.writer.batch():
            written = write_exchange(
                self.writer, result, outlinks=outcome.links.pages + outcome.links.requisites,
                redirect=outcome.redirect, note=outcome.note, extra_fields=extra or None,
                dedup=self.dedup, redaction=self.redaction, defer_metadata=pending,
                last_read=last_read,
            )
            queued = told if told is not None else self.frontier.add_many(outcome.new_items)
            line = group_line(item.url, kind, final, queued)
            links_pending = None
            if final:
                line["failed"] = failed
                if failed:
                    line["error"] = _failure(result, outcome.note)
                _found(line, result, outcome)
                if outcome.robots_blocked:
                    line["robots"] = True
                followed = outcome.follows_redirect and bool(queued)
                if pending:
                    ref = written.response
                    line["linksPending"] = links_pending = {
                        "item": [*item.to_json(), item.attempt], "id": ref.record_id, "date": ref.date,
                        "record": [ref.filename, ref.offset, ref.length], "size": result.body_bytes,
                        "metadata": written.metadata_fields}
                elif kind == "page" and not followed:
                    line["page"] = self._page_entry(item, result, outcome, written.response)
            self._journal(line, written.recorded)
        self._check_bytes()
        return links_pending

    def _browse(self, item: Item) -> None:
        """Load one page in the browser (which writes its records) and journal it as
        one group: the page, everything it fetched, its snapshots."""
        from archive.capture.browser import page_entry

        page = self.browser.capture_page(item.url, self._page_options())
        wait = self._retry_wait(item, page.error_kind, page.status, page.retry_after)
        final = wait is None
        # a page the browser was sent on from to a login page, or that shows one: a login wall
        wall = (self.login_wall.redirect(page.final_url) if page.final_url != item.url else None) \
            or page.login_wall
        with self.writer.batch():
            # What the browser fetched is captured: the crawler does not fetch it again.
            fetched = [page.final_url, *page.requisites]
            self.frontier.mark_seen(fetched)
            queued = []
            if final and not wall and item.depth < self.options.depth:
                queued = [new for new in (Item(url, item.depth + 1) for url in page.outlinks
                                          if self.scope.allows(url)) if self.frontier.add(new)]
            line = group_line(item.url, "page", final, queued, seen=fetched,
                              requisites=len(page.requisites),
                              requisitesFailed=len(page.requisite_failures),
                              requisiteFailures=page.requisite_failures)
            media = [url for url in self.media.with_extracted(page.final_url, page.media, page.frames)
                     if not self.scope.excluded(url)] if self.media is not None else []
            if final:
                entry = page_entry(page)
                if wall:        # whatever the login page answered, the page was not there
                    entry["error"], entry["errorKind"] = wall, LOGGED_OUT
                if item.attempt:
                    entry["attempts"] = item.attempt + 1
                line["failed"] = "error" in entry
                if "error" in entry:
                    line["error"] = entry["error"]
                line["page"] = entry
                if media:
                    line["mediaFound"] = {"page": page.final_url, "urls": media,
                                          "extras": page.media_extras}
            self._journal(line)
        if wait is not None:
            self.frontier.retry(item.retried(), time.monotonic() + wait)
        self._check_bytes()
        if final:
            self._record_media(page.final_url, media, page.media_extras)

    def _page_options(self) -> PageOptions:
        """The browser's page options, its wait cut at --max-time (as the crawler's own
        fetches are): a page that never settles is then captured as it is, timed out."""
        options = self.options.browser
        if self._deadline is None:
            return options
        left = max(MIN_PAGE_WAIT, self._deadline - time.monotonic())
        return replace(options, timeout=min(options.timeout, left))

    def _journal(self, line: dict, recorded: Recorded | None = None) -> None:
        """Append a group line naming the WARC position after the group and what every
        record before it added (the caller holds the writer's lock)."""
        pending = self._unjournaled.take()
        if recorded is not None:
            pending.add(recorded)
        self._journaled_at = self.writer.position()
        line = recorded_in(line, self._journaled_at, time.monotonic() - self._run_started, pending)
        line.update(pending.journal_fields())
        self.journal.append(line)
        self.stats.count(line)

    def _body_budget(self) -> int | None:
        """The most of one body to keep: --max-body, and what --max-bytes leaves (one
        large response does not take the crawl far past it; it is kept cut, marked
        WARC-Truncated: length)."""
        limits = [self.options.max_body] if self.options.max_body is not None else []
        if self.options.max_bytes is not None:
            limits.append(max(1, self.options.max_bytes - self.stats.bytes))
        return min(limits, default=None)

    def _check_bytes(self) -> None:
        if self.options.max_bytes is not None and self.stats.bytes >= self.options.max_bytes:
            self.frontier.stop("max-bytes")

    def _page_entry(self, item: Item, result: FetchResult, outcome: Outcome,
                    ref: RecordRef | None, record_id: str | None = None) -> dict:
        # py-wacz reads pages.jsonl as a table keyed by the header line's fields, so an
        # entry without `id` or `title` counts as a blank row: every entry gets an id.
        record_id = ref.record_id if ref else record_id
        page_id = record_id.strip("<>").rsplit(":", 1)[-1] if record_id else uuid.uuid4().hex
        entry = {"id": page_id, "url": result.url, "ts": utctime.seconds(result.started)}
        if outcome.links.title:
            entry["title"] = outcome.links.title
        if result.status is not None:
            entry["status"] = result.status
        if result.has_response:
            entry["size"] = result.body_bytes
        if item.chain:
            entry["redirectedFrom"] = item.chain[0]
        if outcome.redirect:
            entry["redirectTo"] = outcome.redirect
        if item.attempt:
            entry["attempts"] = item.attempt + 1
        error = _error(result, outcome.note)
        if error:
            entry["error"] = error
            entry["errorKind"] = (outcome.error_kind or result.error_kind
                                  or ("redirect" if outcome.note else "http"))
        return entry


def _found(line: dict, result: FetchResult, outcome: Outcome) -> None:
    """Journal the media found on a page (with --media) and its frames."""
    if outcome.media:
        line["mediaFound"] = {"page": result.url, "urls": outcome.media}
        if outcome.media_extras:
            line["mediaFound"]["extras"] = outcome.media_extras
    if outcome.frames:
        line["frames"] = outcome.frames


def _error(result: FetchResult, note: str | None) -> str | None:
    """What went wrong with a fetch, as pages.jsonl says it (None: nothing)."""
    return note or result.error or (
        f"HTTP {result.status}" if result.status and result.status >= 400 else None)


def _failure(result: FetchResult, note: str | None) -> str:
    """Why a failed fetch counts as failed: its error, or a body cut short."""
    return _error(result, note) or f"body cut short ({result.truncated})"

