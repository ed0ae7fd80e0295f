"""Finding the media of a captured page: `<video>` and `<audio>` and their `<source>`s,
HLS (.m3u8) and DASH (.mpd) manifests named anywhere in the page (scripts too),
OpenGraph and JSON-LD video and audio URLs, and, with the browser, what its traffic
shows (a manifest or a media file a player script asked for).

Only finding: downloading is media.py's (through yt-dlp). Kept free of yt-dlp so the
crawler can call it for every page cheaply.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from archive.capture.links import absolute, charset_of
from archive.values import parse_json

# Manifests named in a page's text (a player's script or data attribute, say): the text's
# URL-like runs (one linear pass), then the .m3u8/.mpd names in them, each starting after
# the last `=`, `,` or `;` before it (a regular expression matching whole URLs from every
# position takes quadratic time on a hostile page).
URL_RUN = re.compile(r"""[^\s"'<>()\\`]+""")
MANIFEST_END = re.compile(r"\.(?:m3u8|mpd)\b(?:\?[^\s\"'<>()\\`]*)?", re.I)
URL_START_STOPS = "=,;"
MAX_URL = 2048
MANIFEST_EXTENSIONS = (".m3u8", ".mpd")
MEDIA_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".ogv", ".avi", ".flv", ".3gp",
    ".mp3", ".m4a", ".aac", ".oga", ".ogg", ".opus", ".wav", ".flac", ".weba",
) + MANIFEST_EXTENSIONS
MANIFEST_TYPES = {
    "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
    "audio/x-mpegurl", "application/dash+xml",
}
# Pieces of a stream, not a stream: fetched by whoever downloads the manifest.
SEGMENT_TYPES = {"video/mp2t", "video/iso.segment", "audio/iso.segment"}
SEGMENT_EXTENSIONS = (".ts", ".m4s", ".cmfv", ".cmfa")
OG_PROPERTIES = {
    "og:video", "og:video:url", "og:video:secure_url", "og:audio", "og:audio:url",
    "og:audio:secure_url", "twitter:player:stream",
}
JSON_LD_TYPES = {"VideoObject", "AudioObject", "MediaObject", "Clip", "Movie", "Episode"}
MAX_FOUND = 50      # a page listing more media than this is an index, not a post


def _path(url: str) -> str:
    return urlsplit(url).path.lower()


def is_manifest(url: str, content_type: str | None = None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime in MANIFEST_TYPES or _path(url).endswith(MANIFEST_EXTENSIONS)


def is_media_file(url: str, content_type: str | None = None) -> bool:
    """A whole audio or video file (by type, else by extension), not a stream's segment."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in SEGMENT_TYPES or (not mime and _path(url).endswith(SEGMENT_EXTENSIONS)):
        return False
    if mime.startswith(("video/", "audio/")):
        return True
    return _path(url).endswith(MEDIA_EXTENSIONS) and not _path(url).endswith(MANIFEST_EXTENSIONS)


def is_media(url: str, content_type: str | None = None) -> bool:
    """What the media step downloads: a manifest or a whole media file."""
    return is_manifest(url, content_type) or is_media_file(url, content_type)


def find_in_html(body: bytes, base: str, content_type: str | None = None,
                 frames: list[str] | None = None, extras: dict | None = None) -> list[str]:
    """The media URLs an HTML document names, in document order, each once. The URLs of
    its frames and embeds (a player, maybe) are added to `frames` when given; what a
    <video> or <audio> element adds to its media (`poster`, and its subtitle and caption
    <track>s as {language: URL}) to `extras`, by media URL, when given."""
    text = body.decode(charset_of(content_type, body), errors="replace")
    tree = LexborHTMLParser(text)
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        base = absolute(base, base_tag.attributes.get("href")) or base
    found: list[str | None] = []
    for element in tree.css("video, audio"):
        urls = [absolute(base, element.attributes.get("src"))]
        urls += [absolute(base, node.attributes.get("src")) for node in element.css("source[src]")]
        found += urls
        if extras is not None:
            extra = _companions(element, base)
            for url in filter(None, urls):
                if extra:
                    extras.setdefault(url, extra)
    for node in tree.css("meta[property], meta[name]"):
        key = (node.attributes.get("property") or node.attributes.get("name") or "").lower()
        if key in OG_PROPERTIES:
            found.append(absolute(base, node.attributes.get("content")))
    for node in tree.css('script[type="application/ld+json"]'):
        found += [absolute(base, url) for url in _json_ld_urls(node.text())]
    for url in manifests_in_text(text):
        found.append(absolute(base, url.replace("&amp;", "&")))
    if frames is not None:
        frames += _unique(absolute(base, node.attributes.get("src"))
                          for node in tree.css("iframe[src], embed[src]"))
    return _unique(found)


def manifests_in_text(text: str):
    """The .m3u8 and .mpd URLs written anywhere in `text`, as written (maybe relative)."""
    count = 0
    for run in URL_RUN.finditer(text):
        token = run.group(0)
        if len(token) > 4 * MAX_URL:
            continue                   # no URL: minified script or data
        previous = 0
        for match in MANIFEST_END.finditer(token):
            # only back to the previous match: every character is looked at once
            start = max(previous, *(token.rfind(c, previous, match.start()) + 1
                                    for c in URL_START_STOPS))
            previous = match.end()
            if match.start() - start > MAX_URL or start == match.start():
                continue
            yield token[start:match.end()]
            count += 1
            if count >= MAX_FOUND:
                return


def _companions(element, base: str) -> dict:
    """The poster and subtitle tracks of a <video> or <audio> element."""
    extra: dict = {}
    poster = absolute(base, element.attributes.get("poster"))
    if poster:
        extra["poster"] = poster
    subtitles = {}
    for track in element.css("track[src]"):
        if (track.attributes.get("kind") or "subtitles").lower() not in ("subtitles", "captions"):
            continue
        url = absolute(base, track.attributes.get("src"))
        lang = (track.attributes.get("srclang") or track.attributes.get("label") or "und").strip()[:35]
        if url:
            subtitles.setdefault(lang or "und", url)
    if subtitles:
        extra["subtitles"] = subtitles
    return extra


def _json_ld_urls(text: str) -> list[str]:
    """contentUrl of the video and audio objects in a JSON-LD block (embedUrl is a player
    page, not the media: yt-dlp is given that only through the page's own extractor)."""
    try:
        data = parse_json(text)       # nesting too deep for Python's parser is a ValueError
    except ValueError:
        return []
    urls, stack, steps = [], [data], 0
    while stack and steps < 10_000:      # bounded: hostile JSON nests without end
        steps += 1
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            kinds = item.get("@type")
            kinds = set(kinds) if isinstance(kinds, list) else {kinds}
            url = item.get("contentUrl")
            if kinds & JSON_LD_TYPES and isinstance(url, str):
                urls.append(url)
            stack.extend(reversed([v for v in item.values() if isinstance(v, (dict, list))]))
    return urls


def find_in_traffic(exchanges: list[tuple[str, str | None]]) -> list[str]:
    """Media among (URL, Content-Type) pairs a page's loading fetched (a player's script
    asking for a manifest, say); segments are left to the manifest's download."""
    return _unique(url for url, content_type in exchanges if is_media(url, content_type))


def _unique(urls) -> list[str]:
    seen: dict[str, None] = {}
    for url in urls:
        if url and url not in seen:
            seen[url] = None
    return list(seen)[:MAX_FOUND]
