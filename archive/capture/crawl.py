"""The crawl: a frontier of pages and requisites, fetched, written to WARC and followed."""

from __future__ import annotations

import json
import threading
import uuid
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

from archive.capture.fetch import DEFAULT_USER_AGENT, FetchResult, fetch, make_session
from archive.capture.links import Links, absolute, extract_css, extract_html
from archive.capture.scope import Scope
from archive.warc.cdxj import cdxj_line
from archive.warc.records import fetch_metadata_fields
from archive.warc.writer import WarcWriter, warc_fields

PARSE_LIMIT = 16 * 1024 * 1024   # HTML or CSS larger than this is kept but not parsed
REDIRECT_CODES = {301, 302, 303, 307, 308}


@dataclass
class CrawlOptions:
    seeds: list[str]
    depth: int = 0
    scope: str = "page"
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_pages: int | None = None
    max_bytes: int | None = None
    max_time: float | None = None
    max_body: int | None = None
    timeout: float = 30.0
    max_redirects: int = 10
    user_agent: str = DEFAULT_USER_AGENT
    verify_tls: bool = True


@dataclass
class Item:
    url: str
    depth: int
    requisite: bool = False
    chain: tuple = ()        # URLs of the redirects that led here


@dataclass
class CrawlStats:
    pages: int = 0
    requisites: int = 0
    failed: int = 0
    bytes: int = 0
    records: int = 0
    not_fetched: int = 0
    started: float = field(default_factory=time.monotonic)


class Journal:
    """Append-only files in the capture's work directory: index lines and page entries."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._index = open(directory / "index.cdxj", "a", encoding="utf-8")
        self._pages = open(directory / "pages.jsonl", "a", encoding="utf-8")

    def index(self, line: str) -> None:
        with self._lock:
            self._index.write(line + "\n")
            self._index.flush()

    def page(self, entry: dict) -> None:
        with self._lock:
            self._pages.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._pages.flush()

    def close(self) -> None:
        self._index.close()
        self._pages.close()


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


def _iso(dt) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Crawler:
    """Runs one crawl into a WARC writer and a journal."""

    def __init__(
        self,
        options: CrawlOptions,
        writer: WarcWriter,
        journal: Journal,
        spool_dir: str | None = None,
        on_progress: Callable[[CrawlStats, int], None] | None = None,
    ) -> None:
        self.options = options
        self.writer = writer
        self.journal = journal
        self.spool_dir = spool_dir
        self.on_progress = on_progress
        self.scope = Scope(options.scope, options.seeds, options.include, options.exclude)
        self.stats = CrawlStats()
        self.frontier: deque[Item] = deque()
        self.seen: set[str] = set()
        self.session = make_session(options.user_agent, options.verify_tls)
        for seed in options.seeds:
            self._enqueue(Item(seed, 0))

    # -- frontier ----------------------------------------------------------
    def _enqueue(self, item: Item) -> bool:
        if item.url in self.seen:
            return False
        self.seen.add(item.url)
        self.frontier.append(item)
        return True

    def _limit_reached(self) -> str | None:
        o, s = self.options, self.stats
        if o.max_pages is not None and s.pages >= o.max_pages:
            return "max-pages"
        if o.max_bytes is not None and s.bytes >= o.max_bytes:
            return "max-bytes"
        if o.max_time is not None and time.monotonic() - s.started >= o.max_time:
            return "max-time"
        return None

    def run(self) -> CrawlStats:
        while self.frontier:
            reason = self._limit_reached()
            if reason:
                self.stats.not_fetched = len(self.frontier)
                self.stop_reason = reason
                break
            self._process(self.frontier.popleft())
            if self.on_progress:
                self.on_progress(self.stats, len(self.frontier))
        return self.stats

    # -- one URL -------------------------------------------------------------
    def _process(self, item: Item) -> None:
        result = fetch(
            self.session, item.url, timeout=self.options.timeout,
            max_body=self.options.max_body, spool_dir=self.spool_dir,
        )
        try:
            self._record(item, result)
        finally:
            result.close()

    def _record(self, item: Item, result: FetchResult) -> None:
        response_ref = None
        if result.has_response:
            extra = {"WARC-Date": _warc_date(result), "WARC-IP-Address": result.ip}
            if result.truncated:
                extra["WARC-Truncated"] = result.truncated
            response_ref = self.writer.write(
                "response", result.url, result.response, result.response_length,
                result.block_digest, result.payload_digest, extra=extra,
            )
            self.journal.index(cdxj_line(
                result.url, response_ref.date, response_ref.filename, response_ref.offset,
                response_ref.length, "response", result.payload_digest,
                _mime(result.headers.get("content-type")), result.status,
            ))
            self.stats.bytes += result.response_length
        if result.request:
            self.writer.write(
                "request", result.url, result.request,
                extra={"WARC-Date": _warc_date(result),
                       "WARC-Concurrent-To": response_ref.record_id if response_ref else None},
            )

        links, redirect, note = Links(), None, None
        followed = False
        if result.has_response and result.status in REDIRECT_CODES:
            redirect = absolute(result.url, result.headers.get("location"))
            note, followed = self._follow_redirect(item, redirect)
        elif result.has_response and not result.truncated:
            links = self._follow_links(item, result)

        metadata = warc_fields(fetch_metadata_fields(
            result, outlinks=links.pages + links.requisites, redirect=redirect, note=note,
        ))
        self.writer.write(
            "metadata", result.url, metadata,
            extra={"WARC-Date": _warc_date(result),
                   "WARC-Concurrent-To": response_ref.record_id if response_ref else None},
        )

        failed = not result.has_response or result.truncated or result.status >= 400 or note
        if failed:
            self.stats.failed += 1
        if item.requisite:
            self.stats.requisites += 1
            return
        self.stats.pages += 1
        if followed:
            return  # the page entry is written for where the redirect leads
        # py-wacz reads pages.jsonl as a table keyed by the header line's fields, so an
        # entry without `id` or `title` counts as a blank row: every entry gets an id.
        page_id = response_ref.record_id.strip("<>").rsplit(":", 1)[-1] if response_ref else uuid.uuid4().hex
        entry = {"id": page_id, "url": result.url, "ts": _iso(result.started)}
        if links.title:
            entry["title"] = links.title
        if result.status is not None:
            entry["status"] = result.status
        if result.has_response:
            entry["size"] = result.body_bytes
        if item.chain:
            entry["redirectedFrom"] = item.chain[0]
        if redirect:
            entry["redirectTo"] = redirect
        error = note or result.error or (
            f"HTTP {result.status}" if result.status and result.status >= 400 else None
        )
        if error:
            entry["error"] = error
            entry["errorKind"] = result.error_kind or ("redirect" if note else "http")
        self.journal.page(entry)

    def _follow_redirect(self, item: Item, target: str | None) -> tuple[str | None, bool]:
        """Queue a redirect's target: (error to record, whether it was followed).

        A loop or an over-long chain is an error. A page redirecting out of scope is not
        followed, except from a seed, whose redirect (http -> https, say) is the page.
        """
        if not target:
            return "redirect without a usable Location header", False
        chain = item.chain + (item.url,)
        if target in chain:
            return f"redirect loop: {' -> '.join(chain + (target,))}", False
        if len(chain) > self.options.max_redirects:
            return f"more than {self.options.max_redirects} redirects", False
        from_seed = item.depth == 0 and not item.requisite
        if not item.requisite and not from_seed and not self.scope.allows(target):
            return None, False
        self._enqueue(Item(target, item.depth, item.requisite, chain))
        return None, True

    def _follow_links(self, item: Item, result: FetchResult) -> Links:
        content_type = (result.headers.get("content-type") or "").lower()
        is_html = "html" in content_type
        is_css = "css" in content_type
        if not (is_html or is_css) or not 200 <= result.status < 300:
            return Links()
        body = decoded_body(result)
        if body is None:
            return Links()
        links = extract_html(body, result.url, content_type) if is_html else extract_css(
            body, result.url, content_type
        )
        if item.requisite and not is_css:
            return links  # a requisite's own links are not followed (an iframe's page, say)
        for url in links.requisites:
            if not self.scope.excluded(url):
                self._enqueue(Item(url, item.depth, requisite=True))
        if not item.requisite and item.depth < self.options.depth:
            for url in links.pages:
                if self.scope.allows(url):
                    self._enqueue(Item(url, item.depth + 1))
        return links


def _warc_date(result: FetchResult) -> str:
    return result.started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _mime(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None
