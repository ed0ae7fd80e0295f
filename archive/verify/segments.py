"""The records of large local WARC files, checked on every core (archive.verify.pool).

Each WARC file is cut where a gzip member seems to begin, about every SEGMENT bytes, and
each segment is checked by a worker process reading its own bytes of the file, while
the scan (archive.reader.scan) reads the file once more for its hashes. That second read
comes from the page cache; it buys the second core for the record checks, which are
most of the work. The file must not change between the reads: its identity (inode,
size, times) is compared at the start, in every worker, and at the end.

The cuts are guesses and nothing rests on them. A segment counts only when its reader,
started fresh at its cut, read gzip members each holding one whole record, without a
single remark, to exactly the next cut. A reader is in the same state at every member
boundary, so a chain of such segments from byte 0 to the end is read exactly as one
reader reads the whole file. Anything else (a damaged file, a cut inside a member, a
possible decompression bomb) and the file is read again, whole, by one reader: every
verdict and every problem location is the sequential reader's. Segments are inflated
with zlib-ng (archive.reader.fastzlib), a file read whole with zlib, as in the scan; an
uncompressed WARC file is read whole at once.

Workers pay only where the records are many (workers_pay): a file of a few large
records (a video as received and as the finished file) would cost each worker a second
read of it for one record's digests, which threads of the reading process hash side by
side instead (archive.reader.digests).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from operator import attrgetter
from typing import BinaryIO

from archive.files import file_identity
from archive.reader import fastzlib
from archive.errors import CannotCheck
from archive.verify.pool import Batch, Pool, cpus
from archive.reader.scan import CHUNK
from archive.reader.problems import Problems
from archive.reader.warcresult import RecordInfo, WarcResult
from archive.reader.warcs import WarcChecker

SEGMENT = 32 << 20          # compressed bytes checked in one call
PARALLEL_MIN = 48 << 20     # less WARC data than this is checked in the calling process
WINDOW = 1 << 16            # read at a time when looking for a member start
SEARCH = 2 << 20            # searched for a member start after each nominal cut
GZIP_START = b"\x1f\x8b\x08"

_ROW = attrgetter(*RecordInfo.__slots__)


@dataclass
class Part:
    """What a worker found in one segment (records as plain tuples: cheap to pickle)."""
    result: WarcResult
    rows: list[tuple]
    needs_fallback: str | None
    whole: bool                 # the whole file, read by the sequential reader itself
    clean: bool
    out: int                    # bytes decompressed
    headroom: float             # see WarcChecker._expansion
    identity: tuple


def _unpacked(part: Part) -> Part:
    part.result.records, part.rows = [RecordInfo(*row) for row in part.rows], []
    return part


def identity(fh: BinaryIO) -> tuple:
    return file_identity(os.fstat(fh.fileno()))


def check_segment(path: str, name: str, base: int, start: int, end: int, whole: bool) -> Part:
    """Check bytes [start, end) of the WARC file found at `base` in `path`, fed in the
    pieces the scan feeds (CHUNK-aligned from the WARC's first byte). A segment is read
    with zlib-ng; a `whole` file with zlib, exactly as the sequential reader reads it."""
    checker = WarcChecker(name, start=start, inflate=zlib if whole else fastzlib.zlib)
    with open(path, "rb") as fh:
        seen = identity(fh)
        fh.seek(base + start)
        position = start
        while position < end:
            chunk = fh.read(min(CHUNK - position % CHUNK, end - position))
            if not chunk:
                break
            position += len(chunk)
            checker.feed(chunk)
    result = checker.finish()
    rows = [_ROW(r) for r in result.records]
    result.records = []
    return Part(result, rows, checker.needs_fallback, whole, checker.ended_cleanly_at(end),
                checker.output, checker.headroom, seen)


def _member_start(fh: BinaryIO, start: int, end: int) -> int | None:
    """The first place in [start, end) of the file where a gzip member that inflates to
    b"WARC/" seems to begin (a guess: see the module's docstring)."""
    while start < end:
        fh.seek(start)
        window = fh.read(min(WINDOW, end - start) + len(GZIP_START) - 1)
        at = window.find(GZIP_START)
        while 0 <= at < end - start:
            fh.seek(start + at)
            try:
                if zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(fh.read(4096), 5) == b"WARC/":
                    return start + at
            except zlib.error:
                pass
            at = window.find(GZIP_START, at + 1)
        start += WINDOW
    return None


def cuts(fh: BinaryIO, base: int, size: int, segment: int) -> list[int] | None:
    """Where segments of the WARC at `base` begin: 0, then the first likely member start
    within SEARCH bytes after every multiple of `segment`; None when it is not gzip. (Inside
    a member larger than that, a video's, there is none: it is not read through a third
    time looking for one.)"""
    fh.seek(base)
    if fh.read(len(GZIP_START)) != GZIP_START:
        return None
    points = [0]
    for nominal in range(segment, size, segment):
        found = _member_start(fh, base + nominal, base + min(nominal + min(segment, SEARCH), size))
        if found is not None:
            points.append(found - base)
    return points


def _joined(name: str, parts: list[Part]) -> tuple[WarcResult, str | None] | None:
    """One file's result from its parts, or None when it must be read whole."""
    if len(parts) == 1 and parts[0].whole:
        return parts[0].result, parts[0].needs_fallback
    before = 0
    for part in parts:
        if not part.clean or before > part.headroom:
            return None
        before += part.out
    result = WarcResult(name)
    result.records = [record for part in parts for record in part.result.records]
    result.digests_checked = sum(part.result.digests_checked for part in parts)
    result.undigested = sum(part.result.undigested for part in parts)
    result.loose_headers = Problems.joined(part.result.loose_headers for part in parts)
    return result, None


def _calls(path: str, fh: BinaryIO, name: str, base: int, size: int, segment: int) -> list[tuple]:
    points = cuts(fh, base, size, segment)
    if points is None:
        return [(path, name, base, 0, size, True)]
    return [(path, name, base, start, end, False) for start, end in zip(points, points[1:] + [size])]


def _all_calls(path: str, fh: BinaryIO, warcs: list[tuple[str, int, int]], segment: int) -> list[tuple]:
    return [call for name, base, size in warcs for call in _calls(path, fh, name, base, size, segment)]


def workers_pay(calls: list[tuple], segment: int) -> bool:
    """Whether there are enough records for worker processes to pay for their start-up and
    their second read of the file: at least PARALLEL_MIN bytes in segments of about
    `segment` bytes (or in plain files). A longer segment holds a member the cut search
    did not see past, one large record (a video): its block and payload digests are
    spread over the cores by threads of the reading process (archive.reader.digests),
    with no second read, while that process hashes the file and the member."""
    many = sum(end - start for _, _, _, start, end, whole in calls if whole or end - start <= 2 * segment)
    return many >= PARALLEL_MIN


class ParallelWarcs:
    """Checks WARC files at known places of a local file in worker processes; started at
    once, so the caller reads the file for its hashes meanwhile."""

    def __init__(self, path: str, fh: BinaryIO, warcs: list[tuple[str, int, int]],
                 segment: int = 0, processes: bool = True, calls: list[tuple] | None = None) -> None:
        """`warcs`: (name, where its bytes begin in the file, size); `calls`: their
        segments, when already cut."""
        self._path, self._warcs, self._identity = path, warcs, identity(fh)
        self._calls = calls if calls is not None else _all_calls(path, fh, warcs, segment or SEGMENT)
        self._pool = Pool(min(cpus(), len(self._calls)), processes)
        self._batch: Batch = self._pool.run(check_segment, self._calls, _unpacked)

    def results(self, fh: BinaryIO) -> dict[str, tuple[WarcResult, str | None]]:
        """Each file's result and why warcio's reader must decide instead (or None), as
        one reader of each whole file gives them."""
        parts: dict[str, list[Part]] = {}
        for call, part in zip(self._calls, self._batch.wait()):
            parts.setdefault(call[1], []).append(part)
        results = {name: _joined(name, parts[name]) for name, _, _ in self._warcs}
        again = [(self._path, name, base, 0, size, True)
                 for name, base, size in self._warcs if results[name] is None]
        for call, part in zip(again, self._pool.run(check_segment, again, _unpacked).wait()):
            parts[call[1]] = [part]
            results[call[1]] = _joined(call[1], [part])
        seen = {part.identity for group in parts.values() for part in group} | {identity(fh)}
        if seen != {self._identity}:
            raise CannotCheck("the file changed while it was being verified; check it again")
        return results

    def close(self) -> None:
        self._pool.close()


def parallel_worth(path: str | None, warc_bytes: int) -> bool:
    """Worker processes pay for their start-up only on large local files and several cores."""
    return path is not None and warc_bytes >= PARALLEL_MIN and cpus() > 1


def parallel_for(path: str | None, fh: BinaryIO, warcs: list[tuple[str, int, int]]) -> ParallelWarcs | None:
    """Worker processes checking the WARC files (name, where they begin, size) of the file
    at `path`, started; None where they do not pay (the caller checks them as it reads)."""
    if not parallel_worth(path, sum(size for _, _, size in warcs)):
        return None
    calls = _all_calls(path, fh, warcs, SEGMENT)
    return ParallelWarcs(path, fh, warcs, calls=calls) if workers_pay(calls, SEGMENT) else None
