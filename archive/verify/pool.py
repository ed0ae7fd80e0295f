"""Worker processes for the part of verification that needs more than one core.

Checking records is zlib and hashlib (which release the GIL) plus Python work per
record (which does not): threads of one process share one core for that part, so the
record checks of a large file are spread over processes instead.

A worker is a fresh interpreter (`python -c ...`), never a fork: the process verifying
may hold threads (a job runner, a test server), and a fork copies their locks. It reads
pickled calls on stdin and answers on stdout, one call at a time; our own processes on
private pipes, so pickle carries no one else's data. A worker that cannot start or
stops midway costs speed, never a result: its calls run in this process instead.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from typing import Any, Callable

from archive.verify import heap

BOOT = "from archive.verify.pool import serve; serve()"
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


class _Worker:
    def __init__(self, process: bool) -> None:
        """`process` False: calls run on this process's thread (tests)."""
        self.process: subprocess.Popen | None = None
        self.closed = False
        if not process:
            return
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=env)
        except OSError:
            pass

    def call(self, fn: Callable, args: tuple) -> Any:
        if self.process is not None:
            try:
                pickle.dump((fn, args), self.process.stdin, pickle.HIGHEST_PROTOCOL)
                self.process.stdin.flush()
                ok, value = pickle.load(self.process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError, ValueError):
                self.stop()                 # gone: this call and the next run here
            else:
                if not ok:
                    raise value
                return value
        if self.closed:
            raise RuntimeError("verification stopped")
        return fn(*args)

    def stop(self) -> None:
        """Idle between calls, or stopped midway by an error: killed either way (a
        thread may still be reading its answers, which kill ends)."""
        if self.process is not None:
            process, self.process = self.process, None
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass


class Batch:
    """Calls running on the workers; wait() gives their results in order."""

    def __init__(self, workers: list[_Worker], fn: Callable, calls: list[tuple],
                 then: Callable[[Any], Any] | None) -> None:
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        for index, args in enumerate(calls):
            self._calls.put((index, args))
        self._results: list[Any] = [None] * len(calls)
        self._errors: list[BaseException] = []
        self._then = then
        self._threads = [threading.Thread(target=self._drive, args=(w, fn), daemon=True,
                                          name="verify-pool") for w in workers]
        for thread in self._threads:
            thread.start()

    def _drive(self, worker: _Worker, fn: Callable) -> None:
        while not self._errors:
            try:
                index, args = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                result = worker.call(fn, args)
                self._results[index] = self._then(result) if self._then else result
            except BaseException as exc:  # noqa: BLE001 - raised again by wait()
                self._errors.append(exc)

    def wait(self) -> list[Any]:
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]
        return self._results


class Pool:
    def __init__(self, size: int, processes: bool = True) -> None:
        self._workers = [_Worker(processes) for _ in range(size)]

    def run(self, fn: Callable, calls: list[tuple], then: Callable[[Any], Any] | None = None) -> Batch:
        """Start `fn(*args)` for each of `calls` (fn: a module-level function); `then`
        is applied here to each result as it comes (while the caller goes on)."""
        return Batch(self._workers, fn, calls, then)

    def close(self) -> None:
        for worker in self._workers:
            worker.closed = True
            worker.stop()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve() -> None:
    """A worker's loop: one pickled (function, args) in, one (ok, result) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the parent decides when to stop
    heap.steady()
    calls, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                     # a stray print cannot corrupt answers
    while True:
        try:
            fn, args = pickle.load(calls)
        except EOFError:
            return
        try:
            answer = (True, fn(*args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            answer = (False, exc)
        try:
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an exception that cannot be pickled
            data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        answers.write(data)
        answers.flush()
