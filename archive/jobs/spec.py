"""Job files: a TOML file per scheduled capture, read into a JobSpec or a list of problems.

Every problem carries the line it is about, so `archive jobs check` can print
`FILE:LINE: message` for each one; a file with any problem never starts a capture.
Relative paths in a job file (key, passphrase file, store folder, work folder) are
relative to the job file's own folder, so a job behaves the same from cron, systemd or
a shell.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.capture.options import OPTIONS, CaptureSettings, job_only_with_problems, settings_from_job
from archive.errors import ArchiveError
from archive.jobs.schedule import Schedule, parse_schedule
from archive.optionvalues import (
    Check, as_text as _str, boolean, choice, describe as _describe, duration, env_name, non_empty_text, path,
    text, text_list, whole,
)
from archive.store.base import LOCK_MODES, MAX_RETAIN_DAYS
from archive.values import parse_http_url, parse_sealed_url, parse_seed, url_logins

JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NOTIFY_WHEN = ("always", "changes", "failures")
DEFAULT_LOCK_EXPIRY = 600.0


@dataclass(frozen=True)
class Problem:
    line: int | None
    message: str

    def render(self, path: str | Path) -> str:
        return f"{path}:{self.line}: {self.message}" if self.line else f"{path}: {self.message}"


class JobFileError(ArchiveError):
    """A job file that cannot be run; carries every problem found."""

    def __init__(self, path: str | Path, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = problems
        super().__init__("; ".join(p.render(path) for p in problems))


@dataclass
class SigningSpec:
    key: Path | None = None
    passphrase_env: str | None = None
    passphrase_file: Path | None = None
    unsigned: bool = False


@dataclass
class RetentionSpec:
    """[retention]: S3 Object Lock on each stored capture (`--retain-days`, `--lock-mode`,
    `--legal-hold`); an s3:// store whose bucket has Object Lock is needed."""

    retain_days: int | None = None
    lock_mode: str | None = None        # the bucket's default mode, else GOVERNANCE
    legal_hold: bool = False


@dataclass
class NotifySpec:
    webhook: str | None = None
    command: list[str] | None = None
    when: str = "always"
    timeout: float = 30.0


@dataclass
class RunSpec:
    lock_expiry: float = DEFAULT_LOCK_EXPIRY   # a lock with no heartbeat for this long is stale
    resume: bool = True                        # finish a capture an earlier run left unsealed
    # and the capture's keys of [run] (redis, processes, lease): archive.capture.options


@dataclass
class JobSpec:
    path: Path
    name: str
    seeds: list[str]                 # without the credentials a seed URL carried
    store: str
    endpoint_url: str | None = None                   # S3 endpoint (default: the AWS chain's)
    schedule: Schedule | None = None
    operator: str | None = None
    title: str = ""
    work_dir: Path | None = None
    keep_local: bool = False
    # the capture's options ([crawl], and redis, processes, lease of [run]) by their internal
    # names: archive.capture.options
    crawl: CaptureSettings = field(default_factory=CaptureSettings)
    signing: SigningSpec = field(default_factory=SigningSpec)
    tsa: list[str] = field(default_factory=list)      # RFC 3161 authorities asked at sealing
    tsa_timeout: float | None = None
    retention: RetentionSpec = field(default_factory=RetentionSpec)
    notify: NotifySpec = field(default_factory=NotifySpec)
    run: RunSpec = field(default_factory=RunSpec)
    url_logins: dict = field(default_factory=dict)    # origin -> Authorization from a seed URL
    lines: dict[str, int] = field(default_factory=dict, repr=False)

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)


# -- value checks of the keys that are not capture options (archive.optionvalues has the rest)

def interval(value, base):
    """`every`: a run more often than each second is a mistake (a scheduler busy loop)."""
    seconds = duration(value, base)
    if seconds < 1:
        raise ValueError(f"must be at least 1 second, not {value}")
    return seconds


def url(value, base):
    return parse_http_url(_str(value))


def sealed_urls(value, base):
    """Seeds and TSAs: sealed into each capture, so never with credentials in them."""
    return [parse_sealed_url(item) for item in text_list(value, base)]


def seeds(value, base):
    """(URL, Authorization or None) pairs: credentials in a seed URL become a header."""
    urls = [parse_seed(item) for item in text_list(value, base)]
    if not urls:
        raise ValueError("must list at least one URL")
    url_logins(urls)        # one login per site
    return urls


def store_address(value, base):
    address = non_empty_text(value, base)
    if "://" in address:
        return address
    return str(base / Path(address).expanduser())


def job_name(value, base):
    if not JOB_NAME.match(_str(value)):
        raise ValueError(
            f"{value!r} is not a usable job name (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 100)"
        )
    return value


def argv(value, base):
    items = text_list(value, base) if isinstance(value, list) else None
    if items is None:
        raise ValueError(
            f"must be a list like [\"/usr/local/bin/notify\", \"--flag\"], not {_describe(value)}"
        )
    if not items or not items[0].strip():
        raise ValueError("must name a program to run")
    return items


def days(value, base):
    number = whole(1)(value, base)
    if number > MAX_RETAIN_DAYS:
        raise ValueError(f"must be {MAX_RETAIN_DAYS} days or fewer, not {number}")
    return number


def lock_mode(value, base):
    return choice(LOCK_MODES)(value.upper() if isinstance(value, str) else value, base)


def timezone(value, base):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(_str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (try UTC or Europe/Berlin)") from None
    return value


def cron(value, base):
    parse_schedule(_str(value), None, None)   # ValueError says what is wrong with it
    return value


# table -> key -> check; "" is the top level.
SCHEMA: dict[str, dict[str, Check]] = {
    "": {
        "name": job_name, "seeds": seeds, "store": store_address, "schedule": cron,
        "every": interval, "timezone": timezone, "operator": non_empty_text, "title": text,
        "work_dir": path, "keep_local": boolean, "endpoint_url": url,
    },
    "crawl": {},
    "signing": {
        "key": path, "passphrase_env": env_name, "passphrase_file": path, "unsigned": boolean,
    },
    "timestamps": {"tsa": sealed_urls, "timeout": duration},
    "retention": {"retain_days": days, "lock_mode": lock_mode, "legal_hold": boolean},
    "notify": {
        "webhook": url, "command": argv, "when": choice(NOTIFY_WHEN), "timeout": duration,
    },
    "run": {"lock_expiry": duration, "resume": boolean},
}
# the capture's options (archive.capture.options): in [crawl], some in [run]
for _option in OPTIONS:
    if _option.key is not None:
        SCHEMA[_option.table][_option.key_name] = _option.kind.from_toml
TABLES = {"signing": SigningSpec, "retention": RetentionSpec,
          "notify": NotifySpec, "run": RunSpec}
REQUIRED = ("seeds", "store")


# -- where each key is: tomllib gives values, not positions ------------------------

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"[^"\n]*"|\'[^\'\n]*\')'
_HEADER = re.compile(rf"^\s*\[\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*\]")
_KEY = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")


def _dotted(text: str) -> str:
    parts = re.findall(_BARE_OR_QUOTED, text)
    return ".".join(p.strip("\"'") for p in parts)


def key_lines(source: str) -> dict[str, int]:
    """`table.key` -> line number (1-based) of its first definition; tables too.

    A line scan, good enough for pointing at a line: keys inside multi-line strings may
    be mistaken for keys, which only matters if they shadow a real one, and the first
    definition wins.
    """
    lines: dict[str, int] = {}
    table = ""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.lstrip().startswith("[["):
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            dotted = _dotted(key.group(1))
            lines.setdefault(f"{table}.{dotted}" if table else dotted, number)
    return lines


# -- loading -------------------------------------------------------------------------

JOB_FILE_LIMIT = 1 << 20     # bytes: a job file is a page of TOML


def read_job_bytes(path: Path) -> bytes:
    """A job file's bytes; OSError for one that is not a regular file (a named pipe would
    hold `jobs serve`'s scan for ever, /dev/zero fill its memory) or is over the limit."""
    # O_NONBLOCK: a named pipe opens at once (then refused) instead of waiting for a writer
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = fh.read(JOB_FILE_LIMIT + 1)
    if len(data) > JOB_FILE_LIMIT:
        raise OSError(errno.EFBIG, f"larger than {JOB_FILE_LIMIT >> 20} MiB: not a job file", str(path))
    return data


def read_source(path: Path) -> str:
    try:
        return read_job_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise ArchiveError(f"job file not found: {path}") from None
    except IsADirectoryError:
        raise ArchiveError(f"{path} is a folder, not a job file") from None
    except UnicodeDecodeError:
        raise JobFileError(path, [Problem(None, "not UTF-8 text: job files are TOML")]) from None
    except OSError as exc:
        raise ArchiveError(f"cannot read job file {path}: {exc.strerror}") from None


def parse_job(path: str | Path) -> tuple[JobSpec | None, list[Problem]]:
    """Read and validate a job file's contents: (spec, []) or (None, problems).

    Only the file itself is checked here; `preflight` checks the key and the store.
    """
    path = Path(path)
    parsed = _parse(path)
    if isinstance(parsed, Problem):
        return None, [parsed]
    data, values, lines, problems = parsed
    top = values[""]
    for key in REQUIRED:
        if key not in top and not any(p.message.startswith(f"'{key}'") for p in problems):
            problems.append(Problem(None, f"missing '{key}' ({_REQUIRED_HINT[key]})"))
    problems += _cross_checks(values, lines, data)
    if problems:
        return None, sorted(problems, key=lambda p: (p.line or 0))

    schedule = parse_schedule(top.get("schedule"), top.get("every"), top.get("timezone"))
    spec = JobSpec(
        path=path, name=top.get("name", _default_name(path)), seeds=[url for url, _ in top["seeds"]],
        url_logins=url_logins(top["seeds"]),
        store=top["store"], endpoint_url=top.get("endpoint_url"), schedule=schedule, operator=top.get("operator"),
        title=top.get("title", ""), work_dir=top.get("work_dir"),
        keep_local=top.get("keep_local", False),
        tsa=values["timestamps"].get("tsa", []), tsa_timeout=values["timestamps"].get("timeout"),
        lines=lines, crawl=settings_from_job(values),
        **{table: cls(**{k: v for k, v in values[table].items() if k in _fields(cls)})
           for table, cls in TABLES.items()},
    )
    if not JOB_NAME.match(spec.name):
        return None, [Problem(None, f"the file name {path.name!r} is not a usable job name: "
                                    "add name = \"...\"")]
    return spec, []


def _parse(path: Path):
    """(TOML data, the values that passed their checks by table, key lines, problems), or
    the Problem of a file that is not TOML."""
    source = read_source(path)
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        return _toml_problem(exc)
    except RecursionError:
        # tomllib parses nested arrays and tables by recursion: a hostile file deep enough
        return Problem(None, "not valid TOML: arrays or tables nested too deeply to read")
    lines = key_lines(source)
    base = path.resolve().parent
    problems: list[Problem] = []
    values: dict[str, dict[str, Any]] = {table: {} for table in SCHEMA}
    for key, value in data.items():
        if key in SCHEMA and key and isinstance(value, dict):
            for sub, sub_value in value.items():
                _take(values[key], key, sub, sub_value, base, lines, problems)
        elif key in SCHEMA and key:
            problems.append(Problem(lines.get(key), f"'{key}' must be a table ([{key}])"))
        else:
            _take(values[""], "", key, value, base, lines, problems)
    return data, values, lines, problems


@dataclass
class JobPart:
    """What is valid of a job file that has other problems: its key and its store can be
    checked all the same, so that `jobs check` reports every problem in one pass."""
    name: str
    store: str | None
    endpoint_url: str | None
    signing: SigningSpec
    retention: RetentionSpec
    lines: dict

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)


def job_part(path: str | Path) -> JobPart | None:
    """The job file's values as far as they are valid (None: not even TOML)."""
    path = Path(path)
    parsed = _parse(path)
    if isinstance(parsed, Problem):
        return None
    _, values, lines, _ = parsed
    top = values[""]
    return JobPart(top.get("name", _default_name(path)), top.get("store"), top.get("endpoint_url"),
                   SigningSpec(**values["signing"]), RetentionSpec(**values["retention"]), lines)


def load_job(path: str | Path) -> JobSpec:
    """A valid JobSpec, or JobFileError listing every problem."""
    spec, problems = parse_job(path)
    if problems:
        raise JobFileError(path, problems)
    return spec


_REQUIRED_HINT = {
    "seeds": 'the URLs to capture, e.g. seeds = ["https://example.org/"]',
    "store": 'where captures go: a folder or s3://bucket/prefix, e.g. store = "/srv/archive-store"',
}


def _fields(cls) -> set[str]:
    return set(cls.__dataclass_fields__)


def _default_name(path: Path) -> str:
    return path.name.removesuffix(".toml")


def _take(into: dict, table: str, key: str, value, base: Path, lines: dict, problems: list) -> None:
    dotted = f"{table}.{key}" if table else key
    checks = SCHEMA[table]
    if key not in checks:
        where = f" in [{table}]" if table else ""
        known = list(checks) + ([t for t in SCHEMA if t] if not table else [])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(Problem(lines.get(dotted) or lines.get(table), f"unknown key '{key}'{where}{hint}"))
        return
    try:
        into[key] = checks[key](value, base)
    except ValueError as exc:
        problems.append(Problem(lines.get(dotted) or lines.get(table), f"'{dotted}' {exc}"
                                if str(exc).startswith("must") else f"'{dotted}': {exc}"))


def _cross_checks(values: dict, lines: dict, data: dict) -> list[Problem]:
    problems = []
    top, signing = values[""], values["signing"]
    if "schedule" in top and "every" in top:
        problems.append(Problem(lines.get("every"), "give either 'schedule' or 'every', not both"))
    if "timezone" in top and "schedule" not in top:
        problems.append(Problem(lines.get("timezone"), "'timezone' applies to 'schedule' only"))
    if signing.get("unsigned") and "key" in signing:
        problems.append(Problem(lines.get("signing.unsigned"), "'unsigned = true' and a 'key' contradict each other"))
    if not signing.get("unsigned") and "key" not in signing and "key" not in data.get("signing", {}):
        problems.append(Problem(
            lines.get("signing"),
            "no signing key: add [signing] key = \"/path/signing-key.pem\" "
            "(or unsigned = true to capture without signing)",
        ))
    if "passphrase_env" in signing and "passphrase_file" in signing:
        problems.append(Problem(lines.get("signing.passphrase_file"),
                                "give either 'passphrase_env' or 'passphrase_file', not both"))
    if signing.get("unsigned") and ("passphrase_env" in signing or "passphrase_file" in signing):
        problems.append(Problem(lines.get("signing.unsigned"), "an unsigned job needs no passphrase"))
    problems += [Problem(lines.get(key), message) for key, message in job_only_with_problems(values["crawl"])]
    problems += _profile_checks(values["crawl"], lines)
    retention = values["retention"]
    if (retention.get("retain_days") or retention.get("legal_hold")) and "store" in top \
            and not top["store"].startswith("s3://"):
        problems.append(Problem(lines.get("retention"), "[retention] needs an s3:// store whose bucket "
                                                        "has Object Lock (`archive store init`)"))
    if "lock_mode" in retention and "retain_days" not in retention:
        problems.append(Problem(lines.get("retention.lock_mode"), "'lock_mode' applies to 'retain_days' only"))
    if "endpoint_url" in top and "store" in top and not top["store"].startswith("s3://"):
        problems.append(Problem(lines.get("endpoint_url"), "'endpoint_url' applies to an s3:// store only"))
    if "notify" in data and isinstance(data["notify"], dict) and not (
        "webhook" in data["notify"] or "command" in data["notify"]
    ):
        problems.append(Problem(lines.get("notify"), "[notify] needs a 'webhook' or a 'command'"))
    return problems


def _profile_checks(crawl: dict, lines: dict) -> list[Problem]:
    """A profile logs in the browser and the media downloads, with one passphrase source."""
    problems = []
    if "profile" in crawl and not (crawl.get("browser") or crawl.get("media")):
        problems.append(Problem(lines.get("crawl.profile"),
                                "'crawl.profile' logs in the browser and media downloads: "
                                "add browser = true or media = true"))
    for other in ("media_cookies", "cookies"):
        if "profile" in crawl and other in crawl:
            problems.append(Problem(lines.get(f"crawl.{other}"),
                                    f"give either 'profile' or '{other}', not both"))
    if "profile_passphrase_env" in crawl and "profile_passphrase_file" in crawl:
        problems.append(Problem(lines.get("crawl.profile_passphrase_file"),
                                "give either 'profile_passphrase_env' or 'profile_passphrase_file', not both"))
    problems += [Problem(lines.get(f"crawl.{key}"), f"'crawl.{key}' applies with a 'profile' only")
                 for key in ("profile_passphrase_env", "profile_passphrase_file")
                 if key in crawl and "profile" not in crawl]
    return problems


def _toml_problem(exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        message = message[: match.start()].strip()
        return Problem(int(match.group(1)), f"not valid TOML: {message} (column {match.group(2)})")
    return Problem(None, f"not valid TOML: {message}")
