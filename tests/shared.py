"""Where the workspace's shared test data is: files written by other tools, read in place
(never copied into the project)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """$ARCHIVE_SHARED, else `shared/` beside this repository, else beside the repository
    this one was cloned from (a clean clone made elsewhere, as CI makes)."""
    candidates = [Path(os.environ["ARCHIVE_SHARED"])] if os.environ.get("ARCHIVE_SHARED") else []
    candidates.append(ROOT.parent / "shared")
    try:
        origin = subprocess.run(["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and "://" not in origin and ":" not in origin.split("/")[0]:
        candidates.append(Path(origin).resolve().parent / "shared")
    for candidate in candidates:
        if (candidate / "testdata" / "foreign").is_dir():
            return candidate
    return candidates[0]     # missing: the tests that need it fail naming this path


FOREIGN = shared_dir() / "testdata" / "foreign"
