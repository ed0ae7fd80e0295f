"""A person logs in: a visible Chromium window opens at the login page, and when the
person closes it (or presses Enter in the terminal) the browser's cookies and local
storage are taken, to be saved encrypted. Nothing of this session is recorded: it is
not a capture."""

from __future__ import annotations

import os
import sys
import threading
import time

from archive.capture.browser import CHROMIUM_ARGS, find_chromium
from archive.errors import ArchiveError

POLL = 0.5                 # seconds between looks at the window and the terminal
LONGEST = 3600.0           # a login left open for an hour is given up


def check_display() -> None:
    """A window needs a display: without one, say so (and what to do instead)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ArchiveError("profile create opens a browser window for you to log in, and there is "
                           "no display ($DISPLAY and $WAYLAND_DISPLAY are unset): run it on a desktop "
                           "and copy the profile folder, or use --from-cookies FILE")


def _enter_pressed() -> threading.Event:
    """Set when the person presses Enter in the terminal (never without one)."""
    pressed = threading.Event()
    if sys.stdin is not None and sys.stdin.isatty():
        def wait() -> None:
            try:
                sys.stdin.readline()
            except (OSError, ValueError):
                return
            pressed.set()
        threading.Thread(target=wait, name="archive-login-enter", daemon=True).start()
    return pressed


def interactive_login(url: str, executable: str | None = None, say=print,
                      longest: float = LONGEST) -> dict:
    """Open `url` in a visible Chromium and return its storage state once the person
    closes the window or presses Enter."""
    check_display()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    chromium = find_chromium(executable)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=False, chromium_sandbox=not root,
                args=[*CHROMIUM_ARGS, *(["--no-sandbox"] if root else [])])
            context = browser.new_context(no_viewport=True)
            page = context.new_page()
            try:
                page.goto(url, timeout=60_000)
            except PlaywrightError as exc:
                say(f"the login page did not load ({str(exc).splitlines()[0]}); "
                    "go to it in the window yourself")
            say("Log in in the browser window, then close the window (or press Enter here) "
                "to save the profile.")
            return _wait_for_person(context, _enter_pressed(), longest, PlaywrightError)
    except PlaywrightError as exc:
        raise ArchiveError(f"could not open Chromium ({chromium}): {str(exc).splitlines()[0]}") from None


def _wait_for_person(context, pressed: threading.Event, longest: float, error) -> dict:
    """The storage state when the person is done: taken afresh each POLL while the window
    is open, so what the browser held just before it was closed is what is saved."""
    state = None
    until = time.monotonic() + longest
    while True:
        try:
            if context.pages:
                state = context.storage_state()
            done = pressed.is_set() or not context.pages
        except error:
            done = True          # the browser itself was closed: its last state stands
        if done:
            break
        if time.monotonic() >= until:
            raise ArchiveError(f"nobody finished the login within {longest / 60:g} minutes; nothing saved")
        pressed.wait(POLL)
    if pressed.is_set():
        try:
            state = context.storage_state()
        except error:
            pass
    if state is None:
        raise ArchiveError("the browser closed before any page was shown; nothing saved")
    return state
