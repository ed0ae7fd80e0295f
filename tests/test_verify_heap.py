"""heap.steady(): reading in 1 MiB pieces of varying size, as verification does, no
longer faults the pages of each piece in afresh."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from tests.shared import ROOT

READER = """
import hashlib, random, resource, sys
from archive.verify import heap
from archive.hashing import Worker
if sys.argv[1] == "steady":
    assert heap.steady()
hasher, worker, rng = hashlib.sha256(), Worker("hash"), random.Random(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with open(sys.argv[2], "rb") as fh:
    while chunk := fh.read(rng.choice([1 << 20, 1 << 20, 300_000, 5_000])):
        worker.submit(hasher.update, chunk)
        hashlib.sha256(chunk)
worker.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, path: str) -> int:
    out = subprocess.run([sys.executable, "-c", READER, mode, path], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return int(out)


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"), reason="glibc's malloc only")
def test_steady_heap_keeps_read_buffers(tmp_path):
    data = tmp_path / "data"
    data.write_bytes(os.urandom(64 << 20))
    default, steady = _faults("default", str(data)), _faults("steady", str(data))
    # 64 MiB faulted in page by page would be 16,384 faults; a steady heap faults in a
    # few buffers' worth (under 2,000 when idle, a little more when the machine is loaded)
    assert steady < 4_000 < default, (default, steady)
