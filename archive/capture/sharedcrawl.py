"""A crawl shared through Redis: its description there (the coordinator puts it, workers
read it), and one worker process's part of it.

A worker runs the ordinary Crawler with the shared frontier, robots.txt answers and
deduplication originals of the crawl, writing its own WARC files (its own warcinfo:
host, version, worker id). Instead of a journal on disk it keeps the group lines of
what it wrote since its last hand-over; a hand-over closes the WARC file, has it staged
(the `stage` function the caller gives: the store's staging area) and then hands the
file's name, SHA-256 and group lines over in one atomic script, which refuses them when
the worker lost a lease meanwhile. Only then do the fetches count.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import redis

from archive import SOFTWARE, __version__
from archive.capture.crawl import CrawlOptions, Crawler
from archive.capture.dedup import Dedup, EarlierCapture, Original, _key
from archive.capture.frontier import Item, origin
from archive.capture.journal import CrawlState, tally
from archive.capture.redisfrontier import CRAWLS_CHANNEL, CRAWLS_KEY, RedisFrontier, crawl_prefix
from archive.capture.robots import Robots, RobotsAnswer, Rules, rules_from
from archive.errors import ArchiveError
from archive.redisconn import DEFAULT_LEASE, RedisLost, redis_failed
from archive.warc.filesink import FileSink
from archive.warc.records import warcinfo_fields
from archive.warc.writer import DEFAULT_MAX_SIZE, WarcWriter

HANDOVER_INTERVAL = 2.0         # seconds between hand-overs while a crawl runs
HANDOVER_FIRST = 0.25           # ... at the start of this worker's part, growing to it
HANDOVER_SIZE = 64 << 20        # or sooner, when a worker's WARC file reaches this size
ROBOTS_POLL = 0.05


@dataclass
class CrawlConfig:
    """What every process of one shared crawl must agree on."""

    capture_id: str
    version: str
    options: dict
    operator: str
    job: str | None = None
    lease: float = DEFAULT_LEASE
    epoch: str = field(default_factory=lambda: new_epoch())
    store: str | None = None
    warc_size: int = DEFAULT_MAX_SIZE
    dedup_against: str | None = None     # an earlier capture's id in the store

    def crawl_options(self) -> CrawlOptions:
        return CrawlOptions(**self.options)


def crawl_keys(client: redis.Redis, capture_id: str) -> list[str]:
    return list(client.scan_iter(match=crawl_prefix(capture_id) + "*", count=1000))


def create_crawl(client: redis.Redis, config: CrawlConfig, state: CrawlState | None = None) -> None:
    """Put a new crawl (or one rebuilt from its journal, `state`) into Redis. A Redis that
    already holds keys of this crawl is refused, and nothing is written."""
    prefix = crawl_prefix(config.capture_id)
    try:
        if crawl_keys(client, config.capture_id):
            raise ArchiveError(f"Redis already holds keys of crawl {config.capture_id} "
                               f"({prefix}*): another coordinator, or a stale crawl; not starting")
        options = config.crawl_options()
        frontier = RedisFrontier(client, config.capture_id, "coordinator", lease=config.lease,
                                 per_host=options.host_workers, delay=options.delay,
                                 max_pages=options.max_pages)
        pending = state.pending() if state is not None else [Item(s, 0) for s in options.seeds]
        if state is not None:
            # what the journal knows: URLs seen and done, the counts and answers so far
            pipe = client.pipeline()
            seen = (set(state.seen) | state.done) - {i.url for i in pending}
            if seen:
                pipe.sadd(prefix + "seen", *seen)
            if state.done:
                pipe.sadd(prefix + "done", *state.done)
            pipe.set(prefix + "pages", state.stats.pages)
            pipe.set(prefix + "bytes", state.stats.bytes)
            for url, answer in state.robots.items():
                pipe.hset(prefix + "robots", url, json.dumps(answer.to_json()))
            for digest, original in dict(reversed(state.originals)).items():   # the first wins
                value = json.dumps(original.to_json())
                pipe.hset(prefix + "digests", digest_key(digest), value)
                pipe.rpush(prefix + "digestlog", f"{digest_key(digest)} {value}")
            pipe.execute()
        frontier.add_many(pending)
        client.set(prefix + "config", json.dumps(asdict(config)))
        client.sadd(CRAWLS_KEY, config.capture_id)
        # idle workers wait on this channel (they read CRAWLS_KEY after subscribing, so
        # a crawl is never missed between the two)
        client.publish(CRAWLS_CHANNEL, config.capture_id)
    except redis.RedisError as exc:
        raise RedisLost(f"Redis failed while the crawl was being set up: {exc}") from None


def digest_key(digest: str) -> str:
    """A payload digest as one string whatever its spelling (base32 or hex)."""
    algorithm, raw = _key(digest)
    return f"{algorithm}:{raw.hex()}"


def read_config(client: redis.Redis, capture_id: str) -> CrawlConfig | None:
    try:
        raw = client.get(crawl_prefix(capture_id) + "config")
    except redis.RedisError as exc:
        raise redis_failed(exc) from None
    if raw is None:
        return None
    try:
        return CrawlConfig(**json.loads(raw))
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"crawl {capture_id} in Redis is not one this software wrote ({exc})") from None


def active_crawls(client: redis.Redis) -> list[str]:
    try:
        return sorted(client.smembers(CRAWLS_KEY))
    except redis.RedisError as exc:
        raise redis_failed(exc) from None


class CrawlAnnouncements:
    """New crawls as the coordinators announce them (CRAWLS_CHANNEL), for an idle worker
    to wait on instead of asking Redis every second. Subscribed before the worker first
    reads the crawls in progress: one announced meanwhile waits in the subscription.
    Its connection is named `<name>-waiting` in CLIENT LIST."""

    def __init__(self, client: redis.Redis, name: str = "archive-worker") -> None:
        pool = client.connection_pool
        self._client = redis.Redis(connection_pool=pool.__class__(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "client_name": f"{name}-waiting"}))
        self._pubsub = None
        self._subscribe()

    def _subscribe(self) -> bool:
        try:
            self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(CRAWLS_CHANNEL)
            return True
        except redis.RedisError:
            self.close()
            return False

    def wait(self, timeout: float, stop: threading.Event, step: float = 1.0) -> None:
        """Until a crawl is announced, `stop` is set (seen within `step` seconds) or
        `timeout` passes. Waiting reads only the subscription's socket: Redis is asked
        nothing. A lost subscription is made again (and the caller's next look at the
        crawls in progress finds what was announced meanwhile)."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._pubsub is None:
                if not self._subscribe():
                    stop.wait(min(left, step))
                    continue
                return      # subscribed again: the caller looks, then waits
            try:
                if self._pubsub.get_message(timeout=min(left, step)) is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass    # several announced at once: one look finds them all
                    return
            except redis.RedisError:
                self.close()

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None


def check_version(config: CrawlConfig) -> None:
    """One capture, one format: a worker of another version is refused."""
    if config.version != __version__:
        raise ArchiveError(f"crawl {config.capture_id} is run by archive {config.version}; this "
                           f"worker is archive {__version__} (one capture, one software version)")


def new_epoch() -> str:
    """A new state of a crawl in Redis: hand-overs of an earlier one are never taken."""
    return uuid.uuid4().hex[:12]


def new_worker_id() -> str:
    return "w" + uuid.uuid4().hex[:8]


# -- the worker's parts ----------------------------------------------------------------
class SharedDedup(Dedup):
    """Originals this worker wrote since its last hand-over (they reach the capture with
    the revisits that point at them, or neither does), then those handed over by any
    worker, learnt from the crawl's digest log."""

    def __init__(self, earlier: EarlierCapture | None = None) -> None:
        super().__init__(earlier)
        self._seen: dict = {}       # only what this worker wrote since its last hand-over
        self._handed: dict = {}

    def learn(self, entries: list[str]) -> None:
        """Originals any worker handed over, from the digest log the claims bring."""
        for entry in entries:
            key, _, original = entry.partition(" ")
            algorithm, _, hexdigest = key.partition(":")
            self._handed[(algorithm, bytes.fromhex(hexdigest))] = Original(*json.loads(original))

    def lookup(self, digest: str) -> Original | None:
        # this worker's own originals not handed over yet, then those handed over by any
        # worker as far as this worker has heard (one handed over a moment ago may be
        # missed: that payload is stored in full, never a revisit to nothing)
        key = _key(digest)
        if key is None:
            return None
        if key in self._seen:
            return self._seen[key]
        if key in self._handed:
            return self._handed[key]
        return self.earlier.original(digest) if self.earlier else None

    def handed_over(self, accepted: bool) -> None:
        """The originals written so far were handed over (kept) or refused (forgotten)."""
        if accepted:
            self._handed.update(self._seen)
        self._seen = {}


class SharedRobots(Robots):
    """robots.txt answers shared by the crawl: one worker fetches an origin's file (it
    holds a lock in Redis meanwhile) and hands its answer over; the others wait for it."""

    def __init__(self, user_agent: str, client: redis.Redis, prefix: str, lease: float,
                 on_fetched: Callable[[], None]) -> None:
        super().__init__(user_agent)
        self.client, self.prefix, self.lease_ms = client, prefix, int(lease * 1000)
        self.on_fetched = on_fetched
        self.stopped = threading.Event()

    def rules(self, url: str, fetch_robots: Callable[[str], RobotsAnswer]) -> Rules:
        key = origin(url)
        robots_url = key + "/robots.txt"
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            while key not in self._rules:
                try:
                    raw = self.client.hget(self.prefix + "robots", robots_url)
                    if raw is not None:
                        self._rules[key] = rules_from(robots_url, RobotsAnswer.from_json(json.loads(raw)))
                    elif self.client.set(self.prefix + "robotslock:" + key, "1", nx=True, px=self.lease_ms):
                        self._rules[key] = rules_from(robots_url, fetch_robots(robots_url))
                        self.on_fetched()
                    elif self.stopped.wait(ROBOTS_POLL):
                        raise RedisLost("stopped while waiting for another worker's robots.txt")
                except redis.RedisError as exc:
                    raise redis_failed(exc) from None
            return self._rules[key]


@dataclass
class Handed:
    """What one hand-over gave the crawl."""

    files: list[dict]
    groups: int
    accepted: bool


@dataclass
class WorkerStats:
    fetches: int = 0
    pages: int = 0
    bytes: int = 0
    files: int = 0
    handovers: int = 0
    refused: int = 0


class Collector:
    """Stands in for the crawl journal in a worker: keeps the lines written since the
    last hand-over, and hands them over with the WARC files they describe."""

    def __init__(self, worker: "SharedWorker") -> None:
        self.worker = worker
        self.lines: list[dict] = []
        self.robots: list[list] = []
        self.urgent = threading.Event()
        self.pending: set[str] = set()    # written, not yet released by its thread
        self.cond = threading.Condition()

    def append(self, line: dict) -> None:
        kind = line.get("t")
        if kind == "group":
            # everything the fetch leads to, not only what Redis had not seen before
            line["queue"] = [item.to_json() for item in self.worker.frontier.take_offered()]
            self.worker.frontier.fetched(line.get("bytes", 0))
        with self.cond:
            if kind == "group":
                self.lines.append(line)
                if line.get("kind") in ("page", "requisite"):
                    self.pending.add(line["url"])
            elif kind == "robots":
                self.robots.append([line["url"], json.dumps(line["answer"]), origin(line["url"])])
                self.urgent.set()

    def released(self, url: str) -> None:
        with self.cond:
            self.pending.discard(url)
            self.cond.notify_all()

    def close(self) -> None:
        pass


class SharedWorker:
    """One process's part of a shared crawl: `threads` fetches at once; WARC files under
    `work`; `stage(path, name, sha256, size) -> key` puts a finished file in staging and
    `unstage(key)` removes one the crawl refused."""

    def __init__(self, client: redis.Redis, config: CrawlConfig, work: Path,
                 stage: Callable[[Path, str, str, int], str], unstage: Callable[[str], None],
                 worker_id: str | None = None, threads: int | None = None,
                 earlier: EarlierCapture | None = None) -> None:
        check_version(config)
        self.client, self.config = client, config
        self.worker_id = worker_id or new_worker_id()
        self.prefix = crawl_prefix(config.capture_id)
        self.stage, self.unstage = stage, unstage
        options = config.crawl_options()
        # The coordinator keeps the crawl's clock (--max-time): a worker learns the deadline
        # (in Redis's time) with its claims, and cuts its fetches there.
        options.max_time = None
        if threads:
            options.workers = threads
        self.options = options
        self.work = Path(work) / self.worker_id
        self.sink = FileSink(self.work)
        info = warcinfo_fields(config.capture_id, config.operator, options.user_agent,
                               "obeyed" if options.obey_robots else "ignored", config.job,
                               extra={"worker": self.worker_id, "worker-pid": os.getpid(),
                                      "tls-certificate-verification":
                                          "on" if options.verify_tls else "off"})
        self.writer = WarcWriter(self.sink, f"{config.capture_id}-{self.worker_id}", info,
                                 max_size=min(config.warc_size, HANDOVER_SIZE))
        self.collector = Collector(self)
        self.frontier = RedisFrontier(client, config.capture_id, self.worker_id, lease=config.lease,
                                      per_host=options.host_workers, delay=options.delay,
                                      max_pages=options.max_pages, on_idle=self._idle,
                                      max_bytes=options.max_bytes, threads=options.workers)
        self.frontier.defer_adds = True
        self.dedup = SharedDedup(earlier)
        self.frontier.on_digests = self.dedup.learn
        self.frontier.on_deadline = lambda deadline: self.crawler.cut_at(deadline)
        self.robots = SharedRobots(options.user_agent, client, self.prefix, config.lease,
                                   self.collector.urgent.set) if options.obey_robots else None
        self.crawler = Crawler(options, self.writer, self.collector, str(self.work / "spool"),
                               self.dedup, frontier=self.frontier, robots=self.robots)
        (self.work / "spool").mkdir(exist_ok=True)
        self.stats = WorkerStats()
        self._handing = threading.Lock()
        self._last = self._joined = time.monotonic()
        self._staged = 0
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._release = self.frontier.release
        self.frontier.release = self._released

    def _released(self, item: Item) -> None:
        try:
            self._release(item)
        finally:
            self.collector.released(item.url)

    def describe(self) -> dict:
        return {"id": self.worker_id, "host": socket.gethostname(), "pid": os.getpid(),
                "software": SOFTWARE}

    # -- running ---------------------------------------------------------------
    def run(self, on_progress: Callable[[WorkerStats, int], None] | None = None) -> WorkerStats:
        """Take part until the crawl has nothing left (or is stopped); everything fetched
        is handed over before this returns. An interrupt finishes the fetches in hand."""
        try:
            self.client.hset(self.prefix + "workers", self.worker_id, json.dumps(self.describe()))
        except redis.RedisError as exc:
            raise redis_failed(exc) from None
        background = threading.Thread(target=self._background, name="handover", daemon=True)
        background.start()
        try:
            self.crawler.run(None if on_progress is None else
                             lambda _stats, queued: on_progress(self.stats, queued))
        finally:
            self._stop.set()
            if self.robots is not None:
                self.robots.stopped.set()
            background.join()
            try:
                if self._failure is None:
                    self.hand_over()     # what was fetched counts, after an interrupt too
            finally:
                # closed however the hand-over ends (a crawl Redis lost): a worker serving
                # every crawl goes on, and must not keep this crawl's files open
                self.writer.close()
                self.sink.close()
                if self.dedup.earlier is not None:
                    self.dedup.earlier.close()
        if self._failure is not None:
            raise self._failure
        shutil.rmtree(self.work, ignore_errors=True)    # everything in it was handed over
        return self.stats

    def _background(self) -> None:
        """Renew leases; hand over every HANDOVER_INTERVAL, at once after a robots.txt.

        The interval grows from HANDOVER_FIRST to HANDOVER_INTERVAL with the time this
        worker has taken part (an eighth of it): what is handed over after the crawl's last
        fetch, while the coordinator waits to seal, is a small share of the crawl however
        short it is, and a long crawl still closes a WARC file only every few seconds."""
        renew_every = max(0.2, self.config.lease / 4)
        next_renew = 0.0
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_renew:
                    self.frontier.renew()
                    next_renew = now + renew_every
                interval = min(HANDOVER_INTERVAL, max(HANDOVER_FIRST, (now - self._joined) / 8))
                if self.collector.urgent.is_set() or now - self._last >= interval \
                        or self._size() >= HANDOVER_SIZE:
                    self.hand_over()
            except BaseException as exc:  # noqa: BLE001 - raised by run()
                self._failure = exc
                self.frontier.stop("error")
                return
            self._stop.wait(0.05)

    def _size(self) -> int:
        member = self.sink.current
        return member.size if member is not None else 0

    def _idle(self, tail: bool) -> bool:
        """Nothing may start now: at the crawl's tail, hand over at once (the crawl ends
        only when every lease is handed over)."""
        if tail and (self.collector.lines or self.collector.robots):
            return self.hand_over() is not None
        return False

    def hand_over(self) -> Handed | None:
        """Close the WARC file, stage it, and hand it over with its group lines."""
        with self._handing:
            self._last = time.monotonic()
            self.collector.urgent.clear()
            with self.writer.batch():
                with self.collector.cond:
                    # a fetch written but not yet released will be in a moment (no other
                    # can be written meanwhile): its lease goes with its records
                    while any(l.get("url") in self.collector.pending for l in self.collector.lines):
                        if not self.collector.cond.wait(5.0):
                            break
                    lines, self.collector.lines = self.collector.lines, []
                    robots, self.collector.robots = self.collector.robots, []
                before = len(self.writer.closed_files)
                files = self.writer.close()[before:]
            if not lines and not robots and not files:
                return None
            # what these fetches found is queued in Redis before their leases go
            self.frontier.flush()
            staged = []
            for f in files:
                path = self.sink.path_of(f.name)
                key = self.stage(path, f.name, f.sha256, f.size)
                staged.append({"key": key, "name": f.name, "sha256": f.sha256, "size": f.size})
            groups = [_group_for_handover(line) for line in lines]
            leased = [g["url"] for g in groups if g["kind"] in ("page", "requisite")]
            final = [g["url"] for g in groups if g["final"] and g["kind"] in ("page", "requisite")]
            retry = self.frontier.take_retries(u for u in leased if u not in final)
            digests = [[digest_key(d), json.dumps(o)] for g in groups for d, o in g.get("originals", ())]
            entry = {"worker": self.describe(), "files": staged, "groups": groups,
                     "robots": [[u, json.loads(a)] for u, a, _ in robots]}
            control = {"leased": leased, "final": final, "retry": retry, "digests": digests,
                       "robots": robots, "bytes": tally(groups)["bytes"],
                       "max_bytes": -1 if self.options.max_bytes is None else self.options.max_bytes}
            if len(set(final)) != len(final):
                # a URL fetched twice by this worker (its lease ran out, and it claimed the
                # URL again): never hand that over; the leases run out, others fetch them
                reply = ["lost"]
            else:
                reply = self.frontier._call(self.frontier.scripts.handover, [
                    self.worker_id, json.dumps(entry, separators=(",", ":")),
                    json.dumps(control, separators=(",", ":"))])
            if reply[0] == "gone":
                # sealed meanwhile (only when nothing was leased: what this holds was
                # leased again and fetched by others): nothing here is in the capture
                self.frontier.gone()
                reply = ["ended"]
            accepted = reply[0] == "ok"
            self.dedup.handed_over(accepted)
            self.frontier.forget(leased)
            for f in files:
                self.sink.path_of(f.name).unlink(missing_ok=True)
            if accepted:
                self.stats.handovers += 1
                self.stats.files += len(files)
                counted = tally(groups)
                self.stats.fetches += counted["fetches"]
                self.stats.pages += counted["pages"]
                self.stats.bytes += counted["bytes"]
            else:
                # a lease ran out (this worker was too slow, or cut off): the URLs went to
                # others, and these records must not enter the capture
                self.stats.refused += 1
                for s in staged:
                    self.unstage(s["key"])
            return Handed(staged, len(groups), accepted)


def _group_for_handover(line: dict) -> dict:
    """A group line as the coordinator journals it (the WARC position is its own)."""
    return {k: v for k, v in line.items() if k not in ("t", "warc", "elapsed")}
