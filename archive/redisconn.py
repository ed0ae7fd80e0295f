"""Connecting to Redis (the shared frontier and job dispatch): one-line errors for a URL
that is wrong or a server that does not answer, and a short retry for a server that
restarts."""

from __future__ import annotations

import atexit
import functools
import os
import resource
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from archive.errors import ArchiveError

if TYPE_CHECKING:
    import redis

REDIS_ENV = "ARCHIVE_REDIS"
DEFAULT_LEASE = 30.0            # seconds a worker holds a URL of a shared crawl without renewing its lease
SCHEMES = ("redis", "rediss", "unix")
# Commands are retried for about 5 s: a Redis that restarts (with its data kept on disk)
# is waited for; one that stays away stops the crawl with the work folder kept.
RETRIES = 7


# a file: each process appends "<pid> <round trips> <CPU seconds> <command>" at exit
STATS_ENV = "ARCHIVE_REDIS_STATS"


# round trips made by this process's counting connections (a pipeline is one)
ROUND_TRIPS = [0]


@functools.cache
def _counting_connection() -> type:
    """A connection class that counts its round trips, for the benchmark (made on first
    use: the redis client is imported only by commands that connect, which keeps it out of
    the start-up of every other command)."""
    import redis

    class CountingConnection(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            ROUND_TRIPS[0] += 1
            return super().send_packed_command(command, check_health)

    return CountingConnection


def _write_stats(path: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    command = sys.argv[1] if len(sys.argv) > 1 else "-"
    with open(path, "a", encoding="ascii") as fh:
        fh.write(f"{os.getpid()} {ROUND_TRIPS[0]} "
                 f"{usage.ru_utime + usage.ru_stime:.4f} {command}\n")


class RedisLost(ArchiveError):
    """Redis stopped answering, or lost the crawl's state, in the middle of a crawl."""


def redis_failed(exc: Exception, where: str = "Redis") -> RedisLost:
    """RedisLost for a failed call, in words for what happened: an error Redis answered
    with (out of memory, read-only, a wrong password) is a refusal, anything else (a
    connection refused, reset or timed out) is Redis no longer answering."""
    import redis
    verb = "refused" if isinstance(exc, redis.ResponseError) else "stopped answering"
    return RedisLost(f"{where} {verb}: {exc}")


class CrawlGone(RedisLost):
    """Redis answers, but the crawl's keys are gone (a restart without persistence, a
    flush) and its coordinator did not seal it: only its coordinator can rebuild it."""

    def __init__(self) -> None:
        super().__init__("the crawl's state is gone from Redis (restarted without persistence, "
                         "or flushed)")


def redis_url(given: str | None) -> str | None:
    """The Redis URL from the option or $ARCHIVE_REDIS; None when neither says."""
    url = given or os.environ.get(REDIS_ENV) or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or (parts.scheme != "unix" and not parts.hostname):
            raise ArchiveError(f"not a Redis URL: {url!r} (redis://host:port/db, rediss:// or unix://)")
    return url


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


def connect(url: str, timeout: float = 5.0, name: str | None = None) -> redis.Redis:
    """A client for `url`, checked with PING; ArchiveError when it cannot be used. `name`
    shows in Redis's CLIENT LIST (which workers are connected)."""
    import redis
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.retry import Retry

    counting = {}
    if os.environ.get(STATS_ENV) and urlsplit(url).scheme == "redis":
        counting = {"connection_class": _counting_connection()}
        if not getattr(connect, "_registered", False):
            atexit.register(_write_stats, os.environ[STATS_ENV])
            connect._registered = True
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=30.0, decode_responses=True,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), RETRIES),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError], client_name=name, **counting)
    except ValueError as exc:
        raise ArchiveError(f"not a Redis URL: {describe(url)} ({exc})") from None
    try:
        # the first contact is not retried: a wrong address is said at once
        with redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                  retry=Retry(NoBackoff(), 0)) as first:
            first.ping()
    except redis.AuthenticationError as exc:
        raise ArchiveError(f"Redis at {describe(url)} refused the credentials: {exc}") from None
    except redis.RedisError as exc:
        raise ArchiveError(f"cannot reach Redis at {describe(url)}: {exc}") from None
    return client
