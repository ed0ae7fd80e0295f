"""Job files and helpers for the jobs tests."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import tool
from tests.site import Site


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))   # a JSON string is a valid TOML basic string


def job_text(top: dict, **tables: dict) -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for table, values in tables.items():
        lines += ["", f"[{table}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_job(folder: Path, name: str, seeds: list[str], key: Path | None, store: Path,
              extra_top: dict | None = None, **tables: dict) -> Path:
    """A job file capturing `seeds` into `store`, signed with `key` (passphrase from
    ARCHIVE_KEY_PASSPHRASE), work folder beside the store."""
    top = {"name": name, "seeds": seeds, "store": str(store), "work_dir": str(store.parent / "work")}
    top.update(extra_top or {})
    signing = {"key": str(key), "passphrase_env": "ARCHIVE_KEY_PASSPHRASE"} if key else {"unsigned": True}
    tables = {"crawl": {"depth": 2, "scope": "prefix"}, "signing": signing, **tables}
    path = folder / f"{name}.toml"
    path.write_text(job_text(top, **{k: v for k, v in tables.items() if v is not None}))
    return path


def changing_site() -> Site:
    """Version 1 of a small site: a home page linking a statement and an old page."""
    site = Site()
    site.add("/logo.png", b"\x89PNG logo", content_type="image/png")
    site.html("/", "Home", '<img src="/logo.png"><a href="/statement">Statement</a> <a href="/old">Old</a>')
    site.html("/statement", "Statement", "<p>We did nothing wrong.</p>")
    site.html("/old", "Old news", "<p>An old report.</p>")
    return site


def change_site(site: Site) -> None:
    """Version 2: the statement edited (and now linking a new page), the old page gone."""
    site.html("/statement", "Statement (updated)",
              '<p>We regret what happened.</p><a href="/new">Correction</a>')
    site.add("/old", "<html><body>not found</body></html>", status=404)
    site.html("/new", "Correction", "<p>A correction.</p>")


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    """Poll until predicate() is truthy (generous timeout: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def run_records(store: Path, job: str, kind: str) -> list[Path]:
    return sorted((store / "jobs" / job / "runs").glob(f"*/*/*/*.{kind}.json"))


def race_for_the_lock(store, runs: int) -> None:
    """`runs` threads race for one job's lock in `store`: exactly one wins, and the lock
    is free again once the winner releases it."""
    import threading

    from archive.jobs.lock import JobBusy, JobLock

    winners, losers = [], []
    barrier = threading.Barrier(runs)

    def attempt(n):
        lock = JobLock(store, "race", f"run-{n}", 600)
        barrier.wait()
        try:
            lock.acquire()
            winners.append(lock)
        except JobBusy:
            losers.append(n)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == runs - 1
    assert JobLock(store, "race", "x", 600).current().run_id == winners[0].run_id
    winners[0].release()
    JobLock(store, "race", "next", 600).acquire()   # free again once released


def start_run(job, tmp_path):
    """`archive jobs run` in its own process (so it can be signalled or killed)."""
    return subprocess.Popen([tool("archive"), "jobs", "run", str(job), "--json", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)


def break_store(store: Path, aside: Path | None = None) -> None:
    """A store that cannot take a capture: a file where its captures folder is (root
    writes anywhere, but nothing goes below a file). Its jobs/ folder (run records, the
    lock) still works. The captures already stored are moved to `aside`, if given."""
    store.mkdir(parents=True, exist_ok=True)
    if aside is not None:
        (store / "captures").rename(aside)
    (store / "captures").write_text("the store is broken")


def mend_store(store: Path, aside: Path | None = None) -> None:
    """The store back as break_store found it."""
    (store / "captures").unlink()
    if aside is not None:
        aside.rename(store / "captures")
