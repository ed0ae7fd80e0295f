import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archive.wacz.zipwriter import ContainerChanged, ContainerWriter
from archive.wacz.zipreader import read_canonical

ROOT = Path(__file__).resolve().parent.parent


def test_zip64_members_are_canonical_and_readable(tmp_path):
    container = ContainerWriter(tmp_path / "c.wacz")
    member = container.begin("archive/big.warc.gz", zip64=True)
    member.write(b"x" * 1000)
    container.end()
    container.add_bytes("datapackage.json", b"{}")
    sha, size = container.finish()
    data = (tmp_path / "c.wacz").read_bytes()
    assert len(data) == size
    with zipfile.ZipFile(tmp_path / "c.wacz") as zf:
        assert zf.read("archive/big.warc.gz") == b"x" * 1000
        assert zf.testzip() is None
    entries = read_canonical(io.BytesIO(data), len(data))
    assert [e.zip64 for e in entries] == [True, False]


def test_member_digests_are_those_of_the_bytes_however_they_are_written(tmp_path):
    """Pieces of 1 MiB and more are hashed on a thread, smaller ones in the writing thread
    once the thread's are done: each member's SHA-256 (what datapackage.json lists) and the
    whole file's are still those of the bytes in order (random bytes: pieces hashed out of
    order, twice or not at all give other digests), a bytearray changed after its write too."""
    import hashlib
    import random
    from archive.wacz.zipwriter import SPREAD
    rng = random.Random(5)
    pieces = [rng.randbytes(n) for n in (10, SPREAD, 3 * SPREAD + 7, 100, 2 * SPREAD, 1, 5000)]
    container = ContainerWriter(tmp_path / "c.wacz")
    member = container.begin("archive/a.warc.gz")
    for piece in pieces:
        buffer = bytearray(piece)
        member.write(buffer)
        buffer[:] = bytes(len(buffer))          # a caller reusing its buffer
    info = container.end()
    container.add_bytes("datapackage.json", b"{}")
    sha, _ = container.finish()
    assert info.sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert sha == hashlib.sha256((tmp_path / "c.wacz").read_bytes()).hexdigest()
    with zipfile.ZipFile(tmp_path / "c.wacz") as zf:
        assert zf.read("archive/a.warc.gz") == b"".join(pieces)


def test_member_changed_on_disk_before_sealing_is_refused(tmp_path):
    container = ContainerWriter(tmp_path / "c.wacz")
    member = container.begin("archive/a.warc.gz")
    member.write(b"original bytes " * 100)
    container.end()
    container._fh.flush()
    with open(container.open_path, "r+b") as fh:       # the disk changes under us
        fh.seek(100)
        fh.write(b"X")
    with pytest.raises(ContainerChanged):
        container.finish()
    assert not (tmp_path / "c.wacz").exists()


def test_seal_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_seal.py"), "--mib", "4", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["warc_bytes"] >= 4 << 20 and result["ratio"] > 0 and result["peak_rss_mb"] > 0


def _journaled_container(tmp_path: Path) -> tuple[ContainerWriter, list[tuple]]:
    """A container as a crawl leaves it: a finished WARC member and one being written,
    with the (member, size, CRC) position journaled after each record group."""
    container = ContainerWriter(tmp_path / "c.wacz")
    positions = []
    for name, groups in (("archive/a.warc.gz", 3), ("archive/b.warc.gz", 3)):
        member = container.begin(name)
        for n in range(groups):
            member.write(f"{name} group {n} ".encode() * 50)
            positions.append((name, member.size, member.crc))
        if name.endswith("a.warc.gz"):
            container.end()
    container.flush()
    return container, positions


def _data_end(path: Path, name: str, size: int) -> int:
    """Where the data of member `name` ends after `size` bytes, in the .open file."""
    data = path.read_bytes()
    start = data.index(name.encode()) + len(name)
    return start + size


def test_reopen_after_a_kill_keeps_the_last_journaled_position(tmp_path):
    container, positions = _journaled_container(tmp_path)
    with open(container.open_path, "ab") as fh:
        fh.write(b"\x1f\x8b half a record")              # written after the last journal line
    container._fh.close()
    reopened, held = ContainerWriter.reopen(tmp_path / "c.wacz", positions)
    assert held == len(positions) - 1
    assert [m.entry.name for m in reopened.members] == ["archive/a.warc.gz"]
    assert reopened.current.size == positions[-1][1] and reopened.current.crc == positions[-1][2]
    assert container.open_path.stat().st_size == _data_end(container.open_path, "archive/b.warc.gz",
                                                          positions[-1][1])
    reopened.end()
    sha, _ = reopened.finish()
    with zipfile.ZipFile(tmp_path / "c.wacz") as zf:
        assert zf.read("archive/b.warc.gz").count(b"group 2") == 50


@pytest.mark.parametrize("lost_to", ["b.group1", "a.group2"])
def test_reopen_after_a_power_loss_cuts_back_to_the_last_position_on_disk(tmp_path, lost_to):
    """The file ends inside what was journaled (the OS never wrote the rest): the
    container is cut back to the last position whose bytes are all there."""
    container, positions = _journaled_container(tmp_path)
    container._fh.close()
    name, group = {"b.group1": ("archive/b.warc.gz", 4), "a.group2": ("archive/a.warc.gz", 2)}[lost_to]
    keep_end = _data_end(container.open_path, name, positions[group - 1][1])
    with open(container.open_path, "r+b") as fh:
        fh.truncate(keep_end + 7)                       # part of the next group survived
    reopened, held = ContainerWriter.reopen(tmp_path / "c.wacz", positions)
    assert held == group - 1
    assert reopened.current.name == name and reopened.current.crc == positions[group - 1][2]
    assert container.open_path.stat().st_size == keep_end
    assert [m.entry.name for m in reopened.members] == (["archive/a.warc.gz"] if group > 3 else [])
    reopened.end()
    reopened.finish()
    with zipfile.ZipFile(tmp_path / "c.wacz") as zf:
        assert zf.testzip() is None and zf.namelist() == [m.entry.name for m in reopened.members]


def test_reopen_refuses_journaled_data_that_is_there_but_changed(tmp_path):
    """A flipped byte is a disk error or tampering, not a loss: nothing is cut away."""
    container, positions = _journaled_container(tmp_path)
    container._fh.close()
    data = bytearray(container.open_path.read_bytes())
    data[_data_end(container.open_path, "archive/b.warc.gz", positions[4][1]) - 3] ^= 0x01
    container.open_path.write_bytes(bytes(data))
    with pytest.raises(ContainerChanged, match="changed on disk after it was journaled"):
        ContainerWriter.reopen(tmp_path / "c.wacz", positions)
    assert container.open_path.read_bytes() == bytes(data), "the damaged data is kept as it is"


def test_reopen_with_nothing_journaled_on_disk_empties_the_container(tmp_path):
    container, positions = _journaled_container(tmp_path)
    container._fh.close()
    with open(container.open_path, "r+b") as fh:
        fh.truncate(40)                                 # the first header, cut short
    reopened, held = ContainerWriter.reopen(tmp_path / "c.wacz", positions)
    assert held is None and reopened.members == [] and reopened.current is None
    assert container.open_path.stat().st_size == 0


def _sealed(folder: Path) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    container = ContainerWriter(folder / "20250101T000000Z-00000001.wacz")
    member = container.begin("archive/a.warc.gz")
    member.write(b"captured bytes " * 5000)
    container.end()
    sha, _ = container.finish()
    return container.path, sha


def test_the_store_takes_a_file_it_sealed_by_link_and_refuses_it_once_changed(tmp_path):
    """A folder store links the file sealing just hashed without reading it again; a file
    changed since (even with its size and modification time put back) is read again and
    refused."""
    import os

    from archive.errors import ArchiveError
    from archive.store.local import LocalStore

    path, sha = _sealed(tmp_path / "work1")
    stored = LocalStore(tmp_path / "store").put_capture(path.stem, path, sha, {})
    assert Path(stored.address).read_bytes() == path.read_bytes() and stored.sha256 == sha
    changed, sha = _sealed(tmp_path / "work2")
    before = changed.stat()
    with open(changed, "r+b") as fh:
        fh.seek(100)
        fh.write(b"X")
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ArchiveError, match="does not match its sealed hash"):
        LocalStore(tmp_path / "store2").put_capture(changed.stem, changed, sha, {})
    assert not list((tmp_path / "store2").rglob("*.wacz"))


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second file system (/dev/shm)")
def test_the_store_copies_from_another_file_system_and_checks_the_copy(tmp_path):
    import shutil
    import tempfile

    from archive.errors import ArchiveError
    from archive.store.local import LocalStore

    work = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        path, sha = _sealed(work)
        if path.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("/dev/shm is on the same file system here")
        stored = LocalStore(tmp_path / "store").put_capture(path.stem, path, sha, {})
        assert Path(stored.address).read_bytes() == path.read_bytes()
        assert Path(stored.address).stat().st_ino != path.stat().st_ino      # a copy, not a link
        with pytest.raises(ArchiveError, match="does not match its sealed hash"):
            LocalStore(tmp_path / "store2").put_capture(path.stem, path, "0" * 64, {})
        assert not list((tmp_path / "store2").rglob("*.wacz"))
    finally:
        shutil.rmtree(work)
