"""The data flow of DESIGN.md, held by an import check: an ast walk over archive/ (imports
inside functions count too), so a layering rule cannot quietly break."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "archive"

ABOVE_CAPTURE = ("store", "seal", "verify", "custody", "catalog", "serve", "jobs", "pipeline", "cli",
                 "reader", "coordinator", "worker", "verifying", "timestamping", "diff")
# package (or module) -> what it must never import (archive.<name> and anything under it)
FORBIDDEN = {
    "capture": ABOVE_CAPTURE,
    "warc": ABOVE_CAPTURE + ("capture",),
    # the format reads and writes bytes, nothing more: what may come in is listed below
    "reader": ("capture", "seal", "custody", "catalog", "serve", "jobs", "pipeline", "cli", "verify",
               "coordinator", "worker", "verifying", "timestamping", "diff"),
    # verify reads through reader/ (which opens store addresses): it never reaches a store itself
    "verify": ("capture", "store", "catalog", "serve", "jobs", "pipeline", "cli", "coordinator", "worker",
               "verifying", "custody"),
}
# the WACZ format package sits below everything: it may import only these
WACZ_MAY_IMPORT = ("wacz", "errors", "files", "hashing", "values")
# known exceptions as (file, module), each with why (remove when the reason goes): none now
ALLOWED: set[tuple[str, str]] = set()


def imported_modules(source: str) -> list[tuple[str, int]]:
    """(module, line) of every import in `source`, `from archive import x` as archive.x."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _under(module: str, name: str) -> bool:
    return module == f"archive.{name}" or module.startswith(f"archive.{name}.")


def violations(files: list[tuple[str, str]]) -> list[str]:
    """What breaks the rules in `files`: (path relative to archive/, source) pairs."""
    problems = []
    for path, source in files:
        owner = path.split("/")[0].removesuffix(".py")
        for module, line in imported_modules(source):
            if not module.startswith("archive.") or any(
                    path == allowed_path and (module == allowed or module.startswith(allowed + "."))
                    for allowed_path, allowed in ALLOWED):
                continue
            if _under(module, "cli") and path != "__main__.py" and owner != "cli":
                problems.append(f"archive/{path}:{line} imports {module}: nothing imports the CLI")
            if owner == "wacz" and not any(_under(module, name) for name in WACZ_MAY_IMPORT):
                problems.append(f"archive/{path}:{line} imports {module}: wacz/ imports only "
                                + ", ".join(WACZ_MAY_IMPORT))
            for name in FORBIDDEN.get(owner, ()):
                if _under(module, name):
                    problems.append(f"archive/{path}:{line} imports {module}: {owner}/ never imports {name}")
    return problems


def archive_files() -> list[tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted(ROOT.rglob("*.py"))]


def test_the_code_keeps_the_layering_rules():
    assert violations(archive_files()) == []


def test_every_exception_is_still_needed():
    files = dict(archive_files())
    for path, module in ALLOWED:
        assert module in {m for m, _ in imported_modules(files[path])}, f"{path} no longer imports {module}"


@pytest.mark.parametrize("path, source", [
    ("capture/dedup.py", "from archive.verify.container import open_zip\n"),
    ("capture/crawl.py", "def f():\n    from archive.store.local import LocalStore\n"),
    ("capture/browser.py", "import archive.seal.wacz\n"),
    ("capture/media.py", "from archive import pipeline\n"),
    ("warc/writer.py", "from archive.seal.container import ContainerWriter\n"),
    ("warc/writer.py", "from archive.capture import fetch\n"),
    ("wacz/zipreader.py", "from archive.verify.bounds import Meter\n"),
    ("wacz/zipwriter.py", "from archive.warc.writer import WARC_DIR\n"),
    ("wacz/claims.py", "from archive.store.base import Store\n"),
    ("reader/source.py", "from archive.verify.model import CannotCheck\n"),
    ("reader/scan.py", "from archive.seal.sign import check_signature\n"),
    ("verify/checks.py", "from archive.capture.fetch import fetch\n"),
    ("verify/source.py", "from archive.store.address import open_capture_target\n"),
    ("pipeline.py", "from archive.cli.common import add_store_options\n"),
    ("serve/app.py", "import archive.cli\n"),
])
def test_a_broken_rule_is_found(path, source):
    assert violations([(path, source)])


@pytest.mark.parametrize("path, source", [
    ("capture/dedup.py", "from archive.wacz.zipreader import open_zip\n"),
    ("warc/writer.py", "from archive.wacz.names import WARC_DIR\n"),
    ("reader/source.py", "from archive.store.address import open_capture_target\n"),
    ("verify/checks.py", "from archive.reader.scan import scan_canonical\n"),
    ("__main__.py", "from archive.cli import main\n"),
    ("cli/verify.py", "from archive.cli.common import add_store_options\n"),
])
def test_what_the_rules_allow_passes(path, source):
    assert violations([(path, source)]) == []
