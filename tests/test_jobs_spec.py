"""Job files: every malformed one gets a clear message with its line, exit 2, and no capture."""

import argparse
import json
import re
from pathlib import Path
from datetime import datetime, timezone

import pytest

from archive.capture.crawl import CrawlOptions
from archive.capture.pageoptions import PageOptions
from archive.cli import capture as capture_cli
from archive.jobs.preflight import store_options
from archive.jobs.request import capture_request
from archive.jobs.schedule import parse_schedule
from archive.jobs.spec import SCHEMA, key_lines, load_job
from archive.store.address import StoreOptions
from archive.store.s3 import Retention

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
    ("unknown-new-crawl-key", "depth = 1", "depth = 1\nhostworkers = 2", 8,
     "unknown key 'hostworkers' in [crawl] (did you mean 'host_workers'?)"),
    ("host-workers-zero", "depth = 1", "depth = 1\nhost_workers = 0", 8, "'crawl.host_workers' must be 1 or more"),
    ("delay-negative", "depth = 1", "depth = 1\ndelay = -1", 8, "'crawl.delay' must not be negative"),
    ("retry-wait-bad", "depth = 1", 'depth = 1\nretry_wait = "soon"', 8, "not a duration: 'soon'"),
    ("retries-text", "depth = 1", 'depth = 1\nretries = "2"', 8, "'crawl.retries' must be a whole number"),
    ("ignore-robots-text", "depth = 1", 'depth = 1\nignore_robots = "yes"', 8,
     "'crawl.ignore_robots' must be true or false"),
    ("retention-folder-store", "[signing]", '[retention]\nretain_days = 30\n\n[signing]', 12,
     "[retention] needs an s3:// store whose bucket has Object Lock"),
    ("lock-mode-alone", "[signing]", '[retention]\nlock_mode = "COMPLIANCE"\n\n[signing]', 13,
     "'lock_mode' applies to 'retain_days' only"),
    ("retain-days-too-many", "[signing]", '[retention]\nretain_days = 40000\n\n[signing]', 13,
     "'retention.retain_days' must be 36500 days or fewer"),
    ("endpoint-with-folder-store", 'schedule = "0 */6 * * *"',
     'schedule = "0 */6 * * *"\nendpoint_url = "http://127.0.0.1:9/"', 5, "'endpoint_url' applies to an s3:// store only"),
    ("viewport-bad", "depth = 1", 'depth = 1\nbrowser = true\nviewport = "wide"', 9,
     "not a viewport size like 1280x800: 'wide'"),
    ("wait-until-bad", "depth = 1", 'depth = 1\nbrowser = true\nwait_until = "idle"', 9,
     "'crawl.wait_until' must be one of load, domcontentloaded, networkidle"),
    ("page-option-without-browser", "depth = 1", 'depth = 1\nwait_for = "#main"', 8,
     "'crawl.wait_for' applies with browser = true only"),
    ("resume-text", "[signing]", '[run]\nresume = "no"\n\n[signing]', 13, "'run.resume' must be true or false"),
    ("every-nan", 'schedule = "0 */6 * * *"', "every = nan", 4, "'every' must be a finite number of seconds"),
    ("every-inf", 'schedule = "0 */6 * * *"', "every = inf", 4, "'every' must be a finite number of seconds"),
    ("every-huge", 'schedule = "0 */6 * * *"', 'every = "99999999999999999999d"', 4,
     "'every' must be at most 3650 days"),
    ("every-too-often", 'schedule = "0 */6 * * *"', "every = 0.001", 4, "'every' must be at least 1 second"),
    ("timeout-inf", "depth = 1", "depth = 1\ntimeout = inf", 8, "'crawl.timeout' must be a finite number"),
    ("delay-nan", "depth = 1", "depth = 1\ndelay = nan", 8, "'crawl.delay' must be a finite number"),
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
    as_json = run("jobs", "run", job, "--json")
    outcome = json.loads(as_json.out)
    assert as_json.code == 2 and outcome["exitCode"] == 2 and outcome["status"] == "could not run"
    assert any(words in p["message"] for p in outcome["problems"]) or words in outcome["error"]
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


def test_retention_and_endpoint_reach_the_store_options(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**{**good, "store": "s3://evidence/statements"}).replace(
        'schedule = "0 */6 * * *"\n', 'schedule = "0 */6 * * *"\nendpoint_url = "http://127.0.0.1:9000"\n')
        + '\n[retention]\nretain_days = 3650\nlock_mode = "compliance"\nlegal_hold = true\n')
    result = run("jobs", "check", "--offline", job)
    assert result.code == 0, result
    assert result.out.count("\n") == 1 and "note" not in result.out   # nothing accepted-but-inert
    assert store_options(load_job(job)) == StoreOptions(
        endpoint_url="http://127.0.0.1:9000", retention=Retention(3650, "COMPLIANCE", True))
    job.write_text(GOOD.format(**good))
    assert store_options(load_job(job)) == StoreOptions()


def test_every_crawl_key_reaches_the_capture_request(good, tmp_path):
    crawl = """max_time = "10m"
include = ["/more/"]
exclude = ["/private/"]
max_pages = 40
max_body = "1MB"
timeout = "20s"
user_agent = "job-agent/1"
insecure = true
warc_size = "200MB"
workers = 3
host_workers = 2
delay = "0.5s"
retries = 0
retry_wait = "3s"
max_redirects = 4
ignore_robots = true
"""
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good).replace('max_time = "10m"\n', crawl))
    request = capture_request(load_job(job), previous="20250101T000000Z-00000001")
    assert request.crawl == CrawlOptions(
        seeds=[good["url"]], depth=1, scope="prefix", include=["/more/"], exclude=["/private/"],
        max_pages=40, max_bytes=50_000_000, max_time=600.0, max_body=1_000_000, timeout=20.0,
        max_redirects=4, user_agent="job-agent/1", verify_tls=False, workers=3, host_workers=2,
        delay=0.5, retries=0, backoff=3.0, obey_robots=False, dedup=True,
    )
    assert request.warc_size == 200_000_000 and request.job == "statements"
    assert request.dedup_against == "20250101T000000Z-00000001"

    assert request.crawl.browser is None

    browser = 'browser = true\nviewport = "390x844"\nwait_until = "networkidle"\nwait_for = "#main"\n' \
              'wait = "2s"\nscroll = false\npage_timeout = "45s"\n'
    job.write_text(GOOD.format(**good).replace('max_time = "10m"\n', 'max_time = "10m"\n' + browser))
    assert capture_request(load_job(job)).crawl.browser == PageOptions(
        viewport_width=390, viewport_height=844, wait="networkidle", selector="#main", delay=2.0,
        scroll=False, timeout=45.0)
    job.write_text(GOOD.format(**good).replace('max_time = "10m"\n', 'max_time = "10m"\nbrowser = true\n'))
    assert capture_request(load_job(job)).crawl.browser == PageOptions()

    job.write_text(GOOD.format(**good).replace('max_time = "10m"\n', 'max_time = "10m"\ndedup = false\n'))
    request = capture_request(load_job(job), previous="20250101T000000Z-00000001")
    assert request.crawl.dedup is False and request.dedup_against is None
    # Keys left out get `archive capture`'s own defaults.
    defaults = CrawlOptions(seeds=[])
    assert (request.crawl.workers, request.crawl.host_workers, request.crawl.delay,
            request.crawl.retries, request.crawl.backoff, request.crawl.obey_robots) == (
        defaults.workers, defaults.host_workers, defaults.delay, defaults.retries,
        defaults.backoff, True)


# `archive capture` options whose job key is not `[crawl] <same name>` (None: none needed).
CAPTURE_OPTION_KEYS = {
    "urls": "seeds", "resume": "run.resume", "store": "store", "key": "signing.key",
    "unsigned": "signing.unsigned", "operator": "operator", "title": "title",
    "work_dir": "work_dir", "keep_local": "keep_local", "tsa": "timestamps.tsa",
    "tsa_timeout": "timestamps.timeout", "no_dedup": "crawl.dedup", "endpoint_url": "endpoint_url",
    "retain_days": "retention.retain_days", "lock_mode": "retention.lock_mode",
    "legal_hold": "retention.legal_hold", "no_scroll": "crawl.scroll",
    "redis": "run.redis", "processes": "run.processes", "lease": "run.lease",
    "dedup_against": None,   # a job's revisits point into its own previous capture
    "no_text": "crawl.text",
    "catalog": None,         # jobs add their captures to $ARCHIVE_CATALOG or the store's own catalog
    "override_saved": None,  # a job resumes with its job file's store and key, always
    "json": None, "quiet": None, "help": None,
    "header": "crawl.headers", "secret_header": "crawl.secret_headers",
}


def test_everything_archive_capture_takes_has_a_job_key():
    commands = argparse.ArgumentParser().add_subparsers()
    capture_cli.register(commands)
    options = {action.dest for action in commands.choices["capture"]._actions}
    assert {"workers", "ignore_robots", "urls"} <= options
    for dest in sorted(options):
        key = CAPTURE_OPTION_KEYS.get(dest, f"crawl.{dest}")
        if key is None:
            continue
        table, _, name = key.rpartition(".")
        assert name in SCHEMA[table], f"`archive capture` takes --{dest.replace('_', '-')}: add '{key}' to job files"


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


def test_the_example_worker_unit_runs_a_command_we_accept():
    """The worker's systemd unit: its command parses as `archive worker` takes it (the
    options cannot drift from the CLI unseen), the Redis URL comes from the environment,
    and systemd stops it with SIGTERM to it alone (so it hands over what it holds)."""
    import shlex
    from archive.cli import build_parser
    unit = (EXAMPLES / "systemd" / "archive-worker@.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    program, *args = shlex.split(settings["ExecStart"].replace("%i", "1"))
    assert program.endswith("/archive") and args[0] == "worker"
    parsed = build_parser("worker").parse_args(args)
    assert parsed.redis is None and parsed.quiet and parsed.work_dir == "/var/lib/archive/worker-1"
    assert settings["KillMode"] == "mixed" and settings["Restart"] == "on-failure"
    assert "ARCHIVE_REDIS=" in unit


def test_the_example_job_file_shows_every_key():
    """docs/capture.md sends people to it for the keys: each one is there, set or commented out."""
    uncommented = re.sub(r"(?m)^# ?", "", (EXAMPLES / "jobs" / "statements.toml").read_text())
    shown = key_lines(uncommented)
    missing = [f"{table}.{key}" if table else key for table, keys in SCHEMA.items() for key in keys
               if (f"{table}.{key}" if table else key) not in shown]
    assert missing == []


def test_a_bad_schedule_is_reported_with_the_other_problems(run, good, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(GOOD.format(**good).replace("0 */6 * * *", "0 */6 * *").replace("depth = 1", "depth = -1"))
    result = run("jobs", "check", job)
    assert result.code == 2
    assert [line.split(": ")[0] for line in result.out.splitlines()] == [f"{job}:4", f"{job}:7"]
