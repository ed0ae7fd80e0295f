"""The coordinator of a crawl shared through Redis (`archive capture --redis URL`): puts
the crawl into Redis, takes part with its own threads (and `--processes` local worker
processes), and gathers every worker's hand-overs into the one capture's container: each
staged WARC file is copied in with its SHA-256 checked, then journaled with the fetches
it holds. The journal stays the crawl's durable memory: a killed coordinator resumes
from it, and a Redis that lost the crawl is rebuilt from it."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Callable

import redis

from archive import __version__
from archive.capture.frontier import Item
from archive.capture.journal import CrawlState, CrawlStats, Journal, end_line, resume_line, seeds_line
from archive.capture.redisfrontier import CRAWLS_KEY, ENDED_FOR, crawl_prefix, ended_key
from archive.capture.sharedcrawl import (
    CrawlConfig, create_crawl, crawl_keys, new_epoch, new_worker_id, read_config,
)
from archive.errors import ArchiveError
from archive.hashing import CHUNK
from archive.ids import is_capture_id
from archive.redisconn import REDIS_ENV, CrawlGone, connect, describe, redis_failed
from archive.wacz.zipwriter import ContainerWriter
from archive.store.staging import open_staged, remove_staged, staging_prefix
from archive.warc.writer import WARC_DIR
from archive.worker import make_worker

POLL = 0.1      # seconds the coordinator waits for a hand-over before it looks anyway
WORKER_GRACE = 10.0     # seconds local worker processes get to leave after the crawl
# seconds a local worker process waits for its crawl to be put into Redis (it starts
# before): the coordinator stops its processes however it ends, so this bounds only the
# wait of one whose coordinator was killed (SIGKILL) before the crawl was put there
WORKER_WAIT = 60


class Coordinator:
    def __init__(self, session, container: ContainerWriter, journal: Journal,
                 state: CrawlState | None, store) -> None:
        self.session, self.container, self.journal, self.store = session, container, journal, store
        request = session.request
        self.url = request.redis
        self.client = connect(self.url)
        self.prefix = crawl_prefix(session.capture_id)
        self.state = state
        self.stats = CrawlStats(**vars(state.stats)) if state is not None else CrawlStats()
        self.done: set[str] = set(state.done) if state is not None else set()
        # URLs the journal has queued or done: a URL is queued in the journal once, and
        # never after it is done (hand-overs from different workers arrive in any order)
        self.known: set[str] = (set(state.seen) | state.done) if state is not None else set()
        self.config = CrawlConfig(
            capture_id=session.capture_id, version=__version__, options=asdict(request.crawl),
            operator=request.operator, job=request.job, lease=request.lease,
            # a folder store by its absolute path: workers elsewhere resolve it the same way
            store=store.address if "://" in store.address else os.path.abspath(store.address),
            warc_size=request.warc_size, dedup_against=request.dedup_against)
        self.cursor = 0
        self.processes: list[subprocess.Popen] = []
        self.started = time.monotonic()      # this run's start: --max-time counts every run

    # -- setting up ------------------------------------------------------------
    def start(self) -> None:
        """Put the crawl into Redis, or take up the one there (a resume)."""
        session = self.session
        if self.state is None:
            create_crawl(self.client, self.config)
            self.journal.append(seeds_line([Item(s, 0) for s in self.config.options["seeds"]],
                                           self.config.epoch))
            self.known.update(self.config.options["seeds"])
            return
        held = read_config(self.client, session.capture_id)
        last = self.state.handovers[-1] if self.state.handovers else None
        epoch = last["epoch"] if last else self.state.epoch
        ingested = sum(1 for h in self.state.handovers if h["epoch"] == epoch)
        try:
            length = self.client.llen(self.prefix + "handovers")
        except redis.RedisError as exc:
            raise redis_failed(exc) from None
        if held is not None and held.epoch == epoch and length >= ingested:
            # Redis kept the crawl (at least as far as the journal knows it): go on
            self.config, self.cursor = held, ingested
        else:
            # Redis lost the crawl, or holds an older copy of it: rebuild it from the
            # journal (a new epoch: hand-overs of the old one are never taken)
            for key in crawl_keys(self.client, session.capture_id):
                self.client.delete(key)
            self.config.epoch = new_epoch()
            create_crawl(self.client, self.config, self.state)
        self.journal.append(resume_line(self.config.epoch))

    def start_processes(self, count: int) -> None:
        """`--processes N`: N-1 worker processes on this machine for this crawl."""
        logs = self.session.work / "workers"
        logs.mkdir(exist_ok=True)
        endpoint = getattr(getattr(self.store, "client", None), "meta", None)
        endpoint = ["--endpoint-url", endpoint.endpoint_url] if endpoint is not None else []
        for n in range(count):
            with open(logs / f"process-{n + 1}.log", "ab") as log:
                # the Redis URL (it may hold a password) through the environment, not argv
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "archive", "worker", "--store", self.config.store,
                     *endpoint, "--crawl", self.session.capture_id, "--wait", str(WORKER_WAIT),
                     "--quiet", "--work-dir", str(logs)],
                    env={**os.environ, REDIS_ENV: self.url},
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log))

    # -- running -----------------------------------------------------------------
    def run(self, processes: int, on_progress: Callable | None) -> None:
        local = max(0, processes - 1)
        # A fresh crawl's local workers start before it is in Redis: their start-up (half
        # a second of imports) overlaps the coordinator's, and they wait for the crawl
        # (`worker --wait`). A resumed one's start only once start() has settled which
        # epoch goes on: before it, a worker could read the config of an epoch that
        # start() then deletes and rebuilds, and its claims would find the crawl gone.
        early = self.state is None
        try:
            if early:
                self.start_processes(local)
            self.start()
            if not early:
                self.start_processes(local)
            self.take_part(on_progress)
        finally:
            self.stop_processes()
        self.end()

    def take_part(self, on_progress: Callable | None) -> None:
        """Crawl with this process's own worker and gather every hand-over until the
        crawl is over."""
        deadline = self.set_deadline()
        own = make_worker(self.client, self.config, self.store, self.session.work / "workers",
                          worker_id="c" + new_worker_id()[1:])
        failure: list[BaseException] = []

        def work() -> None:
            try:
                own.run()
            except BaseException as exc:  # noqa: BLE001 - raised in the main thread
                failure.append(exc)

        thread = threading.Thread(target=work, name="own-worker", daemon=True)
        thread.start()
        try:
            while True:
                self.gather()
                if failure:
                    raise failure[0]
                if deadline is not None and time.monotonic() >= deadline:
                    self.client.set(self.prefix + "stop", "max-time", nx=True)
                finished, queued, alive = self.status()
                if on_progress is not None:
                    self.progress(on_progress, queued, alive)
                if finished and not thread.is_alive():
                    self.gather()
                    if failure:
                        raise failure[0]
                    break
                # woken by the next hand-over (its script pushes a token), at the crawl's
                # tail above all: the last ones are gathered at once, not a poll later
                self.client.blpop([self.prefix + "wake"], POLL)
        except redis.RedisError as exc:
            raise redis_failed(exc, f"Redis at {describe(self.url)}") from None
        except BaseException:
            own.frontier.stop("interrupted")
            thread.join(30)
            raise

    def set_deadline(self) -> float | None:
        """--max-time for the crawl as a whole (what earlier runs spent counts): the
        deadline in time.monotonic(), also put into Redis, in Redis's time (clocks need
        not agree), where every worker learns it with its claims and cuts its fetches."""
        options = self.session.request.crawl
        if options.max_time is None:
            return None
        spent = self.state.crawl_time if self.state is not None else 0.0
        deadline = time.monotonic() + options.max_time - spent
        try:
            seconds, micros = self.client.time()
            left_ms = int((deadline - time.monotonic()) * 1000)
            self.client.set(self.prefix + "deadline", seconds * 1000 + micros // 1000 + left_ms)
        except redis.RedisError as exc:
            raise redis_failed(exc, f"Redis at {describe(self.url)}") from None
        return deadline

    def progress(self, on_progress: Callable, queued: int, alive: int) -> None:
        """The whole crawl's counts, with the workers alive to a callback that takes them."""
        try:
            takes_workers = len(inspect.signature(on_progress).parameters) >= 3
        except (TypeError, ValueError):
            takes_workers = False
        if takes_workers:
            on_progress(self.stats, queued, alive)
        else:
            on_progress(self.stats, queued)

    def status(self) -> tuple[bool, int, int]:
        """(the crawl is over and everything handed over is gathered, URLs queued, workers alive)"""
        p = self.prefix
        now = self.client.time()
        now_ms = now[0] * 1000 + now[1] // 1000
        pipe = self.client.pipeline()
        pipe.exists(p + "config").get(p + "stop").get(p + "queued").zcard(p + "delayed")
        pipe.zcard(p + "leases").llen(p + "handovers").zcount(p + "alive", now_ms - self.config.lease * 1000, "+inf")
        exists, stop, queued, delayed, leases, handed, alive = pipe.execute()
        if not exists:
            raise CrawlGone()
        queued = int(queued or 0) + delayed
        over = leases == 0 and (bool(stop) or queued == 0)
        return over and handed == self.cursor, queued, alive

    def stop_processes(self) -> None:
        """The crawl is over (or stopped): local workers hand over what they hold and leave."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + WORKER_GRACE
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -- gathering -----------------------------------------------------------------
    def gather(self) -> None:
        """Take in every hand-over not taken yet, in the order Redis accepted them."""
        entries = self.client.lrange(self.prefix + "handovers", self.cursor, self.cursor + 99)
        for raw in entries:
            self.take(json.loads(raw), self.cursor)
            self.cursor += 1

    def take(self, entry: dict, n: int) -> None:
        worker = entry["worker"]
        files = []
        for f in entry["files"]:
            self._copy_in(worker["id"], f)
            files.append({k: f[k] for k in ("name", "sha256", "size")})
        groups = []
        for group in entry["groups"]:
            url = group.get("url")
            if group.get("final") and group.get("kind") in ("page", "requisite"):
                if url in self.done:
                    raise ArchiveError(f"worker {worker['id']} handed over {url}, which the crawl "
                                       "already holds; not sealing a capture with it twice")
                self.done.add(url)
            # queued by this fetch as far as the journal knows: Redis may have seen a URL
            # first from a fetch whose worker died before handing it over, and another
            # worker may have fetched it and handed that over first
            if url:
                self.known.add(url)
            group["queue"] = [q for q in group.get("queue", ()) if q[0] not in self.known]
            self.known.update(q[0] for q in group["queue"])
            groups.append(group)
            self.stats.count(group)
        line = {"t": "handover", "n": n, "epoch": self.config.epoch, "worker": worker,
                "files": files, "groups": groups, "robots": entry.get("robots", []),
                "elapsed": round(time.monotonic() - self.started, 3)}
        if files:
            current = self.container.members[-1]
            line["warc"] = [current.entry.name.rsplit("/", 1)[-1], current.entry.size, current.entry.crc]
        self.journal.append(line)

    def _copy_in(self, worker_id: str, f: dict) -> None:
        """Copy one staged WARC file into the container, refusing it unless its bytes
        are the ones its worker hashed."""
        name = f["name"]
        try:
            source = open_staged(self.store, f["key"])
        except ArchiveError as exc:
            raise ArchiveError(f"worker {worker_id}'s WARC file {name} is missing from staging "
                               f"({exc}); not sealing a capture without it") from None
        member = self.container.begin(f"{WARC_DIR}/{name}")
        with source:
            while chunk := source.read(CHUNK):
                member.write(chunk)
        if member.sha.hexdigest() != f["sha256"] or member.size != f["size"]:
            raise ArchiveError(f"worker {worker_id}'s WARC file {name} in staging does not match "
                               f"the SHA-256 it handed over; refused, not sealing a capture "
                               "without it")
        self.container.end()

    def end(self) -> None:
        """Journal the crawl's end: why it stopped, and what it left unfetched."""
        p = self.prefix
        stop = self.client.get(p + "stop")
        left = [json.loads(i)[0] for i in self.client.lrange(p + "over", 0, -1)]
        if stop:
            for key in self.client.scan_iter(match=p + "q:*", count=1000):
                left += [json.loads(i)[0] for i in self.client.zrange(key, 0, -1)]
            left += [json.loads(i)[0] for i in self.client.zrange(p + "delayed", 0, -1)]
        left = [u for u in dict.fromkeys(left) if u not in self.done]
        reason = stop or ("max-pages" if left else None)
        self.stats.not_fetched = len(left)
        self.journal.append(end_line(reason, left))


def run_shared(session, container: ContainerWriter, journal: Journal, state: CrawlState | None,
               store, on_progress: Callable | None) -> None:
    """Run (or take up) a shared crawl to its end, everything gathered and journaled."""
    coordinator = Coordinator(session, container, journal, state, store)
    coordinator.run(session.request.processes, on_progress)


def finish_shared(request, store, capture_id: str) -> list[str]:
    """After the sealed capture is stored and checked: remove its staging area and its
    keys in Redis. Returns warnings (the capture is stored whatever happens here)."""
    warnings = []
    try:
        remove_staged(store, staging_prefix(capture_id))
    except (ArchiveError, OSError) as exc:
        warnings.append(f"the staging area {staging_prefix(capture_id)} could not be removed: {exc}")
    try:
        client = connect(request.redis)
        # a worker still looking then learns the crawl is over, rather than lost
        client.set(ended_key(capture_id), "sealed", ex=ENDED_FOR)
        for key in crawl_keys(client, capture_id):
            client.delete(key)
        client.srem(CRAWLS_KEY, capture_id)
    except (ArchiveError, redis.RedisError) as exc:
        warnings.append(f"the crawl's keys in Redis could not be removed: {exc}")
    return warnings


def check_shared_request(request) -> None:
    """What a shared crawl cannot do (yet), said before anything starts."""
    if request.crawl.browser is not None:
        raise ArchiveError("--browser cannot be shared through --redis (one browser per capture)")
    if request.dedup_against and not is_capture_id(request.dedup_against):
        # every worker reads the earlier capture from the store, not from this machine
        raise ArchiveError("with --redis, --dedup-against takes the id of a capture in the store")
    connect(request.redis).close()     # an unreachable Redis stops here, before any folder is made
