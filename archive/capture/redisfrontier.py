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
expiry), lease (hash: URL -> worker id and item), active (set: leased URLs whose fetch
has not ended), counted (set: pages counted
against --max-pages), pages, queued, over (list: pages left by --max-pages), stop,
handovers (list), done (set), fetchedbytes (bytes fetched, against --max-bytes),
deadline (--max-time, in Redis's time), digests (hash) and digestlog (list: the same, in the order
handed over), robots (hash), alive (zset: workers), wake (list: at most one token,
pushed by each hand-over, that the coordinator waits on instead of sleeping).
Times are the Redis server's (TIME): machines' clocks never need to agree.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Callable

import redis

from archive.capture.frontier import Item, origin
from archive.redisconn import CrawlGone, redis_failed

CRAWLS_KEY = "archive:crawls"            # capture ids of the shared crawls in progress
CRAWLS_CHANNEL = "archive:crawls:new"    # pub/sub: each new crawl's id, for idle workers
GLOBAL_STOPS = ("max-time", "max-bytes")  # reasons that stop the whole crawl, not one worker
# A thread about to ask Redis alone (the others busy, the queue flowing) waits this long,
# and its claim is then for every thread that came meanwhile: with slow responses (20 ms)
# threads free up one by one, and each claim brought one URL. On the bench's 20 ms site,
# 2 processes, three runs each way: claims per fetch 0.93-0.97 -> 0.51-0.53, Redis's CPU
# per fetch 0.150-0.153 -> 0.103-0.107 ms, for 5% of the crawl's time (4.76-4.86 s ->
# 5.07-5.08 s); 0 to turn it off.
COALESCE = 0.002
BATCH = 4        # URLs leased in one round trip (no --delay): fetches per claim, not one


def crawl_prefix(capture_id: str) -> str:
    return f"archive:crawl:{capture_id}:"


def ended_key(capture_id: str) -> str:
    """Set (for a day) by the coordinator that sealed the crawl, before it removes the
    crawl's keys: a worker that finds them gone then knows the crawl is over, not lost.
    Outside the crawl's prefix, so that removing those keys leaves it."""
    return f"archive:ended:{capture_id}"


ENDED_FOR = 24 * 3600


def crawl_ended(client: redis.Redis, capture_id: str) -> bool:
    """Whether the crawl's coordinator sealed it (its keys are then removed). A Redis
    that does not answer says no: the caller's next call to it fails and says why."""
    try:
        return bool(client.exists(ended_key(capture_id)))
    except redis.RedisError:
        return False


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
-- one command for a whole list (Redis's CPU goes on commands, not on their arguments),
-- in chunks that Lua's unpack can take
local function chunked(command, key, args, width)
  width = width or 1
  local step = 1000 * width
  for i = 1, #args, step do
    redis.call(command, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end
-- queue order numbers, taken from Redis in blocks (one call, not one an item)
local seq_next, seq_last = 1, 0
-- hosts made ready by this call already
local readied = {}
-- items pushed by this call, by host: written by flush() with one ZADD a host
local pending, npending = {}, 0
local function push(it, aside, d)
  d = d or cjson.decode(it)
  if aside and is_page(d) and redis.call('SISMEMBER', P .. 'counted', d[1]) == 0 then
    redis.call('RPUSH', P .. 'over', it)
    return
  end
  local prio = 0
  if not d[3] then prio = d[2] + 1 end
  if seq_next > seq_last then
    seq_last = redis.call('INCRBY', P .. 'seq', 64)
    seq_next = seq_last - 63
  end
  local queue = pending[d[6]]
  if not queue then queue = {}; pending[d[6]] = queue end
  queue[#queue + 1] = prio * 1e9 + seq_next
  queue[#queue + 1] = it
  seq_next = seq_next + 1
  npending = npending + 1
  if not readied[d[6]] then
    readied[d[6]] = true
    local nxt = redis.call('HGET', P .. 'h:' .. d[6], 'next') or '0'
    redis.call('ZADD', P .. 'ready', 'NX', nxt, d[6])
  end
end
-- what push() gathered goes into the queues: before anything reads them
local function flush()
  if npending == 0 then return end
  for host, queue in pairs(pending) do chunked('ZADD', P .. 'q:' .. host, queue, 2) end
  redis.call('INCRBY', P .. 'queued', npending)
  pending, npending = {}, 0
end
-- fetches ended: ARGV[first], ARGV[first + 1] ... are n pairs of a URL and its origin;
-- their hosts are free again (one SREM and one HINCRBY a host, not a URL)
local function free(first, n)
  local by_host = {}
  for i = 0, n - 1 do
    local host = ARGV[first + 1 + 2 * i]
    local urls = by_host[host]
    if not urls then urls = {}; by_host[host] = urls end
    urls[#urls + 1] = ARGV[first + 2 * i]
  end
  for host, urls in pairs(by_host) do
    local ended = redis.call('SREM', P .. 'active', unpack(urls))
    if ended > 0 then redis.call('HINCRBY', P .. 'h:' .. host, 'active', -ended) end
  end
end
-- a lease: leases (zset, URL by expiry) and lease (hash, URL -> worker id, space, item)
local function owns(v, wid)
  return v ~= false and v ~= nil and string.sub(v, 1, #wid + 1) == wid .. ' '
end
local function drop_lease(url, v)
  redis.call('ZREM', P .. 'leases', url)
  if v == nil then v = redis.call('HGET', P .. 'lease', url) end
  if not v then return nil end
  redis.call('HDEL', P .. 'lease', url)
  local it = string.sub(v, string.find(v, ' ', 1, true) + 1)
  if redis.call('SREM', P .. 'active', url) == 1 then
    redis.call('HINCRBY', P .. 'h:' .. cjson.decode(it)[6], 'active', -1)
  end
  return it
end
"""

# One round trip of a worker: what its threads finished and found since the last one goes
# in, up to `want` leased items come out (a batch: one round trip serves several fetches).
# ARGV: prefix, worker id, lease ms, per-host limit, delay ms, max pages (-1: none), how
# much of the log of payload digests handed over this worker has read, want, bytes
# fetched since the last call, max bytes (-1: none), n, then n pairs of a URL and its
# origin whose fetches ended (their hosts are free again), then items found (queued
# unless seen). Every reply but 'gone' is {kind, a, b, new log position, ms left until
# --max-time ('' for no limit), items..., log entries...} with b the number of items:
# each worker learns the crawl's deduplication originals and its deadline with its
# claims, never asking for them one by one.
_CLAIM = _COMMON + """
local wid, lease, per_host, delay, maxp = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local want, nrel = tonumber(ARGV[8]), tonumber(ARGV[11])
if redis.call('EXISTS', P .. 'config') == 0 then return {'gone'} end
free(12, nrel)
if 12 + 2 * nrel <= #ARGV then
  local is_full = full(maxp)
  for i = 12 + 2 * nrel, #ARGV do
    local d = cjson.decode(ARGV[i])
    if redis.call('SADD', P .. 'seen', d[1]) == 1 then push(ARGV[i], is_full, d) end
  end
end
local fetched = tonumber(ARGV[9])
if fetched > 0 then
  local total = redis.call('INCRBY', P .. 'fetchedbytes', fetched)
  local maxb = tonumber(ARGV[10])
  if maxb >= 0 and total >= maxb then redis.call('SET', P .. 'stop', 'max-bytes', 'NX') end
end
local got = {}
local function reply(kind, a)
  flush()
  local cursor = tonumber(ARGV[7])
  local log = redis.call('LRANGE', P .. 'digestlog', cursor, cursor + 499)
  local left = ''
  local deadline = redis.call('GET', P .. 'deadline')
  if deadline then left = tostring(tonumber(deadline) - now_ms()) end
  local out = {kind, a or '', tostring(#got), tostring(cursor + #log), left}
  for _, it in ipairs(got) do out[#out + 1] = it end
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
if want == 0 then return reply('flushed') end
for _, it in ipairs(redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now)) do
  redis.call('ZREM', P .. 'delayed', it)
  push(it, false)
end
flush()
while #got < want do
  local is_full = full(maxp)
  local best, bhost, bscore, bdelay, bactive = nil, nil, nil, 0, 0
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
    else
      local hv = redis.call('HMGET', P .. 'h:' .. host, 'active', 'delay')
      local active = tonumber(hv[1] or '0')
      if active < per_host then
        local score = tonumber(top[2])
        if best == nil or score < bscore then
          best, bhost, bscore, bdelay, bactive = top[1], host, score, tonumber(hv[2] or '0'), active
        end
      end
    end
  end
  if not best then break end
  local q, h = P .. 'q:' .. bhost, P .. 'h:' .. bhost
  local gap = math.max(delay, bdelay)
  -- with no delay and no --max-pages to count against, the host's next items up to its
  -- limit come in one pass (one command each for them all, not one an item)
  local take = {best}
  if gap == 0 and maxp < 0 and want - #got > 1 and per_host - bactive > 1 then
    take = redis.call('ZRANGE', q, 0, math.min(want - #got, per_host - bactive) - 1)
  end
  redis.call('ZREM', q, unpack(take))
  redis.call('DECRBY', P .. 'queued', #take)
  redis.call('HINCRBY', h, 'active', #take)
  local more = redis.call('ZCARD', q) > 0
  if gap > 0 then
    local nxt = now + gap
    redis.call('HSET', h, 'next', nxt)
    if more then redis.call('ZADD', P .. 'ready', nxt, bhost) end
  end
  if not more then redis.call('ZREM', P .. 'ready', bhost) end
  local expiries, owners, urls, pages = {}, {}, {}, {}
  for _, it in ipairs(take) do
    local d = cjson.decode(it)
    expiries[#expiries + 1] = now + lease
    expiries[#expiries + 1] = d[1]
    owners[#owners + 1] = d[1]
    owners[#owners + 1] = wid .. ' ' .. it
    urls[#urls + 1] = d[1]
    if is_page(d) then pages[#pages + 1] = d[1] end
    got[#got + 1] = it
  end
  redis.call('ZADD', P .. 'leases', unpack(expiries))
  redis.call('HSET', P .. 'lease', unpack(owners))
  redis.call('SADD', P .. 'active', unpack(urls))
  if #pages > 0 then
    local counted = redis.call('SADD', P .. 'counted', unpack(pages))
    if counted > 0 then redis.call('INCRBY', P .. 'pages', counted) end
  end
end
if #got > 0 then return reply('item') end
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
return reply('wait', tostring(math.max(wait, 1)) .. ' ' .. tostring(queued))
"""

# ARGV: prefix, max pages, item... ; returns 1 for each item queued, 0 for one seen before
_ADD = _COMMON + """
local is_full = full(tonumber(ARGV[2]))
local res = {}
for i = 3, #ARGV do
  local d = cjson.decode(ARGV[i])
  if redis.call('SADD', P .. 'seen', d[1]) == 1 then
    push(ARGV[i], is_full, d)
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
flush()
return res
"""

# ARGV: prefix, worker id, n, n pairs of a URL and its origin whose fetches ended, then
# URLs leased to this worker and not started, given back to the queue (a stop, or a host
# held by Retry-After); returns how many were given back
_RELEASE = _COMMON + """
local wid, nrel = ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', P .. 'config') == 0 then return 0 end
free(4, nrel)
local n = 0
for i = 4 + 2 * nrel, #ARGV do
  local v = redis.call('HGET', P .. 'lease', ARGV[i])
  if owns(v, wid) then
    local it = drop_lease(ARGV[i], v)
    if it then push(it, false); n = n + 1 end
  end
end
flush()
return n
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
  if s and tonumber(s) > now and owns(redis.call('HGET', P .. 'lease', ARGV[i]), wid) then
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
local held = {}
-- every lease still this worker's: a chunk of URLs at a time, two commands a chunk
for i = 1, #c.leased, 1000 do
  local urls = {unpack(c.leased, i, math.min(i + 999, #c.leased))}
  local expiries = redis.call('ZMSCORE', P .. 'leases', unpack(urls))
  local owners = redis.call('HMGET', P .. 'lease', unpack(urls))
  for j, url in ipairs(urls) do
    local s, v = expiries[j], owners[j]
    if (not s) or tonumber(s) <= now or not owns(v, wid) then
      return {'lost', url}
    end
    held[url] = v
  end
end
local n = redis.call('RPUSH', P .. 'handovers', ARGV[3])
if #c.final > 0 then
  -- their leases go, a command for them all; a fetch not yet freed (rare: its host is
  -- freed with the worker's next claim) frees its host here
  chunked('ZREM', P .. 'leases', c.final)
  chunked('HDEL', P .. 'lease', c.final)
  chunked('SADD', P .. 'done', c.final)
  for i = 1, #c.final, 1000 do
    local urls = {unpack(c.final, i, math.min(i + 999, #c.final))}
    local active = redis.call('SMISMEMBER', P .. 'active', unpack(urls))
    for j, url in ipairs(urls) do
      if active[j] == 1 then
        local v = held[url]
        redis.call('SREM', P .. 'active', url)
        redis.call('HINCRBY', P .. 'h:' .. cjson.decode(string.sub(v, string.find(v, ' ', 1, true) + 1))[6], 'active', -1)
      end
    end
  end
end
for _, r in ipairs(c.retry) do
  drop_lease(r[1], held[r[1]])
  redis.call('ZADD', P .. 'delayed', now + r[3], r[2])
end
local logged = {}
for _, kv in ipairs(c.digests) do
  if redis.call('HSETNX', P .. 'digests', kv[1], kv[2]) == 1 then
    logged[#logged + 1] = kv[1] .. ' ' .. kv[2]
  end
end
chunked('RPUSH', P .. 'digestlog', logged)
-- the coordinator, waiting on this list, gathers the hand-over now (one token at most:
-- however many came meanwhile, one gather takes them all)
redis.call('LPUSH', P .. 'wake', n)
redis.call('LTRIM', P .. 'wake', 0, 0)
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
    can hand over what it holds; it returns True when it handed something over.

    One round trip serves several fetches: a claim leases a batch (kept here, renewed
    with the rest, given back when this worker stops), and carries the hosts freed and
    the URLs found since the last one (`defer_adds`: a worker's fetches; they go out
    with the next claim, or before a hand-over at the latest)."""

    shared = True
    # --max-pages is held in Redis for the crawl as a whole (its scripts queue nothing past
    # it): nothing is left out here that a count of the unnamed would have to report
    over_limit_more = 0

    def __init__(self, client: redis.Redis, capture_id: str, worker_id: str, *, lease: float,
                 per_host: int, delay: float, max_pages: int | None,
                 on_idle: Callable[[bool], bool] | None = None, batch: int = BATCH,
                 max_bytes: int | None = None, threads: int = 1) -> None:
        self.client = client
        self.capture_id = capture_id
        self.prefix = crawl_prefix(capture_id)
        self.worker_id = worker_id
        self.lease_ms = max(1, int(lease * 1000))
        self.per_host = max(1, per_host)
        self.delay_ms = max(0, int(delay * 1000))
        self.max_pages = -1 if max_pages is None else max_pages
        self.max_bytes = -1 if max_bytes is None else max_bytes
        # with a delay between requests to a host, a URL is claimed when a thread is free
        # to start it (one leased ahead would start later than Redis timed it)
        self.batch = max(1, batch) if self.delay_ms == 0 else 1
        # (a lone thread, or a delay that spaces claims anyway, has no one to wait for)
        self.coalesce = COALESCE if threads > 1 and self.delay_ms == 0 else 0.0
        self.defer_adds = False
        self.on_idle = on_idle
        self.scripts = Scripts(client)
        self.stop_reason: str | None = None
        self.round_trips = 0
        self.held: dict[str, Item] = {}          # URLs leased to this worker, not handed over
        self.retries: dict[str, tuple[Item, float]] = {}   # URL -> (item, monotonic not-before)
        self.lost: set[str] = set()              # leases found lost by renew()
        self._local_stop: str | None = None
        # the crawl is over (a claim found nothing queued, leased or delayed anywhere, and
        # this process had nothing left to hand over): final, since nothing is leased that
        # could find more; the other threads leave at once instead of at their next look
        self._over = False
        self._cond = threading.Condition()
        self._thread = threading.local()         # `offered`: what the thread's last fetch found
        self._ahead: deque[Item] = deque()       # leased, not started yet
        self._freed: list[str] = []              # URL, origin, ...: fetches ended, hosts to free
        self._found: list[str] = []              # encoded items found, not sent yet
        self._bytes = 0                          # bytes fetched, not counted in Redis yet
        self._waiting = 0                        # threads in claim()
        self._asking = False                     # one of them is asking Redis
        self._events = 0                         # hosts freed and URLs found, counted
        self._frees = 0                          # hosts freed, counted
        # the crawl's queue as the last claim that got nothing saw it (None: since then a
        # claim got items): found URLs are sent at once only when it was empty (others
        # may be starving for them), else with this process's next claim
        self._queued_seen: int | None = None
        self._sent = 0                           # round trips taken, numbered
        self._sending: set[int] = set()          # those not answered yet
        self._slowed: dict[str, float] = {}      # origin -> Crawl-delay told to Redis
        self.digests_read = 0                    # entries of the digest log learnt
        self.on_digests: Callable[[list[str]], None] | None = None
        # told the crawl's --max-time deadline (time.monotonic()), kept by the coordinator
        self.on_deadline: Callable[[float], None] | None = None

    def _call(self, script, args: list):
        self.round_trips += 1
        try:
            return script(args=[self.prefix, *args])
        except redis.RedisError as exc:
            raise redis_failed(exc) from None

    # -- handing out ----------------------------------------------------------
    def claim(self) -> Item | None:
        with self._cond:
            self._waiting += 1
        try:
            return self._claim()
        finally:
            with self._cond:
                self._waiting -= 1

    def _claim(self) -> Item | None:
        # one thread of the process asks Redis at a time, for every thread waiting (a
        # thread woken by a freed host would otherwise ask with the others, in vain)
        while True:
            with self._cond:
                while not self._local_stop:
                    if self._over:
                        return None
                    if self._ahead and (not self._found or self._queued_seen != 0):
                        return self._ahead.popleft()
                    if not self._asking:
                        break
                    self._cond.wait(0.1)
                if self._local_stop:
                    break
                self._asking = True
                if self.coalesce and not self._ahead and self._waiting == 1 and self._queued_seen is None:
                    # the whole window, not until the second thread: the claim is for all
                    # that come in it (ended early, claims carried fewer: 0.58 a fetch)
                    until = time.monotonic() + self.coalesce
                    while (left := until - time.monotonic()) > 0:
                        self._cond.wait(left)
                want = 0 if self._ahead else max(self.batch, self._waiting)
            try:
                kind, a = self._round_trip(want)
            finally:
                with self._cond:
                    self._asking = False
                    self._cond.notify_all()
            with self._cond:
                if self._ahead and kind != "stop":
                    return self._ahead.popleft()
            if kind == "stop":
                self.stop_reason = self.stop_reason or a
                break
            if kind in ("item", "flushed"):
                continue        # taken by another thread meanwhile
            if kind == "done":
                if self.on_idle is not None and self.on_idle(True):
                    continue
                with self._cond:
                    self._over = True
                    self._cond.notify_all()
                return None
            wait, queued = (int(n) for n in a.split())
            self._queued_seen = queued
            if self.on_idle is not None and self.on_idle(queued == 0):
                continue
            with self._cond:
                # woken early when a thread of this process frees a host, or finds URLs
                # while nothing is queued (with URLs queued, what held this claim back is
                # a host's limit or delay: URLs found change nothing, a freed host may)
                events, frees = self._events, self._frees
                self._cond.wait_for(lambda: self._local_stop or self._over or self._frees != frees
                                    or (queued == 0 and self._events != events),
                                    min(max(wait / 1000, 0.005), 0.1))
        self.give_back()
        return None

    def _round_trip(self, want: int) -> tuple[str, str]:
        """One claim script call: what was freed and found goes in, up to `want` items
        come out (kept ahead for this process's threads). Returns (kind, detail)."""
        with self._cond:
            freed, self._freed = self._freed, []
            found, self._found = self._found, []
            fetched, self._bytes = self._bytes, 0
            self._sent += 1
            call = self._sent
            self._sending.add(call)
        try:
            reply = self._call(self.scripts.claim, [
                self.worker_id, self.lease_ms, self.per_host, self.delay_ms, self.max_pages,
                self.digests_read, want, fetched, self.max_bytes, len(freed) // 2, *freed, *found])
        finally:
            with self._cond:
                self._sending.discard(call)
                self._cond.notify_all()
        if reply[0] == "gone":
            self.gone()
            return "done", ""       # sealed and cleared while this process looked
        count = int(reply[2])
        if reply[4] != "" and self.on_deadline is not None:
            self.on_deadline(time.monotonic() + int(reply[4]) / 1000)
        items = [decode_item(raw) for raw in reply[5:5 + count]]
        self._learn(int(reply[3]), reply[5 + count:])
        if items:
            self._queued_seen = None
            with self._cond:
                for item in items:
                    self.held[item.url] = item
                self._ahead.extend(items)
        return reply[0], reply[1]

    def gone(self) -> None:
        """The crawl's keys are gone: the crawl is over when its coordinator sealed it (and
        removed them); else Redis lost it (CrawlGone)."""
        if not crawl_ended(self.client, self.capture_id):
            raise CrawlGone()

    def flush(self) -> None:
        """Send what was found and freed now (before a hand-over: what a fetch found is
        queued in Redis before its lease goes)."""
        with self._cond:
            pending = bool(self._found or self._freed or self._bytes)
            earlier = set(self._sending)
        if pending:
            self._round_trip(0)
        with self._cond:
            # and what another thread is sending now has arrived
            while earlier & self._sending:
                self._cond.wait(0.1)

    def give_back(self, host: str | None = None) -> None:
        """Leases taken ahead and not started go back to the queue (of one host, or all),
        with the hosts freed meanwhile."""
        with self._cond:
            back = [i for i in self._ahead if host is None or origin(i.url) == host]
            self._ahead = deque(i for i in self._ahead if i not in back)
            freed, self._freed = self._freed, []
        if back or freed:
            self._call(self.scripts.release, [self.worker_id, len(freed) // 2, *freed,
                                              *(i.url for i in back)])
            with self._cond:
                for item in back:
                    self.held.pop(item.url, None)

    def _learn(self, position: int, entries: list[str]) -> None:
        """Originals handed over since this worker last read the log (threads may read
        the same entries twice: learning one again is harmless)."""
        if entries and self.on_digests is not None:
            self.on_digests(entries)
        with self._cond:
            self.digests_read = max(self.digests_read, position)

    def release(self, item: Item) -> None:
        """The thread is done with the item: its host is freed with the next round trip."""
        with self._cond:
            self._freed += (item.url, origin(item.url))
            self._events += 1
            self._frees += 1
            self._cond.notify_all()

    def fetched(self, nbytes: int) -> None:
        """Bytes recorded by this process: counted against --max-bytes for the crawl as a
        whole with the next round trip."""
        if nbytes:
            with self._cond:
                self._bytes += nbytes

    def add(self, item: Item) -> bool:
        return bool(self.add_many([item]))

    def add_many(self, items: list[Item]) -> list[Item]:
        """Queue the items whose URLs were never seen in the crawl; returns those (with
        `defer_adds`, all of them: Redis sorts them out with the next round trip)."""
        # every item offered, new or not, for the hand-over of the fetch that found them
        # (the coordinator's journal must know what each fetch leads to, whichever
        # worker's fetch Redis heard of first)
        self._thread.offered = list(items)
        if not items:
            return []
        # a redirect's target is asked at once: whether it is new decides whether the
        # redirect's page entry is its own
        if self.defer_adds and not any(i.chain for i in items):
            with self._cond:
                self._found += (encode_item(i) for i in items)
                self._events += 1
                self._cond.notify_all()
            return list(items)
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
        self.give_back(origin(url))     # none of its URLs starts before `until`
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
