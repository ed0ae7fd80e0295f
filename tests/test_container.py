import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archive.seal.container import ContainerChanged, ContainerWriter
from archive.verify.container import read_canonical

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
