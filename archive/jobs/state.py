"""What a job has done, kept in its store as write-once objects, one set per run:

    jobs/<name>/runs/YYYY/MM/DD/<run-id>.start.json    written when the run starts
    jobs/<name>/runs/YYYY/MM/DD/<run-id>.result.json   written when it ends (any outcome)
    jobs/<name>/runs/YYYY/MM/DD/<run-id>.notify.json   what the notification did

A run with a start and no result was interrupted (or is still running: the lock says
which). Runs are found newest first by listing day folders backwards, so a job that
runs every few minutes for years does not list its whole history for each run.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

from archive import utctime
from archive.errors import AlreadyExists, ArchiveError, NotFound

RECENT_DAYS = 31


def new_run_id(now: datetime | None = None) -> str:
    """Like a capture id, to the microsecond, so runs sort in the order they started."""
    return utctime.compact(now, fraction=True) + "-" + secrets.token_hex(4)


def _day_path(run_id: str) -> str:
    return f"{run_id[0:4]}/{run_id[4:6]}/{run_id[6:8]}"


@dataclass
class RunRecord:
    run_id: str
    start: dict
    result: dict | None = None
    notify: dict | None = None

    @property
    def status(self) -> str:
        return self.result["status"] if self.result else "unfinished"

    @property
    def capture_id(self) -> str | None:
        return ((self.result or {}).get("capture") or {}).get("capture_id")

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, **self.start,
                **(self.result or {}), "notify": self.notify}


@dataclass
class JobState:
    store: object
    job: str
    _cache: dict = field(default_factory=dict, repr=False)

    def _key(self, run_id: str, kind: str) -> str:
        return f"jobs/{self.job}/runs/{_day_path(run_id)}/{run_id}.{kind}.json"

    def _put(self, run_id: str, kind: str, data: dict) -> None:
        try:
            self.store.put_object(self._key(run_id, kind),
                                  json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))
        except AlreadyExists:
            raise ArchiveError(f"run {run_id} of job {self.job} already has a {kind} record") from None

    def record_start(self, run_id: str, data: dict) -> None:
        self._put(run_id, "start", data)

    def record_result(self, run_id: str, data: dict) -> None:
        self._put(run_id, "result", data)

    def record_notify(self, run_id: str, data: dict) -> None:
        self._put(run_id, "notify", data)

    def _get(self, key: str) -> dict | None:
        try:
            data = json.loads(self.store.get_object(key))
        except NotFound:
            return None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return {"status": "unreadable", "error": f"{key} is not a readable run record"}
        return data

    def _records(self, keys: list[str]) -> list[RunRecord]:
        """Records from a sorted key listing, newest first."""
        by_run: dict[str, dict[str, str]] = {}
        for key in keys:
            name = key.rsplit("/", 1)[-1]
            run_id, _, kind = name.removesuffix(".json").rpartition(".")
            if kind in ("start", "result", "notify"):
                by_run.setdefault(run_id, {})[kind] = key
        records = []
        for run_id in sorted(by_run, reverse=True):
            kinds = by_run[run_id]
            start = self._get(kinds["start"]) if "start" in kinds else {}
            records.append(RunRecord(
                run_id, start or {},
                self._get(kinds["result"]) if "result" in kinds else None,
                self._get(kinds["notify"]) if "notify" in kinds else None,
            ))
        return records

    def runs(self, now: datetime | None = None) -> Iterator[RunRecord]:
        """Every run, newest first: the last month day by day, then all older at once."""
        day = (now or datetime.now(timezone.utc)).date()
        prefix = f"jobs/{self.job}/runs"
        for _ in range(RECENT_DAYS):
            yield from self._records(list(self.store.list_objects(f"{prefix}/{day:%Y/%m/%d}")))
            day -= timedelta(days=1)
        cutoff = f"{prefix}/{day:%Y/%m/%d}/~"   # everything up to and including `day`
        older = [k for k in self.store.list_objects(prefix) if k <= cutoff]
        yield from self._records(older)

    def last_run(self) -> RunRecord | None:
        return next(self.runs(), None)

    def last_capture(self) -> RunRecord | None:
        """The newest run that stored a capture."""
        return next((r for r in self.runs() if r.capture_id), None)
