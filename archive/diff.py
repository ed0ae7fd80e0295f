"""What changed between two captures: pages added, taken down, redirected, edited.

Read from each WACZ's pages list and CDXJ index (payload digests are in the index).
A payload digest is over the body as transferred: the same page sent with other chunk
boundaries or compressed another way has another one. So only where the two digests
differ are the two records read, and their content compared once decoded (a page that
differs only in how it was sent is unchanged; one that cannot be decoded is unknown).
Findings are phrased for an investigator: "the page X changed between T1 and T2", with
T1 and T2 the times the page was captured. They are claims read from the files:
`archive verify` is what proves each file intact.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Sequence

from archive import utctime
from archive.errors import ArchiveError, TooLarge
from archive.hashing import parse_digest
from archive.values import parse_json, printable, text_field
from archive.wacz.zipreader import Container, member_lines, open_container, open_zip
from archive.reader.decode import DecodeError
from archive.reader.extract import (
    UNREADABLE, ContentElsewhere, Opener, Undecodable, codings_at, extract_at, store_opener,
)
from archive.errors import CannotCheck
from archive.reader.location import RecordLocation
from archive.reader.source import Source
from archive.warc.cdxj import parse_cdxj_line
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, DATAPACKAGE, PAGE_LISTS, is_cdx_index

GONE = (404, 410)
JSON_LIMIT = 16 << 20           # evidence/capture.json and datapackage.json are small

PAGE_RECORDS = ("response", "revisit")
CHANGE_KINDS = ("changed", "removed", "redirected", "added")
LINE_LIMIT = 16 << 20           # one pages or index line
DECODED_LIMIT = 1 << 30         # content of one page, decoded: more is not compared (a bomb)
UNREADABLE_KIND = "unreadable"  # digests differ and the content could not be compared


@dataclass(slots=True)
class PageState:
    url: str
    ts: str | None = None
    status: int | None = None
    digest: str | None = None
    title: str | None = None
    error: str | None = None
    redirect_to: str | None = None

    @property
    def online(self) -> bool:
        """Captured with content (2xx) and no recorded failure."""
        return self.status is not None and 200 <= self.status < 300 and not self.error

    @property
    def gone(self) -> bool:
        return self.status in GONE

    @property
    def failed(self) -> bool:
        """Not captured with content, and neither taken down nor a redirect: a 5xx, a
        403 (a geo-block), no response. Links it holds were not followed."""
        redirect = self.redirect_to or (self.status is not None and 300 <= self.status < 400)
        return not (self.online or self.gone or redirect)


@dataclass
class CaptureSummary:
    label: str                    # capture id or file name
    time: str | None              # when the capture started
    seeds: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    pages: dict[str, PageState] = field(default_factory=dict)
    redirected_from: dict[str, str] = field(default_factory=dict)   # source URL -> target
    redirect_status: dict[str, int] = field(default_factory=dict)    # URL -> 3xx in the index
    # URL -> (where its record is, None if the line does not say; the line's 14-digit
    # time): the record whose payload digest is the page's
    records: dict[str, tuple[RecordLocation | None, str]] = field(default_factory=dict)
    # the crawl options that decide which pages a capture reaches, as its evidence says
    settings: dict = field(default_factory=dict)

    def info(self) -> dict:
        return {"capture": self.label, "time": self.time, "seeds": self.seeds,
                "pages": len(self.pages), "stopReason": self.stop_reason, "settings": self.settings}


@dataclass
class Change:
    kind: str                 # changed, removed, redirected, added
    url: str
    finding: str
    before: PageState | None = None
    after: PageState | None = None

    def to_dict(self) -> dict:
        return {"kind": self.kind, "url": self.url, "finding": self.finding,
                "before": asdict(self.before) if self.before else None,
                "after": asdict(self.after) if self.after else None}


@dataclass
class Diff:
    earlier: CaptureSummary
    later: CaptureSummary
    changes: list[Change]
    unchanged: int
    uncertain: list[Change]   # could not be compared: say so, never guess
    notes: list[str]
    # pages counted unchanged whose payload digests differ: the same content, sent with
    # other chunking or compression
    transfer_only: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for c in self.changes if c.kind == kind) for kind in CHANGE_KINDS}

    def to_dict(self) -> dict:
        return {
            "earlier": self.earlier.info(), "later": self.later.info(),
            "counts": {**self.counts(), "unchanged": self.unchanged, "uncertain": len(self.uncertain),
                       "transferOnly": len(self.transfer_only)},
            "changes": [c.to_dict() for c in self.changes],
            "uncertain": [c.to_dict() for c in self.uncertain],
            "transferOnly": self.transfer_only,
            "notes": self.notes,
        }


# -- reading -----------------------------------------------------------------------

def read_summary(fh: BinaryIO, label: str, container: Container | None = None) -> CaptureSummary:
    """Pages, their status and payload digest, from a WACZ's pages lists and index
    (`container`: the file's, when it was read already)."""
    size = fh.seek(0, 2)
    # what verify refuses outright is not read here either
    container = container or open_container(fh, size, label)
    try:
        # a foreign container comes with its zipfile, which later reads of it use too
        with nullcontext(container.zipfile) if container.zipfile else open_zip(fh, size) as zf:
            names = zf.namelist()
            claims = read_claims(zf, optional=(CAPTURE, DATAPACKAGE), limit=JSON_LIMIT)
            evidence, datapackage = claims.evidence, claims.datapackage
            seeds = evidence.get("seeds")
            summary = CaptureSummary(
                label=label,
                time=text_field(evidence.get("started")) or text_field(datapackage.get("mainPageDate")),
                seeds=[s for s in seeds if isinstance(s, str)] if isinstance(seeds, list) else [],
                stop_reason=text_field(evidence.get("stopReason")),
                settings=_settings(evidence.get("options")),
            )
            lists = [n for n in PAGE_LISTS if n in names]
            if not lists:
                raise ArchiveError(f"{label}: no pages list (pages/pages.jsonl) in this WACZ")
            for name in lists:
                _read_pages(zf, name, summary)
            indexes = sorted(n for n in names if is_cdx_index(n))
            if not indexes:
                raise ArchiveError(f"{label}: no CDXJ index (indexes/index.cdx.gz) in this WACZ")
            for name in indexes:
                _read_index(zf, name, summary)
            if not summary.time:
                stamps = [p.ts for p in summary.pages.values() if p.ts]
                summary.time = min(stamps) if stamps else text_field(datapackage.get("created"))
    except (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, UnicodeDecodeError,
            ValueError, KeyError, OSError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"{label}: cannot read its pages and index ({exc})") from None
    return summary


# options of evidence/capture.json that decide which pages a crawl reaches
REACH = ("depth", "scope", "include", "exclude", "max_pages", "max_bytes", "max_time",
         "obey_robots", "browser")


def _settings(options) -> dict:
    """The options among REACH a capture's evidence gives, as plain values (the file may
    say anything: only numbers, texts, lists of texts, booleans; the browser as on/off)."""
    if not isinstance(options, dict):
        return {}
    settings = {}
    for name in REACH:
        value = options.get(name)
        if name == "browser" and name in options:
            settings[name] = value is not None and value is not False
        elif isinstance(value, (int, float, str, bool)) or value is None and name in options:
            settings[name] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            settings[name] = value
    return settings


def settings_differ(earlier: CaptureSummary, later: CaptureSummary) -> list[str]:
    """`depth 2, then 3` for each setting the two captures give differently."""
    def shown(value) -> str:
        if isinstance(value, list):
            return " ".join(value) or "none"
        return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

    names = [n for n in REACH if n in earlier.settings and n in later.settings]
    return [f"{n.replace('_', '-')} {shown(earlier.settings[n])}, then {shown(later.settings[n])}"
            for n in names if earlier.settings[n] != later.settings[n]]


def _read_pages(zf: zipfile.ZipFile, name: str, summary: CaptureSummary) -> None:
    for number, line in enumerate(member_lines(zf, name, LINE_LIMIT)):
        if not line.strip():
            continue
        entry = parse_json(line)
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or (number == 0 and "format" in entry):
            continue
        status = _digits(entry.get("status"), 3)
        page = PageState(
            url=entry["url"], ts=text_field(entry.get("ts")),
            status=int(status) if status else None,
            title=text_field(entry.get("title")), error=text_field(entry.get("error")),
            redirect_to=text_field(entry.get("redirectTo")),
        )
        summary.pages.setdefault(page.url, page)
        if text_field(entry.get("redirectedFrom")):
            summary.redirected_from[entry["redirectedFrom"]] = page.url


def _read_index(zf: zipfile.ZipFile, name: str, summary: CaptureSummary) -> None:
    for raw in member_lines(zf, name, LINE_LIMIT):
        line = raw.decode("utf-8")
        if not line.strip() or line.startswith(("!", " ")):
            continue
        _key, stamp, fields = parse_cdxj_line(line.rstrip("\r\n"))
        if not isinstance(fields.get("url"), str) or not isinstance(fields.get("digest"), (str, type(None))):
            continue        # no tool writes that: the line says nothing to compare
        status = _digits(fields.get("status"), 3)
        if status and status.startswith("3"):
            summary.redirect_status[fields["url"]] = int(status)
        page = summary.pages.get(fields["url"])
        if page is None or fields.get("recordType", "response") not in PAGE_RECORDS:
            continue
        # The record of the page itself: the one whose status is the page's (a
        # redirect hop to the same URL, say, has another status).
        if page.digest is None or (status is not None and status == str(page.status)):
            page.digest = fields.get("digest")
            summary.records[page.url] = (_location(fields), stamp[:14].ljust(14, "0"))
        if page.status is None and status:
            page.status = int(status)


def _digits(value, most: int) -> str | None:
    """A number as a file may give it (JSON number or text), as its ASCII digits: at most
    `most` of them, nothing else; None otherwise."""
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    return text if text.isascii() and text.isdecimal() and len(text) <= most else None


def _location(fields: dict) -> RecordLocation | None:
    """Where an index line says its record is; None when it does not say it plainly."""
    filename = fields.get("filename")
    offset, length = _digits(fields.get("offset"), 20), _digits(fields.get("length", "0"), 20)
    if not isinstance(filename, str) or offset is None or length is None:
        return None
    return RecordLocation(filename, int(offset), int(length))


# -- comparing ---------------------------------------------------------------------

def _moment(ts: str | None) -> datetime | None:
    """An RFC 3339 time in UTC (one without an offset taken as UTC); None when not one."""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return moment and moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def when(ts: str | None) -> str:
    """`2026-11-25T16:07:46Z` -> `2026-11-25 16:07:46 UTC`, a time with another offset
    moved to UTC (as given when not parseable)."""
    if not ts:
        return "an unknown time"
    moment = _moment(ts)
    return utctime.readable(moment) if moment else ts


def _status(page: PageState) -> str:
    if page.error and not page.status:
        return page.error
    return f"HTTP {page.status}" if page.status else "no response"


UNCHANGED, IGNORED = "unchanged", "ignored"


def same_payload(a: str | None, b: str | None) -> bool | None:
    """Whether two payload digests name the same content; None when they cannot tell
    (one missing, or two algorithms). Tools spell one digest in hex or base32."""
    if not (a and b):
        return None
    parsed_a, parsed_b = parse_digest(a), parse_digest(b)
    if parsed_a is None and parsed_b is None:
        return a == b          # bare values (no algorithm prefix): as text
    if parsed_a is None or parsed_b is None or parsed_a[0] != parsed_b[0]:
        return None
    return parsed_a[1] == parsed_b[1]


def blind_spots(earlier: CaptureSummary, later: CaptureSummary) -> list[str]:
    """Pages online in the earlier capture that the later one could not capture: the links
    they hold were not followed, so pages missing from the later capture may sit behind
    them. (A page never captured, say one robots.txt forbids, hid nothing new.)"""
    return sorted(url for url, page in later.pages.items()
                  if page.failed and url in earlier.pages and earlier.pages[url].online)


def classify(url: str, before: PageState | None, after: PageState | None,
             earlier: CaptureSummary, later: CaptureSummary,
             blind: Sequence[str] = ()) -> tuple[str, str]:
    """(kind, finding) for one URL: a change kind, an uncertain kind, UNCHANGED or IGNORED.
    `blind`: blind_spots(earlier, later)."""
    between = (f"between {when(before.ts if before else earlier.time)} "
               f"and {when(after.ts if after else later.time)}")
    if before is not None and before.online:
        if after is None:
            target = later.redirected_from.get(url)
            if target:
                return "redirected", f"The page {url} was redirected to {target} {between}."
            if url in later.redirect_status:
                return "redirected", (f"The page {url} was replaced by a redirect "
                                      f"(HTTP {later.redirect_status[url]}) {between}.")
            if later.stop_reason:
                return "not-reached", (f"The page {url} was not reached by the later capture, "
                                       f"which stopped at its {later.stop_reason} limit: whether "
                                       "it is still online is unknown.")
            if blind:
                # Missing behind a page that could not be captured is no finding of a takedown.
                others = f" and {len(blind) - 1} more" if len(blind) > 1 else ""
                return "not-reached", (f"The page {url} was not reached by the later capture, "
                                       f"in which {blind[0]}{others} could not be captured: "
                                       "whether it is still online is unknown.")
            return "removed", (f"The page {url} was no longer found on the site {between}: it "
                               "was not linked from any page of the later capture.")
        if after.redirect_to:
            return "redirected", f"The page {url} was redirected to {after.redirect_to} {between}."
        if after.gone:
            return "removed", (f"The page {url} was taken down {between} (it answered "
                               f"{_status(after)} at {when(after.ts)}).")
        if not after.online:
            return "unavailable", (f"The page {url} could not be captured at {when(after.ts)} "
                                   f"({_status(after)}): whether it changed is unknown.")
        same = same_payload(before.digest, after.digest)
        if same is None:
            return "no-digest", (f"The page {url} could not be compared: a content digest is "
                                 "missing from an index, or the two indexes use different "
                                 "digest algorithms.")
        if same:
            return UNCHANGED, ""
        edited = (f" Its title changed from {before.title!r} to {after.title!r}."
                  if before.title != after.title else "")
        return "changed", f"The page {url} changed {between}.{edited}"
    if after is not None and after.online:
        if before is None:
            return "added", (f"The page {url} appeared {between}: it was first captured at "
                             f"{when(after.ts)}.")
        return "added", (f"The page {url}, which answered {_status(before)} at "
                         f"{when(before.ts)}, was online at {when(after.ts)}.")
    # Neither capture has it online: still missing, or only ever an error.
    return (UNCHANGED if before is not None and after is not None else IGNORED), ""


def compare(earlier: CaptureSummary, later: CaptureSummary) -> Diff:
    """Every page of either capture, classified; changes in a stable order."""
    changes: list[Change] = []
    uncertain: list[Change] = []
    unchanged = 0
    blind = blind_spots(earlier, later)
    for url in sorted(set(earlier.pages) | set(later.pages)):
        before, after = earlier.pages.get(url), later.pages.get(url)
        kind, finding = classify(url, before, after, earlier, later, blind)
        if kind == UNCHANGED:
            unchanged += 1
        elif kind != IGNORED:
            (changes if kind in CHANGE_KINDS else uncertain).append(
                Change(kind, url, finding, before, after or later.pages.get(later.redirected_from.get(url, ""))))
    notes = []
    differ = settings_differ(earlier, later)
    if differ:
        # first: every page added or removed below may come from this alone
        notes.append(f"The two captures were made with different settings ({'; '.join(differ)}): "
                     "pages added or removed may be what one capture's settings reached and the "
                     "other's did not, rather than a change of the site.")
    if earlier.seeds and later.seeds and sorted(earlier.seeds) != sorted(later.seeds):
        notes.append("The two captures started from different seed URLs: pages added or "
                     "removed may reflect that rather than a change of the site.")
    if earlier.stop_reason:
        notes.append(f"The earlier capture stopped at its {earlier.stop_reason} limit: pages "
                     "it did not reach may show as added.")
    order = {kind: i for i, kind in enumerate(CHANGE_KINDS)}
    changes.sort(key=lambda c: (order[c.kind], c.url))
    return Diff(earlier, later, changes, unchanged, uncertain, notes)


# -- comparing content, where the payload digests differ -----------------------------

TRANSFER_ONLY = "transfer-only"


class Uncomparable(ArchiveError):
    """A page's content could not be read or decoded: the message says why."""


class Elsewhere(Uncomparable):
    """A page's content is stored in another capture (a revisit after deduplication)."""


@dataclass
class _Side:
    """One capture, open for reading the records of its pages."""
    summary: CaptureSummary
    fh: BinaryIO
    container: Container
    elsewhere: Opener | None = None     # the captures its revisits may point into


class _Bounded:
    """Where decoded content goes: counted, not kept, refused past DECODED_LIMIT (a bomb)."""

    def __init__(self) -> None:
        self.left = DECODED_LIMIT

    def write(self, data: bytes) -> int:
        self.left -= len(data)
        if self.left < 0:
            raise TooLarge(f"its content decodes to more than {DECODED_LIMIT} bytes, more than "
                           "diff reads of a page")
        return len(data)


def _codings(side: _Side, url: str, location: RecordLocation, time: str) -> list[str] | None:
    return codings_at(side.fh, side.container, location, url, time)


def _decoded_sha256(side: _Side, url: str, location: RecordLocation, time: str) -> str:
    """SHA-256 of the page's content, decoded as a browser shows it, read as a stream."""
    result = extract_at(side.fh, side.container, location, url, _Bounded(), time=time,
                        elsewhere=side.elsewhere)
    if result.digests_ok is False:
        raise ArchiveError(f"its record's digests do not match ({result.digest_problems[0]}): it was "
                           "altered or damaged; run `archive verify`")
    if result.truncated:
        raise ArchiveError(f"its capture was cut short (WARC-Truncated: {result.truncated})")
    return result.sha256


def _read(side: _Side, url: str, reader: Callable):
    """reader(side, url, location, time) of the page's record; Uncomparable saying why not."""
    location, time = side.summary.records.get(url, (None, ""))
    try:
        if location is None:
            raise ArchiveError("its index line does not say where its record is")
        return reader(side, url, location, time)
    except ContentElsewhere as exc:
        raise Elsewhere(f"its record in {side.summary.label} is a revisit ({exc})") from None
    except Undecodable as exc:
        why = f"does not decode ({exc.reason})"
    except TooLarge as exc:
        why = f"is not compared: {exc}"
    except (ArchiveError, DecodeError, *UNREADABLE) as exc:
        why = f"cannot be read ({exc})"
    raise Uncomparable(f"its record in {side.summary.label} {why}")


def _content_verdict(url: str, before: _Side, after: _Side) -> str:
    """For a page whose payload digests differ: changed, or TRANSFER_ONLY; Uncomparable
    when its content cannot be read or decoded."""
    if [_read(side, url, _codings) for side in (before, after)] == [[], []]:
        return "changed"    # both sent as they are: their payload digests are of the content
    first, second = (_read(side, url, _decoded_sha256) for side in (before, after))
    return TRANSFER_ONLY if first == second else "changed"


def settle(diff: Diff, before: _Side, after: _Side) -> Diff:
    """`diff` with each page it calls changed (its payload digests differ) compared again
    by its content decoded: unchanged when only how it was sent differs, unknown when its
    content cannot be compared. `before` and `after` are its two captures, open."""
    suspects = [c for c in diff.changes if c.kind == "changed"]
    if not suspects:
        return diff
    verdicts: dict[str, str] = {}
    unknown: list[Change] = []
    unchecked: dict[str, str] = {}      # URL -> what its finding must add
    for change in suspects:
        try:
            verdicts[change.url] = _content_verdict(change.url, before, after)
        except Elsewhere as exc:
            # A scheduled job's captures are deduplicated one against the other: a page
            # unchanged for a while is a revisit, so this is the usual case of a real
            # edit. Its bytes as sent did change; the finding says what was not checked.
            verdicts[change.url] = "changed"
            unchecked[change.url] = (" Its bytes as sent differ; its content was not decoded to rule "
                                     f"out a change of chunking or compression only: {exc}.")
        except Uncomparable as exc:
            unknown.append(Change(UNREADABLE_KIND, change.url, (
                f"The page {change.url} could not be compared: its payload digests differ, but {exc}; "
                "whether its content changed is unknown."), change.before, change.after))
    same = sorted(url for url, verdict in verdicts.items() if verdict == TRANSFER_ONLY)
    return Diff(diff.earlier, diff.later,
                [replace(c, finding=c.finding + unchecked.get(c.url, "")) for c in diff.changes
                 if c.kind != "changed" or verdicts.get(c.url) == "changed"],
                diff.unchanged + len(same), sorted(diff.uncertain + unknown, key=lambda c: c.url),
                diff.notes, diff.transfer_only + same)


def diff_captures(first: Source, second: Source, open_capture: Callable[[str], Source] | None = None) -> Diff:
    """What changed between two captures, in time order whatever the order given; pages
    whose payload digests differ compared by their content decoded (a revisit's content
    looked for in the captures `open_capture` opens, by id). Each file is opened and its
    zip structure read once, for its summary and its records."""
    try:
        with ExitStack() as stack:
            elsewhere = store_opener(stack, open_capture) if open_capture else None
            sides = []
            for source in (first, second):
                fh = stack.enter_context(source.open())
                container = open_container(fh, source.size, source.name)
                sides.append(_Side(read_summary(fh, source.name, container), fh, container, elsewhere))
            earlier, _ = chronological(sides[0].summary, sides[1].summary)
            before, after = sides if earlier is sides[0].summary else sides[::-1]
            return settle(compare(before.summary, after.summary), before, after)
    except CannotCheck as exc:          # a file replaced while it was read
        raise ArchiveError(str(exc)) from None


def chronological(a: CaptureSummary, b: CaptureSummary) -> tuple[CaptureSummary, CaptureSummary]:
    """(earlier, later) by capture time (as instants: times may carry different UTC
    offsets); as text when one is not RFC 3339; the given order when a time is missing."""
    moments = _moment(a.time), _moment(b.time)
    if None not in moments:
        return (b, a) if moments[1] < moments[0] else (a, b)
    if a.time and b.time and b.time < a.time:
        return b, a
    return a, b


def render_text(diff: Diff) -> str:
    lines = [
        f"earlier  {diff.earlier.label}  captured {when(diff.earlier.time)}  ({len(diff.earlier.pages)} pages)",
        f"later    {diff.later.label}  captured {when(diff.later.time)}  ({len(diff.later.pages)} pages)",
        "",
    ]
    lines += [f"Note: {note}" for note in diff.notes]    # before the findings they qualify
    counts = diff.counts()
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no changes"
    sent = (f" ({len(diff.transfer_only)} of them sent with other chunking or compression: the same "
            "content once decoded)" if diff.transfer_only else "")
    lines.append(f"{summary}; {diff.unchanged} unchanged{sent}"
                 + (f"; {len(diff.uncertain)} could not be compared" if diff.uncertain else ""))
    for change in diff.changes:
        lines.append(f"  {change.kind.upper():<10} {change.finding}")
    for change in diff.uncertain:
        lines.append(f"  {'UNKNOWN':<10} {change.finding}")
    lines.append("These findings are read from the captures' indexes (and, where payload digests "
                 "differ, the pages' records); `archive verify` proves each capture intact.")
    # titles and URLs are the web's text: shown, never obeyed by the terminal
    return "\n".join(printable(line) for line in lines) + "\n"
