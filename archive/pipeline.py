"""capture -> seal -> store: the one path every capture takes, from the CLI or a job."""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from archive import SOFTWARE
from archive.capture.crawl import CrawlOptions, CrawlStats, Crawler, Journal
from archive.custody.entry import CAPTURED, STORED, Actor
from archive.custody.log import CustodyLog
from archive.errors import ArchiveError
from archive.ids import new_capture_id
from archive.seal.container import ContainerWriter
from archive.seal.sign import Signer
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT, make_timestamper
from archive.seal.wacz import SealInput, seal
from archive.store.base import Store
from archive.warc.records import default_operator, warcinfo_fields
from archive.warc.writer import DEFAULT_MAX_SIZE, WarcWriter

DEFAULT_WORK_DIR = "archive-work"


@dataclass
class CaptureRequest:
    crawl: CrawlOptions
    operator: str = field(default_factory=default_operator)
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    warc_size: int = DEFAULT_MAX_SIZE
    keep_local: bool = False
    job: str | None = None
    title: str = ""
    tsa: list[str] = field(default_factory=list)    # RFC 3161 authorities asked at sealing
    tsa_timeout: float = TSA_TIMEOUT


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
    stop_reason: str | None
    work_dir: str | None
    timestamps: list[dict] = field(default_factory=list)   # per TSA: tsa, time or error
    custody_problems: list[str] = field(default_factory=list)
    lock: str | None = None       # Object Lock retention / legal hold of the stored object

    def to_dict(self) -> dict:
        return asdict(self)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def run_capture(
    request: CaptureRequest,
    store: Store,
    signer: Signer | None,
    on_progress: Callable[[CrawlStats, int], None] | None = None,
) -> CaptureResult:
    """Crawl, seal and store one capture. The work folder is removed once the store
    holds a verified copy, and kept (and named in the error) when anything fails."""
    started = datetime.now(timezone.utc)
    capture_id = new_capture_id(started)
    work = request.work_dir / capture_id
    (work / "spool").mkdir(parents=True)
    options = request.crawl
    robots = "ignored"  # the crawler issue adds robots.txt handling
    container = ContainerWriter(work / f"{capture_id}.wacz")
    writer = WarcWriter(
        container, capture_id,
        warcinfo_fields(
            capture_id, request.operator, options.user_agent, robots, request.job,
            extra={"tls-certificate-verification": "on" if options.verify_tls else "off"},
        ),
        max_size=request.warc_size,
    )
    journal = Journal(work)
    crawler = Crawler(options, writer, journal, str(work / "spool"), on_progress)
    custody = CustodyLog(store, Actor(request.operator, signer))
    try:
        stats = crawler.run()
    finally:
        journal.close()
        writer.close()
    finished = datetime.now(timezone.utc)
    pages = _read_jsonl(work / "pages.jsonl")
    stop_reason = getattr(crawler, "stop_reason", None)
    evidence = {
        "captureId": capture_id,
        "software": SOFTWARE,
        "operator": request.operator,
        "host": socket.gethostname(),
        "job": request.job,
        "seeds": options.seeds,
        "options": {k: v for k, v in asdict(options).items() if k != "seeds"},
        "started": _iso(started),
        "finished": _iso(finished),
        "signer": signer.fingerprint if signer else None,
        "signed": signer is not None,
        "stats": {
            "pages": stats.pages, "requisites": stats.requisites, "failed": stats.failed,
            "bytes": stats.bytes, "notFetched": stats.not_fetched,
        },
        "stopReason": stop_reason,
    }
    custody.record(CAPTURED, capture_id, seeds=options.seeds, pages=stats.pages,
                   failed=stats.failed, bytes=stats.bytes, started=_iso(started), finished=_iso(finished))
    main = next((p for p in pages if "error" not in p), pages[0] if pages else None)
    sealed = seal(
        container,
        SealInput(
            capture_id=capture_id,
            index_lines=_read_lines(work / "index.cdxj"),
            pages=pages,
            evidence={"evidence/capture.json": json.dumps(evidence, indent=2).encode("utf-8")},
            title=request.title or f"Capture of {', '.join(options.seeds)}",
            description=f"Captured by {request.operator} with {SOFTWARE}",
            main_page_url=main["url"] if main else None,
            main_page_date=main["ts"] if main else None,
            timestamper=make_timestamper(request.tsa, request.tsa_timeout),
        ),
        signer,
    )
    metadata = {"signer": sealed.signer_fingerprint, "seeds": options.seeds, "created": sealed.created}
    custody.record_sealed(capture_id, sealed)
    try:
        stored = store.put_capture(capture_id, sealed.path, sealed.sha256, metadata)
    except Exception as exc:
        # the work folder stays: the sealed WACZ in it is the only copy
        raise ArchiveError(f"capture {capture_id} was not stored: {exc} "
                           f"(the sealed capture is kept at {sealed.path})") from exc
    custody.record(STORED, capture_id, sealed.sha256, address=stored.address, size=stored.size)
    if signer is not None:
        store.put_public_key(signer.fingerprint, signer.public_pem())
    kept = None
    if request.keep_local:
        kept = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return CaptureResult(
        capture_id=capture_id, address=stored.address, sha256=sealed.sha256,
        size=sealed.size, signer=sealed.signer_fingerprint, pages=stats.pages,
        requisites=stats.requisites, failed=stats.failed, bytes=stats.bytes,
        stop_reason=stop_reason, work_dir=kept,
        timestamps=[{k: e.get(k) for k in ("tsa", "time", "error")} for e in sealed.timestamps],
        custody_problems=custody.problems, lock=stored.lock,
    )
