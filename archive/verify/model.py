"""What a verification found: checks, a verdict, and what the capture says of itself.

The JSON form of a Report is documented in report.schema.json (kept stable: new fields
may be added, none renamed or removed without a new schema version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archive.errors import CannotCheck  # noqa: F401  (raised by the reader; verify's callers catch it here)
from archive.reader.location import RecordLocation
from archive.values import count
from archive.reader.problems import Problem

SCHEMA = "archive-verify-report/1"
PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
VERIFIED, NOT_VERIFIED, COULD_NOT_CHECK = "VERIFIED", "NOT VERIFIED", "COULD NOT CHECK"
# qualifiers of a VERIFIED verdict: what a pass did not cover
UNSIGNED, INTEGRITY_ONLY, HASH_ONLY = "UNSIGNED", "INTEGRITY ONLY", "HASH ONLY"
SIGNATURE_NOT_CHECKED = "SIGNATURE NOT CHECKED"
# a sound capture in which no page could be captured: what it holds is its failed fetches
RECORD_OF_FAILURES = "RECORD OF FAILURES"


@dataclass
class VerifyOptions:
    trusted: dict[str, str] = field(default_factory=dict)   # key fingerprint -> name
    allow_unsigned: bool = False
    expected_sha256: str | None = None                       # a published hash of the file
    tsa_roots: list = field(default_factory=list)            # TSA certificates the user trusts
    later_timestamps: list = field(default_factory=list)     # (where, entry) tokens added after sealing
    capture_id: str | None = None                            # the id the file is stored under


@dataclass
class Check:
    name: str
    status: str
    summary: str
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "status": self.status, "summary": self.summary,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class Report:
    target: str
    kind: str                         # "wacz", "warc" or "file"
    verdict: str = COULD_NOT_CHECK
    qualifier: str | None = None
    reason: str = ""
    sha256: str | None = None
    size: int | None = None
    checks: list[Check] = field(default_factory=list)
    capture: dict = field(default_factory=dict)
    signature: dict = field(default_factory=dict)
    time: dict = field(default_factory=dict)                 # trusted time and every token checked
    pages: list[dict] = field(default_factory=list)
    custody: list[dict] = field(default_factory=list)        # the capture's custody entries, from its store
    notes: list[str] = field(default_factory=list)           # what was not checked, plainly
    screenshots: dict[str, RecordLocation] = field(default_factory=dict)  # page url -> record
    thumbnails: dict[str, RecordLocation] = field(default_factory=dict)   # media record URI -> thumbnail
    allow_unsigned: bool = False      # as asked, for a verdict concluded again after late checks

    def add(self, name: str, status: str, summary: str, problems=()) -> Check:
        check = Check(name, status, summary, list(problems))
        self.checks.append(check)
        return check

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def exit_code(self) -> int:
        return {VERIFIED: 0, NOT_VERIFIED: 1}.get(self.verdict, 2)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "target": self.target, "kind": self.kind, "verdict": self.verdict,
            "qualifier": self.qualifier, "reason": self.reason,
            "exitCode": self.exit_code, "sha256": self.sha256, "size": self.size,
            "capture": self.capture, "signature": self.signature,
            "time": self.time,
            "checks": [c.to_dict() for c in self.checks],
            "pages": self.pages, "custody": self.custody, "notes": self.notes,
        }


def conclude(report: Report, allow_unsigned: bool) -> Report:
    """Set the verdict from the checks: any failure is NOT VERIFIED; anything that could
    not be checked is COULD NOT CHECK, except a signature this tool cannot check, which
    --allow-unsigned accepts with a qualifier; a pass says what it did not cover."""
    report.allow_unsigned = allow_unsigned
    report.qualifier = None
    failed = [c for c in report.checks if c.status == FAIL]
    skipped = [c for c in report.checks if c.status == SKIP]
    signature = report.check("signature")
    if failed:
        report.verdict = NOT_VERIFIED
        report.reason = "; ".join(c.summary for c in failed[:3])
        return report
    blocking = [c for c in skipped if c.name != "signature" or not allow_unsigned]
    if blocking:
        report.verdict = COULD_NOT_CHECK
        report.reason = "; ".join(c.summary for c in blocking[:3])
        return report
    report.verdict = VERIFIED
    if report.kind == "file":
        report.qualifier = HASH_ONLY
        report.reason = "the file matches the published SHA-256; nothing inside it was checked"
    elif report.kind == "warc":
        report.qualifier = INTEGRITY_ONLY
        # as `warcio check` does, a WARC without digests passes; it must not read as checked
        if report.capture.get("digestsChecked") == 0:
            report.reason = ("the file reads as WARC, but no record in it carries a digest, so nothing "
                             "in it was checked; a bare WARC has no signature and no trusted time")
        elif report.capture.get("undigested"):
            report.reason = (f"every record digest holds, but {count(report.capture['undigested'], 'record')} "
                             "with content and no digest could not be checked; a bare WARC has no "
                             "signature and no trusted time")
        else:
            report.reason = ("every record digest holds; a bare WARC has no signature and no "
                             "trusted time, so only record integrity was checked")
    elif signature is not None and signature.status == SKIP:
        report.qualifier = SIGNATURE_NOT_CHECKED
        report.reason = "contents match their hashes, but the signature could not be checked here"
    elif report.signature.get("signed") is False:
        report.qualifier = UNSIGNED
        report.reason = "contents match their hashes, but no signature proves who made them"
    else:
        warned = [c for c in report.checks if c.status == WARN]
        report.reason = "every check passed" if not warned else \
            f"every check passed, with {len(warned)} warning{'s' if len(warned) > 1 else ''} to read"
    if report.kind == "wacz" and report.capture.get("nothingCaptured"):
        failed = "no page could be captured: it holds the record of its failed fetches"
        if report.qualifier is None:
            report.qualifier, report.reason = RECORD_OF_FAILURES, f"{report.reason}; {failed}"
        else:
            report.reason += f"; {failed}"
    return report
