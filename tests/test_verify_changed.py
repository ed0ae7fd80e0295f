"""A file written to while `archive verify` reads it in one pass (less WARC data than the
worker processes take, or one core) is not judged: the verdict would be about bytes the
file no longer holds. The parallel pass has its own test (test_verify_parallel)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import stored_waczs, tool

SIZE = 40 << 20         # under segments.PARALLEL_MIN: one pass in the verifying process


def _position(pid: int, path: Path) -> int | None:
    """How far the process has read into `path` (its offset in the open file), if open."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])
        except (FileNotFoundError, ValueError, IndexError):
            continue
    return None


def test_a_file_written_to_during_a_single_pass_is_not_judged(run, key, pubkey, site, tmp_path):
    site.site.add("/big.bin", random.Random(11).randbytes(SIZE), content_type="application/octet-stream")
    assert run("capture", site.url("/big.bin"), "--key", key, "--store", tmp_path / "store",
               "--work-dir", tmp_path / "work", "--quiet").code == 0
    path = tmp_path / "changing.wacz"
    path.write_bytes(Path(stored_waczs(tmp_path / "store")[0]).read_bytes())
    # the pass reads front to back: past half of it, every earlier opening is over, and the
    # bytes changed (at 1 MB, in the WARC data) are behind the reading
    verifying = subprocess.Popen([tool("archive"), "verify", str(path), "--trust", str(pubkey), "--quiet",
                                  "--no-record"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    changed = False
    try:
        deadline = time.monotonic() + 60
        while verifying.poll() is None and time.monotonic() < deadline:
            position = _position(verifying.pid, path)
            if position is not None and position > SIZE // 2:
                os.kill(verifying.pid, signal.SIGSTOP)
                with open(path, "r+b") as fh:       # in place: same file, same size
                    fh.seek(1 << 20)
                    fh.write(bytes(1024))
                os.kill(verifying.pid, signal.SIGCONT)
                changed = True
                break
        out, err = verifying.communicate(timeout=60)
    finally:
        verifying.kill()
    assert changed, "the verification ended before it could be caught reading"
    assert verifying.returncode == 2 and out == "", (out, err)
    assert err.count("\n") == 1 and "changed while it was being checked" in err, err
    # and the file as it is now does not verify: a VERIFIED here was about other bytes
    assert run("verify", path, "--trust", pubkey, "--no-record").code == 1
