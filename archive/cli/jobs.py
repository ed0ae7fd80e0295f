"""`archive jobs check|run|serve|status`: scheduled captures from TOML job files.

`jobs run` exits 0 when the capture is stored, 1 when the run failed (recorded, work
folder kept) or something needs a person (its custody record is incomplete, the
previous capture cannot be read, an earlier run's capture could not be finished or
stored), 2 when the job file or its key or
store is unusable (nothing started), 3 when another run of the job holds its lock,
143 when stopped by SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

from archive import utctime
from archive.cli.common import Progress, at_least, human_bytes, print_json, note_key_curve
from archive.cli.capture_result import print_capture_result
from archive.cli.sigterm import stop_on_sigterm
from archive.cli.common import duration as duration_arg
from archive.errors import ArchiveError
from archive.jobs.dispatch import Dispatch
from archive.redisconn import REDIS_ENV, redis_url
from archive.jobs.lock import JobBusy
from archive.jobs.preflight import part_problems, preflight
from archive.jobs.runner import Outcome, Terminated, run_job
from archive.jobs.scheduler import Scheduler, exit_meaning, install_stop_handlers, log_line
from archive.jobs.spec import JobFileError, JobSpec, job_part, load_job
from archive.jobs.status import first_due, job_files, job_status

EXIT_FAILED, EXIT_BAD, EXIT_BUSY, EXIT_TERMINATED = 1, 2, 3, 143


def register(sub) -> None:
    p = sub.add_parser("jobs", help="scheduled captures from job files (check, run, serve, status)")
    jobs = p.add_subparsers(dest="jobs_command", metavar="ACTION")
    jobs.required = True

    check = jobs.add_parser("check", help="validate job files: keys, schedule, signing key, store")
    check.add_argument("files", nargs="+", metavar="JOBFILE|DIR",
                       help="job files, or folders of them (*.toml)")
    check.add_argument("--offline", action="store_true",
                       help="check the file only, not its signing key and store")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=run_check)

    run = jobs.add_parser("run", help="run a job once now (for cron, systemd timers, CronJobs)")
    run.add_argument("file", metavar="JOBFILE")
    run.add_argument("--no-notify", action="store_true", help="do not send the job's notification")
    run.add_argument("--json", action="store_true", help="the run's outcome as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(run=run_run)

    serve = jobs.add_parser("serve", help="run every job file in a folder on its schedule")
    serve.add_argument("folder", metavar="DIR")
    serve.add_argument("--concurrency", type=at_least(1), default=2,
                       help="at most N captures at once (default 2)")
    serve.add_argument("--grace", type=duration_arg, default=60.0,
                       help="on SIGTERM, let running captures finish this long before "
                            "stopping them (default 60s)")
    serve.add_argument("--json", action="store_true", help="log JSON lines")
    serve.add_argument("--redis", metavar="URL",
                       help=f"share the jobs with other `jobs serve` processes through Redis: each "
                            f"due run is started by one of them (default: ${REDIS_ENV})")
    serve.set_defaults(run=run_serve)

    status = jobs.add_parser("status", help="last run and next due time of each job")
    status.add_argument("target", nargs="?", default=".", metavar="DIR|JOBFILE",
                        help="a folder of job files or one job file (default: .)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=run_status)


def _print_problems(error: JobFileError) -> None:
    for problem in error.problems:
        print(problem.render(error.path), file=sys.stderr)


def _problem_rows(error: JobFileError) -> list[dict]:
    return [{"file": str(error.path), "line": p.line, "message": p.message} for p in error.problems]


def _check_one(path: Path, offline: bool) -> tuple[JobSpec | None, list[dict]]:
    try:
        return _checked(path, offline), []
    except JobFileError as exc:
        return None, _problem_rows(exc)
    except ArchiveError as exc:
        return None, [{"file": str(path), "line": None, "message": str(exc)}]


def _checked(path: Path, offline: bool) -> JobSpec:
    try:
        spec = load_job(path)
    except JobFileError as exc:
        part = None if offline else job_part(path)
        if part is not None:    # every problem in one pass: key and store too, though others remain
            exc.problems = sorted(exc.problems + part_problems(part), key=lambda p: p.line or 0)
        raise
    if not offline:
        preflight(spec)
    return spec


def run_check(args) -> int:
    results = []
    paths = [path for name in args.files for path in job_files(Path(name))]
    for path in paths:
        spec, problems = _check_one(path, args.offline)
        entry = {"file": str(path), "ok": not problems, "problems": problems}
        if spec is not None:
            due = first_due(spec, None, utctime.now())
            entry.update(job=spec.name, schedule=spec.schedule.describe() if spec.schedule else None,
                         next_due=utctime.seconds(due) if due else None)
        results.append(entry)
    if args.json:
        print_json(results)
    else:
        for entry in results:
            for p in entry["problems"]:
                print(f"{p['file']}:{p['line']}: {p['message']}" if p["line"] else
                      f"{p['file']}: {p['message']}")
            if entry["ok"]:
                when = f", next run {entry['next_due']}" if entry["next_due"] else \
                    " (no schedule: run it from cron, a systemd timer or a CronJob)"
                print(f"{entry['file']}: ok: job {entry['job']}"
                      + (f", {entry['schedule']}" if entry["schedule"] else "") + when)
    if not results:
        raise ArchiveError(f"no job files (*.toml) in {', '.join(args.files)}")
    return 0 if all(e["ok"] for e in results) else EXIT_BAD


def _not_run(args, error: str, code: int, bad_file: JobFileError | None = None) -> int:
    """A run that did not take place: why on stderr (each problem of a bad job file with
    its line) and, with --json, as JSON on stdout too (with the status `jobs serve` logs
    for that exit code), so a script reading stdout learns why."""
    if bad_file is not None:
        _print_problems(bad_file)
    else:
        print(f"archive: {error}", file=sys.stderr)
    if args.json:
        print_json({"file": args.file, "status": exit_meaning(code), "error": error,
                    "problems": _problem_rows(bad_file) if bad_file else [], "exitCode": code})
    return code


def run_run(args) -> int:
    try:
        spec = load_job(Path(args.file))
        signer, store = preflight(spec)
    except JobFileError as exc:
        return _not_run(args, "the job file has problems", EXIT_BAD, bad_file=exc)
    except ArchiveError as exc:      # an unreadable key, an unreachable store: nothing started
        return _not_run(args, str(exc), EXIT_BAD)
    note_key_curve(signer)
    progress = Progress(not args.quiet and not args.json)

    def on_progress(stats, queued: int) -> None:
        progress.update(f"job {spec.name}: pages {stats.pages}  queued {queued}  "
                        f"failed {stats.failed}  {human_bytes(stats.bytes)}", stats.bytes)

    try:
        with stop_on_sigterm(Terminated):
            outcome = run_job(spec, signer, store, on_progress, send=not args.no_notify)
    except JobBusy as exc:
        return _not_run(args, str(exc), EXIT_BUSY)
    except Terminated:
        return _not_run(args, f"job {spec.name} stopped by SIGTERM; the run "
                        "is recorded as interrupted and what it captured is kept in its work "
                        "folder", EXIT_TERMINATED)
    finally:
        progress.done()
    if args.json:
        print_json(outcome.to_dict())
    else:
        _print_outcome(outcome)
    # A stored capture whose custody record is incomplete is not a clean run either.
    return 0 if outcome.status == "ok" and not outcome.problems else EXIT_FAILED


def _print_outcome(outcome: Outcome) -> None:
    if outcome.took_over:
        print(f"lock     taken over from run {outcome.took_over['run_id']} on "
              f"{outcome.took_over['host']}: {outcome.took_over['reason']}")
    for left in outcome.unfinished:
        if left.get("stored"):
            print(f"stored   {left['stored']}: an earlier run's capture, sealed but not stored "
                  "then; it verifies and is stored now")
        elif left.get("resumed"):
            print(f"resumed  {left['capture_id']}: an earlier run's capture, {left['state']}; "
                  "this run finished it" + (f", but {left['not_verified']}" if left.get("not_verified") else ""))
        elif left.get("not_resumed"):
            print(f"left     {left['path']}: an earlier run's capture, {left['state']}; "
                  f"it could not be finished: {left['not_resumed']}")
        else:
            why = f": {left['not_stored']}" if left.get("not_stored") else " (kept)"
            print(f"left     {left['path']}: an earlier run's capture, {left['state']}{why}")
    c = outcome.capture
    if outcome.status != "ok":
        print(f"job      {outcome.job}: run {outcome.run_id} FAILED: {outcome.error}")
    else:
        print(f"job      {outcome.job}: run {outcome.run_id}")
    if c is not None:
        print_capture_result(c, dedup_against=outcome.dedup_against)
    changes = outcome.changes or {}
    if changes.get("error"):
        print(f"changes  {changes['error']}")
    elif changes:
        for note in changes.get("notes", []):
            print(f"note     {note}")
        for change in changes.get("changes", []):
            print(f"changes  {change['finding']}")
        for change in changes.get("uncertain", []):
            print(f"unknown  {change['finding']}")
        if not changes.get("changes") and not changes.get("uncertain"):
            print(f"changes  none since {outcome.previous_capture}")
    for problem in outcome.problems:
        print(f"warning  {problem}", file=sys.stderr)
    if outcome.lock_lost_to:
        print(f"warning  the job's lock was taken over during this run by {outcome.lock_lost_to}")
    for channel, sent in (outcome.notify or {}).items():
        if not sent.get("ok"):
            print(f"warning  notification by {channel} failed: {sent.get('error')}", file=sys.stderr)


def run_serve(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise ArchiveError(f"{folder} is not a folder of job files")
    if args.concurrency < 1:
        raise ArchiveError("--concurrency must be at least 1")
    url = redis_url(args.redis)
    claim = Dispatch(url).claim if url else None
    scheduler = Scheduler(folder, args.concurrency, args.grace, log_line(args.json), claim=claim)
    install_stop_handlers(scheduler)
    scheduler.serve()
    return 0


def run_status(args) -> int:
    target = Path(args.target)
    if not target.exists():
        raise ArchiveError(f"no such job file or folder: {target}")
    rows = [job_status(path) for path in job_files(target)]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no job files (*.toml) in {target}")
    for row in rows:
        if "problems" in row:
            print(f"{row['file']}: INVALID")
            for problem in row["problems"]:
                print(f"  {problem}")
            continue
        last = row.get("last_run")
        print(f"{row['job']}  ({row['file']})")
        if last is None:
            print("  last run   never" + (f" (store: {row['store_error']})" if row.get("store_error") else ""))
        else:
            started = (last["started"] or "?")[:19] + ("Z" if last["started"] else "")
            line = f"  last run   {started}  {last['status'].upper()}"
            if last.get("capture_id"):
                line += (f"  capture {last['capture_id']}{' (resumed)' if last.get('resumed') else ''}"
                         f"  {last['pages']} pages  "
                         f"{human_bytes(last['bytes'] or 0)}  {last['failures']} failures")
            if last.get("error"):
                line += f"  ({last['error']})"
            print(line)
            if last.get("changes"):
                # transferOnly pages are counted with the unchanged ones: said as a part of them
                counts = ", ".join(f"{n} {k}" for k, n in last["changes"].items()
                                   if n and k != "transferOnly")
                if last["changes"].get("transferOnly"):
                    counts += (f" ({last['changes']['transferOnly']} of them sent with other "
                               "chunking or compression)")
                print(f"  changes    {counts or 'none'}")
        print(f"  next due   {row['next_due'] or 'not scheduled (run by cron, a timer or a CronJob)'}")
    return 0
