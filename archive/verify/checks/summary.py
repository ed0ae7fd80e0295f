"""What the report says a capture holds: its own description (covered by the signature
when that holds), its failed fetches, and each page with its response, screenshot and
media as found among the records checked."""

from __future__ import annotations

from archive.hashing import parse_digest
from archive.values import text_field
from archive.reader.members import PagesSink
from archive.verify.model import RecordLocation
from archive.reader.warcresult import WarcResult
from archive.wacz.names import PAGES
from archive.warc import urns

MEDIA_TEXT = ("url", "status", "reason", "format", "record", "frame", "stored", "storedIn")
MEDIA_NUMBERS = ("n", "size", "duration")


def capture_summary(datapackage: dict, evidence: dict, warcs: list[WarcResult], sinks: dict) -> dict:
    """What the capture says of itself (covered by the signature when that holds)."""
    def plain_count(value):
        # the file may say anything (a string, 10**400): only a plain count is shown
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63 else None

    stats = evidence.get("stats") if isinstance(evidence.get("stats"), dict) else {}
    seeds = evidence.get("seeds")
    pages = sinks.get(PAGES)
    summary = {
        "id": text_field(evidence.get("captureId")),
        "title": text_field(datapackage.get("title")),
        "created": text_field(datapackage.get("created")),
        "software": text_field(datapackage.get("software")),
        "waczVersion": text_field(datapackage.get("wacz_version")),
        "mainPageUrl": text_field(datapackage.get("mainPageUrl")),
        "seeds": [s for s in seeds if isinstance(s, str)] if isinstance(seeds, list) else None,
        "started": text_field(evidence.get("started")),
        "finished": text_field(evidence.get("finished")),
        "operator": text_field(evidence.get("operator")),
        "host": text_field(evidence.get("host")),
        "job": text_field(evidence.get("job")),
        "pages": len(pages.pages) if isinstance(pages, PagesSink) else None,
        "bytes": plain_count(stats.get("bytes")),
        "failed": plain_count(stats.get("failed")),
        "records": sum(len(w.records) for w in warcs),
        "warcFiles": len(warcs),
        "resumed": plain_count(len(resumed)) if isinstance(resumed := evidence.get("resumed"), list) else None,
        "redone": _redone(evidence.get("cutBack"), plain_count),
        "failures": _failures(evidence.get("failures"), pages.pages if isinstance(pages, PagesSink) else []),
        **_credentials(evidence.get("credentials"), plain_count),
    }
    return {k: v for k, v in summary.items() if v is not None}


def _credentials(creds, plain_count) -> dict:
    """Which identity the capture used, how many request header values it redacted, and
    the session cookies it received (names only: the file may say anything)."""
    if not isinstance(creds, dict):
        return {}
    ident = creds.get("identity") if isinstance(creds.get("identity"), dict) else {}
    redaction = creds.get("redaction") if isinstance(creds.get("redaction"), dict) else {}
    sessions = creds.get("sessionCookies") if isinstance(creds.get("sessionCookies"), list) else []
    out = {
        "identity": {k: v for k, v in ident.items()
                     if isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))},
        "redacted": plain_count(redaction.get("requests")),
        "redactionKey": text_field(redaction.get("digestKey")),
        "sessionCookies": [c["name"] for c in sessions if isinstance(c, dict) and isinstance(c.get("name"), str)],
    }
    return {k: v for k, v in out.items() if v}


def _failures(listed, pages: list[dict]) -> list[dict]:
    """Every failed fetch the capture counts, with URL and reason: as evidence/capture.json
    lists them, or (a capture made before it did) the pages listed with an error."""
    if not isinstance(listed, list):
        listed = [{"url": p.get("url"), "kind": "page", "error": p.get("error")}
                  for p in pages if p.get("error")]
    # the file may say anything: only strings are shown
    return [{k: f[k] for k in ("url", "kind", "error") if isinstance(f.get(k), str)}
            for f in listed if isinstance(f, dict)]


def _redone(cuts, plain_count) -> int | None:
    """Fetches done again on a resume because a power loss took their records."""
    if not isinstance(cuts, list) or not cuts:
        return None
    counts = [plain_count(c.get("groups")) if isinstance(c, dict) else None for c in cuts]
    return None if None in counts else plain_count(sum(counts))


def page_rows(sinks: dict, warcs: list[WarcResult]) -> tuple[list[dict], dict[str, RecordLocation],
                                                         dict[str, RecordLocation]]:
    """Each listed page with its status and the digest of its captured response (and
    of its media files), where each page's screenshot record is, and where each media
    item's thumbnail is (by its media record's URI)."""
    sink = sinks.get(PAGES)
    listed = sink.pages if isinstance(sink, PagesSink) else []
    urls = {p["url"] for p in listed}
    responses, screenshots, media, thumbnails = {}, {}, {}, {}
    for warc in warcs:
        for r in warc.records:
            if r.uri in urls and r.record_type in ("response", "resource", "revisit") and r.uri not in responses:
                responses[r.uri] = (warc.filename, r)
            elif r.record_type == "resource" and r.uri and r.uri.startswith(urns.SCREENSHOT):
                url = r.uri[len(urns.SCREENSHOT):]
                screenshots[url] = RecordLocation(warc.filename, r.offset, r.length, r.content_type)
            elif r.record_type in ("resource", "revisit") and r.uri and r.uri.startswith(urns.MEDIA):
                # a revisit: the file is the payload of the response it refers to (the
                # records check holds it to that record's digest)
                media.setdefault(r.uri, r)
            elif r.record_type == "resource" and r.uri and r.uri.startswith(urns.THUMBNAIL):
                thumbnails[urns.MEDIA + r.uri[len(urns.THUMBNAIL):]] = RecordLocation(
                    warc.filename, r.offset, r.length, r.content_type)
    pages = []
    for entry in listed:
        filename, record = responses.get(entry["url"], (None, None))
        # the file may say anything: only the types report.schema.json promises are shown
        row = {k: entry[k] for k in ("url", "ts", "title", "status", "error") if isinstance(entry.get(k), str)}
        if isinstance(entry.get("status"), int) and not isinstance(entry.get("status"), bool):
            row["status"] = entry["status"]
        if record is not None:
            row["payloadDigest"] = record.payload_digest
            parsed = parse_digest(record.payload_digest) if record.payload_digest else None
            if parsed and parsed[0] == "sha256":
                row["sha256"] = parsed[1].hex()
            row["record"] = {"file": filename, "offset": record.offset}
        row["screenshot"] = entry["url"] in screenshots
        if isinstance(entry.get("media"), list):
            row["media"] = [_media_row(item, media) for item in entry["media"][:100]
                            if isinstance(item, dict)]
        pages.append(row)
    return pages, screenshots, {uri: where for uri, where in thumbnails.items() if uri in media}


def _media_row(item: dict, records: dict) -> dict:
    """One media item a page lists, as the report shows it: its SHA-256 is the one of
    the record found (whose digest the WARC check checked), not the one the list claims."""
    row = {k: item[k] for k in MEDIA_TEXT if isinstance(item.get(k), str)}
    row.update({k: item[k] for k in MEDIA_NUMBERS
                if isinstance(item.get(k), (int, float)) and not isinstance(item.get(k), bool)})
    record = records.get(row.get("record"))
    parsed = parse_digest(record.payload_digest) if record is not None and record.payload_digest else None
    if parsed and parsed[0] == "sha256":
        row["sha256"] = parsed[1].hex()
    if record is not None and record.content_type:
        row["contentType"] = record.content_type
    row["found"] = record is not None
    return row
