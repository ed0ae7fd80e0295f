"""The records a browser-captured page adds to the WARC besides its exchanges: each
snapshot (DOM, frame DOM, screenshot) as a resource record, and a metadata record saying
how the page was loaded and what came of it."""

from __future__ import annotations

from typing import Callable

from archive import utctime
from archive.capture.browser.result import BrowserPageResult
from archive.capture.exchange import Recorded
from archive.capture.pageoptions import PageOptions
from archive.capture.redaction import Redaction
from archive.warc.cdxj import cdxj_line
from archive.warc.writer import RecordRef, WarcWriter, block_digests, warc_fields


def _concurrent_to(result: BrowserPageResult) -> dict:
    return {"WARC-Concurrent-To": result.response.record_id if result.response else None}


def write_resource(writer: WarcWriter, record: Callable[[Recorded], None], uri: str, data: bytes,
                   content_type: str, result: BrowserPageResult,
                   redaction: Redaction | None = None) -> RecordRef:
    """A snapshot of the page as a resource record (named after the page's address as
    its exchange is recorded: `redaction`'s known secret values replaced); its index line
    goes to `record` while the writer's lock is still held. The snapshot itself is what
    the page showed: never altered."""
    uri = redaction.url(uri) if redaction else uri
    with writer.batch():
        ref = writer.write("resource", uri, data, content_type=content_type,
                           extra=_concurrent_to(result))
        digest = block_digests("resource", uri, data)[1]
        record(Recorded(index=[cdxj_line(uri, ref.date, ref.filename, ref.offset, ref.length,
                                         "resource", digest, content_type.split(";")[0])]))
    return ref


def page_metadata_fields(result: BrowserPageResult, opts: PageOptions, version: str | None,
                         executable: str) -> dict:
    """The fields of a page's metadata record: the browser, how it loaded the page, and
    what came of it (the records it made, links, requisites, what was refused)."""
    return {
        "browser": f"Chromium {version}",
        "browser-executable": executable,
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


def write_page_metadata(writer: WarcWriter, result: BrowserPageResult, opts: PageOptions,
                        version: str | None, executable: str,
                        redaction: Redaction | None = None) -> RecordRef:
    """The page's metadata record; its addresses (the page's, its requisites', its
    links') with `redaction`'s known secret values replaced, as their exchanges are."""
    fields = page_metadata_fields(result, opts, version, executable)
    url = result.final_url
    if redaction is not None:
        fields, url = redaction.scrub(fields), redaction.url(url)
    return writer.write("metadata", url, warc_fields(fields), extra=_concurrent_to(result))
