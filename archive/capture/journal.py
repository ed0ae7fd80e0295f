"""The crawl journal: one JSON line per group of records written to the WARC, appended
right after the group while the writer is still locked, so the journal follows the
WARC's order exactly. It is the crawl's memory: URLs queued and done, the WARC
position after each group, index lines, page entries, deduplication originals. A
crawl killed at any point is rebuilt from it (replay), and the container is cut back
to the last position it names (or, after a power loss, to the last one it still holds).

Line kinds: `seeds` (the first URLs queued), `group` (records of one fetch, with the
seconds since its run began in `elapsed`; `final` false for a fetch that will be
retried, `kind` robots for robots.txt; with --browser one group is one page with
everything the browser fetched for it, `seen` naming those URLs, and `kind` browser
for the browser's records outside any page), `robots` (the answer an origin's
robots.txt gave, after the groups of its fetch), `resume`, `cut` (a resume found the
WARC data ending before what was journaled, after a power loss, and dropped the groups
whose records were lost), `handover` (a shared crawl: the WARC files one worker handed
over, copied whole into the container, with the group lines of its fetches), `end`
(the crawl finished; sealing may follow).
With --media, a group with `mediaFound` names the video and audio found on a page, and a
later group of `kind` media (`mediaDone`) says what became of each: a page found but not
done when a run stopped has its media fetched again by the resume.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from archive.capture.dedup import Original
from archive.capture.frontier import Item
from archive.capture.robots import RobotsAnswer
from archive.errors import ArchiveError

JOURNAL_NAME = "crawl.jsonl"


@dataclass
class CrawlStats:
    # One definition of a page everywhere (capture, show, custody, verify, diff): an entry
    # of pages.jsonl. A redirect hop is fetched as a page but listed under where it led.
    pages: int = 0
    page_fetches: int = 0         # final page fetches, redirect hops too: what --max-pages counts
    requisites: int = 0
    failed: int = 0
    bytes: int = 0
    revisits: int = 0
    robots_blocked: int = 0
    not_fetched: int = 0
    media: int = 0             # media items recorded (with --media)
    media_failed: int = 0      # media items that failed (skipped ones are not failures)

    def count(self, line: dict) -> None:
        """Add one journal group line."""
        for entry in (line.get("mediaDone") or {}).get("entries", ()):
            self.media += entry.get("status") == "kept"
            self.media_failed += entry.get("status") == "failed"
        self.bytes += line.get("bytes", 0)
        self.revisits += line.get("revisits", 0)
        self.requisites += line.get("requisites", 0)         # fetched by the browser
        self.failed += line.get("requisitesFailed", 0)
        if not line.get("final"):
            return
        if line.get("page"):
            self.pages += 1
        if line.get("kind") == "page":
            self.page_fetches += 1
        elif line.get("kind") == "requisite":
            self.requisites += 1
        if line.get("failed"):
            self.failed += 1
        if line.get("robots"):
            self.robots_blocked += 1


@dataclass
class CrawlState:
    """What a journal says: enough to continue a crawl or to seal it."""

    seen: list[str] = field(default_factory=list)
    queued: dict[str, Item] = field(default_factory=dict)    # not done yet, in order
    attempts: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    index_lines: list[str] = field(default_factory=list)
    pages: list[dict] = field(default_factory=list)
    originals: list[tuple[str, Original]] = field(default_factory=list)
    position: tuple | None = None   # (WARC file, size, CRC-32) after the last group
    stats: CrawlStats = field(default_factory=CrawlStats)
    ended: dict | None = None                 # the `end` line, once the crawl finished
    resumes: list[str] = field(default_factory=list)
    cut_backs: list[dict] = field(default_factory=list)   # `cut` lines: groups lost and redone
    robots: dict[str, RobotsAnswer] = field(default_factory=dict)   # by robots.txt URL
    # every failed fetch stats.failed counts: {"url", "kind" (page or requisite), "error"}
    failures: list[dict] = field(default_factory=list)
    journal_end: int = 0          # bytes of the journal its lines fill (what follows is damage)
    earlier_runs: float = 0.0     # seconds crawled by the runs before the last `resume`
    media_todo: dict[str, dict] = field(default_factory=dict)   # page -> mediaFound, not done
    media: list[dict] = field(default_factory=list)   # what became of each media item, with its page
    media_tools: dict = field(default_factory=dict)   # what downloaded and merged them
    frames: dict[str, list[str]] = field(default_factory=dict)   # page -> its frames (--media)
    this_run: float = 0.0         # seconds crawled by the last run, to its last group
    handovers: list[dict] = field(default_factory=list)  # a shared crawl's: worker, files, epoch, n
    epoch: str | None = None      # a shared crawl's state in Redis, as last set up
    # secret request header values redacted: (header, cookie or None, digest) -> requests
    redacted: dict = field(default_factory=dict)
    session_cookies: dict = field(default_factory=dict)   # cookie name -> first URL setting it

    @property
    def crawl_time(self) -> float:
        """Seconds spent crawling, all runs together (--max-time is for the whole crawl)."""
        return self.earlier_runs + self.this_run

    def _media(self, line: dict) -> None:
        found, done = line.get("mediaFound"), line.get("mediaDone")
        if line.get("frames"):
            self.frames[line["url"]] = list(line["frames"])
        if found:
            self.media_todo[found["page"]] = {"urls": list(found["urls"]),
                                              "extras": found.get("extras") or {}}
        if done:
            self.media_todo.pop(done["page"], None)
            self.media += [{"page": done["page"], **entry} for entry in done["entries"]]
            self.media_tools = done.get("downloader") or self.media_tools

    def _credentials(self, line: dict) -> None:
        """What a group says of redacted request headers and session cookies set."""
        for header, cookie, digest, count in line.get("redacted", ()):
            key = (header, cookie, digest)
            self.redacted[key] = self.redacted.get(key, 0) + count
        for name, url in line.get("sessionCookies", ()):
            self.session_cookies.setdefault(name, url)

    def pending(self) -> list[Item]:
        return [
            Item(i.url, i.depth, i.requisite, i.chain, self.attempts.get(i.url, 0))
            for i in self.queued.values()
        ]

    def apply(self, line: dict) -> None:
        kind = line.get("t")
        for raw in line.get("queue", ()):
            item = Item.from_json(raw)
            self.seen.append(item.url)
            self.queued[item.url] = item
        self.seen.extend(line.get("seen", ()))
        if kind == "seeds":
            self.epoch = line.get("epoch")
        elif kind == "group":
            self.position = tuple(line["warc"]) if line.get("warc") else self.position
            self.index_lines.extend(line.get("index", ()))
            for digest, original in line.get("originals", ()):
                self.originals.append((digest, Original(*original)))
            self.stats.count(line)
            self._media(line)
            self._credentials(line)
            elapsed = line.get("elapsed")
            if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
                self.this_run = max(self.this_run, float(elapsed))
            for failure in line.get("requisiteFailures", ()):
                self.failures.append({"url": failure.get("url"), "kind": "requisite",
                                      "error": failure.get("error")})
            if line.get("final") and line.get("failed"):
                self.failures.append({"url": line["url"], "kind": line.get("kind"),
                                      "error": line.get("error")})
            if line.get("final"):
                self.done.add(line["url"])
                self.queued.pop(line["url"], None)
                if line.get("page"):
                    self.pages.append(line["page"])
            elif line.get("kind") not in ("robots", "browser"):
                self.attempts[line["url"]] = self.attempts.get(line["url"], 0) + 1
        elif kind == "handover":
            # a shared crawl: one worker's WARC files, copied in whole, and their fetches
            for group in line["groups"]:
                self.apply({**group, "t": "group"})
            self.position = tuple(line["warc"]) if line.get("warc") else self.position
            elapsed = line.get("elapsed")
            if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
                self.this_run = max(self.this_run, float(elapsed))
            for url, answer in line.get("robots", ()):
                self.robots[url] = RobotsAnswer.from_json(answer)
            self.handovers.append({
                **{k: line.get(k) for k in ("worker", "files", "epoch", "n")},
                "fetches": sum(1 for g in line["groups"] if g.get("kind") != "robots"),
                "pages": sum(1 for g in line["groups"] if g.get("page")),
                "bytes": sum(g.get("bytes", 0) for g in line["groups"])})
        elif kind == "end":
            self.ended = line
        elif kind == "robots":
            self.robots[line["url"]] = RobotsAnswer.from_json(line["answer"])
        elif kind == "cut":
            self.cut_backs.append({k: line.get(k) for k in ("at", "groups", "urls", "warc", "reason")})
        elif kind == "resume":
            self.epoch = line.get("epoch", self.epoch)
            self.resumes.append(line.get("at", ""))
            self.earlier_runs, self.this_run = self.crawl_time, 0.0
            self.ended = None


def read_lines(path: Path) -> list[tuple[int, dict]]:
    """The journal's lines, each with the byte offset just after it, up to the first
    line that is cut short or damaged: a crash or a power loss ends the journal there
    (a last line half written, a block of zeros), and nothing after it can be relied on."""
    if not path.exists():
        return []
    lines, end = [], 0
    data = path.read_bytes()
    for raw in data[: data.rfind(b"\n") + 1].splitlines(keepends=True):
        try:
            line = json.loads(raw) if raw.strip() else None
        except ValueError:       # UnicodeDecodeError too
            break
        if raw.strip() and not (isinstance(line, dict) and isinstance(line.get("t"), str)):
            break
        end += len(raw)
        if line is not None:
            lines.append((end, line))
    return lines


def replay(path: Path, lines: list[tuple[int, dict]] | None = None) -> CrawlState:
    """What a journal (or the first `lines` of it) says."""
    state = CrawlState()
    for number, (end, line) in enumerate(read_lines(path) if lines is None else lines, 1):
        state.journal_end = end
        try:
            state.apply(line)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # well-formed JSON that no crawl wrote: edited by hand, or damage that parses
            raise ArchiveError(f"{path}: line {number} is not a crawl journal line "
                               f"({type(exc).__name__}: {exc}); the work folder was altered") from None
    return state


def cut(path: Path, end: int) -> None:
    """Keep only the first `end` bytes of a journal (the lines read_lines vouched for)."""
    with open(path, "r+b") as fh:
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())


class Journal:
    """Appends lines to the journal, each flushed to the OS as one write."""

    def __init__(self, directory: Path, vouched: int | None = None) -> None:
        """`vouched`: how many bytes of it read_lines found whole (a resume knows); they
        are found here when not given."""
        self.path = Path(directory) / JOURNAL_NAME
        if self.path.exists():
            # Drop a line half-written (or damaged) by a crash before appending after it.
            if vouched is None:
                lines = read_lines(self.path)
                vouched = lines[-1][0] if lines else 0
            cut(self.path, vouched)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def append(self, line: dict) -> None:
        data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
