"""The crawl benchmark runs end to end in a smoke size (not timed: figures come from
the full-size run, see scripts/bench_crawl.py)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_crawl.py"


def test_bench_crawl_smoke():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--pages", "15", "--repeat", "1", "--latency-ms", "0", "5"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().endswith("MB")]
    assert len(rows) == 2 and all("x" in row for row in rows), done.stdout


def test_bench_crawl_memory_smoke():
    done = subprocess.run([sys.executable, str(SCRIPT), "--rss-urls", "60", "600"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(row[1]) for row in rows] == [51, 501], done.stdout     # every URL fetched
    assert "at 1,000,000 URLs" in done.stdout
