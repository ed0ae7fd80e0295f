"""Verification of a WACZ, a bare WARC or any file against a published hash: the entry
points, and the order in which one read of the file feeds the checks.

Every check is a plain function over what one read of the file produced (archive.verify
.scan); the verdict follows from the checks (archive.verify.model.conclude). Nothing in
the file is trusted: keys come from the user, and a file that merely claims to be ours
is held to our canonical layout.
"""

from __future__ import annotations

import hashlib
from typing import Callable

from archive import SOFTWARE
from archive.verify import heap
from archive.verify.checks.files import (
    container_check, hash_algorithm, pages_check, resources_check, resources_listed,
)
from archive.verify.checks.gather import (
    checked_warcs, looks_ours, plain_zip, read_small, sinks_for, warc_results_of,
)
from archive.verify.checks.records import earlier_capture_note, index_check, nothing_captured, records_check
from archive.verify.checks.seal import (
    digest_check, legacy, legacy_checks, signature_check, stored_as_check, timestamps_check,
)
from archive.verify.checks.summary import capture_summary, page_rows
from archive.verify.model import FAIL, PASS, SKIP, WARN, CannotCheck, Report, VerifyOptions, conclude
from archive.reader.problems import Problem
from archive.hashing import Worker
from archive.reader.scan import CHUNK, file_sha256, scan_canonical, scan_lenient
from archive.verify.segments import parallel_for
from archive.reader.source import Source, local_source, sniff
from archive.reader.warcioreader import check_warc_slow
from archive.reader.warcs import WarcChecker
from archive.wacz.names import CAPTURE, DATAPACKAGE, DIGEST, DIGEST_FILES, is_warc
from archive.wacz.zipreader import ContainerError, MEMBER_LIMIT, hostile, names_zip_readers_see, read_container

OUR_SOFTWARE = SOFTWARE.split()[0] + " "
Progress = Callable[[int, int], None]


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
    if report.kind == "warc" and not options.expected_sha256:
        _bare_warc_signature(report, options.allow_unsigned)
    # everything the verdict rests on has been read: it must all be of one file. A pinned
    # source's reader refuses one changed since the first open (a write in place while a
    # single pass read it; the worker processes of a parallel pass check for themselves)
    with source.open():
        pass
    if options.capture_id and report.kind != "wacz":
        # a bare WARC or any file in a capture's place would pass as INTEGRITY or HASH ONLY
        report.add("capture-id", FAIL, f"the file stored as capture {options.capture_id} is not a WACZ",
                   [Problem("a capture is stored as a sealed WACZ, not as a bare WARC or another file",
                            report.target)])
    return conclude(report, options.allow_unsigned)


def _bare_warc_signature(report: Report, allow_unsigned: bool) -> None:
    """A bare WARC proves nothing about who made it: anyone can write one whose record
    digests hold. Like an unsigned WACZ it passes only with --allow-unsigned (or against
    a SHA-256 the user was given, --sha256)."""
    report.signature = {"signed": False}
    report.add("signature", WARN if allow_unsigned else FAIL,
               "UNSIGNED: a bare WARC has no signature; nothing proves who made it"
               + ("" if allow_unsigned else " (--allow-unsigned accepts that, for record integrity only)"))


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


def _verify_warc(source: Source, progress: Progress | None) -> Report:
    report = Report(source.name, "warc", size=source.size)
    name = source.name.rsplit("/", 1)[-1]
    whole = hashlib.sha256()
    done = 0
    with source.open() as fh:
        parallel = parallel_for(source.path, fh, [(name, 0, source.size)])
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
    records_check(report, [result])
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
        ours = looks_ours(fh)
        if not ours and plain_zip(container, source.name):
            return None
        refused = None if container.canonical else hostile(container, source.size)
        if refused and not ours:
            raise CannotCheck(f"refusing to check {source.name}: {refused}")
        warcs = [(m.name, m.data_offset, m.size) for m in container.members if is_warc(m.name)]
        parallel = parallel_for(source.path, fh, warcs) if container.canonical else None
        sinks, threaded = sinks_for(container, warcs=parallel is None)
        if container.canonical:
            try:
                scan = scan_canonical(fh, container, source.size, sinks, threaded, progress)
                checked = parallel.results(fh) if parallel else checked_warcs(sinks)
            finally:
                if parallel:
                    parallel.close()
        elif refused:
            report.add("container", FAIL, f"the zip container was altered: {refused}",
                       [Problem(refused, source.name)])
            report.sha256 = file_sha256(fh)
            return report
        else:
            datapackage = read_small(fh, container, DATAPACKAGE) or {}
            resources, _ = resources_listed(datapackage)
            algorithms = {p: [hash_algorithm(r)[0]] for p, r in resources.items()}
            scan = scan_lenient(fh, container, sinks, algorithms, MEMBER_LIMIT)
            scan.sha256 = file_sha256(fh)
            checked = checked_warcs(sinks)
        report.sha256 = scan.sha256
        warc_results = warc_results_of(fh, container, checked)
        _read_failure(fh, source)

    datapackage, dp_bytes, dp_error = sinks[DATAPACKAGE].parse() if DATAPACKAGE in sinks \
        else (None, None, "datapackage.json is missing")
    digest, _, digest_error = sinks[DIGEST].parse() if DIGEST in sinks \
        else (None, None, "datapackage-digest.json is missing")
    evidence = sinks[CAPTURE].parse()[0] if CAPTURE in sinks else None
    claims_ours = isinstance(datapackage, dict) and str(datapackage.get("software", "")).startswith(OUR_SOFTWARE)

    container_check(report, container, ours or claims_ours, source.name)
    resources_check(report, container, datapackage or {}, dp_error, scan.members)
    records_check(report, warc_results)
    index_check(report, sinks, warc_results, ours or claims_ours)
    pages_check(report, sinks, scan.members)
    # our tool never wrote the old layout: a capture of ours in it had its seal removed
    if digest is None and DIGEST not in sinks and legacy(datapackage) \
            and not (ours or claims_ours):
        legacy_checks(report, options, evidence)
    else:
        digest_check(report, digest, digest_error, dp_bytes)
        signature_check(report, digest, dp_bytes, datapackage, evidence, options, ours or claims_ours)
        timestamps_check(report, digest, dp_bytes, options, evidence)
    if options.capture_id:
        stored_as_check(report, evidence, options.capture_id)
    report.capture = capture_summary(datapackage or {}, evidence or {}, warc_results, sinks)
    report.pages, report.screenshots, report.thumbnails = page_rows(sinks, warc_results)
    if nothing_captured(report.pages, warc_results):
        report.capture["nothingCaptured"] = True
    earlier_capture_note(report, evidence or {}, warc_results)
    return report
