"""What one read of a WACZ gathers for the checks: which members go to which sink as
they are read, the small JSON files read ahead, and each WARC's result (those the fast
reader hands over read again by warcio's)."""

from __future__ import annotations

from typing import BinaryIO

from archive.reader.members import INDEX_FLOOR, MIN_RECORD, IdxSink, IndexSink, JsonSink, PagesSink, WarcSink
from archive.reader.warcioreader import check_warc_slow
from archive.reader.warcresult import WarcResult
from archive.wacz.bounds import Meter
from archive.wacz.names import CAPTURE, DIGEST_FILES, PAGES, is_block_index, is_cdx_index, is_warc
from archive.wacz.zipreader import MEMBER_LIMIT, Container, iter_member
from archive.wacz.ziplayout import LOCAL, LOCAL_SIG, METHOD_STORED, DOS_DATE, DOS_TIME, FLAGS, NEEDED, NEEDED64


def looks_ours(fh: BinaryIO) -> bool:
    """The first local header holds the fixed values only our writer uses (other tools
    write real dates and times), so a damaged capture of ours is judged as ours."""
    fh.seek(0)
    head = fh.read(LOCAL.size)
    if len(head) < LOCAL.size:
        return False
    fields = LOCAL.unpack(head)
    return (fields[0] == LOCAL_SIG and fields[1] in (NEEDED, NEEDED64) and fields[2] == FLAGS
            and fields[3] == METHOD_STORED and (fields[4], fields[5]) == (DOS_TIME, DOS_DATE))


def sinks_for(container: Container, warcs: bool) -> tuple[dict, set[str]]:
    """A sink for each member to check as it is read (WARC files only when `warcs`: they
    may be checked apart, archive.verify.segments), and which ones run on a thread."""
    sinks, threaded = {}, set()
    warc_bytes = sum(m.size for m in container.members if is_warc(m.name))
    for m in container.members:
        if is_warc(m.name):
            if warcs:
                sinks[m.name] = WarcSink(m.name)
                threaded.add(m.name)
        elif is_cdx_index(m.name):
            sinks[m.name] = IndexSink(m.name, INDEX_FLOOR + warc_bytes // MIN_RECORD)
        elif is_block_index(m.name):
            sinks[m.name] = IdxSink(m.name)
        elif m.name == PAGES:
            sinks[m.name] = PagesSink(m.name)
        elif m.name in DIGEST_FILES or m.name == CAPTURE:
            sinks[m.name] = JsonSink(m.name)
    return sinks, threaded


def read_small(fh, container: Container, name: str) -> dict | None:
    member = container.get(name)
    if member is None:
        return None
    sink = JsonSink(name)
    try:
        for chunk in iter_member(fh, container, member, sink.limit + 1):
            sink.feed(chunk)
    except Exception:  # noqa: BLE001 - judged again when the member is scanned
        return None
    return sink.parse()[0]


def plain_zip(container: Container, name: str) -> bool:
    """A zip that does not even claim to be a WACZ (a .docx, a .zip of documents): no
    manifest, no WARC, not named .wacz. It is checked as any file, against --sha256."""
    names = [m.name for m in container.members]
    return not (name.lower().endswith(".wacz") or any(n in DIGEST_FILES or is_warc(n) for n in names))


def checked_warcs(sinks: dict) -> dict[str, tuple[WarcResult, str | None]]:
    """What the fast reader said of each WARC fed to a sink, and whether it hands over."""
    return {name: (sink.result, sink.checker.needs_fallback) for name, sink in sinks.items()
            if isinstance(sink, WarcSink) and sink.result is not None}


def warc_results_of(fh, container: Container, checked: dict) -> list[WarcResult]:
    """Each WARC's result; those the fast reader handed over are read again by warcio's."""
    results = []
    for m in container.members:
        if m.name not in checked:
            continue
        result, fallback = checked[m.name]
        if fallback:
            meter = Meter()
            stream = _MemberStream(iter_member(fh, container, m, MEMBER_LIMIT, meter))
            result = check_warc_slow(stream, m.name, meter)
        results.append(result)
    return results


class _MemberStream:
    """A file-like reader over member chunks (for warcio's reader)."""

    def __init__(self, chunks) -> None:
        self._chunks, self._buffer, self._pos = chunks, b"", 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - a damaged member ends the stream
                raise OSError(str(exc)) from None
            self._buffer += chunk
        size = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self._pos += len(out)
        return out

    def tell(self) -> int:
        return self._pos
