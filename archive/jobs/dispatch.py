"""Due runs shared by several `jobs serve` processes (on one machine or many) through
Redis: a run is started by the server that claims its scheduled time first, with one
atomic SET NX. Each server computes the same time for the same run (schedules are
aligned to the clock, not to when a server started), so the others see it taken.
The job's lock in the store stays the last line of defence."""

from __future__ import annotations

import os
import socket
from datetime import datetime

import redis

from archive import utctime
from archive.jobs.spec import JobSpec
from archive.redisconn import connect, describe

CLAIM_DAYS = 7        # a claim outlives any sensible gap between two runs of a job


class Dispatch:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)
        self.me = f"{socket.gethostname()}:{os.getpid()}"

    def claim(self, spec: JobSpec, now: datetime) -> str | None:
        """None when this server may start the run due for `spec` now; otherwise who
        claimed it. A Redis that does not answer claims nothing (the run is not started
        twice: it waits for the next scan)."""
        slot = utctime.seconds(spec.schedule.last_due(now))
        key = f"archive:jobs:{spec.name}:{slot}"
        try:
            if self.client.set(key, self.me, nx=True, ex=CLAIM_DAYS * 86400):
                return None
            return self.client.get(key) or "another server"
        except redis.RedisError as exc:
            return f"nobody (Redis at {describe(self.url)}: {exc})"
