#!/usr/bin/env python3
"""Benchmark: what the custody log costs as a store grows.

For each size N (entries appended by the ledger's own code, no real captures; one
capture's entries early in the log, so its proof spans the whole tree), in a folder store
and (with --s3-sizes) in an S3 store on moto's server in its own process:

- `custody show ID` (what `archive verify ID --store` reads of the custody: the capture's
  own entries and their proofs under the latest head): time, and S3 requests;
- `custody verify` (the whole log, linear, streaming): time and peak RSS;
- `custody verify --since HEAD` after 1,000 more entries: time.

Prints a table and the growth factor per 10x (goals: verify ID at most 1.3x, custody
verify at most 11x), in wall time and in the CPU time of the `custody verify` process
(user + system: on a machine shared with other work the wall time follows the load, the
CPU time much less), with the load average beside. On S3 the requests `custody verify`
sends are counted too. `--sizes 10000 100000 1000000` is the full run; the test suite
runs a small one. Build time is printed too (it is the ledger's own batched append).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from archive.custody import merkle  # noqa: E402
from archive.custody.entry import Actor, make_entry  # noqa: E402
from archive.custody.ledger import FileLedger, ObjectLedger  # noqa: E402
from archive.custody.proof import prove_capture  # noqa: E402

TARGET = "20260101T000000Z-0000beef"
BATCH = 100_000
SINCE = 1_000
ARCHIVE = str(Path(sys.executable).with_name("archive"))


def entries(start: int, count: int, actor: Actor):
    for i in range(start, start + count):
        capture = TARGET if i in (3, 4, 5) else f"20260101T000000Z-{i % 5000:08x}"
        event = ("captured", "sealed", "stored")[i - 3] if capture == TARGET else "verified"
        yield lambda seq, prev, c=capture, e=event, i=i: make_entry(seq, prev, e, actor, c, "ab" * 32, {"n": i})


def _build(address: str, start: int, count: int) -> None:
    from archive.store.address import open_store
    ledger = ObjectLedger(open_store(address)) if address.startswith("s3://") \
        else FileLedger(Path(address) / "custody" / "ledger.jsonl")
    actor = Actor("bench")
    for at in range(start, start + count, BATCH):
        ledger.append_many(list(entries(at, min(BATCH, start + count - at), actor)))


def build(address: str, start: int, count: int) -> float:
    """Append entries in a process of its own (so the children timed later are not forked
    from a parent that held the batch: their peak RSS would count it)."""
    began = time.monotonic()
    proc = multiprocessing.get_context("spawn").Process(target=_build, args=(address, start, count))
    proc.start()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"building {count} entries in {address} failed")
    return time.monotonic() - began


@dataclass
class Run:
    """One command, as its own child process: wall and CPU seconds, peak RSS, requests."""
    wall: float
    cpu: float
    rss_mb: int
    out: str
    requests: int | None = None


def run_cli(*args: str, env=None, count: bool = False) -> Run:
    """`archive ARGS` in a child of its own; `count`: also the HTTP requests it sends to S3."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(prefix="bench-requests-") as counted:
        command = [sys.executable, __file__, "--count-requests", counted.name, *args] if count \
            else [ARCHIVE, *args]
        began = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.monotonic() - began
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise SystemExit(f"archive {' '.join(args)} failed: {err.read().decode().strip()}")
        requests = int(Path(counted.name).read_text() or 0) if count else None
        return Run(took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, out.read().decode(),
                   requests)


def counted_cli(count_file: str, args: list[str]) -> int:
    """The CLI in this process, every HTTP request botocore sends (retries too) counted
    into `count_file` at exit."""
    import atexit

    import botocore.endpoint

    from archive.cli import main as cli_main
    sent = [0]
    send = botocore.endpoint.Endpoint._send

    def counting(self, request):
        sent[0] += 1
        return send(self, request)

    botocore.endpoint.Endpoint._send = counting
    atexit.register(lambda: Path(count_file).write_text(str(sent[0])))
    return cli_main(args)


def head_of(ledger) -> str:
    size = ledger.tree_size()
    return f"{size}:{merkle.fold_peaks(ledger.peaks(size)).hex()}"


def bench_folder(size: int, work: Path) -> dict:
    store = work / f"folder-{size}"
    ledger = FileLedger(store / "custody" / "ledger.jsonl")
    built = build(str(store), 0, size)
    show = run_cli("custody", "show", TARGET, "--store", str(store), "--json")
    assert json.loads(show.out)["proven"] == 3, show.out
    full = run_cli("custody", "verify", "--store", str(store), "--json", "--quiet")
    assert json.loads(full.out)["log"]["size"] == size, full.out[:500]
    head = head_of(ledger)
    build(str(store), size, SINCE)
    since = run_cli("custody", "verify", "--store", str(store), "--since", head, "--json", "--quiet")
    assert json.loads(since.out)["intact"], since.out[:500]
    shutil.rmtree(store)
    return row("folder", size, built, show.wall, None, full, since)


def row(store: str, size: int, built: float, show: float, requests: int | None, full: Run, since: Run) -> dict:
    return {"store": store, "size": size, "build": built, "verify_id": show, "requests": requests,
            "custody_verify": full.wall, "cpu": full.cpu, "verify_requests": full.requests,
            "rss_mb": full.rss_mb, "since": since.wall, "load": os.getloadavg()[0]}


def bench_s3(size: int, endpoint: str, bucket: str) -> dict:
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint)
    os.environ.update(AWS_ENDPOINT_URL=endpoint)
    from archive.store.address import open_store
    address = f"s3://{bucket}/n{size}"
    ledger = ObjectLedger(open_store(address))
    built = build(address, 0, size)
    reader = ObjectLedger(open_store(address))
    sent: list[str] = []
    reader.store.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    began = time.monotonic()
    proof = prove_capture(reader, TARGET)
    show = time.monotonic() - began
    assert proof.proven == 3 and not proof.problems, proof
    full = run_cli("custody", "verify", "--store", address, "--json", "--quiet", env=env, count=True)
    assert json.loads(full.out)["log"]["size"] == size, full.out[:500]
    head = head_of(ObjectLedger(open_store(address)))
    build(address, size, min(SINCE, size))
    since = run_cli("custody", "verify", "--store", address, "--since", head, "--json", "--quiet", env=env)
    return row("s3", size, built, show, len(sent), full, since)


def growth(rows: list[dict], key: str) -> str:
    out = []
    for a, b in zip(rows, rows[1:]):
        if a[key] and b[key] is not None:
            factor = (b[key] / a[key]) ** (1 / max(1e-9, __import__("math").log10(b["size"] / a["size"])))
            out.append(f"{factor:.2f}x")
    return ", ".join(out) or "-"


def main() -> None:
    if sys.argv[1:2] == ["--count-requests"]:
        raise SystemExit(counted_cli(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--s3-sizes", type=int, nargs="*", default=[1_000, 10_000])
    args = parser.parse_args()
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                      AWS_EC2_METADATA_DISABLED="true")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for size in args.sizes:
            rows.append(bench_folder(size, Path(tmp)))
            print_row(rows[-1])
        if args.s3_sizes:
            import boto3
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_s3 import start_moto    # moto's server in a process of its own
            proc, endpoint = start_moto()
            try:
                client = boto3.client("s3", endpoint_url=endpoint)
                client.create_bucket(Bucket="bench-store", ObjectLockEnabledForBucket=True)
                for size in args.s3_sizes:
                    rows.append(bench_s3(size, endpoint, "bench-store"))
                    print_row(rows[-1])
            finally:
                proc.kill()
    for store in ("folder", "s3"):
        mine = [r for r in rows if r["store"] == store]
        if len(mine) > 1:
            print(f"{store}: growth per 10x entries: verify ID {growth(mine, 'verify_id')} (goal <= 1.3x); "
                  f"custody verify {growth(mine, 'custody_verify')} wall, {growth(mine, 'cpu')} CPU "
                  f"(goal <= 11x); --since {growth(mine, 'since')}"
                  + (f"; requests: verify ID {growth(mine, 'requests')}, custody verify "
                     f"{growth(mine, 'verify_requests')}" if store == "s3" else ""))


def print_row(row: dict) -> None:
    requests = f"{row['requests']:>4} req" if row["requests"] is not None else "        "
    full = f" {row['verify_requests']:,} req" if row["verify_requests"] is not None else ""
    print(f"{row['store']:<6} {row['size']:>9,} entries  build {row['build']:7.1f}s  "
          f"verify ID {row['verify_id']:6.2f}s {requests}  custody verify {row['custody_verify']:7.1f}s "
          f"({row['cpu']:.1f}s CPU{full}, peak RSS {row['rss_mb']} MB)  --since {SINCE:,} {row['since']:5.2f}s"
          f"  (load {row['load']:.1f})", flush=True)


if __name__ == "__main__":
    main()
