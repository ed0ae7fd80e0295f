"""The store benchmark runs end to end in a smoke size (not timed: figures come from
the full-size run, see scripts/bench_store.py)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_store.py"


def test_bench_store_smoke():
    done = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "200", "2000", "--s3-sizes", "20"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if " entries " in line]
    assert len(rows) == 3 and all("custody verify" in row for row in rows), done.stdout
    assert "folder: growth per 10x entries" in done.stdout
    assert " req " in rows[-1]
