#!/usr/bin/env python3
"""Benchmark: media capture against plain yt-dlp, and verification of the result
against `warcio check`.

Serves an N MB MP4 and an N MB HLS stream (real H.264 and AAC, made by ffmpeg: a short
noisy clip looped without re-encoding) from a server on 127.0.0.1 in a process of its
own, then, in the same run:
- downloads each with plain `yt-dlp` (same format selector, a folder of its own) and
  captures it with `archive capture --media` (every byte recorded, sealed, stored);
- verifies the MP4 capture (one record of N MB: the response as received, the finished
  file being byte for byte its payload and so a revisit of it) with `archive verify` and
  its WARC with `warcio check`, taking turns `--repeat` times (medians count; the CPU time
  of each is printed too).
Each comparison takes turns `--repeat` times (the median counts: one run on a shared VM
swings by a factor of two). Prints each time with its CPU time (user + system, children
included: steadier than the wall time on a shared machine), the ratios (ours / peer),
every turn's times, the peak RSS of our processes and the size of each capture's WACZ.
Goals: capture at most 1.5x plain yt-dlp; peak RSS under 200 MB; verify no slower
than `warcio check`. `--mb 500` is the full-size run; the test suite runs a small one.
`--verify-only` skips yt-dlp and the HLS stream: the MP4 page is captured once (kept in
`--media-dir` with the media, for the next run) and only verification is timed.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.server
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_media(folder: Path, mb: int) -> None:
    """big.mp4 of about `mb` MB and an HLS copy of it (hls/index.m3u8, 4 s segments)."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "clip.mp4"
    # noise makes the frames large (lossless x264): 4 s of 640x360 make about 40 MB
    size, seconds = ("640x360", "4") if mb >= 50 else ("160x90", "1")
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25,noise=alls=60:allf=t",
           "-f", "lavfi", "-i", "sine=frequency=440", "-t", seconds, "-c:v", "libx264",
           "-preset", "ultrafast", "-qp", "0", "-c:a", "aac", "-shortest", str(clip))
    loops = max(0, round(mb * 1e6 / clip.stat().st_size) - 1)
    ffmpeg("-stream_loop", str(loops), "-i", str(clip), "-c", "copy", "-movflags", "+faststart",
           str(folder / "big.mp4"))
    hls = folder / "hls"
    hls.mkdir(exist_ok=True)
    ffmpeg("-i", str(folder / "big.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "4",
           "-hls_playlist_type", "vod", "-hls_segment_filename", str(hls / "seg-%04d.ts"),
           str(hls / "index.m3u8"))
    (folder / "mp4.html").write_text('<html><body><video src="big.mp4"></video></body></html>')
    (folder / "hls.html").write_text('<html><body><video src="hls/index.m3u8"></video></body></html>')


def serve(folder: str, rate: float = 0.0) -> None:
    """A static file server on 127.0.0.1 (HTTP/1.1, files streamed from disk); prints its port.
    `rate`: at most that many MB/s per response (0: as fast as loopback goes)."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        extensions_map = {".mp4": "video/mp4", ".m3u8": "application/vnd.apple.mpegurl",
                          ".ts": "video/mp2t", ".html": "text/html"}

        def __init__(self, *a, **k):
            super().__init__(*a, directory=folder, **k)

        def log_message(self, *args) -> None:
            pass

        def copyfile(self, source, outputfile) -> None:
            if not rate:
                return super().copyfile(source, outputfile)
            start, sent = time.monotonic(), 0
            while chunk := source.read(1 << 20):
                outputfile.write(chunk)
                sent += len(chunk)
                ahead = sent / (rate * 1e6) - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass            # a client that hangs up early (yt-dlp probing) is no news

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


@contextlib.contextmanager
def media_server(folder: Path, rate: float) -> Iterator[str]:
    """serve(folder, rate) in a process of its own while the block runs; its base URL."""
    server = subprocess.Popen([sys.executable, __file__, "--serve-folder", str(folder), str(rate)],
                              stdout=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}"
    finally:
        server.terminate()
        server.wait()


def timed(cmd: list[str], env=None) -> tuple[float, int, subprocess.CompletedProcess]:
    """(seconds, peak RSS in MB of the process, its result), from wait4's accounting."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())
    return elapsed, usage.ru_maxrss // 1024, result


def cpu_children() -> float:
    """User + system seconds of the waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss(cmd: list[str], env=None) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run `cmd` under GNU time when there is one (the peak RSS of it or its largest child)."""
    gnu_time = "/usr/bin/time"
    if os.path.exists(gnu_time):
        start = time.perf_counter()
        proc = subprocess.run([gnu_time, "-f", "%M", *cmd], capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        rss_kb = int(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else 0
        return elapsed, rss_kb // 1024, proc
    return timed(cmd, env=env)


def verify_against_warcio(wacz: Path, tmp: Path, repeat: int) -> dict:
    """`archive verify` of the capture and `warcio check` of its WARC files (unzipped),
    taking turns `repeat` times, everything in the page cache; medians count. CPU is
    user + system time, workers included: under load the wall times swing, the CPU less."""
    unzipped = tmp / "unzipped"
    with zipfile.ZipFile(wacz) as zf:
        warcs = [n for n in zf.namelist() if n.startswith("archive/")]
        zf.extractall(unzipped, warcs)
    subprocess.run(["cat", str(wacz), *(str(unzipped / n) for n in warcs)], stdout=subprocess.DEVNULL)
    tools = {"archive": [str(BIN / "archive"), "verify", str(wacz), "--allow-unsigned", "--json", "--quiet"],
             "warcio": [str(BIN / "warcio"), "check", *(str(unzipped / n) for n in warcs)]}
    runs: dict[str, list[tuple[float, float, int]]] = {tool: [] for tool in tools}
    for _ in range(repeat):
        for tool, cmd in tools.items():
            before = cpu_children()
            seconds, rss, checked = timed(cmd)
            cpu = cpu_children() - before
            if checked.returncode:
                sys.exit(f"{tool} failed: {(checked.stdout + checked.stderr)[-2000:]}")
            runs[tool].append((seconds, cpu, rss))
    shutil.rmtree(unzipped)
    ours, peer = (statistics.median(r[0] for r in runs[t]) for t in ("archive", "warcio"))
    ours_cpu, peer_cpu = (statistics.median(r[1] for r in runs[t]) for t in ("archive", "warcio"))
    return {"archive_s": round(ours, 2), "warcio_s": round(peer, 2), "ratio": round(ours / peer, 2),
            "archive_cpu_s": round(ours_cpu, 2), "warcio_cpu_s": round(peer_cpu, 2),
            "archive_peak_rss_mb": max(r[2] for r in runs["archive"]), "repeat": repeat,
            "wacz_bytes": wacz.stat().st_size,
            "runs": {t: [round(r[0], 2) for r in runs[t]] for t in tools},
            "load": os.getloadavg()[0]}


def verify_only(args: argparse.Namespace) -> dict:
    """The verification part alone: the MP4 page captured once (kept in --media-dir as
    capture.wacz, and used again by the next run), then verify_against_warcio."""
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        tmp = Path(tmp)
        media = Path(args.media_dir) if args.media_dir else tmp / "media"
        wacz = media / "capture.wacz"
        if not wacz.exists():
            if not (media / "big.mp4").exists():
                make_media(media, args.mb)
            with media_server(media, 0.0) as base:
                done = subprocess.run(
                    [str(BIN / "archive"), "capture", f"{base}/mp4.html", "--media", "--unsigned",
                     "--store", str(tmp / "store"), "--work-dir", str(tmp / "work"), "--json", "--quiet"],
                    capture_output=True, text=True, env=dict(os.environ, ARCHIVE_KEY_PASSPHRASE=""))
            if done.returncode:
                sys.exit(f"archive capture failed: {done.stderr[-2000:]}")
            shutil.copyfile(json.loads(done.stdout)["address"], wacz)
        return {"mb": args.mb, "mp4Bytes": (media / "big.mp4").stat().st_size,
                "verify": verify_against_warcio(wacz, tmp, args.repeat)}


def print_verify(v: dict) -> None:
    print(f"verify ({v['wacz_bytes'] / 1e6:.0f} MB WACZ, medians of {v['repeat']} runs taking turns, "
          f"load average {v['load']:.2f}): archive verify {v['archive_s']:.2f} s "
          f"(CPU {v['archive_cpu_s']:.2f} s)   warcio check {v['warcio_s']:.2f} s (CPU {v['warcio_cpu_s']:.2f} s)   "
          f"ratio {v['ratio']:.2f} (goal <= 1.0)   peak RSS {v['archive_peak_rss_mb']} MB")
    print(f"  runs: archive verify {v['runs']['archive']} s, warcio check {v['runs']['warcio']} s")


def capture_turn(base: str, media_url: str, page: str, tmp: Path, env: dict) -> dict:
    """One turn: plain yt-dlp, then `archive capture --media` of the page naming the same
    media (each with its CPU time and peak RSS, and the capture's WACZ)."""
    out = tmp / "ytdlp"
    cpu = cpu_children()
    ytdlp_s, ytdlp_rss, done = peak_rss(
        [str(BIN / "yt-dlp"), "--ignore-config", "--no-cache-dir", "-q",
         "-f", "bestvideo*+bestaudio/best", "--hls-prefer-native",
         "-P", str(out), "-o", "media.%(ext)s", f"{base}/{media_url}"])
    if done.returncode:
        sys.exit(f"yt-dlp failed: {done.stderr[-2000:]}")
    ytdlp_cpu, cpu = cpu_children() - cpu, cpu_children()
    shutil.rmtree(tmp / "store", ignore_errors=True)
    ours_s, ours_rss, done = peak_rss(
        [str(BIN / "archive"), "capture", f"{base}/{page}", "--media", "--unsigned",
         "--store", str(tmp / "store"), "--work-dir", str(tmp / "work"),
         "--json", "--quiet"], env=env)
    if done.returncode:
        sys.exit(f"archive capture failed: {done.stderr[-2000:]}")
    ours_cpu = cpu_children() - cpu
    shutil.rmtree(out, ignore_errors=True)
    wacz = Path(json.loads(done.stdout)["address"])
    return {"ytdlp_s": ytdlp_s, "archive_s": ours_s, "ytdlp_cpu_s": ytdlp_cpu, "archive_cpu_s": ours_cpu,
            "ytdlp_peak_rss_mb": ytdlp_rss, "archive_peak_rss_mb": ours_rss,
            "wacz_bytes": wacz.stat().st_size, "wacz": wacz}


def medians(runs: list[dict]) -> dict:
    """The turns of one kind of media: median times (the ratio is of the medians), the
    largest peak RSS, and every turn's times."""
    mid = {k: statistics.median(r[k] for r in runs)
           for k in ("ytdlp_s", "archive_s", "ytdlp_cpu_s", "archive_cpu_s")}
    return {**{k: round(v, 2) for k, v in mid.items()},
            "ratio": round(mid["archive_s"] / mid["ytdlp_s"], 2),
            "archive_peak_rss_mb": max(r["archive_peak_rss_mb"] for r in runs),
            "ytdlp_peak_rss_mb": max(r["ytdlp_peak_rss_mb"] for r in runs),
            "wacz_bytes": runs[-1]["wacz_bytes"],
            "runs": {"ytdlp": [round(r["ytdlp_s"], 2) for r in runs],
                     "archive": [round(r["archive_s"], 2) for r in runs],
                     "ratio": [round(r["archive_s"] / r["ytdlp_s"], 2) for r in runs]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=500, help="MB of each media (default 500)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="serve the media at most this many MB/s, as a real link would "
                             "(default: loopback's full speed, the goal's case)")
    parser.add_argument("--media-dir", help="keep the generated media here (made once)")
    parser.add_argument("--verify-only", action="store_true",
                        help="only archive verify against warcio check (the capture made once)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="turns of each comparison (yt-dlp and capture, verify and warcio "
                             "check), the median counting (default 3)")
    args = parser.parse_args()
    # As an installed package is, and as yt-dlp is: byte-compiled (with PYTHONDONTWRITEBYTECODE,
    # set on some machines, each capture would compile our modules again: about 0.3 s)
    compileall.compile_dir(ROOT / "archive", quiet=1)
    if args.verify_only:
        results = verify_only(args)
        if args.json:
            print(json.dumps(results))
        else:
            print_verify(results["verify"])
        return
    results: dict = {"mb": args.mb, "rateMBps": args.rate or None, "loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        tmp = Path(tmp)
        media = Path(args.media_dir) if args.media_dir else tmp / "media"
        if not (media / "big.mp4").exists():
            make_media(media, args.mb)
        results["mp4Bytes"] = (media / "big.mp4").stat().st_size
        with media_server(media, args.rate) as base:
            env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE="")
            for kind, media_url, page in (("mp4", "big.mp4", "mp4.html"),
                                          ("hls", "hls/index.m3u8", "hls.html")):
                runs = [capture_turn(base, media_url, page, tmp, env) for _ in range(args.repeat)]
                results[kind] = medians(runs)
                if kind == "mp4":   # the last turn's capture (the next turn's removes it)
                    results["verify"] = verify_against_warcio(runs[-1]["wacz"], tmp, args.repeat)
                shutil.rmtree(tmp / "store", ignore_errors=True)
    results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(results))
        return
    served = f"at most {args.rate:g} MB/s" if args.rate else "at loopback's full speed"
    print(f"media of {results['mp4Bytes'] / 1e6:.0f} MB on 127.0.0.1, served {served}; load average "
          f"{results['loadavg_before']} before, {results['loadavg_after']} after")
    for kind in ("mp4", "hls"):
        r = results[kind]
        print(f"{kind:<4} yt-dlp {r['ytdlp_s']:7.2f} s (CPU {r['ytdlp_cpu_s']:.2f} s)   archive capture --media "
              f"{r['archive_s']:7.2f} s (CPU {r['archive_cpu_s']:.2f} s)   ratio {r['ratio']:.2f}   peak RSS "
              f"{r['archive_peak_rss_mb']} MB (yt-dlp {r['ytdlp_peak_rss_mb']} MB)   WACZ {r['wacz_bytes'] / 1e6:.0f} MB")
        print(f"     runs: yt-dlp {r['runs']['ytdlp']} s, archive {r['runs']['archive']} s, "
              f"ratios {r['runs']['ratio']}")
    print_verify(results["verify"])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-folder":
        serve(sys.argv[2], float(sys.argv[3]))
    else:
        main()
