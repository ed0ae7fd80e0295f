from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archive.cli import main as cli_main
from tests.site import SiteServer, standard_site

pytest_plugins = ["tests.s3server", "tests.redisserver"]   # moto S3; Redis

PASSPHRASE = "correct horse battery staple"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def keydir(tmp_path_factory) -> Path:
    """An encrypted signing key pair (passphrase PASSPHRASE), made once per session."""
    out = tmp_path_factory.mktemp("keys")
    env = dict(os.environ, ARCHIVE_KEY_PASSPHRASE=PASSPHRASE)
    subprocess.run([str(BIN / "archive"), "keys", "generate", "--out", str(out)],
                   check=True, env=env, capture_output=True)
    return out


@pytest.fixture
def key(keydir, monkeypatch) -> Path:
    monkeypatch.setenv("ARCHIVE_KEY_PASSPHRASE", PASSPHRASE)
    return keydir / "signing-key.pem"


@pytest.fixture
def pubkey(keydir) -> Path:
    return keydir / "signing-key.pub.pem"


@pytest.fixture
def site():
    with SiteServer(standard_site()) as server:
        yield server


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


@pytest.fixture
def run(capsys, monkeypatch, tmp_path):
    """Run the CLI in-process from tmp_path; returns Result(code, out, err)."""
    monkeypatch.chdir(tmp_path)

    def _run(*args) -> Result:
        capsys.readouterr()
        code = cli_main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


@pytest.fixture
def capture(run, key, site, tmp_path):
    """Capture paths of the test site, signed; returns the stored WACZ path."""
    def _capture(*paths, extra=()) -> Path:
        urls = [site.url(p) for p in paths or ("/",)]
        result = run("capture", *urls, "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", *extra)
        assert result.code == 0, result
        return Path(stored_waczs(tmp_path / "store")[-1])
    return _capture


def stored_waczs(store: Path) -> list[str]:
    return sorted(glob.glob(str(store / "captures/*/*/*/*.wacz")), key=os.path.getmtime)


def tool(name: str) -> str:
    """A console script installed next to this Python (warcio, wacz, archive)."""
    return str(BIN / name)


@pytest.fixture(scope="session")
def tsa_creds():
    """A test TSA's root CA and timestamping certificate, made once per session."""
    from tests.tsa import make_tsa_credentials
    return make_tsa_credentials()


@pytest.fixture
def tsa(tsa_creds):
    """A Time Stamping Authority on 127.0.0.1 issuing real RFC 3161 tokens."""
    from tests.tsa import TestTsa
    with TestTsa(tsa_creds) as server:
        yield server


@pytest.fixture
def tsa_ca(tsa_creds, tmp_path) -> Path:
    """The test TSA's root CA certificate, PEM, as a user would be given it."""
    return tsa_creds.write_ca(tmp_path / "tsa-ca.pem")
