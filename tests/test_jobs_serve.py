"""`archive jobs serve DIR` as a real process: schedules, new files, catch-up, SIGTERM."""

import json
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

from archive.jobs.lock import JobLock
from archive.utctime import micros as iso
from archive.jobs.schedule import parse_schedule
from archive.jobs.spec import load_job
from archive.jobs.state import JobState, RunRecord, new_run_id
from archive.jobs.status import first_due
from archive.store.local import LocalStore
from tests.conftest import tool
from tests.jobfiles import run_records, wait_for, write_job


def start_serve(jobs, tmp_path, *options):
    """`archive jobs serve` in its own process; stderr goes to a file (read it with .err())."""
    err = open(tmp_path / "serve.err", "w+")
    process = subprocess.Popen([tool("archive"), "jobs", "serve", str(jobs), "--json", *options],
                               stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp_path)
    return process, Log(process)


def stop_serve(process, log, tmp_path) -> str:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    log.thread.join(timeout=10)
    return (tmp_path / "serve.err").read_text()


class Log:
    """The scheduler's JSON lines, read as they come."""

    def __init__(self, process):
        self.events: list[dict] = []
        self.other: list[str] = []      # anything that is not a JSON line (there should be none)
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.other.append(line)

    def of(self, event, job=None):
        return [e for e in list(self.events) if e["event"] == event and (job is None or e.get("job") == job)]


def test_serve_runs_jobs_on_schedule_picks_up_new_files_and_stops_on_sigterm(key, site, tmp_path):
    store = tmp_path / "store"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write_job(jobs, "fast", [site.url("/about")], key, store, extra_top={"schedule": "*/2 * * * * *"})
    # A yearly job whose last run was long ago: one catch-up run at start, not a storm.
    yearly = write_job(jobs, "yearly", [site.url("/news/3")], key, store, extra_top={"schedule": "0 0 1 1 *"})
    old_run = new_run_id(datetime(2020, 6, 1, tzinfo=timezone.utc))
    JobState(LocalStore(store), "yearly").record_start(old_run, {"started": iso(datetime(2020, 6, 1, tzinfo=timezone.utc))})
    (jobs / "notes.txt").write_text("not a job file")

    serve, log = start_serve(jobs, tmp_path, "--concurrency", "1")
    try:
        wait_for(lambda: len(run_records(store, "fast", "result")) >= 2, what="two runs of the fast job")
        wait_for(lambda: run_records(store, "yearly", "result"), what="the yearly job's catch-up run")

        # a job file added while serving is picked up without a restart
        write_job(jobs, "added", [site.url("/news/1")], key, store, extra_top={"every": "2s"})
        wait_for(lambda: run_records(store, "added", "result"), what="a run of the added job")

        # a removed job file stops being scheduled
        (jobs / "fast.toml").unlink()
        wait_for(lambda: log.of("removed"), what="the removal to be noticed")
        removed_at = len(log.events)
        runs_of_added = len(run_records(store, "added", "result"))
        wait_for(lambda: len(run_records(store, "added", "result")) >= runs_of_added + 2,
                 what="two more runs of the added job")
        assert not [e for e in log.events[removed_at:] if e["event"] == "started" and e["job"] == "fast"]
    finally:
        err = stop_serve(serve, log, tmp_path)
    assert serve.returncode == 0, err
    assert log.events[-1]["event"] == "stopped"
    assert "Traceback" not in err and log.other == []

    assert len(log.of("started", "yearly")) == 1
    assert run_records(store, "yearly", "result") and len(run_records(store, "yearly", "start")) == 2
    # every run that started finished ok, one at a time (--concurrency 1)
    running = 0
    for event in log.events:
        running += {"started": 1, "finished": -1}.get(event["event"], 0)
        assert 0 <= running <= 1
    assert running == 0
    finished = log.of("finished")
    assert finished and all(e["status"] == "ok" and e["exit"] == 0 for e in finished)
    # nothing left holding a lock
    for job in ("fast", "yearly", "added"):
        holder = JobLock(LocalStore(store), job, "", 600).current()
        assert holder is None or holder.released
    # status tells the last run and the next due time of each job still in the folder
    rows = json.loads(subprocess.run([tool("archive"), "jobs", "status", str(jobs), "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    assert {r["job"] for r in rows} == {"yearly", "added"}
    added = next(r for r in rows if r["job"] == "added")
    assert added["last_run"]["status"] == "ok" and added["last_run"]["pages"] == 3
    assert added["next_due"] is not None
    yearly_row = next(r for r in rows if r["job"] == "yearly")
    assert yearly_row["next_due"].endswith("-01-01T00:00:00Z")
    assert load_job(yearly).name == "yearly"


def test_sigterm_stops_a_long_capture_after_the_grace_time(key, tmp_path):
    from tests.site import Site, SiteServer, slow
    site = Site()
    site.html("/", "Home", '<a href="/slow">slow</a>')
    site.add("/slow", handler=slow(60))
    store = tmp_path / "store"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    with SiteServer(site) as server:
        write_job(jobs, "long", [server.url("/")], key, store, extra_top={"every": "1s"})
        serve, log = start_serve(jobs, tmp_path, "--grace", "1s")
        try:
            wait_for(lambda: "/slow" in site.requests, what="the slow page to be requested")
        finally:
            err = stop_serve(serve, log, tmp_path)
    assert serve.returncode == 0, err
    assert [e["status"] for e in log.of("finished")] == ["interrupted"]
    result = json.loads(run_records(store, "long", "result")[0].read_text())
    assert result["status"] == "interrupted"
    assert list((tmp_path / "work" / "jobs" / "long").glob("*/*.wacz.open"))
    holder = JobLock(LocalStore(store), "long", "", 600).current()
    assert holder.released


def test_catch_up_is_one_run_however_many_were_missed():
    spec = type("Spec", (), {"schedule": parse_schedule("0 * * * *", None, None)})()
    now = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)

    def last(hours_ago):
        started = iso(now - timedelta(hours=hours_ago))
        return RunRecord("r", {"started": started})

    assert first_due(spec, last(72), now) == now                  # 72 missed: run once now
    assert first_due(spec, last(0.25), now) == datetime(2026, 3, 1, 13, 0, tzinfo=timezone.utc)
    assert first_due(spec, None, now) == datetime(2026, 3, 1, 13, 0, tzinfo=timezone.utc)


def test_a_changed_job_file_takes_effect_and_an_invalid_one_stops_being_scheduled(key, tmp_path):
    """The folder scan itself (children are `true`): a changed schedule applies at once,
    a file made invalid is no longer run, and a run already going is still reaped."""
    from archive.jobs.scheduler import Scheduler

    store = tmp_path / "store"
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    path = write_job(jobs, "edited", ["http://127.0.0.1:9/"], key, store, extra_top={"schedule": "0 0 1 1 *"})
    events = []
    scheduler = Scheduler(jobs, 1, 0, lambda event, data: events.append((event, data)),
                          command=lambda p: ["true"])
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    scheduler.scan(now)
    assert scheduler.entries[path].next_due == datetime(2027, 1, 1, tzinfo=timezone.utc)

    write_job(jobs, "edited", ["http://127.0.0.1:9/"], key, store, extra_top={"every": "10s"})
    scheduler.scan(now)
    assert events[-1][0] == "changed" and events[-1][1]["schedule"] == "every 10s"
    assert scheduler.entries[path].next_due == now + timedelta(seconds=10)
    scheduler.start_due(now + timedelta(seconds=10))
    child = scheduler.entries[path].child
    assert child is not None and events[-1][0] == "started"

    path.write_text(path.read_text().replace("every", "evry"))
    scheduler.scan(now + timedelta(seconds=11))
    assert events[-1][0] == "invalid" and "unknown key 'evry'" in events[-1][1]["problems"][0]
    assert scheduler.entries[path].next_due is None and scheduler.entries[path].child is child
    child.process.wait(timeout=30)
    scheduler.reap()
    assert events[-1][0] == "finished" and scheduler.running() == 0
    scheduler.start_due(now + timedelta(days=400))
    assert scheduler.running() == 0


def test_job_files_that_break_loading_do_not_hide_the_others(key, tmp_path):
    """A job file nested deeper than Python recurses (hostile, or a generator gone wrong)
    broke the TOML parser itself (an internal error); a named pipe among the job files held
    the scan (and `jobs check`) for ever, waiting for a writer. Each is reported invalid in
    one line, and the job beside them is scheduled all the same."""
    import os
    from archive.jobs.scheduler import Scheduler

    jobs = tmp_path / "jobs"
    jobs.mkdir()
    odd = write_job(jobs, "a-odd", ["http://127.0.0.1:9/"], key, tmp_path / "store", extra_top={"every": "10s"})
    fine = write_job(jobs, "b-fine", ["http://127.0.0.1:9/"], key, tmp_path / "store", extra_top={"every": "10s"})
    # tomllib reads an array in an array by calling itself: each level costs at least one
    # frame, so this many levels exceed the recursion limit wherever the scan is called from
    depth = sys.getrecursionlimit()
    odd.write_text(f"deep = {'[' * depth}{']' * depth}\n" + odd.read_text())
    pipe = jobs / "c-pipe.toml"
    os.mkfifo(pipe)
    events = []
    scheduler = Scheduler(jobs, 1, 0, lambda event, data: events.append((event, data)),
                          command=lambda p: ["true"])
    # on a thread of its own: a scan held by the pipe fails the test instead of hanging it
    scan = threading.Thread(target=scheduler.scan, args=(datetime(2026, 3, 1, tzinfo=timezone.utc),), daemon=True)
    scan.start()
    scan.join(30)
    assert not scan.is_alive(), "the scan is held by the named pipe"
    assert scheduler.entries[fine].next_due is not None
    assert scheduler.entries[odd].spec is None
    invalid = {data["file"]: data["problems"] for event, data in events if event == "invalid"}
    assert sorted(invalid) == [str(odd), str(pipe)], events
    assert invalid[str(odd)] == [f"{odd}: not valid TOML: arrays or tables nested too deeply to read"]
    assert len(invalid[str(pipe)]) == 1 and "not a regular file" in invalid[str(pipe)][0], invalid
    assert not any("internal error" in p for problems in invalid.values() for p in problems)
