"""A full disk, for real: a small tmpfs filled at the stage under test. Every path says in
one line what is kept and the command that finishes it, and that command does."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from archive import pipeline
from archive.store.local import LocalStore
from tests.conftest import stored_waczs
from tests.site import Site, SiteServer

SIZE_MB = 8


@pytest.fixture
def disk(tmp_path):
    """A file system of SIZE_MB, mounted for this test and gone after it."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(where)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path) -> Path:
    """Write until the file system is full; the file that did it (delete it to free space)."""
    filler = where / "filler"
    with open(filler, "ab", buffering=0) as fh:
        for size in (1 << 20, 64 << 10, 4096, 1):
            try:
                while True:
                    fh.write(b"\1" * size)
            except OSError:
                pass
    return filler


@pytest.fixture
def site():
    s = Site()
    s.html("/", "Full", "".join(f'<img src="/{n}.bin">' for n in range(4)))
    for n in range(4):
        s.add(f"/{n}.bin", os.urandom(200_000), content_type="application/octet-stream")
    with SiteServer(s) as server:
        yield server


def _capture(run, disk: Path, url: str, *extra):
    return run("capture", url, "--unsigned", "--store", disk / "store", "--work-dir", disk / "work",
               "--json", "--quiet", *extra)


def _one_line_with_resume(result, disk: Path, words: str) -> Path:
    assert result.code == 2 and result.out == "", result
    assert result.err.count("\n") == 1 and "internal error" not in result.err, result.err
    assert words in result.err, result.err
    command = result.err.split("`archive capture --resume ", 1)[1].split("`", 1)[0]
    assert Path(command).parent == disk / "work"
    return Path(command)


def _finish(run, disk: Path, work: Path, filler: Path) -> dict:
    filler.unlink()
    result = run("capture", "--resume", work, "--unsigned", "--store", disk / "store", "--json", "--quiet")
    assert result.code == 0, result
    stored = Path(stored_waczs(disk / "store")[-1])
    assert run("verify", stored, "--allow-unsigned", "--no-record").code == 0
    return json.loads(result.out)


def test_a_disk_full_while_sealing(run, disk, site, monkeypatch):
    real = pipeline.seal
    fillers = []

    def seal_on_a_full_disk(*args, **kwargs):
        fillers.append(fill(disk))
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, "seal", seal_on_a_full_disk)
    result = _capture(run, disk, site.url("/"))
    work = _one_line_with_resume(result, disk, "could not be sealed")
    monkeypatch.setattr(pipeline, "seal", real)
    summary = _finish(run, disk, work, fillers[0])
    assert summary["requisites"] == 4 and summary["failed"] == 0
    assert not work.exists()


def test_a_disk_full_while_crawling(run, disk, site):
    """The disk fills while the second image is served: what was written before is
    kept, the rest fetched again on resume."""
    fillers = []
    image = site.site.routes["/1.bin"]

    def fill_then_serve(h) -> None:
        fillers.append(fill(disk))
        body = os.urandom(200_000)
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    image.handler = fill_then_serve
    result = _capture(run, disk, site.url("/"), "--workers", "1")
    work = _one_line_with_resume(result, disk, "No space left on device")
    image.handler = None
    summary = _finish(run, disk, work, fillers[0])
    assert summary["requisites"] == 4


def test_a_key_not_published_does_not_fail_a_stored_capture(run, disk, site, key, monkeypatch):
    """Stored and recorded, then the disk fills before the public key is published: the
    capture is a success with a warning; nothing is left to resume or store twice."""
    real = LocalStore.put_capture

    def then_full(self, *args, **kwargs):
        stored = real(self, *args, **kwargs)
        fill(disk)
        return stored
    monkeypatch.setattr(LocalStore, "put_capture", then_full)
    result = run("capture", site.url("/"), "--key", key, "--store", disk / "store",
                 "--work-dir", disk / "work", "--json", "--quiet")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert any("public key was not published" in w for w in summary["warnings"])
    assert "public key was not published" in result.err and result.err.count("\n") >= 1
    assert os.listdir(disk / "work") == []
    assert len(stored_waczs(disk / "store")) == 1
