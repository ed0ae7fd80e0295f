"""Checks of the WARC records: every digest (read by archive.reader.warcs), revisits
against the originals they name, and the index lines that replay finds records by."""

from __future__ import annotations

from archive.values import count
from archive.reader.digests import same_digest
from archive.reader.members import IdxSink, IndexSink
from archive.verify.model import FAIL, PASS, SKIP, WARN, Report
from archive.reader.problems import Problem, Problems
from archive.reader.warcresult import CONTENT_TYPES, WarcResult
from archive.verify.zipnum import idx_problems
from archive.wacz.names import WARC_PREFIX
from archive.warc import urns

def records_check(report: Report, results: list[WarcResult]) -> None:
    problems = Problems.joined([*(r.problems for r in results), revisit_problems(results)])
    unchecked = [f"{r.filename}: {r.unchecked}" for r in results if r.unchecked]
    records = sum(len(r.records) for r in results)
    digests = sum(r.digests_checked for r in results)
    readers = {r.reader for r in results}
    note = " (read with warcio's reader)" if "warcio" in readers else ""
    if not results:
        report.add("records", FAIL, "no WARC files in archive/")
    elif problems:
        report.add("records", FAIL, f"{count(records, 'record')} in {count(len(results), 'WARC file')}: "
                   f"{count(problems.total, 'problem')}" + note, problems.all())
    elif unchecked:
        report.add("records", SKIP, "records could not all be checked: " + "; ".join(unchecked),
                   [Problem(u) for u in unchecked])
    else:
        undigested = sum(r.undigested for r in results)
        # as warcio check does, a record without a digest passes; it must not read as checked
        missing = f"; {count(undigested, 'record')} with content but no digest (not checked)" \
            if undigested else ""
        report.add("records", PASS, f"{count(records, 'record')} in {count(len(results), 'WARC file')}, "
                   f"{count(digests, 'digest')} checked" + missing + note)
    loose = Problems.joined(r.loose_headers for r in results)
    if loose:
        # the bytes are intact either way; what a viewer shows as the page is not
        report.add("http-headers", WARN, f"{count(loose.total, 'record')} whose HTTP headers do not end "
                   "with CRLF CRLF: viewers disagree on where the body starts", loose.all())


def revisit_problems(results: list[WarcResult]) -> Problems:
    """Revisits whose original, named by URI and date, is a record of this capture with
    another payload digest: replay (ReplayWeb.page finds the original by URI and date
    alone) would show that record's content for a payload the revisit says is other.
    A media file stored as a revisit (urn:media...) must find its original in this
    capture: its bytes are the payload of a response the same download recorded."""
    originals: dict[tuple, list[str]] = {}
    for w in results:
        for r in w.records:
            if r.record_type in ("response", "resource") and r.payload_digest:
                originals.setdefault((r.uri, r.date), []).append(r.payload_digest)
    problems = Problems()
    for w in results:
        for r in w.records:
            if r.record_type != "revisit" or not r.payload_digest:
                continue
            # several records of one URL in one second: any of them may be the original
            held = originals.get((r.refers_uri or r.uri, r.refers_date), [])
            if not held and urns.of_media(r.uri):
                problems.append(Problem(
                    f"media revisit refers to {r.refers_uri} at {r.refers_date}, which is not a record "
                    "of this capture: the file's bytes are missing", w.filename, r.offset, uri=r.uri))
            elif held and not any(same_digest(h, r.payload_digest) for h in held):
                problems.append(Problem(
                    f"revisit says its payload is {r.payload_digest}, but the record it refers to "
                    f"({r.refers_uri or r.uri} at {r.refers_date}) holds {held[0]}: replay would show "
                    "that content", w.filename, r.offset, uri=r.uri))
    return problems


def index_check(report: Report, sinks: dict, warcs: list[WarcResult], ours: bool) -> None:
    """Every index line must point at a record with the same URL, time, length and digest; in
    our own captures every response, revisit and resource record must be indexed too
    (replay finds nothing that the index leaves out)."""
    indexes = [s for s in sinks.values() if isinstance(s, IndexSink)]
    problems = Problems.joined(s.problems for s in indexes)
    entries = [e for s in indexes for e in s.entries]
    if not entries and not problems:
        if nothing_captured([], warcs):
            # nothing came back to index: a record of failed fetches, which is evidence too
            report.add("index", PASS, "no index lines, and no record to index: nothing was captured")
        else:
            report.add("index", FAIL, "no index lines found in indexes/")
        return
    # an index line's filename is relative to archive/, as ReplayWeb.page reads it
    by_file = {w.filename.removeprefix(WARC_PREFIX): {r.offset: r for r in w.records} for w in warcs}
    # a WARC file whose reading stopped (a bomb): its records past that point are unknown,
    # so lines pointing there are not judged, never failed
    unread = {w.filename.removeprefix(WARC_PREFIX) for w in warcs if w.unchecked}
    unjudged = 0
    indexed = set()
    for e in entries:
        indexed.add((e.filename, e.offset))
        record = by_file.get(e.filename, {}).get(e.offset)
        if record is None and e.filename in unread:
            unjudged += 1
            continue
        if record is None:
            problems.append(Problem(f"index line {e.number} points at no record",
                                    e.filename, e.offset, uri=e.url))
            continue
        where = (e.filename, e.offset, record.record_id, record.uri)
        if e.url != record.uri:
            problems.append(Problem(f"index line {e.number} names {e.url} but the record is {record.uri}", *where))
        # replay shows (pywb) or requires (ReplayWeb.page) the index's time as the record's
        if record.date and e.timestamp[:14] != record.date:
            problems.append(Problem(f"index line {e.number} dates the record {e.timestamp}, its WARC-Date "
                                    f"says {record.date}", *where))
        if e.length is not None and e.length != str(record.length):
            problems.append(Problem(f"index line {e.number} gives length {e.length}, the record is "
                                    f"{record.length} bytes", *where))
        if e.digest and record.payload_digest and not same_digest(e.digest, record.payload_digest):
            problems.append(Problem(f"index line {e.number} digest differs from the record's", *where))
    unindexed = [(name, r) for name, records in by_file.items() for r in records.values()
                 if r.record_type in CONTENT_TYPES and (name, r.offset) not in indexed]
    if ours:
        problems.extend(Problem(f"{r.record_type} record is not in the index", name, r.offset, uri=r.uri)
                        for name, r in unindexed)
    idxs = [s for s in sinks.values() if isinstance(s, IdxSink)]
    misplaced = [p for idx in idxs for p in idx_problems(idx, {s.name: s for s in indexes}, ours)]
    blocks = f" in {count(sum(len(i.blocks) for i in idxs), 'block')}" if idxs else ""
    said = "do not all match their records" if problems else "match their records"
    if misplaced:       # replay finds lines through the idx: one it misplaces is never found
        said += ", but the idx does not match the index" if not problems else "; the idx does not match the index"
        problems.extend(misplaced)
    if unjudged and not problems:
        report.add("index", SKIP, f"{count(unjudged, 'index line')} of {len(entries)} point where the "
                   "records could not be read, and were not checked")
        return
    report.add("index", FAIL if problems else PASS,
               f"{count(len(entries), 'index line')}{blocks} {said}", problems.all())


def nothing_captured(pages: list[dict], warcs: list[WarcResult]) -> bool:
    """Every listed page failed, or none is listed and no record holds content."""
    if pages:
        return all("error" in p for p in pages)
    return bool(warcs) and not any(r.record_type in CONTENT_TYPES for w in warcs for r in w.records)


def earlier_capture_note(report: Report, evidence: dict, warcs: list[WarcResult]) -> None:
    """A capture deduplicated against an earlier one holds only revisits for what had not
    changed: that content is checked by verifying the earlier capture, not this one."""
    earlier = evidence.get("dedupAgainst") if isinstance(evidence.get("dedupAgainst"), dict) else None
    # a media file stored as a revisit stands on a response of this capture, not that one
    revisits = sum(1 for w in warcs for r in w.records if r.record_type == "revisit"
                   and not urns.of_media(r.uri))
    if earlier is None or not revisits:
        return
    name = earlier.get("capture") if isinstance(earlier.get("capture"), str) else "an earlier capture"
    report.notes.append(f"{count(revisits, 'revisit record')} stand for content "
                        f"unchanged since {name}: that content is stored there, not here; verify "
                        "that capture too")
