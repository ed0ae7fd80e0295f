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
A 2xx HTML or CSS response is journaled before its links are read (`linksPending`: where
its record is, the fields of its metadata record); a group of `kind` links follows with
that metadata record, the page entry and what it queues. A run stopped in between leaves
the links to the resume, which reads the response back instead of fetching it again.
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
from typing import Iterator

from archive import utctime
from archive.capture.dedup import Original
from archive.capture.exchange import Recorded
from archive.capture.frontier import Item
from archive.capture.robots import RobotsAnswer
from archive.capture.spill import SortedLines, SpooledRecords, memory_bound
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
    index_lines: list[str] | SortedLines = field(default_factory=list)
    pages: list[dict] | SpooledRecords = field(default_factory=list)
    originals: list[tuple[str, Original]] = field(default_factory=list)
    position: tuple | None = None   # (WARC file, size, CRC-32) after the last group
    stats: CrawlStats = field(default_factory=CrawlStats)
    ended: dict | None = None                 # the `end` line, once the crawl finished
    resumes: list[str] = field(default_factory=list)
    cut_backs: list[dict] = field(default_factory=list)   # `cut` lines: groups lost and redone
    robots: dict[str, RobotsAnswer] = field(default_factory=dict)   # by robots.txt URL
    # every failed fetch stats.failed counts: {"url", "kind" (page or requisite), "error"}
    failures: list[dict] | SpooledRecords = field(default_factory=list)
    journal_end: int = 0          # bytes of the journal its lines fill (what follows is damage)
    earlier_runs: float = 0.0     # seconds crawled by the runs before the last `resume`
    media_todo: dict[str, dict] = field(default_factory=dict)   # page -> mediaFound, not done
    media: list[dict] = field(default_factory=list)   # what became of each media item, with its page
    media_tools: dict = field(default_factory=dict)   # what downloaded and merged them
    frames: dict[str, list[str]] = field(default_factory=dict)   # page -> its frames (--media)
    this_run: float = 0.0         # seconds crawled by the last run, to its last group
    handovers: list[dict] = field(default_factory=list)  # a shared crawl's: worker, files, epoch, n
    epoch: str | None = None      # a shared crawl's state in Redis, as last set up
    # url -> `linksPending` of a response journaled before its links were read, until the
    # `links` group that follows them: a resume reads them from the WARC data
    links_todo: dict[str, dict] = field(default_factory=dict)
    # sealing needs no frontier: URLs seen, queued and done, attempts and deduplication
    # originals are then not kept (a million URLs would hold about a gigabyte); a resume
    # needs no index lines, page entries or failures (its capture is sealed from a
    # replay of its own): they are kept only when sealing
    sealing: bool = False
    # secret request header values redacted: (header, cookie or None, digest) -> requests
    redacted: dict = field(default_factory=dict)
    session_cookies: dict = field(default_factory=dict)   # cookie name -> first URL setting it

    def close(self) -> None:
        """Remove the files sealing spooled to (nothing to do for a state in memory)."""
        for spooled in (self.index_lines, self.pages, self.failures):
            if hasattr(spooled, "close"):
                spooled.close()

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
        if not self.sealing:
            for raw in line.get("queue", ()):
                item = Item.from_json(raw)
                self.seen.append(item.url)
                self.queued[item.url] = item
            self.seen.extend(line.get("seen", ()))
        if kind == "seeds":
            self.epoch = line.get("epoch")
        elif kind == "group":
            self.position = tuple(line["warc"]) if line.get("warc") else self.position
            if self.sealing:
                self.index_lines.extend(line.get("index", ()))
            for digest, original in () if self.sealing else line.get("originals", ()):
                self.originals.append((digest, Original(*original)))
            self.stats.count(line)
            self._media(line)
            self._credentials(line)
            elapsed = line.get("elapsed")
            if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
                self.this_run = max(self.this_run, float(elapsed))
            for failure in line.get("requisiteFailures", ()) if self.sealing else ():
                self.failures.append({"url": failure.get("url"), "kind": "requisite",
                                      "error": failure.get("error")})
            if self.sealing and line.get("final") and line.get("failed"):
                self.failures.append({"url": line["url"], "kind": line.get("kind"),
                                      "error": line.get("error")})
            if line.get("linksPending"):
                self.links_todo[line["url"]] = line["linksPending"]
            elif line.get("kind") == "links":
                self.links_todo.pop(line["url"], None)
            if line.get("final"):
                if not self.sealing:
                    self.done.add(line["url"])
                    self.queued.pop(line["url"], None)
                if self.sealing and line.get("page"):
                    self.pages.append(line["page"])
            elif self.sealing:
                pass
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
            self.handovers.append({**{k: line.get(k) for k in ("worker", "files", "epoch", "n")},
                                   **tally(line["groups"])})
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


# -- writing: every line kind is made here ------------------------------------------
def seeds_line(queue: list[Item], epoch: str | None = None) -> dict:
    """The first URLs queued (a shared crawl: with the epoch of its state in Redis)."""
    return {"t": "seeds", **({"epoch": epoch} if epoch else {}), "queue": [i.to_json() for i in queue]}


def resume_line(epoch: str | None = None) -> dict:
    return {"t": "resume", **({"epoch": epoch} if epoch else {}), "at": utctime.micros()}


def robots_line(url: str, answer: RobotsAnswer) -> dict:
    """What an origin's robots.txt said, after the groups of its fetch."""
    return {"t": "robots", "url": url, "answer": answer.to_json()}


def end_line(stop: str | None, not_fetched: list[str], more: int = 0) -> dict:
    """The crawl finished: why it stopped, what it left unfetched (and how many more)."""
    return {"t": "end", "stop": stop, "notFetched": not_fetched, **({"notFetchedMore": more} if more else {})}


def group_line(url: str | None, kind: str, final: bool, queued: list[Item] = (), **fields) -> dict:
    """The records of one fetch (completed by `recorded_in` once they are written)."""
    return {"t": "group", "url": url, "kind": kind, "final": final,
            "queue": [i.to_json() for i in queued], **fields}


def recorded_in(line: dict, position: tuple, elapsed: float, recorded: Recorded) -> dict:
    """A group line with the WARC position after its records, the run's seconds so far,
    and what its records add (index lines, bytes, deduplication originals, revisits)."""
    line["warc"] = position
    line["elapsed"] = round(elapsed, 3)
    line["index"] = recorded.index
    line["bytes"] = recorded.bytes
    if recorded.originals:
        line["originals"] = recorded.originals
    if recorded.revisits:
        line["revisits"] = recorded.revisits
    return line


def tally(groups: list[dict]) -> dict:
    """Fetches, pages and bytes of a shared crawl's hand-over (its group lines)."""
    # a `links` group follows its fetch's own: one fetch
    return {"fetches": sum(1 for g in groups if g.get("kind") not in ("robots", "links")),
            "pages": sum(1 for g in groups if g.get("page")),
            "bytes": sum(g.get("bytes", 0) for g in groups)}


# -- reading ---------------------------------------------------------------------
def lines(path: Path) -> Iterator[tuple[int, dict]]:
    """The journal's lines, streamed, each with the byte offset just after it, up to the
    first line that is cut short or damaged: a crash or a power loss ends the journal
    there (a last line half written, a block of zeros), and nothing after it can be
    relied on. Memory stays flat whatever the journal's length."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    end = 0
    with fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return           # cut short: no newline after it
            try:
                line = json.loads(raw) if raw.strip() else None
            except ValueError:       # UnicodeDecodeError too
                return
            if raw.strip() and not (isinstance(line, dict) and isinstance(line.get("t"), str)):
                return
            end += len(raw)
            if line is not None:
                yield end, line


def vouched_end(path: Path) -> int:
    """Bytes of the journal its whole lines fill (what follows them is damage)."""
    end = 0
    for end, _ in lines(path):
        pass
    return end


def has_groups(path: Path) -> bool:
    """Whether the journal records any WARC data written (a capture holds something)."""
    return any(line.get("t") in GROUP_KINDS for _, line in lines(path))


# Where sealing spools what would grow with the crawl, in the capture's spool folder
INDEX_SPILL = "seal-index.sqlite"
PAGES_SPILL = "seal-pages.jsonl"
FAILURES_SPILL = "seal-failures.jsonl"
# A page entry holds about ten times the memory of an index line: a tenth as many are kept.
RECORDS_PER_LINE = 10


def replay(path: Path, sealing: bool = False) -> CrawlState:
    """What a journal says, read line by line. `sealing`: only what sealing needs, with
    what grows with the crawl (index lines, page entries, failures) past the memory
    bound in files of the spool folder beside the journal (the index lines sorted
    there); `CrawlState.close` removes them."""
    state = CrawlState(sealing=sealing)
    if sealing:
        spool = Path(path).parent / "spool"
        spool.mkdir(exist_ok=True)
        records = max(1, memory_bound() // RECORDS_PER_LINE)
        state.index_lines = SortedLines(str(spool / INDEX_SPILL))
        state.pages = SpooledRecords(str(spool / PAGES_SPILL), records)
        state.failures = SpooledRecords(str(spool / FAILURES_SPILL), records)
    for number, (end, line) in enumerate(lines(path), 1):
        state.journal_end = end
        try:
            state.apply(line)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # well-formed JSON that no crawl wrote: edited by hand, or damage that parses
            raise ArchiveError(f"{path}: line {number} is not a crawl journal line "
                               f"({type(exc).__name__}: {exc}); the work folder was altered") from None
    return state


def cut(path: Path, end: int) -> None:
    """Keep only the first `end` bytes of a journal (the lines `lines` vouched for)."""
    with open(path, "r+b") as fh:
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())


GROUP_KINDS = ("group", "handover")    # journal lines that record WARC data written


def _groups(line: dict) -> list[dict]:
    """The record groups a journal line holds (a hand-over holds several)."""
    if line.get("t") == "handover":
        return line.get("groups", [])
    return [line] if line.get("t") == "group" else []


def _is_position(value) -> bool:
    return (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:]))


def positions(path: Path) -> list[tuple[str, int, int]]:
    """The WARC position (file name, its size, CRC-32 of its data) after each record
    group the journal names, oldest first: what a resume checks the container against."""
    names: dict[str, str] = {}      # one string per WARC file name, not one per group
    return [(names.setdefault(line["warc"][0], line["warc"][0]), *line["warc"][1:])
            for _, line in lines(path)
            if line.get("t") in GROUP_KINDS and _is_position(line.get("warc"))]


def cut_back(path: Path, held: int | None, groups: int) -> None:
    """After a power loss: keep the journal up to its `held`-th record group (of `groups`,
    as `positions` listed them; None: none is held) and drop what follows, with a `cut`
    line saying which groups and URLs were lost (they are fetched again). Nothing is
    done when the last group is held (a kill loses no data)."""
    if held == (groups - 1 if groups else None):
        return
    keep, at, n = 0, None, -1
    for end, line in lines(path):
        if line.get("t") in GROUP_KINDS and _is_position(line.get("warc")):
            n += 1
            if held is None or n > held:
                break
            at, keep = line["warc"], end
        elif held is None or n < held:
            keep = end       # lines after the group kept are dropped with what follows it
    dropped, urls, earlier_cuts = 0, set(), []
    for end, line in lines(path):
        if end <= keep:
            continue
        for group in _groups(line):
            dropped += 1
            if group.get("url"):
                urls.add(group["url"])
        if line.get("t") == "cut":
            earlier_cuts.append(line)
    journal = Journal(path.parent, vouched=keep)
    for line in earlier_cuts:      # what an earlier resume cut stays said
        journal.append(line)
    journal.append({
        "t": "cut", "at": utctime.seconds(), "groups": dropped, "urls": sorted(urls), "warc": at,
        "reason": "the WARC data on disk ends before what the journal recorded "
                  "(lost in a power failure); the groups after this point were dropped",
    })
    journal.close()


class Journal:
    """Appends lines to the journal, each flushed to the OS as one write."""

    def __init__(self, directory: Path, vouched: int | None = None) -> None:
        """`vouched`: how many bytes of it `lines` found whole (a resume knows); they
        are found here when not given."""
        self.path = Path(directory) / JOURNAL_NAME
        if self.path.exists():
            # Drop a line half-written (or damaged) by a crash before appending after it.
            cut(self.path, vouched_end(self.path) if vouched is None else vouched)
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
