"""A crawl shared through Redis: a coordinator (`capture --redis`) and `archive worker`
processes, with a real redis-server, the generated test site and real processes killed
with SIGKILL."""

from __future__ import annotations

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


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def gsite():
    site = generated_site(30)
    site.delay = 0.05       # a crawl of a few seconds, so that workers join it
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
    workers = start_workers(3, redis_server.url, store, tmp_path / "workers")
    try:
        code, out, err = finish(archive(
            "capture", gsite.url("/"), "--depth", "9", "--scope", "host", "--key", key,
            "--store", store, "--work-dir", tmp_path / "work", "--redis", redis_server.url,
            "--workers", "2", "--host-workers", "8", "--json"))
        assert code == 0, err
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        ended = [finish(w, 30) for w in workers]
    assert all(code == 0 for code, _, _ in ended), ended
    result = json.loads(out)
    (shared,) = stored(store)
    verify(shared, pubkey)

    # the same pages, the same fetches, each once
    assert sorted(p["url"] for p in pages(shared)) == sorted(p["url"] for p in pages(alone))
    counts = fetched(shared)
    assert counts == fetched(alone)
    assert set(counts.values()) == {1} and len(counts) == 30 * 5 + 1    # + robots.txt
    assert result["pages"] == 30 and result["failed"] == 0
    # the server answered each URL once: nothing was fetched twice
    assert max(Counter(gsite.site.requests).values()) == 1

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
