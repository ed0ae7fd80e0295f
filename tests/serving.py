"""`archive serve` started as a user starts it (its own process, on loopback ports), and
Debian's Chromium driven by Playwright to look at it: what the tests of the web app share."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import BIN
from tests.replay import launch  # noqa: F401 - Chromium as the replay tests start it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`archive serve ARGS... --json` running until stop(); `url` is where it listens."""

    def __init__(self, *args: str, env: dict | None = None, timeout: float = 30) -> None:
        self.proc = subprocess.Popen([str(BIN / "archive"), "serve", *args, "--json"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        lines, until = [], time.monotonic() + timeout
        while time.monotonic() < until:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"archive serve stopped: {self.proc.wait()} {self.proc.stderr.read()[-2000:]}")
            lines.append(line)
            try:
                self.info = json.loads("".join(lines))
                break
            except ValueError:
                continue
        else:
            raise AssertionError("archive serve did not say where it listens")
        self.url = self.info["url"].rstrip("/")
        self.replay = (self.info.get("replay") or "").rstrip("/")

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read()


def screenshots_dir(tmp_path_factory) -> Path:
    """Where the views are saved as PNG for a person to look at: $ARCHIVE_TEST_OUTPUT/serve,
    else the session's pytest temporary folder."""
    base = os.environ.get("ARCHIVE_TEST_OUTPUT")
    out = Path(base) / "serve" if base else tmp_path_factory.getbasetemp() / "serve-screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Watched:
    """A browser context whose dialogs and requests are recorded (hostile content must
    cause neither on the app's origin)."""

    def __init__(self, browser) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()
