"""Record checks in worker processes, segment by segment (archive.verify.segments), must
say exactly what the sequential reader says: the same records, problems, locations and
verdicts, whatever was done to the file. And zlib-ng, which reads the segments, must
accept, refuse and produce exactly what zlib does."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import random
import signal
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from archive.cli.common import trusted_keys
from archive.reader import fastzlib
from archive.reader import warcs
from archive.verify import segments
from archive.verify.checks import verify_source
from archive.verify.model import CannotCheck, VerifyOptions
from archive.verify.pool import BOOT, cpus
from archive.verify.report import render_json
from archive.reader.scan import CHUNK
from archive.reader.source import Source, local_source
from archive.reader.warcs import WarcChecker
from tests.verifyhelp import gzip_members

ROOT = Path(__file__).resolve().parent.parent
SCALE = 20 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1


def _bench():
    spec = importlib.util.spec_from_file_location("bench_verify", ROOT / "scripts" / "bench_verify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A signed WACZ of about 3 MiB of WARC data like a crawl's, its public key, and its
    WARC file on its own."""
    folder = tmp_path_factory.mktemp("parallel")
    wacz = folder / "capture.wacz"
    bench = _bench()
    signer, _, _ = bench.make_capture(wacz, 3)
    (folder / "key.pub.pem").write_bytes(signer.public_pem())
    with zipfile.ZipFile(wacz) as zf:
        warc = zf.read(sorted(n for n in zf.namelist() if n.startswith("archive/"))[0])
    return wacz, folder / "key.pub.pem", warc, _members(warc)


def _members(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each gzip member."""
    spans, pos = [], 0
    for member in gzip_members(data):
        spans.append((pos, pos + len(member)))
        pos += len(member)
    return spans


def _sequential(path: Path, name: str):
    """What the sequential reader says, fed as the scan feeds it (on a thread of its
    own, as the scan runs it: the walk record by record, not the whole-member path)."""
    checker = WarcChecker(name, threaded=True)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            checker.feed(chunk)
    return checker.finish(), checker.needs_fallback


def _parallel(path: Path, name: str, segment: int, processes: bool = False):
    with open(path, "rb") as fh:
        parallel = segments.ParallelWarcs(str(path), fh, [(name, 0, path.stat().st_size)],
                                          segment=segment, processes=processes)
        try:
            return parallel.results(fh)[name]
        finally:
            parallel.close()


def _said(outcome) -> tuple:
    result, fallback = outcome
    return (fallback, result.readable, result.unchecked, result.reader, result.digests_checked,
            [p.to_dict() for p in result.problems],
            [(r.offset, r.length, r.record_type, r.uri, r.record_id, r.date, r.payload_digest,
              r.content_type) for r in result.records], result.undigested)


def _damaged(data: bytes, how: str, where: float, size: int, members) -> bytes:
    out = bytearray(data)
    pos = min(int(where * len(out)), len(out) - 1)
    if how == "flip":
        out[pos] ^= 1 << (size % 8)
    elif how == "cut":
        del out[pos:]
    elif how == "insert":
        out[pos:pos] = bytes([size % 256]) * (1 + size % 5)
    elif how == "delete":
        del out[pos:pos + 1 + size]
    elif how == "member":       # a record's whole gzip member copied into another one
        start, end = members[size % len(members)]
        out[pos:pos] = data[start:end]
    else:                       # ... or between two (a clean file with one record more)
        start, end = members[size % len(members)]
        at = next((a for a, _ in members if a >= pos), len(data))
        out[at:at] = data[start:end]
    return bytes(out)


@settings(max_examples=120 * SCALE, deadline=None, derandomize=SCALE == 1,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(how=st.sampled_from(["flip", "cut", "insert", "delete", "member", "between"]), where=st.floats(0, 1),
       size=st.integers(0, 4000), segment=st.sampled_from([4 << 10, 32 << 10, 256 << 10]))
def test_segments_say_what_the_sequential_reader_says(tmp_path, capture, how, where, size, segment):
    data = capture[2]
    path = tmp_path / "case.warc.gz"
    path.write_bytes(_damaged(data, how, where, size, capture[3]))
    assert _said(_parallel(path, "case.warc.gz", segment)) == _said(_sequential(path, "case.warc.gz"))


def test_untouched_and_plain_files(tmp_path, capture):
    data = capture[2]
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(data)
    said = _said(_sequential(path, "whole.warc.gz"))
    assert not said[5] and said[0] is None and len(said[6]) > 100
    assert _said(_parallel(path, "whole.warc.gz", 8 << 10)) == said
    plain = tmp_path / "plain.warc"
    plain.write_bytes(b"".join(zlib.decompress(data[a:b], 31) for a, b in capture[3]))
    assert _said(_parallel(plain, "plain.warc", 8 << 10)) == _said(_sequential(plain, "plain.warc"))


def test_a_bomb_only_the_whole_file_reader_would_stop(tmp_path, monkeypatch):
    """Each segment alone stays under the bomb floor; counted from byte 0 the second one
    crosses it. The sequential reader stops there, and so the file is read whole."""
    import gzip
    # bounds far below deflate's own (which no real file can cross) to exercise the logic
    monkeypatch.setattr(warcs, "WORK_FLOOR", 1 << 20)
    monkeypatch.setattr(warcs, "WORK_PER_BYTE", 100)

    def record(body: bytes) -> bytes:
        return gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Target-URI: urn:x\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n\r\n")
    path = tmp_path / "zeros.warc.gz"
    path.write_bytes(record(b"\0" * (900 << 10)) + record(b"\0" * (300 << 10)))
    sequential = _sequential(path, "zeros.warc.gz")
    assert sequential[0].unchecked and "bomb" in sequential[0].unchecked
    assert _said(_parallel(path, "zeros.warc.gz", 512)) == _said(sequential)


def test_zlib_ng_agrees_with_zlib_on_damaged_members(capture):
    if fastzlib.zlib is zlib:
        pytest.skip("zlib-ng is not installed")

    def inflate(module, blob: bytes):
        d = module.decompressobj(31)
        try:
            out = d.decompress(blob, 1 << 20)
            while d.unconsumed_tail and not d.eof:
                out += d.decompress(d.unconsumed_tail, 1 << 20)
        except module.error:
            return "refused"
        return out, d.eof, len(d.unused_data)

    data, rng, members = capture[2], random.Random(7), capture[3]
    for start, end in members[:4] + rng.sample(members, 6):
        member = data[start:end] + data[end:end + 32]
        positions = range(len(member)) if len(member) < 1200 else rng.sample(range(len(member)), 600)
        for pos in positions:
            for bit in (0, 3, 7):
                damaged = bytearray(member)
                damaged[pos] ^= 1 << bit
                assert inflate(zlib, bytes(damaged)) == inflate(fastzlib.zlib, bytes(damaged)), (start, pos, bit)
        for cut in range(0, len(member), max(1, len(member) // 100)):
            assert inflate(zlib, member[:cut]) == inflate(fastzlib.zlib, member[:cut])


def _report(source: Source, key: Path) -> str:
    return render_json(verify_source(source, VerifyOptions(trusted_keys([str(key)]))))


def _in_memory(path: Path) -> Source:
    data = path.read_bytes()
    return Source(str(path), len(data), lambda: io.BytesIO(data))


@pytest.mark.parametrize("damage", [None, 0.3, 0.7])
def test_worker_processes_give_the_sequential_report(tmp_path, capture, monkeypatch, damage):
    """Real worker processes on a WACZ and on a bare WARC, untouched and damaged: the
    report is the one the sequential (in-memory, single reader) path writes."""
    wacz, key, warc, _ = capture
    monkeypatch.setattr(segments, "PARALLEL_MIN", 0)
    monkeypatch.setattr(segments, "SEGMENT", 64 << 10)
    for name, data in (("capture.wacz", wacz.read_bytes()), ("bare.warc.gz", warc)):
        if damage is not None:
            data = bytearray(data)
            data[int(len(data) * damage)] ^= 0x10
        path = tmp_path / name
        path.write_bytes(bytes(data))
        assert _report(local_source(str(path)), key) == _report(_in_memory(path), key)


def _workers() -> list[int]:
    """The verification worker processes this process started (archive.verify.pool)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and _stat(int(entry.name))[1] == os.getpid() \
                    and BOOT.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):      # gone meanwhile
            continue
    return found


def _stat(pid: int) -> tuple[str, int]:
    """A process's state (R, S, T...) and its parent's id, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _stopped(pid: int) -> None:
    """Returns once the process sent SIGSTOP is stopped: kill() returns before that."""
    deadline = time.monotonic() + 10
    while (state := _stat(pid)[0]) not in "Tt":
        if state in "ZX":
            raise ProcessLookupError(pid)      # killed meanwhile (the verification ended)
        assert time.monotonic() < deadline, f"process {pid} did not stop"
        time.sleep(0.0005)


def _holds(pid: int, file: os.stat_result) -> bool:
    """Whether the process has this file open (told by device and inode, not by name)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            opened = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (opened.st_dev, opened.st_ino) == (file.st_dev, file.st_ino):
            return True
    return False


@contextlib.contextmanager
def _appended_while_a_worker_reads(path: Path):
    """Within the block, appends a byte to `path` (as a writer not done with it would) at
    a moment a worker process of the verification holds it open. Each worker is stopped
    (SIGSTOP) before it is looked at, and continued after: one seen holding the file has
    not answered yet, and the verification waits for every answer before its last look
    at the file, so the change falls within the verification, never after it (nor before:
    the workers start once the file is opened for the check). Yields an Event set once
    the byte is appended."""
    file, appended, done = os.stat(path), threading.Event(), threading.Event()

    def watch() -> None:
        while not done.is_set() and not appended.is_set():
            for pid in _workers():
                try:
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        _stopped(pid)
                        if _holds(pid, file):
                            with open(path, "ab") as fh:
                                fh.write(b"\0")
                            appended.set()
                            break
                    finally:
                        os.kill(pid, signal.SIGCONT)
                except (ProcessLookupError, FileNotFoundError):     # ended meanwhile
                    continue
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True, name="appender")
    watcher.start()
    try:
        yield appended
    finally:
        done.set()
        watcher.join()


def test_a_file_changed_while_verified_is_not_judged(tmp_path, capture, monkeypatch):
    """A byte appended to the WACZ while worker processes check its records, after the
    verifier opened it for the check: no verdict on a file that is not one file."""
    if cpus() < 2:
        pytest.skip("the records are checked by worker processes on two cores or more")
    wacz, key, _, _ = capture
    path = tmp_path / "changing.wacz"
    path.write_bytes(wacz.read_bytes())
    monkeypatch.setattr(segments, "PARALLEL_MIN", 0)     # worker processes for a small file
    with _appended_while_a_worker_reads(path) as appended:
        with pytest.raises(CannotCheck, match="the file changed while it was being verified"):
            verify_source(local_source(str(path)), VerifyOptions(trusted_keys([str(key)])))
    assert appended.is_set()
