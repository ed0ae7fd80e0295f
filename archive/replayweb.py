"""ReplayWeb.page, the viewer most people given a WACZ open: its npm package at a pinned
version, installed (integrity checked) into a cache folder outside any repository, and
found there by whatever serves it (the tests, the web app).

Standard library only, so `scripts/install-replay` runs before any virtualenv exists.
`python -m archive.replayweb install` installs it and prints its folder;
`python -m archive.replayweb path` prints the folder, or fails when it is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from archive.errors import ArchiveError

PACKAGE = "replaywebpage"
VERSION = "2.5.3"
# dist.integrity of replaywebpage@2.5.3 in the npm registry (`npm view replaywebpage@2.5.3
# dist.integrity`): the tarball installed must be exactly the one reviewed
INTEGRITY = "sha512-nCj2PSON3BxeSJKE8AsYPyULv0XPZKJWfy4l9PyQre9SqwLZ+WKZVs/sfLqPOQ4GrH+0YkjbwOhr8cSTH08gsQ=="
CACHE_ENV = "ARCHIVE_CACHE"
MARKER = ".integrity"          # written last: a folder without it is not a finished install
NEEDED = ("ui.js", "sw.js")    # the page script and the service worker (wabac.js)


class ReplayWebError(ArchiveError):
    """ReplayWeb.page cannot be installed or found (one line, for people)."""


def cache_root() -> Path:
    """$ARCHIVE_CACHE, else $XDG_CACHE_HOME/archive, else ~/.cache/archive."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "archive"


def folder(version: str = VERSION) -> Path:
    """Where that version is (or would be) installed."""
    return cache_root() / f"{PACKAGE}-{version}"


def locate() -> Path | None:
    """The installed folder of the pinned version (holding ui.js and sw.js), or None."""
    path = folder()
    try:
        installed = (path / MARKER).read_text().strip()
    except OSError:
        return None
    if installed != INTEGRITY or not all((path / name).is_file() for name in NEEDED):
        return None
    return path


def integrity_of(data: bytes) -> str:
    """npm's Subresource Integrity string of a tarball: `sha512-<base64>`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def install(tarball: Path | None = None) -> Path:
    """Install the pinned version (fetched with `npm pack` unless `tarball` is given) and
    return its folder; nothing is done when it is installed already. A tarball whose
    integrity differs from the pinned one is refused and nothing is installed."""
    found = locate()
    if found:
        return found
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{PACKAGE}-", dir=root) as tmp:
        data = (tarball or _npm_pack(Path(tmp))).read_bytes()
        actual = integrity_of(data)
        if actual != INTEGRITY:
            raise ReplayWebError(f"{PACKAGE}@{VERSION} tarball integrity is {actual}, expected {INTEGRITY}: "
                                 "refusing to install it")
        unpacked = Path(tmp) / "unpacked"
        archive = Path(tmp) / "package.tgz"
        archive.write_bytes(data)
        with tarfile.open(archive) as tar:
            # the "data" filter refuses links out of the folder, absolute paths, devices
            tar.extractall(unpacked, filter="data")
        package = unpacked / "package"
        if not all((package / name).is_file() for name in NEEDED):
            raise ReplayWebError(f"{PACKAGE}@{VERSION} holds no {' or '.join(NEEDED)}")
        (package / MARKER).write_text(INTEGRITY + "\n")
        target = folder()
        if target.exists():            # a broken or unfinished earlier install
            shutil.rmtree(target)
        try:
            package.rename(target)     # whole or not at all; another installer may have won
        except OSError:
            if not locate():
                raise
    return folder()


def _npm_pack(into: Path) -> Path:
    """The registry's tarball, fetched by npm itself."""
    if not shutil.which("npm"):
        raise ReplayWebError("npm is not installed (Debian: apt-get install npm)")
    try:
        proc = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent", "--pack-destination", str(into)],
                              cwd=into, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ReplayWebError("npm pack took more than 10 minutes") from None
    names = [line.strip() for line in proc.stdout.splitlines() if line.strip().endswith(".tgz")]
    if proc.returncode != 0 or not names:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReplayWebError(f"npm pack {PACKAGE}@{VERSION} failed: {last}")
    return into / names[-1]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "install"
    try:
        if command == "install":
            print(install(Path(argv[1]) if len(argv) > 1 else None))
            return 0
        if command == "path":
            found = locate()
            if not found:
                raise ReplayWebError(f"{PACKAGE}@{VERSION} is not installed in {folder()}: run scripts/install-replay")
            print(found)
            return 0
        raise ReplayWebError(f"unknown command {command!r}: install [TARBALL] or path")
    except (ReplayWebError, OSError, tarfile.TarError) as exc:
        print(f"install-replay: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
