"""How media (video, audio) are captured. Kept apart from media.py (which loads yt-dlp,
slow to import) so that the crawl options, the CLI and a resumed capture's saved request
can carry them without loading it."""

from __future__ import annotations

from dataclasses import dataclass

from archive.errors import ArchiveError

DEFAULT_MAX_SIZE = 4_000_000_000     # per item, like other size limits


@dataclass
class MediaOptions:
    max_size: int = DEFAULT_MAX_SIZE   # bytes of one item; a larger one is skipped
    format: str | None = None          # yt-dlp format selector; None: the best original
    live: float | None = None          # seconds of a live stream to record; None: not captured
    cookies: str | None = None         # a Netscape cookies.txt given to yt-dlp (never sealed)

    def __post_init__(self) -> None:
        if self.max_size <= 0:
            raise ArchiveError("--media-max-size must be positive")
        if self.live is not None and self.live <= 0:
            raise ArchiveError("--media-live must be a positive duration")
        if self.format is not None and not self.format.strip():
            raise ArchiveError("--media-format is empty: give a yt-dlp format selector")
