"""'Verify now': full verifications run in the background (one at a time: each reads a
whole capture), with their progress, and the last report of each capture kept for its
page. The verification is the CLI's own (archive.verifying), custody entry included."""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from archive.custody.entry import Actor
from archive.errors import ArchiveError
from archive.verify.model import COULD_NOT_CHECK, CannotCheck, Report
from archive.reader.source import Source, pinned
from archive.verifying import VerifyContext, verify_capture

KEPT = 64       # reports kept in memory (the catalog keeps every verdict)


@dataclass
class Run:
    capture_id: str
    state: str = "queued"             # queued, running, done, failed
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    report: Report | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    # the very object verified (pinned: its readers refuse it once it changed), and
    # whether it was found changed since: its report then speaks for it no more
    source: Source | None = None
    changed: bool = False

    def status(self) -> dict:
        return {"capture": self.capture_id, "state": self.state, "done": self.done, "total": self.total,
                "percent": self.done * 100 // self.total if self.total else 0,
                "verdict": self.report.verdict if self.report else None, "error": self.error}


class Verifier:
    def __init__(self, store, trusted: dict[str, str], tsa_paths: list[str], operator: str, record: bool,
                 on_verdict=None, allow_unsigned: bool = False) -> None:
        self.store, self.trusted, self.tsa_paths = store, trusted, tsa_paths
        self.allow_unsigned = allow_unsigned
        self.actor = (lambda: Actor(operator)) if record else None
        self.on_verdict = on_verdict           # (capture id, verdict, time): the catalog's copy
        self.runs: OrderedDict[str, Run] = OrderedDict()
        self.lock = threading.Lock()
        self.queue: queue.Queue[Run | None] = queue.Queue()
        # a daemon: stopping the app never waits for a verification of 10 GB to end (one
        # cut short records nothing; the custody entry is written only once it is done)
        self.worker = threading.Thread(target=self._work, name="verify", daemon=True)
        self.worker.start()

    def source(self, capture_id: str) -> Source:
        return pinned(f"{capture_id} in {self.store.address}", lambda: self.store.open_capture(capture_id))

    def start(self, capture_id: str) -> Run:
        """Start verifying (nothing new when it is queued or running already)."""
        with self.lock:
            run = self.runs.get(capture_id)
            if run and run.state in ("queued", "running"):
                return run
            run = self.runs[capture_id] = Run(capture_id)
            self.runs.move_to_end(capture_id)
            while len(self.runs) > KEPT:
                oldest = next(iter(self.runs))
                if self.runs[oldest].state in ("queued", "running"):
                    break
                self.runs.pop(oldest)
        self.queue.put(run)
        return run

    def get(self, capture_id: str) -> Run | None:
        return self.runs.get(capture_id)

    def current(self, capture_id: str) -> tuple[Run | None, Report | None, Source]:
        """The capture's last run; its report while the stored object is still the one it
        is about (else None, and the run marked `changed`); and where to read the capture's
        content: the very object verified while it has a report, else the store's now.

        A verdict is about one file: shown beside pictures or records read from another
        (the object replaced in the store since), a green VERIFIED would vouch for them."""
        run = self.runs.get(capture_id)
        if run is not None and run.state == "done" and run.report is not None and run.source is not None \
                and not run.changed:
            try:
                with run.source.open():     # a pinned source checks the object's identity
                    pass
                return run, run.report, run.source
            except CannotCheck:
                run.changed = True
                self._note_verdict(capture_id, COULD_NOT_CHECK)
        return run, None, self.source(capture_id)

    def _progress(self, run: Run):
        def update(done: int, total: int) -> None:
            run.done, run.total = done, total
        return update

    def _work(self) -> None:
        while (run := self.queue.get()) is not None:
            self._run(run)

    def _run(self, run: Run) -> None:
        run.state = "running"
        try:
            context = VerifyContext(self.tsa_paths, self.store, run.capture_id, actor=self.actor)
            run.source = self.source(run.capture_id)
            run.report = verify_capture(run.source, context, self.trusted, self.allow_unsigned,
                                        progress=self._progress(run))
            run.warnings = context.warnings
            run.state = "done"
        except CannotCheck as exc:
            run.report = Report(run.capture_id, "wacz", verdict=COULD_NOT_CHECK, reason=str(exc))
            run.error, run.state = str(exc), "done"
        except (ArchiveError, OSError) as exc:
            run.error, run.state = str(exc) or type(exc).__name__, "failed"
        except Exception as exc:  # noqa: BLE001 - shown on the page, never a dead worker
            run.error, run.state = f"internal error: {type(exc).__name__}: {exc}", "failed"
        finally:
            run.finished = time.time()
        if run.report is not None:
            self._note_verdict(run.capture_id, run.report.verdict)

    def _note_verdict(self, capture_id: str, verdict: str) -> None:
        if self.on_verdict:
            try:
                self.on_verdict(capture_id, verdict)
            except Exception:  # noqa: BLE001 - the catalog is derived: `archive index` catches up
                pass

    def close(self) -> None:
        self.queue.put(None)
