"""Media for the media-capture tests, made with ffmpeg from a test pattern (a few
seconds, tiny) once per session, and a test site serving them the awkward ways: an MP4
in <video>, HLS with two renditions, DASH, audio only, a 404, segments cut mid-way, a
player in an <iframe>."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.site import PNG, Site, reset_after

SECONDS = 3
VTT = b"WEBVTT\n\n00:00.000 --> 00:02.000\nThe statement, in English\n"
TYPES = {
    ".mp4": "video/mp4", ".m4a": "audio/mp4", ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t", ".mpd": "application/dash+xml", ".m4s": "video/iso.segment",
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def ffprobe(path: Path) -> dict:
    """Duration (seconds) and the codec types of the streams of a media file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type",
         "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return {"duration": float(data["format"]["duration"]),
            "streams": sorted(s["codec_type"] for s in data["streams"])}


def _source(size: str, out: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", f"testsrc=duration={SECONDS}:size={size}:rate=10",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "32k", "-shortest", "-movflags", "+faststart", str(out))


def build_media(folder: Path) -> dict[str, bytes]:
    """path on the site -> bytes, for every media file (made once per session)."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("the media tests need ffmpeg (scripts/test installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    _source("160x120", folder / "clip.mp4")
    _source("320x240", folder / "high.mp4")
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=660:duration={SECONDS}", "-c:a", "aac",
           "-b:a", "32k", str(folder / "audio.m4a"))
    for name in ("clip", "high"):
        hls = folder / "hls"
        hls.mkdir(exist_ok=True)
        ffmpeg("-i", str(folder / f"{name}.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "1",
               "-hls_playlist_type", "vod", "-hls_segment_filename", str(hls / f"{name}-%d.ts"),
               str(hls / f"{name}.m3u8"))
    (folder / "hls" / "master.m3u8").write_text(
        "#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=150000,RESOLUTION=160x120,CODECS="avc1.42c00c,mp4a.40.2"\n'
        "clip.m3u8\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240,CODECS="avc1.42c015,mp4a.40.2"\n'
        "high.m3u8\n")
    dash = folder / "dash"
    dash.mkdir(exist_ok=True)
    ffmpeg("-i", str(folder / "clip.mp4"), "-map", "0:v", "-map", "0:a", "-c", "copy",
           "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
           "-init_seg_name", "init-$RepresentationID$.m4s",
           "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", str(dash / "manifest.mpd"))
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            files["/media/" + path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def media_site(files: dict[str, bytes]) -> Site:
    """Pages with media, each awkward case on a page of its own."""
    site = Site()
    for path, body in files.items():
        site.add(path, body, content_type=TYPES.get(Path(path).suffix, "application/octet-stream"))
    site.add("/poster.png", PNG, content_type="image/png")
    site.add("/media/clip.en.vtt", VTT, content_type="text/vtt")
    site.html("/video.html", "MP4", '<video controls src="/media/clip.mp4" poster="/poster.png">'
              '<track kind="subtitles" srclang="en" src="/media/clip.en.vtt"></video>')
    site.html("/hls.html", "HLS", '<video id="v"></video><script>'
              'player.load("/media/hls/master.m3u8")</script>')
    site.html("/dash.html", "DASH", '<div data-manifest="/media/dash/manifest.mpd"></div>')
    site.html("/audio.html", "Audio", '<audio controls><source src="/media/audio.m4a" '
              'type="audio/mp4"></audio>')
    site.html("/gone.html", "Gone", '<video src="/media/removed.mp4"></video>')
    site.html("/embed.html", "Embed", '<p>A post</p><iframe src="/player.html"></iframe>')
    site.html("/player.html", "Player", '<video src="/media/embedded.mp4"></video>')
    site.add("/media/embedded.mp4", files["/media/clip.mp4"], content_type="video/mp4")
    # A stream whose second segment is cut mid-way by a reset.
    playlist = files["/media/hls/clip.m3u8"].decode().replace("clip-", "/media/hls/clip-")
    playlist = playlist.replace("/media/hls/clip-1.ts", "/media/cut-1.ts")
    site.add("/media/cut.m3u8", playlist, content_type=TYPES[".m3u8"])
    site.add("/media/cut-1.ts", handler=reset_after(5000, declared=60000))
    site.html("/cut.html", "Cut", '<video src="/media/cut.m3u8"></video>')
    # A live stream: a playlist without an end (its segments are those of the clip).
    live = files["/media/hls/clip.m3u8"].decode().replace("clip-", "/media/hls/clip-")
    live = live.replace("#EXT-X-ENDLIST\n", "").replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "")
    site.add("/media/live.m3u8", live, content_type=TYPES[".m3u8"])
    site.html("/live.html", "Live", '<video src="/media/live.m3u8"></video>')
    return site


def trickle(body: bytes, piece: int = 4096, pause: float = 0.1):
    """A handler sending `body` slowly (a large download, in a test's time)."""
    import time

    def handler(h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for start in range(0, len(body), piece):
            h.wfile.write(body[start:start + piece])
            h.wfile.flush()
            time.sleep(pause)
    return handler


def stall_after(body: bytes, n_bytes: int, seconds: float = 120.0):
    """A handler that sends the first n_bytes of `body`, then nothing for `seconds`."""
    import time

    def handler(h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:n_bytes])
        h.wfile.flush()
        time.sleep(seconds)
    return handler
