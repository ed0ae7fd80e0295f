"""One run of a job at a time, across machines: a lock made of write-once store objects.

Store objects can be created (only if absent), read, listed and deleted, never
replaced, so the lock is a sequence of generations under `jobs/<name>/lock/`:

    <gen>.json              who holds generation <gen>: run id, host, pid, start time
    <gen>.beat-<seq>.json   heartbeats (a new one is written, then the old one removed)
    <gen>.released.json     written when the holder is done

Whoever holds the highest generation holds the lock, unless it is released or stale.
To take the lock, a run creates generation max+1: creation is atomic, so of two runs
racing for the same generation exactly one wins. The highest generation is never
deleted, so the sequence only grows; a run that raced with a stale view of it (and so
created a lower, already cleaned-up generation) sees a higher one when it lists again
after creating its own, and backs off.

A lock is stale when its holder is a process on this same machine (same boot and pid
namespace) that no longer runs, or when its heartbeat is older than the job's
`lock_expiry`. Taking over a stale lock is recorded in the new generation and in the
run's record. Heartbeat times come from the holder's clock: machines sharing a store
need clocks that agree to well within `lock_expiry` (NTP does that; the default is
ten minutes).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from archive import utctime
from archive.errors import AlreadyExists, ArchiveError, NotFound

KEY = re.compile(r"/(\d{10})(?:\.beat-(\d{8})|\.(released))?\.json$")


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def this_node() -> dict:
    """Where this process runs: a pid means something only within the same boot and
    pid namespace (containers on one kernel share the boot id, not the namespace)."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return {"host": socket.gethostname(), "boot": _read("/proc/sys/kernel/random/boot_id"),
            "pidns": pidns}


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed child not yet reaped by its parent is a zombie: it runs no more.
    state = _read(f"/proc/{pid}/stat").rpartition(")")[2].split()[:1]
    return state != ["Z"]


def _check_holder(data) -> None:
    """ValueError unless `data` is what acquire() writes (a lock is never guessed at)."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("run_id", "host", "started")) \
            or isinstance(data.get("pid"), bool) or not isinstance(data.get("pid"), int):
        raise ValueError("not a lock")
    utctime.parse_micros(data["started"])


@dataclass
class Holder:
    generation: int
    run_id: str
    host: str
    pid: int
    started: str
    node: dict = field(default_factory=dict)
    heartbeat: str | None = None
    released: bool = False
    took_over: dict | None = None

    def describe(self) -> str:
        return f"run {self.run_id} on {self.host} (pid {self.pid}) since {self.started}"


class JobBusy(ArchiveError):
    """Another run of the job holds the lock."""

    def __init__(self, job: str, holder: Holder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another run"
        super().__init__(f"job {job} is already running: {who}")


class JobLock:
    def __init__(self, store, job: str, run_id: str, expiry: float) -> None:
        self.store = store
        self.job = job
        self.run_id = run_id
        self.expiry = expiry
        self.prefix = f"jobs/{job}/lock/"
        self.generation: int | None = None
        self.took_over: dict | None = None
        self.lost_to: Holder | None = None
        self._beat = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------
    def _listing(self) -> dict[int, dict]:
        """generation -> {"beats": [seq...], "released": bool}"""
        gens: dict[int, dict] = {}
        for key in self.store.list_objects(self.prefix.rstrip("/")):
            match = KEY.search(key)
            if not match:
                continue
            gen = gens.setdefault(int(match.group(1)), {"beats": [], "released": False, "base": False})
            if match.group(2):
                gen["beats"].append(int(match.group(2)))
            elif match.group(3):
                gen["released"] = True
            else:
                gen["base"] = True
        return gens

    def _key(self, gen: int, suffix: str = "") -> str:
        return f"{self.prefix}{gen:010d}{suffix}.json"

    def _holder(self, gen: int, entry: dict) -> Holder | None:
        try:
            data = json.loads(self.store.get_object(self._key(gen)))
            _check_holder(data)
        except NotFound:
            return None
        except ValueError:
            raise ArchiveError(f"lock {self._key(gen)} is not a readable lock; remove it by hand "
                               "once you know no run of the job is active") from None
        holder = Holder(generation=gen, released=entry["released"],
                        **{k: data.get(k) for k in ("run_id", "host", "pid", "started", "node", "took_over")})
        holder.heartbeat = holder.started
        if entry["beats"]:
            key = self._key(gen, f".beat-{max(entry['beats']):08d}")
            try:
                beat = json.loads(self.store.get_object(key))
                holder.heartbeat = beat["at"]
                utctime.parse_micros(holder.heartbeat)
            except NotFound:
                holder.heartbeat = utctime.micros()   # replaced by a newer beat just now: alive
            except (ValueError, KeyError, TypeError):
                raise ArchiveError(f"lock heartbeat {key} is not readable; remove it by hand once "
                                   "you know no run of the job is active") from None
        return holder

    def current(self) -> Holder | None:
        """The holder of the highest generation (released or not), if any."""
        gens = self._listing()
        if not gens:
            return None
        top = max(gens)
        return self._holder(top, gens[top])

    def stale_reason(self, holder: Holder, now: datetime | None = None) -> str | None:
        """Why a holder's lock may be taken over, or None while it is live."""
        if holder.released:
            return None
        node = this_node()
        same_node = (holder.node or {}).get("boot") == node["boot"] and \
            (holder.node or {}).get("pidns") == node["pidns"] and node["boot"]
        if same_node and holder.pid != os.getpid() and not process_running(holder.pid):
            return f"its process {holder.pid} on {holder.host} is no longer running"
        last = utctime.parse_micros(holder.heartbeat or holder.started)
        age = (now or utctime.now()) - last
        if age > timedelta(seconds=self.expiry):
            return (f"no heartbeat since {holder.heartbeat} ({age.total_seconds():.0f}s; "
                    f"the lock expires after {self.expiry:.0f}s)")
        return None

    # -- taking and giving back ------------------------------------------------
    def acquire(self) -> Holder:
        gens = self._listing()
        top = max(gens) if gens else 0
        took_over = None
        if top:
            holder = self._holder(top, gens[top])
            if holder is not None and not holder.released:
                reason = self.stale_reason(holder)
                if reason is None:
                    raise JobBusy(self.job, holder)
                took_over = {**asdict(holder), "reason": reason}
                took_over.pop("took_over", None)
        gen = top + 1
        now = utctime.micros()
        node = this_node()
        mine = Holder(gen, self.run_id, node["host"], os.getpid(), now, node, now, False, took_over)
        body = {k: v for k, v in asdict(mine).items() if k not in ("generation", "heartbeat", "released")}
        try:
            self.store.put_object(self._key(gen), json.dumps(body, indent=2).encode())
        except AlreadyExists:
            raise JobBusy(self.job, self.current()) from None
        after = self._listing()
        if max(after) > gen:
            # We raced with an old view of the sequence: someone else is ahead.
            self._delete(self._key(gen))
            raise JobBusy(self.job, self.current())
        self.generation = gen
        self.took_over = took_over
        for old, entry in after.items():
            if old < gen:
                self._delete_generation(old, entry)
        return mine

    def heartbeat(self) -> None:
        """Write a fresh heartbeat (and drop the previous); notices a lost lock."""
        gens = self._listing()
        if gens and max(gens) > self.generation:
            self.lost_to = self._holder(max(gens), gens[max(gens)])
            return
        previous = self._beat
        self._beat += 1
        self.store.put_object(self._key(self.generation, f".beat-{self._beat:08d}"),
                              json.dumps({"at": utctime.micros()}).encode())
        if previous:
            self._delete(self._key(self.generation, f".beat-{previous:08d}"))

    def start_heartbeat(self) -> None:
        interval = max(0.2, min(60.0, self.expiry / 4))

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.heartbeat()
                except ArchiveError:
                    pass   # a store hiccup: the next beat tries again, well before expiry
                except Exception:  # noqa: BLE001 - never let the beat thread die silently mid-run
                    pass
                if self.lost_to is not None:
                    return

        self._thread = threading.Thread(target=beat, name=f"lock-{self.job}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.generation is None:
            return
        try:
            self.store.put_object(self._key(self.generation, ".released"),
                                  json.dumps({"at": utctime.micros(), "run_id": self.run_id}).encode())
        except AlreadyExists:
            pass
        if self._beat:
            self._delete(self._key(self.generation, f".beat-{self._beat:08d}"))

    def _delete_generation(self, gen: int, entry: dict) -> None:
        keys = [self._key(gen, f".beat-{seq:08d}") for seq in entry["beats"]]
        if entry["released"]:
            keys.append(self._key(gen, ".released"))
        if entry["base"]:
            keys.append(self._key(gen))
        for key in keys:
            self._delete(key)

    def _delete(self, key: str) -> None:
        try:
            self.store.delete_object(key)
        except (NotFound, ArchiveError):
            pass
