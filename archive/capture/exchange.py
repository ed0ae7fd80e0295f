"""One recorded exchange (a FetchResult) written as WARC records: the response as
received, the request as sent, and a metadata record with the evidence about the fetch,
plus the CDXJ index line of the response."""

from __future__ import annotations

from dataclasses import dataclass

from archive.capture.fetch import FetchResult
from archive.warc.cdxj import cdxj_line
from archive.warc.records import fetch_metadata_fields
from archive.warc.writer import RecordRef, WarcWriter, warc_fields


@dataclass(frozen=True)
class Written:
    response: RecordRef | None
    metadata: RecordRef
    index_line: str | None


def warc_date(result: FetchResult) -> str:
    return result.started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mime_type(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip().lower() if content_type else None


def write_exchange(
    writer: WarcWriter,
    result: FetchResult,
    outlinks: list[str] | tuple = (),
    redirect: str | None = None,
    note: str | None = None,
    extra_fields: dict | None = None,
) -> Written:
    """Write the response (when one came back), request and metadata records."""
    date = warc_date(result)
    response_ref = None
    index_line = None
    if result.has_response:
        extra = {"WARC-Date": date, "WARC-IP-Address": result.ip}
        if result.truncated:
            extra["WARC-Truncated"] = result.truncated
        response_ref = writer.write(
            "response", result.url, result.response, result.response_length,
            result.block_digest, result.payload_digest, extra=extra,
        )
        index_line = cdxj_line(
            result.url, response_ref.date, response_ref.filename, response_ref.offset,
            response_ref.length, "response", result.payload_digest,
            mime_type(result.headers.get("content-type")), result.status,
        )
    concurrent = response_ref.record_id if response_ref else None
    if result.request:
        writer.write("request", result.url, result.request,
                     extra={"WARC-Date": date, "WARC-Concurrent-To": concurrent})
    fields = fetch_metadata_fields(result, outlinks=outlinks, redirect=redirect, note=note)
    metadata_ref = writer.write(
        "metadata", result.url, warc_fields({**fields, **(extra_fields or {})}),
        extra={"WARC-Date": date, "WARC-Concurrent-To": concurrent},
    )
    return Written(response_ref, metadata_ref, index_line)
