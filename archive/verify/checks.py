"""Verification of a WACZ: every check is a plain function over what was read, and
the file is read once (each member streamed through its hash and, for WARC files, the
record digest checks at the same time)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from archive import SOFTWARE
from archive.hashing import parse_digest
from archive.seal.sign import check_signature
from archive.verify.timestamps import check_timestamps, summarize, trusted_time
from archive.verify.container import Container, ContainerError, Member, iter_member, read_container
from archive.verify.warcs import Problem, WarcResult, check_warc
from archive.warc.cdxj import parse_cdxj_line
from archive.ziplayout import safe_member_name

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
VERIFIED, NOT_VERIFIED, COULD_NOT_CHECK = "VERIFIED", "NOT VERIFIED", "COULD NOT CHECK"
JSON_LIMIT = 64 * 1024 * 1024          # datapackage.json and friends are small; a huge one is hostile
INDEX_LIMIT = 4 * 1024 * 1024 * 1024   # decompressed index size we are willing to read
DIGEST_FILES = ("datapackage.json", "datapackage-digest.json")
OUR_SOFTWARE = SOFTWARE.split()[0] + " "


class CannotCheck(Exception):
    """The input is not something we can verify at all (exit 2)."""


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
    kind: str                     # "wacz"
    verdict: str = COULD_NOT_CHECK
    qualifier: str | None = None  # "UNSIGNED", "INTEGRITY ONLY": what a pass did not cover
    reason: str = ""
    checks: list[Check] = field(default_factory=list)
    capture: dict = field(default_factory=dict)
    signature: dict = field(default_factory=dict)
    time: dict = field(default_factory=dict)      # trusted time and every token checked
    custody: list[dict] = field(default_factory=list)  # the capture's custody entries, from its store
    sha256: str | None = None
    size: int | None = None

    def add(self, name: str, status: str, summary: str, problems=()) -> Check:
        check = Check(name, status, summary, list(problems))
        self.checks.append(check)
        return check

    @property
    def exit_code(self) -> int:
        return {VERIFIED: 0, NOT_VERIFIED: 1}.get(self.verdict, 2)

    def to_dict(self) -> dict:
        return {
            "target": self.target, "kind": self.kind, "verdict": self.verdict,
            "qualifier": self.qualifier, "reason": self.reason, "sha256": self.sha256, "size": self.size,
            "capture": self.capture, "signature": self.signature, "time": self.time,
            "custody": self.custody,
            "checks": [c.to_dict() for c in self.checks],
        }


class _HashingStream(io.RawIOBase):
    """A readable stream over member chunks that hashes every byte it hands out."""

    def __init__(self, chunks: Iterator[bytes], algorithm: str = "sha256"):
        self._chunks = chunks
        self._buffer = b""
        self.hasher = hashlib.new(algorithm)
        self.size = 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def readinto(self, target) -> int:
        if not self._buffer:
            self._buffer = next(self._chunks, b"")
            if self._buffer:
                self.hasher.update(self._buffer)
                self.size += len(self._buffer)
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self._pos += n
        return n

    def drain(self) -> None:
        self._buffer = b""
        for chunk in self._chunks:
            self.hasher.update(chunk)
            self.size += len(chunk)


def _load_json(fh, container: Container, name: str) -> tuple[dict | None, bytes | None, str | None]:
    member = container.get(name)
    if member is None:
        return None, None, f"{name} is missing"
    if member.size > JSON_LIMIT:
        return None, None, f"{name} is {member.size} bytes; refusing to read more than {JSON_LIMIT}"
    try:
        data = b"".join(iter_member(fh, container, member, JSON_LIMIT))
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, None, f"{name} cannot be read: {exc}"
    except Exception as exc:  # noqa: BLE001 - zipfile raises many kinds on damaged input
        return None, None, f"{name} cannot be read: {type(exc).__name__}: {exc}"
    if not isinstance(value, dict):
        return None, data, f"{name} is not a JSON object"
    return value, data, None


def _resources(datapackage: dict) -> tuple[dict[str, dict], list[str]]:
    """Resources by path, with problems in their declarations."""
    problems, by_path = [], {}
    resources = datapackage.get("resources")
    if not isinstance(resources, list):
        return {}, ["datapackage.json has no resources list"]
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            problems.append(f"resource entry without a path: {str(item)[:80]}")
            continue
        path = item["path"]
        if path in by_path:
            problems.append(f"{path} is listed twice")
        by_path[path] = item
    return by_path, problems


def _declared(resource: dict) -> tuple[str | None, int | None]:
    """(hash, bytes) of a resource; WACZ 1.0.0 kept them under `stats`."""
    stats = resource.get("stats") if isinstance(resource.get("stats"), dict) else {}
    return resource.get("hash") or stats.get("hash"), resource.get("bytes", stats.get("bytes"))


def _is_warc(path: str) -> bool:
    return path.startswith("archive/") and path.endswith((".warc", ".warc.gz"))


def verify_wacz(
    fh: BinaryIO,
    target: str,
    file_size: int,
    trusted: dict[str, str],
    allow_unsigned: bool = False,
    tsa_roots: list | None = None,
    later_timestamps: list[tuple[str, dict]] = (),
) -> Report:
    """Check a WACZ read from a seekable binary stream; `trusted` maps key fingerprints
    to the names the user gave them, `tsa_roots` are the TSA certificates the user trusts,
    `later_timestamps` (where, entry) tokens added after sealing (kept in the store)."""
    report = Report(target, "wacz", size=file_size)
    try:
        container = read_container(fh, file_size)
    except ContainerError as exc:
        head = (fh.seek(0), fh.read(4))[1]
        if head != b"PK\x03\x04":
            raise CannotCheck(f"{target} is not a WACZ (zip) file") from None
        report.add("container", FAIL, f"the zip container is damaged: {exc}")
        return _conclude(report)

    datapackage, dp_bytes, dp_error = _load_json(fh, container, "datapackage.json")
    digest, _, digest_error = _load_json(fh, container, "datapackage-digest.json")
    ours = isinstance(datapackage, dict) and str(datapackage.get("software", "")).startswith(
        OUR_SOFTWARE
    )
    report.capture = _capture_summary(datapackage or {})

    # -- container -----------------------------------------------------------
    unsafe = [m.name for m in container.members if not safe_member_name(m.name)]
    names = [m.name for m in container.members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    container_problems = [Problem(f"unsafe path in zip: {n!r}", n) for n in unsafe]
    container_problems += [Problem(f"duplicate zip entry: {n}", n) for n in dupes]
    if container.canonical:
        if container_problems:
            report.add("container", FAIL, "unsafe or duplicate entries", container_problems)
        else:
            report.add("container", PASS, f"canonical zip, {len(names)} entries, every header byte checked")
    elif ours:
        report.add("container", FAIL, "zip container was altered: " + container.problems[0],
                   container_problems or [Problem(container.problems[0], target)])
    elif container_problems:
        report.add("container", FAIL, "unsafe or duplicate entries", container_problems)
    else:
        report.add("container", WARN,
                   "container not canonical (written by another tool): content checked, "
                   "zip headers not checked byte for byte")

    # -- every member: hash, and WARC records on the way ------------------------
    resources, declaration_problems = _resources(datapackage or {})
    hash_problems = [Problem(p, "datapackage.json") for p in declaration_problems]
    warc_results: list[WarcResult] = []
    index_lines: list[str] = []
    pages_problems: list[Problem] = []
    page_count = 0
    for member in container.members:
        if member.name in DIGEST_FILES or member.name in dupes or member.name in unsafe:
            continue
        resource = resources.get(member.name)
        declared_hash, declared_size = _declared(resource) if resource else (None, None)
        parsed = declared_hash.split(":", 1) if isinstance(declared_hash, str) and ":" in declared_hash else None
        algorithm = parsed[0].lower().replace("-", "") if parsed else "sha256"
        try:
            hashlib.new(algorithm)
        except ValueError:
            algorithm = "sha256"
        stream = _HashingStream(iter_member(fh, container, member, INDEX_LIMIT), algorithm)
        try:
            if _is_warc(member.name):
                warc_results.append(check_warc(io.BufferedReader(stream, 1 << 20), member.name))
            elif member.name.endswith(".cdx.gz") or member.name.endswith((".cdx", ".cdxj")):
                index_lines.extend(_read_index(stream, member.name, pages_problems))
            elif member.name == "pages/pages.jsonl":
                page_count = _check_pages(stream, pages_problems)
            stream.drain()
        except Exception as exc:  # noqa: BLE001 - damaged members raise many kinds
            hash_problems.append(Problem(f"{member.name} cannot be read: {exc}", member.name))
            continue
        if resource is None:
            hash_problems.append(Problem(f"{member.name} is in the zip but not listed in datapackage.json", member.name))
            continue
        if declared_size is not None and declared_size != stream.size:
            hash_problems.append(Problem(
                f"{member.name} is {stream.size} bytes, datapackage.json says {declared_size}", member.name))
        if parsed is None or stream.hasher.hexdigest() != parsed[1].lower():
            hash_problems.append(Problem(
                f"{member.name} does not match its hash in datapackage.json", member.name))
    for path in resources:
        if path not in names:
            hash_problems.append(Problem(f"{path} is listed in datapackage.json but missing from the zip", path))
    if dp_error:
        hash_problems.insert(0, Problem(dp_error, "datapackage.json"))
    report.add(
        "resources", FAIL if hash_problems else PASS,
        f"{len(resources)} files listed in datapackage.json: size and hash"
        + (" do not all match" if hash_problems else " match"),
        hash_problems,
    )

    # -- WARC records -----------------------------------------------------------
    record_problems = [p for r in warc_results for p in r.problems]
    records = sum(len(r.records) for r in warc_results)
    digests = sum(r.digests_checked for r in warc_results)
    if not warc_results:
        report.add("records", FAIL, "no WARC files in archive/")
    else:
        report.add(
            "records", FAIL if record_problems else PASS,
            f"{records} records in {len(warc_results)} WARC files, {digests} digests "
            + ("checked, some fail" if record_problems else "checked"),
            record_problems,
        )

    # -- index -------------------------------------------------------------------
    report.add(*_check_index(index_lines, warc_results, pages_problems))
    report.capture["pages"] = page_count

    # -- digest file and signature ----------------------------------------------
    _check_digest_and_signature(report, digest, digest_error, dp_bytes, datapackage,
                                trusted, allow_unsigned)
    _check_timestamps(report, digest, dp_bytes, tsa_roots or [], list(later_timestamps))
    return _conclude(report)


def _read_index(stream, name: str, problems: list[Problem]) -> list[str]:
    reader = io.BufferedReader(stream, 1 << 20)
    text = gzip.GzipFile(fileobj=reader) if name.endswith(".gz") else reader
    lines = []
    for raw in text:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line and not line.startswith("!"):
            lines.append(line)
    return lines


def _check_pages(stream, problems: list[Problem]) -> int:
    count = 0
    for number, raw in enumerate(io.BufferedReader(stream, 1 << 20), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            problems.append(Problem(f"line {number} is not JSON", "pages/pages.jsonl"))
            continue
        if number == 1 and isinstance(entry, dict) and "format" in entry:
            continue
        if not isinstance(entry, dict) or "url" not in entry or "ts" not in entry:
            problems.append(Problem(f"line {number} lacks url or ts", "pages/pages.jsonl"))
            continue
        count += 1
    return count


def _check_index(lines: list[str], warcs: list[WarcResult], extra: list[Problem]):
    """Every index line must point at a record with the same URL and digest."""
    if not lines and not extra:
        return "index", FAIL, "no index lines found in indexes/", []
    by_position = {
        (f"{w.filename.rsplit('/', 1)[-1]}", r.offset): r for w in warcs for r in w.records
    }
    problems = list(extra)
    for number, line in enumerate(lines, 1):
        try:
            _, _, fields = parse_cdxj_line(line)
            position = (str(fields["filename"]).rsplit("/", 1)[-1], int(fields["offset"]))
        except (ValueError, KeyError, TypeError):
            problems.append(Problem(f"index line {number} cannot be read", "indexes/index.cdx.gz"))
            continue
        record = by_position.get(position)
        where = f"{position[0]} offset {position[1]}"
        if record is None:
            problems.append(Problem(f"index line {number} points at no record ({where})",
                                    position[0], position[1], uri=fields.get("url")))
            continue
        if fields.get("url") != record.uri:
            problems.append(Problem(f"index line {number} names {fields.get('url')} but the record is {record.uri}",
                                    position[0], position[1], record.record_id, record.uri))
        if "length" in fields and str(fields["length"]) != str(record.length):
            problems.append(Problem(f"index line {number} gives length {fields['length']}, record is {record.length} bytes",
                                    position[0], position[1], record.record_id, record.uri))
        digest = fields.get("digest")
        if digest and record.payload_digest and not _same_digest(digest, record.payload_digest):
            problems.append(Problem(f"index line {number} digest differs from the record's",
                                    position[0], position[1], record.record_id, record.uri))
    return (
        "index", FAIL if problems else PASS,
        f"{len(lines)} index lines " + ("do not all match their records" if problems else "match their records"),
        problems,
    )


def _same_digest(a: str, b: str) -> bool:
    pa, pb = parse_digest(a), parse_digest(b)
    if pa and pb:
        return pa == pb
    return a.split(":")[-1].upper() == b.split(":")[-1].upper()


def _check_digest_and_signature(report, digest, digest_error, dp_bytes, datapackage,
                                trusted, allow_unsigned) -> None:
    if digest is None or dp_bytes is None:
        report.add("datapackage-digest", FAIL, digest_error or "datapackage.json cannot be read")
        report.add("signature", FAIL, "no signature can be checked without the digest file")
        return
    actual = "sha256:" + hashlib.sha256(dp_bytes).hexdigest()
    if digest.get("hash") != actual or digest.get("path") != "datapackage.json":
        report.add("datapackage-digest", FAIL,
                   "datapackage.json does not match the hash in datapackage-digest.json",
                   [Problem(f"expected {digest.get('hash')}, found {actual}", "datapackage-digest.json")])
    else:
        report.add("datapackage-digest", PASS, "datapackage.json matches datapackage-digest.json")

    signed = digest.get("signedData")
    if signed is None:
        report.signature = {"signed": False}
        status = WARN if allow_unsigned else FAIL
        report.add("signature", status, "UNSIGNED: nothing proves who made this capture")
        return
    check = check_signature(signed)
    report.signature = {
        "signed": True, "form": check.form, "fingerprint": check.fingerprint,
        "trustedAs": trusted.get(check.fingerprint) if check.fingerprint else None,
        "created": signed.get("created") if isinstance(signed, dict) else None,
        "software": signed.get("software") if isinstance(signed, dict) else None,
    }
    problems = []
    if not check.valid:
        report.add("signature", FAIL, f"signature not valid: {check.problem}",
                   [Problem(check.problem or "invalid signature", "datapackage-digest.json")])
        return
    if signed.get("hash") != actual:
        problems.append(Problem("the signature covers another datapackage.json", "datapackage-digest.json"))
    if isinstance(datapackage, dict) and signed.get("created") != datapackage.get("created"):
        problems.append(Problem("signed `created` differs from datapackage.json", "datapackage-digest.json"))
    if problems:
        report.add("signature", FAIL, "the signature does not belong to this capture", problems)
        return
    if check.fingerprint not in trusted:
        report.add("signature", FAIL,
                   f"valid signature by key {check.fingerprint}, which is not among the keys you trust"
                   + ("" if trusted else " (give the signer's public key with --trust)"))
        return
    report.add("signature", PASS,
               f"signed by {trusted[check.fingerprint]} (key {check.fingerprint})")


def _check_timestamps(report, digest, dp_bytes, roots, later) -> None:
    """RFC 3161 tokens over datapackage.json (verify/timestamps.py)."""
    if digest is None or dp_bytes is None:
        report.add("timestamps", SKIP, "no timestamp can be checked without datapackage.json and its digest")
        return
    results = check_timestamps(digest.get("timestamps"), later, dp_bytes, roots)
    best = trusted_time(results)
    report.time = {"trusted": best is not None, "time": best.time if best else None,
                   "tokens": [r.to_dict() for r in results]}
    report.add("timestamps", *summarize(results, bool(roots)))


def _capture_summary(datapackage: dict) -> dict:
    keys = ("title", "created", "software", "mainPageUrl", "mainPageDate", "wacz_version")
    return {k: datapackage[k] for k in keys if isinstance(datapackage.get(k), (str, int))}


def add_late_check(report: Report, name: str, status: str, summary: str, problems=()) -> Report:
    """A check made after the file was read (custody history from its store) joins the verdict."""
    report.add(name, status, summary, problems)
    return _conclude(report)


def _conclude(report: Report) -> Report:
    report.qualifier = None
    failed = [c for c in report.checks if c.status == FAIL]
    if failed:
        report.verdict = NOT_VERIFIED
        report.reason = "; ".join(c.summary for c in failed[:3])
    elif report.signature.get("signed") is False:
        report.verdict = VERIFIED
        report.qualifier = "UNSIGNED"
        report.reason = "contents match their hashes, but no signature proves who made them"
    else:
        report.verdict = VERIFIED
        report.reason = "every check passed"
    return report


def verify_path(path: str, trusted: dict[str, str], allow_unsigned: bool = False,
                tsa_roots: list | None = None, later_timestamps: list[tuple[str, dict]] = ()) -> Report:
    try:
        size = os.path.getsize(path)
        fh = open(path, "rb")
    except FileNotFoundError:
        raise CannotCheck(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CannotCheck(f"{path} is a directory, not a WACZ file") from None
    except OSError as exc:
        raise CannotCheck(f"{path}: {exc.strerror}") from None
    with fh:
        report = verify_wacz(fh, path, size, trusted, allow_unsigned, tsa_roots, later_timestamps)
        fh.seek(0)
        sha = hashlib.sha256()
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
        report.sha256 = sha.hexdigest()
    return report
