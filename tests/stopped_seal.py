"""A capture stopped for real in the middle of its seal, for the tests of what a seal that
does not finish leaves behind.

The seal signs datapackage.json, then asks the TSAs for tokens over it, then writes
datapackage-digest.json and renames the container to its final name
(archive/seal/wacz.py). A test TSA that takes the request and holds its answer keeps the
capture between the signature and the digest: once the TSA has the request, the capture
is provably in its seal, and a signal sent then stops it there.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.killing import ended, kill, start_capture
from tests.tsa import TestTsa, TsaCredentials

HELD = 600.0        # seconds the TSA holds an answer: longer than any test waits


@contextmanager
def holding_tsa(creds: TsaCredentials) -> Iterator[TestTsa]:
    """A TSA that takes a request and answers nothing until it is closed (its `slow`
    mode); set its `mode` to "ok" and it answers the next requests at once."""
    with TestTsa(creds, mode="slow", delay=HELD) as tsa:
        yield tsa


def capture_stopped_in_seal(args: list, work_dir: Path, tsa: TestTsa, signum: int,
                            timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`archive capture ARGS --tsa TSA` in a process of its own, sent `signum` once `tsa`
    (holding) has its timestamp request; what the process said and its exit code.
    --tsa-timeout is longer than the hold, so the capture cannot give up on the TSA and
    seal without it before the signal."""
    asked = tsa.requests
    process = start_capture([*args, "--tsa", tsa.url, "--tsa-timeout", f"{HELD:g}"], work_dir)
    try:
        deadline = time.monotonic() + timeout
        while tsa.requests == asked:
            if process.poll() is not None or time.monotonic() > deadline:
                kill(process)
                raise AssertionError(f"the capture never asked the TSA: {process.communicate()}")
            time.sleep(0.01)
        os.kill(process.pid, signum)
        out, err = ended(process, timeout)
    finally:
        kill(process)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
