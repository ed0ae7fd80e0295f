"""One signer loader (archive.keys): every command and job opens a signing key the same
way, and the command modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from archive import keys
from archive.errors import ArchiveError
from archive.keys import PassphraseSource, chosen_signer, load_signer
from tests.conftest import PASSPHRASE

CLI = Path(__file__).resolve().parent.parent / "archive" / "cli"


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory) -> keys.KeyFiles:
    return keys.generate(tmp_path_factory.mktemp("k"), PASSPHRASE.encode())


def test_a_passphrase_comes_from_the_named_variable_or_file_or_the_default_variable(
        encrypted, tmp_path, monkeypatch):
    monkeypatch.setenv("JOB_PW", PASSPHRASE)
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    by_env = load_signer(encrypted.private, PassphraseSource(env="JOB_PW", interactive=False))
    (tmp_path / "pw").write_text(PASSPHRASE + "\n")        # echo's newline is not part of it
    by_file = load_signer(encrypted.private, PassphraseSource(file=tmp_path / "pw", interactive=False))
    monkeypatch.setenv(keys.PASSPHRASE_ENV, PASSPHRASE)
    by_default = load_signer(encrypted.private)
    assert by_env.fingerprint == by_file.fingerprint == by_default.fingerprint == encrypted.fingerprint
    assert chosen_signer(str(encrypted.private), False).fingerprint == encrypted.fingerprint


def test_what_is_missing_or_wrong_is_one_line_naming_it(encrypted, tmp_path, monkeypatch):
    monkeypatch.delenv(keys.PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv("JOB_PW", raising=False)
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    cases = [
        (PassphraseSource(env="JOB_PW", interactive=False), "the passphrase variable JOB_PW is not set"),
        (PassphraseSource(file=tmp_path / "none", interactive=False), "cannot read passphrase file"),
        (PassphraseSource(interactive=False, missing="say where"), "is encrypted: say where"),
        # no terminal under pytest: nobody to ask
        (PassphraseSource(), f"is encrypted: set {keys.PASSPHRASE_ENV} or run from a terminal"),
    ]
    for source, words in cases:
        with pytest.raises(ArchiveError, match=words):
            load_signer(encrypted.private, source)
    (tmp_path / "wrong").write_text("not it\n")
    with pytest.raises(ArchiveError, match="wrong passphrase or damaged key"):
        load_signer(encrypted.private, PassphraseSource(file=tmp_path / "wrong", interactive=False))
    with pytest.raises(ArchiveError, match="no signing key: give --key FILE"):
        chosen_signer(None, False)
    with pytest.raises(ArchiveError, match="--unsigned and --key contradict"):
        chosen_signer(str(encrypted.private), True)
    assert chosen_signer(None, True) is None


def test_an_unencrypted_key_needs_no_passphrase_and_none_is_read(tmp_path, monkeypatch):
    plain = keys.generate(tmp_path, None)
    monkeypatch.delenv("JOB_PW", raising=False)
    # the variable is named but unset: not asked for, since the key is not encrypted
    signer = load_signer(plain.private, PassphraseSource(env="JOB_PW", interactive=False))
    assert signer.fingerprint == plain.fingerprint


def _cli_imports(path: Path) -> set[str]:
    """The archive.cli modules `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "archive.cli":
                found |= {f"archive.cli.{alias.name}" for alias in node.names}
            elif node.module.startswith("archive.cli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("archive.cli.")}
    return found


def test_the_command_modules_import_each_other_without_a_cycle():
    graph = {f"archive.cli.{p.stem}": _cli_imports(p) for p in CLI.glob("*.py") if p.stem != "__init__"}
    assert graph["archive.cli.timestamp"] and graph["archive.cli.capture"]   # the walk sees imports
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " -> ".join(path + (module,))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, path + (module,))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
