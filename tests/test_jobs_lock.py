"""One run of a job at a time: the lock in the store, its takeover, SIGTERM, kill -9."""

import json
import os
import signal
import subprocess
from datetime import timedelta

import pytest

from archive.jobs.lock import JobBusy, JobLock
from archive.utctime import micros as iso, now as utcnow, parse_micros as parse_iso
from archive.store.local import LocalStore
from tests.jobfiles import race_for_the_lock, run_records, start_run, wait_for, write_job
from tests.site import Site, SiteServer, slow
from tests.warcs import member, pages


@pytest.fixture
def slow_site():
    """A home page whose one link answers only after a minute: a run that is busy."""
    site = Site()
    site.html("/", "Home", '<a href="/slow">slow</a>')
    site.add("/slow", handler=slow(60))
    with SiteServer(site) as server:
        yield server


def wait_until_busy(site, store, job_name):
    wait_for(lambda: run_records(store, job_name, "start"), what="the run's start record")
    wait_for(lambda: "/slow" in site.site.requests, what="the slow page to be requested")


def kill_a_busy_run(site, key, tmp_path, name):
    """A job file for `site`, and a run of it killed with SIGKILL in the middle of its
    capture; the slow page answers at once afterwards. Returns (job file, killed process)."""
    store = tmp_path / "store"
    job = write_job(tmp_path, name, [site.url("/")], key, store)
    victim = start_run(job, tmp_path)
    try:
        wait_until_busy(site, store, name)
    finally:
        victim.kill()
        victim.communicate(timeout=60)
    site.site.routes.pop("/slow")
    return job, victim


def test_a_second_run_is_refused_while_the_first_runs_then_sigterm_checkpoints(run, key, slow_site, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "busy", [slow_site.url("/")], key, store)
    first = start_run(job, tmp_path)
    try:
        wait_until_busy(slow_site, store, "busy")
        second = run("jobs", "run", job)
        assert second.code == 3, second
        assert "job busy is already running: run " in second.err and f"pid {first.pid}" in second.err
        assert second.out == ""
        as_json = run("jobs", "run", job, "--json")        # a script reading stdout learns why
        assert as_json.code == 3 and json.loads(as_json.out)["status"] == "already running", as_json
        assert "already running" in json.loads(as_json.out)["error"]
        status = json.loads(run("jobs", "status", job, "--json").out)[0]["last_run"]
        assert status["status"] == "running" and status["host"]
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 143, err
    assert b"stopped by SIGTERM" in err
    # The interrupted run is recorded as such, its capture kept for the next run, and
    # the lock released: the next run starts at once and is told what was left.
    result = json.loads(run_records(store, "busy", "result")[0].read_text())
    assert result["status"] == "interrupted"
    work = tmp_path / "work" / "jobs" / "busy"
    assert list(work.glob("*/*.wacz.open"))
    slow_site.site.routes.pop("/slow")
    again = run("jobs", "run", job, "--json")
    assert again.code == 0, again
    outcome = json.loads(again.out)
    assert outcome["took_over"] is None
    assert [u["state"] for u in outcome["unfinished"]] == ["interrupted before it was sealed"]
    # ... and finishes it: the checkpoint SIGTERM left is this run's capture.
    assert outcome["resumed"] is True
    assert outcome["capture"]["capture_id"] == outcome["unfinished"][0]["capture_id"]


def test_a_lock_left_by_a_killed_run_is_taken_over_and_that_is_recorded(run, key, slow_site, tmp_path):
    store = tmp_path / "store"
    job, victim = kill_a_busy_run(slow_site, key, tmp_path, "killed")
    killed_run = run_records(store, "killed", "start")[0].name.split(".start")[0]

    result = run("jobs", "run", job, "--json")
    assert result.code == 0, result
    outcome = json.loads(result.out)
    taken = outcome["took_over"]
    assert taken["run_id"] == killed_run and taken["pid"] == victim.pid
    assert f"its process {victim.pid}" in taken["reason"] and "no longer running" in taken["reason"]
    # recorded in the store with the new run, and shown to a person
    start = json.loads(run_records(store, "killed", "start")[-1].read_text())
    assert start["took_over"]["run_id"] == killed_run
    status = json.loads(run("jobs", "status", job, "--json").out)[0]
    assert status["last_run"]["status"] == "ok" and status["last_run"]["resumed"] is True
    assert f"capture {outcome['capture']['capture_id']} (resumed)" in run("jobs", "status", job).out
    # the killed run itself is shown as interrupted in the job's history
    from archive.jobs.state import JobState
    from archive.jobs.status import run_summary
    killed = [r for r in JobState(LocalStore(store), "killed").runs() if r.run_id == killed_run]
    lock = JobLock(LocalStore(store), "killed", "", 600)
    assert run_summary(killed[0], lock)["status"] == "interrupted"
    # the killed run's capture folder is found, unfinished
    assert outcome["unfinished"][0]["state"] == "interrupted before it was sealed"


def test_the_next_run_resumes_the_killed_runs_capture(run, key, pubkey, slow_site, tmp_path):
    job, _ = kill_a_busy_run(slow_site, key, tmp_path, "resumed")
    slow_site.site.html("/slow", "Slow", "<p>at last</p>")
    work = tmp_path / "work" / "jobs" / "resumed"
    left = next(work.iterdir()).name
    result = run("jobs", "run", job, "--json")
    assert result.code == 0, result
    outcome = json.loads(result.out)
    # The killed run's capture is this run's capture, finished and stored.
    assert outcome["capture"]["capture_id"] == left and outcome["resumed"] is True
    assert outcome["unfinished"][0]["resumed"] == outcome["capture"]["address"]
    assert not (work / left).exists()
    # Continued, not started again: the home page comes from the killed run's fetch.
    assert slow_site.site.requests.count("/") == 1
    wacz = outcome["capture"]["address"]
    assert {(p["url"], p["status"]) for p in pages(wacz)} == {
        (slow_site.url("/"), 200), (slow_site.url("/slow"), 200)}
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["job"] == "resumed" and len(evidence["resumed"]) == 1
    assert run("verify", wacz, "--trust", pubkey).code == 0
    result_record = json.loads(run_records(tmp_path / "store", "resumed", "result")[-1].read_text())
    assert result_record["resumed"] is True and result_record["capture"]["capture_id"] == left
    # The run after it is a fresh capture again.
    again = json.loads(run("jobs", "run", job, "--json").out)
    assert again["resumed"] is False and again["capture"]["capture_id"] != left
    assert again["unfinished"] == [] and again["previous_capture"] == left


def test_a_capture_damaged_while_it_waited_is_kept_and_reported_not_resumed(run, key, pubkey, slow_site, tmp_path):
    """A reboot can lose data the journal counts as written: the resume checks the kept
    WARC data against the journal's CRC and refuses to seal it; the leftover is kept and
    reported, and the run takes a fresh capture."""
    job, _ = kill_a_busy_run(slow_site, key, tmp_path, "damaged")
    container = next((tmp_path / "work" / "jobs" / "damaged").glob("*/*.wacz.open"))
    data = bytearray(container.read_bytes())
    data[len(data) // 2] ^= 0x01          # inside the WARC data the journal vouches for
    container.write_bytes(bytes(data))
    result = run("jobs", "run", job, "--json")
    assert result.code == 1, result
    outcome = json.loads(result.out)
    left = outcome["unfinished"][0]
    assert outcome["resumed"] is False
    assert "changed on disk after it was journaled" in left["not_resumed"]
    assert [p for p in outcome["problems"]
            if f"{left['capture_id']} could not be finished" in p and "changed on disk" in p]
    assert container.exists(), "the damaged leftover is kept, not thrown away"
    assert run("verify", outcome["capture"]["address"], "--trust", pubkey).code == 0


def foreign_lock(store: LocalStore, job: str, heartbeat_age: float) -> None:
    """A lock held by a process on another machine, last heard of `heartbeat_age` ago."""
    then = iso(utcnow() - timedelta(seconds=heartbeat_age))
    store.put_object(f"jobs/{job}/lock/0000000007.json", json.dumps({
        "run_id": "20250101T000000.000000Z-00000000", "host": "elsewhere", "pid": 4242,
        "started": then, "node": {"host": "elsewhere", "boot": "other-boot", "pidns": "pid:[1]"},
    }).encode())


def test_a_live_lock_on_another_machine_is_respected(run, key, slow_site, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "remote", [slow_site.url("/")], key, store)
    foreign_lock(LocalStore(store), "remote", heartbeat_age=5)
    result = run("jobs", "run", job)
    assert result.code == 3 and "on elsewhere (pid 4242)" in result.err
    assert slow_site.site.requests == []


def test_an_expired_lock_on_another_machine_is_taken_over(run, key, tmp_path):
    store = tmp_path / "store"
    site = Site()
    site.html("/", "Home", "hello")
    with SiteServer(site) as server:
        job = write_job(tmp_path, "expired", [server.url("/")], key, store,
                        run={"lock_expiry": "10m"})
        foreign_lock(LocalStore(store), "expired", heartbeat_age=11 * 60)
        result = run("jobs", "run", job, "--json")
    assert result.code == 0, result
    taken = json.loads(result.out)["took_over"]
    assert taken["host"] == "elsewhere" and "no heartbeat since" in taken["reason"]
    assert "expires after 600s" in taken["reason"]
    # older generations are cleaned up; the newest (ours, released) stays
    keys = sorted(LocalStore(store).list_objects("jobs/expired/lock"))
    assert keys == ["jobs/expired/lock/0000000008.json", "jobs/expired/lock/0000000008.released.json"]


def test_racing_runs_exactly_one_takes_the_lock(tmp_path):
    race_for_the_lock(LocalStore(tmp_path), 8)


def test_a_run_with_a_stale_view_of_the_lock_backs_off(tmp_path):
    store = LocalStore(tmp_path)
    holder = JobLock(store, "view", "holder", 600)
    # generations 1..3 were used and cleaned up; 4 is held now
    for n in range(3):
        lock = JobLock(store, "view", f"old-{n}", 600)
        lock.acquire()
        lock.release()
    holder.acquire()
    assert holder.generation == 4
    late = JobLock(store, "view", "late", 600)
    views = iter([{2: {"beats": [], "released": True, "base": True}}])   # read long ago
    real = late._listing
    late._listing = lambda: next(views, None) or real()
    with pytest.raises(JobBusy) as busy:
        late.acquire()
    assert busy.value.holder.run_id == "holder"
    assert sorted(store.list_objects("jobs/view/lock")) == ["jobs/view/lock/0000000004.json"]


def test_heartbeats_keep_a_long_run_from_looking_stale(tmp_path):
    store = LocalStore(tmp_path)
    lock = JobLock(store, "beat", "long", 600)
    lock.acquire()
    first = lock.current()
    last_beat = parse_iso(first.heartbeat)
    assert lock.stale_reason(first, now=last_beat + timedelta(seconds=599)) is None
    assert "no heartbeat since" in lock.stale_reason(first, now=last_beat + timedelta(seconds=601))
    # the beat thread writes fresh heartbeats (expiry 0.8 s: a beat every 0.2 s)
    lock.expiry = 0.8
    lock.start_heartbeat()
    try:
        wait_for(lambda: lock.current().heartbeat != first.heartbeat, what="a heartbeat")
    finally:
        lock.release()
    beats = [k for k in store.list_objects("jobs/beat/lock") if ".beat-" in k]
    assert beats == []   # the last beat is removed on release
    assert lock.current().released


def test_process_check_knows_a_dead_process(tmp_path):
    from archive.jobs.lock import process_running
    child = subprocess.Popen(["true"])
    child.wait()
    assert not process_running(child.pid)
    assert process_running(os.getpid())


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"run_id": "x"}',
                                  b'{"run_id": "x", "host": "h", "pid": 1, "started": "yesterday"}'])
def test_a_lock_object_that_is_not_a_lock_is_one_clear_error(run, key, tmp_path, body):
    store = tmp_path / "store"
    job = write_job(tmp_path, "odd", ["http://127.0.0.1:9/"], key, store)
    LocalStore(store).put_object("jobs/odd/lock/0000000003.json", body)
    result = run("jobs", "run", job)
    assert result.code == 2, result
    assert "jobs/odd/lock/0000000003.json is not a readable lock; remove it by hand" in result.err
    assert "internal error" not in result.err and not run_records(store, "odd", "start")


@pytest.mark.parametrize("beat", [b"{not json", b"[]", b'{"at": "soon"}'])
def test_a_heartbeat_that_is_not_one_is_one_clear_error(run, key, tmp_path, beat):
    store = tmp_path / "store"
    job = write_job(tmp_path, "beaten", ["http://127.0.0.1:9/"], key, store)
    lock = JobLock(LocalStore(store), "beaten", "holder", 600)
    lock.acquire()
    LocalStore(store).put_object("jobs/beaten/lock/0000000001.beat-00000001.json", beat)
    result = run("jobs", "run", job)
    assert result.code == 2, result
    assert "lock heartbeat jobs/beaten/lock/0000000001.beat-00000001.json is not readable" in result.err
    assert "internal error" not in result.err


def test_run_records_that_are_not_records_do_not_break_status_or_runs(run, key, tmp_path):
    store = tmp_path / "store"
    job = write_job(tmp_path, "records", ["http://127.0.0.1:9/"], key, store, extra_top={"every": "1h"})
    day = utcnow().strftime("%Y/%m/%d")
    run_id = utcnow().strftime("%Y%m%dT%H%M%S.000000Z-00000000")
    LocalStore(store).put_object(f"jobs/records/runs/{day}/{run_id}.start.json", b'{"started": 5}')
    LocalStore(store).put_object(f"jobs/records/runs/{day}/{run_id}.result.json", b"[]")
    status = run("jobs", "status", job, "--json")
    assert status.code == 0, status
    assert json.loads(status.out)[0]["last_run"]["status"] == "unreadable"
