"""robots.txt, read as RFC 9309 says: fetched once per origin (scheme, host, port) and
crawl (a resumed crawl goes on with the answers it had), parsed with Protego; a missing
file (4xx) allows everything, an unreachable one (5xx, network error, redirect loop)
disallows everything."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from protego import Protego

from archive.capture.frontier import origin

MAX_CRAWL_DELAY = 30.0   # a robots.txt asking for more does not stall a capture for hours


@dataclass(frozen=True)
class RobotsAnswer:
    """What fetching an origin's robots.txt gave: status (None: no response), body text."""

    status: int | None
    text: str = ""
    error_kind: str | None = None     # why there was no response (dns, tls, timeout...)
    error: str | None = None

    def to_json(self) -> dict:
        return {"status": self.status, "text": self.text, "errorKind": self.error_kind,
                "error": self.error}

    @classmethod
    def from_json(cls, data: dict) -> "RobotsAnswer":
        return cls(data.get("status"), data.get("text") or "", data.get("errorKind"), data.get("error"))


@dataclass(frozen=True)
class Rules:
    parser: Protego | None
    allow_all: bool
    source: str               # robots.txt URL and how it was read, for the record
    error_kind: str = "robots"  # what a URL it blocks is recorded as having failed with

    def allows(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, user_agent)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(user_agent)
        return min(float(delay), MAX_CRAWL_DELAY) if delay else None


def rules_from(url: str, answer: RobotsAnswer) -> Rules:
    if answer.status is not None and 200 <= answer.status < 300:
        return Rules(Protego.parse(answer.text), True, f"{url} (HTTP {answer.status})")
    if answer.status is not None and 400 <= answer.status < 500:
        return Rules(None, True, f"{url} (HTTP {answer.status}: no rules, all allowed)")
    why = f"HTTP {answer.status}" if answer.status is not None else \
        f"unreachable: {answer.error or 'no response'}"
    # The URLs it blocks are recorded with the network failure that blocked them (a TLS
    # error, say), as the fetch of the page itself would most likely have met it too.
    return Rules(None, False, f"{url} ({why}: everything disallowed, RFC 9309)",
                 answer.error_kind or "robots")


class Robots:
    """Per-origin rules, fetched on first use through `fetch_robots(robots_url)`;
    threads asking about the same origin wait for one fetch."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._rules: dict[str, Rules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def restore(self, answers: dict[str, RobotsAnswer]) -> None:
        """Take up the answers an earlier run of the crawl had, by robots.txt URL."""
        for robots_url, answer in answers.items():
            self._rules[origin(robots_url)] = rules_from(robots_url, answer)

    def rules(self, url: str, fetch_robots: Callable[[str], RobotsAnswer]) -> Rules:
        key = origin(url)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._rules:
                robots_url = key + "/robots.txt"
                self._rules[key] = rules_from(robots_url, fetch_robots(robots_url))
            return self._rules[key]
