"""The frontier: URLs waiting to be fetched, handed to worker threads one at a time
under the politeness rules (per-host concurrency and delay, Retry-After holds).

Requisites go before pages and pages go breadth first, so a page's images and styles
are fetched close in time to the page and a --max-pages limit keeps the shallowest
pages. What the frontier holds is not persisted here: the crawl journal records every
URL added and every URL done, and a resumed crawl rebuilds the frontier from it.

Memory stays bounded however many URLs a crawl finds: beyond a bound, URLs seen and
items queued go to an SQLite file in the spool folder (archive.capture.spill), taken
back into memory a block at a time, in the same order as if they had stayed.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from archive.capture.spill import SeenSet, SpillFile, memory_bound


@dataclass(frozen=True)
class Item:
    url: str
    depth: int
    requisite: bool = False
    chain: tuple = ()        # URLs of the redirects that led here
    attempt: int = 0         # fetches of this URL already made (retries)

    def to_json(self) -> list:
        return [self.url, self.depth, self.requisite, list(self.chain)]

    @classmethod
    def from_json(cls, data: list, attempt: int = 0) -> "Item":
        url, depth, requisite, chain = data
        return cls(url, int(depth), bool(requisite), tuple(chain), attempt)

    def retried(self) -> "Item":
        return replace(self, attempt=self.attempt + 1)


def origin(url: str) -> str:
    """`scheme://host[:port]`: the unit of politeness and of robots.txt."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass
class _Host:
    heap: list = field(default_factory=list)     # (priority, sequence, item)
    active: int = 0
    next_time: float = 0.0                       # monotonic time of the next allowed start
    delay: float | None = None                   # this host's own delay (robots Crawl-delay)
    spilled: int = 0                             # items waiting in the spill file
    spill_first: tuple | None = None             # (priority, sequence) of the first of them


OVER_LIMIT_KEPT = 1000      # pages left out by --max-pages named in the capture; the rest counted
REFILL = 1000               # spilled items taken back into memory at once


class Frontier:
    """Thread-safe queue of Items. claim() blocks until an item may start, and returns
    None once nothing is queued or running (or the crawl was stopped)."""

    shared = False      # this process's own (RedisFrontier: shared by processes)

    def __init__(self, per_host: int = 4, delay: float = 0.0, max_pages: int | None = None,
                 spill: SpillFile | None = None) -> None:
        """`spill`: where URLs and items beyond the memory bound go (None: all in memory)."""
        self.per_host = max(1, per_host)
        self.delay = max(0.0, delay)
        self.max_pages = max_pages
        self.pages_claimed = 0
        self.stop_reason: str | None = None
        self._spill = spill if spill is not None and spill.usable else None
        self._bound = memory_bound()
        self._held = 0                           # items in the hosts' heaps (in memory)
        self._seen = SeenSet(self._spill, self._bound)
        self._hosts: dict[str, _Host] = {}
        self._delayed: list = []                 # (not_before, sequence, item)
        self._over_limit: list[Item] = []        # pages left out by --max-pages (OVER_LIMIT_KEPT)
        self.over_limit_more = 0                 #   and how many more, not held
        self._pages_queued = 0                   # first attempts at pages, waiting
        self._running = 0
        self._sequence = itertools.count()
        self._cond = threading.Condition()

    # -- adding --------------------------------------------------------------
    def add(self, item: Item) -> bool:
        """Queue an item unless its URL was seen before; True when it was queued. A page
        beyond what --max-pages can ever fetch is not held (a page with a million links
        would fill memory): it is counted among those left out."""
        with self._cond:
            if item.url in self._seen:
                return False
            if self._is_page(item) and self.max_pages is not None \
                    and self.pages_claimed + self._pages_queued >= self.max_pages:
                self._leave_out([item])
                return False
            self._seen.add(item.url)
            self._push(item)
            self._cond.notify()
            return True

    def add_many(self, items: list[Item]) -> list[Item]:
        """Queue each item whose URL was not seen before; returns those queued."""
        return [item for item in items if self.add(item)]
    @staticmethod
    def _is_page(item: Item) -> bool:
        return not item.requisite and item.attempt == 0

    def _leave_out(self, items: list[Item]) -> None:
        room = max(0, OVER_LIMIT_KEPT - len(self._over_limit))
        self._over_limit += items[:room]
        self._seen.update(item.url for item in items[:room])
        # not remembered: one linked from several pages is counted each time
        self.over_limit_more += max(0, len(items) - room)

    def mark_seen(self, urls) -> list[str]:
        """Count URLs as seen without queueing them (the browser fetched them itself);
        returns those not seen before."""
        with self._cond:
            new = [url for url in dict.fromkeys(urls) if url not in self._seen]
            self._seen.update(new)
            return new

    def restore(self, seen, pending: list[Item], pages_done: int) -> None:
        """Rebuild after a restart: every URL ever queued, and those not done yet."""
        with self._cond:
            self._seen.update(seen)
            for item in pending:
                self._push(item)
            self.pages_claimed = pages_done

    def _push(self, item: Item) -> None:
        if self._is_page(item):
            self._pages_queued += 1
        priority = 0 if item.requisite else item.depth + 1
        name = origin(item.url)
        host = self._hosts.setdefault(name, _Host())
        key = (priority, next(self._sequence))
        if self._spill is not None and self._held >= self._bound:
            self._spill.execute("INSERT INTO queue VALUES (?, ?, ?, ?, ?)", (
                name, *key, int(self._is_page(item)), json.dumps([*item.to_json(), item.attempt])))
            host.spilled += 1
            host.spill_first = min(host.spill_first or key, key)
            return
        heapq.heappush(host.heap, (*key, item))
        self._held += 1

    def _refill(self, name: str, host: _Host) -> None:
        """Take the host's first spilled items back into memory (its heap then holds the
        most urgent of its items again)."""
        rows = self._spill.execute(
            "SELECT priority, seq, item FROM queue WHERE host = ? ORDER BY priority, seq LIMIT ?",
            (name, REFILL))
        if not rows:        # (never: the count follows every insert and delete)
            host.spilled, host.spill_first = 0, None
            return
        self._spill.execute("DELETE FROM queue WHERE host = ? AND (priority, seq) <= (?, ?)",
                            (name, rows[-1][0], rows[-1][1]))
        for priority, seq, raw in rows:
            data = json.loads(raw)
            heapq.heappush(host.heap, (priority, seq, Item.from_json(data[:4], data[4])))
        self._held += len(rows)
        host.spilled -= len(rows)
        first = self._spill.execute(
            "SELECT priority, seq FROM queue WHERE host = ? ORDER BY priority, seq LIMIT 1", (name,))
        host.spill_first = tuple(first[0]) if first else None

    def _spilled_items(self, name: str, pages_only: bool = False, limit: int = -1) -> list[Item]:
        rows = self._spill.execute(
            "SELECT item FROM queue WHERE host = ?" + (" AND page = 1" if pages_only else "")
            + " ORDER BY priority, seq LIMIT ?", (name, limit))
        return [Item.from_json(data[:4], data[4]) for data in (json.loads(r[0]) for r in rows)]

    def _leave_out_spilled(self, name: str, host: _Host) -> None:
        """--max-pages reached: the host's spilled pages are left out (the first named)."""
        room = max(0, OVER_LIMIT_KEPT - len(self._over_limit))
        named = self._spilled_items(name, pages_only=True, limit=room)
        count = self._spill.execute("SELECT count(*) FROM queue WHERE host = ? AND page = 1", (name,))[0][0]
        self._spill.execute("DELETE FROM queue WHERE host = ? AND page = 1", (name,))
        self._over_limit += named
        self._seen.update(item.url for item in named)
        self.over_limit_more += count - len(named)
        self._pages_queued -= count
        host.spilled -= count
        first = self._spill.execute(
            "SELECT priority, seq FROM queue WHERE host = ? ORDER BY priority, seq LIMIT 1", (name,))
        host.spill_first = tuple(first[0]) if first else None

    def retry(self, item: Item, not_before: float) -> None:
        """Put an item back, to be fetched again no sooner than `not_before` (monotonic)."""
        with self._cond:
            heapq.heappush(self._delayed, (not_before, next(self._sequence), item))
            self._cond.notify()

    def hold(self, url: str, until: float) -> None:
        """Start nothing more on this URL's host before `until` (Retry-After, Crawl-delay)."""
        with self._cond:
            host = self._hosts.setdefault(origin(url), _Host())
            host.next_time = max(host.next_time, until)

    def slow_down(self, url: str, delay: float) -> None:
        """Space the starts of requests to this URL's host at least `delay` seconds apart."""
        with self._cond:
            host = self._hosts.setdefault(origin(url), _Host())
            if host.delay is None or delay > host.delay:
                host.delay = delay
                host.next_time = max(host.next_time, time.monotonic() + delay)

    # -- handing out ----------------------------------------------------------
    def claim(self) -> Item | None:
        with self._cond:
            while True:
                if self.stop_reason:
                    return None
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    self._push(heapq.heappop(self._delayed)[2])
                item, wake = self._pick(now)
                if item is not None:
                    return item
                if not self._running and not self._delayed and not self._claimable_left():
                    self._cond.notify_all()
                    return None
                if self._delayed:
                    wake = min(wake, self._delayed[0][0])
                self._cond.wait(None if wake == float("inf") else max(0.001, wake - now))

    def _pick(self, now: float) -> tuple[Item | None, float]:
        """The most urgent item whose host may start now, or (None, when to look again)."""
        best, wake = None, float("inf")
        pages_full = self.max_pages is not None and self.pages_claimed >= self.max_pages
        for name, host in self._hosts.items():
            if pages_full and host.spilled:
                self._leave_out_spilled(name, host)
            if host.spilled and (not host.heap or host.spill_first < host.heap[0][:2]):
                self._refill(name, host)
            if pages_full:
                # Pages past --max-pages are set aside (not fetched), so that what may
                # still go (requisites, retries) is not stuck behind them.
                kept = [e for e in host.heap if e[2].requisite or e[2].attempt]
                if len(kept) != len(host.heap):
                    left = [e[2] for e in host.heap if not (e[2].requisite or e[2].attempt)]
                    self._pages_queued -= len(left)
                    self._held -= len(left)
                    self._leave_out(left)
                    host.heap = kept
                    heapq.heapify(host.heap)
            if not host.heap or host.active >= self.per_host:
                continue
            head = host.heap[0]
            if host.next_time > now:
                wake = min(wake, host.next_time)
                continue
            if best is None or head[:2] < best[1][:2]:
                best = (host, head)
        if best is None:
            return None, wake
        host, (_, _, item) = best
        heapq.heappop(host.heap)
        self._held -= 1
        host.active += 1
        host.next_time = now + max(self.delay, host.delay or 0.0)
        self._running += 1
        if self._is_page(item):
            self.pages_claimed += 1
            self._pages_queued -= 1
        return item, wake

    def _claimable_left(self) -> bool:
        return any(host.heap or host.spilled for host in self._hosts.values())

    def release(self, item: Item) -> None:
        """The worker is finished with an item (done, failed for good, or put back)."""
        with self._cond:
            self._hosts[origin(item.url)].active -= 1
            self._running -= 1
            self._cond.notify_all()

    def stop(self, reason: str) -> None:
        """Hand out nothing more; items being fetched finish."""
        with self._cond:
            self.stop_reason = self.stop_reason or reason
            self._cond.notify_all()

    # -- counts ----------------------------------------------------------------
    @property
    def queued(self) -> int:
        with self._cond:
            return sum(len(h.heap) + h.spilled for h in self._hosts.values()) + len(self._delayed) \
            + len(self._over_limit) + self.over_limit_more

    def remaining(self) -> list[Item]:
        """Items never fetched (after the crawl ended): limits reached or stopped."""
        with self._cond:
            items = [e[2] for h in self._hosts.values() for e in h.heap]
            items += [item for name, h in self._hosts.items() if h.spilled
                      for item in self._spilled_items(name)]
            return self._over_limit + items + [e[2] for e in self._delayed]

    def close(self) -> None:
        """Remove the spill file (what it held is in the journal)."""
        if self._spill is not None:
            self._spill.close()
