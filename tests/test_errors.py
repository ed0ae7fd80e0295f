"""One exception tree: every exception class in archive/ that can reach a user derives
from ArchiveError (the CLI says it in one line, exit 2); the few that are control-flow
signals are private (an underscore) or named below with the reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import archive
from archive.errors import ArchiveError

# signals between two parts of the code, caught before anything reaches a user
PRIVATE = {
    "MediaStop": "yt-dlp's progress hook telling media capture to stop a download",
    "MediaInterrupted": "a media download cut short by a stop; the crawl keeps it for a resume",
    "Refused": "a proxy sink's begin() declining a URL; the proxy answers the browser with it",
    "PageStuck": "a page that stopped answering Playwright; the page driver catches it and keeps "
                 "the page as it is then",
    "Unusual": "the fast WARC reader handing a record it does not handle to warcio's",
    "Bomb": "decompression past its bound; verification reports it as a problem of the file",
    "Terminated": "SIGTERM during `jobs run`: a BaseException, so that no `except Exception` "
                  "swallows the stop",
}


def exception_classes() -> dict[str, type]:
    """Every exception class defined in a module of archive/, by qualified name."""
    found = {}
    for module in pkgutil.walk_packages(archive.__path__, "archive."):
        if module.name.endswith("__main__"):
            continue
        mod = importlib.import_module(module.name)
        for name, value in vars(mod).items():
            if inspect.isclass(value) and issubclass(value, BaseException) \
                    and value.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = value
    return found


def test_every_public_exception_is_an_archive_error():
    classes = exception_classes()
    # the walk reaches the families that used to stand apart
    for known in ("CannotCheck", "ContainerChanged", "TimestampError", "DecodeError", "ContainerError",
                  "Uncomparable", "ReplayWebError", "ProtocolError", "AddressRefused", "JobFileError"):
        assert any(q.endswith("." + known) for q in classes), known
    outside = sorted(q for q, cls in classes.items()
                     if not issubclass(cls, ArchiveError) and not cls.__name__.startswith("_")
                     and cls.__name__ not in PRIVATE)
    assert not outside, f"exceptions outside the tree (derive from ArchiveError, or make them private): {outside}"
    # a private signal is never exported under a public alias elsewhere
    stale = sorted(set(PRIVATE) - {cls.__name__ for cls in classes.values()})
    assert not stale, f"listed as private but no longer defined: {stale}"


def test_an_error_from_deep_inside_is_one_line_and_exit_2(tmp_path):
    """CannotCheck (verify's), raised where the input is opened, reaches the CLI's one
    catch-all: one line, no traceback, exit 2."""
    for args in (["verify", str(tmp_path)], ["extract", str(tmp_path), "--url", "http://example.org/"],
                 ["extract", str(tmp_path), "--signature", str(tmp_path / "out")]):
        run = subprocess.run([sys.executable, "-m", "archive", *args], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert run.stderr.startswith("archive: error: ") and "directory" in run.stderr, (args, run.stderr)
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    # a name that carries a line break and a terminal escape is said on one line, escaped
    run = subprocess.run([sys.executable, "-m", "archive", "verify", str(tmp_path / "a\nb\x1b[2J")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "\x1b" not in run.stderr, run.stderr
    assert "a\\nb\\x1b[2J: no such file" in run.stderr, run.stderr
