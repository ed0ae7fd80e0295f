"""How the browser and its pages fail, in words a capture can record."""

from __future__ import annotations

from playwright.async_api import Error as PlaywrightError

from archive.errors import ArchiveError


class BrowserGone(ArchiveError):
    """The browser itself stopped (crashed, killed, its driver gone): no page can be
    captured any more. Not a page's failure: the crawl stops, and a resumed capture
    loads the page again."""


def is_timeout(exc: PlaywrightError) -> bool:
    return type(exc).__name__ == "TimeoutError"


def first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
