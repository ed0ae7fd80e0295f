#!/usr/bin/env python3
"""Benchmark: full verification of a sealed capture of N MiB of WARC data, against two
peers timed in the same run on the same WARC files:

- `warcio check` (what an investigator would otherwise run; it checks record digests
  only: no file hash, no index, no signature);
- `gzip -dc | openssl dgst -sha256` (one decompress-and-hash pass: the least that
  checking every record digest can cost).

Goals: verification at least 2.5x faster than warcio check, no slower than the
gzip-into-openssl pass, peak RSS under 150 MB. Each tool runs `--repeat` times, the
tools taking turns, and its median time counts. Verification runs in a child process
(`archive verify`, its own peak RSS measured); all files are in the page cache.

The capture looks like a crawl: for each fetched resource a response, a request and a
metadata record; bodies from 200 bytes to 256 KiB (log-uniform: about 36 KB on average,
like the HTTP Archive's median page of some 2 MB over 70 requests), a third of them
compressible text and the rest incompressible (images, already-compressed bodies).
`--mib 1024` is the full-size run; the test suite runs a small one.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from archive.wacz.zipwriter import ContainerWriter  # noqa: E402
from archive.seal.sign import Signer  # noqa: E402
from archive.seal.wacz import SealInput, seal  # noqa: E402
from archive.warc.cdxj import cdxj_line  # noqa: E402
from archive.warc.writer import WarcWriter, warc_fields  # noqa: E402

WORDS = [w.encode() for w in (
    "the of and to in is that for on with as was by statement ministry report events "
    "people city said government official forces were after press release village "
    "<p> </p> <div class=\"article\"> </div> <a href=\"/news/\"> </a> <span> </span>").split()]


def _text(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(WORDS, k=64)) + b"\n"
    return bytes(out[:size])


def make_capture(path: Path, mib: int, seed: int = 7) -> tuple[Signer, int, int]:
    """A signed WACZ of about `mib` MiB of WARC data; (signer, WARC bytes, records)."""
    rng = random.Random(seed)
    signer = Signer(ec.generate_private_key(ec.SECP256R1()))
    container = ContainerWriter(path)
    writer = WarcWriter(container, "bench", {"software": "bench"}, max_size=256 << 20)
    lines, pages, total, n = [], [], 0, 0
    while total < mib << 20:
        size = int(2 ** rng.uniform(7.65, 18))
        body = _text(rng, size) if rng.random() < 0.35 else rng.randbytes(size)
        url = f"http://bench.test/{n}"
        block = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
        ref = writer.write("response", url, block)
        writer.write("request", url, b"GET /" + str(n).encode() + b" HTTP/1.1\r\nHost: bench.test\r\n\r\n",
                     extra={"WARC-Concurrent-To": ref.record_id})
        writer.write("metadata", url, warc_fields({"ip-address": "127.0.0.1", "fetch-time-ms": 12}),
                     extra={"WARC-Concurrent-To": ref.record_id})
        lines.append(cdxj_line(url, ref.date, ref.filename, ref.offset, ref.length, "response"))
        if n % 50 == 0:
            pages.append({"url": url, "ts": "2026-01-01T00:00:00Z"})
        total += len(block)
        n += 1
    files = writer.close()
    seal(container, SealInput("bench", lines, pages), signer)
    return signer, sum(f.size for f in files), n * 3 + len(files)


def _timed(command, shell: bool = False) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=shell, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _verify_child(wacz: Path, pub: Path) -> dict:
    """`archive verify` in a child process: its wall time, exit code, peak RSS."""
    archive = Path(sys.executable).parent / "archive"
    command = [str(archive), "verify", str(wacz), "--trust", f"bench={pub}", "--quiet", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report = json.loads(proc.stdout) if proc.stdout else {}
    return {"seconds": seconds, "code": proc.returncode, "verdict": report.get("verdict"),
            "rss_mb": max(peak, before) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="MiB of WARC data (default 1024)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each tool, taking turns; medians count (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # As an installed package is: byte-compiled (PYTHONDONTWRITEBYTECODE, set on some
    # machines, would otherwise have every run compile our modules again).
    compileall.compile_dir(ROOT / "archive", quiet=1)

    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        tmp = Path(tmp)
        wacz = tmp / "bench.wacz"
        signer, warc_bytes, records = make_capture(wacz, args.mib)
        wacz_bytes = wacz.stat().st_size
        pub = tmp / "bench.pub.pem"
        pub.write_bytes(signer.public_pem())
        warcs = []
        with zipfile.ZipFile(wacz) as zf:        # the peers read the WARC files on their own
            for name in zf.namelist():
                if name.startswith("archive/"):
                    target = tmp / name.rsplit("/", 1)[-1]
                    with zf.open(name) as src, open(target, "wb") as out:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                    warcs.append(str(target))
        os.sync()
        _timed(["cat", str(wacz), *warcs], False)      # everything in the page cache

        # The tools take turns, `repeat` times, and each one's median time counts: the
        # machine is shared, and a load spike should neither land on one tool only nor
        # decide a figure.
        warcio = Path(sys.executable).parent / "warcio"
        runs: dict[str, list] = {"ours": [], "warcio": [], "pipe": []}
        for _ in range(args.repeat):
            runs["ours"].append(_verify_child(wacz, pub))
            runs["warcio"].append(_timed([str(warcio), "check", *warcs]))
            runs["pipe"].append(_timed("gzip -dc " + " ".join(warcs) + " | openssl dgst -sha256", shell=True))
        ours = {"seconds": statistics.median(r["seconds"] for r in runs["ours"]),
                "rss_mb": max(r["rss_mb"] for r in runs["ours"]),
                "verdict": "/".join(sorted({r["verdict"] or "none" for r in runs["ours"]})),
                "code": max(r["code"] for r in runs["ours"])}
        warcio_s, pipe_s = statistics.median(runs["warcio"]), statistics.median(runs["pipe"])

    result = {
        "wacz_bytes": wacz_bytes, "warc_bytes": warc_bytes,
        "records": records, "verdict": ours["verdict"], "exit_code": ours["code"],
        "repeat": args.repeat, "verify_seconds": round(ours["seconds"], 3), "warcio_check_seconds": round(warcio_s, 3),
        "gzip_openssl_seconds": round(pipe_s, 3),
        "speedup_vs_warcio": round(warcio_s / ours["seconds"], 2), "goal_speedup_vs_warcio": 2.5,
        "ratio_vs_gzip_openssl": round(ours["seconds"] / pipe_s, 2), "goal_ratio_vs_gzip_openssl": 1.0,
        "peak_rss_mb": round(ours["rss_mb"], 1), "goal_rss_mb": 150,
        "runs": {"verify": [round(r["seconds"], 3) for r in runs["ours"]],
                 "warcio_check": [round(t, 3) for t in runs["warcio"]],
                 "gzip_openssl": [round(t, 3) for t in runs["pipe"]]},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"WARC files        {warc_bytes / 2**20:.0f} MiB (gzipped), {records} records, {len(warcs)} files")
    print(f"medians of {args.repeat} runs each, the tools taking turns")
    print(f"archive verify    {ours['seconds']:.3f} s  ({ours['verdict']}, exit {ours['code']}; "
          "file hash + member hashes + every record digest + index + signature)")
    print(f"warcio check      {warcio_s:.3f} s  -> verify is {result['speedup_vs_warcio']}x faster (goal >= 2.5x)")
    print(f"gzip | openssl    {pipe_s:.3f} s  -> verify takes {result['ratio_vs_gzip_openssl']}x its time (goal <= 1.0x)")
    print(f"peak RSS          {result['peak_rss_mb']} MB (goal < 150 MB)")
    for tool, times in result["runs"].items():
        print(f"  {tool:<15} runs: {', '.join(f'{t:.2f}' for t in times)} s")


if __name__ == "__main__":
    main()
