"""SIGTERM for the commands that run long (capture, jobs run, worker): systemd, `docker
stop` and `timeout` stop them as Ctrl-C does, so what they hold is kept or handed over."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


def _interrupt() -> BaseException:
    return KeyboardInterrupt("SIGTERM")


@contextmanager
def stop_on_sigterm(stop: Callable[[], BaseException] = _interrupt,
                    before: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, SIGTERM calls `before` (a stop flag for threads to see) and raises
    `stop()` in the main thread (default KeyboardInterrupt, which the work already treats
    as a stop); the previous handler is back afterwards. Off the main thread, where no
    handler can be set, SIGTERM is left as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if before is not None:
            before()
        raise stop()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
