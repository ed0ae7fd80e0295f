"""A stored capture sent whole or by HTTP range, streamed in small reads from the store
(a folder's file, or S3 ranged GETs): a 10 GB capture never sits in memory."""

from __future__ import annotations

import re

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from archive.errors import NotFound

CHUNK = 1 << 20
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) asked for; None: the whole file; False: not satisfiable."""
    if not header:
        return None
    wanted = RANGE.match(header.strip())
    if not wanted or wanted.groups() == ("", ""):
        return None          # several ranges, or another unit: the whole file (RFC 9110 allows it)
    first, last = wanted.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        return False
    return start, end


def _chunks(store, capture_id: str, start: int, length: int):
    with store.open_capture(capture_id) as fh:
        fh.seek(start)
        left = length
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break        # the object shrank under us: the client sees a short body
            left -= len(data)
            yield data


def capture_response(store, capture_id: str, size: int, range_header: str | None, head: bool,
                     headers: dict[str, str] | None = None) -> Response:
    """The capture (`size` bytes) as a 200, a 206 for one range, or a 416."""
    base = {"Accept-Ranges": "bytes", "Content-Type": "application/wacz", **(headers or {})}
    wanted = byte_range(range_header, size)
    if wanted is False:
        return Response(status_code=416, headers={**base, "Content-Range": f"bytes */{size}"})
    start, end = wanted or (0, size - 1)
    length = max(0, end - start + 1)
    base["Content-Length"] = str(length)
    status = 206 if wanted else 200
    if wanted:
        base["Content-Range"] = f"bytes {start}-{end}/{size}"
    if head or length == 0:
        return Response(status_code=status, headers=base)
    return StreamingResponse(iterate_in_threadpool(_chunks(store, capture_id, start, length)),
                             status_code=status, headers=base)


_SIZES: dict[tuple[int, str], int] = {}


def stored_size(store, capture_id: str) -> int | None:
    """The capture's size (None: not in the store), asked of the store once: a stored
    capture never changes, and replay asks for dozens of ranges of it."""
    key = (id(store), capture_id)
    if key not in _SIZES:
        try:
            _SIZES[key] = store.stat_capture(capture_id).size
        except NotFound:
            return None
        if len(_SIZES) > 10_000:
            _SIZES.clear()
    return _SIZES[key]
