#!/usr/bin/env python3
"""Crawl speed against wget, in the same run.

Serves a generated site (tests/site.py: N pages in a tree of depth >= 3, each with its
own stylesheet, script and two images) on 127.0.0.1, and crawls it completely with
`archive capture` (sealed into a WACZ, unsigned, stored) and with
`wget --recursive --level=inf --page-requisites --warc-file`, once with the server
answering at once and once with it adding a delay to every response, as a remote site
does. Prints pages/s for both, the ratio, and each crawler's peak RSS.

    scripts/bench_crawl.py                 # 500 pages, 0 and 20 ms
    scripts/bench_crawl.py --pages 20      # the test suite's smoke size
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.site import SiteServer, generated_site  # noqa: E402

ARCHIVE = str(Path(sys.executable).parent / "archive")


def timed(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of a command, from its own rusage."""
    with tempfile.TemporaryFile() as err:   # a pipe would fill up and stall the crawler
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 8):   # wget exits 8 when some URL answered with an error (robots.txt 404)
            err.seek(0)
            raise SystemExit(f"{command[0]} failed ({code}): {err.read().decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, code


def run_once(pages: int, latency: float, workers: int, host_workers: int, repeat: int) -> dict:
    """Each tool's best run of `repeat`, the tools taking turns (the machine is shared,
    and a load spike should not land on one tool only)."""
    site = generated_site(pages)
    site.delay = latency
    results: dict = {}
    with SiteServer(site) as server, tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
        tmp = Path(tmp)
        commands = {
            "wget": ["wget", "--recursive", "--level=inf", "--page-requisites", "--no-verbose",
                     "--warc-file", str(tmp / "wget" / "crawl"), "-P", str(tmp / "wget"),
                     server.url("/")],
            "archive": [ARCHIVE, "capture", server.url("/"), "--depth", "1000", "--scope", "host",
                        "--unsigned", "--store", str(tmp / "store"), "--work-dir", str(tmp / "work"),
                        "--workers", str(workers), "--host-workers", str(host_workers), "--quiet"],
        }
        for _ in range(repeat):
            for tool, command in commands.items():
                shutil.rmtree(tmp / "wget", ignore_errors=True)
                shutil.rmtree(tmp / "store", ignore_errors=True)
                (tmp / "wget").mkdir()
                with site.lock:
                    site.requests.clear()
                seconds, rss, _ = timed(command, tmp)
                with site.lock:
                    fetched = [p for p in site.requests if p == "/" or p.endswith(".html")]
                if len(set(fetched)) != pages:
                    raise SystemExit(f"{tool} fetched {len(set(fetched))} of {pages} pages")
                best = results.get(tool)
                if best is None or seconds < best["seconds"]:
                    results[tool] = {"seconds": seconds, "pages_per_s": pages / seconds,
                                     "rss_mb": max(rss, best["rss_mb"] if best else 0)}
                else:
                    best["rss_mb"] = max(best["rss_mb"], rss)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--host-workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each tool per latency, best kept (default 2)")
    args = parser.parse_args()
    # As an installed package is: byte-compiled (PYTHONDONTWRITEBYTECODE, set on some
    # machines, would otherwise have every run compile our modules again).
    compileall.compile_dir(ROOT / "archive", quiet=1)
    if not shutil.which("wget"):
        raise SystemExit("wget is needed as the peer (scripts/test installs it)")
    print(f"{args.pages} pages (each with a stylesheet, a script and two images), "
          f"archive --workers {args.workers} --host-workers {args.host_workers}; "
          f"best of {args.repeat} runs each; peak RSS is the largest of the runs")
    print(f"{'latency':>8}  {'wget pages/s':>12}  {'archive pages/s':>15}  {'ratio':>6}  "
          f"{'wget RSS':>9}  {'archive RSS':>11}")
    for latency_ms in args.latency_ms:
        r = run_once(args.pages, latency_ms / 1000, args.workers, args.host_workers, args.repeat)
        ratio = r["archive"]["pages_per_s"] / r["wget"]["pages_per_s"]
        print(f"{latency_ms:6.0f}ms  {r['wget']['pages_per_s']:12.1f}  "
              f"{r['archive']['pages_per_s']:15.1f}  {ratio:5.2f}x  "
              f"{r['wget']['rss_mb']:7.1f}MB  {r['archive']['rss_mb']:9.1f}MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
