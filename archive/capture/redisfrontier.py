"""The frontier of a crawl shared by several processes through Redis: the same interface
as the in-process Frontier (claim, release, add_many, retry, hold, slow_down, stop), with
every read-then-write done by one Lua script, so that workers on several machines never
race.

A claimed URL is leased to its worker for `lease` seconds, renewed while the worker
lives. A lease that runs out (a worker killed, or cut off) puts the URL back in the
queue for another worker. What a worker fetched counts only once it is handed over
(the `handover` script), which checks that the worker still holds every lease: what a
worker that lost its lease fetched never enters the capture.

Keys (prefix `archive:crawl:<capture id>:`): config, seen (set), q:<origin> (zset of
items by priority), ready (zset of origins by the time they may start again), h:<origin>
(hash: active, next, delay), delayed (zset: retries by time), leases (zset: URL by
expiry), owner / litem (hashes by URL), active (set), counted (set: pages counted
against --max-pages), pages, queued, over (list: pages left by --max-pages), stop,
handovers (list), done (set), digests (hash) and digestlog (list: the same, in the order
handed over), robots (hash), alive (zset: workers).
Times are the Redis server's (TIME): machines' clocks never need to agree.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable

import redis

from archive.capture.frontier import Item, origin
from archive.redisconn import RedisLost

CRAWLS_KEY = "archive:crawls"            # capture ids of the shared crawls in progress
GLOBAL_STOPS = ("max-time", "max-bytes")  # reasons that stop the whole crawl, not one worker


def crawl_prefix(capture_id: str) -> str:
    return f"archive:crawl:{capture_id}:"


_COMMON = """
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function is_page(d)
  return (not d[3]) and (d[5] or 0) == 0
end
local function full(maxp)
  return maxp >= 0 and tonumber(redis.call('GET', P .. 'pages') or '0') >= maxp
end
local function push(it, aside)
  local d = cjson.decode(it)
  if aside and is_page(d) and redis.call('SISMEMBER', P .. 'counted', d[1]) == 0 then
    redis.call('RPUSH', P .. 'over', it)
    return
  end
  local prio = 0
  if not d[3] then prio = d[2] + 1 end
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('ZADD', P .. 'q:' .. d[6], prio * 1e9 + seq, it)
  redis.call('INCR', P .. 'queued')
  local nxt = redis.call('HGET', P .. 'h:' .. d[6], 'next') or '0'
  redis.call('ZADD', P .. 'ready', 'NX', nxt, d[6])
end
local function drop_lease(url)
  redis.call('ZREM', P .. 'leases', url)
  redis.call('HDEL', P .. 'owner', url)
  local it = redis.call('HGET', P .. 'litem', url)
  redis.call('HDEL', P .. 'litem', url)
  if it and redis.call('SREM', P .. 'active', url) == 1 then
    redis.call('HINCRBY', P .. 'h:' .. cjson.decode(it)[6], 'active', -1)
  end
  return it
end
"""

# ARGV: prefix, worker id, lease ms, per-host limit, delay ms, max pages (-1: none), the
# URL and origin this thread finished with ('' for none: a release rides along), and how
# much of the log of payload digests handed over this worker has read. Every reply but
# 'gone' is {kind, a, b, new log position, log entries...}: each worker learns the
# crawl's deduplication originals with its claims, never asking for them one by one.
_CLAIM = _COMMON + """
local wid, lease, per_host, delay, maxp = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if ARGV[7] ~= '' and redis.call('SREM', P .. 'active', ARGV[7]) == 1 then
  redis.call('HINCRBY', P .. 'h:' .. ARGV[8], 'active', -1)
end
if redis.call('EXISTS', P .. 'config') == 0 then return {'gone'} end
local function reply(kind, a, b)
  local cursor = tonumber(ARGV[9])
  local log = redis.call('LRANGE', P .. 'digestlog', cursor, cursor + 499)
  local out = {kind, a or '', b or '', tostring(cursor + #log)}
  for _, e in ipairs(log) do out[#out + 1] = e end
  return out
end
local now = now_ms()
for _, url in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now)) do
  local it = drop_lease(url)
  redis.call('INCR', P .. 'expired')
  if it then push(it, false) end
end
local stop = redis.call('GET', P .. 'stop')
if stop then return reply('stop', stop) end
for _, it in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now)) do
  redis.call('ZREM', P .. 'delayed', it)
  push(it, false)
end
local is_full = full(maxp)
local best, bhost, bscore = nil, nil, nil
for _, host in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ready', '-inf', now, 'LIMIT', 0, 256)) do
  local q = P .. 'q:' .. host
  while is_full do
    local head = redis.call('ZRANGE', q, 0, 0)[1]
    if not head then break end
    local d = cjson.decode(head)
    if not is_page(d) or redis.call('SISMEMBER', P .. 'counted', d[1]) == 1 then break end
    redis.call('ZREM', q, head)
    redis.call('DECR', P .. 'queued')
    redis.call('RPUSH', P .. 'over', head)
  end
  local top = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', P .. 'ready', host)
  elseif tonumber(redis.call('HGET', P .. 'h:' .. host, 'active') or '0') < per_host then
    local score = tonumber(top[2])
    if best == nil or score < bscore then best, bhost, bscore = top[1], host, score end
  end
end
if best then
  redis.call('ZREM', P .. 'q:' .. bhost, best)
  redis.call('DECR', P .. 'queued')
  local h = P .. 'h:' .. bhost
  redis.call('HINCRBY', h, 'active', 1)
  local own = tonumber(redis.call('HGET', h, 'delay') or '0')
  local nxt = now + math.max(delay, own)
  redis.call('HSET', h, 'next', nxt)
  if redis.call('ZCARD', P .. 'q:' .. bhost) > 0 then
    redis.call('ZADD', P .. 'ready', nxt, bhost)
  else
    redis.call('ZREM', P .. 'ready', bhost)
  end
  local d = cjson.decode(best)
  redis.call('ZADD', P .. 'leases', now + lease, d[1])
  redis.call('HSET', P .. 'owner', d[1], wid)
  redis.call('HSET', P .. 'litem', d[1], best)
  redis.call('SADD', P .. 'active', d[1])
  if is_page(d) and redis.call('SADD', P .. 'counted', d[1]) == 1 then
    redis.call('INCR', P .. 'pages')
  end
  return reply('item', best)
end
local queued = tonumber(redis.call('GET', P .. 'queued') or '0')
if queued == 0 and redis.call('ZCARD', P .. 'leases') == 0 and redis.call('ZCARD', P .. 'delayed') == 0 then
  return reply('done')
end
local wait = 1000
local r = redis.call('ZRANGEBYSCORE', P .. 'ready', '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if r[2] then wait = math.min(wait, tonumber(r[2]) - now) end
local dl = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
if dl[2] then wait = math.min(wait, tonumber(dl[2]) - now) end
local ls = redis.call('ZRANGE', P .. 'leases', 0, 0, 'WITHSCORES')
if ls[2] then wait = math.min(wait, tonumber(ls[2]) - now + 1) end
return reply('wait', tostring(math.max(wait, 1)), tostring(queued))
"""

# ARGV: prefix, max pages, item... ; returns 1 for each item queued, 0 for one seen before
_ADD = _COMMON + """
local is_full = full(tonumber(ARGV[2]))
local res = {}
for i = 3, #ARGV do
  local d = cjson.decode(ARGV[i])
  if redis.call('SADD', P .. 'seen', d[1]) == 1 then
    push(ARGV[i], is_full)
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
return res
"""

# ARGV: prefix, url, origin
_RELEASE = """
local P = ARGV[1]
if redis.call('SREM', P .. 'active', ARGV[2]) == 1 then
  redis.call('HINCRBY', P .. 'h:' .. ARGV[3], 'active', -1)
end
return 1
"""

# ARGV: prefix, origin, ms from now until the host may start again, its own delay ms (or -1)
_HOLD = _COMMON + """
local h = P .. 'h:' .. ARGV[2]
local now = now_ms()
local delay = tonumber(ARGV[4])
local until_ = now + tonumber(ARGV[3])
if delay >= 0 then
  if delay <= tonumber(redis.call('HGET', h, 'delay') or '-1') then return 0 end
  redis.call('HSET', h, 'delay', delay)
end
local nxt = math.max(tonumber(redis.call('HGET', h, 'next') or '0'), until_)
redis.call('HSET', h, 'next', nxt)
redis.call('ZADD', P .. 'ready', 'XX', nxt, ARGV[2])
return 1
"""

# ARGV: prefix, worker id, lease ms, url...; returns the URLs whose lease was lost
_RENEW = _COMMON + """
local wid, lease = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
redis.call('ZADD', P .. 'alive', now, wid)
local lost = {}
for i = 4, #ARGV do
  local s = redis.call('ZSCORE', P .. 'leases', ARGV[i])
  if s and tonumber(s) > now and redis.call('HGET', P .. 'owner', ARGV[i]) == wid then
    redis.call('ZADD', P .. 'leases', 'XX', now + lease, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""

# ARGV: prefix, worker id, entry (stored as given), control JSON:
#   {leased: [url], final: [url], retry: [[url, item, wait ms]], digests: [[k, v]],
#    robots: [[robots url, answer, origin]], bytes: n, max_bytes: --max-bytes or -1}
_HANDOVER = _COMMON + """
local wid = ARGV[2]
if redis.call('EXISTS', P .. 'config') == 0 then return {'gone'} end
local c = cjson.decode(ARGV[4])
local now = now_ms()
for _, url in ipairs(c.leased) do
  local s = redis.call('ZSCORE', P .. 'leases', url)
  if (not s) or tonumber(s) <= now or redis.call('HGET', P .. 'owner', url) ~= wid then
    return {'lost', url}
  end
end
local n = redis.call('RPUSH', P .. 'handovers', ARGV[3])
for _, url in ipairs(c.final) do
  drop_lease(url)
  redis.call('SADD', P .. 'done', url)
end
for _, r in ipairs(c.retry) do
  drop_lease(r[1])
  redis.call('ZADD', P .. 'delayed', now + r[3], r[2])
end
for _, kv in ipairs(c.digests) do
  if redis.call('HSETNX', P .. 'digests', kv[1], kv[2]) == 1 then
    redis.call('RPUSH', P .. 'digestlog', kv[1] .. ' ' .. kv[2])
  end
end
for _, kv in ipairs(c.robots) do
  redis.call('HSET', P .. 'robots', kv[1], kv[2])
  redis.call('DEL', P .. 'robotslock:' .. kv[3])
end
local total = redis.call('INCRBY', P .. 'bytes', c.bytes)
if c.max_bytes >= 0 and total >= c.max_bytes then
  redis.call('SET', P .. 'stop', 'max-bytes', 'NX')
end
return {'ok', tostring(n - 1)}
"""


def encode_item(item: Item) -> str:
    """An item as the scripts keep it: Item.to_json() plus its attempt and origin."""
    return json.dumps([*item.to_json(), item.attempt, origin(item.url)], separators=(",", ":"))


def decode_item(text: str) -> Item:
    data = json.loads(text)
    return Item.from_json(data[:4], int(data[4]))


class Scripts:
    """The Lua scripts, registered once per client."""

    def __init__(self, client: redis.Redis) -> None:
        self.claim = client.register_script(_CLAIM)
        self.add = client.register_script(_ADD)
        self.release = client.register_script(_RELEASE)
        self.hold = client.register_script(_HOLD)
        self.renew = client.register_script(_RENEW)
        self.handover = client.register_script(_HANDOVER)


class RedisFrontier:
    """One worker process's view of the shared frontier (thread safe). `on_idle(tail)` is
    called when nothing may start now (tail: nothing is queued at all), so the worker
    can hand over what it holds; it returns True when it handed something over."""

    shared = True
    # --max-pages is held in Redis for the crawl as a whole (its scripts queue nothing past
    # it): nothing is left out here that a count of the unnamed would have to report
    over_limit_more = 0

    def __init__(self, client: redis.Redis, capture_id: str, worker_id: str, *, lease: float,
                 per_host: int, delay: float, max_pages: int | None,
                 on_idle: Callable[[bool], bool] | None = None) -> None:
        self.client = client
        self.prefix = crawl_prefix(capture_id)
        self.worker_id = worker_id
        self.lease_ms = max(1, int(lease * 1000))
        self.per_host = max(1, per_host)
        self.delay_ms = max(0, int(delay * 1000))
        self.max_pages = -1 if max_pages is None else max_pages
        self.on_idle = on_idle
        self.scripts = Scripts(client)
        self.stop_reason: str | None = None
        self.round_trips = 0
        self.held: dict[str, Item] = {}          # URLs leased to this worker, not handed over
        self.retries: dict[str, tuple[Item, float]] = {}   # URL -> (item, monotonic not-before)
        self.lost: set[str] = set()              # leases found lost by renew()
        self._local_stop: str | None = None
        self._cond = threading.Condition()
        self._thread = threading.local()         # `finished`: the item to release next claim
        self._slowed: dict[str, float] = {}      # origin -> Crawl-delay told to Redis
        self.digests_read = 0                    # entries of the digest log learnt
        self.on_digests: Callable[[list[str]], None] | None = None

    def _call(self, script, args: list):
        self.round_trips += 1
        try:
            return script(args=[self.prefix, *args])
        except redis.RedisError as exc:
            raise RedisLost(f"Redis stopped answering: {exc}") from None

    # -- handing out ----------------------------------------------------------
    def claim(self) -> Item | None:
        while True:
            done = getattr(self._thread, "finished", None)
            if self._local_stop:
                if done is not None:
                    self._release_now(done)
                return None
            reply = self._call(self.scripts.claim, [
                self.worker_id, self.lease_ms, self.per_host, self.delay_ms, self.max_pages,
                done.url if done else "", origin(done.url) if done else "", self.digests_read])
            self._thread.finished = None
            kind = reply[0]
            if kind != "gone":
                self._learn(int(reply[3]), reply[4:])
            if kind == "item":
                item = decode_item(reply[1])
                with self._cond:
                    self.held[item.url] = item
                return item
            if kind == "stop":
                self.stop_reason = self.stop_reason or reply[1]
                return None
            if kind == "gone":
                raise RedisLost("the crawl's state is gone from Redis (restarted without "
                                "persistence, or flushed)")
            if kind == "done":
                if self.on_idle is not None and self.on_idle(True):
                    continue
                return None
            wait, queued = int(reply[1]) / 1000, int(reply[2])
            if self.on_idle is not None and self.on_idle(queued == 0):
                continue
            with self._cond:
                # woken early when a thread of this process releases a host
                self._cond.wait(min(max(wait, 0.005), 0.1))

    def _learn(self, position: int, entries: list[str]) -> None:
        """Originals handed over since this worker last read the log (threads may read
        the same entries twice: learning one again is harmless)."""
        if entries and self.on_digests is not None:
            self.on_digests(entries)
        with self._cond:
            self.digests_read = max(self.digests_read, position)

    def release(self, item: Item) -> None:
        """The thread is done with the item: its host is freed with the thread's next
        claim (one round trip for both), or now when the thread asks for no more."""
        previous = getattr(self._thread, "finished", None)
        if previous is not None:
            self._release_now(previous)
        self._thread.finished = item
        with self._cond:
            self._cond.notify_all()

    def _release_now(self, item: Item) -> None:
        self._thread.finished = None
        self._call(self.scripts.release, [item.url, origin(item.url)])

    def add(self, item: Item) -> bool:
        return bool(self.add_many([item]))

    def add_many(self, items: list[Item]) -> list[Item]:
        """Queue the items whose URLs were never seen in the crawl; returns those."""
        # every item offered, new or not, for the hand-over of the fetch that found them
        # (the coordinator's journal must know what each fetch leads to, whichever
        # worker's fetch Redis heard of first)
        self._thread.offered = list(items)
        if not items:
            return []
        flags = self._call(self.scripts.add, [self.max_pages, *(encode_item(i) for i in items)])
        queued = [item for item, new in zip(items, flags) if new]
        if queued:
            with self._cond:
                self._cond.notify_all()     # this process's idle threads look again at once
        return queued

    def take_offered(self) -> list[Item]:
        """The items this thread's last add_many was given (once)."""
        offered, self._thread.offered = getattr(self._thread, "offered", []), []
        return offered

    def retry(self, item: Item, not_before: float) -> None:
        """Put an item back once this worker hands its failed attempt over."""
        with self._cond:
            self.retries[item.url] = (item, not_before)

    def hold(self, url: str, until: float) -> None:
        self._call(self.scripts.hold, [origin(url), max(0, int((until - time.monotonic()) * 1000)), -1])

    def slow_down(self, url: str, delay: float) -> None:
        key = origin(url)
        if self._slowed.get(key, -1.0) >= delay:
            return      # said already (a robots.txt Crawl-delay is read for every URL)
        self._call(self.scripts.hold, [key, int(delay * 1000), int(delay * 1000)])
        self._slowed[key] = delay

    def mark_seen(self, urls) -> list[str]:
        raise NotImplementedError("a browser crawl is not shared through Redis")

    def stop(self, reason: str) -> None:
        """Limits of the whole crawl stop every worker; anything else (an interrupt, an
        error) stops this worker only: the others go on with the crawl."""
        if reason in GLOBAL_STOPS:
            try:
                self.client.set(self.prefix + "stop", reason, nx=True)
            except redis.RedisError:
                pass   # the local stop below still holds; the coordinator sees Redis gone
        self._local_stop = self._local_stop or reason
        self.stop_reason = self.stop_reason or reason
        with self._cond:
            self._cond.notify_all()

    # -- leases ----------------------------------------------------------------
    def renew(self) -> None:
        """Renew the leases of every URL this worker holds (and say it is alive)."""
        with self._cond:
            urls = list(self.held)
        lost = self._call(self.scripts.renew, [self.worker_id, self.lease_ms, *urls])
        if lost:
            with self._cond:
                self.lost.update(lost)

    def take_retries(self, urls) -> list[list]:
        """[url, encoded item, wait ms] of the retries among `urls` (handed over now)."""
        now, out = time.monotonic(), []
        with self._cond:
            for url in urls:
                if url in self.retries:
                    item, not_before = self.retries.pop(url)
                    out.append([url, encode_item(item), max(0, int((not_before - now) * 1000))])
        return out

    def forget(self, urls) -> None:
        """These leases were handed over (or lost): this worker holds them no more."""
        with self._cond:
            for url in urls:
                self.held.pop(url, None)
                self.retries.pop(url, None)
                self.lost.discard(url)

    # -- counts ----------------------------------------------------------------
    @property
    def queued(self) -> int:
        try:
            queued, delayed = self.client.pipeline().get(self.prefix + "queued").zcard(
                self.prefix + "delayed").execute()
        except redis.RedisError:
            return 0
        return int(queued or 0) + int(delayed or 0)

    def remaining(self) -> list[Item]:
        return []     # the coordinator lists what the crawl as a whole left
