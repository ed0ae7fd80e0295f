#!/usr/bin/env python3
"""Crawl speed against wget, in the same run.

Serves a generated site (tests/site.py: N pages in a tree of depth >= 3, each with its
own stylesheet, script and two images) on 127.0.0.1, and crawls it completely with
`archive capture` (sealed into a WACZ, unsigned, stored) and with
`wget --recursive --level=inf --page-requisites --warc-file`, once with the server
answering at once and once with it adding a delay to every response, as a remote site
does. Prints pages/s for both, the ratio, and each crawler's peak RSS.

What serves the site: tests/site.py's SiteServer, Python's ThreadingHTTPServer (a thread
per connection) running in this benchmark's own process, on the same cores as the
crawlers; every tool of a run crawls that same server, so the ratios are fair. Its CPU
per fetch is the `server` column (about 0.15 ms: a small share of the crawl's own).

With `--processes N...` the same crawl is also shared through a local redis-server (started
here, no persistence) by `archive capture --redis URL --processes N`: pages/s, the ratio
to one process and to wget, Redis round trips per fetch, CPU per fetch (ours, all
processes, and Redis's own) and the peak RSS of the largest process. Under the table, the
arithmetic of the ratio's ceiling: with c1 our CPU per fetch in one process, c the shared
crawl's (all its processes), s the server's and r Redis's, N processes on K cores reach at
most min(N * c1 / c, K * c1 / (c + s + r)) times one process (every core busy, none idle).

    scripts/bench_crawl.py                 # 500 pages, 0 and 20 ms
    scripts/bench_crawl.py --processes 2 4 # and shared by 2 and by 4 processes
    scripts/bench_crawl.py --pages 20      # the test suite's smoke size

With `--rss-urls N...` it measures memory instead (issue 22): a crawl of a generated site
of N URLs (N/6 pages, each with its four requisites and a link home), captured, sealed and
stored by one `archive capture` process, no added latency; prints the peak RSS of that
process (its own high-water mark, VmHWM), its time, and the growth per 10x (goal: under
500 MB at a million URLs). The process's RSS is also sampled (every 0.05 s) in each
phase: the crawl (until the journal ends), the seal (until the sealed WACZ is there) and
the rest (store, custody, and the catalog add, which `--rss-catalog off` leaves out).
Pages are sealed without their text (`--no-text`) unless `--rss-text on`.

    scripts/bench_crawl.py --rss-urls 10000 100000
    scripts/bench_crawl.py --rss-urls 10000 100000 --rss-catalog off
"""

from __future__ import annotations

import argparse
import compileall
import math
import os
import resource
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


def timed(command: list[str], cwd: Path) -> tuple[float, float, int, float]:
    """(seconds, peak RSS in MB of the largest process, exit code, CPU seconds of the
    command and the children it waited for), from its rusage."""
    with tempfile.TemporaryFile() as err:   # a pipe would fill up and stall the crawler
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 8):   # wget exits 8 when some URL answered with an error (robots.txt 404)
            err.seek(0)
            raise SystemExit(f"{command[0]} failed ({code}): {err.read().decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, code, usage.ru_utime + usage.ru_stime


def redis_counters(client, stats_file: Path) -> tuple[int, float, dict]:
    """(round trips to Redis, as the processes counted them (ARCHIVE_REDIS_STATS), CPU
    seconds the Redis server used, CPU seconds of our processes by command: capture (the
    coordinator) and worker) so far."""
    trips, cpu_by = 0, {"capture": [], "worker": []}
    if stats_file.exists():
        for line in stats_file.read_text().splitlines():
            pid, calls, cpu, command = line.split()
            trips += int(calls)
            cpu_by.setdefault(command, []).append(float(cpu))
    cpu = client.info("cpu")
    return trips, cpu["used_cpu_user"] + cpu["used_cpu_sys"], cpu_by


def own_cpu() -> float:
    """CPU seconds of this process: the test server's threads (the main one waits)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(pages: int, latency: float, workers: int, host_workers: int, repeat: int,
             processes: list[int], redis_url: str | None, redis_client) -> dict:
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
        for n in processes:
            # the per-host limit is the crawl's as a whole: the processes share it
            commands[f"x{n}"] = commands["archive"] + ["--redis", redis_url, "--processes", str(n),
                                                       "--host-workers", str(host_workers * n)]
        for _ in range(repeat):
            for tool, command in commands.items():
                shutil.rmtree(tmp / "wget", ignore_errors=True)
                shutil.rmtree(tmp / "store", ignore_errors=True)
                (tmp / "wget").mkdir()
                with site.lock:
                    site.requests.clear()
                stats = tmp / "redis-round-trips"
                stats.unlink(missing_ok=True)
                os.environ["ARCHIVE_REDIS_STATS"] = str(stats)
                nothing = (0, 0.0, {"capture": [], "worker": []})
                before = redis_counters(redis_client, stats) if redis_client is not None else nothing
                server_before = own_cpu()
                seconds, rss, _, cpu = timed(command, tmp)
                server_cpu = own_cpu() - server_before
                after = redis_counters(redis_client, stats) if redis_client is not None else nothing
                with site.lock:
                    fetched = [p for p in site.requests if p == "/" or p.endswith(".html")]
                    fetches = len(site.requests)
                if len(set(fetched)) != pages:
                    raise SystemExit(f"{tool} fetched {len(set(fetched))} of {pages} pages")
                best = results.get(tool)
                row = {"seconds": seconds, "pages_per_s": pages / seconds,
                       "rss_mb": max(rss, best["rss_mb"] if best else 0),
                       "cpu_ms_per_fetch": 1000 * cpu / fetches,
                       "redis_calls_per_fetch": (after[0] - before[0]) / fetches,
                       "redis_cpu_ms_per_fetch": 1000 * (after[1] - before[1]) / fetches,
                       "server_cpu_ms_per_fetch": 1000 * server_cpu / fetches,
                       # per process: the coordinator's, and the mean of the workers'
                       "coordinator_cpu_ms_per_fetch": 1000 * sum(after[2]["capture"]) / fetches,
                       "worker_cpu_ms_per_fetch": 1000 * (sum(after[2]["worker"]) / len(after[2]["worker"])
                                                          if after[2]["worker"] else 0.0) / fetches}
                if best is None or seconds < best["seconds"]:
                    results[tool] = row
                else:
                    best["rss_mb"] = max(best["rss_mb"], rss)
    return results


PHASES = ("crawl", "seal", "store")


def _phase(work: Path) -> int:
    """Which phase a capture in `work` is in: 0 crawling, 1 sealing, 2 storing (its
    sealed WACZ is there, or its work folder is gone)."""
    folders = [f for f in work.iterdir() if f.is_dir()] if work.is_dir() else []
    if not folders:
        return 2 if work.is_dir() else 0
    folder = folders[0]
    if any(folder.glob("*.wacz")):
        return 2
    try:
        with open(folder / "crawl.jsonl", "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            tail = fh.read()
    except OSError:
        return 0
    return 1 if b'"t":"end"' in tail else 0


def _rss_mb(pid: int) -> tuple[float, float]:
    """(RSS, its high-water mark so far) of a process, in MB."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found.get("VmRSS", 0.0), found.get("VmHWM", 0.0)


def sampled(command: list[str], cwd: Path, work: Path) -> tuple[float, float, list[float], str]:
    """(seconds, peak RSS in MB: the process's own high-water mark (VmHWM) as last
    sampled, the largest RSS sampled in each phase, the phase in which the high-water
    mark last rose: where the peak was, even one too brief for the samples).

    Not rusage's ru_maxrss: a child forked from this process counts this process's RSS
    at the fork (a million-URL site held here: 400 MB more than the capture ever had)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        phases = [0.0] * len(PHASES)
        phase, high, peak_in = 0, 0.0, PHASES[0]
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            rss, hwm = _rss_mb(process.pid)
            phase = max(phase, _phase(work))
            phases[phase] = max(phases[phase], rss)
            if hwm > high + 1:
                peak_in = PHASES[phase]
            high = max(high, hwm)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{command[0]} failed ({code}): {err.read().decode(errors='replace')[-2000:]}")
    return seconds, high, phases, peak_in


def rss_run(urls: int, workers: int, catalog: str, text: str = "off") -> dict:
    """One capture of a generated site of about `urls` URLs: seconds, peak RSS (MB),
    the largest RSS sampled in each phase, URLs fetched."""
    pages = max(1, urls // 6)        # a page, its stylesheet, script and two images: 5 URLs,
    site = generated_site(pages)     # and robots.txt once
    with SiteServer(site) as server, tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        command = [ARCHIVE, "capture", server.url("/"), "--depth", "1000", "--scope", "host",
                   "--unsigned", "--store", str(Path(tmp) / "store"), "--work-dir",
                   str(Path(tmp) / "work"), "--workers", str(workers), "--host-workers",
                   str(workers), "--quiet", "--max-pages", str(pages)]
        if text == "off":
            command.append("--no-text")
        if catalog == "off":
            command += ["--catalog", "off"]
        seconds, rss, phases, peak_in = sampled(command, Path(tmp), Path(tmp) / "work")
        with site.lock:
            fetched = len(site.requests)
    return {"urls": fetched, "seconds": seconds, "rss_mb": rss, "phases": phases, "peak_in": peak_in}


def rss_table(sizes: list[int], workers: int, catalog: str = "on", text: str = "off") -> None:
    print(f"catalog add {catalog}, page text {text}; load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'URLs':>9}  {'fetched':>9}  {'seconds':>8}  {'URLs/s':>7}  {'peak RSS':>9}  {'growth per 10x':>14}"
          + "".join(f"  {name:>9}" for name in PHASES) + "  peak in")
    rows = []
    for size in sizes:
        row = rss_run(size, workers, catalog, text)
        growth = ""
        if rows:
            last = rows[-1]
            factor = (row["rss_mb"] / last["rss_mb"]) ** (1 / max(1e-9, math.log10(
                row["urls"] / last["urls"])))
            growth = f"{factor:.2f}x"
        rows.append(row)
        print(f"{size:>9}  {row['urls']:>9}  {row['seconds']:8.1f}  {row['urls'] / row['seconds']:7.0f}  "
              f"{row['rss_mb']:7.1f}MB  {growth:>14}"
              + "".join(f"  {mb:7.1f}MB" for mb in row["phases"]) + f"  {row['peak_in']:>7}"
              + f"  (load {os.getloadavg()[0]:.2f})", flush=True)
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        per_url = (last["rss_mb"] - first["rss_mb"]) / max(1, last["urls"] - first["urls"]) * 1024
        million = last["rss_mb"] + per_url * (1_000_000 - last["urls"]) / 1024
        print(f"growth {per_url:.2f} KB per URL between the two ends; a straight line gives "
              f"{million:.0f} MB at 1,000,000 URLs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--host-workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each tool per latency, best kept (default 2)")
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also crawl shared through a local Redis by N processes (e.g. 2 4)")
    parser.add_argument("--rss-urls", type=int, nargs="+", default=[],
                        help="measure peak RSS of crawls of this many URLs instead (e.g. 10000 100000)")
    parser.add_argument("--rss-catalog", choices=("on", "off"), default="on",
                        help="with --rss-urls: add the capture to the catalog (the default) or not")
    parser.add_argument("--rss-text", choices=("on", "off"), default="off",
                        help="with --rss-urls: seal each page's text in pages.jsonl (default off: --no-text)")
    args = parser.parse_args()
    if args.rss_urls:
        compileall.compile_dir(ROOT / "archive", quiet=1)
        rss_table(args.rss_urls, args.workers, args.rss_catalog, args.rss_text)
        return 0
    # As an installed package is: byte-compiled (PYTHONDONTWRITEBYTECODE, set on some
    # machines, would otherwise have every run compile our modules again).
    compileall.compile_dir(ROOT / "archive", quiet=1)
    if not shutil.which("wget"):
        raise SystemExit("wget is needed as the peer (scripts/test installs it)")
    print(f"{args.pages} pages (each with a stylesheet, a script and two images), "
          f"archive --workers {args.workers} --host-workers {args.host_workers} (per process); "
          f"best of {args.repeat} runs each; peak RSS is the largest process's of the runs")
    print(f"site served by tests/site.py's Python ThreadingHTTPServer in this process, on the "
          f"same {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    server = client = None
    if args.processes:
        from tests.redisserver import RedisServer
        server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
        client = server.client()
    try:
        print(f"{'latency':>8}  {'wget pages/s':>12}  {'archive pages/s':>15}  {'ratio':>6}  "
              f"{'wget RSS':>9}  {'archive RSS':>11}")
        shared = []
        for latency_ms in args.latency_ms:
            r = run_once(args.pages, latency_ms / 1000, args.workers, args.host_workers,
                         args.repeat, args.processes, server and server.url, client)
            ratio = r["archive"]["pages_per_s"] / r["wget"]["pages_per_s"]
            print(f"{latency_ms:6.0f}ms  {r['wget']['pages_per_s']:12.1f}  "
                  f"{r['archive']['pages_per_s']:15.1f}  {ratio:5.2f}x  "
                  f"{r['wget']['rss_mb']:7.1f}MB  {r['archive']['rss_mb']:9.1f}MB", flush=True)
            shared.append((latency_ms, r))
        if args.processes:
            print("\nshared through Redis (archive capture --redis URL --processes N); CPU in ms "
                  "per fetch of the whole crawl: ours (all processes), the coordinator process, "
                  "one worker process (mean), redis-server, the test server")
            print(f"{'latency':>8}  {'procs':>5}  {'pages/s':>8}  {'vs 1':>6}  {'vs wget':>7}  "
                  f"{'redis calls/fetch':>17}  {'ours':>6}  {'coord':>6}  {'worker':>6}  "
                  f"{'redis':>6}  {'server':>6}  {'peak RSS':>9}")
            for latency_ms, r in shared:
                one = r["archive"]
                print(f"{latency_ms:6.0f}ms  {1:>5}  {one['pages_per_s']:8.1f}  {1:5.2f}x  "
                      f"{one['pages_per_s'] / r['wget']['pages_per_s']:6.2f}x  {0:17.2f}  "
                      f"{one['cpu_ms_per_fetch']:6.3f}  {one['cpu_ms_per_fetch']:6.3f}  {0:6.3f}  "
                      f"{0:6.3f}  {one['server_cpu_ms_per_fetch']:6.3f}  {one['rss_mb']:7.1f}MB")
                for n in args.processes:
                    x = r[f"x{n}"]
                    print(f"{latency_ms:6.0f}ms  {n:>5}  {x['pages_per_s']:8.1f}  "
                          f"{x['pages_per_s'] / one['pages_per_s']:5.2f}x  "
                          f"{x['pages_per_s'] / r['wget']['pages_per_s']:6.2f}x  "
                          f"{x['redis_calls_per_fetch']:17.2f}  {x['cpu_ms_per_fetch']:6.3f}  "
                          f"{x['coordinator_cpu_ms_per_fetch']:6.3f}  {x['worker_cpu_ms_per_fetch']:6.3f}  "
                          f"{x['redis_cpu_ms_per_fetch']:6.3f}  {x['server_cpu_ms_per_fetch']:6.3f}  "
                          f"{x['rss_mb']:7.1f}MB", flush=True)
            print(f"\nceiling of `vs 1` with every core busy: min(N * c1 / c, K * c1 / (c + s + r)), "
                  f"K = {os.cpu_count()} cores (load average now {os.getloadavg()[0]:.2f}); it bounds "
                  f"a crawl that keeps one process's core busy (no added latency), not one that waits "
                  f"on the site")
            for latency_ms, r in shared:
                c1 = r["archive"]["cpu_ms_per_fetch"]
                for n in args.processes:
                    x = r[f"x{n}"]
                    c, s, rr = x["cpu_ms_per_fetch"], x["server_cpu_ms_per_fetch"], x["redis_cpu_ms_per_fetch"]
                    ceiling = min(n * c1 / c, (os.cpu_count() or 1) * c1 / (c + s + rr))
                    print(f"{latency_ms:6.0f}ms  {n:>5}  c1 {c1:.3f}  c {c:.3f}  s {s:.3f}  r {rr:.3f} ms/fetch: "
                          f"ceiling {ceiling:.2f}x, measured "
                          f"{x['pages_per_s'] / r['archive']['pages_per_s']:.2f}x")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
