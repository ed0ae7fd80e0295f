#!/usr/bin/env python3
"""`archive serve` under load: server time of the captures list, one capture's page and a
search, p50 and p95 over 200 requests each, with 100 and with 100,000 captures in the
catalog (same run: the ratio shows how cost grows); and the app's memory (peak RSS)
while a large capture is read by ranged requests as ReplayWeb.page reads it.

One real capture (of a page served here) is in a folder store; the other captures are
catalogued only (generated entries with one page of text each), which is what the list
and search read. Requests go over loopback from this process, one at a time.

    scripts/bench_serve.py                       # 100 and 100,000 captures, a 2 GiB capture
    scripts/bench_serve.py --captures 2000 --gib 0.05    # a quick run
"""

from __future__ import annotations

import argparse
import http.server
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.catalog.catalog import CaptureEntry, PageEntry  # noqa: E402
from archive.catalog.locate import open_catalog  # noqa: E402
from archive.store.local import LocalStore  # noqa: E402

ARCHIVE = str(Path(sys.executable).parent / "archive")
_RNG = random.Random(5)
# made-up words used by Zipf's law, as in real text; the searched words are among the rarer ones
WORDS = sorted({"".join(_RNG.choice("etaoinshrdlcumwfgypbvk") for _ in range(_RNG.randint(2, 9))) for _ in range(6000)},
               key=len)
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]
SEARCHED = {"convoy": 0.02, "dawn": 0.05}     # share of pages holding each: "convoy dawn" matches ~0.1%
REQUESTS = 200
RANGE = 1 << 20          # bytes per ranged request, as wabac.js reads a large WACZ in pieces


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def real_capture(store: Path) -> str:
    """One capture of a small page served here, stored in `store` (and catalogued)."""
    body = b"<!doctype html><title>Statement</title><p>The ministry denies the convoy attack at dawn.</p>"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = subprocess.run([ARCHIVE, "capture", f"http://127.0.0.1:{server.server_address[1]}/statement",
                               "--unsigned", "--store", str(store), "--work-dir", str(store.parent / "work"),
                               "--quiet", "--json"], capture_output=True, text=True, check=True)
    finally:
        server.shutdown()
    return json.loads(done.stdout)["capture_id"]


def fill(store: Path, count: int, start: int) -> None:
    """Catalogue generated captures (ids count from `start`) until it holds `count`."""
    rng = random.Random(start)
    catalog, _ = open_catalog(LocalStore(store))
    catalog.db.db.execute("PRAGMA synchronous=OFF")     # a throwaway catalog: no fsync per capture
    try:
        for n in range(start, count):
            day = 1 + n % 28
            capture_id = f"2025{1 + n // 10000 % 12:02d}{day:02d}T{n % 24:02d}{n % 60:02d}{n // 60 % 60:02d}Z-{n:08x}"
            host = f"site{n % 500}.example"
            text = " ".join(rng.choices(WORDS, WEIGHTS, k=120)
                            + [word for word, share in SEARCHED.items() if rng.random() < share])
            catalog.add(CaptureEntry(
                id=capture_id, created=capture_id[:4] + "-" + capture_id[4:6] + "-" + capture_id[6:8] + "T00:00:00Z",
                title=f"Capture {n} of {host}", seeds=[f"https://{host}/page/{n}"], signer="ab" * 32,
                sha256="00" * 32, size=100_000 + n, job=f"job{n % 20}", operator="bench", address=None,
                pages=[PageEntry(url=f"https://{host}/page/{n}", ts=None, status=200, title=f"Page {n}",
                                 mime="text/html", digest=f"sha256:{n:064x}", size=len(text), text=text)]))
    finally:
        catalog.close()


def timed(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=60)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return elapsed * 1000


def latencies(base: str, capture_id: str) -> dict[str, tuple[float, float]]:
    session = requests.Session()
    views = {"list": f"{base}/captures", "list, page 40": None, "capture": f"{base}/captures/{capture_id}",
             "search": f"{base}/search?q=convoy+dawn"}
    # a page far down the list: keyset paging must not get slower with depth
    page = session.get(f"{base}/captures", timeout=60).text
    for _ in range(40):
        marker = page.find('id="older"')
        if marker < 0:
            break
        href = page.rfind('href="', 0, marker)
        link = page[href + 6:page.find('"', href + 6)].replace("&amp;", "&")
        views["list, page 40"] = base + link
        page = session.get(base + link, timeout=60).text
    out = {}
    for name, url in views.items():
        if url is None:
            continue
        for _ in range(5):
            timed(session, url)           # warm: the first request opens the catalog
        values = [timed(session, url) for _ in range(REQUESTS)]
        out[name] = (statistics.median(values), percentile(values, 95))
    return out


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def big_capture(store: Path, gib: float) -> str:
    """A sparse file of `gib` GiB placed as a capture: ranged serving reads bytes, whatever they are."""
    capture_id = "20250101T000000Z-b16b16b1"
    path = LocalStore(store).path_of(capture_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(int(gib * (1 << 30)))
    return capture_id


def replay_memory(base_replay: str, capture_id: str, size: int, pid: int) -> dict:
    """Read the whole capture in RANGE-sized ranged requests (plus random ones): peak RSS."""
    session = requests.Session()
    before = peak_rss_kib(pid)
    started = time.perf_counter()
    url = f"{base_replay}/wacz/{capture_id}.wacz"
    read = 0
    for start in range(0, size, RANGE * 8):      # every 8th MiB in order, then random ones
        r = session.get(url, headers={"Range": f"bytes={start}-{start + RANGE - 1}"}, timeout=60)
        assert r.status_code == 206
        read += len(r.content)
    rng = random.Random(1)
    for _ in range(200):
        start = rng.randrange(0, max(1, size - RANGE))
        read += len(session.get(url, headers={"Range": f"bytes={start}-{start + RANGE - 1}"}, timeout=60).content)
    with session.get(url, stream=True, timeout=600) as whole:       # and once whole (a download)
        for chunk in whole.iter_content(1 << 20):
            read += len(chunk)
    return {"read_mib": read >> 20, "seconds": time.perf_counter() - started,
            "rss_before_mib": before / 1024, "peak_rss_mib": peak_rss_kib(pid) / 1024}


def serve(store: Path):
    proc = subprocess.Popen([ARCHIVE, "serve", "--store", str(store), "--port", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"archive serve stopped: {proc.stderr.read()}")
        lines.append(line)
        try:
            return proc, json.loads("".join(lines))
        except ValueError:
            continue


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captures", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--gib", type=float, default=2.0, help="size of the capture read by ranges (GiB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        store = Path(tmp) / "store"
        capture_id = real_capture(store)
        results = {}
        for count in (args.small, args.captures):
            started = time.perf_counter()
            fill(store, count, start=_held(store))
            print(f"catalog: {count} captures (filled in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
            proc, info = serve(store)
            try:
                results[count] = latencies(info["url"].rstrip("/"), capture_id)
            finally:
                proc.terminate()
                proc.wait()
        print(f"{'view':<16}" + "".join(f"{f'p50 @{n}':>14}{f'p95 @{n}':>14}" for n in results) + f"{'p50 ratio':>11}")
        small, large = results[args.small], results[args.captures]
        for name in large:
            row = "".join(f"{results[n][name][0]:>12.1f}ms{results[n][name][1]:>12.1f}ms" for n in results)
            ratio = large[name][0] / small[name][0] if name in small else float("nan")
            print(f"{name:<16}{row}{ratio:>10.2f}x")
        big = big_capture(store, args.gib)
        proc, info = serve(store)
        try:
            if not info.get("replay"):
                print("memory: skipped (ReplayWeb.page not installed: scripts/install-replay)")
                return 0
            memory = replay_memory(info["replay"].rstrip("/"), big, int(args.gib * (1 << 30)), proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        print(f"memory: a {args.gib:g} GiB capture read by ranges ({memory['read_mib']} MiB in "
              f"{memory['seconds']:.1f} s): app peak RSS {memory['peak_rss_mib']:.0f} MiB "
              f"(before: {memory['rss_before_mib']:.0f} MiB)")
    return 0


def _held(store: Path) -> int:
    """How many generated captures the catalog holds already (the real one aside)."""
    catalog, _ = open_catalog(LocalStore(store))
    try:
        return catalog.counts()["captures"] - 1
    finally:
        catalog.close()


if __name__ == "__main__":
    raise SystemExit(main())
