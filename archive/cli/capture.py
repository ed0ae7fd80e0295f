"""`archive capture URL...`: crawl, seal, sign and store one capture."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from archive.capture.crawl import DEFAULT_MAX_BODY, DEFAULT_MAX_BYTES, LEAST, CrawlOptions
from archive.capture.fetch import DEFAULT_USER_AGENT
from archive.capture.mediaoptions import DEFAULT_MAX_SIZE as MEDIA_MAX_SIZE, MediaOptions
from archive.capture.pageoptions import WAIT_CONDITIONS, PageOptions
from archive.capture.scope import SCOPES
from archive.cli.common import (
    Progress, at_least, duration, human_bytes, positive_duration, print_json, regex, sealed_url, size,
    size_limit,
)
from archive.cli.store import add_store_options, store_options
from archive.capture.sharedcrawl import DEFAULT_LEASE
from archive.redisconn import REDIS_ENV, redis_url
from archive.errors import ArchiveError
from archive.capture.loginwall import check_selector
from archive.values import parse_seed, parse_viewport, url_logins
from archive.keys import load_private_key, p256_notice, passphrase_from_env_or_prompt, is_encrypted_pem, read_key_file
from archive.cli.timestamp import print_timestamps
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT
from archive.capture.login import Credentials
from archive.profiles.passphrase import PROFILE_PASSPHRASE_ENV
from archive.profiles.vault import open_for_capture
from archive.logins import session_advice
from archive.pipeline import DEFAULT_WORK_DIR, CaptureRequest, resume_capture, run_capture, saved_request
from archive.resumeoptions import OVERRIDE_FLAG, absolute_address, merge
from archive.seal.sign import Signer
from archive.store.address import StoreOptions, open_store
from archive.store.s3 import Retention
from archive.warc.records import default_operator
from archive.warc.writer import DEFAULT_MAX_SIZE

KEY_ENV = "ARCHIVE_KEY"


def register(sub) -> None:
    p = sub.add_parser("capture", help="capture web pages into a sealed, signed WACZ")
    p.add_argument("urls", nargs="*", metavar="URL", help="seed URL(s)")
    p.add_argument("--resume", metavar="CAPTURE_DIR",
                   help="finish an interrupted capture from its work folder (no URLs then), "
                        "with the store, key, TSAs, retention and operator it was started with")
    p.add_argument(OVERRIDE_FLAG, action="store_true",
                   help="with --resume: use the store, key, TSAs, retention or operator given "
                        "here although the capture was started with others")
    p.add_argument("--depth", type=at_least(LEAST["depth"]), default=0,
                   help="how many links deep to follow from the seeds (default 0: the seeds only)")
    p.add_argument("--scope", choices=SCOPES, default="page",
                   help="which linked pages may be followed (default: page)")
    p.add_argument("--include", action="append", default=[], metavar="REGEX", type=regex,
                   help="also follow URLs matching REGEX (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="REGEX", type=regex,
                   help="never fetch URLs matching REGEX (repeatable)")
    p.add_argument("--max-pages", type=at_least(LEAST["max_pages"]), help="stop after N pages")
    p.add_argument("--max-bytes", type=size_limit, default=DEFAULT_MAX_BYTES,
                   help="stop after SIZE bytes received (default 10GiB; none: no limit)")
    p.add_argument("--max-time", type=positive_duration, help="stop after DURATION (e.g. 30m)")
    p.add_argument("--max-body", type=size_limit, default=DEFAULT_MAX_BODY,
                   help="keep at most SIZE of one response body, cut there (default 1GiB; none: no limit)")
    p.add_argument("--workers", type=at_least(LEAST["workers"]), default=8,
                   help="fetches at once, all hosts together (default 8; --browser: one page at a time)")
    p.add_argument("--host-workers", type=at_least(LEAST["host_workers"]), default=4,
                   help="fetches at once to one host (default 4)")
    p.add_argument("--delay", type=duration, default=0.0,
                   help="wait between requests to one host (default 0; robots.txt Crawl-delay is honoured)")
    p.add_argument("--retries", type=at_least(LEAST["retries"]), default=2,
                   help="retries after a transient failure: timeout, reset, 429, 5xx (default 2)")
    p.add_argument("--retry-wait", type=duration, default=1.0,
                   help="first wait before a retry, doubled each time (default 1s; Retry-After wins)")
    p.add_argument("--max-redirects", type=at_least(LEAST["max_redirects"]), default=10,
                   help="longest redirect chain followed; longer ones are recorded as errors (default 10)")
    p.add_argument("--ignore-robots", action="store_true",
                   help="do not obey robots.txt (for investigations; recorded in the capture)")
    p.add_argument("--dedup-against", metavar="WACZ-or-ID",
                   help="store payloads unchanged since this earlier capture as revisit records")
    p.add_argument("--no-dedup", action="store_true",
                   help="store every payload in full, even when already captured")
    p.add_argument("--timeout", type=positive_duration, default=30.0, help="network timeout (default 30s)")
    p.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    p.add_argument("--insecure", action="store_true",
                   help="capture HTTPS sites whose certificate does not verify (recorded as such)")
    p.add_argument("--allow-private-addresses", action="store_true",
                   help="also fetch from loopback, private and reserved addresses other than "
                        "the seeds' hosts (refused by default: a page must not reach inside)")
    p.add_argument("--allow-metadata-addresses", action="store_true",
                   help="also fetch from link-local addresses (169.254.0.0/16, fe80::/10, "
                        "fd00:ec2::254), where cloud metadata services give out credentials")
    p.add_argument("--store", help="folder or s3://bucket/prefix (default: ./archive-store)")
    add_store_options(p)
    p.add_argument("--key", help=f"signing key file (default: ${KEY_ENV})")
    p.add_argument("--unsigned", action="store_true", help="capture without signing (reported as UNSIGNED)")
    p.add_argument("--operator", default=None, help="who runs the capture (default: your user name)")
    p.add_argument("--title", default="", help="title of the capture")
    p.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="where captures are assembled")
    p.add_argument("--warc-size", type=size, default=DEFAULT_MAX_SIZE,
                   help="start a new WARC file after SIZE (default 1GB)")
    p.add_argument("--tsa", action="append", default=[], metavar="URL",
                   help="RFC 3161 Time Stamping Authority to timestamp the capture (repeatable)")
    p.add_argument("--tsa-timeout", type=positive_duration, default=None,
                   help=f"how long to wait for each TSA (default {TSA_TIMEOUT:g}s)")
    p.add_argument("--keep-local", action="store_true", help="keep the work folder after storing")
    p.add_argument("--no-text", action="store_true",
                   help="do not write each page's text into pages.jsonl (it is still catalogued)")
    p.add_argument("--catalog", metavar="URL-or-FILE",
                   help="catalog the stored capture is added to (default: $ARCHIVE_CATALOG, else the "
                        "store's own; `off`: none)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    r = p.add_argument_group("a crawl shared by several processes or machines")
    r.add_argument("--redis", metavar="URL",
                   help=f"share the crawl through Redis (redis://host:port/db; default ${REDIS_ENV}): "
                        "`archive worker` processes anywhere join it; it is still sealed once, here")
    r.add_argument("--processes", type=at_least(1), default=1, metavar="N",
                   help="with --redis: this process and N-1 local worker processes (default 1)")
    r.add_argument("--lease", type=positive_duration, default=DEFAULT_LEASE,
                   help=f"with --redis: a worker that does not renew its URLs for this long "
                        f"loses them to others (default {DEFAULT_LEASE:g}s)")
    b = p.add_argument_group("browser capture")
    b.add_argument("--browser", action="store_true",
                   help="load pages in headless Chromium (scripts run; a screenshot and the "
                        "rendered DOM are kept; one page at a time)")
    b.add_argument("--viewport", type=viewport, metavar="WIDTHxHEIGHT",
                   help="browser window size (default 1280x800)")
    b.add_argument("--wait-until", choices=WAIT_CONDITIONS,
                   help="page event to wait for (default load)")
    b.add_argument("--wait-for", metavar="SELECTOR", help="also wait for this CSS selector")
    b.add_argument("--wait", type=duration, metavar="DELAY", help="then wait this long more")
    b.add_argument("--no-scroll", action="store_true",
                   help="do not scroll down the page to trigger lazy loading")
    b.add_argument("--page-timeout", type=duration,
                   help="longest wait for a page to load (default 30s); it is captured as it is then")
    m = p.add_argument_group("media capture (video and audio, through yt-dlp)")
    m.add_argument("--media", action="store_true",
                   help="download each page's video and audio with yt-dlp, every request "
                        "recorded, the finished file kept as a resource record")
    m.add_argument("--media-max-size", type=size, metavar="SIZE",
                   help=f"skip a media item larger than SIZE (default {MEDIA_MAX_SIZE // 10**9}GB)")
    m.add_argument("--media-format", metavar="SELECTOR",
                   help="yt-dlp format selector (default: the best original, merged by ffmpeg)")
    m.add_argument("--media-live", type=duration, metavar="SECONDS",
                   help="record this long of a live stream (default: recorded as live, not captured)")
    m.add_argument("--media-cookies", metavar="FILE",
                   help="like --cookies, for the media downloads only (kept for earlier scripts "
                        "and job files; --cookies serves the crawl, the browser and media alike)")
    login = p.add_argument_group("behind a login (never sealed: docs/logins.md)")
    login.add_argument("--cookies", metavar="FILE",
                       help="cookies.txt (Netscape format, as browser extensions export it): each "
                            "cookie sent only to the domains and paths it names; read at the start, "
                            "never stored; the Cookie headers sent are redacted in the WARC")
    login.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                       help="an extra request header (repeatable); a secret one (Authorization, "
                            "Cookie, or named by --secret-header) goes to the seeds' hosts only "
                            "and its value is redacted in the WARC")
    login.add_argument("--secret-header", action="append", default=[], metavar="NAME",
                       help="a request header whose value is a secret, redacted in every request "
                            "record (repeatable; Authorization and Cookie always are)")
    login.add_argument("--logged-out-url", action="append", default=[], metavar="REGEX", type=regex,
                       help="a page redirected to, or answered at, a URL matching REGEX is recorded "
                            "as \"logged out\", not as content (repeatable; a login/signin path "
                            "always is)")
    login.add_argument("--logged-out-selector", action="append", default=[], metavar="CSS",
                       type=css_selector,
                       help="a page showing an element matching CSS is recorded as \"logged out\" "
                            "(repeatable; with credentials, a form with a password field always is)")
    login.add_argument("--profile", metavar="DIR",
                       help="log in with this browser profile (`archive profile create`) for "
                            "--browser and --media capture; its cookies are redacted in the WARC")
    login.add_argument("--profile-passphrase-file", metavar="FILE",
                       help=f"read the profile's passphrase from FILE (default: ${PROFILE_PASSPHRASE_ENV}, "
                            "else asked for)")
    p.set_defaults(run=run)


def css_selector(text: str) -> str:
    try:
        return check_selector(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seeds_and_logins(urls: list[str]) -> tuple[list[str], dict[str, str]]:
    """The seeds without credentials, and the credentials they carried (by origin)."""
    try:
        parsed = [parse_seed(u) for u in urls]
        return [url for url, _ in parsed], url_logins(parsed)
    except ValueError as exc:
        raise ArchiveError(str(exc)) from None


def profile_login(args, resumed: CaptureRequest | None = None) -> Credentials | None:
    """The browser profile the capture logs in with (a resumed capture: the one it was
    started with), opened before anything is fetched: a wrong passphrase captures nothing."""
    if resumed is not None:
        if args.profile:
            raise ArchiveError("--profile: a resumed capture logs in with the profile it was started with")
        folder = resumed.profile
    else:
        folder = args.profile
        if folder and not (args.browser or args.media):
            raise ArchiveError("--profile logs in the browser and media downloads: give --browser or --media")
        if folder and (args.media_cookies or args.cookies):
            flag = "--cookies" if args.cookies else "--media-cookies"
            raise ArchiveError(f"--profile and {flag}: give one login, not two")
        if folder and args.redis:
            raise ArchiveError("--profile with --redis: a shared crawl's workers cannot open the profile")
    if not folder:
        if args.profile_passphrase_file:
            raise ArchiveError("--profile-passphrase-file goes with --profile")
        return None
    return open_for_capture(folder, args.profile_passphrase_file)


MEDIA_ONLY = ("media_max_size", "media_format", "media_live", "media_cookies")


def media_options(args) -> MediaOptions | None:
    """How media are captured, or None without --media."""
    if not args.media:
        given = [name for name in MEDIA_ONLY if getattr(args, name) is not None]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ArchiveError(f"{flags}: only with --media")
        return None
    if args.media_cookies and not Path(args.media_cookies).is_file():
        raise ArchiveError(f"--media-cookies {args.media_cookies}: no such file")
    return MediaOptions(
        max_size=args.media_max_size if args.media_max_size is not None else MEDIA_MAX_SIZE,
        format=args.media_format, live=args.media_live,
        cookies=str(Path(args.media_cookies).resolve()) if args.media_cookies else None,
    )


BROWSER_ONLY = ("viewport", "wait_until", "wait_for", "wait", "no_scroll", "page_timeout")


def viewport(text: str) -> tuple[int, int]:
    """`1280x800` -> (1280, 800)."""
    try:
        return parse_viewport(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def page_options(args) -> PageOptions | None:
    """How the browser loads pages, or None without --browser."""
    if not args.browser:
        given = [name for name in BROWSER_ONLY if getattr(args, name) not in (None, False)]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ArchiveError(f"{flags}: only with --browser")
        return None
    defaults = PageOptions()
    width, height = args.viewport or (defaults.viewport_width, defaults.viewport_height)
    return PageOptions(
        viewport_width=width, viewport_height=height, wait=args.wait_until or defaults.wait,
        selector=args.wait_for, delay=args.wait or 0.0, scroll=not args.no_scroll,
        # `is not None`: an explicit 0 is refused by PageOptions, not taken as the default
        timeout=args.page_timeout if args.page_timeout is not None else defaults.timeout,
    )


def load_signer(key_path: str | None, unsigned: bool) -> Signer | None:
    """The signer, loaded before any network traffic so a bad key fails fast."""
    key_path = key_path or os.environ.get(KEY_ENV)
    if unsigned:
        if key_path and not os.environ.get(KEY_ENV):
            raise ArchiveError("--unsigned and --key contradict each other")
        return None
    if not key_path:
        raise ArchiveError(
            f"no signing key: give --key FILE (or set {KEY_ENV}); "
            "`archive keys generate` makes one, --unsigned captures without signing"
        )
    data = read_key_file(key_path)
    passphrase = passphrase_from_env_or_prompt() if is_encrypted_pem(data) else None
    return Signer(load_private_key(key_path, passphrase))


def _stop_on_sigterm():
    """SIGTERM (systemd, docker stop, timeout) stops a capture as Ctrl-C does: the work
    folder is kept and a multipart upload in flight is aborted, not left dangling.
    Returns the previous handler (None off the main thread, where none can be set)."""
    def stop(signum, frame) -> None:
        raise KeyboardInterrupt("SIGTERM")

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, stop)


def _signer_value(signer: Signer | None) -> str:
    return signer.fingerprint if signer else "unsigned"


def _origin(args, store, signer: Signer | None) -> dict:
    """What a resume of this capture must keep (archive.resumeoptions)."""
    retention = getattr(store, "retention", None)
    return {
        "store": absolute_address(store.address), "endpoint_url": args.endpoint_url,
        "retain_days": getattr(retention, "days", None), "lock_mode": getattr(retention, "mode", None),
        "legal_hold": bool(getattr(retention, "legal_hold", False)),
        "key": os.path.abspath(args.key or os.environ.get(KEY_ENV)) if signer else None,
        "signer": _signer_value(signer),
    }


def _resumed_as_started(args, tsas: list[str], on_upload):
    """(store, signer, request changes) of a resume: as the capture was started, except
    what this command line gives (refused where it differs, unless --override-saved)."""
    _, request, _ = saved_request(Path(args.resume))
    origin = request.origin
    saved = {**origin, "tsa": request.tsa, "tsa_timeout": request.tsa_timeout,
             "operator": request.operator}
    given = {
        "store": absolute_address(args.store) if args.store else None,
        "endpoint_url": args.endpoint_url, "retain_days": args.retain_days,
        "lock_mode": args.lock_mode, "legal_hold": True if args.legal_hold else None,
        "tsa": tsas or None, "tsa_timeout": args.tsa_timeout, "operator": args.operator,
    }
    keyed = bool(args.key or args.unsigned)
    signer = load_signer(args.key, args.unsigned) if keyed or not origin else None
    if keyed:
        given["signer"] = _signer_value(signer)
    merged, _ = merge({k: v for k, v in saved.items() if k != "key"}, given, args.override_saved)
    if origin and not keyed and merged["signer"] != "unsigned":
        signer = load_signer(origin.get("key"), False)   # the key it was started with, where it was
    retention = Retention(merged.get("retain_days"), merged.get("lock_mode"), bool(merged.get("legal_hold")))
    store = open_store(merged.get("store"), StoreOptions(
        endpoint_url=merged.get("endpoint_url"), retention=retention, progress=on_upload))
    changes = {k: merged[k] for k in ("tsa", "tsa_timeout", "operator") if given.get(k) is not None}
    return store, signer, changes


def run(args) -> int:
    if bool(args.urls) == bool(args.resume):
        raise ArchiveError("give seed URLs, or --resume CAPTURE_DIR (not both)")
    if args.override_saved and not args.resume:
        raise ArchiveError(f"{OVERRIDE_FLAG} goes with --resume")
    seeds, logins = seeds_and_logins(args.urls)
    redis = redis_url(args.redis)
    if args.processes > 1 and not redis:
        raise ArchiveError("--processes needs --redis (the processes share the crawl through it)")
    tsas = [sealed_url(u) for u in args.tsa]
    browser = page_options(args)
    media = media_options(args)
    credentials = profile_login(args, saved_request(Path(args.resume))[1] if args.resume and
                        Path(args.resume).is_dir() else None)
    progress = Progress(not args.quiet and not args.json)

    def on_upload(sent: int, total: int) -> None:
        progress.update("storing", sent, total, force=sent == total, stage="store")

    if args.resume:
        if not Path(args.resume).is_dir():
            raise ArchiveError(f"no such capture work folder: {args.resume}")
        store, signer, changes = _resumed_as_started(args, tsas, on_upload)
    else:
        signer = load_signer(args.key, args.unsigned)
        store = open_store(args.store, store_options(args, on_upload))
    notice = p256_notice(signer.fingerprint, signer.curve) if signer else None
    if notice:
        print(f"archive: note: {notice}", file=sys.stderr)
    options = CrawlOptions(
        seeds=seeds, depth=args.depth, scope=args.scope, include=args.include,
        exclude=args.exclude, max_pages=args.max_pages, max_bytes=args.max_bytes,
        max_time=args.max_time, max_body=args.max_body, timeout=args.timeout,
        user_agent=args.user_agent, verify_tls=not args.insecure,
        workers=args.workers, host_workers=args.host_workers, delay=args.delay,
        retries=args.retries, backoff=args.retry_wait, obey_robots=not args.ignore_robots,
        dedup=not args.no_dedup, max_redirects=args.max_redirects, browser=browser,
        allow_private_addresses=args.allow_private_addresses,
        allow_metadata_addresses=args.allow_metadata_addresses,
        media=media, cookies=str(Path(args.cookies).resolve()) if args.cookies else None,
        headers=args.header, secret_headers=args.secret_header, url_logins=logins,
        logged_out_url=args.logged_out_url, logged_out_selector=args.logged_out_selector,
    )
    request = CaptureRequest(
        crawl=options, operator=args.operator or default_operator(),
        work_dir=Path(args.work_dir), warc_size=args.warc_size,
        keep_local=args.keep_local, title=args.title, tsa=tsas,
        tsa_timeout=args.tsa_timeout or TSA_TIMEOUT, dedup_against=args.dedup_against,
        text=not args.no_text, origin={} if args.resume else _origin(args, store, signer),
        redis=redis, processes=max(1, args.processes), lease=max(1.0, args.lease),
        profile=os.path.abspath(args.profile) if args.profile else None,
        profile_identity=credentials.identity if credentials else None,
    )

    started = time.monotonic()

    def on_progress(stats, queued: int, workers: int | None = None) -> None:
        elapsed = max(1e-6, time.monotonic() - started)
        # no total (the queue grows as pages are read): counts, pages/s, and rich's bytes/s
        progress.update(
            f"pages {stats.pages}  requisites {stats.requisites}  queued {queued}  "
            f"failed {stats.failed}  {human_bytes(stats.bytes)}  "
            + (f"media {stats.media}  " if media else "")
            + f"{stats.pages / elapsed:.1f} pages/s"
            + (f"  workers {workers}" if workers is not None else ""),
            stats.bytes,
        )

    previous = _stop_on_sigterm()
    try:
        if args.resume:
            # the crawl's own options were saved with it, and so were where it goes and
            # who signs it (changed only with --override-saved)
            result = resume_capture(Path(args.resume), store, signer, on_progress, changes, args.catalog,
                                    redis=redis_url(args.redis) if args.redis else None,
                                    credentials=credentials)
        else:
            result = run_capture(request, store, signer, on_progress, args.catalog, credentials)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        progress.done()
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"capture  {result.capture_id}")
        print(f"stored   {result.address}")
        print(f"sha256   {result.sha256}")
        print(f"signer   {result.signer or 'UNSIGNED'}")
        if result.lock:
            print(f"locked   {result.lock}")
        # `failed` counts every failed fetch, pages and requisites alike (with --browser,
        # often only the favicon Chromium asks for on its own).
        print(f"pages    {result.pages}, requisites {result.requisites}, "
              f"failed fetches {result.failed}, {human_bytes(result.bytes)}"
              + (f", {result.revisits} unchanged payloads as revisits" if result.revisits else ""))
        if media or result.media or result.media_failed:
            print(f"media    {result.media} recorded, {result.media_failed} failed "
                  "(evidence/capture.json says what became of each)")
        if result.stop_reason:
            print(f"stopped  {result.stop_reason} reached; some queued URLs were not fetched")
        for cut in result.cut_back:
            print(f"cut back {cut['groups']} fetches journaled before {cut['at']} had lost "
                  "their records on disk (a power failure) and were fetched again")
        print_timestamps(result.timestamps, result.capture_id)
        for wall in result.logged_out:
            print(f"logged out {wall['url']}: {wall['error'].removeprefix('logged out: ')}")
    if result.logged_out:
        print(f"archive: warning: {len(result.logged_out)} page(s) answered with a login wall "
              "(recorded as \"logged out\", not as content): the session has expired or the "
              "cookies are not the right ones", file=sys.stderr)
    if result.session_cookies:
        print(f"archive: warning: {session_advice(result.session_cookies)}", file=sys.stderr)
    for warning in result.warnings:
        print(f"archive: warning: {warning}", file=sys.stderr)
    if result.custody_problems:
        raise ArchiveError(f"capture {result.capture_id} is stored, but its custody is incomplete: "
                           + "; ".join(result.custody_problems))
    if result.nothing_captured:
        # stored: that a page could not be reached at this time is evidence too; but no success
        print(f"archive: {result.nothing_captured_line()}", file=sys.stderr)
        return 1
    return 0
