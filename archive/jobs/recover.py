"""What an earlier run of a job left in its work folder, and storing what was sealed.

A run that was killed (or stopped by SIGTERM, or lost its machine) before sealing
leaves `<id>/<id>.wacz.open` with the crawl journal beside it; a run whose store failed
after sealing leaves `<id>/<id>.wacz`. The next run finds both. An unsealed one is
finished by the pipeline's resume: the crawl goes on from its journal with the options
it was started with, then it is sealed and stored as that run's capture. A sealed one
is checked like any capture (`archive verify`, trusting only the job's own key) and,
if it verifies, stored under its own id and time: a capture is never lost because the
store was down for a while.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Callable

from archive.custody.log import CustodyLog
from archive.errors import ArchiveError, NotFound
from archive.hashing import file_sha256
from archive.ids import is_capture_id
from archive.capture.login import Credentials
from archive.pipeline import CaptureResult, put_sealed, resume_capture
from archive.seal.sign import Signer
from archive.errors import CannotCheck
from archive.verify.checks import verify_path, verify_source
from archive.verify.model import VerifyOptions
from archive.reader.source import Source
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE

UNSEALED = "interrupted before it was sealed"
UNSTORED = "sealed but not stored"


def leftovers(work_dir: Path, store) -> list[dict]:
    """Capture folders an earlier run left unfinished, oldest first."""
    found = []
    if not work_dir.is_dir():
        return found
    for folder in sorted(p for p in work_dir.iterdir() if p.is_dir() and is_capture_id(p.name)):
        entry = {"capture_id": folder.name, "path": str(folder)}
        if (folder / f"{folder.name}.wacz.open").exists():
            found.append({**entry, "state": UNSEALED})
        elif (folder / f"{folder.name}.wacz").exists():
            try:
                store.open_capture(folder.name).close()
            except NotFound:
                found.append({**entry, "state": UNSTORED})
            except (ArchiveError, OSError) as exc:
                found.append({**entry, "state": f"{UNSTORED}? the store could not tell ({exc})"})
    return found


def _seeds(wacz: Path) -> list[str]:
    try:
        with zipfile.ZipFile(wacz) as zf:
            return list(read_claims(zf, required=(CAPTURE,), optional=()).seeds or [])
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return []


def _trusted(signer: Signer | None) -> dict[str, str]:
    """A job trusts its own key only: what an earlier run of it left must carry it."""
    return {signer.fingerprint: "the job's signing key"} if signer else {}


def stored_problem(store, signer: Signer | None, result: CaptureResult) -> str | None:
    """Why a stored capture does not verify against the job's key (None: it verifies)."""
    source = Source(result.address, result.size, lambda: store.open_capture(result.capture_id))
    options = VerifyOptions(_trusted(signer), allow_unsigned=signer is None,
                            expected_sha256=result.sha256, capture_id=result.capture_id)
    try:
        report = verify_source(source, options)
    except (CannotCheck, ArchiveError, OSError) as exc:
        return f"it could not be checked: {exc}"
    return None if report.exit_code == 0 else f"it does not verify ({report.verdict}: {report.reason})"


def store_sealed(store, signer: Signer | None, leftover: dict, keep_local: bool,
                 custody: CustodyLog) -> dict:
    """Store a sealed leftover if it verifies against the job's key (recorded in the
    custody ledger); the leftover entry with what happened (`stored` address, or
    `not_stored` reason)."""
    capture_id = leftover["capture_id"]
    wacz = Path(leftover["path"]) / f"{capture_id}.wacz"
    try:
        report = verify_path(str(wacz), _trusted(signer), allow_unsigned=signer is None,
                             capture_id=capture_id)
    except CannotCheck as exc:
        return {**leftover, "not_stored": f"could not be checked: {exc}"}
    if report.exit_code != 0:
        return {**leftover, "not_stored": f"it does not verify ({report.verdict}: {report.reason}); kept"}
    sha256 = report.sha256 or file_sha256(wacz)[0]
    try:
        placed = put_sealed(store, signer, capture_id, wacz, sha256, {
            "signer": signer.fingerprint if signer else None, "seeds": _seeds(wacz),
        }, custody, note="sealed by an earlier run whose store failed; verified, then stored")
    except ArchiveError as exc:
        return {**leftover, "not_stored": f"the store refused it: {exc}; kept"}
    stored = placed.stored
    if not keep_local:
        shutil.rmtree(leftover["path"], ignore_errors=True)
    return {**leftover, "stored": stored.address, "sha256": sha256,
            **({"warnings": placed.warnings} if placed.warnings else {})}


def resume_unsealed(found: list[dict], store, signer: Signer | None,
                    on_progress: Callable | None = None,
                    credentials: Credentials | None = None) -> tuple[CaptureResult | None, list[dict]]:
    """Finish the oldest unsealed leftover that can be finished: (its result or None, the
    leftovers with what happened to each: `resumed` address or `not_resumed` reason).

    One per run, like a fresh capture. A leftover that cannot be finished is kept and
    reported, and never stands in the way of the next one or of a fresh capture.
    Stopping (SIGTERM, Ctrl-C) is not caught: the folder stays for the run after.
    """
    result: CaptureResult | None = None
    updated = []
    for left in found:
        if result is not None or left["state"] != UNSEALED:
            updated.append(left)
            continue
        try:
            result = resume_capture(Path(left["path"]), store, signer, on_progress, credentials=credentials)
        except ArchiveError as exc:
            updated.append({**left, "not_resumed": f"{exc}; kept"})
        except Exception as exc:  # noqa: BLE001 - one bad folder must not stop the job
            updated.append({**left, "not_resumed": f"internal error: {type(exc).__name__}: {exc}; kept"})
        else:
            # A reboot can leave data the journal counts as written but the disk never
            # got; what was resumed is checked at once, not years later in court.
            problem = stored_problem(store, signer, result)
            updated.append({**left, "resumed": result.address,
                            **({"not_verified": problem} if problem else {})})
    return result, updated
