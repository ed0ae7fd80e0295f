"""Reading one captured resource out of a WACZ: found through the index (or, without
one, by reading the WARC files), its digests checked by warcio as it is decoded."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from archive.errors import ArchiveError, NotFound
from archive.httpmessage import PayloadSplitter, has_http_headers
from archive.ids import is_capture_id
from archive.wacz.bounds import Meter
from archive.wacz.zipreader import Container, Member, iter_member, open_container, open_zip
from archive.reader.decode import CutShort, DecodeError, PayloadDecoder
from archive.reader.members import IndexEntry, IndexSink
from archive.errors import CannotCheck
from archive.reader.location import RecordLocation
from archive.reader.scan import CHUNK
from archive.reader.source import Source
from archive.reader.digests import same_digest
from archive.reader.warcheader import target_uri
from archive.reader.warcioreader import bounded_iterator
from archive.reader.warcresult import Bomb
from archive.reader.warcs import WarcChecker
from archive.warc.cdxj import timestamp14
from archive.wacz.claims import read_claims
from archive.wacz.names import CAPTURE, WARC_PREFIX, is_cdx_index

CONTENT_TYPES = ("response", "resource", "revisit")
# what warcio, zlib and zipfile raise on a damaged or misplaced record
UNREADABLE = (ArchiveLoadFailed, zlib.error, EOFError, ValueError, OSError, zipfile.BadZipFile,
              NotImplementedError, RuntimeError, Bomb)     # RuntimeError: an encrypted member


@dataclass
class Extracted:
    url: str
    record_type: str
    record_id: str | None
    date: str | None
    warc_file: str
    offset: int
    content_type: str | None
    http_status: str | None
    block_digest: str | None
    payload_digest: str | None
    digests_ok: bool | None          # None: the record carries no digest
    digest_problems: list[str]
    bytes_written: int
    sha256: str                      # of the decoded payload written out
    captures_of_url: int
    truncated: str | None = None     # WARC-Truncated of the record written out
    revisit_of: str | None = None    # for a revisit: the record whose payload was written
    loose_headers: bool = False      # its HTTP headers do not end with CRLF CRLF (LOOSE_HEADERS)
    decoded: list[str] | None = None  # the codings undone, in order; None: written as transferred


class _Window:
    """A read-only window of a seekable file (one record of a STORED WARC member)."""

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        self.fh, self.pos, self.end = fh, start, start + length

    def read(self, size: int = -1) -> bytes:
        size = self.end - self.pos if size is None or size < 0 else min(size, self.end - self.pos)
        if size <= 0:
            return b""
        self.fh.seek(self.pos)
        data = self.fh.read(size)
        self.pos += len(data)
        return data

    def tell(self) -> int:
        return self.pos


def _member_chunks(fh, container: Container, member: Member, limit: int,
                   meter: Meter | None = None) -> Iterator[bytes]:
    """iter_member, a member that cannot be read whole (bad CRC, bad deflate data) an ArchiveError."""
    try:
        yield from iter_member(fh, container, member, limit, meter)
    except UNREADABLE as exc:
        raise ArchiveError(f"{member.name} cannot be read ({exc}): run `archive verify`") from None


class _MatchingIndex(IndexSink):
    """An index read for some URLs: every line parsed (a bad one is a problem), only the
    entries of those URLs kept, so an index of millions of lines stays out of memory."""

    def __init__(self, name: str, keep: Callable[[str | None], bool]) -> None:
        super().__init__(name)
        self.keep = keep

    def line(self, number: int, line: bytes) -> None:
        before = len(self.entries)
        super().line(number, line)
        if len(self.entries) > before and not self.keep(self.entries[-1].url):
            self.entries.pop()


def _index_entries(fh, container: Container, keep: Callable[[str | None], bool]) -> Iterator[IndexEntry]:
    """The index entries of the URLs `keep` takes. An index that cannot be read whole is
    refused: a line lost (or the end of a gzip stream cut off) could be the latest capture."""
    for m in container.members:
        if not is_cdx_index(m.name):
            continue
        sink = _MatchingIndex(m.name, keep)
        meter = Meter()
        sink.metered(meter)
        for chunk in _member_chunks(fh, container, m, 1 << 34, meter):
            sink.feed(chunk)
        sink.finish()
        if sink.problems:
            raise ArchiveError(f"{m.name}: {sink.problems[0].message}; run `archive verify`")
        yield from sink.entries


def _index_locations(fh, container: Container, url: str) -> list[tuple[str, RecordLocation]]:
    """(sort key, location) of every indexed record of `url`; the key begins with the
    line's 14-digit time."""
    found = []
    for entry in _index_entries(fh, container, lambda found: found == url):
        if entry.length is not None and not entry.length.isdigit():
            raise ArchiveError(f"an index line of {url} gives the length {entry.length[:40]!r}: the "
                               "capture's index is wrong; run `archive verify`")
        length = int(entry.length or 0)        # 0: not given, the record says
        # the latest by the index's time (the index check holds it to the record's), as
        # replay picks it; in line order within a second
        found.append((entry.timestamp[:14].ljust(14, "0") + str(entry.number).zfill(12),
                      RecordLocation(entry.filename, entry.offset, length)))
    return found


def _loose(url: str) -> str:
    """A URL as people type it: no scheme, no fragment, no trailing slash, any case."""
    return url.split("#", 1)[0].split("://", 1)[-1].rstrip("/").lower()


def _near_misses(fh, container: Container, url: str) -> list[str]:
    """Indexed URLs that differ from `url` only as people mistype it (http for https...)."""
    wanted = _loose(url)
    urls = {e.url for e in _index_entries(fh, container, lambda found: bool(found) and _loose(found) == wanted)}
    return sorted(u for u in urls if u)[:3]


def _scanned_locations(fh, container: Container, url: str) -> list[tuple[str, RecordLocation]]:
    """Without an index: every record of `url`, by reading the WARC files."""
    found = []
    for m in container.members:
        if not m.name.startswith(WARC_PREFIX):
            continue
        checker = WarcChecker(m.name)
        checker.meter = Meter()
        for chunk in _member_chunks(fh, container, m, 1 << 40, checker.meter):
            checker.feed(chunk)
        for r in checker.finish().records:
            if r.uri == url and r.record_type in CONTENT_TYPES:      # by WARC-Date, then file order
                found.append((f"{(r.date or '').ljust(14, '0')}\0{m.name}\0{r.offset:020d}",
                              RecordLocation(m.name.rsplit("/", 1)[-1], r.offset, r.length)))
    return found


def _warc_member(container: Container, filename: str) -> Member:
    """The WARC file an index line names (relative to archive/, as the index check and
    ReplayWeb.page read it), or a member named in full or by its file name."""
    # never a member outside archive/ (a WARC record hidden in evidence/ or pages/)
    member = container.get(WARC_PREFIX + filename) or (
        container.get(filename) if filename.startswith(WARC_PREFIX) else None)
    base = filename.rsplit("/", 1)[-1]
    member = member or next((m for m in container.members
                             if m.name.startswith(WARC_PREFIX) and m.name.rsplit("/", 1)[-1] == base), None)
    if member is None:
        raise ArchiveError(f"the index points at {filename}, which is not a WARC file of the capture")
    return member


def record_stream(fh, container: Container, location: RecordLocation) -> BinaryIO:
    """A reader positioned at a record (for STORED members without reading the rest), up
    to the member's end: where the record ends is the record's to say, not the index's
    (a window cut at a shorter index length made a record look whole, its digests unchecked)."""
    member = _warc_member(container, location.member)
    if not 0 <= location.offset < member.size:
        raise ArchiveError(f"the index points at byte offset {location.offset} of {member.name}, which holds "
                           f"{member.size} bytes: the capture's index is wrong; run `archive verify`")
    if member.data_offset is not None:
        return _Window(fh, member.data_offset + location.offset, member.size - location.offset)
    stream = container.zipfile.open(member.info)
    stream.seek(location.offset)
    return stream


def read_record_block(source: Source, location: RecordLocation, limit: int) -> bytes | None:
    """The content of one record (a screenshot), at most `limit` bytes; None if unreadable."""
    with source.open() as fh:
        container = open_container(fh, source.size, source.name)
        try:
            record = next(bounded_iterator(record_stream(fh, container, location)))
            data = record.content_stream().read(limit + 1)
        except Exception:  # noqa: BLE001 - a damaged record simply has no picture
            return None
    return data if len(data) <= limit else None


def _chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _target(headers) -> str | None:
    """WARC-Target-URI as the index spells it (wget's <...> removed, spaces escaped)."""
    return target_uri(headers.get_header("WARC-Target-URI"))


def _open_at(fh, container: Container, location: RecordLocation) -> tuple:
    """(record, its ArchiveIterator, which knows the record's length once it is read)."""
    try:
        iterator = bounded_iterator(record_stream(fh, container, location))
        return next(iterator), iterator
    except StopIteration:
        raise ArchiveError(f"no record at {location.member} offset {location.offset}") from None
    except UNREADABLE as exc:
        raise ArchiveError(f"no readable record at {location.member} byte offset {location.offset} "
                           f"({_first_line(exc)}): run `archive verify`") from None


class AlteredRecord(ArchiveError):
    """The record does not decode and its digests do not match: it does not verify (exit 1)."""


class ContentElsewhere(ArchiveError):
    """A revisit whose content is stored in another capture (the one it was deduplicated against)."""


class Undecodable(ArchiveError):
    """The content does not decode (an encoding this tool does not know, damaged data);
    `reason` says why, without the advice for `archive extract`."""

    def __init__(self, url: str, reason: DecodeError) -> None:
        super().__init__(f"the content of {url} does not decode: {reason}; --raw writes the payload "
                         "as transferred (chunk framing and content encoding kept)")
        self.reason = str(reason)


def _next_piece(chunks: Iterator[bytes], url: str, record) -> bytes | None:
    try:
        return next(chunks, None)
    except UNREADABLE as exc:
        raise ArchiveError(f"the record of {url} cannot be read to its end ({_first_line(exc)}): "
                           "run `archive verify`") from None
    except DecodeError as exc:
        if _digests_fail(record):
            raise AlteredRecord(f"the content of {url} does not decode ({exc}) and its record's digests "
                                "do not match: it was altered or damaged; run `archive verify`") from None
        raise Undecodable(url, exc) from None


def _digests_fail(record) -> bool:
    """The rest of the record read for its digests: whether they fail."""
    try:
        while record.raw_stream.read(CHUNK):
            pass
    except UNREADABLE:
        return True
    return bool(record.digest_checker.problems)


def _whole(record, iterator, location: RecordLocation, url: str) -> None:
    try:
        _read_whole(record, iterator, location)
    except UNREADABLE as exc:
        raise ArchiveError(f"the record of {url} cannot be read to its end ({_first_line(exc)}): "
                           "run `archive verify`") from None


def _read_whole(record, iterator, location: RecordLocation) -> None:
    """After its payload: the rest of the record's block (for its digests), which must be
    all its Content-Length says, and the record as long as the index says."""
    while record.raw_stream.read(CHUNK):
        pass
    if record.raw_stream.limit:
        raise ArchiveError(f"the record at {location.member} byte offset {location.offset} ends "
                           f"{record.raw_stream.limit} bytes before its Content-Length: run `archive verify`")
    length = iterator.get_record_length()
    if location.length and length != location.length:
        raise ArchiveError(f"the index gives the record at {location.member} byte offset {location.offset} "
                           f"{location.length} bytes, it has {length}: the capture's index is wrong; "
                           "run `archive verify`")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)[:200]


def _latest(fh, container: Container, found: list[tuple[str, RecordLocation]], url: str) -> tuple[RecordLocation, int]:
    """The location of the latest content record of `url`, and how many there are. Index lines are picked by their
    time: each line's record must be of `url` at that time, or an altered time would hand
    out an older version as the latest; lines of other records of the URL (metadata, which
    other tools index too) are passed over. Records found by scanning the WARCs (keys
    date\0member\0offset, from the records themselves) are content."""
    content = [(key, location) for key, location in found
               if "\0" in key or _indexed_record(fh, container, location, url, key[:14])[0].rec_type
               in CONTENT_TYPES]
    if not content:
        raise ArchiveError(f"the index holds no content record of {url} (only other kinds of record)")
    return max(content, key=lambda item: item[0])[1], len(content)


def _content_record(fh, container: Container, location: RecordLocation, url: str, time: str | None = None):
    """The record at `location`, which must be content and of `url` (and at `time`, when
    given): the index is not trusted to point at the right one (an altered index would
    hand out another page). With its ArchiveIterator."""
    record, iterator = _indexed_record(fh, container, location, url, time)
    if record.rec_type not in CONTENT_TYPES:
        raise ArchiveError(f"the index points at a {record.rec_type} record, not content")
    return record, iterator


def _indexed_record(fh, container: Container, location: RecordLocation, url: str, time: str | None = None):
    """(record, its ArchiveIterator) at an index line's location, of `url` (and at `time`,
    the line's 14-digit time, when given), as the line says."""
    record, iterator = _open_at(fh, container, location)
    found = _target(record.rec_headers)
    if found != url:
        raise ArchiveError(f"the index points {url} at a record of {found} ({location.member} at byte "
                           f"offset {location.offset}): the capture's index is wrong; run `archive verify`")
    date = record.rec_headers.get_header("WARC-Date") or ""
    if time and timestamp14(date) != time:
        raise ArchiveError(f"the index gives {url} the time {time}, its record ({location.member} at byte "
                           f"offset {location.offset}) says {date}: the capture's index is wrong; "
                           "run `archive verify`")
    return record, iterator


# capture id -> (file, container) of that capture, opened for the length of one call; None
# when it cannot be had (not in the store, unreadable)
Opener = Callable[[str], "tuple[BinaryIO, Container] | None"]
MAX_CHAIN = 64      # captures followed back from a revisit to its original


def _original(fh, container: Container, revisit, url: str, elsewhere: Opener | None = None):
    """(record, its ArchiveIterator, location, file, container, capture id or None) of the
    response a revisit stands for: in this capture, or, given `elsewhere`, in the captures
    it was deduplicated against, each naming the one before it."""
    headers = revisit.rec_headers
    refers = (_refers_uri(headers), headers.get_header("WARC-Refers-To"),
              headers.get_header("WARC-Refers-To-Date"))
    found = _find_original(fh, container, *refers)
    if found:
        return (*found, fh, container, None)
    if not has_http_headers("revisit", url, 1):
        # a media file stored as a revisit refers to a response of the same capture, always
        raise AlteredRecord(f"{url} is stored as a revisit of {refers[1] or 'a record'} ({refers[0]}, "
                            f"{refers[2]}), which is not in this capture: the file's bytes are "
                            "missing; run `archive verify`")
    earlier = capture = _earlier_capture(fh, container)
    followed: list[str] = []
    while elsewhere is not None and capture and capture not in followed and len(followed) < MAX_CHAIN:
        followed.append(capture)
        opened = elsewhere(capture)
        if opened is None:
            break
        found = _find_original(*opened, *refers)
        if found:
            return (*found, *opened, capture)
        capture = _earlier_capture(*opened)
    refers_uri, refers_id, refers_date = refers
    raise ContentElsewhere(
        f"{url} is stored as a revisit: its content was unchanged since {refers_uri or 'another record'}"
        f" captured {refers_date or 'earlier'} (record {refers_id or 'not named'}), which is not in this "
        + (f"capture nor in {', '.join(followed)} before it" if followed else
           "capture; extract that URL from the earlier capture the revisit points into"
           + (f" ({earlier}, as this capture's evidence/capture.json says)" if earlier else "")))


def _find_original(fh, container: Container, refers_uri: str | None, refers_id: str | None,
                   refers_date: str | None):
    """(record, iterator, location) of the record a revisit names, in one capture; None."""
    if not refers_uri:
        return None
    for _, location in sorted(_index_locations(fh, container, refers_uri)
                              or _scanned_locations(fh, container, refers_uri), key=lambda i: i[0]):
        record, iterator = _open_at(fh, container, location)
        h = record.rec_headers
        if record.rec_type != "revisit" and _target(h) == refers_uri and (
                h.get_header("WARC-Record-ID") == refers_id if refers_id
                else h.get_header("WARC-Date") == refers_date):
            return record, iterator, location
    return None


def store_opener(stack: ExitStack, open_capture: Callable[[str], Source]) -> Opener:
    """An Opener over `open_capture` (capture id -> Source), its files closed with `stack`."""
    opened: dict[str, tuple | None] = {}     # each capture opened once, however many revisits

    def opener(capture_id: str):
        if not is_capture_id(capture_id):
            return None     # the file being read names it: never a path to open
        if capture_id not in opened:
            try:
                source = open_capture(capture_id)
                fh = stack.enter_context(source.open())
                opened[capture_id] = fh, open_container(fh, source.size, source.name)
            except (ArchiveError, CannotCheck, OSError):
                opened[capture_id] = None
        return opened[capture_id]
    return opener


def _earlier_capture(fh, container: Container) -> str | None:
    """The capture this one was deduplicated against, as its evidence file names it."""
    member = container.get(CAPTURE)
    if member is None:
        return None
    try:
        evidence = json.loads(b"".join(iter_member(fh, container, member, 1 << 24)))
        earlier = evidence["dedupAgainst"]["capture"]
    except Exception:  # noqa: BLE001 - only a hint: an unreadable file names nothing
        return None
    return earlier if isinstance(earlier, str) else None


def _loose_headers(fh, container: Container, location: RecordLocation) -> bool:
    """The record's HTTP headers do not end with CRLF CRLF: what was written starts where
    warcio starts the body, not where browsers or ReplayWeb.page do."""
    try:
        record = next(ArchiveIterator(record_stream(fh, container, location), no_record_parse=True))
        if not has_http_headers(record.rec_type, _target(record.rec_headers), record.length or 0):
            return False
        splitter = PayloadSplitter()
        while not splitter.done and (chunk := record.raw_stream.read(CHUNK)):
            splitter.feed(chunk)
    except UNREADABLE + (StopIteration,):
        return False
    return splitter.loose


def _decoder(record, url: str, framed: bool) -> PayloadDecoder:
    try:
        return PayloadDecoder(record.http_headers, framed)
    except DecodeError as exc:
        raise Undecodable(url, exc) from None


def _decoded(record, decoder: PayloadDecoder | None) -> Iterator[bytes]:
    """The record's payload, decoded unless `decoder` is None, read to the end of its block
    (for its digests). A record cut short (WARC-Truncated) gives what decodes."""
    for chunk in _chunks(record.raw_stream):
        yield from decoder.feed(chunk) if decoder else (chunk,)
    try:
        yield from decoder.finish() if decoder else ()
    except CutShort:
        if not record.rec_headers.get_header("WARC-Truncated"):
            raise


def _refers_uri(headers) -> str | None:
    return target_uri(headers.get_header("WARC-Refers-To-Target-URI"))


def codings_at(fh, container: Container, location: RecordLocation, url: str,
               time: str | None = None) -> list[str] | None:
    """The codings a browser undoes (chunked, gzip...) to show the content record of `url`
    at `location`, from its own HTTP headers; None when what it holds is known only by
    decoding it: it has no HTTP headers, they name a coding or Content-Length this tool
    cannot undo, or the record was cut short (WARC-Truncated)."""
    record, _ = _content_record(fh, container, location, url, time)
    if record.http_headers is None or record.rec_headers.get_header("WARC-Truncated"):
        return None
    try:
        return PayloadDecoder(record.http_headers).undone
    except DecodeError:
        return None


def extract(source: Source, url: str, out: BinaryIO, raw: bool = False,
            elsewhere: Opener | None = None) -> Extracted:
    """Write the decoded payload of the latest capture of `url` to `out` (for a revisit,
    the payload of the record it refers to, in this capture or, given `elsewhere`, in the
    earlier captures it was deduplicated against); with `raw`, the payload as
    transferred (chunk framing and content encoding kept)."""
    with source.open() as fh:
        container = open_container(fh, source.size, source.name)
        found = _index_locations(fh, container, url) or _scanned_locations(fh, container, url)
        if not found:
            near = _near_misses(fh, container, url)
            raise NotFound(f"{url} was not captured in {source.name}"
                           + (f"; it holds {', '.join(near)}" if near else ""))
        location, captures = _latest(fh, container, found, url)
        return extract_at(fh, container, location, url, out, raw, captures, elsewhere=elsewhere)


def extract_at(fh, container: Container, location: RecordLocation, url: str, out, raw: bool = False,
               captures: int = 1, time: str | None = None, elsewhere: Opener | None = None) -> Extracted:
    """extract() of the content record of `url` at `location` (an index line's, of `time`
    when given), in an open container."""
    record, iterator = _content_record(fh, container, location, url, time)
    headers = record.rec_headers
    content, revisit_of, problems, content_at = record, None, [], location
    if record.rec_type == "revisit":
        _whole(record, iterator, location, url)     # its own block (HTTP headers), for its digest
        problems = list(record.digest_checker.problems)
        content, iterator, original, fh, container, held_by = _original(fh, container, record, url, elsewhere)
        content_at = original
        revisit_of = (f"{content.rec_headers.get_header('WARC-Record-ID')} "
                      f"({_target(content.rec_headers)}, {content.rec_headers.get_header('WARC-Date')}) "
                      f"in {original.member} at byte offset {original.offset}"
                      + (f" of capture {held_by}" if held_by else ""))
        claimed = headers.get_header("WARC-Payload-Digest")
        held = content.rec_headers.get_header("WARC-Payload-Digest")
        if not (claimed and held and same_digest(claimed, held)):
            problems.append(f"the revisit's payload digest {claimed} differs from its original's {held}")
        # a revisit of a URI without HTTP (a media file, urn:media:...) stands for a
        # resource: the bytes whose SHA-256 it names, the response's payload as transferred
        raw = raw or not has_http_headers("revisit", url, 1)
    loose = _loose_headers(fh, container, content_at)
    # loose headers: its Content-Length counts from another byte (the WARNING says so)
    decoder = None if raw else _decoder(content, url, framed=not loose)
    sha, written = hashlib.sha256(), 0
    chunks = _decoded(content, decoder)
    while (chunk := _next_piece(chunks, url, content)) is not None:
        out.write(chunk)     # outside the reading: a write error (EPIPE, a full disk) is not the record's
        sha.update(chunk)
        written += len(chunk)
    _whole(content, iterator, content_at, url)
    checker = content.digest_checker
    problems = list(checker.problems) + problems
    ok = False if problems else checker.passed
    return Extracted(
        url=url, record_type=record.rec_type, record_id=headers.get_header("WARC-Record-ID"),
        date=headers.get_header("WARC-Date"), warc_file=location.member, offset=location.offset,
        content_type=record.http_headers.get_header("Content-Type") if record.http_headers
        else headers.get_header("Content-Type"),
        http_status=record.http_headers.get_statuscode() if record.http_headers else None,
        block_digest=content.rec_headers.get_header("WARC-Block-Digest"),
        payload_digest=content.rec_headers.get_header("WARC-Payload-Digest"),
        digests_ok=ok, digest_problems=problems,
        bytes_written=written, sha256=sha.hexdigest(), captures_of_url=captures,
        truncated=content.rec_headers.get_header("WARC-Truncated"), revisit_of=revisit_of,
        loose_headers=loose, decoded=decoder.undone if decoder else None,
    )


def media_items(source: Source) -> list[dict]:
    """What the capture says became of each video and audio item it found (its
    evidence/capture.json, under the signature: `archive verify` checks it), numbered
    from 1 in `item`; [] for a capture made without --media or by another tool."""
    with source.open() as fh:
        try:
            data = read_claims(open_zip(fh, source.size), optional=(CAPTURE,)).evidence
        except UNREADABLE as exc:
            raise CannotCheck(f"{source.name}: its {CAPTURE} cannot be read ({exc})") from None
    items = (data.get("media") or {}).get("items") or []
    listed = []
    for number, item in enumerate((i for i in items if isinstance(i, dict)), 1):
        listed.append({"item": number, **{k: v for k, v in item.items()
                                          if isinstance(v, (str, int, float)) and not isinstance(v, bool)}})
    return listed
