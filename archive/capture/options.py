"""Every option of a capture, once: one entry per option in OPTIONS, from which are made
the flags of `archive capture` (archive.cli.capture), the keys of a job file's [crawl]
and [run] tables with their checks (archive.jobs.spec), and the crawl's own options
(CrawlOptions, PageOptions, MediaOptions, and the rest of the pipeline's request).

Each option has ONE internal name: the CrawlOptions field it sets, as saved in a
capture's request.json and sealed in evidence/capture.json, so that captures read the
same whatever the flag says (the browser's and media options keep their saved
PageOptions/MediaOptions field names in `field`). The flag and the job key keep the spellings users know
(`--insecure` / `insecure` is `verify_tls` false; `--ignore-robots` / `ignore_robots` is
`obey_robots` false; `--retry-wait` / `retry_wait` is `backoff`); none is ever renamed,
since users' job files and scripts must keep working.

To add an option:
  1. add one Option below: name, kind (archive.optionvalues: how its value is read, the
     same for a flag and a job key), help; `into` says which options it sets; `flag` if
     its flag is not --name (None: a job file's only); `key` if a job file takes it
     elsewhere than [crawl] (None: the command line's only); `only_with` if it needs
     --browser or --media; `resume="given"` if a resume takes it from the resuming command;
  2. add its field to the dataclass it goes into (CrawlOptions, PageOptions,
     MediaOptions, or pipeline.CaptureRequest) and use it in the crawler;
  3. add its sample values to tests/test_capture_options.py (SAMPLES, and BAD for what
     both refuse): the flag and the key must reach the crawl alike, and the test of the
     table fails until they are there; then a test of what it does to a capture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field as dataclass_field, make_dataclass
from pathlib import Path
from typing import Any

from archive.capture.crawl import LEAST, CrawlOptions
from archive.capture.mediaoptions import MediaOptions
from archive.capture.pageoptions import WAIT_CONDITIONS, PageOptions
from archive.capture.scope import SCOPES
from archive.errors import ArchiveError
from archive.profiles.passphrase import PROFILE_PASSPHRASE_ENV
from archive.redisconn import DEFAULT_LEASE, REDIS_ENV, redis_url
from archive.optionvalues import (
    DURATION, ENV_NAME, FILE, HEADER_NAMES, HEADERS, LATER_DURATION, PAUSE, REDIS, REGEX, SELECTORS, SIZE,
    SIZE_LIMIT, SWITCH, TEXT, VIEWPORT, Kind, choice_kind, whole_kind,
)
from archive.warc.writer import DEFAULT_MAX_SIZE as WARC_SIZE

_CRAWL = CrawlOptions(seeds=[])
_PAGE = PageOptions()
_MEDIA = MediaOptions()
_TARGETS = {"crawl": _CRAWL, "page": _PAGE, "media": _MEDIA}
_FROM_TARGET = object()


class _NotGiven:
    """A flag left out (argparse's default: None would be `--max-bytes none`)."""

    def __repr__(self) -> str:
        return "not given"

    def __bool__(self) -> bool:      # as None would be, for a check `if args.redis`
        return False


NOT_GIVEN = _NotGiven()

# argparse groups of `archive capture --help`
SHARED, BROWSER, MEDIA, LOGIN = ("a crawl shared by several processes or machines", "browser capture",
                                 "media capture (video and audio, through yt-dlp)",
                                 "behind a login (never sealed: docs/logins.md)")


@dataclass
class Option:
    name: str                      # the one internal name
    kind: Kind                     # how its value is read (archive.optionvalues)
    help: str
    into: str = "crawl"            # crawl | page | media | request (pipeline) | "" (a switch of its own)
    field: str | None = None       # the field it sets there, where that is named otherwise (saved formats)
    default: Any = _FROM_TARGET    # default: the default of that field
    flag: str | None = ""          # default: --name; None: none (a job file's only)
    key: str | None = ""           # job-file key; default: crawl.name; None: none
    key_negated: bool = False      # the key says the opposite of the name (insecure = true: verify_tls false)
    only_with: str | None = None   # browser | media: given without it, refused
    group: str | None = None       # argparse group
    metavar: str | None = None
    # a capture's request (request.json) keeps every option, and a resume finishes it with
    # them: given again with --resume, refused; `given`: what the resuming command says
    resume: str = "kept"

    def __post_init__(self) -> None:
        self.field = self.field or self.name
        if self.default is _FROM_TARGET:
            self.default = getattr(_TARGETS[self.into], self.field)
        if self.flag == "":
            self.flag = "--" + self.name.replace("_", "-")
        if self.key == "":
            self.key = f"crawl.{self.name}"

    @property
    def dest(self) -> str | None:
        """Its attribute in argparse's namespace (the flag's spelling); None without a flag."""
        return self.flag.removeprefix("--").replace("-", "_") if self.flag else None

    @property
    def table(self) -> str:
        """Its job-file table."""
        return self.key.rpartition(".")[0]

    @property
    def key_name(self) -> str:
        """Its name in that table."""
        return self.key.rpartition(".")[2]

    @property
    def switch(self) -> bool:
        return self.kind.from_text is None

    def cli_default(self):
        """What argparse leaves when the flag is not given (so that it is seen whether it
        was: an option that needs another, or one given with --resume)."""
        if self.switch:
            return False
        return [] if self.kind.repeat else NOT_GIVEN

    def from_cli(self, value):
        """The option's value from argparse's."""
        if self.switch:
            return (not self.default) if value else self.default
        return self.default if value is NOT_GIVEN else value

    def from_job(self, value):
        """The option's value from its job key's (already checked)."""
        return (not value) if self.key_negated else value

    def given_on_cli(self, value) -> bool:
        return value is not NOT_GIVEN and value is not False and value != []


OPTIONS: list[Option] = [
    Option("depth", whole_kind(LEAST["depth"]),
           "how many links deep to follow from the seeds (default 0: the seeds only)"),
    Option("scope", choice_kind(SCOPES), "which linked pages may be followed (default: page)"),
    Option("include", REGEX, "also follow URLs matching REGEX (repeatable)", metavar="REGEX"),
    Option("exclude", REGEX, "never fetch URLs matching REGEX (repeatable)", metavar="REGEX"),
    Option("max_pages", whole_kind(LEAST["max_pages"]), "stop after N pages"),
    Option("max_bytes", SIZE_LIMIT, "stop after SIZE bytes received (default 10GiB; none: no limit)"),
    Option("max_time", DURATION, "stop after DURATION (e.g. 30m)"),
    Option("max_body", SIZE_LIMIT,
           "keep at most SIZE of one response body, cut there (default 1GiB; none: no limit)"),
    Option("workers", whole_kind(LEAST["workers"]),
           "fetches at once, all hosts together (default 8; --browser: one page at a time)"),
    Option("host_workers", whole_kind(LEAST["host_workers"]), "fetches at once to one host (default 4)"),
    Option("delay", PAUSE,
           "wait between requests to one host (default 0; robots.txt Crawl-delay is honoured)"),
    Option("retries", whole_kind(LEAST["retries"]),
           "retries after a transient failure: timeout, reset, 429, 5xx (default 2)"),
    Option("backoff", PAUSE, "first wait before a retry, doubled each time (default 1s; Retry-After wins)",
           flag="--retry-wait", key="crawl.retry_wait"),
    Option("max_redirects", whole_kind(LEAST["max_redirects"]),
           "longest redirect chain followed; longer ones are recorded as errors (default 10)"),
    Option("obey_robots", SWITCH, "do not obey robots.txt (for investigations; recorded in the capture)",
           flag="--ignore-robots", key="crawl.ignore_robots", key_negated=True),
    Option("dedup_against", TEXT, "store payloads unchanged since this earlier capture as revisit records",
           into="request", default=None, key=None, metavar="WACZ-or-ID"),   # a job's: its previous capture
    Option("dedup", SWITCH, "store every payload in full, even when already captured", flag="--no-dedup"),
    Option("timeout", DURATION, "network timeout (default 30s)"),
    Option("user_agent", TEXT, None),
    Option("verify_tls", SWITCH, "capture HTTPS sites whose certificate does not verify (recorded as such)",
           flag="--insecure", key="crawl.insecure", key_negated=True),
    Option("allow_private_addresses", SWITCH,
           "also fetch from loopback, private and reserved addresses other than the seeds' hosts "
           "(refused by default: a page must not reach inside)"),
    Option("allow_metadata_addresses", SWITCH,
           "also fetch from link-local addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), "
           "where cloud metadata services give out credentials"),
    Option("warc_size", SIZE, "start a new WARC file after SIZE (default 1GB)", into="request",
           default=WARC_SIZE),
    Option("text", SWITCH, "do not write each page's text into pages.jsonl (it is still catalogued)",
           into="request", default=True, flag="--no-text"),
    Option("redis", REDIS,
           f"share the crawl through Redis (redis://host:port/db; default ${REDIS_ENV}): `archive worker` "
           "processes anywhere join it; it is still sealed once, here",
           into="request", default=None, key="run.redis", group=SHARED, metavar="URL", resume="given"),
    Option("processes", whole_kind(1), "with --redis: this process and N-1 local worker processes (default 1)",
           into="request", default=1, key="run.processes", group=SHARED, metavar="N"),
    Option("lease", DURATION,
           f"with --redis: a worker that does not renew its URLs for this long loses them to others "
           f"(default {DEFAULT_LEASE:g}s)", into="request", default=DEFAULT_LEASE, key="run.lease", group=SHARED),
    Option("browser", SWITCH, "load pages in headless Chromium (scripts run; a screenshot and the "
           "rendered DOM are kept; one page at a time)", into="", default=False, group=BROWSER),
    Option("viewport", VIEWPORT, "browser window size (default 1280x800)", into="page",
           default=(_PAGE.viewport_width, _PAGE.viewport_height), only_with="browser", group=BROWSER,
           metavar="WIDTHxHEIGHT"),
    Option("wait_until", choice_kind(WAIT_CONDITIONS), "page event to wait for (default load)", into="page",
           field="wait", only_with="browser", group=BROWSER),
    Option("wait_for", TEXT, "also wait for this CSS selector", into="page", field="selector",
           only_with="browser", group=BROWSER, metavar="SELECTOR"),
    Option("wait", PAUSE, "then wait this long more", into="page", field="delay", only_with="browser",
           group=BROWSER, metavar="DELAY"),
    Option("scroll", SWITCH, "do not scroll down the page to trigger lazy loading", into="page",
           flag="--no-scroll", only_with="browser", group=BROWSER),
    Option("page_timeout", LATER_DURATION,
           "longest wait for a page to load (default 30s); it is captured as it is then", into="page",
           field="timeout", only_with="browser", group=BROWSER),
    Option("media", SWITCH, "download each page's video and audio with yt-dlp, every request recorded, "
           "the finished file kept as a resource record", into="", default=False, group=MEDIA),
    Option("media_max_size", SIZE, f"skip a media item larger than SIZE (default {_MEDIA.max_size // 10**9}GB)",
           into="media", field="max_size", only_with="media", group=MEDIA, metavar="SIZE"),
    Option("media_format", TEXT, "yt-dlp format selector (default: the best original, merged by ffmpeg)",
           into="media", field="format", only_with="media", group=MEDIA, metavar="SELECTOR"),
    Option("media_live", LATER_DURATION,
           "record this long of a live stream (default: recorded as live, not captured)", into="media",
           field="live", only_with="media", group=MEDIA, metavar="SECONDS"),
    Option("media_cookies", FILE, "like --cookies, for the media downloads only (kept for earlier scripts "
           "and job files; --cookies serves the crawl, the browser and media alike)", into="media",
           field="cookies", only_with="media", group=MEDIA, metavar="FILE"),
    # behind a login (docs/logins.md): read when each run starts, never sealed; a seed URL's
    # own credentials are no option (crawl_options' url_logins)
    Option("cookies", FILE, "cookies.txt (Netscape format, as browser extensions export it): each "
           "cookie sent only to the domains and paths it names; read at the start, never stored; the "
           "Cookie headers sent are redacted in the WARC", group=LOGIN, metavar="FILE"),
    Option("headers", HEADERS, "an extra request header (repeatable); a secret one (Authorization, "
           "Cookie, or named by --secret-header) goes to the seeds' hosts only and its value is redacted "
           "in the WARC", flag="--header", group=LOGIN, metavar="'NAME: VALUE'"),
    Option("secret_headers", HEADER_NAMES, "a request header whose value is a secret, redacted in every "
           "request record (repeatable; Authorization and Cookie always are)", flag="--secret-header",
           group=LOGIN, metavar="NAME"),
    Option("logged_out_url", REGEX, "a page redirected to, or answered at, a URL matching REGEX is "
           "recorded as \"logged out\", not as content (repeatable; a login/signin path always is)",
           group=LOGIN, metavar="REGEX"),
    Option("logged_out_selector", SELECTORS, "a page showing an element matching CSS is recorded as "
           "\"logged out\" (repeatable; with credentials, a form with a password field always is)",
           group=LOGIN, metavar="CSS"),
    # a browser profile: its cross-checks (with --browser or --media, not with --cookies or
    # --redis) are cli/capture.profile_login's and jobs/spec._profile_checks'; a resume
    # opens the profile it was started with (the passphrase from the resuming command)
    Option("profile", FILE, "log in with this browser profile (`archive profile create`) for --browser "
           "and --media capture; its cookies are redacted in the WARC", into="request", default=None,
           group=LOGIN, metavar="DIR", resume="given"),
    Option("profile_passphrase_file", FILE, f"read the profile's passphrase from FILE (default: "
           f"${PROFILE_PASSPHRASE_ENV}, else asked for)", into="", default=None, group=LOGIN,
           metavar="FILE", resume="given"),
    Option("profile_passphrase_env", ENV_NAME, "the variable holding the profile's passphrase", into="",
           default=None, flag=None, resume="given"),
]
OPTION = {option.name: option for option in OPTIONS}
ONLY_WITH = {switch: tuple(o for o in OPTIONS if o.only_with == switch) for switch in ("browser", "media")}

# All options by internal name, each with its default: what a command line or a job file gives.
CaptureSettings = make_dataclass("CaptureSettings", [
    (o.name, Any, dataclass_field(default_factory=lambda o=o: list(o.default) if isinstance(o.default, list)
                                  else o.default)) for o in OPTIONS])


def settings_from_cli(args, resume: bool = False) -> CaptureSettings:
    """The options an `archive capture` command line gives; an option that needs
    --browser or --media and is given without it is an ArchiveError, and so is one a
    `resume` keeps as the capture was started."""
    flagged = [o for o in OPTIONS if o.flag]
    if resume:
        given = [o.flag for o in flagged if o.resume == "kept" and o.given_on_cli(getattr(args, o.dest))]
        if given:
            raise ArchiveError(f"{', '.join(given)}: a resumed capture keeps the crawl options it was "
                               "started with (saved in its work folder); leave them out")
    for switch, options in ONLY_WITH.items():
        given = [o.flag for o in options if o.given_on_cli(getattr(args, o.dest))]
        if given and not getattr(args, OPTION[switch].dest):
            raise ArchiveError(f"{', '.join(given)}: only with --{switch}")
    return CaptureSettings(**{o.name: o.from_cli(getattr(args, o.dest)) for o in flagged})


def settings_from_job(tables: dict[str, dict]) -> CaptureSettings:
    """The options a job file gives: `tables` holds its checked values by table and key."""
    given = {}
    for o in OPTIONS:
        if o.key is not None and o.key_name in tables.get(o.table, {}):
            given[o.name] = o.from_job(tables[o.table][o.key_name])
    return CaptureSettings(**given)


def job_only_with_problems(crawl: dict) -> list[tuple[str, str]]:
    """(key, message) for each key of a job's [crawl] that needs `browser` or `media`
    = true, without it."""
    return [(o.key, f"'{o.key}' applies with {switch} = true only")
            for switch, options in ONLY_WITH.items() if not crawl.get(switch)
            for o in options if o.key_name in crawl]


def page_options(settings: CaptureSettings) -> PageOptions | None:
    """How the browser loads pages, or None without the browser."""
    if not settings.browser:
        return None
    values = {o.field: getattr(settings, o.name) for o in ONLY_WITH["browser"] if o.name != "viewport"}
    width, height = settings.viewport
    return PageOptions(viewport_width=width, viewport_height=height, **values)


def media_options(settings: CaptureSettings) -> MediaOptions | None:
    """How media are captured, or None without media."""
    if not settings.media:
        return None
    values = {o.field: getattr(settings, o.name) for o in ONLY_WITH["media"]}
    if values["cookies"] is not None:
        values["cookies"] = str(Path(values["cookies"]).resolve())
    return MediaOptions(**values)


def crawl_options(seeds: list[str], settings: CaptureSettings, url_logins: dict | None = None) -> CrawlOptions:
    """The crawl's options for `seeds` (without credentials: those a seed URL carried are
    `url_logins`, origin -> Authorization)."""
    values = {o.field: getattr(settings, o.name) for o in OPTIONS if o.into == "crawl"}
    if values["cookies"] is not None:
        values["cookies"] = str(Path(values["cookies"]).resolve())
    return CrawlOptions(seeds=list(seeds), browser=page_options(settings), media=media_options(settings),
                        url_logins=dict(url_logins or {}),
                        **{k: list(v) if isinstance(v, list) else v for k, v in values.items()})


def request_values(settings: CaptureSettings) -> dict[str, Any]:
    """The options that go into the pipeline's request rather than the crawl's, by field."""
    values = {o.field: getattr(settings, o.name) for o in OPTIONS if o.into == "request"}
    values["processes"] = max(1, values["processes"])
    values["lease"] = max(1.0, values["lease"])
    values["redis"] = redis_url(values["redis"])   # else $ARCHIVE_REDIS
    values["profile"] = os.path.abspath(values["profile"]) if values["profile"] else None
    return values
