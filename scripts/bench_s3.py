#!/usr/bin/env python3
"""Benchmark: upload one N MiB WACZ to S3 through our store (SHA-256 of the whole file,
SHA-256 + MD5 of every part, post-upload check) and through boto3's own `upload_file`
(its defaults), to the same local endpoint (moto's server in its own process) in one run.

Prints MB/s for both, the ratio ours / boto3 (goal: at least 0.9x), how many times each
read the file (from /proc/self/io; goal for ours: once) and our peak traced memory.
`--mib 1024` is the full-size run; the test suite runs a small one. The figures are
noisy on a shared machine: use --rounds to alternate the two several times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
import requests  # noqa: E402

from archive.store.s3 import S3Location, S3Store  # noqa: E402
from archive.store.s3upload import MiB, Transfer  # noqa: E402

BUCKET = "bench-s3"
CAPTURE_ID = "20260101T000000Z-0badc0de"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's server in a process of its own, so it does not share our interpreter."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(f"{endpoint}/moto-api/", timeout=2)
            return proc, endpoint
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto_server did not start")


def bytes_read() -> int:
    """Bytes this process has read with read() and friends (files and sockets)."""
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


def make_file(path: Path, mib: int) -> str:
    sha = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            chunk = os.urandom(MiB)
            sha.update(chunk)
            fh.write(chunk)
    return sha.hexdigest()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(upload, server_pid: int) -> tuple[float, int, int, float, float]:
    """(seconds, bytes read, peak traced bytes, our CPU s, the server's CPU s) of one upload."""
    tracemalloc.start()
    read_before, start = bytes_read(), time.perf_counter()
    cpu_before, server_before = time.process_time(), cpu_seconds(server_pid)
    upload()
    seconds = time.perf_counter() - start
    cpu, server = time.process_time() - cpu_before, cpu_seconds(server_pid) - server_before
    read = bytes_read() - read_before
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, read, peak, cpu, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="size of the WACZ in MiB (default 1024)")
    parser.add_argument("--part-mib", type=int, default=Transfer().part_size // MiB,
                        help=f"our part size in MiB (default {Transfer().part_size // MiB})")
    parser.add_argument("--concurrency", type=int, default=Transfer().concurrency,
                        help=f"our parts in flight (default {Transfer().concurrency})")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two uploads N times")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    proc, endpoint = start_moto()
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        store = S3Store(S3Location(BUCKET, "ours"), endpoint_url=endpoint,
                        transfer=Transfer(part_size=args.part_mib * MiB, concurrency=args.concurrency))
        with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
            path = Path(tmp) / f"{CAPTURE_ID}.wacz"
            sha = make_file(path, args.mib)
            size = path.stat().st_size
            ours, theirs = [], []
            for n in range(args.rounds):
                key = f"boto3/{n}.wacz"
                stored = []

                def run_boto3():
                    theirs.append(timed(lambda: client.upload_file(str(path), BUCKET, key), proc.pid))
                    client.delete_object(Bucket=BUCKET, Key=key)      # moto keeps objects in memory

                def run_ours():
                    ours.append(timed(lambda: stored.append(store.put_capture(
                        CAPTURE_ID, path, sha, {"signer": None, "seeds": []})), proc.pid))
                    assert stored[0].sha256 == sha
                    client.delete_object(Bucket=BUCKET, Key=stored[0].address.split(f"{BUCKET}/", 1)[1])

                for run in ((run_boto3, run_ours) if n % 2 == 0 else (run_ours, run_boto3)):
                    run()    # alternate who goes first, so neither always gets the warm-up
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    best_ours, best_theirs = min(ours), min(theirs)
    result = {
        "mib": args.mib, "rounds": args.rounds,
        "ours_MBps": round(size / best_ours[0] / 1e6, 1),
        "boto3_MBps": round(size / best_theirs[0] / 1e6, 1),
        "ratio": round(best_theirs[0] / best_ours[0], 2), "goal_ratio": 0.9,
        "ours_reads_of_file": round(best_ours[1] / size, 2),
        "boto3_reads_of_file": round(best_theirs[1] / size, 2),
        "ours_peak_traced_MiB": round(max(o[2] for o in ours) / MiB, 1),
        "boto3_peak_traced_MiB": round(max(t[2] for t in theirs) / MiB, 1),
        "ours_cpu_s": round(best_ours[3], 2), "boto3_cpu_s": round(best_theirs[3], 2),
        "server_cpu_s_ours": round(best_ours[4], 2), "server_cpu_s_boto3": round(best_theirs[4], 2),
        "load_average": os.getloadavg()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"WACZ            {args.mib} MiB to moto_server on {endpoint} (best of {args.rounds})")
    print(f"boto3 upload_file  {best_theirs[0]:.2f} s  ({result['boto3_MBps']} MB/s), "
          f"file read {result['boto3_reads_of_file']}x, peak traced {result['boto3_peak_traced_MiB']} MiB")
    print(f"our store          {best_ours[0]:.2f} s  ({result['ours_MBps']} MB/s), "
          f"file read {result['ours_reads_of_file']}x, peak traced {result['ours_peak_traced_MiB']} MiB "
          "(SHA-256 whole + per part, MD5 per part, post-upload check)")
    print(f"ratio              {result['ratio']}x boto3's throughput (goal: at least 0.9x)")
    print(f"CPU seconds        ours {result['ours_cpu_s']} + server {result['server_cpu_s_ours']}, "
          f"boto3 {result['boto3_cpu_s']} + server {result['server_cpu_s_boto3']} "
          f"(load average {result['load_average']:.1f} on {os.cpu_count()} CPUs: under load, "
          "throughput follows total CPU)")


if __name__ == "__main__":
    main()
