"""Killing a capture, or the browser under it, with SIGKILL at a chosen moment, for the
resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from tests.conftest import BIN, PASSPHRASE


def group_lines(journal: Path, marker: bytes = b'"t":"group"') -> int:
    return journal.read_bytes().count(marker) if journal.exists() else 0


def start_capture(args: list, work_dir: Path) -> subprocess.Popen:
    """`archive capture ARGS --work-dir WORK_DIR` in a process of its own."""
    # faulthandler: SIGABRT prints every thread's stack (see ended)
    env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE, PYTHONFAULTHANDLER="1")
    return subprocess.Popen(
        [str(BIN / "archive"), "capture", *map(str, args), "--work-dir", str(work_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def journal_when(process: subprocess.Popen, work_dir: Path, ready: Callable[[Path], bool],
                 timeout: float = 120.0) -> Path:
    """The capture's journal once ready(journal) holds; fails (killing the capture) when
    the capture ends first or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        found = list(Path(work_dir).glob("*/crawl.jsonl"))
        if found and ready(found[0]):
            return found[0]
        time.sleep(0.01)
    kill(process)
    raise AssertionError(f"the capture did not get far enough to be killed: {process.communicate()}")


def ended(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """communicate(timeout); a capture still running then is aborted and the test fails
    with every thread's stack, to say where it was stuck."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ps = subprocess.run(["ps", "-eo", "pid,ppid,etime,args"], capture_output=True, text=True).stdout
        browsers = "\n".join(line[:200] for line in ps.splitlines() if "chrom" in line or "playwright" in line)
        if process.poll() is not None:     # gone, but something it started holds its output open
            raise AssertionError(f"exited {process.returncode}, output still open after {timeout:.0f} s:\n"
                                 f"{browsers}") from None
        os.kill(process.pid, signal.SIGABRT)
        raise AssertionError(f"still running after {timeout:.0f} s:\n{browsers}\n"
                             f"{process.communicate()[1][-20000:]}") from None


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def capture_killed_when(args: list, work_dir: Path, ready: Callable[[Path], bool],
                        then_wait: float = 0.0, timeout: float = 120.0) -> Path:
    """Start a capture, kill it `then_wait` seconds after ready(journal) first holds, and
    return its journal."""
    process = start_capture(args, work_dir)
    try:
        journal = journal_when(process, work_dir, ready, timeout)
        time.sleep(then_wait)
        assert process.poll() is None, f"the capture ended before it could be killed: {process.communicate()}"
    finally:
        kill(process)
    return journal


def browser_pid(ancestor: int) -> int:
    """The main Chromium process started (through Playwright's driver) by `ancestor`."""
    def parent(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parent(pid)
            if pid == ancestor:
                return True
        return False

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"chromium" in argv[0] and not any(a.startswith(b"--type=") for a in argv) \
                    and descends(int(entry.name)):
                return int(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError(f"no Chromium started by process {ancestor}")
