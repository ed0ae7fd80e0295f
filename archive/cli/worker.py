"""`archive worker --redis URL`: take part in shared crawls (never signs anything)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from archive.cli.common import (
    Progress, add_store_arguments, at_least, duration, human_bytes, print_json,
)
from archive.cli.sigterm import stop_on_sigterm
from archive.errors import ArchiveError
from archive.pipeline import DEFAULT_WORK_DIR
from archive.redisconn import REDIS_ENV, connect, redis_url
from archive.store.address import StoreOptions
from archive.worker import run_worker


def register(sub) -> None:
    p = sub.add_parser("worker", help="fetch for crawls shared through Redis (`capture --redis`)")
    p.add_argument("--redis", metavar="URL", help=f"the Redis of the crawls (default: ${REDIS_ENV})")
    add_store_arguments(p, "the crawls' store, for their staging area (default: the address each "
                           "crawl names)")
    p.add_argument("--crawl", metavar="CAPTURE_ID", help="join this crawl only, then leave")
    p.add_argument("--wait", type=duration, default=0.0, metavar="SECONDS",
                   help="with --crawl: wait up to this long for the crawl to be put into Redis "
                        "(default 0: a crawl not there yet is an error)")
    p.add_argument("--once", action="store_true", help="leave when there is no work")
    p.add_argument("--workers", type=at_least(1), default=None, metavar="N",
                   help="fetches at once in this process (default: the crawl's --workers)")
    p.add_argument("--work-dir", default=str(Path(DEFAULT_WORK_DIR) / "workers"),
                   help="where this worker's WARC files are written before they are handed over")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def run(args) -> int:
    url = redis_url(args.redis)
    if not url:
        raise ArchiveError(f"no Redis: give --redis URL (or set {REDIS_ENV})")
    if args.wait and not args.crawl:
        raise ArchiveError("--wait needs --crawl (without it a worker waits for any crawl)")
    client = connect(url, name="archive-worker")
    stop = threading.Event()
    progress = Progress(not args.quiet and not args.json)
    started = time.monotonic()

    def on_progress(capture_id: str, stats, queued: int) -> None:
        elapsed = max(1e-6, time.monotonic() - started)
        progress.update(f"crawl {capture_id}  fetched {stats.fetches}  pages {stats.pages}  "
                        f"{human_bytes(stats.bytes)}  handed over {stats.handovers}  "
                        f"queued {queued}  {stats.fetches / elapsed:.1f} fetches/s")

    try:
        # SIGTERM: finish the fetches in hand, hand them over, leave
        with stop_on_sigterm(before=stop.set):
            report = run_worker(client, store_address=args.store,
                                store_options=StoreOptions(endpoint_url=args.endpoint_url),
                                work_dir=Path(args.work_dir), crawl=args.crawl, once=args.once,
                                threads=args.workers, stop=stop, on_progress=on_progress,
                                wait=args.wait)
    finally:
        progress.done()
    if args.json:
        print_json(report.to_dict())
    else:
        for crawl in report.crawls:
            print(f"worker {crawl['worker']}  crawl {crawl['captureId']}  fetched {crawl['fetches']}  "
                  f"pages {crawl['pages']}  {human_bytes(crawl['bytes'])}  "
                  f"handed over {crawl['handovers']} ({crawl['refused']} refused)"
                  + (f"  lost: {crawl['lost']}" if crawl.get("lost") else ""))
    return 0
