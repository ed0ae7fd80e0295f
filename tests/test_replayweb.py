"""The ReplayWeb.page installer: only the tarball whose integrity is pinned is installed."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import pytest

from archive import replayweb


def _tarball(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_tarball_other_than_the_pinned_one_is_refused_and_nothing_installed(tmp_path, monkeypatch):
    monkeypatch.setenv(replayweb.CACHE_ENV, str(tmp_path / "cache"))
    other = _tarball(tmp_path / "other.tgz", {"ui.js": b"alert(1)", "sw.js": b"self.x=1"})
    with pytest.raises(replayweb.ReplayWebError, match="integrity is sha512-.*expected " + replayweb.INTEGRITY[:20]):
        replayweb.install(other)
    assert replayweb.locate() is None and not replayweb.folder().exists()
    proc = subprocess.run([sys.executable, "-m", "archive.replayweb", "install", str(other)],
                          capture_output=True, text=True, env={"ARCHIVE_CACHE": str(tmp_path / "cache"), "PATH": ""})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "refusing" in proc.stderr, proc.stderr
    missing = subprocess.run([sys.executable, "-m", "archive.replayweb", "path"], capture_output=True, text=True,
                             env={"ARCHIVE_CACHE": str(tmp_path / "cache"), "PATH": ""})
    assert missing.returncode == 2 and "scripts/install-replay" in missing.stderr


def test_the_installed_copy_is_found_where_scripts_install_it():
    found = replayweb.locate()
    assert found, "scripts/test installs ReplayWeb.page (scripts/install-replay)"
    assert (found / "sw.js").read_bytes().startswith(b"/*! sw.js (wabac.js")
    assert replayweb.INTEGRITY in (found / replayweb.MARKER).read_text()
