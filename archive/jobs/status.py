"""Per job: its last run, as the store records it, and when it is next due."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from archive import utctime
from archive.errors import ArchiveError
from archive.jobs.lock import JobLock
from archive.jobs.preflight import store_options
from archive.jobs.spec import JobFileError, JobSpec, parse_job
from archive.jobs.state import JobState, RunRecord
from archive.store.address import open_store

JOB_SUFFIX = ".toml"


def job_files(target: Path) -> list[Path]:
    """A job file itself, or every *.toml in a folder (not hidden ones: editors' temp files)."""
    if target.is_dir():
        return sorted(p for p in target.glob(f"*{JOB_SUFFIX}") if not p.name.startswith("."))
    return [target]


def run_started(record: RunRecord) -> datetime | None:
    started = record.start.get("started")
    try:
        return utctime.parse_micros(started) if started else None
    except (ValueError, TypeError):
        return None


def first_due(spec: JobSpec, last: RunRecord | None, now: datetime) -> datetime | None:
    """When a job should next run: now if a scheduled time passed since its last run
    (one catch-up run after downtime, however many were missed), else its next time."""
    if spec.schedule is None:
        return None
    started = run_started(last) if last else None
    if started is not None and started < spec.schedule.last_due(now):
        return now
    return spec.schedule.next_after(now)


def run_summary(record: RunRecord | None, lock: JobLock | None) -> dict | None:
    if record is None:
        return None
    result = record.result or {}
    capture = result.get("capture") or {}
    status = record.status
    if status == "unfinished" and lock is not None:
        holder = lock.current()
        live = holder and holder.run_id == record.run_id and lock.stale_reason(holder) is None
        status = "running" if live else "interrupted"
    return {
        "run_id": record.run_id, "status": status, "started": record.start.get("started"),
        "finished": result.get("finished"), "host": record.start.get("host"),
        "capture_id": capture.get("capture_id"), "pages": capture.get("pages"),
        "bytes": capture.get("bytes"), "failures": capture.get("failed"),
        "error": result.get("error"), "changes": (result.get("changes") or {}).get("counts"),
        "took_over": bool(record.start.get("took_over")),
        "resumed": bool(result.get("resumed")),   # its capture was an earlier run's, finished
    }


def job_status(path: Path, now: datetime | None = None) -> dict:
    """Everything `archive jobs status` shows for one job file."""
    now = now or utctime.now()
    try:
        spec, problems = parse_job(path)
    except JobFileError as exc:
        spec, problems = None, exc.problems
    except ArchiveError as exc:
        return {"file": str(path), "problems": [str(exc)]}
    if spec is None:
        return {"file": str(path), "problems": [p.render(path) for p in problems]}
    info = {"file": str(path), "job": spec.name, "store": spec.store,
            "schedule": spec.schedule.describe() if spec.schedule else None}
    try:
        store = open_store(spec.store, store_options(spec))
        last = JobState(store, spec.name).last_run()
        info["last_run"] = run_summary(last, JobLock(store, spec.name, "", spec.run.lock_expiry))
    except ArchiveError as exc:
        last = None
        info["last_run"] = None
        info["store_error"] = str(exc)
    due = first_due(spec, last, now)
    info["next_due"] = utctime.seconds(due) if due else None
    return info
