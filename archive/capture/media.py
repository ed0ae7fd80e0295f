"""Media capture: the video and audio of a page downloaded by yt-dlp (its Python API),
with every request it makes going through a recording proxy of ours, so each manifest,
segment, key and API answer is a request/response pair in the WARC exactly as the
crawler writes one (server IP, certificate, raw bytes). Merging is ffmpeg's, called by
yt-dlp; no HLS or DASH downloading of our own.

Each item yields, besides those exchanges:
- the finished file as yt-dlp wrote it (merged), a `resource` record
  `urn:media:<page URL>#<n>`, streamed from disk (a multi-gigabyte video never passes
  through memory); or, when the file is byte for byte the payload of a response this
  item's download recorded (a direct MP4: one GET, nothing merged, remuxed or decoded),
  a `revisit` record of that URN (identical-payload-digest, no payload) referring to
  that response: the same bytes are not written, sealed and hashed twice. Any
  difference (merged, remuxed, content-encoded, chunked, several requests) keeps it a
  resource record;
- its subtitles (`urn:media-subtitles:<page URL>#<n>:<language>`) and thumbnail
  (`urn:media-thumbnail:<page URL>#<n>`) as resource records;
- a `metadata` record (JSON) with yt-dlp's info with secrets removed (cookies, request
  headers), the extractor, yt-dlp's version, the format chosen and why, the SHA-256.
What became of each item (kept, skipped, failed, and why) comes back as a plain dict for
the crawl journal, pages.jsonl and evidence/capture.json.
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.version import __version__ as YT_DLP_VERSION

from archive.capture.credentials import read_cookies_text
from archive.capture.dedup import Dedup, Original, revisit_headers
from archive.capture.exchange import Recorded, dedupable, write_for_sink
from archive.capture.mediafind import is_media_file
from archive.capture.mediaoptions import MediaOptions
from archive.capture.addresses import AddressPolicy
from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy, Refused
from archive.capture.recorder import FetchResult
from archive.capture.redaction import Redaction
from archive.errors import ArchiveError
from archive.hashing import parse_digest, stream_hasher, warc_digest
from archive.warc.cdxj import cdxj_line
from archive.warc.writer import RecordRef, WarcWriter, gzip_level
from archive.warc import urns

BEST = "bestvideo*+bestaudio/best"        # yt-dlp's own default when ffmpeg can merge
BEST_WITHOUT_FFMPEG = "best/bestvideo+bestaudio"
MAX_ENTRIES = 20                          # of a playlist named by one page
MAX_LISTED = 20_000                       # exchanges named in one item's metadata record
MAX_PAYLOADS = 256                        # payload digests of one item's responses kept
# Finished exchanges waiting to be written while yt-dlp fetches the next segment: each
# holds its spool (at most 1 MiB in memory, the rest on disk).
WRITE_BEHIND = 4
# Info keys that hold what yt-dlp sends (cookies, request headers) or local paths.
INFO_SECRET_KEYS = {"http_headers", "cookies", "__x_forwarded_for_ip"}


class MediaStop(Exception):
    """Raised from yt-dlp's progress hook: this download must stop (why in the message)."""

    def __init__(self, reason: str, status: str = "failed", truncated: str = "unspecified") -> None:
        super().__init__(reason)
        self.status = status
        self.truncated = truncated      # WARC-Truncated of a response it cuts short


class MediaInterrupted(Exception):
    """The capture is stopping (Ctrl-C, SIGTERM): the item is not finished and a resume
    fetches it again."""


def ffmpeg_version() -> str | None:
    """`ffmpeg -version`'s first line's version, or None when there is no ffmpeg."""
    path = shutil.which("ffmpeg")
    if not path:
        return None
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=30,
                             errors="replace").stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"ffmpeg version (\S+)", out)
    return match.group(1) if match else "unknown version"


def clean_info(value):
    """yt-dlp's info JSON without what we sent (cookies, request headers), recursively."""
    if isinstance(value, dict):
        return {k: clean_info(v) for k, v in value.items() if k not in INFO_SECRET_KEYS}
    if isinstance(value, list):
        return [clean_info(v) for v in value]
    return value


def file_digest(path: Path) -> tuple[str, str, int]:
    """(hex SHA-256, WARC digest, size) of a file, read in chunks."""
    with open(path, "rb") as fh:
        hasher, size = stream_hasher(fh)
    return hasher.hexdigest(), warc_digest(hasher), size


def probe(path: Path) -> dict:
    """Duration and streams of a media file as ffprobe reads them ({} without ffprobe):
    what the file holds, whatever the site claimed."""
    if not shutil.which("ffprobe"):
        return {}
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries",
             "format=duration,format_name:stream=codec_type,codec_name,width,height",
             "-of", "json", str(path)], capture_output=True, text=True, timeout=120, errors="replace")
        data = json.loads(out.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    form = data.get("format") or {}
    try:
        duration = round(float(form["duration"]), 3)
    except (KeyError, TypeError, ValueError):
        duration = None
    streams = [{k: v for k, v in s.items() if k in ("codec_type", "codec_name", "width", "height")}
               for s in data.get("streams") or ()]
    return {"duration": duration, "container": form.get("format_name"), "streams": streams}


def _mime(path: Path, default: str = "application/octet-stream") -> str:
    return mimetypes.guess_type(path.name)[0] or {
        ".vtt": "text/vtt", ".srt": "application/x-subrip", ".webp": "image/webp",
        ".mkv": "video/x-matroska", ".m4a": "audio/mp4", ".opus": "audio/ogg",
    }.get(path.suffix.lower(), default)


class _Log:
    """yt-dlp's logger: warnings and errors kept for the evidence, the rest dropped."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.too_large = False

    def debug(self, msg: str) -> None:
        # yt-dlp says this on screen only (debug, for a logger), and downloads nothing
        self.too_large = self.too_large or "larger than max-filesize" in msg

    def info(self, msg: str) -> None:
        self.debug(msg)

    def warning(self, msg: str) -> None:
        self.messages.append(f"WARNING: {msg}")

    def error(self, msg: str) -> None:
        self.messages.append(msg)


@dataclass
class MediaBudget:
    """What the crawl leaves a media download: bytes, a deadline, whether to stop."""

    bytes_left: Callable[[], int | None] = lambda: None
    deadline: float | None = None
    stopping: Callable[[], str | None] = lambda: None     # why the crawl is stopping, or None


@dataclass
class _Item:
    page: str
    number: int
    url: str
    folder: Path
    entry: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)     # the page's poster and subtitle tracks for it


class MediaSession:
    """One recording proxy and the yt-dlp downloads of one capture, writing into `writer`.

    `record` is called with what each write adds to the crawl's memory, under the
    writer's lock (as the browser's session does). One item downloads at a time.
    """

    def __init__(
        self,
        writer: WarcWriter,
        record: Callable[[Recorded], None],
        options: MediaOptions,
        folder: Path,
        *,
        user_agent: str | None = None,
        verify_tls: bool = True,
        timeout: float = 30.0,
        retries: int = 2,
        delay: float = 0.0,
        spool_dir: str | None = None,
        exclude: Callable[[str], str | None] | None = None,
        dedup: Dedup | None = None,
        policy: AddressPolicy | None = None,
        redaction: Redaction | None = None,
        cookies_txt: str | None = None,
    ) -> None:
        """`cookies_txt`: a login's cookies (a browser profile's) as a Netscape
        cookies.txt, given to yt-dlp in memory (never written to a file)."""
        self.writer = writer
        self.redaction = redaction          # the crawl's: secret request headers never sealed
        self.record = record
        self.options = options
        # the crawl's address rule: yt-dlp's hosts are refused or allowed as the crawler's are
        self.policy = policy if policy is not None else AddressPolicy()
        self.folder = Path(folder)
        self.user_agent = user_agent
        self.timeout = timeout
        self.retries = retries
        self.delay = delay                  # between request starts to one host (--delay)
        self._next_start: dict[str, float] = {}
        self.exclude = exclude
        self.dedup = dedup
        self.ffmpeg = ffmpeg_version()
        self.fetched: set[str] = set()      # URLs the proxy fetched for any item
        self.downloading = 0                # bytes of the file being downloaded (for progress)
        self._item_urls: list[str] | None = None   # what the item being downloaded fetched
        # payload digest -> the response record holding it, of the item being downloaded:
        # its finished file may be one of them (a direct file), then stored as a revisit
        self._item_payloads: dict[tuple, Original] = {}
        self._verify_tls = verify_tls
        self._spool_dir = spool_dir
        self._ca: InterceptionCA | None = None
        self._proxy: RecordingProxy | None = None
        self._failures: list[str] = []
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()
        self._cookies: _CookieText | None = None
        self._cookies_txt = cookies_txt
        self._extractors: list | None = None

    def describe(self) -> dict:
        """Fields for warcinfo: what downloaded and merged the media."""
        return {"media-downloader": f"yt-dlp {YT_DLP_VERSION}",
                "media-merger": f"ffmpeg {self.ffmpeg}" if self.ffmpeg else "none (ffmpeg not found)"}

    # -- life cycle ------------------------------------------------------------
    def start(self) -> "MediaSession":
        # What a killed run left here has no records (and a run of an earlier version left
        # its cookie jar here in clear): gone before anything else. The folder holds what
        # a logged-in session downloads: its owner's only.
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(mode=0o700, parents=True)
        os.chmod(self.folder, 0o700)
        if self.options.cookies or self._cookies_txt is not None:
            # yt-dlp reads its cookie jar from a text stream and writes it back there: the
            # cookies stay in memory (a file would outlive a kill -9), and the user's own
            # file is never written
            self._cookies = _CookieText(self._cookies_txt if self._cookies_txt is not None
                                        else read_cookies_text(self.options.cookies))
        self._ca = InterceptionCA()
        self._proxy = RecordingProxy(self, self._ca, ProxyOptions(
            timeout=self.timeout, verify_tls=self._verify_tls, spool_dir=self._spool_dir,
            # what yt-dlp asks for is what it gets: a stream's bytes, not re-encoded ones
            accept_encoding=None, finish_abandoned=False, policy=self.policy,
            # a safety net: yt-dlp stops a file over the limit when it learns its size
            max_body=self.options.max_size,
            write_behind=WRITE_BEHIND,
        )).start()
        return self

    def stop(self) -> None:
        """The capture is stopping: cut every exchange under way (yt-dlp's download then
        fails at once instead of at its next timeout)."""
        if self._proxy is not None:
            self._proxy.close()

    def close(self) -> None:
        """Stop the proxy (exchanges still running are recorded as cut short) and remove
        the downloads folder. Raises ArchiveError if an exchange could not be written."""
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None
        if self._ca is not None:
            self._ca.close()
            self._ca = None
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._failures:
            raise ArchiveError(f"{len(self._failures)} media exchange(s) could not be written to "
                               f"the WARC; first: {self._failures[0]}")

    def __enter__(self) -> "MediaSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the proxy's sink ------------------------------------------------------
    def begin(self, url: str) -> None:
        reason = self.exclude(url) if self.exclude else None
        if reason:
            raise Refused(reason)
        with self._lock:
            self.fetched.add(url)
            if self._item_urls is not None and len(self._item_urls) < MAX_LISTED:
                self._item_urls.append(url)   # one item at a time: every request is its
            wait = 0.0
            if self.delay:
                # --delay holds for media hosts too: segment after segment, as for requisites
                host, now = urlsplit(url).netloc.lower(), time.monotonic()
                start = max(now, self._next_start.get(host, 0.0))
                self._next_start[host] = start + self.delay
                wait = start - now
        if wait > 0:
            time.sleep(wait)

    def end(self, token, result: FetchResult, notes: dict) -> None:
        fields = {**notes, "fetched-by": f"yt-dlp {YT_DLP_VERSION} (media capture)"}
        with self.writer.batch():       # the dedup map is read as the write left it
            written = write_for_sink(self.writer, self.record, result, fields, self.dedup,
                                     self._failures, self.redaction)
            if written is None or written.response is None or not dedupable(result):
                return
            if written.recorded.revisits:
                # the same bytes as an earlier response: that one holds them, when it is
                # in this capture (a file's bytes are never only in another capture)
                original = self.dedup.lookup(result.payload_digest) if self.dedup else None
            else:
                original = Original(result.url, written.response.date, written.response.record_id)
        if original is not None and original.capture is None:
            self._note_payload(result.payload_digest, original)

    def _note_payload(self, digest: str | None, original: Original) -> None:
        """Remember a whole response of the item being downloaded by its payload digest
        (the first of each; a bounded number: a stream's thousands of segments are never
        a finished file)."""
        key = parse_digest(digest) if digest else None
        with self._lock:
            if key and self._item_urls is not None and len(self._item_payloads) < MAX_PAYLOADS:
                self._item_payloads.setdefault(key, original)

    # -- items -----------------------------------------------------------------
    def extractor_for(self, url: str) -> str | None:
        """The name of yt-dlp's own extractor for `url` (a platform's video page, an
        embedded player), None when only its generic one would do."""
        if self._extractors is None:
            from yt_dlp.extractor import gen_extractor_classes
            self._extractors = [ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic"]
        return next((ie.ie_key() for ie in self._extractors if ie.suitable(url)), None)

    def with_extracted(self, page: str, found: list[str], frames: list[str] = ()) -> list[str]:
        """`found` with the page and frames yt-dlp has an extractor for put first."""
        players = [url for url in (page, *frames) if url not in found and self.extractor_for(url)]
        return list(dict.fromkeys(players + found))

    def capture(self, page: str, urls: list[str], budget: MediaBudget | None = None,
                first_number: int = 1, again: bool = False, extras: dict | None = None) -> list[dict]:
        """Download the media `urls` found on `page` (numbered from `first_number`) and
        record them; returns one entry per URL saying what became of it. `again`: an
        earlier run was cut off while fetching these (the evidence says they were fetched
        again). `extras`: the poster and subtitle tracks the page gives a media file, by
        URL (kept as its thumbnail and subtitles). Raises MediaInterrupted when the crawl
        is stopping."""
        budget = budget or MediaBudget()
        entries = []
        for number, url in enumerate(urls, first_number):
            with self._lock:
                already = url in self.fetched
            if already:
                entries.append({"n": number, "url": url, "status": "skipped",
                                "reason": "already fetched by an earlier media download of this capture"})
                continue
            if budget.deadline is not None and time.monotonic() >= budget.deadline:
                entries.append({"n": number, "url": url, "status": "skipped",
                                "reason": "--max-time reached before it was fetched"})
                continue
            item = _Item(page, number, url, self.folder / f"item-{time.monotonic_ns()}",
                         extra=(extras or {}).get(url) or {})
            with self._one_at_a_time:
                entries.append(self._capture_item(item, budget, again))
        return entries

    def _capture_item(self, item: _Item, budget: MediaBudget, again: bool) -> dict:
        entry = item.entry = {"n": item.number, "url": item.url}
        if again:
            entry["fetchedAgain"] = "an earlier run was stopped during this download; it was fetched anew"
        shutil.rmtree(item.folder, ignore_errors=True)
        item.folder.mkdir(parents=True)
        log = _Log()
        limit = self._size_limit(budget)
        with self._lock:
            self._item_urls, self._item_payloads = [], {}
        stopped: BaseException | None = None
        try:
            try:
                info = self._download(item, budget, limit, log)
                if info is None:        # skipped before downloading (live)
                    return entry
                self._record(item, info, log)
            except BaseException as exc:
                stopped = exc
                raise
        except MediaInterrupted:
            raise
        except MediaStop as stop:
            entry.update(status=stop.status, reason=str(stop))
        except yt_dlp.utils.DownloadError as exc:
            cause = exc.exc_info[1] if exc.exc_info else None
            if isinstance(cause, MediaInterrupted):
                raise cause from None
            if isinstance(cause, MediaStop):
                entry.update(status=cause.status, reason=str(cause))
            else:
                entry.update(status="failed", reason=_message(exc, log))
        except Exception as exc:  # noqa: BLE001 - an extractor's crash is the item's failure
            entry.update(status="failed", reason=f"yt-dlp failed: {type(exc).__name__}: {exc}")
        finally:
            # a kept item's exchanges were settled before its file's records (_record);
            # here those of an item that failed or was stopped
            self._settle(stopped)
            self.downloading = 0
            with self._lock:
                self._item_urls, self._item_payloads = None, {}
            shutil.rmtree(item.folder, ignore_errors=True)
        if log.messages and entry.get("status") != "kept":
            entry.setdefault("messages", log.messages[-5:])
        return entry

    def _settle(self, exc: BaseException | None) -> None:
        """Wait until every exchange of the item is written, so that the item's outcome is
        journaled with its records; what is left running when we stop a download
        (--max-time, a size limit, the capture stopping) is cut short, saying why."""
        if self._proxy is None:
            return
        if isinstance(exc, yt_dlp.utils.DownloadError) and exc.exc_info:
            exc = exc.exc_info[1]
        if isinstance(exc, (MediaStop, MediaInterrupted)):
            # stopped by us: at once
            self._proxy.settle(None, f"the media download was stopped: {exc}",
                               getattr(exc, "truncated", "time"))
        else:
            # yt-dlp is done (or gave up, on a 404 say): what the server is still sending is
            # recorded whole, unless it takes longer than a read may
            self._proxy.settle(None, "yt-dlp was done with the item before this exchange ended",
                               "unspecified", grace=self.timeout)

    def _size_limit(self, budget: MediaBudget) -> tuple[int, str]:
        left = budget.bytes_left()
        if left is not None and left < self.options.max_size:
            return max(1, left), "--max-bytes"
        return self.options.max_size, "--media-max-size"

    def _params(self, item: _Item, budget: MediaBudget, limit: tuple[int, str], log: _Log) -> dict:
        def hook(progress: dict) -> None:
            reason = budget.stopping()
            if reason:
                raise MediaInterrupted(reason)
            if budget.deadline is not None and time.monotonic() >= budget.deadline:
                raise MediaStop("--max-time reached during the download", "skipped", "time")
            done = progress.get("downloaded_bytes") or 0
            self.downloading = done if progress.get("status") == "downloading" else 0
            total = progress.get("total_bytes") or progress.get("total_bytes_estimate") or 0
            if done > limit[0] or (progress.get("total_bytes") and total > limit[0]):
                raise MediaStop(f"larger than {limit[1]} ({limit[0]} bytes)", "skipped", "length")

        params = {
            "proxy": self._proxy.url,
            # The hop to our own proxy, which checks the real server's certificate itself
            # (and records it); yt-dlp sees only the proxy's throwaway one.
            "nocheckcertificate": True,
            "paths": {"home": str(item.folder), "temp": str(item.folder)},
            "outtmpl": {"default": "media.%(ext)s", "thumbnail": "thumbnail.%(ext)s",
                        "subtitle": "subtitles.%(ext)s"},
            "format": self._selector(),
            "max_filesize": limit[0],
            "writesubtitles": True, "subtitleslangs": ["all", "-live_chat"],
            "writethumbnail": True,
            "noplaylist": True, "playlistend": MAX_ENTRIES,
            "socket_timeout": self.timeout,
            "retries": self.retries, "fragment_retries": self.retries,
            # a stream with a segment missing is not the stream: fail, do not paper over it
            "skip_unavailable_fragments": False,
            # bytes already on disk from a run that was stopped have no records: start anew
            "continuedl": False, "overwrites": True,
            "hls_prefer_native": True,             # HLS through our proxy, not ffmpeg's own HTTP
            "cachedir": False, "noprogress": True, "quiet": True, "no_warnings": False,
            "logger": log, "progress_hooks": [hook], "ignoreerrors": False,
            "color": {"stdout": "no_color", "stderr": "no_color"},
        }
        if self.user_agent:
            params["http_headers"] = {"User-Agent": self.user_agent}
        if self._cookies is not None:
            self._cookies.seek(0)       # each YoutubeDL reads the jar the last one wrote back
            params["cookiefile"] = self._cookies
        return params

    def _download(self, item: _Item, budget: MediaBudget, limit: tuple[int, str],
                  log: _Log) -> dict | None:
        with yt_dlp.YoutubeDL(self._params(item, budget, limit, log)) as ydl:
            if is_media_file(item.url):
                # A file named by the page (<video src>): no extractor's probe, which
                # would have the proxy read the whole file once more.
                info = ydl.process_ie_result(_direct(item.url, item.page, item.extra), download=False)
            else:
                info = ydl.extract_info(item.url, download=False)
            if info.get("_type") in ("playlist", "multi_video"):
                raise MediaStop("a playlist, not one video: its entries are not captured")
            item.entry["extractor"] = info.get("extractor_key") or info.get("extractor")
            if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
                if self.options.live is None or info.get("live_status") == "is_upcoming":
                    item.entry.update(status="skipped", reason="live, not captured "
                                      "(--media-live SECONDS records that long of it)")
                    return None
                # ffmpeg records it (yt-dlp's way with a live stream), through our proxy,
                # for that long (-t); the progress hook's deadline is a backstop
                seconds = self.options.live
                ydl.params["download_ranges"] = lambda info, ydl: [{"start_time": 0, "end_time": seconds}]
                self._live_limit(budget, seconds + max(30.0, seconds))
            filesize = info.get("filesize") or info.get("filesize_approx")
            if filesize and filesize > limit[0]:
                raise MediaStop(f"larger than {limit[1]} ({filesize} > {limit[0]} bytes)", "skipped")
            info = ydl.process_ie_result(info, download=True)
            if log.too_large:
                raise MediaStop(f"larger than {limit[1]} ({limit[0]} bytes)", "skipped")
            if not info.get("requested_downloads"):
                raise MediaStop(_message(None, log) or "yt-dlp downloaded nothing")
            return info

    def _live_limit(self, budget: MediaBudget, seconds: float) -> None:
        until = time.monotonic() + seconds
        budget.deadline = until if budget.deadline is None else min(budget.deadline, until)

    # -- records ---------------------------------------------------------------
    def _record(self, item: _Item, info: dict, log: _Log) -> None:
        downloads = info.get("requested_downloads") or []
        files = [Path(d["filepath"]) for d in downloads if d.get("filepath") and Path(d["filepath"]).is_file()]
        if not files:
            # Not merged (no ffmpeg): the parts yt-dlp left are kept as they are.
            files = [Path(p) for d in downloads for p in d.get("__files_to_merge") or () if Path(p).is_file()]
        if not files:
            raise MediaStop(_message(None, log) or "yt-dlp reported no file")
        # the records are named after the page's address as its exchange is recorded
        page, n = self._recorded(item.page), item.number
        entry = item.entry
        # hashed and probed while the proxy's writer may still be writing the responses
        digests = [file_digest(path) for path in files]
        probed = probe(files[0])
        # yt-dlp is done: every response of the item is written before the file's records,
        # so that a file identical to one is known as such (and its revisit comes after it)
        self._settle(None)
        with self._lock:
            originals = dict(self._item_payloads)
        kept = []
        for i, (path, digest) in enumerate(zip(files, digests)):
            uri = f"{urns.MEDIA}{page}#{n}" + (f".{i + 1}" if len(files) > 1 else "")
            ref, sha, size, original = self._write_file(uri, path, _mime(path, "video/mp4"),
                                                        originals, digest)
            kept.append({"record": uri, "recordId": ref.record_id, "sha256": sha, "size": size,
                         "file": path.name, **_stored(original)})
        extras = []
        # Found by the names our output templates give them (the paths yt-dlp notes in its
        # info are not always those of the files it left).
        for path in sorted(item.folder.glob("thumbnail.*"))[:1]:
            uri = f"{urns.THUMBNAIL}{page}#{n}"
            ref, sha, size, _ = self._write_file(uri, path, _mime(path, "image/jpeg"))
            extras.append({"kind": "thumbnail", "record": uri, "sha256": sha, "size": size})
        for path in sorted(item.folder.glob("subtitles.*.*")):
            lang = path.name.split(".")[1]
            uri = f"{urns.SUBTITLES}{page}#{n}:{lang}"
            ref, sha, size, _ = self._write_file(uri, path, _mime(path, "text/vtt"))
            extras.append({"kind": "subtitles", "language": lang, "record": uri,
                           "sha256": sha, "size": size})
        chosen = _format(info, self._selector(), self._why())
        entry.update(
            status="kept", record=kept[0]["record"], sha256=kept[0]["sha256"], size=kept[0]["size"],
            format=chosen["summary"], duration=info.get("duration") or probed.get("duration"),
            title=info.get("title"), **{k: v for k, v in kept[0].items() if k.startswith("stored")},
        )
        if len(kept) > 1:
            entry["parts"] = kept
            entry["note"] = "not merged: ffmpeg was not found, the formats are kept as downloaded"
        if extras:
            entry["extras"] = extras
        if info.get("is_live"):
            entry["live"] = f"live stream: recorded for at most {self.options.live:g}s"
        with self._lock:
            fetched = list(self._item_urls or ())
        metadata = {
            "page": page, "media-url": item.url, "media-record": kept[0]["recordId"],
            # the exchanges (request/response records) the file was made from, in order
            "fetched": fetched,
            "files": kept, "extras": extras,
            "extractor": entry.get("extractor"), "yt-dlp": YT_DLP_VERSION,
            "ffmpeg": self.ffmpeg, "format": chosen, "ffprobe": probed,
            "warnings": [m for m in log.messages if m.startswith("WARNING")],
            "info": clean_info(yt_dlp.YoutubeDL.sanitize_info(info, remove_private_keys=True)),
        }
        if self.redaction is not None:
            # the addresses yt-dlp asked (an API's, with a token in its query) as recorded
            metadata = self.redaction.scrub(json.loads(json.dumps(metadata, default=str)))
        body = json.dumps(metadata, indent=1, ensure_ascii=False, default=str).encode("utf-8")
        with self.writer.batch():
            self.writer.write("metadata", f"{urns.MEDIA}{page}#{n}", body,
                              content_type="application/json",
                              extra={"WARC-Concurrent-To": kept[0]["recordId"]})

    def _recorded(self, url: str) -> str:
        """`url` as the capture records it (the secret values it knows replaced)."""
        return self.redaction.url(url) if self.redaction is not None else url

    def _write_file(self, uri: str, path: Path, content_type: str,
                    originals: dict[tuple, Original] | None = None,
                    digest: tuple[str, str, int] | None = None,
                    ) -> tuple[RecordRef, str, int, Original | None]:
        """A file as one resource record, streamed: hashed in one read, copied in another.
        When its digest is the payload digest of one of `originals` (this item's response
        records), a revisit record referring to it instead, without payload: the bytes are
        in the WARC already. Returns the record, the file's SHA-256 and size, and that
        original (None: stored here). `digest`: the file's file_digest(), when known."""
        sha, digest, size = digest or file_digest(path)
        original = (originals or {}).get(parse_digest(digest))
        with self.writer.batch():
            if original is not None:
                # the index line keeps the file's type, so that what lists media by type
                # (the catalog, the web app) lists it as it did its resource record
                ref = self.writer.write("revisit", uri, b"", content_type=content_type,
                                        extra=revisit_headers(original, digest),
                                        level=gzip_level(content_type))
                kind = "revisit"
            else:
                with open(path, "rb") as fh:
                    ref = self.writer.write("resource", uri, fh, size, digest, digest,
                                            content_type=content_type, level=gzip_level(content_type))
                kind = "resource"
            self.record(Recorded(index=[cdxj_line(uri, ref.date, ref.filename, ref.offset,
                                                  ref.length, kind, digest, content_type)]))
        return ref, sha, size, original

    def _selector(self) -> str:
        return self.options.format or (BEST if self.ffmpeg else BEST_WITHOUT_FFMPEG)

    def _why(self) -> str:
        if self.options.format:
            return "asked for with --media-format"
        if self.ffmpeg:
            return ("the best original: yt-dlp's best video and best audio, merged by ffmpeg "
                    "into one file without re-encoding")
        return ("ffmpeg was not found, so nothing can be merged: the best single file holding "
                "video and audio, else video and audio kept as separate files")


class _CookieText(io.StringIO):
    """A cookies.txt in memory, as yt-dlp's `cookiefile` (a file name or a text stream).
    yt-dlp writes its jar back into a stream with truncate(0) and write(), without
    seeking: the write would land past the end, after NULs, and the next read would not
    find the header line."""

    def truncate(self, size: int | None = None) -> int:
        if size == 0:
            self.seek(0)
        return super().truncate(size)




def _stored(original: Original | None) -> dict:
    """Where a finished file's bytes are, for the evidence: {} when in its own resource
    record; else the response record its revisit refers to."""
    if original is None:
        return {}
    return {"stored": f"revisit of {original.record_id}", "storedIn": original.uri,
            "storedDate": original.date}


def _direct(url: str, page: str, extra: dict) -> dict:
    """The info yt-dlp's generic extractor would give a plain media file, with the
    poster and subtitle tracks its page gives it."""
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "media"
    stem, _, ext = name.rpartition(".")
    info = {"id": (stem or name)[:80], "title": stem or name, "url": url,
            "ext": ext.lower() or None, "extractor": "direct", "extractor_key": "Direct",
            "webpage_url": url, "original_url": url, "http_headers": {"Referer": page}}
    if isinstance(extra.get("poster"), str):
        info["thumbnails"] = [{"url": extra["poster"], "id": "poster"}]
    if isinstance(extra.get("subtitles"), dict):
        info["subtitles"] = {
            str(lang): [{"url": sub, "ext": urlsplit(sub).path.rsplit(".", 1)[-1].lower() or "vtt"}]
            for lang, sub in extra["subtitles"].items() if isinstance(sub, str)}
    return info


def _format(info: dict, selector: str, why: str) -> dict:
    """The format chosen, as yt-dlp reports it, with the selector and why."""
    parts = info.get("requested_formats") or [info]
    keys = ("format_id", "format", "ext", "protocol", "vcodec", "acodec", "width", "height",
            "fps", "tbr", "abr", "vbr", "filesize", "url")
    chosen = [{k: f.get(k) for k in keys if f.get(k) is not None} for f in parts]
    summary = info.get("format") or "+".join(str(f.get("format_id")) for f in parts)
    if info.get("extractor_key") == "Direct":
        summary = f"{info.get('ext')} file, as served"
    return {
        "summary": summary,
        "format_id": info.get("format_id"), "ext": info.get("ext"),
        "selector": selector,
        "why": why,
        "parts": chosen,
        "available": len(info.get("formats") or ()),
    }


def _message(exc: BaseException | None, log: _Log) -> str:
    """yt-dlp's own words for a failure, without its 'ERROR: ' prefix and colours."""
    texts = [str(exc)] if exc is not None else []
    texts += reversed([m for m in log.messages if not m.startswith("WARNING")])
    for text in texts:
        text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())
        text = text.removeprefix("ERROR:").strip()
        if text:
            return text[:1000]
    return ""
