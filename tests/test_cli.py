"""The command line loads only the module of the command it runs."""

from __future__ import annotations

import subprocess
import sys

from archive.cli import COMMANDS, build_parser


def _commands(parser) -> set[str]:
    return {name for action in parser._subparsers._group_actions for name in action.choices}  # noqa: SLF001


def test_every_command_is_found_by_its_name():
    assert _commands(build_parser()) == set(COMMANDS)
    for command in COMMANDS:
        assert command in _commands(build_parser(command))


def test_verify_starts_without_the_crawler_the_scheduler_or_the_s3_sdk():
    code = ("import sys; from archive.cli import build_parser; build_parser('verify'); "
            "print(sorted(m for m in sys.modules if m.startswith(('archive.capture', 'archive.jobs', "
            "'playwright', 'boto3'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
