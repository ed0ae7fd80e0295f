"""One run of a job: lock, capture, seal, store, compare with the last capture, record,
notify. Used by `archive jobs run` and, through it, by the scheduler."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable

from archive import utctime
from archive.capture.dedup import EarlierCapture
from archive.custody.entry import Actor
from archive.custody.log import CustodyLog
from archive.diff import diff_captures
from archive.errors import ArchiveError
from archive.jobs.lock import JobLock
from archive.jobs.notify import notify, wanted
from archive.jobs.recover import UNSTORED, leftovers, resume_unsealed, store_sealed
from archive.jobs.request import capture_request, job_login, job_work_dir
from archive.jobs.spec import JobSpec
from archive.jobs.state import JobState, new_run_id
from archive.pipeline import run_capture
from archive.seal.sign import Signer
from archive.errors import CannotCheck
from archive.reader.source import pinned


class Terminated(BaseException):
    """The run was asked to stop (SIGTERM): what was captured stays in the work folder."""


@dataclass
class Outcome:
    job: str
    run_id: str
    status: str                    # ok, failed, interrupted
    started: str
    finished: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    capture: dict | None = None    # pipeline.CaptureResult as a dict
    resumed: bool = False          # the capture is an earlier run's, finished by this one
    previous_capture: str | None = None
    dedup_against: str | None = None   # a fresh capture's revisits point into this one
    changes: dict | None = None    # archive.diff.Diff as a dict
    error: str | None = None
    took_over: dict | None = None  # the stale lock this run took over
    lock_lost_to: str | None = None
    unfinished: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # e.g. a custody ledger not written
    notify: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def changes_since(store, previous: str, current: str) -> dict:
    """The comparison of two stored captures, as a dict (an error is reported in it).
    In time order: a resumed capture may have started before the previous one."""
    try:
        def open_capture(capture_id: str):
            return pinned(capture_id, partial(store.open_capture, capture_id))
        return diff_captures(open_capture(previous), open_capture(current), open_capture).to_dict()
    except (ArchiveError, CannotCheck) as exc:
        return {"error": f"could not compare with {previous}: {exc}"}


def unreadable(store, capture_id: str) -> str | None:
    """Why a stored capture cannot serve as the base of revisit records (None: it can).
    Checked before the capture starts: a previous capture gone or damaged costs the
    revisits, never the capture."""
    try:
        with store.open_capture(capture_id) as fh:
            EarlierCapture(fh, capture_id)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, it is not a base
        return f"{type(exc).__name__}: {exc}" if not isinstance(exc, ArchiveError) else str(exc)
    return None


def run_job(
    spec: JobSpec,
    signer: Signer | None,
    store,
    on_progress: Callable | None = None,
    send: bool = True,
) -> Outcome:
    """One run now. Raises JobBusy (before anything is written) when another run holds
    the job's lock, and Terminated after recording (and notifying) an interrupted run."""
    run_id = new_run_id()
    lock = JobLock(store, spec.name, run_id, spec.run.lock_expiry)
    lock.acquire()
    state = JobState(store, spec.name)
    outcome = Outcome(job=spec.name, run_id=run_id, status="running", started=utctime.micros(),
                      took_over=lock.took_over)
    stopped: BaseException | None = None
    try:
        lock.start_heartbeat()
        last = state.last_capture()
        outcome.previous_capture = last.capture_id if last else None
        work_dir = job_work_dir(spec)
        custody = CustodyLog(store, Actor(capture_request(spec).operator, signer))
        outcome.unfinished = [
            store_sealed(store, signer, left, spec.keep_local, custody) if left["state"] == UNSTORED else left
            for left in leftovers(work_dir, store)
        ]
        outcome.problems += custody.problems
        state.record_start(run_id, {
            "job": spec.name, "started": outcome.started, "host": outcome.host,
            "pid": outcome.pid, "work_dir": str(work_dir), "seeds": spec.seeds,
            "job_file": str(spec.path), "took_over": lock.took_over,
            "unfinished": outcome.unfinished,
        })
        try:
            result = None
            credentials = job_login(spec)      # a wrong passphrase: the run fails, nothing fetched
            if spec.run.resume:
                result, outcome.unfinished = resume_unsealed(outcome.unfinished, store, signer, on_progress,
                                                             credentials)
                outcome.resumed = result is not None
            if result is None:
                outcome.dedup_against = _dedup_base(spec, store, outcome)
                result = run_capture(capture_request(spec, outcome.dedup_against, credentials), store, signer,
                                     on_progress, credentials=credentials)
        except (Terminated, KeyboardInterrupt) as exc:
            outcome.status = "interrupted"
            outcome.error = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
            raise
        except ArchiveError as exc:
            outcome.status, outcome.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, the lock released
            outcome.status, outcome.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        else:
            outcome.status, outcome.capture = "ok", result.to_dict()
            outcome.problems += result.custody_problems
            if result.logged_out:
                # a job's session expires unattended: whoever hears of failures hears of it
                outcome.problems.append(
                    f"session expired: {len(result.logged_out)} page(s) answered with a login wall "
                    f"(first {result.logged_out[0]['url']}): recorded as \"logged out\"; renew the "
                    "cookies (or credentials) the job file names")
            if result.nothing_captured:
                # stored (that the pages could not be reached is evidence), but a failed run
                outcome.status, outcome.error = "failed", result.nothing_captured_line()
        finally:
            outcome.problems += _left_behind(outcome.unfinished)
            # A run that stored no capture (failed, stopped) has nothing to compare.
            if outcome.previous_capture and result is not None:
                outcome.changes = changes_since(store, outcome.previous_capture, result.capture_id)
    except (Terminated, KeyboardInterrupt) as exc:
        stopped = exc       # raised again once the run is recorded and notified
    finally:
        outcome.finished = utctime.micros()
        if lock.lost_to is not None:
            outcome.lock_lost_to = lock.lost_to.describe()
        try:
            if outcome.status != "running":
                state.record_result(run_id, _result_record(outcome))
        finally:
            lock.release()
    # (stopped before its capture began, a run is neither recorded nor notified)
    if send and outcome.status != "running" and wanted(spec.notify, outcome.to_dict()):
        # a stopped run too (a service stopped, a machine shutting down): whoever hears of
        # failures hears of it, within the notification's own timeout
        outcome.notify = notify(spec.notify, outcome.to_dict())
        try:
            state.record_notify(run_id, outcome.notify)
        except ArchiveError:
            pass   # the notification itself happened; its record is a convenience
    if stopped is not None:
        raise stopped
    return outcome


def _dedup_base(spec: JobSpec, store, outcome: Outcome) -> str | None:
    """The previous capture, when revisits may point into it (a problem noted if not)."""
    if not spec.crawl.dedup or not outcome.previous_capture:
        return None
    why = unreadable(store, outcome.previous_capture)
    if why is not None:
        outcome.problems.append(f"payloads stored in full, not as revisits: the previous "
                                f"capture {outcome.previous_capture} cannot be read ({why})")
        return None
    return outcome.previous_capture


def _left_behind(unfinished: list[dict]) -> list[str]:
    """Earlier captures this run could not finish, store or verify: each needs a person."""
    problems = []
    for left in unfinished:
        earlier = f"an earlier run's capture {left['capture_id']}"
        if left.get("not_resumed"):
            problems.append(f"{earlier} could not be finished: {left['not_resumed']} (in {left['path']})")
        if left.get("not_stored"):
            problems.append(f"{earlier} was not stored: {left['not_stored']} (in {left['path']})")
        if left.get("not_verified"):
            problems.append(f"{earlier} was finished by this run and stored at {left['resumed']}, "
                            f"but {left['not_verified']}")
    return problems


def _result_record(outcome: Outcome) -> dict:
    keep = ("status", "finished", "capture", "resumed", "previous_capture", "dedup_against", "error",
            "lock_lost_to", "problems", "unfinished")
    record = {k: v for k, v in outcome.to_dict().items() if k in keep}
    if outcome.changes is not None:
        record["changes"] = {k: outcome.changes.get(k) for k in ("counts", "error") if k in outcome.changes}
    return record
