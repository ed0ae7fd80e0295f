"""`archive jobs serve DIR`: run every job file in a folder on its schedule.

Each run is a child process (`archive jobs run FILE`): a run that crashes cannot take
the scheduler down, its memory goes back when it ends, and it takes the job's lock in
the store like a run started by cron, so the two can be mixed safely. The folder is
re-read every second: added, changed and removed job files take effect without a
restart. After downtime a job runs once to catch up, not once per missed time.

On SIGTERM or SIGINT nothing new starts; running captures get `grace` seconds to
finish, then are sent SIGTERM themselves: they record the run as interrupted, keep
what they captured in the work folder and release their lock: a checkpoint the next
run of the job resumes from (unless its job file says `[run] resume = false`).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from archive import utctime
from archive.errors import ArchiveError
from archive.jobs.preflight import preflight, store_options
from archive.jobs.spec import JobFileError, JobSpec, parse_job, read_job_bytes
from archive.jobs.state import JobState
from archive.jobs.status import first_due, job_files
from archive.store.address import open_store

RESCAN_SECONDS = 1.0
CHECKPOINT_SECONDS = 30.0   # how long a run may take to stop after SIGTERM


@dataclass
class Child:
    process: subprocess.Popen
    output: object          # temporary files holding the child's JSON result
    errors: object          # and what it said on stderr
    started: datetime
    path: Path


@dataclass
class Entry:
    path: Path
    fingerprint: str
    spec: JobSpec | None
    next_due: datetime | None = None
    child: Child | None = None
    problems: list[str] = field(default_factory=list)


def file_fingerprint(path: Path) -> str:
    try:
        return hashlib.sha256(read_job_bytes(path)).hexdigest()
    except OSError:
        return ""


def run_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "archive", "jobs", "run", str(path), "--json", "--quiet"]


class Scheduler:
    def __init__(self, folder: Path, concurrency: int, grace: float,
                 log: Callable[[str, dict], None],
                 command: Callable[[Path], list[str]] = run_command,
                 claim: Callable[[JobSpec, datetime], str | None] | None = None) -> None:
        """`claim(spec, now)`: None when this server may start the run due now, else who
        has (several servers sharing the jobs through Redis)."""
        self.folder = folder
        self.claim = claim
        self.concurrency = concurrency
        self.grace = grace
        self.log = log
        self.command = command
        self.entries: dict[Path, Entry] = {}
        self.orphans: list[tuple[Entry, Child]] = []   # runs of job files since removed
        self.stopping = threading.Event()

    # -- the folder --------------------------------------------------------------
    def scan(self, now: datetime) -> None:
        if not self.folder.is_dir():
            raise ArchiveError(f"{self.folder} is not a folder of job files")
        present = set(job_files(self.folder))
        for path in sorted(set(self.entries) - present):
            entry = self.entries.pop(path)
            self.log("removed", {"file": str(path), "job": entry.spec.name if entry.spec else None,
                                 "running": entry.child is not None})
            if entry.child is not None:
                self.orphans.append((entry, entry.child))
        for path in sorted(present):
            fingerprint = file_fingerprint(path)
            old = self.entries.get(path)
            if old is not None and old.fingerprint == fingerprint:
                continue
            try:
                entry = self._load(path, fingerprint, now, old)
            except Exception as exc:  # noqa: BLE001 - one odd file must not hide the others
                problem = f"internal error: {type(exc).__name__}: {exc}"
                self.log("invalid", {"file": str(path), "problems": [problem]})
                entry = Entry(path, fingerprint, None, problems=[problem])
            if old is not None:
                entry.child = old.child
            self.entries[path] = entry

    def _load(self, path: Path, fingerprint: str, now: datetime, old: Entry | None) -> Entry:
        try:
            spec, problems = parse_job(path)
            problems = [p.render(path) for p in problems]
        except ArchiveError as exc:
            spec, problems = None, [str(exc)]
        entry = Entry(path, fingerprint, spec, problems=problems)
        if spec is None:
            self.log("invalid", {"file": str(path), "problems": problems})
            return entry
        if spec.schedule is None:
            self.log("unscheduled", {"file": str(path), "job": spec.name})
            return entry
        try:
            preflight(spec)
        except JobFileError as exc:
            # Scheduled all the same: the key or the store may come back before it is due.
            self.log("warning", {"file": str(path), "job": spec.name,
                                 "problems": [p.render(path) for p in exc.problems]})
        if old is None:
            entry.next_due = first_due(spec, self._last_run(spec), now)
        else:
            entry.next_due = spec.schedule.next_after(now)
        self.log("loaded" if old is None else "changed",
                 {"file": str(path), "job": spec.name, "schedule": spec.schedule.describe(),
                  "next_due": utctime.seconds(entry.next_due)})
        return entry

    def _last_run(self, spec: JobSpec):
        try:
            return JobState(open_store(spec.store, store_options(spec)), spec.name).last_run()
        except ArchiveError as exc:
            self.log("store-error", {"job": spec.name, "error": str(exc)})
            return None

    # -- runs --------------------------------------------------------------------
    def running(self) -> int:
        return sum(1 for e in self.entries.values() if e.child) + len(self.orphans)

    def start_due(self, now: datetime) -> None:
        due = sorted((e for e in self.entries.values() if e.next_due and e.next_due <= now),
                     key=lambda e: e.next_due)
        for entry in due:
            if entry.child is not None:
                self.log("skipped", {"job": entry.spec.name, "reason": "the previous run is still going"})
                entry.next_due = entry.spec.schedule.next_after(now)
                continue
            if self.running() >= self.concurrency:
                return   # stays due: starts when a slot frees, once, however late
            taken = self.claim(entry.spec, now) if self.claim is not None else None
            if taken is not None:
                entry.next_due = entry.spec.schedule.next_after(now)
                self.log("taken", {"job": entry.spec.name, "by": taken,
                                   "next_due": utctime.seconds(entry.next_due)})
                continue
            output, errors = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            process = subprocess.Popen(
                self.command(entry.path), stdout=output, stderr=errors, stdin=subprocess.DEVNULL,
                start_new_session=True,   # terminal signals go to us; we decide for children
            )
            entry.child = Child(process, output, errors, now, entry.path)
            entry.next_due = entry.spec.schedule.next_after(now)
            self.log("started", {"job": entry.spec.name, "pid": process.pid,
                                 "next_due": utctime.seconds(entry.next_due)})

    def reap(self) -> None:
        for entry in list(self.entries.values()):
            if entry.child is not None and entry.child.process.poll() is not None:
                self._finished(entry.spec.name if entry.spec else str(entry.path), entry.child)
                entry.child = None
        for pair in list(self.orphans):
            entry, child = pair
            if child.process.poll() is not None:
                self._finished(entry.spec.name if entry.spec else str(entry.path), child)
                self.orphans.remove(pair)

    def _finished(self, job: str, child: Child) -> None:
        child.output.seek(0)
        raw = child.output.read()
        child.output.close()
        child.errors.seek(0)
        said = child.errors.read().decode("utf-8", "replace")
        child.errors.close()
        if said:
            sys.stderr.write(said)    # the run's own messages, for the service's log
            sys.stderr.flush()
        code = child.process.returncode
        try:
            outcome = json.loads(raw) if raw.strip() else {}
        except ValueError:
            outcome = {}
        capture = outcome.get("capture") or {}
        self.log("finished", {
            "job": job, "exit": code, "status": outcome.get("status") or exit_meaning(code),
            "capture_id": capture.get("capture_id"), "pages": capture.get("pages"),
            "resumed": outcome.get("resumed") or None,
            "error": outcome.get("error") or (said.strip().splitlines() or [None])[-1],
            "changes": (outcome.get("changes") or {}).get("counts"),
        })

    def children(self) -> list[Child]:
        return [e.child for e in self.entries.values() if e.child] + [c for _, c in self.orphans]

    # -- the loop ----------------------------------------------------------------
    def serve(self) -> None:
        self.log("serving", {"folder": str(self.folder), "concurrency": self.concurrency})
        while not self.stopping.is_set():
            now = utctime.now()
            try:
                self.reap()
                self.scan(now)
                self.start_due(now)
            except Exception as exc:  # noqa: BLE001 - a daemon logs and carries on
                self.log("error", {"error": f"{type(exc).__name__}: {exc}"})
            waits = [RESCAN_SECONDS] + [
                (e.next_due - now).total_seconds() for e in self.entries.values() if e.next_due
            ]
            self.stopping.wait(max(0.05, min(waits)))
        self.shutdown()

    def shutdown(self) -> None:
        running = self.children()
        if running:
            self.log("stopping", {"running": len(running), "grace_seconds": self.grace})
        deadline = time.monotonic() + self.grace
        while self.children() and time.monotonic() < deadline:
            time.sleep(0.1)
            self.reap()
        for child in self.children():
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        # A run checkpoints within seconds of SIGTERM; one that does not is killed, and
        # its lock is taken over by the next run (its process is gone).
        for child in self.children():
            try:
                child.process.wait(timeout=CHECKPOINT_SECONDS)
            except subprocess.TimeoutExpired:
                self.log("killed", {"pid": child.process.pid, "file": str(child.path)})
                child.process.kill()
                child.process.wait()
        self.reap()
        self.log("stopped", {})


def exit_meaning(code: int | None) -> str:
    """The status of a run that exited with `code` (`jobs run`'s exit codes)."""
    return {0: "ok", 1: "failed", 2: "could not run", 3: "already running",
            143: "interrupted"}.get(code, f"exit {code}")


def install_stop_handlers(scheduler: Scheduler) -> None:
    def stop(signum, frame) -> None:
        scheduler.stopping.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def log_line(as_json: bool) -> Callable[[str, dict], None]:
    """A logger printing one line per event to stdout (JSON lines with --json)."""
    def log(event: str, data: dict) -> None:
        stamp = utctime.seconds()
        if as_json:
            print(json.dumps({"time": stamp, "event": event, **data}, ensure_ascii=False), flush=True)
            return
        details = "  ".join(f"{k}={_plain(v)}" for k, v in data.items() if v not in (None, [], {}))
        print(f"{stamp} {event:<11} {details}".rstrip(), flush=True)
    return log


def _plain(value) -> str:
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items() if v)
    return str(value)

