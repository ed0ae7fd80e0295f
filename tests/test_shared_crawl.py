"""A crawl shared through Redis: a coordinator (`capture --redis`) and `archive worker`
processes, with a real redis-server, the generated test site and real processes killed
with SIGKILL."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import BIN, PASSPHRASE
from tests.site import SiteServer, generated_site
from tests.warcs import member, pages, records


PAGES = 24     # pages of the generated site crawled (each with four requisites)


def archive(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "archive"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE, **(env or {})))


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def stored(store: Path) -> list[Path]:
    return [Path(p) for p in sorted(glob.glob(str(store / "captures/*/*/*/*.wacz")))]


def verify(wacz: Path, pubkey: Path) -> None:
    code, out, err = finish(archive("verify", wacz, "--trust", pubkey))
    assert code == 0, out + err


def fetched(wacz: Path) -> Counter:
    """How many response (or revisit) records each URL has."""
    return Counter(r["uri"] for r in records(wacz) if r["type"] in ("response", "revisit"))


def start_workers(n: int, redis_url: str, store: Path, work: Path, *extra) -> list[subprocess.Popen]:
    return [archive("worker", "--redis", redis_url, "--store", store, "--quiet",
                    "--work-dir", work / f"w{i}", *extra) for i in range(n)]


@contextlib.contextmanager
def workers_running(n: int, redis_url: str, store: Path, work: Path, *extra):
    """`n` worker processes for the block; stopped with SIGTERM after it (their exit codes,
    output and errors are then in the list yielded)."""
    workers = start_workers(n, redis_url, store, work, *extra)
    ended: list = []
    try:
        wait_until(lambda: connected_workers(redis_url) >= n, what="the workers to connect")
        yield ended
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        ended += [finish(w, 30) for w in workers]


def connected_workers(redis_url: str) -> int:
    import redis as redis_py
    with redis_py.Redis.from_url(redis_url) as client:
        return sum(1 for c in client.client_list() if c.get("name") == "archive-worker")


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def gsite():
    site = generated_site(PAGES)
    site.delay = 0.05       # a crawl of a few seconds, so that workers join it
    for i in range(PAGES):  # one image the same on every page: revisits, across workers
        site.routes[f"/i/{i}-b.png"].body = b"\x89PNG\r\n\x1a\n the same image on every page"
    with SiteServer(site) as server:
        yield server


def single_process(gsite, key, tmp_path) -> Path:
    code, out, err = finish(archive("capture", gsite.url("/"), "--depth", "9", "--scope", "host",
                                    "--key", key, "--store", tmp_path / "single",
                                    "--work-dir", tmp_path / "work1", "--quiet", "--workers", "8",
                                    "--host-workers", "8"))
    assert code == 0, err
    return stored(tmp_path / "single")[0]


def test_coordinator_and_three_workers_capture_what_one_process_does(
        gsite, key, pubkey, redis_server, tmp_path):
    alone = single_process(gsite, key, tmp_path)
    gsite.site.requests.clear()
    store = tmp_path / "store"
    with workers_running(3, redis_server.url, store, tmp_path / "workers") as ended:
        code, out, err = finish(archive(
            "capture", gsite.url("/"), "--depth", "9", "--scope", "host", "--key", key,
            "--store", store, "--work-dir", tmp_path / "work", "--redis", redis_server.url,
            "--workers", "2", "--host-workers", "8", "--json"))
        assert code == 0, err
    assert all(code == 0 for code, _, _ in ended), ended
    result = json.loads(out)
    (shared,) = stored(store)
    verify(shared, pubkey)

    # the same pages, the same fetches, each once
    assert sorted(p["url"] for p in pages(shared)) == sorted(p["url"] for p in pages(alone))
    counts = fetched(shared)
    assert counts == fetched(alone)
    assert set(counts.values()) == {1} and len(counts) == PAGES * 5 + 1    # + robots.txt
    assert result["pages"] == PAGES and result["failed"] == 0
    # the server answered each URL once: nothing was fetched twice
    assert max(Counter(gsite.site.requests).values()) == 1

    # revisits point at originals the capture holds, whichever worker stored them
    every = records(shared)
    ids = {r["headers"]["WARC-Record-ID"] for r in every if r["type"] == "response"}
    revisits = [r for r in every if r["type"] == "revisit"]
    assert revisits and all(r["headers"]["WARC-Refers-To"] in ids for r in revisits)
    evidence = json.loads(member(shared, "evidence/capture.json"))
    took_part = [w for w in evidence["workers"] if w["fetches"]]
    assert len(took_part) >= 2, evidence["workers"]
    assert sum(w["fetches"] for w in evidence["workers"]) == len(counts) - 1   # robots.txt aside
    # every WARC file in the capture is named as some worker's, with its own warcinfo
    warcs = {n.split("/", 1)[1] for n in __import__("zipfile").ZipFile(shared).namelist()
             if n.startswith("archive/")}
    assert warcs == {f for w in evidence["workers"] for f in w["warcFiles"]}
    infos = [r for r in records(shared) if r["type"] == "warcinfo"]
    assert {w["id"] for w in took_part} <= {
        line.split(": ", 1)[1] for r in infos for line in r["payload"].decode().splitlines()
        if line.startswith("worker: ")}
    # staging and the crawl's keys are gone once the capture is stored
    assert not list((store / "staging").glob("*/*"))
    assert not redis_server.client().keys(f"archive:crawl:{result['capture_id']}:*")
    # the custody ledger names the workers
    ledger = [json.loads(line) for line in (store / "custody/ledger.jsonl").read_text().splitlines()]
    captured = next(e for e in ledger if e.get("event") == "captured")
    assert {w["id"] for w in took_part} <= {w["id"] for w in captured["details"]["workers"]}


def start_coordinator(gsite, key, store, work, redis_url: str, *extra) -> subprocess.Popen:
    """`archive capture --redis` of the whole generated site."""
    return archive("capture", gsite.url("/"), "--depth", "9", "--scope", "host", "--key", key,
                   "--store", store, "--work-dir", work, "--redis", redis_url, *extra)


def crawl_of(client, store: Path) -> str | None:
    """The id of the shared crawl in Redis that stores into `store` (None: none yet)."""
    for capture_id in sorted(client.smembers("archive:crawls")):
        config = client.get(f"archive:crawl:{capture_id}:config")
        if config and json.loads(config)["store"] == str(store):
            return capture_id
    return None


def forget_crawl(client, capture_id: str | None) -> None:
    """Remove a crawl a test left in the shared Redis (workers of later tests would join it)."""
    if capture_id:
        for k in client.scan_iter(match=f"archive:crawl:{capture_id}:*"):
            client.delete(k)
        client.srem("archive:crawls", capture_id)


def everything(gsite, n: int = None) -> set[str]:
    """Every URL of the generated site: pages, their four requisites, robots.txt."""
    n = n or PAGES
    paths = ["/robots.txt"] + ["/" if i == 0 else f"/p/{i}.html" for i in range(n)]
    paths += [p for i in range(n) for p in (f"/s/{i}.css", f"/j/{i}.js", f"/i/{i}-a.png", f"/i/{i}-b.png")]
    return {gsite.url(p) for p in paths}


def the_whole_site_once(gsite, store: Path, pubkey: Path) -> Path:
    """The one stored capture: verified, every URL of the site in it once, all PAGES pages."""
    (wacz,) = stored(store)
    verify(wacz, pubkey)
    counts = fetched(wacz)
    assert set(counts) == everything(gsite) and set(counts.values()) == {1}
    assert len(pages(wacz)) == PAGES
    return wacz


def test_a_worker_killed_mid_crawl_changes_nothing(gsite, key, pubkey, redis_server, tmp_path):
    store = tmp_path / "store"
    client = redis_server.client()
    gsite.site.delay = 0.12      # long enough to see the worker hand over, then hold more
    (doomed,) = start_workers(1, redis_server.url, store, tmp_path / "workers", "--workers", "4")
    wait_until(lambda: connected_workers(redis_server.url) >= 1, what="the worker to connect")
    coordinator = start_coordinator(gsite, key, store, tmp_path / "work", redis_server.url,
        "--workers", "1", "--host-workers", "8", "--lease", "2", "--json")
    try:
        def doomed_holds_urls() -> bool:
            assert coordinator.poll() is None, f"the crawl ended first: {coordinator.communicate()}"
            capture_id = crawl_of(client, store)
            if not capture_id:
                return False
            prefix = f"archive:crawl:{capture_id}:"
            # a hand-over with fetches in it (one may carry only a robots.txt answer)
            handed = [e["worker"]["id"] for e in map(json.loads, client.lrange(prefix + "handovers", 0, -1))
                      if any(g["kind"] in ("page", "requisite") for g in e["groups"])]
            owners = client.hvals(prefix + "lease")      # worker id, space, item
            # it handed something over already, and holds URLs it has not handed over
            return any(w.startswith("w") for w in handed) and any(o.startswith("w") for o in owners)
        wait_until(doomed_holds_urls, what="the worker to hold URLs")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        code, out, err = finish(coordinator)
    finally:
        for process in (doomed, coordinator):
            if process.poll() is None:
                process.kill()
    assert code == 0, err
    shared = the_whole_site_once(gsite, store, pubkey)
    assert json.loads(out)["failed"] == 0
    evidence = json.loads(member(shared, "evidence/capture.json"))
    killed = [w for w in evidence["workers"] if w["id"].startswith("w")]
    assert killed and killed[0]["fetches"] > 0     # what it handed over before it died counts
    # what it fetched and never handed over was fetched again by the coordinator
    assert max(Counter(gsite.site.requests).values()) >= 1


def test_per_host_delay_and_retry_after_hold_across_workers(key, redis_server, tmp_path):
    from tests.site import Site, fails_then
    site = Site()
    site.html("/", "home", "".join(f'<a href="/p{i}">{i}</a>' for i in range(1, 8)))
    for i in range(1, 8):
        site.html(f"/p{i}", f"page {i}", "a page")
    site.add("/p3", handler=fails_then(503, {"Retry-After": "2"}))
    with SiteServer(site) as server:
        store = tmp_path / "store"
        with workers_running(2, redis_server.url, store, tmp_path / "workers"):
            code, out, err = finish(archive(
                "capture", server.url("/"), "--depth", "1", "--scope", "host", "--key", key,
                "--store", store, "--work-dir", tmp_path / "work", "--redis", redis_server.url,
                "--delay", "0.5", "--ignore-robots", "--workers", "4", "--host-workers", "4"))
    assert code == 0, err
    starts = sorted(t for _, t in site.times)
    assert len(starts) == 9                  # /p3 twice: 503, then its retry
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.35, gaps       # 0.5 s apart when claimed; sending jitter is smaller
    # after the 503 with Retry-After: 2, no worker sent anything to the site for 2 s
    busy = min(t for path, t in site.times if path == "/p3")
    after = [t for t in starts if t > busy]
    assert after and after[0] - busy >= 1.6, (busy, after)
    evidence = json.loads(member(stored(store)[0], "evidence/capture.json"))
    assert len([w for w in evidence["workers"] if w["fetches"]]) >= 2, evidence["workers"]


def journal_of(work: Path) -> Path | None:
    found = list(work.glob("*/crawl.jsonl"))
    return found[0] if found else None


def handover_lines(journal: Path | None) -> int:
    return journal.read_bytes().count(b'"t":"handover"') if journal and journal.exists() else 0


def test_redis_killed_mid_crawl_gives_no_capture_and_resume_finishes_it(
        gsite, key, pubkey, own_redis, tmp_path):
    store, work = tmp_path / "store", tmp_path / "work"
    coordinator = start_coordinator(gsite, key, store, work, own_redis.url,
        "--workers", "2", "--host-workers", "8")
    try:
        wait_until(lambda: handover_lines(journal_of(work)) >= 1, what="a first hand-over")
        own_redis.kill()
        code, out, err = finish(coordinator)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "Redis" in err and "archive capture --resume" in err
    assert stored(store) == []                   # nothing complete-looking
    (folder,) = [p for p in work.iterdir() if p.is_dir()]
    assert list((store / "staging").glob("*/*.warc.gz"))      # what was staged is kept

    # another Redis, empty: the crawl is rebuilt there from the journal
    from tests.redisserver import RedisServer
    other = RedisServer(tmp_path / "other-redis").start()
    try:
        code, out, err = finish(archive("capture", "--resume", folder, "--key", key, "--store", store,
                                        "--redis", other.url, "--json"))
    finally:
        other.stop()
    assert code == 0, err
    the_whole_site_once(gsite, store, pubkey)
    assert not (store / "staging").exists() or not list((store / "staging").glob("*/*"))


@pytest.mark.parametrize("fault", ["altered", "missing"])
def test_a_warc_altered_or_missing_in_staging_is_refused(fault, gsite, key, redis_server, tmp_path):
    store, work = tmp_path / "store", tmp_path / "work"
    client = redis_server.client()
    (worker,) = start_workers(1, redis_server.url, store, tmp_path / "workers", "--workers", "4")
    wait_until(lambda: connected_workers(redis_server.url) >= 1, what="the worker to connect")
    # --delay keeps the crawl going for many hand-overs (one each 2 s) after the coordinator
    # is stopped: without it the 24 pages could all be fetched before two more came
    coordinator = start_coordinator(gsite, key, store, work, redis_server.url,
        "--workers", "1", "--host-workers", "8", "--lease", "2", "--delay", "0.1")
    try:
        wait_until(lambda: handover_lines(journal_of(work)) >= 1, what="a first hand-over")
        coordinator.send_signal(signal.SIGSTOP)      # it gathers nothing more for now
        gathered = handover_lines(journal_of(work))
        prefix = f"archive:crawl:{crawl_of(client, store)}:"
        wait_until(lambda: client.llen(prefix + "handovers") > gathered + 1, what="more hand-overs")
        entry = json.loads(client.lindex(prefix + "handovers", gathered + 1))
        staged = store / entry["files"][0]["key"]
        data = bytearray(staged.read_bytes())
        data[len(data) // 2] ^= 0x01
        if fault == "altered":
            staged.write_bytes(bytes(data))
        else:
            staged.unlink()
        coordinator.send_signal(signal.SIGCONT)
        code, out, err = finish(coordinator)
    finally:
        for process in (worker, coordinator):
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.wait()
        forget_crawl(client, crawl_of(client, store))     # stopped, resumable: not by the next test
    assert code == 2, (out, err)
    said = "does not match the SHA-256" if fault == "altered" else "is missing from staging"
    assert said in err and entry["files"][0]["name"] in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert stored(store) == []
    assert staged.exists() == (fault == "altered") and [p for p in work.iterdir() if p.is_dir()]
    assert list((store / "staging").glob("*/*.warc.gz"))       # what was staged is kept


def test_bad_redis_and_workers_are_refused_with_one_line(run, key, site, redis_server, tmp_path):
    from archive.capture.sharedcrawl import CrawlConfig, create_crawl
    from archive.errors import ArchiveError
    from tests.redisserver import free_port
    import redis as redis_py

    base = ["capture", site.url("/"), "--key", key, "--store", tmp_path / "store",
            "--work-dir", tmp_path / "work", "--quiet"]
    for extra, message in [
        (["--redis", "http://127.0.0.1:1/"], "not a Redis URL"),
        (["--redis", f"redis://127.0.0.1:{free_port()}/0"], "cannot reach Redis"),
        (["--processes", "2"], "--processes needs --redis"),
    ]:
        result = run(*base, *extra)
        assert result.code == 2 and message in result.err, result
        assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists() and not (tmp_path / "store" / "captures").exists()

    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True)
    config = CrawlConfig("20261207T000000Z-0badf00d", "0.0.0-other", {"seeds": [site.url("/")]}, "op")
    create_crawl(client, config)
    with pytest.raises(ArchiveError, match="already holds keys"):
        create_crawl(client, config)                   # a Redis not empty in the crawl's keys
    try:
        result = run("worker", "--redis", redis_server.url, "--crawl", config.capture_id,
                     "--store", tmp_path / "store")
        assert result.code == 2 and "one capture, one software version" in result.err, result
        config.version = __import__("archive").__version__
        client.set(f"archive:crawl:{config.capture_id}:config", json.dumps(config.__dict__))
        (tmp_path / "a-file").write_text("not a folder")
        result = run("worker", "--redis", redis_server.url, "--crawl", config.capture_id,
                     "--store", tmp_path / "a-file")
        assert result.code == 2 and "cannot write to the staging area" in result.err, result
        assert len(result.err.strip().splitlines()) == 1
    finally:
        for k in client.scan_iter(match=f"archive:crawl:{config.capture_id}:*"):
            client.delete(k)
        client.srem("archive:crawls", config.capture_id)
    assert site.site.requests == []


def test_jobs_serve_on_two_processes_with_one_redis_runs_each_due_job_once(
        key, pubkey, site, redis_server, tmp_path):
    from tests.jobfiles import run_records, wait_for, write_job
    from tests.test_jobs_serve import start_serve, stop_serve

    store, jobs = tmp_path / "store", tmp_path / "jobs"
    jobs.mkdir()
    # the job's own crawl is shared through the same Redis, and deduplicated against
    # the job's previous capture by every worker
    write_job(jobs, "every2s", [site.url("/")], key, store, extra_top={"every": "2s"},
              run={"redis": redis_server.url})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    servers = [start_serve(jobs, tmp_path / name, "--redis", redis_server.url, "--concurrency", "1")
               for name in ("a", "b")]
    try:
        wait_for(lambda: len(run_records(store, "every2s", "result")) >= 2, what="two runs")
    finally:
        errors = [stop_serve(process, log, tmp_path / name)
                  for (process, log), name in zip(servers, ("a", "b"))]
    started = [e for _, log in servers for e in log.of("started", "every2s")]
    finished = [e for _, log in servers for e in log.of("finished", "every2s")]
    # each due run was started by exactly one server: one start per slot claimed in Redis
    # (the other server saw it taken, or was busy), as many runs as starts, and none
    # found the job's lock held by a twin (`already running`)
    claims = redis_server.client().keys("archive:jobs:every2s:*")
    assert len(started) == len(claims) and started
    assert len(run_records(store, "every2s", "result")) == len(started) == len(finished)
    assert {e["status"] for e in finished} == {"ok"}, (finished, errors)
    assert all(log.of("started", "every2s") or log.of("taken", "every2s") for _, log in servers)
    waczs = stored(store)
    assert len(waczs) == len(started)
    for wacz in waczs:
        evidence = json.loads(member(wacz, "evidence/capture.json"))
        assert evidence["workers"] and evidence["seeds"] == [site.url("/")]
    later = json.loads(member(waczs[-1], "evidence/capture.json"))
    assert later.get("dedupAgainst"), "later runs deduplicate against the previous capture"
    assert any(r["type"] == "revisit" for r in records(waczs[-1]))
    verify(waczs[-1], pubkey)


def test_a_killed_coordinator_resumes_the_shared_crawl(gsite, key, pubkey, redis_server, tmp_path):
    store, work = tmp_path / "store", tmp_path / "work"
    (worker,) = start_workers(1, redis_server.url, store, tmp_path / "workers", "--workers", "2")
    wait_until(lambda: connected_workers(redis_server.url) >= 1, what="the worker to connect")
    coordinator = start_coordinator(gsite, key, store, work, redis_server.url,
        "--workers", "1", "--host-workers", "8", "--lease", "2")
    try:
        wait_until(lambda: handover_lines(journal_of(work)) >= 2, what="hand-overs gathered")
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        assert stored(store) == []
        (folder,) = [p for p in work.iterdir() if p.is_dir()]
        code, out, err = finish(archive("capture", "--resume", folder, "--key", key, "--store", store))
    finally:
        for process in (worker, coordinator):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        finish(worker, 30)
    assert code == 0, err
    wacz = the_whole_site_once(gsite, store, pubkey)
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["resumed"] and len(evidence["workers"]) >= 2


def test_max_pages_holds_for_the_crawl_as_a_whole_staged_in_s3(key, pubkey, s3, tmp_path):
    from tests.redisserver import RedisServer
    server = RedisServer(tmp_path / "redis").start()     # moto's objects and Redis: this test's own
    try:
        with SiteServer(generated_site(30)) as site:
            code, out, err = finish(archive(
                "capture", site.url("/"), "--depth", "9", "--scope", "host", "--key", key,
                "--store", s3.address("team"), "--work-dir", tmp_path / "work", "--redis", server.url,
                "--processes", "2", "--max-pages", "5", "--json"))
    finally:
        server.stop()
    assert code == 0, err
    result = json.loads(out)
    assert result["address"].startswith("s3://") and result["stop_reason"] == "max-pages"
    assert [k for k in s3.keys() if "/staging/" in k] == []       # removed once stored
    code, out, err = finish(archive("verify", result["address"], "--trust", pubkey))
    assert code == 0, out + err
    wacz = tmp_path / "capture.wacz"
    wacz.write_bytes(s3.read(result["address"].split("/", 3)[3]))
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert len(pages(wacz)) == 5 and evidence["stopReason"] == "max-pages"
    assert evidence["notFetched"] and not set(evidence["notFetched"]) & {p["url"] for p in pages(wacz)}
    assert site.url("/") in {p["url"] for p in pages(wacz)}      # the shallowest pages are kept


def test_the_redis_password_is_sealed_nowhere(key, tmp_path):
    from tests.redisserver import RedisServer
    secret = "s3cret-redis-password-7f3a"
    server = RedisServer(tmp_path / "redis", password=secret).start()
    store = tmp_path / "store"
    try:
        with SiteServer(generated_site(6)) as site:
            wrong = server.url.replace(secret, "wrong")
            code, out, err = finish(archive("capture", site.url("/"), "--key", key, "--store", store,
                                            "--work-dir", tmp_path / "work", "--redis", wrong))
            assert code == 2 and len(err.strip().splitlines()) == 1, err
            assert "wrong" not in err and not (tmp_path / "work").exists()
            code, out, err = finish(archive(
                "capture", site.url("/"), "--depth", "3", "--scope", "host", "--key", key,
                "--store", store, "--work-dir", tmp_path / "work", "--redis", server.url,
                "--processes", "2", "--json"))
            assert code == 0, err
    finally:
        server.stop()
    (wacz,) = stored(store)
    everything_said = b"".join(r["payload"] + json.dumps(r["headers"]).encode() for r in records(wacz))
    assert b"command: " in everything_said and b"redis://:***@" in everything_said
    assert secret.encode() not in everything_said and secret.encode() not in wacz.read_bytes()
    for path in store.rglob("*"):
        assert path.is_dir() or secret.encode() not in path.read_bytes(), path


def test_a_durable_redis_restarted_mid_crawl_changes_nothing(gsite, key, pubkey, tmp_path):
    from tests.redisserver import RedisServer
    server = RedisServer(tmp_path / "redis", durable=True).start()
    store, work = tmp_path / "store", tmp_path / "work"
    coordinator = start_coordinator(gsite, key, store, work, server.url,
        "--workers", "2", "--host-workers", "8")
    try:
        wait_until(lambda: handover_lines(journal_of(work)) >= 1, what="a first hand-over")
        server.kill()
        server.start()          # its append-only file holds every write it acknowledged
        code, out, err = finish(coordinator)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
        server.stop()
    assert code == 0, err
    the_whole_site_once(gsite, store, pubkey)


def test_max_bytes_holds_for_the_crawl_as_a_whole(gsite, key, pubkey, redis_server, tmp_path):
    """--max-bytes counts what every worker fetched: the crawl stops when all of them
    together reach it, though none of them alone does."""
    limit = 12_000          # about a third of the site (37,822 bytes in all)
    gsite.site.delay = 0.15     # the workers join before the coordinator alone gets far
    store = tmp_path / "store"
    with workers_running(2, redis_server.url, store, tmp_path / "workers", "--workers", "2"):
        code, out, err = finish(start_coordinator(
            gsite, key, store, tmp_path / "work", redis_server.url, "--workers", "2",
            "--host-workers", "8", "--max-bytes", limit, "--json"))
    assert code == 0, err
    result = json.loads(out)
    assert result["stop_reason"] == "max-bytes"
    # past the limit by at most what was in flight when it was reached (six fetches at
    # once here, none over 1.5 kB): far from the whole site, or from a limit per worker
    assert limit <= result["bytes"] < limit + 6 * 1_500, result["bytes"]
    (wacz,) = stored(store)
    verify(wacz, pubkey)
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["stopReason"] == "max-bytes" and evidence["notFetched"]
    took_part = [w for w in evidence["workers"] if w["fetches"]]
    assert len(took_part) >= 2 and sum(w["bytes"] for w in took_part) == result["bytes"], took_part
    assert set(fetched(wacz).values()) == {1}


def trickle(seconds: float, every: float = 0.1, chunk: int = 1 << 16):
    """A response whose body comes a block at a time for `seconds`."""
    def handler(h) -> None:
        blocks = int(seconds / every)
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", str(blocks * chunk))
        h.end_headers()
        for _ in range(blocks):
            h.wfile.write(b"x" * chunk)
            h.wfile.flush()
            time.sleep(every)
    return handler


def test_max_time_holds_for_the_crawl_as_a_whole(key, pubkey, redis_server, tmp_path):
    """--max-time is the coordinator's clock, learnt by every worker through Redis: no
    worker starts a fetch after it, and a fetch under way then is cut there (a response
    that takes 40 s does not keep the crawl going, nor one whose server sends no headers
    for 40 s)."""
    from tests.site import slow
    site = generated_site(PAGES)
    site.delay = 0.3        # about 6 s for the whole site at six fetches at once
    site.add("/i/1-a.png", handler=trickle(40))
    site.add("/i/0-b.png", handler=slow(40))     # stalled before its status line
    store = tmp_path / "store"
    with SiteServer(site) as server:
        with workers_running(2, redis_server.url, store, tmp_path / "workers", "--workers", "2"):
            started = time.monotonic()
            code, out, err = finish(archive(
                "capture", server.url("/"), "--depth", "9", "--scope", "host", "--key", key,
                "--store", store, "--work-dir", tmp_path / "work", "--redis", redis_server.url,
                "--workers", "2", "--host-workers", "8", "--max-time", "2", "--timeout", "60",
                "--json"))
            took = time.monotonic() - started
    assert code == 0, err
    result = json.loads(out)
    assert result["stop_reason"] == "max-time"
    assert took < 20, took              # not the 40 s of the slow responses
    assert "/i/0-b.png" in site.requests
    first = min(t for _, t in site.times)
    late = [(path, round(t - first, 2)) for path, t in site.times if t - first > 2.5]
    assert not late, late               # nothing started after the deadline (+ jitter)
    (wacz,) = stored(store)
    verify(wacz, pubkey)
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    assert evidence["stopReason"] == "max-time" and evidence["notFetched"]
    assert len([w for w in evidence["workers"] if w["fetches"]]) >= 2, evidence["workers"]
    cut = [r for r in records(wacz) if r["uri"] == server.url("/i/1-a.png") and r["type"] == "response"]
    assert cut and cut[0]["headers"].get("WARC-Truncated") == "time"    # cut there, recorded


def test_an_idle_worker_asks_redis_nothing_and_joins_a_new_crawl(gsite, key, pubkey, own_redis, tmp_path):
    """A worker with no crawl to join waits on the crawls' announcements (pub/sub), not
    asking Redis every second; a crawl started meanwhile wakes it, and it takes part."""
    store = tmp_path / "store"
    client = own_redis.client()

    def names() -> list:
        return [c.get("name") for c in client.client_list()]

    with workers_running(1, own_redis.url, store, tmp_path / "workers") as ended:
        time.sleep(0.5)                # its first look at the crawls in progress is over
        client.config_resetstat()
        time.sleep(2.5)
        asked = {k: v["calls"] for k, v in client.info("commandstats").items()
                 if k not in ("cmdstat_config|resetstat", "cmdstat_info", "cmdstat_client|list")}
        assert not asked, asked        # the old loop asked SMEMBERS archive:crawls once a second
        assert "archive-worker-waiting" in names()    # its subscription, named as such
        code, out, err = finish(start_coordinator(gsite, key, store, tmp_path / "work", own_redis.url,
                                                  "--workers", "2", "--json"))
        assert code == 0, err
    assert all(code == 0 for code, _, _ in ended), ended
    # it joined the crawl (how much it fetched depends on the machine's load)
    assert f"crawl {json.loads(out)['capture_id']}" in ended[0][1], ended
    (wacz,) = stored(store)
    verify(wacz, pubkey)


def test_a_worker_that_finds_a_sealed_crawl_gone_leaves_and_one_lost_stops(redis_server):
    """The coordinator removes a crawl's keys once it is sealed and stored: a worker's
    claim that finds them gone then is the crawl's end (it leaves), and only without the
    coordinator's mark is it a Redis that lost the crawl (a one-line error)."""
    from archive.capture.redisfrontier import RedisFrontier, ended_key
    from archive.redisconn import RedisLost
    from archive.ids import new_capture_id
    client = redis_server.client()
    sealed, lost = new_capture_id(), new_capture_id()
    client.set(ended_key(sealed), "sealed", ex=60)
    frontier = RedisFrontier(client, sealed, "w1", lease=5, per_host=1, delay=0, max_pages=None)
    assert frontier.claim() is None            # over: the thread leaves
    frontier = RedisFrontier(client, lost, "w1", lease=5, per_host=1, delay=0, max_pages=None)
    with pytest.raises(RedisLost, match="gone from Redis"):
        frontier.claim()


def new_crawl(client, site, store: Path, capture_id: str | None = None, dedup_against: str | None = None):
    """A crawl of the generated `site` put into Redis as a coordinator does (none runs:
    its workers fetch and hand over, nothing gathers)."""
    from archive import __version__
    from archive.capture.sharedcrawl import CrawlConfig, create_crawl
    from archive.ids import new_capture_id
    config = CrawlConfig(capture_id or new_capture_id(), __version__,
                         {"seeds": [site.url("/")], "depth": 9, "scope": "host"}, "op",
                         lease=2, store=str(store), dedup_against=dedup_against)
    create_crawl(client, config)
    return config


def test_a_worker_waits_for_its_crawl_and_leaves_when_it_never_comes(run, own_redis, tmp_path):
    from archive.ids import new_capture_id
    client = own_redis.client()
    store, capture_id = tmp_path / "store", new_capture_id()

    def last_command() -> str | None:
        return next((c["cmd"] for c in client.client_list() if c.get("name") == "archive-worker"), None)

    with SiteServer(generated_site(4)) as site:
        worker = archive("worker", "--redis", own_redis.url, "--crawl", capture_id, "--wait", "60",
                         "--store", store, "--work-dir", tmp_path / "w", "--json")
        try:
            # it subscribed, then looked for its crawl (not there yet, nor sealed): now it waits
            wait_until(lambda: worker.poll() is not None or last_command() == "exists",
                       what="the worker's look for its crawl")
            assert worker.poll() is None, finish(worker)
            new_crawl(client, site, store, capture_id)
            code, out, err = finish(worker, 60)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert code == 0, err
    (joined,) = json.loads(out)["crawls"]
    assert joined["captureId"] == capture_id and joined["fetches"] == 4 * 5, joined  # pages, requisites

    never = new_capture_id()
    started = time.monotonic()
    code, out, err = finish(archive("worker", "--redis", own_redis.url, "--crawl", never,
                                    "--wait", "1.5", "--store", store, "--quiet"), 30)
    took = time.monotonic() - started
    assert code == 2 and f"no crawl {never} in Redis after 1.5 s" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert 1.5 <= took < 15     # it waited, and no longer than that (and its start-up)
    result = run("worker", "--redis", own_redis.url, "--wait", "5")
    assert result.code == 2 and "--wait needs --crawl" in result.err, result
    # a crawl sealed already (its coordinator left the mark) is not waited for
    from archive.capture.redisfrontier import ended_key
    sealed = new_capture_id()
    client.set(ended_key(sealed), "sealed")
    started = time.monotonic()
    code, out, err = finish(archive("worker", "--redis", own_redis.url, "--crawl", sealed,
                                    "--wait", "60", "--store", store, "--quiet"), 30)
    assert code == 2 and f"crawl {sealed} is over: it was sealed" in err, err
    assert time.monotonic() - started < 30


def _workers_naming(text: str) -> list[str]:
    """Command lines of the `archive worker` processes alive whose command line holds `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if " -m archive worker " in cmdline and text in cmdline:
            found.append(cmdline)
    return found


def test_local_workers_start_before_the_crawl_is_in_redis_and_stop_however_it_ends(
        run, key, gsite, own_redis, tmp_path):
    store = tmp_path / "store"
    base = ["capture", gsite.url("/"), "--depth", "9", "--scope", "host", "--key", key,
            "--store", store, "--redis", own_redis.url, "--processes", "3", "--quiet"]
    # a Redis that refuses every write (out of memory, no eviction): putting the crawl
    # there fails after the local workers were started, and they are stopped
    client = own_redis.client()
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)
    try:
        result = run(*base, "--work-dir", tmp_path / "failed")
    finally:
        client.config_set("maxmemory", 0)
    assert result.code == 2 and "Redis refused" in result.err and "maxmemory" in result.err, result
    assert len(result.err.strip().splitlines()) == 1
    assert _workers_naming(str(tmp_path / "failed")) == []

    result = run(*base, "--work-dir", tmp_path / "work", "--workers", "2", "--host-workers", "8")
    assert result.code == 0, result
    (wacz,) = stored(store)
    evidence = json.loads(member(wacz, "evidence/capture.json"))
    # the local worker processes waited for the crawl, then took part in it
    assert [w for w in evidence["workers"] if not w["id"].startswith("c") and w["fetches"]], evidence
    assert set(fetched(wacz)) == everything(gsite)


def test_a_long_running_worker_joins_a_crawl_rebuilt_under_a_new_epoch(own_redis, tmp_path):
    """A coordinator resumed after Redis lost its crawl rebuilds it under a new epoch: a
    worker that took part in the old epoch joins the new one (and never a crawl's epoch
    it already finished, however often it is woken)."""
    from archive.capture.redisfrontier import CRAWLS_CHANNEL, crawl_prefix
    from archive.capture.sharedcrawl import crawl_keys, create_crawl, new_epoch
    client = own_redis.client()
    store = tmp_path / "store"

    def crawled(prefix: str) -> bool:
        """Everything queued was fetched and handed over (no coordinator takes it)."""
        return (client.llen(prefix + "handovers") > 0 and client.zcard(prefix + "leases") == 0
                and client.get(prefix + "queued") in (None, b"0", "0"))

    with SiteServer(generated_site(3)) as site:
        worker = archive("worker", "--redis", own_redis.url, "--store", store, "--work-dir", tmp_path / "w",
                         "--json")
        try:
            wait_until(lambda: connected_workers(own_redis.url) == 1, what="the worker to connect")
            config = new_crawl(client, site, store)
            prefix = crawl_prefix(config.capture_id)
            wait_until(lambda: crawled(prefix), what="the worker to take part")
            first = len(site.site.requests)
            for key in crawl_keys(client, config.capture_id):     # as Coordinator.start() does
                client.delete(key)
            config.epoch = new_epoch()
            create_crawl(client, config)
            wait_until(lambda: crawled(prefix), what="the worker to take part again")
            again = len(site.site.requests) - first
            # woken for the epoch it has finished: it looks, and does not take part again
            client.publish(CRAWLS_CHANNEL, config.capture_id)
            time.sleep(1.0)
            assert len(site.site.requests) == first + again
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        code, out, err = finish(worker, 60)
    assert code == 0, err
    assert first and again == first, (first, again)
    report = json.loads(out)
    assert [c["captureId"] for c in report["crawls"]] == [config.capture_id] * 2, report
    assert all(c["fetches"] == 3 * 5 for c in report["crawls"]), report
    # rejoined under a new worker id: its WARC files of the old epoch keep their names
    assert report["crawls"][0]["worker"] == report["worker"] != report["crawls"][1]["worker"]
    staged = sorted(p.name for p in (store / "staging" / config.capture_id).glob("*.warc.gz"))
    assert {n.split("-")[-2] for n in staged} == {c["worker"] for c in report["crawls"]}, staged


def test_a_long_running_worker_outlives_a_crawl_redis_lost_and_joins_it_rebuilt(own_redis, tmp_path):
    """Redis loses a crawl (its keys flushed, not sealed) while a worker serving every
    crawl takes part: the worker leaves that crawl, not its post, and takes part again when
    the resumed coordinator rebuilds it under a new epoch. What it held is in no capture."""
    from archive.capture.redisfrontier import crawl_prefix
    from archive.capture.sharedcrawl import crawl_keys, create_crawl, new_epoch
    client = own_redis.client()
    store, work = tmp_path / "store", tmp_path / "w"
    with SiteServer(generated_site(10)) as site:
        # an earlier capture to deduplicate against: the worker holds it open while it takes part
        code, out, err = finish(archive("capture", site.url("/"), "--depth", "0", "--unsigned",
                                        "--store", store, "--work-dir", tmp_path / "cw", "--json", "--quiet"))
        assert code == 0, err
        earlier = json.loads(out)["capture_id"]
        served = len(site.site.requests)
        site.site.delay = 0.2
        worker = archive("worker", "--redis", own_redis.url, "--store", store, "--work-dir", work, "--json")
        try:
            wait_until(lambda: connected_workers(own_redis.url) == 1, what="the worker to connect")
            config = new_crawl(client, site, store, dedup_against=earlier)
            prefix = crawl_prefix(config.capture_id)
            wait_until(lambda: len(site.site.requests) >= served + 5, what="the worker to fetch")
            for key in crawl_keys(client, config.capture_id):       # Redis lost the crawl
                client.delete(key)
            wait_until(lambda: not any(work.glob("*/*")), what="the worker to leave the lost crawl")
            assert worker.poll() is None, finish(worker)
            # and it holds none of that crawl's files open (its WARC files, the earlier capture)
            fds = Path(f"/proc/{worker.pid}/fd")
            assert not [os.readlink(fd) for fd in fds.iterdir() if str(tmp_path) in os.readlink(fd)]
            site.site.delay = 0.0
            # as a resumed coordinator rebuilds it: what the worker wrote meanwhile goes too
            for key in crawl_keys(client, config.capture_id):
                client.delete(key)
            config.epoch = new_epoch()
            create_crawl(client, config)
            wait_until(lambda: client.llen(prefix + "handovers") > 0 and client.zcard(prefix + "leases") == 0
                       and client.get(prefix + "queued") in (None, b"0", "0"),
                       what="the worker to crawl the rebuilt crawl")
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        code, out, err = finish(worker, 60)
    assert code == 0, err
    lost, rebuilt = json.loads(out)["crawls"]
    assert lost["captureId"] == rebuilt["captureId"] == config.capture_id
    assert "gone from Redis" in lost["lost"] and "lost" not in rebuilt
    assert rebuilt["fetches"] == 10 * 5 and rebuilt["worker"] != lost["worker"], rebuilt
    assert not (work / lost["worker"]).exists()      # what it held is not kept
