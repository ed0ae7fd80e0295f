"""One table of capture options (archive.capture.options): every option reaches the crawl
the same from `archive capture`'s flag and from a job file's key, read by one rule; an
option added to the table without a line here fails the first test."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from archive.capture.options import (
    OPTION, OPTIONS, crawl_options, request_values, settings_from_cli,
)
from archive.cli import capture as capture_cli
from archive.errors import ArchiveError
from archive.jobs.request import capture_request
from archive.jobs.spec import parse_job
from tests.jobfiles import job_text

SEED = "http://127.0.0.1:9/"
COOKIES = "/tmp/archive-test-cookies.txt"   # paths only: never read by these tests
PROFILE, PASSFILE = "/tmp/archive-test-profile", "/tmp/archive-test-profile-pass"

# option -> (command-line text, TOML value, the value the crawl gets); for a switch, the
# TOML value that means what giving the flag means
SAMPLES = {
    "depth": ("3", 3, 3), "scope": ("domain", "domain", "domain"),
    "include": ("/a/", ["/a/"], ["/a/"]), "exclude": ("/b/", ["/b/"], ["/b/"]),
    "max_pages": ("5", 5, 5), "max_bytes": ("1MB", "1MB", 1_000_000), "max_time": ("10m", "10m", 600.0),
    "max_body": ("none", "none", None), "workers": ("3", 3, 3), "host_workers": ("2", 2, 2),
    "delay": ("0.5s", "0.5s", 0.5), "retries": ("0", 0, 0), "backoff": ("3s", "3s", 3.0),
    "max_redirects": ("4", 4, 4), "obey_robots": (None, True, False),
    "dedup_against": ("20250101T000000Z-00000001", None, "20250101T000000Z-00000001"),
    "dedup": (None, False, False), "timeout": ("20s", "20s", 20.0),
    "user_agent": ("agent/1", "agent/1", "agent/1"), "verify_tls": (None, True, False),
    "allow_private_addresses": (None, True, True), "allow_metadata_addresses": (None, True, True),
    "warc_size": ("200MB", "200MB", 200_000_000), "text": (None, False, False),
    "redis": ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
    "processes": ("2", 2, 2), "lease": ("45s", "45s", 45.0), "browser": (None, True, True),
    "viewport": ("390x844", "390x844", (390, 844)),
    "wait_until": ("networkidle", "networkidle", "networkidle"), "wait_for": ("#main", "#main", "#main"),
    "wait": ("2s", "2s", 2.0), "scroll": (None, False, False), "page_timeout": ("45s", "45s", 45.0),
    "media": (None, True, True), "media_max_size": ("2GB", "2GB", 2_000_000_000),
    "media_format": ("best", "best", "best"), "media_live": ("10m", "10m", 600.0),
    "media_cookies": (COOKIES, COOKIES, Path(COOKIES)),
    "cookies": (COOKIES, COOKIES, Path(COOKIES)),
    "headers": ("X-Api-Key: k3y", ["X-Api-Key: k3y"], ["X-Api-Key: k3y"]),
    "secret_headers": ("X-Api-Key", ["X-Api-Key"], ["X-Api-Key"]),
    "logged_out_url": ("/expired", ["/expired"], ["/expired"]),
    "logged_out_selector": ("#login-box", ["#login-box"], ["#login-box"]),
    "profile": (PROFILE, PROFILE, Path(PROFILE)),
    "profile_passphrase_file": (PASSFILE, PASSFILE, Path(PASSFILE)),
    "profile_passphrase_env": (None, "MY_PROFILE_PASS", "MY_PROFILE_PASS"),   # a job file's only
}
# what else a job file must say for an option to be valid there (the profile's cross-checks)
WITH = {"profile": {"browser": True}, "profile_passphrase_file": {"browser": True, "profile": PROFILE},
        "profile_passphrase_env": {"browser": True, "profile": PROFILE}}
# option -> (command-line text, TOML value) that both refuse
BAD = {
    "depth": ("-1", -1), "scope": ("world", "world"), "include": ("([", ["(["]),
    "max_pages": ("0", 0), "max_bytes": ("-5MB", "-5MB"), "max_time": ("0s", "0s"),
    "max_body": ("lots", "lots"), "workers": ("0", 0), "host_workers": ("0", 0),
    "delay": ("-1s", "-1s"), "retries": ("-1", -1), "backoff": ("soon", "soon"),
    "max_redirects": ("-1", -1), "timeout": ("0", "0s"), "warc_size": ("big", "big"),
    "processes": ("0", 0), "lease": ("0", "0s"), "viewport": ("big", "big"),
    "wait_until": ("forever", "forever"), "wait": ("-1s", "-1s"), "page_timeout": ("0", "0s"),
    "media_max_size": ("huge", "huge"), "media_live": ("0", "0s"),
    "logged_out_url": ("([", ["(["]), "logged_out_selector": ("a[[", ["a[["]),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archive")
    capture_cli.register(parser.add_subparsers())
    return parser


def _needs(option) -> list[str]:
    return [option.only_with] if option.only_with else []


def from_cli(*names: str):
    args = []
    for name in names:
        option, (text, _, _) = OPTION[name], SAMPLES[name]
        args += [option.flag] if option.switch else [option.flag, text]
    for name in {OPTION[n].only_with for n in names} - {None} - set(names):
        args.append(OPTION[name].flag)
    return settings_from_cli(_parser().parse_args(["capture", SEED, "--unsigned", *args]))


def _job(tmp_path: Path, values: dict[str, object]) -> tuple:
    tables: dict[str, dict] = {"crawl": {}, "run": {}}
    for name, value in values.items():
        option = OPTION[name]
        tables[option.table][option.key_name] = value
        if option.only_with and option.only_with not in values:
            tables["crawl"][option.only_with] = True
        for key, needed in WITH.get(name, {}).items():
            tables["crawl"].setdefault(key, needed)
    path = tmp_path / "job.toml"
    path.write_text(job_text({"name": "job", "seeds": [SEED], "store": str(tmp_path / "store")},
                             signing={"unsigned": True}, **{k: v for k, v in tables.items() if v}))
    return parse_job(path)


def from_job(tmp_path: Path, *names: str):
    spec, problems = _job(tmp_path, {name: SAMPLES[name][1] for name in names})
    assert problems == [], problems
    return spec


def test_every_option_in_the_table_has_a_flag_a_job_key_and_a_test():
    assert set(SAMPLES) == {o.name for o in OPTIONS}, "an option without a sample here: add one"
    dests = {action.dest for action in _parser()._subparsers._group_actions[0].choices["capture"]._actions}
    from archive.jobs.spec import SCHEMA
    for option in OPTIONS:
        assert option.flag is None or option.dest in dests
        assert option.key is None or option.key_name in SCHEMA[option.table]
    # only a job's own previous capture is its dedup base: the one option without a key
    assert [o.name for o in OPTIONS if o.key is None] == ["dedup_against"]
    # a person at the command line has $ARCHIVE_PROFILE_PASSPHRASE and a prompt instead
    assert [o.name for o in OPTIONS if o.flag is None] == ["profile_passphrase_env"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_flag_and_the_job_key_give_the_crawl_the_same_value(name, tmp_path):
    text, toml, expected = SAMPLES[name]
    if OPTION[name].flag:
        cli = from_cli(name)
        assert getattr(cli, name) == expected
        assert getattr(cli, name) != getattr(type(cli)(), name) or name == "delay" and expected == 0
    if toml is not None:
        assert getattr(from_job(tmp_path, name).crawl, name) == expected


def test_a_whole_command_line_and_a_whole_job_file_make_the_same_request(tmp_path):
    """The old renamings hold: --insecure / insecure is verify_tls false, --ignore-robots /
    ignore_robots is obey_robots false, --retry-wait / retry_wait is the backoff."""
    names = [n for n, sample in SAMPLES.items() if sample[1] is not None and OPTION[n].flag
             and n not in ("media_cookies", "profile", "profile_passphrase_file")]   # a profile: no --cookies
    cli, spec = from_cli(*names), from_job(tmp_path, *names)
    assert cli == spec.crawl
    options = crawl_options([SEED], cli)
    assert options == crawl_options([SEED], spec.crawl) == capture_request(spec).crawl
    assert (options.verify_tls, options.obey_robots, options.backoff) == (False, False, 3.0)
    assert options.browser.viewport_width == 390 and options.media.max_size == 2_000_000_000
    job_request = capture_request(spec)
    assert {k: getattr(job_request, k) for k in ("warc_size", "text", "redis", "processes", "lease", "profile")} == \
        {k: v for k, v in request_values(cli).items() if k != "dedup_against"}


@pytest.mark.parametrize("name", sorted(BAD))
def test_both_refuse_the_same_values(name, tmp_path, capsys):
    text, toml = BAD[name]
    option = OPTION[name]
    args = ["capture", SEED, option.flag, text, *[f"--{n}" for n in _needs(option)]]
    try:
        settings = settings_from_cli(_parser().parse_args(args))
    except SystemExit as exited:    # argparse: `argument --flag: what is wrong`
        assert exited.code == 2 and option.flag in capsys.readouterr().err
    else:                           # or the options it goes into, before anything is fetched
        with pytest.raises(ArchiveError, match="positive"):
            crawl_options([SEED], settings)
    spec, problems = _job(tmp_path, {name: toml})
    assert spec is None and [p for p in problems if option.key in p.message], problems


@pytest.mark.parametrize("switch", ["browser", "media"])
def test_an_option_of_the_browser_or_media_alone_is_refused_on_both_sides(switch, tmp_path):
    names = [o.name for o in OPTIONS if o.only_with == switch]
    args = []
    for name in names:
        args += [OPTION[name].flag] if OPTION[name].switch else [OPTION[name].flag, SAMPLES[name][0]]
    with pytest.raises(ArchiveError, match=f"only with --{switch}") as refused:
        settings_from_cli(_parser().parse_args(["capture", SEED, *args]))
    assert all(OPTION[name].flag in str(refused.value) for name in names)
    path = tmp_path / "job.toml"
    path.write_text(job_text({"seeds": [SEED], "store": str(tmp_path / "s")}, signing={"unsigned": True},
                             crawl={OPTION[n].key_name: SAMPLES[n][1] for n in names}))
    spec, problems = parse_job(path)
    assert spec is None and len(problems) == len(names)
    assert all(f"applies with {switch} = true only" in p.message for p in problems)


def test_a_resume_refuses_crawl_options_it_would_not_use(run, tmp_path):
    """A resumed capture finishes with the options saved in its work folder: a crawl
    option given again is refused, not silently ignored; the Redis to share it through
    is what the resuming command says."""
    (tmp_path / "work").mkdir()
    result = run("capture", "--resume", tmp_path / "work", "--depth", "2", "--no-dedup", "--unsigned")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "--depth, --no-dedup: a resumed capture keeps the crawl options" in result.err
    assert [o.name for o in OPTIONS if o.resume != "kept"] == [
        "redis", "profile", "profile_passphrase_file", "profile_passphrase_env"]
    args = _parser().parse_args(["capture", "--resume", "w", "--redis", "redis://127.0.0.1:6390/0"])
    assert settings_from_cli(args, resume=True).redis == "redis://127.0.0.1:6390/0"
