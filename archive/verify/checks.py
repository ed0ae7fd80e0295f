"""Verification of a WACZ, a bare WARC or any file against a published hash.

Every check is a plain function over what one read of the file produced (archive.verify
.scan); the verdict follows from the checks (archive.verify.model.conclude). Nothing in
the file is trusted: keys come from the user, and a file that merely claims to be ours
is held to our canonical layout.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Callable

from archive import SOFTWARE
from archive.hashing import parse_digest
from archive.values import count, text_field
from archive.seal.sign import check_signature
from archive.verify import heap
from archive.wacz.bounds import Meter
from archive.verify.domainsig import check_domain_signature
from archive.verify.timestamps import check_timestamps, clock_clash, summarize, trusted_time
from archive.wacz.zipreader import (
    MEMBER_LIMIT, Container, ContainerError, hostile, iter_member, names_zip_readers_see, read_container,
)
from archive.verify.members import IdxSink, IndexSink, JsonSink, PagesSink, WarcSink
from archive.verify.model import (
    FAIL, PASS, SKIP, WARN, CannotCheck, RecordLocation, Report, VerifyOptions, conclude,
)
from archive.reader.scan import CHUNK, Worker, file_sha256, scan_canonical, scan_lenient
from archive.verify.segments import ParallelWarcs, parallel_worth
from archive.reader.source import Source, local_source, sniff
from archive.verify.zipnum import idx_problems
from archive.verify.warcs import (
    CONTENT_TYPES, Problem, Problems, WarcChecker, WarcResult, check_warc_slow, revisit_problems,
    same_digest,
)
from archive.wacz.ziplayout import LOCAL, LOCAL_SIG, METHOD_STORED, DOS_DATE, DOS_TIME, FLAGS, NEEDED, NEEDED64
from archive.wacz.names import (
    CAPTURE, DATAPACKAGE, DIGEST, DIGEST_FILES, PAGES, WARC_PREFIX, is_block_index, is_cdx_index, is_warc,
)

WEAK_HASHES = {"md5": "MD5", "sha1": "SHA-1"}
OUR_SOFTWARE = SOFTWARE.split()[0] + " "
SCREENSHOT_PREFIX = "urn:screenshot:"
MEDIA_PREFIX, THUMBNAIL_PREFIX = "urn:media:", "urn:media-thumbnail:"
MEDIA_TEXT = ("url", "status", "reason", "format", "record", "frame")
MEDIA_NUMBERS = ("n", "size", "duration")

Progress = Callable[[int, int], None]


# -- entry points -------------------------------------------------------------------------

def verify_source(source: Source, options: VerifyOptions, progress: Progress | None = None) -> Report:
    """Check whatever `source` holds: a WACZ, a WARC, or (with a published hash) any file."""
    heap.steady()
    kind = sniff(source)
    report = None
    if kind == "wacz":
        report = _verify_wacz(source, options, progress)     # None: a zip, but no WACZ
    elif kind == "warc":
        report = _verify_warc(source, progress)
    # junk in a capture's place in a store is a capture that does not verify: judged below
    if report is None and (options.expected_sha256 or options.capture_id):
        report = Report(source.name, "file", size=source.size)
        with source.open() as fh:
            report.sha256 = file_sha256(fh)
        if options.expected_sha256:
            report.notes.append("not a WACZ or WARC file: only its SHA-256 was compared")
    elif report is None:
        raise CannotCheck(f"{source.name} is neither a WACZ nor a WARC file; give --sha256 HEX "
                          "to check it against a published hash")
    if options.expected_sha256:
        _check_file_hash(report, options.expected_sha256)
    if options.capture_id and report.kind != "wacz":
        # a bare WARC or any file in a capture's place would pass as INTEGRITY or HASH ONLY
        report.add("capture-id", FAIL, f"the file stored as capture {options.capture_id} is not a WACZ",
                   [Problem("a capture is stored as a sealed WACZ, not as a bare WARC or another file",
                            report.target)])
    return conclude(report, options.allow_unsigned)


def add_late_check(report: Report, name: str, status: str, summary: str, problems=()) -> Report:
    """A check made after the file was read (custody history from its store) joins the verdict."""
    report.add(name, status, summary, problems)
    return conclude(report, report.allow_unsigned)


def _read_failure(fh, source: Source) -> None:
    """A reader that could not fetch every byte (a remote object) gives no verdict."""
    failure = getattr(fh, "failure", None)
    if failure is not None:
        raise CannotCheck(f"could not read all of {source.name}: {failure}")


def verify_path(path: str, trusted: dict[str, str], allow_unsigned: bool = False,
                capture_id: str | None = None) -> Report:
    """Check a local file (the library form of `archive verify PATH`); with `capture_id`,
    it must be that capture (it is about to be stored under that id)."""
    return verify_source(local_source(path), VerifyOptions(trusted, allow_unsigned, capture_id=capture_id))


def _check_file_hash(report: Report, expected: str) -> None:
    expected = expected.strip().lower().removeprefix("sha256:")
    if report.sha256 == expected:
        report.add("file-hash", PASS, "the file's SHA-256 matches the published hash")
    else:
        report.add("file-hash", FAIL, "the file's SHA-256 differs from the published hash", [
            Problem(f"expected {expected}, found {report.sha256}", report.target)])


# -- a bare WARC --------------------------------------------------------------------------

def _verify_warc(source: Source, progress: Progress | None) -> Report:
    report = Report(source.name, "warc", size=source.size)
    name = source.name.rsplit("/", 1)[-1]
    whole = hashlib.sha256()
    done = 0
    with source.open() as fh:
        parallel = ParallelWarcs(source.path, fh, [(name, 0, source.size)]) \
            if parallel_worth(source.path, source.size) else None
        checker = None if parallel else WarcChecker(name, threaded=True)
        try:
            hashing = Worker("verify-hash")
            try:
                fh.seek(0)
                while chunk := fh.read(CHUNK):
                    hashing.submit(whole.update, chunk)
                    if checker:
                        checker.feed(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, source.size)
            finally:
                hashing.close()
            result, fallback = parallel.results(fh)[name] if parallel else (checker.finish(), checker.needs_fallback)
        finally:
            if parallel:
                parallel.close()
        if fallback:
            fh.seek(0)
            result = check_warc_slow(fh, name)
        zip_names = names_zip_readers_see(fh, source.size)
        _read_failure(fh, source)
    report.sha256 = whole.hexdigest()
    _records_check(report, [result])
    if any(n in DIGEST_FILES or is_warc(n) for n in zip_names):
        # a WARC whose last record holds a WACZ is, to zip readers, that WACZ
        report.add("container", SKIP, "the file is a WARC and also a zip that WACZ readers (py-wacz, "
                   "ReplayWeb.page) open as a WACZ, which was not checked: which of the two is the "
                   "evidence cannot be told", [Problem("readable both as a WARC and as a WACZ", source.name)])
    report.capture = {"records": len(result.records), "digestsChecked": result.digests_checked,
                      "undigested": result.undigested}
    report.notes.append("a bare WARC carries no signature and no trusted time: only the "
                        "integrity of each record was checked")
    return report


def _records_check(report: Report, results: list[WarcResult]) -> None:
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


# -- a WACZ -------------------------------------------------------------------------------

def _looks_ours(fh: BinaryIO) -> bool:
    """The first local header holds the fixed values only our writer uses (other tools
    write real dates and times), so a damaged capture of ours is judged as ours."""
    fh.seek(0)
    head = fh.read(LOCAL.size)
    if len(head) < LOCAL.size:
        return False
    fields = LOCAL.unpack(head)
    return (fields[0] == LOCAL_SIG and fields[1] in (NEEDED, NEEDED64) and fields[2] == FLAGS
            and fields[3] == METHOD_STORED and (fields[4], fields[5]) == (DOS_TIME, DOS_DATE))


def _sinks(container: Container, warcs: bool) -> tuple[dict, set[str]]:
    """A sink for each member to check as it is read (WARC files only when `warcs`: they
    may be checked apart, archive.verify.segments), and which ones run on a thread."""
    sinks, threaded = {}, set()
    for m in container.members:
        if is_warc(m.name):
            if warcs:
                sinks[m.name] = WarcSink(m.name)
                threaded.add(m.name)
        elif is_cdx_index(m.name):
            sinks[m.name] = IndexSink(m.name)
        elif is_block_index(m.name):
            sinks[m.name] = IdxSink(m.name)
        elif m.name == PAGES:
            sinks[m.name] = PagesSink(m.name)
        elif m.name in DIGEST_FILES or m.name == CAPTURE:
            sinks[m.name] = JsonSink(m.name)
    return sinks, threaded


def _declared(resource: dict) -> tuple[str | None, int | None]:
    """(hash, bytes) of a resource; WACZ 1.0.0 kept them under `stats`."""
    stats = resource.get("stats") if isinstance(resource.get("stats"), dict) else {}
    return resource.get("hash") or stats.get("hash"), resource.get("bytes", stats.get("bytes"))


def _resources(datapackage: dict) -> tuple[dict[str, dict], list[Problem]]:
    problems, by_path = [], {}
    resources = datapackage.get("resources")
    if not isinstance(resources, list):
        return {}, [Problem("datapackage.json has no resources list", DATAPACKAGE)]
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            problems.append(Problem(f"resource entry without a path: {str(item)[:80]}", DATAPACKAGE))
            continue
        if item["path"] in by_path:
            problems.append(Problem(f"{item['path']} is listed twice", DATAPACKAGE))
        by_path[item["path"]] = item
    return by_path, problems


def _algorithm(resource: dict) -> tuple[str, str | None]:
    """(algorithm, expected hex) of a resource: `algo:hex`, or WACZ 1.0.0's bare hex
    with the algorithm in `hashing`."""
    declared_hash = _declared(resource)[0]
    if not isinstance(declared_hash, str):
        return "sha256", None
    if ":" in declared_hash:
        algorithm, _, value = declared_hash.partition(":")
    else:
        algorithm, value = str(resource.get("hashing") or "sha256"), declared_hash
    return algorithm.lower().replace("-", ""), value.lower()


def _read_small(fh, container: Container, name: str) -> dict | None:
    member = container.get(name)
    if member is None:
        return None
    sink = JsonSink(name)
    try:
        for chunk in iter_member(fh, container, member, sink.limit + 1):
            sink.feed(chunk)
    except Exception:  # noqa: BLE001 - judged again when the member is scanned
        return None
    return sink.parse()[0]


def _plain_zip(container: Container, name: str) -> bool:
    """A zip that does not even claim to be a WACZ (a .docx, a .zip of documents): no
    manifest, no WARC, not named .wacz. It is checked as any file, against --sha256."""
    names = [m.name for m in container.members]
    return not (name.lower().endswith(".wacz") or any(n in DIGEST_FILES or is_warc(n) for n in names))


def _verify_wacz(source: Source, options: VerifyOptions, progress: Progress | None) -> Report | None:
    report = Report(source.name, "wacz", size=source.size)
    with source.open() as fh:
        try:
            container = read_container(fh, source.size)
        except ContainerError as exc:
            fh.seek(0)
            if fh.read(4) != b"PK\x03\x04":
                raise CannotCheck(f"{source.name} is not a WACZ (zip) file") from None
            report.add("container", FAIL, f"the zip container is damaged: {exc}")
            report.sha256 = file_sha256(fh)
            return report
        ours = _looks_ours(fh)
        if not ours and _plain_zip(container, source.name):
            return None
        refused = None if container.canonical else hostile(container, source.size)
        if refused and not ours:
            raise CannotCheck(f"refusing to check {source.name}: {refused}")
        warcs = [(m.name, m.data_offset, m.size) for m in container.members if is_warc(m.name)]
        parallel = None
        if container.canonical and parallel_worth(source.path, sum(size for _, _, size in warcs)):
            parallel = ParallelWarcs(source.path, fh, warcs)
        sinks, threaded = _sinks(container, warcs=parallel is None)
        if container.canonical:
            try:
                scan = scan_canonical(fh, container, source.size, sinks, threaded, progress)
                checked = parallel.results(fh) if parallel else _checked(sinks)
            finally:
                if parallel:
                    parallel.close()
        elif refused:
            report.add("container", FAIL, f"the zip container was altered: {refused}",
                       [Problem(refused, source.name)])
            report.sha256 = file_sha256(fh)
            return report
        else:
            datapackage = _read_small(fh, container, DATAPACKAGE) or {}
            resources, _ = _resources(datapackage)
            algorithms = {p: [_algorithm(r)[0]] for p, r in resources.items()}
            scan = scan_lenient(fh, container, sinks, algorithms, MEMBER_LIMIT)
            scan.sha256 = file_sha256(fh)
            checked = _checked(sinks)
        report.sha256 = scan.sha256
        warc_results = _warc_results(fh, container, checked)
        _read_failure(fh, source)

    datapackage, dp_bytes, dp_error = sinks[DATAPACKAGE].parse() if DATAPACKAGE in sinks \
        else (None, None, "datapackage.json is missing")
    digest, _, digest_error = sinks[DIGEST].parse() if DIGEST in sinks \
        else (None, None, "datapackage-digest.json is missing")
    evidence = sinks[CAPTURE].parse()[0] if CAPTURE in sinks else None
    claims_ours = isinstance(datapackage, dict) and str(datapackage.get("software", "")).startswith(OUR_SOFTWARE)

    _container_check(report, container, ours or claims_ours, source.name)
    _resources_check(report, container, datapackage or {}, dp_error, scan.members)
    _records_check(report, warc_results)
    _index_check(report, sinks, warc_results, ours or claims_ours)
    _pages_check(report, sinks, scan.members)
    # our tool never wrote the old layout: a capture of ours in it had its seal removed
    if digest is None and DIGEST not in sinks and _legacy(datapackage) \
            and not (ours or claims_ours):
        _legacy_checks(report, options, evidence)
    else:
        _digest_check(report, digest, digest_error, dp_bytes)
        _signature_check(report, digest, dp_bytes, datapackage, evidence, options, ours or claims_ours)
        _check_timestamps(report, digest, dp_bytes, options, evidence)
    if options.capture_id:
        _stored_as_check(report, evidence, options.capture_id)
    report.capture = _capture_summary(datapackage or {}, evidence or {}, warc_results, sinks)
    report.pages, report.screenshots, report.thumbnails = _pages(sinks, warc_results)
    if _nothing_captured(report.pages, warc_results):
        report.capture["nothingCaptured"] = True
    _earlier_capture_note(report, evidence or {}, warc_results)
    return report


def _nothing_captured(pages: list[dict], warcs: list[WarcResult]) -> bool:
    """Every listed page failed, or none is listed and no record holds content."""
    if pages:
        return all("error" in p for p in pages)
    return bool(warcs) and not any(r.record_type in CONTENT_TYPES for w in warcs for r in w.records)


def _earlier_capture_note(report: Report, evidence: dict, warcs: list[WarcResult]) -> None:
    """A capture deduplicated against an earlier one holds only revisits for what had not
    changed: that content is checked by verifying the earlier capture, not this one."""
    earlier = evidence.get("dedupAgainst") if isinstance(evidence.get("dedupAgainst"), dict) else None
    revisits = sum(1 for w in warcs for r in w.records if r.record_type == "revisit")
    if earlier is None or not revisits:
        return
    name = earlier.get("capture") if isinstance(earlier.get("capture"), str) else "an earlier capture"
    report.notes.append(f"{count(revisits, 'revisit record')} stand for content "
                        f"unchanged since {name}: that content is stored there, not here; verify "
                        "that capture too")


def _checked(sinks: dict) -> dict[str, tuple[WarcResult, str | None]]:
    """What the fast reader said of each WARC fed to a sink, and whether it hands over."""
    return {name: (sink.result, sink.checker.needs_fallback) for name, sink in sinks.items()
            if isinstance(sink, WarcSink) and sink.result is not None}


def _warc_results(fh, container: Container, checked: dict) -> list[WarcResult]:
    """Each WARC's result; those the fast reader handed over are read again by warcio's."""
    results = []
    for m in container.members:
        if m.name not in checked:
            continue
        result, fallback = checked[m.name]
        if fallback:
            meter = Meter()
            stream = _MemberStream(iter_member(fh, container, m, MEMBER_LIMIT, meter))
            result = check_warc_slow(stream, m.name, meter)
        results.append(result)
    return results


class _MemberStream:
    """A file-like reader over member chunks (for warcio's reader)."""

    def __init__(self, chunks) -> None:
        self._chunks, self._buffer, self._pos = chunks, b"", 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - a damaged member ends the stream
                raise OSError(str(exc)) from None
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self._pos += len(out)
        return out

    def tell(self) -> int:
        return self._pos


def _container_check(report: Report, container: Container, ours: bool, target: str) -> None:
    count = len(container.members)
    if container.canonical:
        report.add("container", PASS, f"canonical zip, {count} entries, every header byte checked")
    elif ours:
        report.add("container", FAIL, "the zip container was altered: " + container.problems[0],
                   [Problem(container.problems[0], target)])
    else:
        report.add("container", WARN, "written by another tool: contents checked, zip headers "
                   "not checked byte for byte")
        report.notes.append("the zip container is not in our canonical form (another tool wrote "
                            "it), so its headers were read leniently; every file inside was checked")


def _resources_check(report: Report, container: Container, datapackage: dict,
                     dp_error: str | None, members: dict) -> None:
    resources, problems = _resources(datapackage)
    if dp_error:
        problems.insert(0, Problem(dp_error, DATAPACKAGE))
    names = {m.name for m in container.members}
    for name, digest in members.items():
        if digest.error:      # a CRC-32 mismatch or an unreadable member, the manifests included
            problems.append(Problem(digest.error, name))
            continue
        if name in DIGEST_FILES:
            continue
        resource = resources.get(name)
        if resource is None:
            problems.append(Problem(f"{name} is in the zip but not listed in datapackage.json", name))
            continue
        declared_size = _declared(resource)[1]
        if declared_size is not None and declared_size != digest.size:
            problems.append(Problem(f"{name} is {digest.size} bytes, datapackage.json says {declared_size}", name))
        algorithm, expected = _algorithm(resource)
        if expected is None or digest.digests.get(algorithm) != expected:
            problems.append(Problem(f"{name} does not match its hash in datapackage.json", name))
    for path in resources:
        if path not in names:
            problems.append(Problem(f"{path} is listed in datapackage.json but missing from the zip", path))
    summary = f"{count(len(resources), 'file')} listed in datapackage.json: size and hash "
    weak = sorted({WEAK_HASHES[a] for a in (_algorithm(r)[0] for r in resources.values()) if a in WEAK_HASHES})
    if problems or not weak:
        report.add("resources", FAIL if problems else PASS,
                   summary + ("do not all match" if problems else "match"), problems)
        return
    # the signature covers these hashes, and a hash that collisions defeat ties it to
    # nothing a forger could not swap (a WACZ tool may be asked for MD5: py-wacz --hash-type)
    names = " and ".join(weak)
    report.add("resources", WARN, summary + f"match, but they are {names}", [Problem(
        f"datapackage.json hashes files with {names}, for which colliding files can be made: "
        "a match shows the files were not damaged, not that they were not replaced", DATAPACKAGE)])


def _index_check(report: Report, sinks: dict, warcs: list[WarcResult], ours: bool) -> None:
    """Every index line must point at a record with the same URL, time, length and digest; in
    our own captures every response, revisit and resource record must be indexed too
    (replay finds nothing that the index leaves out)."""
    indexes = [s for s in sinks.values() if isinstance(s, IndexSink)]
    problems = Problems.joined(s.problems for s in indexes)
    entries = [e for s in indexes for e in s.entries]
    if not entries and not problems:
        if _nothing_captured([], warcs):
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


def _pages_check(report: Report, sinks: dict, members: dict) -> None:
    sink = sinks.get(PAGES)
    if sink is None:
        report.add("pages", FAIL, f"{PAGES} is missing")
        return
    unread = getattr(members.get(PAGES), "error", None)
    if unread:      # damaged where it was read: its count of pages would mean nothing
        report.add("pages", FAIL, unread)
        return
    report.add("pages", FAIL if sink.problems else PASS,
               f"{count(len(sink.pages), 'page')} listed" + (", some lines unreadable" if sink.problems else ""),
               sink.problems.all())


def _legacy(datapackage: dict | None) -> bool:
    """The WACZ 1.0.0 layout: no digest file, hashes under `stats`."""
    return isinstance(datapackage, dict) and datapackage.get("wacz_version") == "1.0.0"


def _legacy_checks(report: Report, options: VerifyOptions, evidence: dict | None) -> None:
    report.add("datapackage-digest", WARN, "old WACZ 1.0.0 layout: it has no datapackage-digest.json, "
               "so nothing seals datapackage.json itself")
    if _signature_removed(report, evidence):
        return
    report.signature = {"signed": False}
    report.add("signature", WARN if options.allow_unsigned else FAIL,
               "UNSIGNED: the WACZ 1.0.0 layout has no signature; nothing proves who made it"
               + ("" if options.allow_unsigned else " (--allow-unsigned accepts that)"))
    report.notes.append("WACZ 1.0.0 (an old layout): every file was checked against "
                        "datapackage.json, but datapackage.json itself is not sealed or signed")


def _digest_check(report: Report, digest: dict | None, error: str | None, dp_bytes: bytes | None) -> None:
    if digest is None or dp_bytes is None:
        report.add("datapackage-digest", FAIL, error or "datapackage.json cannot be read",
                   [Problem(error or "cannot be read", DIGEST)])
        return
    actual = "sha256:" + hashlib.sha256(dp_bytes).hexdigest()
    if digest.get("hash") != actual or digest.get("path") != DATAPACKAGE:
        report.add("datapackage-digest", FAIL,
                   "datapackage.json does not match the hash in datapackage-digest.json",
                   [Problem(f"expected {digest.get('hash')}, found {actual}", DIGEST)])
    else:
        report.add("datapackage-digest", PASS, "datapackage.json matches datapackage-digest.json")


def _signature_check(report: Report, digest: dict | None, dp_bytes: bytes | None,
                     datapackage: dict | None, evidence: dict | None, options: VerifyOptions,
                     ours: bool = False) -> None:
    if digest is None or dp_bytes is None:
        report.add("signature", FAIL, "no signature can be checked without the digest file")
        return
    actual = "sha256:" + hashlib.sha256(dp_bytes).hexdigest()
    signed = digest.get("signedData")
    if signed is None and _signature_removed(report, evidence):
        return
    if signed is None:
        report.signature = {"signed": False}
        report.add("signature", WARN if options.allow_unsigned else FAIL,
                   "UNSIGNED: nothing proves who made this capture"
                   + ("" if options.allow_unsigned else " (--allow-unsigned accepts that)"))
        return
    try:
        check = check_signature(signed)
    except Exception as exc:  # noqa: BLE001 - a damaged key can raise from deep in cryptography
        report.signature = {"signed": True, "form": "unknown", "fingerprint": None, "trustedAs": None,
                            "holds": False}
        report.add("signature", FAIL, f"the signature cannot be read ({type(exc).__name__})",
                   [Problem(f"signedData cannot be read: {exc}", DIGEST)])
        return
    # `trustedAs` names the signer only once the signature holds for this very file: a
    # trusted key copied next to a broken or replayed signature proves nothing
    report.signature = {
        "signed": True, "form": check.form, "fingerprint": check.fingerprint, "trustedAs": None,
        "holds": None if check.form == "domain" else False,
        "created": text_field(signed.get("created")) if isinstance(signed, dict) else None,
        "software": text_field(signed.get("software")) if isinstance(signed, dict) else None,
        "curve": check.curve, "encoding": check.encoding,
    }
    if check.form == "domain":
        named = _named_signer(evidence)
        if named or ours:
            # our captures are signed in the anonymous form (by the key their evidence names)
            said = f"{CAPTURE} names signer {named}" if named else "this file was written by this tool"
            report.add("signature", FAIL, f"the signature was replaced: {said}, but the file carries a "
                       "domain-identity signature",
                       [Problem("signedData is not the signature of the key that made it", DIGEST)])
            return
        _domain_signature(report, signed, actual)
        return
    if not check.valid:
        report.add("signature", FAIL, f"signature not valid: {check.problem}",
                   [Problem(check.problem or "invalid signature", DIGEST)])
        return
    problems = []
    if signed.get("hash") != actual:
        problems.append(Problem("the signature covers another datapackage.json", DIGEST))
    if isinstance(datapackage, dict) and signed.get("created") != datapackage.get("created"):
        problems.append(Problem("signed `created` differs from datapackage.json", DIGEST))
    if problems:
        report.add("signature", FAIL, "the signature does not belong to this capture", problems)
        return
    report.signature.update(holds=True, trustedAs=options.trusted.get(check.fingerprint))
    if check.fingerprint not in options.trusted:
        report.add("signature", FAIL,
                   f"valid signature by key {check.fingerprint}, which is not among the keys you trust"
                   + ("" if options.trusted else " (give the signer's public key with --trust)"))
        return
    report.add("signature", PASS, f"signed by {options.trusted[check.fingerprint]} (key {check.fingerprint}, "
               f"ECDSA {check.curve}, {_ENCODINGS[check.encoding]} signature)")
    if (check.curve, check.encoding) != ("P-384", "raw"):
        report.notes.append(f"ReplayWeb.page cannot confirm this signature: it checks ECDSA P-384 "
                            f"signatures in raw r||s form, this one is {check.curve} in "
                            f"{_ENCODINGS[check.encoding]} (made before this tool used P-384 keys); "
                            "this verification is unaffected")


_ENCODINGS = {"raw": "raw r||s (IEEE P1363)", "DER": "DER"}


def _stored_as_check(report: Report, evidence: dict | None, capture_id: str) -> None:
    """A file read from its place in a store must be the capture stored there: another
    capture, signed and intact, copied over it would otherwise verify under its id."""
    named = evidence.get("captureId") if isinstance(evidence, dict) else None
    if named == capture_id:
        report.add("capture-id", PASS, f"the file is capture {capture_id}, the one stored there")
        return
    said = f"says it is capture {named}" if isinstance(named, str) else "does not say which capture it is"
    report.add("capture-id", FAIL, f"the file stored as capture {capture_id} {said}",
               [Problem(f"{CAPTURE} {said}, not {capture_id}", CAPTURE)])


def _named_signer(evidence: dict | None) -> str | None:
    """The signing key our evidence file names (a capture of ours, signed when sealed)."""
    signer = evidence.get("signer") if isinstance(evidence, dict) else None
    return signer if isinstance(signer, str) and signer else None


def _signature_removed(report: Report, evidence: dict | None) -> bool:
    """A capture whose evidence file names the key that signed it, but which carries no
    signature, had it removed (adds the failure)."""
    signer = _named_signer(evidence)
    if not signer:
        return False
    report.signature = {"signed": False}
    report.add("signature", FAIL, f"the signature was removed: {CAPTURE} names signer {signer}, "
               "but there is no signature", [Problem("there is no signature", DIGEST)])
    return True


def _domain_signature(report: Report, signed: dict, actual: str) -> None:
    domain = signed.get("domain")
    report.signature["domain"] = domain if isinstance(domain, str) else None
    if signed.get("hash") != actual:
        report.add("signature", FAIL, "the signature covers another datapackage.json",
                   [Problem("signedData hash differs from datapackage.json", DIGEST)])
        return
    result = check_domain_signature(signed)
    if result.matches is False:
        report.add("signature", FAIL, f"domain-identity signature for {domain}: {result.detail}",
                   [Problem(result.detail, DIGEST)])
        return
    report.signature["certificate"] = result.detail
    report.add("signature", SKIP,
               f"signed in the domain-identity form for {domain}: {result.detail}; whether that "
               "certificate deserves trust cannot be checked offline, so who signed it was NOT "
               "checked (py-wacz `wacz validate --verify-auth` checks it against its roots)")
    report.notes.append("a domain-identity signature needs the signing service's certificate "
                        "roots and countersigned time: those were not checked here")


def _check_timestamps(report: Report, digest: dict | None, dp_bytes: bytes | None,
                      options: VerifyOptions, evidence: dict | None) -> None:
    """RFC 3161 tokens over datapackage.json (archive.verify.timestamps): trusted time is
    a statement on top of integrity, so its absence is said plainly, not a failure."""
    if digest is None or dp_bytes is None:
        report.add("timestamps", WARN, "no timestamp can be checked without datapackage.json and its digest")
        return
    results = check_timestamps(digest.get("timestamps"), list(options.later_timestamps), dp_bytes,
                               list(options.tsa_roots))
    best = trusted_time(results)
    report.time = {"trusted": best is not None, "time": best.time if best else None,
                   "accuracy": best.accuracy if best else None, "tokens": [r.to_dict() for r in results]}
    status, summary, problems = summarize(results, bool(options.tsa_roots))
    clash = clock_clash(best, evidence.get("started") if isinstance(evidence, dict) else None)
    if clash:
        status = WARN if status == PASS else status
        problems.append(Problem(clash, CAPTURE))
    report.add("timestamps", status, summary, problems)


def _capture_summary(datapackage: dict, evidence: dict, warcs: list[WarcResult], sinks: dict) -> dict:
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
    }
    return {k: v for k, v in summary.items() if v is not None}


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


def _pages(sinks: dict, warcs: list[WarcResult]) -> tuple[list[dict], dict[str, RecordLocation],
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
            elif r.record_type == "resource" and r.uri and r.uri.startswith(SCREENSHOT_PREFIX):
                url = r.uri[len(SCREENSHOT_PREFIX):]
                screenshots[url] = RecordLocation(warc.filename, r.offset, r.length, r.content_type)
            elif r.record_type == "resource" and r.uri and r.uri.startswith(MEDIA_PREFIX):
                media.setdefault(r.uri, r)
            elif r.record_type == "resource" and r.uri and r.uri.startswith(THUMBNAIL_PREFIX):
                thumbnails[MEDIA_PREFIX + r.uri[len(THUMBNAIL_PREFIX):]] = RecordLocation(
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

