"""The search benchmark runs end to end in a smoke size (not timed: figures come from the
full-size run, see scripts/bench_search.py)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_search.py"


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep is not installed (scripts/test installs it)")
def test_bench_search_smoke():
    done = subprocess.run([sys.executable, str(SCRIPT), "--pages", "2000"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()[:1] in (["sqlite"], ["ripgrep"])}
    assert {"sqlite", "ripgrep"} <= set(rows), done.stdout
    assert "sqlite: catalog" in done.stdout and "the distinct text" in done.stdout
    assert "load average during the run" in done.stdout
    assert "indexed" not in done.stderr      # no progress line when not on a terminal
