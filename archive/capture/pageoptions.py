"""How a browser loads one page before it is snapshotted. Kept apart from browser.py
(which imports Playwright, slow to load) so that the crawl options, the CLI and a
resumed capture's saved request can carry them without loading a browser driver."""

from __future__ import annotations

from dataclasses import dataclass

from archive.errors import ArchiveError
from archive.values import MAX_VIEWPORT

WAIT_CONDITIONS = ("load", "domcontentloaded", "networkidle")


@dataclass
class PageOptions:
    viewport_width: int = 1280
    viewport_height: int = 800
    wait: str = "load"                 # load | domcontentloaded | networkidle
    selector: str | None = None        # also wait for this CSS selector to appear
    delay: float = 0.0                 # then wait this many seconds more
    scroll: bool = True                # scroll to the bottom to trigger lazy loading
    timeout: float = 30.0              # for all of the above; snapshots are taken anyway
    snapshot_timeout: float = 15.0     # for each of the DOM snapshot and the screenshot

    def __post_init__(self) -> None:
        if self.wait not in WAIT_CONDITIONS:
            raise ArchiveError(f"unknown wait condition {self.wait!r}: one of {', '.join(WAIT_CONDITIONS)}")
        if not (0 < self.viewport_width <= MAX_VIEWPORT and 0 < self.viewport_height <= MAX_VIEWPORT):
            raise ArchiveError(f"the viewport needs a width and height from 1 to {MAX_VIEWPORT} pixels")
        if self.selector is not None and not self.selector.strip():
            raise ArchiveError("an empty selector to wait for: give a CSS selector")
        if self.timeout <= 0 or self.snapshot_timeout <= 0 or self.delay < 0:
            raise ArchiveError("page timeouts must be positive and the delay not negative")
