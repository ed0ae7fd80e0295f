"""What capturing one page with the browser comes to, and its pages.jsonl entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urldefrag

from archive import utctime
from archive.warc.writer import RecordRef


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
    login_wall: str | None = None      # why the rendered page is a login wall, not the content


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
