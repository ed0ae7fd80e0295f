"""capture -> seal -> store: the one path every capture takes, from the CLI or a job."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from archive import SOFTWARE, utctime
from archive.capture.crawl import CrawlOptions, Crawler
from archive.capture.login import Credentials
from archive.capture.dedup import Dedup, EarlierCapture
from archive.capture.loginwall import ERROR_KIND as LOGGED_OUT
from archive.redisconn import DEFAULT_LEASE
from archive.capture.spill import SPILL_NAME, SpillFile
from archive.capture.journal import (
    JOURNAL_NAME, CrawlState, CrawlStats, Journal, cut_back, has_groups, positions, replay,
)
from archive.catalog.hooks import add_capture, pages_with_text
from archive.custody.entry import CAPTURED, STORED, Actor
from archive.custody.log import CustodyLog
from archive.errors import AlreadyExists, ArchiveError
from archive.hashing import file_sha256, stream_sha256
from archive.ids import is_capture_id, new_capture_id
from archive.keys import fingerprint, public_key_from_b64
from archive import logins
from archive.wacz.zipwriter import ContainerChanged, ContainerWriter
from archive.seal.sign import Signer
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT, make_timestamper
from archive.seal.wacz import SealInput, json_chunks, seal
from archive.store.base import Store, StoredCapture
from archive.warc.records import default_operator, warcinfo_fields
from archive.warc.writer import DEFAULT_MAX_SIZE, WARC_DIR, WarcFile, WarcWriter
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, DATAPACKAGE, DIGEST

DEFAULT_WORK_DIR = "archive-work"
REQUEST_NAME = "request.json"
LOCK_NAME = "lock"


@dataclass
class CaptureRequest:
    crawl: CrawlOptions
    operator: str = field(default_factory=default_operator)
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    warc_size: int = DEFAULT_MAX_SIZE
    keep_local: bool = False
    job: str | None = None
    title: str = ""
    dedup_against: str | None = None   # an earlier capture: WACZ path or capture id in the store
    tsa: list[str] = field(default_factory=list)    # RFC 3161 authorities asked at sealing
    tsa_timeout: float = TSA_TIMEOUT
    redis: str | None = None         # a crawl shared through Redis, with this process coordinating
    processes: int = 1               # with `redis`: this process and N-1 local worker processes
    lease: float = DEFAULT_LEASE     # with `redis`: seconds a worker holds a URL unrenewed
    # where it goes and who signs it, as started (archive.resumeoptions): a resume finishes
    # it the same way
    origin: dict = field(default_factory=dict)
    text: bool = True     # each page's text in pages.jsonl (`--no-text`: none)
    # the browser profile logged in with (its folder; a resume opens it again) and the
    # identity the evidence and custody name: never a value, never the passphrase
    profile: str | None = None
    profile_identity: dict | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("work_dir")
        return data

    @classmethod
    def from_json(cls, data: dict, work_dir: Path) -> "CaptureRequest":
        return cls(**{**data, "crawl": CrawlOptions(**data["crawl"]), "work_dir": Path(work_dir)})


@dataclass
class Session:
    """One capture's fixed facts, shared by the steps below."""

    work: Path
    capture_id: str
    started: datetime
    request: CaptureRequest
    earlier: EarlierCapture | None
    catalog: str | None = None      # where the stored capture is catalogued (None: the store's default)
    login: logins.Login | None = None   # what this run logs in with (never sealed)


@dataclass
class CaptureResult:
    capture_id: str
    address: str
    sha256: str
    size: int
    signer: str | None
    pages: int
    requisites: int
    failed: int
    bytes: int
    revisits: int
    stop_reason: str | None
    work_dir: str | None
    timestamps: list[dict] = field(default_factory=list)   # per TSA: tsa, time or error
    custody_problems: list[str] = field(default_factory=list)
    lock: str | None = None       # Object Lock retention / legal hold of the stored object
    cut_back: list[dict] = field(default_factory=list)   # groups a resume dropped and redid
    warnings: list[str] = field(default_factory=list)    # stored, but something to know
    media: int = 0                # media items recorded (with --media)
    media_failed: int = 0
    # every page that could not be captured: {"url", "error"}. When it is every page, the
    # capture is stored as a record of those failures, but it is no success (exit 1).
    failures: list[dict] = field(default_factory=list)
    # behind a login: pages answered with a login wall ({"url", "error"}), and the session
    # cookies the responses set (names only), a session to end after the capture
    logged_out: list[dict] = field(default_factory=list)
    session_cookies: list[str] = field(default_factory=list)

    @property
    def nothing_captured(self) -> bool:
        return self.pages == len(self.failures)

    def nothing_captured_line(self) -> str:
        """One line for a capture whose pages all failed (said by `capture` and `jobs run`)."""
        shown = "; ".join(f"{f['url']}: {f['error']}" for f in self.failures[:3])
        more = f" (and {len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
        return (f"no page could be captured; capture {self.capture_id} is stored as a record "
                f"of the failures: {shown or 'nothing was fetched'}{more}")

    def to_dict(self) -> dict:
        return {**asdict(self), "nothingCaptured": self.nothing_captured}


def _coordinator():
    """archive.coordinator, imported only for a crawl shared through Redis: it loads
    redis-py, which a capture on one machine never needs (a tenth of its start-up)."""
    from archive import coordinator
    return coordinator


def _write_json(path: Path, data: dict) -> None:
    # 0600: a capture behind a login keeps its headers here, to be resumed with them
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def _lock(work: Path):
    """Hold the work folder for this process (released when it exits, even by kill -9):
    two processes writing one capture would corrupt it."""
    handle = open(work / LOCK_NAME, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ArchiveError(f"{work} is being written by another archive process") from None
    return handle


def _sealed_facts(path: Path) -> tuple[str | None, str | None]:
    """(fingerprint of the key that signed a sealed WACZ or None, its `created` time)."""
    try:
        with zipfile.ZipFile(path) as zf:
            claims = read_claims(zf, required=(DIGEST, DATAPACKAGE), optional=())
        signed, created = claims.signed_data, claims.created
        return (fingerprint(public_key_from_b64(signed["publicKey"])) if signed else None), created
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path}: sealed file cannot be read ({exc})") from None


def open_earlier_capture(ref: str, store: Store) -> EarlierCapture:
    """The capture to deduplicate against: a WACZ file path, or a capture id in `store`."""
    path = Path(ref)
    try:
        if path.is_file():
            return EarlierCapture(open(path, "rb"), path.name.removesuffix(".wacz"))
        if is_capture_id(ref):
            return EarlierCapture(store.open_capture(ref), ref)
    except (KeyError, ValueError, OSError, EOFError, zlib.error, NotImplementedError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"cannot deduplicate against {ref}: not a readable WACZ ({exc})") from None
    raise ArchiveError(f"cannot deduplicate against {ref}: no such file or capture id")


def run_capture(
    request: CaptureRequest,
    store: Store,
    signer: Signer | None,
    on_progress: Callable[[CrawlStats, int], None] | None = None,
    catalog: str | None = None,
    credentials: Credentials | None = None,
) -> CaptureResult:
    """Crawl, seal and store one capture, and add it to `catalog` (by default the
    store's). The work folder is removed once the store holds a verified copy, and kept
    (and named in the error) when anything fails: `resume_capture` finishes it.
    `credentials`: the login of `request.profile`, opened by the caller."""
    _check_browser(request.crawl)
    _check_login(request, credentials)
    login = logins.prepare(request.crawl, signer, shared=bool(request.redis), profile=credentials)
    if request.redis:
        _coordinator().check_shared_request(request)
    earlier = open_earlier_capture(request.dedup_against, store) if request.dedup_against else None
    started = utctime.now()
    capture_id = new_capture_id(started)
    work = request.work_dir / capture_id
    held = None
    try:
        (work / "spool").mkdir(parents=True)
    except OSError as exc:      # a work folder path that is a file, or not writable
        raise ArchiveError(f"cannot make the work folder {work}: {exc.strerror or exc}") from None
    try:
        held = _lock(work)
        _write_json(work / REQUEST_NAME, {
            "captureId": capture_id, "started": utctime.seconds(started), "request": request.to_json(),
        })
        container = ContainerWriter(work / f"{capture_id}.wacz")
    except OSError as exc:      # a full or read-only disk: nothing was captured yet
        if held is not None:
            held.close()
        shutil.rmtree(work, ignore_errors=True)
        raise ArchiveError(f"cannot start a capture in {request.work_dir} ({exc}); nothing was captured") from exc
    with held:   # the lock goes with this call, however it ends (a failure kept in memory too)
        return _capture(Session(work, capture_id, started, request, earlier, catalog, login), container, [],
                        None, store, signer, on_progress)


def saved_request(work: Path) -> tuple[str, CaptureRequest, datetime]:
    """(capture id, request, start time) of the capture a work folder holds."""
    try:
        saved = json.loads((Path(work) / REQUEST_NAME).read_text(encoding="utf-8"))
        capture_id = saved["captureId"]
        request = CaptureRequest.from_json(saved["request"], Path(work).parent)
        started = utctime.parse_seconds(saved["started"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{work} is not a capture work folder ({exc})") from None
    return capture_id, request, started


def resume_capture(
    work: Path,
    store: Store,
    signer: Signer | None,
    on_progress: Callable[[CrawlStats, int], None] | None = None,
    changes: dict | None = None,
    catalog: str | None = None,
    redis: str | None = None,
    credentials: Credentials | None = None,
) -> CaptureResult:
    """Finish a capture whose process was killed (or failed) during the crawl, the seal or
    the upload, from what its work folder holds. The WARC data is cut back to the last
    record group the journal knows complete; the crawl goes on from there. `changes`:
    request fields (operator, tsa, tsa_timeout) replaced for this run. `redis`: a shared
    crawl's Redis, where it is no longer at the address it started with. `credentials`:
    the login of the saved request's profile, opened again by the caller."""
    work = Path(work)
    capture_id, request, started = saved_request(work)
    if changes:
        request = replace(request, **changes)
    if redis:
        if not request.redis:
            raise ArchiveError(f"--redis: {work} is not a shared crawl (it was captured by one process)")
        request.redis = redis
    held = _lock(work)
    with held:   # the lock goes with this call, however it ends (a failure kept in memory too)
        sealed_path = work / f"{capture_id}.wacz"
        if sealed_path.exists():   # sealed, but never stored
            sealed_by, created = _sealed_facts(sealed_path)
            if sealed_by != (signer.fingerprint if signer else None):
                raise ArchiveError(
                    f"{work} is already sealed, by key {sealed_by or 'none (unsigned)'}: "
                    "resume with that key (or --unsigned for an unsigned capture)"
                )
            sha, size = file_sha256(sealed_path)
            custody = CustodyLog(store, Actor(request.operator, signer))
            state = replay(work / JOURNAL_NAME, sealing=True)
            try:
                return _finish(request, store, _store(
                    Session(work, capture_id, started, request, None, catalog), store, signer,
                    sealed_path, sha, size, created, state, custody))
            finally:
                state.close()
        earlier = open_earlier_capture(request.dedup_against, store) if request.dedup_against else None
        container, state = _take_up(work, sealed_path)
        if state.ended is None:
            _check_browser(request.crawl)
            _check_login(request, credentials)
        login = _resumed_login(request, signer, crawling=state.ended is None, profile=credentials)
        if container.current is not None:
            container.end()
        closed = [WarcFile(m.entry.name.rsplit("/", 1)[-1], m.entry.size, m.entry.crc, m.sha256)
                  for m in container.members]
        for leftover in (work / "spool").glob("*"):
            leftover.unlink()
        return _capture(Session(work, capture_id, started, request, earlier, catalog, login), container,
                        closed, state, store, signer, on_progress)


def _resumed_login(request: CaptureRequest, signer: Signer | None, crawling: bool,
                   profile: Credentials | None = None) -> logins.Login:
    """What a resumed capture logs in with: read again, and refused as at the start while
    there is crawling left to do; once the crawl is done, a cookies file gone since only
    leaves its name out of the identity."""
    try:
        return logins.prepare(request.crawl, signer, shared=bool(request.redis), profile=profile)
    except ArchiveError:
        if crawling:
            raise
        return logins.prepare(replace(request.crawl, cookies=None), signer, profile=profile)


def _take_up(work: Path, sealed_path: Path) -> tuple[ContainerWriter, CrawlState]:
    """The unfinished container and the journal, cut back to the last record group both
    hold. After a kill that is the journal's last group. After a power loss the WARC
    data may end sooner: the groups whose records are lost are dropped from the journal
    too (their URLs are fetched again), and a `cut` line says so, which the capture's
    evidence reports. Data that is there but changed is refused (ContainerChanged)."""
    path = work / JOURNAL_NAME
    groups = positions(path)
    try:
        container, held = ContainerWriter.reopen(
            sealed_path, [(f"{WARC_DIR}/{name}", size, crc) for name, size, crc in groups])
    except FileNotFoundError:
        raise ArchiveError(f"{work}: the capture's container is missing; cannot resume") from None
    except ContainerChanged as exc:
        raise ArchiveError(f"{work}: {exc}") from None
    cut_back(path, held, len(groups))
    return container, replay(path)


def _record_opener(container: ContainerWriter) -> Callable[[str, int], BinaryIO]:
    """Opens the container at a record of one of its finished WARC files (a resume reads
    back what an earlier run wrote: the responses whose links it had not followed)."""
    def opened(name: str, offset: int) -> BinaryIO:
        member = next((m for m in container.members if m.entry.name == f"{WARC_DIR}/{name}"), None)
        if member is None:
            raise ArchiveError(f"the WARC file {name} the journal names is not in the container")
        fh = open(container.open_path, "rb")
        fh.seek(member.entry.data_offset + offset)
        return fh
    return opened


def _close_all(*closers) -> None:
    """Close what a failed capture had open, each whatever the others do; a close that
    fails (a full disk) loses only what a resume cuts back anyway."""
    for close in closers:
        if close is not None:
            try:
                close()
            except OSError:
                pass


def _check_browser(options: CrawlOptions) -> None:
    """A browser capture without a working Chromium stops here, saying how to install
    it, before anything is created or fetched."""
    if options.browser is not None:
        from archive.capture.browser import check_chromium   # loads Playwright: only when needed
        check_chromium()


def _check_login(request: CaptureRequest, credentials: Credentials | None) -> None:
    """A capture with a profile goes on only with that very login: never half logged in,
    never as another account than the one its evidence names."""
    if request.profile is None:
        return
    if request.redis:
        raise ArchiveError("a profile with a shared crawl (--redis): its workers cannot open the profile")
    if credentials is None:
        raise ArchiveError(f"the capture uses the profile {request.profile}: open it (its passphrase) "
                           "to capture; nothing was captured without it")
    if request.profile_identity is not None and credentials.identity != request.profile_identity:
        raise ArchiveError(f"the profile {request.profile} holds another login than the one this "
                           "capture started with (its cookies changed): finish it with that login, "
                           "or start a new capture")


def _capture(session: Session, container: ContainerWriter, closed: list[WarcFile],
             state: CrawlState | None, store: Store, signer: Signer | None,
             on_progress) -> CaptureResult:
    request, options, work = session.request, session.request.crawl, session.work
    extra = {"tls-certificate-verification": "on" if options.verify_tls else "off"}
    if session.earlier is not None:
        extra["dedup-against"] = session.earlier.label
    if state is not None:
        extra["resumed"] = utctime.seconds()
    writer = WarcWriter(
        container, session.capture_id,
        warcinfo_fields(session.capture_id, request.operator, options.user_agent,
                        "obeyed" if options.obey_robots else "ignored", request.job, extra=extra),
        max_size=request.warc_size, first_sequence=len(closed), closed_files=closed,
    )
    if state is None or state.ended is None:
        journal = Journal(work, vouched=state.journal_end if state is not None else None)
        try:
            if request.redis:
                _coordinator().run_shared(session, container, journal, state, store, on_progress)
            else:
                spill = SpillFile(str(work / "spool" / SPILL_NAME))
                # not kept once it has run: its frontier and deduplication (up to the memory
                # bound each) are freed before sealing
                Crawler(options, writer, journal, str(work / "spool"), Dedup(session.earlier, spill),
                        state, spill=spill, reread=_record_opener(container),
                        redaction=session.login.redaction, cookies=session.login.cookies,
                        profile=session.login.profile).run(on_progress)
        except BaseException as exc:
            # on a full disk closing fails too (their buffers cannot be written): what
            # is on disk is what a resume takes up, cut back to the last whole group
            _close_all(journal.close, session.earlier.close if session.earlier else None,
                       writer.close, container.close)
            hint = f"what was captured is kept: finish it with `archive capture --resume {work}`"
            if not isinstance(exc, Exception):
                # Ctrl-C, SIGTERM from a job runner: the caller decides what stopping means.
                exc.add_note(hint)
                raise
            if not has_groups(work / JOURNAL_NAME):
                # nothing was captured (a browser that does not launch, say): nothing to resume
                shutil.rmtree(work, ignore_errors=True)
                hint = "nothing was captured"
            raise ArchiveError(f"capture stopped ({type(exc).__name__}: {exc}); {hint}") from exc
        journal.close()
    if session.earlier is not None:
        session.earlier.close()
    if not any(m.entry.name.startswith(f"{WARC_DIR}/") for m in container.members):
        writer.ensure_file()     # (a shared crawl's WARC files are its workers')
    writer.close()
    state = None        # a resumed run's (every URL seen): freed before the seal's is read
    state = replay(work / JOURNAL_NAME, sealing=True)
    custody = CustodyLog(store, Actor(request.operator, signer))
    stats = state.stats
    workers = _workers(state)
    seeds = _scrubber(session)(options.seeds)      # a seed may carry a secret value too
    custody.record(CAPTURED, session.capture_id, seeds=seeds, pages=stats.pages,
                   failed=stats.failed, bytes=stats.bytes, started=utctime.seconds(session.started),
                   finished=utctime.seconds(),
                   workers=[{k: w[k] for k in ("id", "host")} for w in workers] or None,
                   **logins.custody_fields(session.login))
    try:    # what sealing spooled to disk (index lines, page entries, failures) goes at the end
        try:
            inp = _seal_input(session, state, signer)
            if request.text:
                inp.pages = pages_with_text(container.open_path, container.members, inp.index_lines,
                                            inp.pages)
            sealed = seal(container, inp, signer)
        except OSError as exc:      # a full disk: the seal is written after the captured data
            _close_all(container.close)
            raise ArchiveError(f"capture {session.capture_id} could not be sealed ({exc}); what was "
                               f"captured is kept: finish it with `archive capture --resume {work}`") from exc
        except BaseException as exc:
            if not isinstance(exc, Exception):      # Ctrl-C, SIGTERM: said as in the crawl
                exc.add_note(f"capture {session.capture_id} was not sealed; what was captured is kept: "
                             f"finish it with `archive capture --resume {work}`")
            raise
        custody.record_sealed(session.capture_id, sealed)
        return _finish(request, store, _store(
            session, store, signer, sealed.path, sealed.sha256, sealed.size, sealed.created,
            state, custody, sealed.timestamps))
    finally:
        _close_all(state.close)


def _finish(request: CaptureRequest, store: Store, result: "CaptureResult") -> "CaptureResult":
    """A shared crawl's staging area and Redis keys go once its capture is stored."""
    if request.redis:
        result.warnings += _coordinator().finish_shared(request, store, result.capture_id)
    return result


def _workers(state: CrawlState) -> list[dict]:
    """Every worker of a shared crawl and what it handed over (none for one process)."""
    workers: dict[str, dict] = {}
    for handover in state.handovers:
        who = handover.get("worker") or {}
        entry = workers.setdefault(who.get("id"), {
            **{k: who.get(k) for k in ("id", "host", "pid", "software")},
            "handovers": 0, "fetches": 0, "pages": 0, "bytes": 0, "warcFiles": []})
        entry["handovers"] += 1
        for key in ("fetches", "pages", "bytes"):
            entry[key] += handover.get(key, 0)
        entry["warcFiles"] += [f["name"] for f in handover.get("files") or ()]
    return list(workers.values())


def _seal_input(session: Session, state: CrawlState, signer: Signer | None) -> SealInput:
    request, options = session.request, session.request.crawl
    ended = state.ended or {}
    stats = state.stats
    evidence = {
        "captureId": session.capture_id,
        "software": SOFTWARE,
        "operator": request.operator,
        "host": socket.gethostname(),
        "job": request.job,
        "seeds": options.seeds,
        "options": logins.sealable_options(options),
        "started": utctime.seconds(session.started),
        "finished": utctime.seconds(),
        "resumed": state.resumes,
        **({"cutBack": state.cut_backs} if state.cut_backs else {}),
        "signer": signer.fingerprint if signer else None,
        "signed": signer is not None,
        # each TSA asked leaves an entry in datapackage-digest.json, which the signature
        # does not cover: the count here (signed) shows an entry removed from it
        "timestampsAsked": len(request.tsa),
        "stats": {
            "pages": stats.pages, "requisites": stats.requisites, "failed": stats.failed,
            "bytes": stats.bytes, "revisits": stats.revisits,
            "robotsBlocked": stats.robots_blocked, "notFetched": len(ended.get("notFetched", ())) + ended.get("notFetchedMore", 0),
            **({"media": stats.media, "mediaFailed": stats.media_failed} if options.media else {}),
        },
        "stopReason": ended.get("stop"),
        "notFetched": ended.get("notFetched", []),
        "failures": [],     # streamed from the state's spool (json_chunks, below)
    }
    if request.redis:
        evidence["workers"] = _workers(state)
    login = logins.evidence(session.login, state.redacted, state.session_cookies) \
        if session.login else None
    if login:
        evidence["credentials"] = login
    if options.media is not None:
        evidence["media"] = {**state.media_tools, "items": state.media}
    if session.earlier is not None:
        evidence["dedupAgainst"] = {
            "capture": session.earlier.label, "datapackageHash": session.earlier.datapackage_hash,
        }
    # addresses as the records name them: a secret value the capture knows replaced
    scrub = _scrubber(session)
    pages = Scrubbed(MediaPages(state.pages, state.media, state.frames), scrub)
    main = next((p for p in pages if "error" not in p), next(iter(pages), None))
    return SealInput(
        capture_id=session.capture_id,
        index_lines=state.index_lines,
        pages=pages,
        evidence={CAPTURE: json_chunks(scrub(evidence), "failures", map(scrub, state.failures))},
        title=request.title or f"Capture of {', '.join(scrub(options.seeds))}",
        description=f"Captured by {request.operator} with {SOFTWARE}",
        main_page_url=main["url"] if main else None,
        main_page_date=main["ts"] if main else None,
        timestamper=make_timestamper(request.tsa, request.tsa_timeout),
    )


def _scrubber(session: Session) -> Callable:
    """What makes an address or a text of ours sealable: the login's known secret values
    replaced by their markers, as in the records (nothing to do without any)."""
    redaction = session.login.redaction if session.login is not None else None
    return redaction.scrub if redaction is not None and redaction.known else (lambda value: value)


class Scrubbed:
    """Entries (pages.jsonl's) as `scrub` makes them, made as they are read (a pass may
    read them again)."""

    def __init__(self, entries: Iterable[dict], scrub: Callable) -> None:
        self.entries, self.scrub = entries, scrub

    def __iter__(self) -> Iterator[dict]:
        return map(self.scrub, self.entries)


class MediaPages:
    """The pages.jsonl entries, each with what became of the media found on it and in
    its frames (a player embedded in an <iframe>: the `frame` says which), made as they
    are read (the entries may be spooled on disk: a pass reads them again)."""

    def __init__(self, pages: Iterable[dict], media: list[dict], frames: dict[str, list[str]]) -> None:
        self.pages, self.frames = pages, frames
        self.by_page: dict[str, list[dict]] = {}
        for entry in media:
            summary = {k: entry[k] for k in ("n", "url", "status", "reason", "record", "sha256",
                                             "size", "format", "duration", "stored", "storedIn")
                       if entry.get(k) is not None}
            self.by_page.setdefault(entry["page"], []).append(summary)

    def __iter__(self) -> Iterator[dict]:
        for page in self.pages:
            found = list(self.by_page.get(page.get("url"), ()))
            for frame in self.frames.get(page.get("url"), ()):
                found += [{**item, "frame": frame} for item in self.by_page.get(frame, ())]
            yield {**page, "media": found} if found else page


def _holding(store: Store, capture_id: str, sha256: str):
    """The stored capture under `capture_id` when its bytes, read back whole, have this
    SHA-256; None otherwise (another file under the same id is never taken for ours)."""
    try:
        with store.open_capture(capture_id) as fh:
            held = stream_sha256(fh)[0]
        return store.stat_capture(capture_id) if held == sha256 else None
    except (ArchiveError, OSError):
        return None


@dataclass
class Placed:
    """A sealed capture put in the store: where, whether it was there already (a run
    stopped after its upload), and what to know (stored all the same)."""

    stored: StoredCapture
    found: bool
    warnings: list[str]


def put_sealed(store: Store, signer: Signer | None, capture_id: str, path: Path, sha256: str,
               metadata: dict, custody: CustodyLog, catalog: str | None = None,
               note: str | None = None) -> Placed:
    """Store a sealed capture write-once, the one way every sealed capture is stored (a
    fresh capture, a resume, a job's leftover): the `stored` ledger entry, the signer's
    public key published, the catalog told. Raises what the store raises (AlreadyExists
    when its id holds other bytes); after the upload nothing here undoes it."""
    found = False
    try:
        stored = store.put_capture(capture_id, path, sha256, metadata)
    except AlreadyExists:
        # a run stopped after its upload was confirmed, before it cleaned up: the
        # store already holds these very bytes (read back, not taken on trust)
        stored, found = _holding(store, capture_id, sha256), True
        if stored is None:
            raise
    # the Object Lock it was stored under: the retention every later change starts from
    custody.record(STORED, capture_id, sha256, address=stored.address, size=stored.size,
                   lock=stored.lock, found=True if found else None, note=note)
    warnings = [stored.warning] if stored.warning else []
    if signer is not None:
        try:
            store.put_public_key(signer.fingerprint, signer.public_pem())
        except (ArchiveError, OSError) as exc:
            # the capture is stored and recorded: a key not published does not undo that
            # (and a resume would only store it again)
            warnings.append(f"the signer's public key was not published in the store ({exc}): the "
                            "next capture signed with this key publishes it")
    catalog_warning = add_capture(store, stored, path, catalog)
    if catalog_warning:
        warnings.append(catalog_warning)
    return Placed(stored, found, warnings)


def _store(session: Session, store: Store, signer: Signer | None, path: Path, sha256: str,
           size: int, created: str | None, state: CrawlState, custody: CustodyLog,
           timestamps: list[dict] = ()) -> CaptureResult:
    options = session.request.crawl
    scrub = _scrubber(session)
    metadata = {"signer": signer.fingerprint if signer else None, "seeds": scrub(options.seeds),
                "created": created}
    kept_note = (f"the sealed capture is kept at {path}; "
                 f"store it with `archive capture --resume {session.work}`")
    try:
        placed = put_sealed(store, signer, session.capture_id, path, sha256, metadata, custody,
                            session.catalog)
    except Exception as exc:
        # the work folder stays: the sealed WACZ in it is the only copy. A taken key
        # stays taken: resuming into the same store would only be refused again.
        note = (f"the sealed capture is kept at {path}; store it in another store with "
                f"`archive capture --resume {session.work} --store ANOTHER-STORE --override-saved`") \
            if isinstance(exc, AlreadyExists) else kept_note
        # what the ledger could not record before (read-only credentials, say) is said too
        unrecorded = "".join(f"; {problem}" for problem in custody.problems)
        raise ArchiveError(f"capture {session.capture_id} was not stored: {exc} ({note}){unrecorded}") from exc
    except BaseException as exc:
        # Ctrl-C, SIGTERM from a job runner during the upload: say where the capture is
        exc.add_note(f"capture {session.capture_id} was not stored: {kept_note}")
        raise
    stored = placed.stored
    # read before the work folder goes: the page entries may be spooled there
    failures = scrub(page_failures(state.pages))
    logged_out = scrub([{"url": p.get("url"), "error": p["error"]} for p in state.pages
                        if p.get("error") and p.get("errorKind") == LOGGED_OUT])
    addresses = logins.address_warning(state.redacted)
    kept = None
    if session.request.keep_local:
        kept = str(session.work)
    else:
        shutil.rmtree(session.work, ignore_errors=True)
    stats, ended = state.stats, state.ended or {}
    return CaptureResult(
        capture_id=session.capture_id, address=stored.address, sha256=sha256, size=size,
        signer=signer.fingerprint if signer else None, pages=stats.pages,
        requisites=stats.requisites, failed=stats.failed, bytes=stats.bytes,
        revisits=stats.revisits, stop_reason=ended.get("stop"), work_dir=kept,
        timestamps=[{k: e.get(k) for k in ("tsa", "time", "error")} for e in timestamps],
        custody_problems=custody.problems, lock=stored.lock, cut_back=state.cut_backs,
        warnings=placed.warnings + ([addresses] if addresses else []),
        failures=failures, media=stats.media, media_failed=stats.media_failed, logged_out=logged_out,
        session_cookies=sorted(state.session_cookies),
    )


def page_failures(pages: Iterable[dict]) -> list[dict]:
    """The pages (entries of pages.jsonl) that could not be captured, with the reason."""
    return [{"url": p.get("url"), "error": p["error"]} for p in pages if p.get("error")]
