"""One recorded exchange (a FetchResult) written as WARC records: the response as
received (or a revisit record when its payload was captured before), the request as
sent, and a metadata record with the evidence about the fetch. The HTTP crawler and
the browser's proxy both write through here.

What a write adds that the crawl journal must name (index lines, deduplication
originals, revisits, bytes received) comes back as a `Recorded`, so that whoever
journals the records can say exactly what lies before the WARC position it notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archive import utctime
from archive.capture.dedup import Dedup, Original, revisit_headers
from archive.capture.recorder import FetchResult
from archive.capture.redaction import ECHOED, Redaction, describe, set_cookie_values
from archive.dropbehind import ReleasedBehind
from archive.httpmessage import PayloadSplitter
from archive.warc.cdxj import cdxj_line
from archive.warc.records import fetch_metadata_fields
from archive.warc.writer import RecordRef, WarcWriter, gzip_level, warc_fields


@dataclass
class Recorded:
    """What records written since some point add to the crawl's memory."""

    index: list[str] = field(default_factory=list)       # CDXJ lines
    originals: list[list] = field(default_factory=list)  # [payload digest, Original as JSON]
    revisits: int = 0
    bytes: int = 0                                       # response bytes received
    # secret values replaced: (header, cookie or the host of a URL or None, digest) -> requests
    redacted: dict = field(default_factory=dict)
    session_cookies: dict = field(default_factory=dict)  # cookie name -> first URL setting it

    def add(self, other: "Recorded") -> None:
        self.index += other.index
        self.originals += other.originals
        self.revisits += other.revisits
        self.bytes += other.bytes
        for key, count in other.redacted.items():
            self.redacted[key] = self.redacted.get(key, 0) + count
        for name, url in other.session_cookies.items():
            self.session_cookies.setdefault(name, url)

    def take(self) -> "Recorded":
        """Everything collected so far, leaving this one empty."""
        taken = Recorded(self.index, self.originals, self.revisits, self.bytes,
                         self.redacted, self.session_cookies)
        self.index, self.originals, self.revisits, self.bytes = [], [], 0, 0
        self.redacted, self.session_cookies = {}, {}
        return taken

    def journal_fields(self) -> dict:
        """What the journal keeps of the redactions and session cookies (none: nothing)."""
        fields = {}
        if self.redacted:
            fields["redacted"] = [[*key, count] for key, count in self.redacted.items()]
        if self.session_cookies:
            fields["sessionCookies"] = [[name, url] for name, url in self.session_cookies.items()]
        return fields


@dataclass(frozen=True)
class Written:
    response: RecordRef | None   # the response or revisit record, when one came back
    metadata: RecordRef | None   # None: deferred (its fields are `metadata_fields`)
    recorded: Recorded
    metadata_fields: dict | None = None


def warc_date(result: FetchResult) -> str:
    return utctime.micros(result.started)


def mime_type(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None


def header_block(result: FetchResult) -> bytes:
    """The status line and headers of a recorded response: a revisit record's block."""
    stream, splitter, head = result.response, PayloadSplitter(), bytearray()
    stream.seek(0)
    try:
        while chunk := stream.read(1 << 16):
            start = splitter.feed(chunk)
            if start is not None:
                head += chunk[:start]
                break
            head += chunk
    finally:
        stream.seek(0)
    return bytes(head)


def dedupable(result: FetchResult) -> bool:
    """Only a whole, successful, non-empty payload may stand for (or be stood for by) another."""
    return (result.has_response and 200 <= result.status < 300 and not result.truncated
            and not result.error and result.body_bytes > 0)


def write_exchange(
    writer: WarcWriter,
    result: FetchResult,
    outlinks: list[str] | tuple = (),
    redirect: str | None = None,
    note: str | None = None,
    extra_fields: dict | None = None,
    dedup: Dedup | None = None,
    defer_metadata: bool = False,
    redaction: Redaction | None = None,
    last_read: bool = False,
) -> Written:
    """Write the response or revisit (when one came back), request and metadata records
    as one uninterrupted group. With `dedup`, a payload seen before becomes a revisit
    and a new one is registered as an original (under the writer's lock, so an original
    is only ever known together with the record it names). `defer_metadata`: the metadata
    record is not written; its fields are returned (`write_metadata` writes it later,
    with the outlinks read once the response is journaled).

    Every request record is written here, with its secret header values redacted
    (`redaction`, or the default secret headers under a random key): the metadata
    record names what was replaced, and the Set-Cookie of a session is named. A URL that
    carries a secret value the capture knows is recorded with it replaced by its marker,
    in every record of the exchange and its index line alike (the request line is
    redacted the same way): replay finds it under that address.

    `last_read`: nothing reads the response's spool after this (a recording proxy's
    sink): it is read through archive.dropbehind, giving its pages back as it is copied,
    and closed."""
    redaction = redaction or _DEFAULT
    url = redaction.url(result.url)         # what the records and the index call it
    request, redacted = redaction.redact(result.request, result.url) if result.request else (b"", [])
    # the response's head: read for the session cookies it sets and a secret it echoes
    head = header_block(result) if result.has_response and (
        redaction.known or _sets_cookies(result, redaction)) else None
    sessions = list(dict.fromkeys(redaction.session_cookies(set_cookie_values(head)))) \
        if head is not None and _sets_cookies(result, redaction) else []
    revisit_block = (head if head is not None else header_block(result)) \
        if dedup is not None and dedupable(result) else None
    with writer.batch():
        recorded = Recorded(bytes=result.response_length)
        response_ref = _write_response(writer, result, url, revisit_block, dedup, recorded, last_read)
        date = warc_date(result)
        concurrent = response_ref.record_id if response_ref else None
        if request:
            writer.write("request", url, request,
                         extra={"WARC-Date": date, "WARC-Concurrent-To": concurrent})
        fields = fetch_metadata_fields(result, outlinks=outlinks, redirect=redirect, note=note)
        if redacted:
            fields["redacted"] = [describe(r) for r in redacted]
            for r in redacted:
                key = (r.header, r.part, r.digest)
                recorded.redacted[key] = recorded.redacted.get(key, 0) + 1
        if head is not None and redaction.carries(head):
            fields["secret-in-response"] = ECHOED
        if sessions:
            fields["session-cookies-set"] = sessions
            recorded.session_cookies.update({name: url for name in sessions})
        fields = {**fields, **(extra_fields or {})}
        if defer_metadata:
            return Written(response_ref, None, recorded, fields)
        metadata_ref = write_metadata(writer, result.url, fields, date, concurrent, redaction)
    return Written(response_ref, metadata_ref, recorded)


def write_metadata(writer: WarcWriter, url: str, fields: dict, date: str,
                   concurrent: str | None, redaction: Redaction | None = None) -> RecordRef:
    """The metadata record of one fetch (IP, certificate, outlinks, what failed), under
    the URL its exchange is recorded under, with the secret values `redaction` knows
    replaced in its fields too (an outlink or an error may hold the address asked)."""
    redaction = redaction or _DEFAULT
    return writer.write("metadata", redaction.url(url), warc_fields(redaction.scrub(fields)),
                        extra={"WARC-Date": date, "WARC-Concurrent-To": concurrent})


# The default secret headers under one random key for this process: a writer given no
# Redaction (a shared crawl's worker, say) still seals no credentials.
_DEFAULT = Redaction()


def _sets_cookies(result: FetchResult, redaction: Redaction) -> bool:
    """Whether the response sets cookies that may be the session (names only are read)."""
    return (result.has_response and "set-cookie" in result.headers
            and bool(redaction.sent_cookies or redaction.credentials_given))


def write_for_sink(writer: WarcWriter, record, result: FetchResult, extra_fields: dict,
                   dedup: Dedup | None, failures: list[str],
                   redaction: Redaction | None = None) -> Written | None:
    """write_exchange() for a recording proxy's sink (the browser's, the media downloads'):
    what it adds is handed to `record` under the writer's lock; a write that fails is noted
    in `failures` (reported when the session closes), never raised into the proxy's thread."""
    try:
        with writer.batch():
            written = write_exchange(writer, result, extra_fields=extra_fields, dedup=dedup,
                                     redaction=redaction, last_read=True)
            record(written.recorded)
        return written
    except Exception as exc:  # noqa: BLE001 - reported by the session, never dropped silently
        failures.append(f"{result.url}: {type(exc).__name__}: {exc}")     # list.append is atomic
        return None


def _write_response(writer: WarcWriter, result: FetchResult, url: str,
                    revisit_block: bytes | None, dedup: Dedup | None, recorded: Recorded,
                    last_read: bool = False) -> RecordRef | None:
    if not result.has_response:
        return None
    extra = {"WARC-Date": warc_date(result), "WARC-IP-Address": result.ip}
    mime = mime_type(result.headers.get("content-type"))
    original = dedup.lookup(result.payload_digest) if revisit_block is not None else None
    if original is not None:
        ref = writer.write("revisit", url, revisit_block,
                           extra={**extra, **revisit_headers(original, result.payload_digest)})
        record_type, mime = "revisit", "warc/revisit"
        recorded.revisits += 1
    else:
        if result.truncated:
            extra["WARC-Truncated"] = result.truncated
        # with both digests given warcio reads the block once, front to back, never seeking
        once = last_read and result.block_digest and result.payload_digest
        stream = ReleasedBehind(result.response) if once else result.response
        ref = writer.write(
            "response", url, stream, result.response_length,
            result.block_digest, result.payload_digest, extra=extra, level=gzip_level(mime),
        )
        record_type = "response"
        if revisit_block is not None:
            new = Original(url, ref.date, ref.record_id)
            dedup.add(result.payload_digest, new)
            recorded.originals.append([result.payload_digest, new.to_json()])
    recorded.index.append(cdxj_line(url, ref.date, ref.filename, ref.offset, ref.length,
                                    record_type, result.payload_digest, mime, result.status))
    return ref
