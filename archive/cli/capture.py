"""`archive capture URL...`: crawl, seal, sign and store one capture."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from archive.capture.login import Credentials
from archive.capture.options import OPTIONS, CaptureSettings, crawl_options, request_values, settings_from_cli
from archive.cli.capture_result import print_capture_result
from archive.cli.common import Progress, argument_type, human_bytes, positive_duration, print_json, sealed_url, note_key_curve
from archive.cli.sigterm import stop_on_sigterm
from archive.cli.store import add_store_options, store_options
from archive.errors import ArchiveError
from archive.keys import KEY_ENV, chosen_signer, load_signer
from archive.logins import session_advice
from archive.pipeline import DEFAULT_WORK_DIR, CaptureRequest, resume_capture, run_capture, saved_request
from archive.profiles.vault import open_for_capture
from archive.redisconn import redis_url
from archive.resumeoptions import OVERRIDE_FLAG, absolute_address, merge
from archive.seal.sign import Signer
from archive.seal.timestamp import DEFAULT_TIMEOUT as TSA_TIMEOUT
from archive.store.address import StoreOptions, open_store
from archive.store.s3 import Retention
from archive.values import parse_seed, url_logins
from archive.warc.records import default_operator


def register(sub) -> None:
    p = sub.add_parser("capture", help="capture web pages into a sealed, signed WACZ")
    p.add_argument("urls", nargs="*", metavar="URL", help="seed URL(s)")
    p.add_argument("--resume", metavar="CAPTURE_DIR",
                   help="finish an interrupted capture from its work folder (no URLs then), "
                        "with the store, key, TSAs, retention and operator it was started with")
    p.add_argument(OVERRIDE_FLAG, action="store_true",
                   help="with --resume: use the store, key, TSAs, retention or operator given "
                        "here although the capture was started with others")
    add_capture_options(p)
    add_store_options(p)
    p.add_argument("--key", help=f"signing key file (default: ${KEY_ENV})")
    p.add_argument("--unsigned", action="store_true", help="capture without signing (reported as UNSIGNED)")
    p.add_argument("--operator", default=None, help="who runs the capture (default: your user name)")
    p.add_argument("--title", default="", help="title of the capture")
    p.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="where captures are assembled")
    p.add_argument("--tsa", action="append", default=[], metavar="URL",
                   help="RFC 3161 Time Stamping Authority to timestamp the capture (repeatable)")
    p.add_argument("--tsa-timeout", type=positive_duration, default=None,
                   help=f"how long to wait for each TSA (default {TSA_TIMEOUT:g}s)")
    p.add_argument("--keep-local", action="store_true", help="keep the work folder after storing")
    p.add_argument("--catalog", metavar="URL-or-FILE",
                   help="catalog the stored capture is added to (default: $ARCHIVE_CATALOG, else the "
                        "store's own; `off`: none)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    """The flags of every capture option (archive.capture.options), in their groups."""
    groups = {}
    for option in OPTIONS:
        if option.flag is None:     # a job file's only
            continue
        into = parser
        if option.group:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            into = groups[option.group]
        extra = {"metavar": option.metavar} if option.metavar else {}
        if option.switch:
            into.add_argument(option.flag, action="store_true", help=option.help)
            continue
        if option.kind.choices:
            extra["choices"] = option.kind.choices
        into.add_argument(option.flag, type=argument_type(option.kind.from_text),
                          action="append" if option.kind.repeat else "store",
                          default=option.cli_default(), help=option.help, **extra)


def seeds_and_logins(urls: list[str]) -> tuple[list[str], dict[str, str]]:
    """The seeds without credentials, and the credentials they carried (by origin)."""
    try:
        parsed = [parse_seed(u) for u in urls]
        return [url for url, _ in parsed], url_logins(parsed)
    except ValueError as exc:
        raise ArchiveError(str(exc)) from None


def profile_login(settings: CaptureSettings, resumed: CaptureRequest | None = None) -> Credentials | None:
    """The browser profile the capture logs in with (a resumed capture: the one it was
    started with), opened before anything is fetched: a wrong passphrase captures nothing."""
    if resumed is not None:
        if settings.profile:
            raise ArchiveError("--profile: a resumed capture logs in with the profile it was started with")
        folder = resumed.profile
    else:
        folder = settings.profile
        if folder and not (settings.browser or settings.media):
            raise ArchiveError("--profile logs in the browser and media downloads: give --browser or --media")
        if folder and (settings.media_cookies or settings.cookies):
            flag = "--cookies" if settings.cookies else "--media-cookies"
            raise ArchiveError(f"--profile and {flag}: give one login, not two")
        if folder and settings.redis:
            raise ArchiveError("--profile with --redis: a shared crawl's workers cannot open the profile")
    if not folder:
        if settings.profile_passphrase_file:
            raise ArchiveError("--profile-passphrase-file goes with --profile")
        return None
    return open_for_capture(folder, settings.profile_passphrase_file)


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
    signer = chosen_signer(args.key, args.unsigned) if keyed or not origin else None
    if keyed:
        given["signer"] = _signer_value(signer)
    merged, _ = merge({k: v for k, v in saved.items() if k != "key"}, given, args.override_saved)
    if origin and not keyed and merged["signer"] != "unsigned":
        signer = load_signer(origin.get("key"))   # the key it was started with, where it was
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
    settings = settings_from_cli(args, resume=bool(args.resume))
    if settings.media_cookies and not Path(settings.media_cookies).is_file():
        raise ArchiveError(f"--media-cookies {settings.media_cookies}: no such file")
    redis = redis_url(settings.redis)
    if settings.processes > 1 and not redis:
        raise ArchiveError("--processes needs --redis (the processes share the crawl through it)")
    tsas = [sealed_url(u) for u in args.tsa]
    options = crawl_options(seeds, settings, logins)
    media = options.media
    credentials = profile_login(settings, saved_request(Path(args.resume))[1] if args.resume and
                                Path(args.resume).is_dir() else None)
    progress = Progress(not args.quiet and not args.json)

    def on_upload(sent: int, total: int) -> None:
        progress.update("storing", sent, total, force=sent == total, stage="store")

    if args.resume:
        if not Path(args.resume).is_dir():
            raise ArchiveError(f"no such capture work folder: {args.resume}")
        store, signer, changes = _resumed_as_started(args, tsas, on_upload)
    else:
        signer = chosen_signer(args.key, args.unsigned)
        store = open_store(args.store, store_options(args, on_upload))
    note_key_curve(signer)
    request = CaptureRequest(
        crawl=options, operator=args.operator or default_operator(),
        work_dir=Path(args.work_dir), keep_local=args.keep_local, title=args.title, tsa=tsas,
        tsa_timeout=args.tsa_timeout or TSA_TIMEOUT,
        origin={} if args.resume else _origin(args, store, signer),
        profile_identity=credentials.identity if credentials else None, **request_values(settings),
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

    # SIGTERM stops a capture as Ctrl-C does: the work folder is kept and a multipart
    # upload in flight is aborted, not left dangling
    try:
        with stop_on_sigterm():
            if args.resume:
                # the crawl's own options were saved with it, and so were where it goes and
                # who signs it (changed only with --override-saved)
                result = resume_capture(Path(args.resume), store, signer, on_progress, changes, args.catalog,
                                        redis=redis if settings.redis else None, credentials=credentials)
            else:
                result = run_capture(request, store, signer, on_progress, args.catalog, credentials)
    finally:
        progress.done()
    if args.json:
        print_json(result.to_dict())
    else:
        print_capture_result(result.to_dict(), media=media is not None)
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
