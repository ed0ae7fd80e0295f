"""Launching the capture browser: finding Chromium (Debian's, run without its launcher
script), checking that it runs, and starting it under Playwright with flags that keep it
to the pages: its own requests go to a dead end, the pages' through our recording proxy.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from archive.capture.browser.failures import first_line
from archive.errors import ArchiveError

CHROMIUM_ENV = "ARCHIVE_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
DEBIAN_BINARY = "/usr/lib/chromium/chromium"
INSTALL_HINT = (
    "install it with `apt-get install chromium` (Debian, Ubuntu), "
    f"or set {CHROMIUM_ENV} to a Chromium or Chrome executable"
)
# Keep Chromium from calling Google's services on its own: nothing but the pages belongs
# in the WARC (what it still tries goes to a dead end, see launch).
CHROMIUM_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-quic", "--disable-domain-reliability", "--no-pings",
    "--disable-breakpad", "--metrics-recording-only", "--no-default-browser-check",
]
CLOSE_TIMEOUT = 10.0         # for closing a page or the browser
_ENVIRON = threading.Lock()  # the driver takes its environment from os.environ when it starts


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium executable to drive: `explicit`, $ARCHIVE_CHROMIUM, or on PATH."""
    candidate = explicit or os.environ.get(CHROMIUM_ENV)
    if candidate:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise ArchiveError(f"Chromium not found at {candidate}: {INSTALL_HINT}")
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return _behind_launcher(path)
    raise ArchiveError(f"browser capture needs Chromium, which is not installed: {INSTALL_HINT}")


def check_chromium(explicit: str | None = None) -> str:
    """find_chromium(), and the executable found answers `--version` as Chromium does: a
    browser that cannot even start stops a capture before anything is created."""
    path = find_chromium(explicit)
    try:
        answer = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                                errors="replace")
        version = re.search(r"\d+\.\d+\.\d+", answer.stdout)
        problem = None if answer.returncode == 0 and version else \
            f"`{path} --version` exited {answer.returncode} without a version"
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"`{path} --version` failed ({type(exc).__name__})"
    if problem:
        raise ArchiveError(f"Chromium does not run: {problem}; {INSTALL_HINT}")
    return path


def _behind_launcher(path: str) -> str:
    """Debian's /usr/bin/chromium is a shell script that adds flags and Google API keys
    from /etc/chromium.d; the binary behind it is run directly, so that a capture does
    not depend on (or leak through) local launcher settings."""
    try:
        with open(path, "rb") as fh:
            is_script = fh.read(2) == b"#!"
    except OSError:
        return path
    return DEBIAN_BINARY if is_script and os.access(DEBIAN_BINARY, os.X_OK) else path


@dataclass
class RunningBrowser:
    """Playwright's driver, the Chromium it started, the one context pages open in, and
    the dead end Chromium's own requests are sent to."""

    playwright: Any = None
    browser: Any = None
    context: Any = None
    dead_end: socket.socket | None = None

    @property
    def version(self) -> str | None:
        return self.browser.version if self.browser is not None else None

    async def alive(self) -> bool:
        """Whether the browser still answers (a round trip to it: its driver may not have
        told us yet that it is gone)."""
        if not self.browser.is_connected():
            return False
        try:
            await asyncio.wait_for(self.context.cookies(), CLOSE_TIMEOUT)
            return True
        except (PlaywrightError, asyncio.TimeoutError):
            return False

    async def close(self) -> None:
        for thing in (self.context, self.browser):
            if thing is not None:
                try:
                    await asyncio.wait_for(thing.close(), CLOSE_TIMEOUT)
                except (PlaywrightError, asyncio.TimeoutError):
                    pass
        if self.playwright is not None:
            try:
                await asyncio.wait_for(self.playwright.stop(), CLOSE_TIMEOUT)
            except Exception:  # noqa: BLE001 - a driver already gone has nothing left to stop
                pass
        if self.dead_end is not None:
            self.dead_end.close()


async def launch(running: RunningBrowser, executable: str, ca_spki_hash: str, proxy_url: str,
                 viewport: dict, user_agent: str | None, storage_state: dict | None = None,
                 temp_dir: str | None = None) -> None:
    """Start headless Chromium into `running` (closing it closes what did start), trusting
    the capture's CA (`ca_spki_hash`), its own requests sent to a port where nothing
    listens and the pages' to `proxy_url`; logged in with `storage_state` (Playwright's:
    cookies and local storage, from a profile or a cookies file), when given. Playwright
    makes its temporary profile in `temp_dir` when given (see _start_driver)."""
    running.dead_end = socket.socket()
    running.dead_end.bind(("127.0.0.1", 0))     # bound, never listening: refuses
    running.playwright = await _start_driver(temp_dir)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={ca_spki_hash}"]
    if root:
        args.append("--no-sandbox")      # Chromium refuses to start as root otherwise
    try:
        running.browser = await running.playwright.chromium.launch(
            executable_path=executable, headless=True, args=args,
            chromium_sandbox=not root,
            # Signals are for the capture process to decide on (finish the page,
            # journal it, stop): the driver must not close the browser under it.
            handle_sigint=False, handle_sigterm=False, handle_sighup=False,
            # Chromium's own temporary folder stays the system's: its singleton socket
            # path must fit in 108 bytes, which a capture's work folder may not.
            env=dict(os.environ),
            # Chromium's own requests (sign-in, updates) take the browser-wide
            # proxy: a port of ours where nothing listens, so they go nowhere.
            proxy={"server": f"http://127.0.0.1:{running.dead_end.getsockname()[1]}"},
        )
        running.context = await running.browser.new_context(
            viewport=viewport,
            user_agent=user_agent,
            # A service worker could answer from its own cache, out of the proxy's sight.
            service_workers="block",
            # A download is cancelled in the browser; the proxy still reads it whole.
            accept_downloads=False,
            # The pages' requests (loopback too: Playwright adds <-loopback>).
            proxy={"server": proxy_url},
            storage_state=storage_state,
        )
    except PlaywrightError as exc:
        raise ArchiveError(f"could not start Chromium ({executable}): {first_line(exc)}") from None


async def _start_driver(temp_dir: str | None):
    """Playwright's driver, making its temporary folders (the browser's profile, its
    artifacts) in `temp_dir`. The driver removes them when the browser stops, but not
    when it is killed itself (nor when its removal races the dying browser's last
    writes): what is left then goes with the capture's work folder instead of piling up
    in /tmp, and what an earlier start left in `temp_dir` is removed first (a resumed
    capture reuses its work folder)."""
    if temp_dir is None:
        return await async_playwright().start()
    # a browser of the killed start may still be writing into it as it dies: what cannot
    # be removed now stays, and goes with the work folder
    shutil.rmtree(temp_dir, ignore_errors=True)
    os.makedirs(temp_dir, mode=0o700, exist_ok=True)
    # Playwright has no other way to give its driver an environment. tempfile reads TMPDIR
    # once, on its first use, and keeps it: read it now, so that no use of tempfile in this
    # process (a long-running `jobs serve` too) ever takes this folder for its own.
    tempfile.gettempdir()
    with _ENVIRON:
        before = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = temp_dir
        try:
            return await async_playwright().start()
        finally:
            if before is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = before
