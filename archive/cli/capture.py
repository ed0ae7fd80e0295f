"""`archive capture URL...`: crawl, seal, sign and store one capture."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

from archive.capture.crawl import CrawlOptions
from archive.capture.fetch import DEFAULT_USER_AGENT
from archive.capture.pageoptions import WAIT_CONDITIONS, PageOptions
from archive.capture.scope import SCOPES
from archive.cli.common import Progress, duration, http_url, human_bytes, positive_int, print_json, size
from archive.cli.store import add_store_options, store_options
from archive.errors import ArchiveError
from archive.values import parse_viewport
from archive.keys import load_private_key, p256_notice, passphrase_from_env_or_prompt, is_encrypted_pem, read_key_file
from archive.cli.timestamp import print_timestamps
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT
from archive.pipeline import DEFAULT_WORK_DIR, CaptureRequest, resume_capture, run_capture
from archive.seal.sign import Signer
from archive.store.address import open_store
from archive.warc.records import default_operator
from archive.warc.writer import DEFAULT_MAX_SIZE

KEY_ENV = "ARCHIVE_KEY"


def register(sub) -> None:
    p = sub.add_parser("capture", help="capture web pages into a sealed, signed WACZ")
    p.add_argument("urls", nargs="*", metavar="URL", help="seed URL(s)")
    p.add_argument("--resume", metavar="CAPTURE_DIR",
                   help="finish an interrupted capture from its work folder (no URLs then)")
    p.add_argument("--depth", type=positive_int, default=0,
                   help="how many links deep to follow from the seeds (default 0: the seeds only)")
    p.add_argument("--scope", choices=SCOPES, default="page",
                   help="which linked pages may be followed (default: page)")
    p.add_argument("--include", action="append", default=[], metavar="REGEX",
                   help="also follow URLs matching REGEX (repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                   help="never fetch URLs matching REGEX (repeatable)")
    p.add_argument("--max-pages", type=positive_int, help="stop after N pages")
    p.add_argument("--max-bytes", type=size, help="stop after SIZE bytes received (e.g. 500MB)")
    p.add_argument("--max-time", type=duration, help="stop after DURATION (e.g. 30m)")
    p.add_argument("--max-body", type=size, help="keep at most SIZE of one response body")
    p.add_argument("--workers", type=positive_int, default=8,
                   help="fetches at once, all hosts together (default 8; --browser: one page at a time)")
    p.add_argument("--host-workers", type=positive_int, default=4,
                   help="fetches at once to one host (default 4)")
    p.add_argument("--delay", type=duration, default=0.0,
                   help="wait between requests to one host (default 0; robots.txt Crawl-delay is honoured)")
    p.add_argument("--retries", type=positive_int, default=2,
                   help="retries after a transient failure: timeout, reset, 429, 5xx (default 2)")
    p.add_argument("--retry-wait", type=duration, default=1.0,
                   help="first wait before a retry, doubled each time (default 1s; Retry-After wins)")
    p.add_argument("--max-redirects", type=positive_int, default=10,
                   help="longest redirect chain followed; longer ones are recorded as errors (default 10)")
    p.add_argument("--ignore-robots", action="store_true",
                   help="do not obey robots.txt (for investigations; recorded in the capture)")
    p.add_argument("--dedup-against", metavar="WACZ-or-ID",
                   help="store payloads unchanged since this earlier capture as revisit records")
    p.add_argument("--no-dedup", action="store_true",
                   help="store every payload in full, even when already captured")
    p.add_argument("--timeout", type=duration, default=30.0, help="network timeout (default 30s)")
    p.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    p.add_argument("--insecure", action="store_true",
                   help="capture HTTPS sites whose certificate does not verify (recorded as such)")
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
    p.add_argument("--tsa-timeout", type=duration, default=TSA_TIMEOUT,
                   help=f"how long to wait for each TSA (default {TSA_TIMEOUT:g}s)")
    p.add_argument("--keep-local", action="store_true", help="keep the work folder after storing")
    p.add_argument("--no-text", action="store_true",
                   help="do not write each page's text into pages.jsonl (it is still catalogued)")
    p.add_argument("--catalog", metavar="URL-or-FILE",
                   help="catalog the stored capture is added to (default: $ARCHIVE_CATALOG, else the "
                        "store's own; `off`: none)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
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
    p.set_defaults(run=run)


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


def run(args) -> int:
    if bool(args.urls) == bool(args.resume):
        raise ArchiveError("give seed URLs, or --resume CAPTURE_DIR (not both)")
    seeds = [http_url(u) for u in args.urls]
    tsas = [http_url(u) for u in args.tsa]
    browser = page_options(args)
    signer = load_signer(args.key, args.unsigned)
    notice = p256_notice(signer.fingerprint, signer.curve) if signer else None
    if notice:
        print(f"archive: note: {notice}", file=sys.stderr)
    progress = Progress(not args.quiet and not args.json)

    def on_upload(sent: int, total: int) -> None:
        progress.update(f"storing  {human_bytes(sent)} of {human_bytes(total)}", force=sent == total)

    store = open_store(args.store, store_options(args, on_upload))
    if args.resume and not Path(args.resume).is_dir():
        raise ArchiveError(f"no such capture work folder: {args.resume}")
    options = CrawlOptions(
        seeds=seeds, depth=args.depth, scope=args.scope, include=args.include,
        exclude=args.exclude, max_pages=args.max_pages, max_bytes=args.max_bytes,
        max_time=args.max_time, max_body=args.max_body, timeout=args.timeout,
        user_agent=args.user_agent, verify_tls=not args.insecure,
        workers=max(1, args.workers), host_workers=max(1, args.host_workers), delay=args.delay,
        retries=args.retries, backoff=args.retry_wait, obey_robots=not args.ignore_robots,
        dedup=not args.no_dedup, max_redirects=args.max_redirects, browser=browser,
    )
    request = CaptureRequest(
        crawl=options, operator=args.operator or default_operator(),
        work_dir=Path(args.work_dir), warc_size=args.warc_size,
        keep_local=args.keep_local, title=args.title, tsa=tsas, tsa_timeout=args.tsa_timeout,
        dedup_against=args.dedup_against, text=not args.no_text,
    )

    started = time.monotonic()

    def on_progress(stats, queued: int) -> None:
        elapsed = max(1e-6, time.monotonic() - started)
        progress.update(
            f"pages {stats.pages}  requisites {stats.requisites}  queued {queued}  "
            f"failed {stats.failed}  {human_bytes(stats.bytes)}  "
            f"{stats.pages / elapsed:.1f} pages/s  {human_bytes(stats.bytes / elapsed)}/s"
        )

    previous = _stop_on_sigterm()
    try:
        if args.resume:
            # The crawl's own options were saved with it; only where it goes and who signs
            # come from this command line.
            result = resume_capture(Path(args.resume), store, signer, on_progress, args.catalog)
        else:
            result = run_capture(request, store, signer, on_progress, args.catalog)
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
        if result.stop_reason:
            print(f"stopped  {result.stop_reason} reached; some queued URLs were not fetched")
        for cut in result.cut_back:
            print(f"cut back {cut['groups']} fetches journaled before {cut['at']} had lost "
                  "their records on disk (a power failure) and were fetched again")
        print_timestamps(result.timestamps, result.capture_id)
    for warning in result.warnings:
        print(f"archive: warning: {warning}", file=sys.stderr)
    if result.custody_problems:
        raise ArchiveError(f"capture {result.capture_id} is stored, but its custody is incomplete: "
                           + "; ".join(result.custody_problems))
    return 0
