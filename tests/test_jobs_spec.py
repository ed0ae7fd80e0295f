"""Job files: every malformed one gets a clear message with its line, exit 2, and no capture."""

import json
from pathlib import Path
from datetime import datetime, timezone

import pytest

from archive.jobs.schedule import parse_schedule
from archive.jobs.spec import key_lines, load_job

GOOD = """\
name = "statements"
seeds = ["{url}"]
store = "{store}"
schedule = "0 */6 * * *"

[crawl]
depth = 1
scope = "prefix"
max_bytes = "50MB"
max_time = "10m"

[signing]
key = "{key}"
passphrase_env = "ARCHIVE_KEY_PASSPHRASE"
"""

# (case id, replace this text, by this text, expected line, expected words)
BAD = [
    ("not-toml", 'scope = "prefix"', 'scope = "prefix', 8, "not valid TOML"),
    ("unknown-top-key", 'schedule = "0 */6 * * *"', 'schedul = "0 */6 * * *"', 4,
     "unknown key 'schedul' (did you mean 'schedule'?)"),
    ("unknown-crawl-key", "depth = 1", "dept = 1", 7, "unknown key 'dept' in [crawl] (did you mean 'depth'?)"),
    ("unknown-table", "[crawl]", "[crawler]", 6, "unknown key 'crawler' (did you mean 'crawl'?)"),
    ("bad-cron", "0 */6 * * *", "0 */6 * *", 4, "has 4 fields"),
    ("cron-out-of-range", "0 */6 * * *", "61 * * * *", 4, "not a valid cron expression"),
    ("cron-and-every", 'schedule = "0 */6 * * *"', 'schedule = "0 */6 * * *"\nevery = "5s"', 5,
     "either 'schedule' or 'every'"),
    ("bad-every", 'schedule = "0 */6 * * *"', 'every = "often"', 4, "not a duration: 'often'"),
    ("no-seeds", 'seeds = ["{url}"]\n', "", None, "missing 'seeds'"),
    ("empty-seeds", 'seeds = ["{url}"]', "seeds = []", 2, "must list at least one URL"),
    ("seed-not-url", 'seeds = ["{url}"]', 'seeds = ["ftp://example.org/"]', 2, "not an http(s) URL"),
    ("seeds-not-list", 'seeds = ["{url}"]', 'seeds = "{url}"', 2, "must be a list of texts"),
    ("no-store", 'store = "{store}"\n', "", None, "missing 'store'"),
    ("bad-scope", 'scope = "prefix"', 'scope = "everything"', 8, "must be one of page, prefix, host, domain"),
    ("depth-text", "depth = 1", 'depth = "1"', 7, "must be a whole number, not the text '1'"),
    ("depth-negative", "depth = 1", "depth = -1", 7, "must be 0 or more"),
    ("depth-bool", "depth = 1", "depth = true", 7, "must be a whole number, not true/false"),
    ("bad-size", 'max_bytes = "50MB"', 'max_bytes = "50XB"', 9, "not a size: '50XB'"),
    ("bad-regex", "depth = 1", 'depth = 1\nexclude = ["("]', 8, "is not a regular expression"),
    ("bad-name", 'name = "statements"', 'name = "../escape"', 1, "not a usable job name"),
    ("bad-timezone", 'schedule = "0 */6 * * *"', 'schedule = "0 */6 * * *"\ntimezone = "Mars/Olympus"', 5,
     "not a known time zone"),
    ("no-key", 'key = "{key}"\npassphrase_env = "ARCHIVE_KEY_PASSPHRASE"\n', "", 12, "no signing key"),
    ("key-missing", 'key = "{key}"', 'key = "/nonexistent/key.pem"', 13, "key file not found"),
    ("key-and-unsigned", 'key = "{key}"', 'key = "{key}"\nunsigned = true', 14, "contradict each other"),
    ("passphrase-unset", '"ARCHIVE_KEY_PASSPHRASE"', '"NO_SUCH_VARIABLE_FOR_TESTS"', 14,
     "the passphrase variable NO_SUCH_VARIABLE_FOR_TESTS is not set"),
    ("passphrase-wrong-file", 'passphrase_env = "ARCHIVE_KEY_PASSPHRASE"', 'passphrase_file = "{wrong}"', 13,
     "wrong passphrase"),
    ("passphrase-both", 'passphrase_env = "ARCHIVE_KEY_PASSPHRASE"',
     'passphrase_env = "ARCHIVE_KEY_PASSPHRASE"\npassphrase_file = "{wrong}"', 15, "not both"),
    ("store-is-a-file", 'store = "{store}"', 'store = "{afile}"', 3, "store unreachable"),
    ("store-unsupported", 'store = "{store}"', 'store = "ftp://example.org/x"', 3, "unsupported store address"),
    ("notify-empty", "[signing]", '[notify]\nwhen = "always"\n\n[signing]', 12, "needs a 'webhook' or a 'command'"),
    ("notify-bad-webhook", "[signing]", '[notify]\nwebhook = "mailto:x@example.org"\n\n[signing]', 13,
     "not an http(s) URL"),
    ("notify-command-text", "[signing]", '[notify]\ncommand = "notify-me --now"\n\n[signing]', 13,
     "must be a list like"),
    ("tsa-not-url", "[signing]", '[timestamps]\ntsa = ["not a url"]\n\n[signing]', 13, "not an http(s) URL"),
    ("lock-mode", "[signing]", '[retention]\nlock_mode = "FOREVER"\n\n[signing]', 13,
     "must be one of GOVERNANCE, COMPLIANCE"),
    ("crawl-not-table", "[crawl]\ndepth = 1\nscope = \"prefix\"\nmax_bytes = \"50MB\"\nmax_time = \"10m\"\n",
     'crawl = 1\n', 6, "'crawl' must be a table"),
]


@pytest.fixture
def good(key, site, tmp_path):
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    return {"url": site.url("/"), "store": str(tmp_path / "store"), "key": str(key),
            "wrong": str(wrong), "afile": str(afile)}


def test_the_good_file_checks_ok(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good))
    result = run("jobs", "check", job)
    assert result.code == 0, result
    assert "ok: job statements, cron '0 */6 * * *' (UTC), next run " in result.out


@pytest.mark.parametrize("case,old,new,line,words", BAD, ids=[c[0] for c in BAD])
def test_bad_job_file_is_refused_with_its_line_and_never_captures(run, good, site, tmp_path,
                                                                  case, old, new, line, words):
    base = GOOD.format(**good)
    text = base.replace(old.format(**good), new.format(**good))
    assert text != base
    job = tmp_path / "job.toml"
    job.write_text(text)
    expected = f"{job}:{line}: " if line else f"{job}: "

    check = run("jobs", "check", job)
    assert check.code == 2, check
    assert words in check.out, check
    assert any(out_line.startswith(expected) and words in out_line
               for out_line in check.out.splitlines()), check
    assert "Traceback" not in check.out + check.err

    result = run("jobs", "run", job)
    assert result.code == 2, result
    assert words in result.err and result.err.startswith(expected), result
    assert "Traceback" not in result.err
    assert site.site.requests == []                     # no capture was started
    assert not (tmp_path / "store" / "captures").exists()
    assert not (tmp_path / "store" / "jobs").exists()


@pytest.mark.parametrize("content,words", [
    (None, "job file not found"),
    ("folder", "is a folder, not a job file"),
    (b"name = \"x\xff\"\n", "not UTF-8"),
])
def test_unreadable_job_files(run, tmp_path, content, words):
    job = tmp_path / "job.toml"
    if content == "folder":
        job.mkdir()
    elif content is not None:
        job.write_bytes(content)
    for command in ("check", "run"):
        result = run("jobs", command, job)
        assert result.code == 2, result
        expected = "no job files (*.toml) in" if content == "folder" and command == "check" else words
        assert expected in result.out + result.err and "Traceback" not in result.err


def test_check_reports_every_problem_at_once_and_json(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good).replace("depth = 1", "depth = -1").replace('"prefix"', '"nope"'))
    result = run("jobs", "check", job, "--json")
    assert result.code == 2
    problems = json.loads(result.out)[0]["problems"]
    assert [(p["line"], p["message"].split(" ")[0]) for p in problems] == [(7, "'crawl.depth'"), (8, "'crawl.scope'")]


def test_keys_not_yet_wired_are_accepted_and_noted(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good) + '\n[timestamps]\ntsa = ["http://127.0.0.1:1/tsa"]\n'
                   "\n[retention]\nretain_days = 3650\n")
    result = run("jobs", "check", job)
    assert result.code == 0, result
    assert f"{job}:20: note: 'retention.retain_days' is accepted but has no effect yet" in result.out
    assert "'timestamps.tsa'" not in result.out     # wired: asked at sealing


def test_relative_paths_are_relative_to_the_job_file(good, tmp_path, monkeypatch):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "job.toml").write_text(GOOD.format(**{**good, "store": "store", "key": "k.pem"}))
    monkeypatch.chdir("/")
    spec = load_job(folder / "job.toml")
    assert spec.store == str(folder / "store") and spec.signing.key == folder / "k.pem"


def test_key_lines_follow_tables_and_dotted_keys():
    lines = key_lines('a = 1\n[crawl]\n# c\n"depth" = 2\n[notify]\nwhen.x = 1\n')
    assert lines == {"a": 1, "crawl": 2, "crawl.depth": 4, "notify": 5, "notify.when.x": 6}


def test_seconds_level_and_interval_schedules():
    now = datetime(2026, 1, 1, 12, 0, 3, tzinfo=timezone.utc)
    cron = parse_schedule("*/5 * * * * *", None, None)
    assert cron.next_after(now) == datetime(2026, 1, 1, 12, 0, 5, tzinfo=timezone.utc)
    assert cron.last_due(now) == datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    every = parse_schedule(None, 2.0, None)
    assert every.next_after(now) == datetime(2026, 1, 1, 12, 0, 4, tzinfo=timezone.utc)
    assert every.last_due(now) == datetime(2026, 1, 1, 12, 0, 2, tzinfo=timezone.utc)
    berlin = parse_schedule("0 9 * * *", None, "Europe/Berlin")
    assert berlin.next_after(now) == datetime(2026, 1, 2, 8, 0, tzinfo=timezone.utc)


EXAMPLES = Path(__file__).resolve().parents[1] / "scripts" / "examples"


def test_the_example_job_file_and_schedules_are_valid(run):
    result = run("jobs", "check", "--offline", EXAMPLES / "jobs" / "statements.toml")
    assert result.code == 0, result
    assert "job ministry-statements, cron '0 */6 * * *' (UTC)" in result.out
    line = next(l for l in (EXAMPLES / "crontab").read_text().splitlines() if l and not l.startswith("#"))
    assert parse_schedule(" ".join(line.split()[:5]), None, None) is not None
    assert "jobs run /etc/archive/jobs/statements.toml" in line
    cronjob = (EXAMPLES / "kubernetes" / "cronjob.yaml").read_text()
    assert 'schedule: "0 */6 * * *"' in cronjob and '"jobs", "run"' in cronjob
    service = (EXAMPLES / "systemd" / "archive-job@.service").read_text()
    assert "jobs run /etc/archive/jobs/%i.toml" in service and "SuccessExitStatus=3" in service


def test_a_bad_schedule_is_reported_with_the_other_problems(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good).replace("0 */6 * * *", "0 */6 * *").replace("depth = 1", "depth = -1"))
    result = run("jobs", "check", job)
    assert result.code == 2
    assert [line.split(": ")[0] for line in result.out.splitlines()] == [f"{job}:4", f"{job}:7"]
