"""`archive worker`: take part in the shared crawls in Redis, handing WARC files over
through the crawl's store. Wires capture (the shared crawl) to store (staging); never
holds a signing key."""

from __future__ import annotations

import shutil
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import redis

from archive.capture.dedup import EarlierCapture
from archive.capture.redisfrontier import crawl_ended
from archive.capture.sharedcrawl import (
    CrawlAnnouncements, CrawlConfig, SharedWorker, WorkerStats, active_crawls, check_version,
    new_worker_id, read_config,
)
from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.redisconn import CrawlGone
from archive.store.address import StoreOptions, open_store
from archive.store.staging import check_staging, put_staged, remove_one, staging_prefix

# An idle worker waits for a crawl to be announced (pub/sub), looking at the crawls in
# progress anyway this often: the safety net for an announcement lost with its connection.
IDLE_LOOK = 30.0


@dataclass
class WorkerReport:
    worker: str
    # per crawl joined: capture id, worker id (this worker's, but a new one for each
    # rejoin of a crawl rebuilt under a new epoch) and counts
    crawls: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def make_worker(client: redis.Redis, config: CrawlConfig, store, work_dir: Path,
                worker_id: str | None = None, threads: int | None = None) -> SharedWorker:
    """A worker of one crawl, staging into `store` (checked writable first)."""
    check_version(config)
    worker_id = worker_id or new_worker_id()
    check_staging(store, config.capture_id, worker_id)
    prefix = staging_prefix(config.capture_id)

    def stage(path: Path, name: str, sha256: str, size: int) -> str:
        key = f"{prefix}/{name}"
        put_staged(store, key, path, sha256)
        return key

    earlier = None
    if config.dedup_against:
        try:
            earlier = EarlierCapture(store.open_capture(config.dedup_against), config.dedup_against)
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ArchiveError(f"cannot deduplicate against {config.dedup_against}: {exc}") from None
    return SharedWorker(client, config, work_dir, stage, lambda key: remove_one(store, key),
                        worker_id=worker_id, threads=threads, earlier=earlier)


def run_worker(client: redis.Redis, *, store_address: str | None, store_options: StoreOptions,
               work_dir: Path, crawl: str | None = None, once: bool = False,
               threads: int | None = None, stop: threading.Event | None = None,
               on_progress: Callable[[str, WorkerStats, int], None] | None = None,
               wait: float = 0.0) -> WorkerReport:
    """Join crawls as they appear (only `crawl`, when given) until stopped; with `once`,
    leave when there is no work. `wait`: seconds to wait for `crawl` to be put into Redis
    (a coordinator starts its local worker processes before it puts the crawl there).

    A crawl is joined once per epoch: one rebuilt by a resumed coordinator (Redis had
    lost it) is a new epoch, and workers that took part in the old one join it again."""
    if crawl is not None and not is_capture_id(crawl):
        raise ArchiveError(f"not a capture id: {crawl!r}")
    stop = stop or threading.Event()
    # subscribed before the first look at the crawls in progress (or for the one crawl
    # waited for): none is announced unseen between the look and the wait
    waits = (crawl is None and not once) or (crawl is not None and wait > 0)
    announced = CrawlAnnouncements(client) if waits else None
    worker_id = new_worker_id()
    report = WorkerReport(worker_id)
    finished: set[tuple[str, str]] = set()     # (capture id, epoch) this worker took part in
    stores: dict[str, object] = {}
    try:
        while not stop.is_set():
            ids = [crawl] if crawl else active_crawls(client)
            worked = False
            for capture_id in ids:
                config = (awaited_config(client, crawl, wait, announced, stop) if crawl
                          else read_config(client, capture_id))
                if config is None or (capture_id, config.epoch) in finished:
                    continue
                address = store_address or config.store
                if address not in stores:
                    stores[address] = open_store(address, store_options)
                # a crawl rebuilt under a new epoch is joined under a new worker id: WARC
                # files are named by capture and worker id, and those this worker staged in
                # the old epoch stay in staging (and may be in the capture already)
                joined_as = new_worker_id() if any(c == capture_id for c, _ in finished) else worker_id
                worker = make_worker(client, config, stores[address], work_dir, joined_as, threads)
                lost = None
                try:
                    stats = worker.run(None if on_progress is None else
                                       lambda s, q, cid=capture_id: on_progress(cid, s, q))
                except KeyboardInterrupt:
                    if not stop.is_set():
                        raise
                    stats = worker.stats     # SIGTERM: what was in hand is handed over
                except CrawlGone as exc:
                    if crawl:
                        raise           # its coordinator fails too, and says what to do
                    # a worker serving every crawl outlives one that Redis lost: what it
                    # held was never handed over and is in no capture; the coordinator,
                    # resumed, rebuilds the crawl under a new epoch, which this joins
                    lost, stats = str(exc), worker.stats
                    shutil.rmtree(worker.work, ignore_errors=True)
                finished.add((capture_id, config.epoch))
                worked = worked or stats.fetches > 0
                report.crawls.append({"captureId": capture_id, "worker": joined_as, **asdict(stats),
                                      **({"lost": lost} if lost else {})})
            if crawl or (once and not worked):
                break
            # until a crawl is announced (--once, having worked: one more look a second later)
            idle(announced, IDLE_LOOK if announced is not None else 1.0, stop)
    finally:
        if announced is not None:
            announced.close()
    return report


def awaited_config(client: redis.Redis, capture_id: str, wait: float,
                   announced: CrawlAnnouncements | None, stop: threading.Event) -> CrawlConfig | None:
    """The crawl `capture_id` as Redis holds it, waiting up to `wait` seconds for it to be
    put there (woken by the announcement of a crawl, not asking Redis meanwhile). None:
    stopped while waiting. A crawl that did not appear is a one-line error."""
    deadline = time.monotonic() + wait
    while (config := read_config(client, capture_id)) is None and not stop.is_set():
        if crawl_ended(client, capture_id):
            raise ArchiveError(f"crawl {capture_id} is over: it was sealed")
        left = deadline - time.monotonic()
        if left <= 0 or announced is None:
            waited = f" after {wait:g} s" if wait > 0 else ""
            raise ArchiveError(f"no crawl {capture_id} in Redis{waited} (finished, or never started)")
        idle(announced, left, stop)
    return config


def idle(announced: CrawlAnnouncements | None, timeout: float, stop: threading.Event) -> None:
    """Wait for a crawl's announcement (or only for `stop`, without a subscription) up to
    `timeout` seconds. SIGTERM meanwhile (KeyboardInterrupt with `stop` set) ends the wait:
    the caller sees `stop` and leaves."""
    try:
        if announced is not None:
            announced.wait(timeout, stop)
        else:
            stop.wait(timeout)
    except KeyboardInterrupt:
        if not stop.is_set():
            raise
