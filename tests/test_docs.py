"""The documentation against the program: every command and option of `archive` is in
README.md or docs/*.md, every variable the code reads from the environment too, and every
relative link in them leads to a file (and heading) that exists."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Runs in a fresh interpreter: `archive CMD... --help` through the CLI's entry point for
# every command and subcommand, found in the help itself (each command group lists its
# actions four spaces in), printed as JSON {"CMD...": help text}. One process rather than
# thirty: the help is the same, the cost a thirtieth.
HELP_OF_EVERY_COMMAND = r"""
import contextlib, io, json, re, sys
from archive.cli import main

def help_of(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv + ["--help"])
    assert code == 0, (argv, code)
    return out.getvalue()

helps, todo = {}, [[]]
while todo:
    argv = todo.pop()
    text = helps[" ".join(argv)] = help_of(argv)
    listing = text.split("positional arguments:", 1)[-1].split("\n\n", 1)[0]
    if re.search(r"(?m)^  (COMMAND|ACTION)$", listing):
        todo += [argv + [name] for name in re.findall(r"(?m)^    ([a-z][a-z-]*)(?:\s|$)", listing)]
json.dump(helps, sys.stdout)
"""


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    """Every command's --help, unwrapped (a wide terminal: no option cut at its hyphen)."""
    env = dict(os.environ, COLUMNS="1000")
    done = subprocess.run([sys.executable, "-c", HELP_OF_EVERY_COMMAND], capture_output=True,
                          text=True, env=env, timeout=120, check=True)
    return json.loads(done.stdout)


def docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def long_options(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", help_text)) - {"--help"}


def undocumented(names: set[str], text: str) -> list[str]:
    """The names that `text` never mentions as a whole word (`--wait` is not in `--wait-for`)."""
    return sorted(n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text))


def test_the_check_sees_an_option_missing_and_not_inside_a_longer_one():
    text = "use `--wait-for SELECTOR` and `archive keys generate --out DIR`"
    assert undocumented({"--wait", "--wait-for", "--out", "--curve"}, text) == ["--curve", "--wait"]
    assert long_options("  --max-pages MAX_PAGES  stop (see --help; not a-- b)") == {"--max-pages"}


def test_every_command_is_documented(helps):
    assert {"capture", "verify", "jobs run", "custody verify", "keys generate"} <= set(helps)
    text = docs_text()
    missing = undocumented({f"archive {command}" for command in helps if command}, text)
    assert missing == []


def test_every_long_option_of_every_command_is_documented(helps):
    text = docs_text()
    missing = {command: undocumented(long_options(help_text), text) for command, help_text in helps.items()}
    assert {command: names for command, names in missing.items() if names} == {}
    assert "--media-cookies" in long_options(helps["capture"])    # the help was read whole


def test_every_environment_variable_the_code_reads_is_documented():
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "archive").rglob("*.py"))
    names = set(re.findall(r"\"(ARCHIVE_[A-Z0-9_]+)\"", code))
    assert {"ARCHIVE_KEY", "ARCHIVE_STORE"} <= names
    assert undocumented(names, docs_text()) == []


def anchors(page: Path) -> set[str]:
    """The #anchors GitHub makes of a page's headings."""
    text = re.sub(r"(?ms)^```.*?^```", "", page.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in re.findall(r"(?m)^#{1,6} +(.+?) *#*$", text):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"(?ms)^```.*?^```", "", page.read_text(encoding="utf-8"))   # not in code
    text = re.sub(r"`[^`\n]*`", "", text)
    links = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_leads_somewhere(page):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(link)
        elif anchor and (target.suffix != ".md" or anchor not in anchors(target)):
            broken.append(link)
    assert broken == []


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Two words: `here`\n\n[ok](#two-words-here) [bad](#nowhere) [gone](b.md)\n"
                    "```\n[not a link](c.md)\n```\n")
    assert relative_links(page) == ["#two-words-here", "#nowhere", "b.md"]
    assert anchors(page) == {"two-words-here"}


def test_the_docs_hold_one_page_per_reader():
    assert {p.name for p in PAGES} >= {"README.md", "capture.md", "investigators.md", "deployment.md",
                                       "formats.md", "development.md"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200      # a way in, not the manual
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def test_ci_runs_the_test_command_the_readme_names():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"(?m)^(scripts/\w+) +#", readme)
    assert commands[:2] == ["scripts/demo", "scripts/test"]
    assert all(os.access(ROOT / command, os.X_OK) for command in commands)
    assert re.search(r"(?m)^exec scripts/test \"\$@\"$", (ROOT / ".ci" / "run").read_text())
