"""Finding a page's video and audio (archive.capture.mediafind): plain values in, out."""

from __future__ import annotations

import json
import time

from archive.capture.mediafind import MAX_FOUND, find_in_html, find_in_traffic, is_media

BASE = "https://news.example/2026/statement.html"


def test_video_audio_sources_opengraph_json_ld_and_manifests_in_scripts_are_found_in_order():
    ld = json.dumps({"@context": "https://schema.org", "@graph": [
        {"@type": "NewsArticle", "video": {"@type": "VideoObject", "contentUrl": "/v/ld.mp4",
                                           "embedUrl": "https://player.example/embed/1"}}]})
    html = f"""<html><head>
      <meta property="og:video" content="https://cdn.example/og.mp4">
      <script type="application/ld+json">{ld}</script></head><body>
      <video src="/v/main.mp4" poster="/p.jpg"></video>
      <audio><source src="/a/voice.m4a" type="audio/mp4"><source src="/a/voice.ogg"></audio>
      <picture><source srcset="/img.webp"><img src="/img.jpg"></picture>
      <script>player.setup({{file: "//cdn.example/live/master.m3u8?token=abc&amp;x=1"}})</script>
      <div data-dash='/d/manifest.mpd'></div>
      <video src="javascript:alert(1)"></video>
      <iframe src="https://player.example/embed/2"></iframe>
    </body></html>""".encode()
    frames: list[str] = []
    found = find_in_html(html, BASE, frames=frames)
    assert found == [
        "https://news.example/v/main.mp4", "https://news.example/a/voice.m4a",
        "https://news.example/a/voice.ogg", "https://cdn.example/og.mp4",
        "https://news.example/v/ld.mp4", "https://cdn.example/live/master.m3u8?token=abc&x=1",
        "https://news.example/d/manifest.mpd",
    ]
    assert frames == ["https://player.example/embed/2"]   # a player: yt-dlp may know it


def test_posters_and_subtitle_tracks_go_with_their_element():
    html = b"""<video poster="/p.jpg"><source src="/v.mp4">
      <track kind="captions" srclang="fr" src="/fr.vtt"><track kind="chapters" src="/ch.vtt">
      </video><video src="/other.mp4"></video>"""
    extras: dict = {}
    find_in_html(html, BASE, extras=extras)
    assert extras == {"https://news.example/v.mp4": {
        "poster": "https://news.example/p.jpg", "subtitles": {"fr": "https://news.example/fr.vtt"}}}


def test_hostile_pages_are_bounded():
    many = "".join(f'<video src="/v{i}.mp4"></video>' for i in range(10 * MAX_FOUND)).encode()
    assert len(find_in_html(many, BASE)) == MAX_FOUND
    deep = "[" * 100_000 + "]" * 100_000          # nested past what json.loads can take
    page = f'<script type="application/ld+json">{deep}</script>'.encode()
    assert find_in_html(page, BASE) == []
    assert find_in_html(b"\xff\xfe<video src=/x.mp4>", BASE) == ["https://news.example/x.mp4"]
    # a long run of URL characters: linear time (a whole-URL regex took 11 s on 20 KB)
    started = time.monotonic()
    text = b"<p>" + b"x" * 2_000_000 + b".m3u8 " + b"y" * 1_000_000 + b"</p>"
    assert find_in_html(text, BASE) == []      # longer than any URL: not one
    assert time.monotonic() - started < 30


def test_traffic_gives_manifests_and_whole_files_not_segments():
    seen = [("https://cdn.example/master.m3u8", "application/vnd.apple.mpegURL"),
            ("https://cdn.example/seg-1.ts", "video/mp2t"),
            ("https://cdn.example/chunk.m4s", None),
            ("https://cdn.example/api/stream", "application/dash+xml"),
            ("https://cdn.example/clip", "video/mp4"),
            ("https://cdn.example/app.js", "text/javascript")]
    assert find_in_traffic(seen) == ["https://cdn.example/master.m3u8",
                                     "https://cdn.example/api/stream", "https://cdn.example/clip"]
    assert is_media("https://x.example/a.MP3") and not is_media("https://x.example/a.html")
