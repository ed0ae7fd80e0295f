"""What the app reads from inside one stored capture: which pages have a screenshot (from
its index, once per capture: a capture never changes), one screenshot, one resource
extracted (decoded, as `archive extract` writes it), and where the WACZ's bytes are."""

from __future__ import annotations

import io
import tempfile
from collections import OrderedDict

from archive.errors import ArchiveError, TooLarge
from archive.wacz.zipreader import open_container
from archive.reader.extract import _index_entries, extract
from archive.verify.html import IMAGE_MAGIC, SCREENSHOT_LIMIT
from archive.errors import CannotCheck
from archive.reader.source import Source
from archive.warc import urns

SPOOL = 8 << 20       # an extracted resource is kept in memory up to this, then on disk


class _Bounded(io.BytesIO):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:
        if self.tell() + len(data) > self.limit:
            raise TooLarge(f"more than {self.limit >> 20} MiB")
        return super().write(data)


_SHOTS: OrderedDict[tuple, frozenset[str]] = OrderedDict()
SHOTS_KEPT = 256


def _screenshot_urls(source: Source) -> frozenset[str]:
    with source.open() as fh:
        container = open_container(fh, source.size, source.name)
        return frozenset(e.url.removeprefix(urns.SCREENSHOT) for e in
                         _index_entries(fh, container, lambda url: bool(url) and url.startswith(urns.SCREENSHOT)))


def screenshot_urls(capture_id: str, source: Source) -> frozenset[str]:
    """Page URLs with a screenshot record ({} when the index cannot be read: verify says why)."""
    key = (capture_id, source.size)      # a stored capture never changes: read its index once
    if key not in _SHOTS:
        try:
            _SHOTS[key] = _screenshot_urls(source)
        except (ArchiveError, CannotCheck, OSError, ValueError):
            return frozenset()
        while len(_SHOTS) > SHOTS_KEPT:
            _SHOTS.popitem(last=False)
    return _SHOTS[key]


def image(source: Source, url: str) -> tuple[bytes, str] | None:
    """(image bytes, media type) of a captured image (a page's screenshot is the image
    `urn:screenshot:<page url>`); None when there is none, or not one a browser may be given
    as a picture (PNG, JPEG, WebP by their first bytes, whatever the record claims)."""
    out = _Bounded(SCREENSHOT_LIMIT)
    try:
        extract(source, url, out)
    except (ArchiveError, CannotCheck, OSError, ValueError):
        return None
    data = out.getvalue()
    kind = next((m for magic, m in IMAGE_MAGIC.items() if data.startswith(magic)), None)
    return (data, kind) if kind else None


def resource(source: Source, url: str):
    """(a file at offset 0 holding the decoded content of `url`, what extract found)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL)
    try:
        found = extract(source, url, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out, found
