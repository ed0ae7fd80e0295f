"""Where a record's payload begins: the same byte for capture and verify, and the same
byte warcio finds, however the block is cut into pieces."""

from __future__ import annotations

import io
import sys
from collections import Counter
from contextlib import contextmanager
from typing import Iterator

from hypothesis import given, settings, strategies as st
from warcio.statusandheaders import StatusAndHeadersParser

from archive import httpmessage
from archive.httpmessage import PayloadSplitter

# what matters to the rule: line ends, ASCII white space, other bytes
# (ASCII and Unicode white space as warcio's text reading sees it, in UTF-8 and Latin-1)
PIECES = st.lists(st.sampled_from([
    b"a", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x0b", b"\x0c", b"\x00", b"\x1c", b"\x1f",
    b"\xa0", b"\x85", b"\xc2", b"\xc2\xa0", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe3\x80\x80",
    b"\xe2\x80", b"\xc3\xa9", b"HTTP/1.1 200 OK"]), max_size=40).map(b"".join)


def _split(data: bytes, cuts: list[int], view: bool, loose: list | None = None) -> int | None:
    splitter, offset = PayloadSplitter(), 0
    bounds = sorted(set(c % (len(data) + 1) for c in cuts))
    for start, end in zip([0, *bounds], [*bounds, len(data)]):
        piece = data[start:end]
        found = splitter.feed(memoryview(piece) if view else piece)
        if found is not None:
            if loose is not None:
                loose.append(splitter.loose)
            return offset + found
        offset += len(piece)
    return None


def _warcio(data: bytes) -> int:
    """Where warcio's parser stops reading header lines (the end: no payload)."""
    stream = io.BytesIO(data)
    try:
        StatusAndHeadersParser([], verify=False).parse(stream)
    except EOFError:            # an empty block
        return 0
    return stream.tell()


@settings(max_examples=2000, deadline=None)
@given(data=PIECES, cuts=st.lists(st.integers(0, 60), max_size=4), view=st.booleans())
def test_the_split_does_not_depend_on_the_pieces(data, cuts, view):
    assert _split(data, cuts, view) == _split(data, [], False)


@settings(max_examples=3000, deadline=None)
@given(data=PIECES)
def test_the_split_is_where_warcio_stops_reading_headers(data):
    ours = _split(data, [], False)
    assert (len(data) if ours is None else ours) == _warcio(data), data


@settings(max_examples=2000, deadline=None)
@given(data=PIECES, cuts=st.lists(st.integers(0, 60), max_size=4), view=st.booleans())
def test_loose_says_the_headers_did_not_end_with_crlf_crlf(data, cuts, view):
    """Browsers end headers at the first empty line, warcio.js at the first CRLF CRLF:
    `loose` flags the blocks where warcio's end is not also theirs (an empty status line,
    no headers at all, is read alike by all)."""
    loose: list[bool] = []
    end = _split(data, cuts, view, loose)
    if end is None:
        return
    assert loose == [not (data[:end].endswith(b"\r\n\r\n") or data[:end] in (b"\n", b"\r\n"))], (data, end)


@contextmanager
def python_calls_into(module) -> Iterator[Counter]:
    """The Python functions of `module` called meanwhile (on this thread), by name: seen
    by a profiler, the code observed is not replaced."""
    calls: Counter = Counter()
    source = module.__file__

    def profile(frame, event, arg) -> None:
        if event == "call" and frame.f_code.co_filename == source:
            calls[frame.f_code.co_name] += 1
    before = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(before)


def test_a_flood_of_header_lines_costs_no_python_work_per_line():
    """A record whose block is header lines without end (a hostile WARC) was split line
    by line in Python, 2 MB/s: a 1 GB record held `archive verify` for eight minutes.
    Lines that cannot be blank are now skipped in C; only a piece's first line is looked at."""
    splitter = PayloadSplitter()
    data = b"HTTP/1.1 200 OK\r\n" + b"X-Header: value\r\n" * 100_000
    pieces = range(0, len(data), 65536)
    with python_calls_into(httpmessage) as calls:
        for start in pieces:
            assert splitter.feed(data[start:start + 65536]) is None
    assert calls["feed"] == len(pieces), calls      # the profiler sees our code
    # a few calls a piece (feed, and the line the piece starts in: four today), none a
    # line (3,855 lines a piece, three calls each when they were looked at in Python)
    assert sum(calls.values()) <= 8 * len(pieces), calls
    assert splitter.feed(b"\r\nbody") == 2 and not splitter.loose
