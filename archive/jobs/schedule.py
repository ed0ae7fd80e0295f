"""When a job is due: a cron expression (croniter) or a fixed interval.

Cron expressions have 5 fields (minute hour day month weekday) or 6 with seconds
first (`*/5 * * * * *`: every five seconds), in UTC unless a time zone is given.
`every = "6h"` runs at whole multiples of the interval since the Unix epoch, so a
restarted scheduler keeps the same rhythm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter


@dataclass(frozen=True)
class Schedule:
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"

    def _cron(self, start: datetime) -> croniter:
        return croniter(
            self.cron, start.astimezone(ZoneInfo(self.tz)), ret_type=datetime,
            second_at_beginning=len(self.cron.split()) == 6,
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment` (UTC)."""
        if self.every:
            stamp = moment.timestamp()
            due = math.floor(stamp / self.every + 1) * self.every
            return datetime.fromtimestamp(due, timezone.utc)
        return self._cron(moment).get_next().astimezone(timezone.utc)

    def last_due(self, moment: datetime) -> datetime:
        """The latest due time at or before `moment` (UTC)."""
        if self.every:
            due = math.floor(moment.timestamp() / self.every) * self.every
            return datetime.fromtimestamp(due, timezone.utc)
        return self._cron(moment + timedelta(microseconds=1)).get_prev().astimezone(timezone.utc)

    def describe(self) -> str:
        if self.every:
            return f"every {_seconds(self.every)}"
        return f"cron '{self.cron}' ({self.tz})"


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


def parse_schedule(cron: str | None, every: float | None, tz: str | None) -> Schedule | None:
    """A Schedule, None when the job has none (run by cron or systemd), or ValueError."""
    if every:
        return Schedule(every=every)
    if cron is None:
        return None
    fields = cron.split()
    if not cron.strip().startswith("@") and len(fields) not in (5, 6):
        raise ValueError(
            f"{cron!r} has {len(fields)} fields; a cron expression has 5 (minute hour day "
            "month weekday) or 6 with seconds first"
        )
    schedule = Schedule(cron=" ".join(fields), tz=tz or "UTC")
    try:
        schedule.next_after(datetime.now(timezone.utc))
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"{cron!r} is not a valid cron expression: {exc}") from None
    return schedule
