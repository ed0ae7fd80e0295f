"""A self-contained HTML verification report: no scripts, no external resources (a
Content-Security-Policy forbids them), screenshots inlined as data: URIs, laid out to
print cleanly to PDF. Captured URLs are shown as text, never as links: opening the
report must not contact the sites it describes."""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import shlex

from archive import __version__, utctime
from archive.reader.extract import read_record_block
from archive.verify.model import NOT_VERIFIED, VERIFIED, CannotCheck, Report
from archive.verify.report import CHECK_TITLES, facts, failure_rows, headline
from archive.reader.source import Source

SCREENSHOT_LIMIT = 20 << 20
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
STATUS_WORDS = {"pass": "passed", "fail": "FAILED", "warn": "note", "skip": "NOT CHECKED"}

CSS = """
:root { color-scheme: light; }
body { font: 11pt/1.45 "DejaVu Sans", Arial, sans-serif; color: #111; margin: 2em auto; max-width: 60em; padding: 0 1em; }
h1 { font-size: 1.6em; margin: 0; }
h2 { font-size: 1.2em; border-bottom: 1px solid #999; margin-top: 1.6em; break-after: avoid; }
.verdict { padding: 1em 1.2em; border-radius: 6px; border: 3px solid; margin-bottom: 1.2em; }
.verdict p { margin: .3em 0 0; }
.verified { background: #e3f4e6; border-color: #1b7a32; color: #0d4a1c; }
.not-verified { background: #fbe4e4; border-color: #b3261e; color: #7a1510; }
.could-not { background: #fff3d6; border-color: #a86b00; color: #5c3b00; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3em .5em; border-bottom: 1px solid #ddd; }
th { width: 11em; font-weight: 600; }
/* a hash or URL inside a sentence breaks at the line's end rather than squeezing the labels */
td.text { overflow-wrap: anywhere; }
table.custody th, table.failures th { width: auto; }
/* break a long URL or hash where the line ends, never a word that fits ("capture/d") */
.mono, td.mono, td.url { font-family: "DejaVu Sans Mono", monospace; font-size: .85em; overflow-wrap: anywhere; }
td.nowrap { white-space: nowrap; }
table.failures td.url { width: 65%; }
.pass { color: #1b7a32; font-weight: 600; } .fail { color: #b3261e; font-weight: 700; }
.warn { color: #555; } .skip { color: #a86b00; font-weight: 700; }
.problems { margin: .2em 0 0 1.2em; padding: 0; }
.page { border: 1px solid #ccc; border-radius: 4px; padding: .6em .8em; margin: .8em 0; break-inside: avoid; }
.media { border-top: 1px dashed #bbb; margin-top: .6em; padding-top: .4em; }
.media img { max-height: 6cm; }
.page img { display: block; max-width: 100%; max-height: 22cm; border: 1px solid #888; margin-top: .5em; }
footer { margin-top: 2em; font-size: .85em; color: #444; }
@page { size: A4; margin: 1.5cm; }
@media print {
  body { margin: 0; max-width: none; }
  .verdict, .pass, .fail, .skip { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  tr, .verdict { break-inside: avoid; }
}
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _verdict_class(report: Report) -> str:
    return {VERIFIED: "verified", NOT_VERIFIED: "not-verified"}.get(report.verdict, "could-not")


def _image_uri(data: bytes | None) -> str | None:
    if not data:
        return None
    mime = next((m for magic, m in IMAGE_MAGIC.items() if data.startswith(magic)), None)
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _checks(report: Report) -> str:
    rows = []
    for check in report.checks:
        problems = "".join(
            f"<li>{_e(p.message)}" + (f" <span class=mono>({_e(p.where())})</span>" if p.where() else "") + "</li>"
            for p in check.problems[:200])
        more = f"<li>… and {len(check.problems) - 200} more</li>" if len(check.problems) > 200 else ""
        rows.append(
            f"<tr><th>{_e(CHECK_TITLES.get(check.name, check.name))}</th>"
            f"<td class='{_e(check.status)} nowrap'>{_e(STATUS_WORDS.get(check.status, check.status))}</td>"
            f"<td class=text>{_e(check.summary)}" + (f"<ul class=problems>{problems}{more}</ul>" if problems else "")
            + "</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _pages(report: Report, source: Source | None) -> str:
    out = []
    for page in report.pages:
        rows = [("URL", page["url"])]
        for label, key in (("captured at", "ts"), ("title", "title"), ("HTTP status", "status"), ("error", "error")):
            if page.get(key) not in (None, ""):
                rows.append((label, page[key]))
        if page.get("sha256"):
            rows.append(("payload SHA-256", page["sha256"]))
        if page.get("record"):
            rows.append(("record", f"{page['record']['file']} at byte offset {page['record']['offset']}"))
        table = "".join(f"<tr><th>{_e(k)}</th><td class=mono>{_e(v)}</td></tr>" for k, v in rows)
        picture = ""
        location = report.screenshots.get(page["url"])
        if location is not None and source is not None:
            try:
                uri = _image_uri(read_record_block(source, location, SCREENSHOT_LIMIT))
            except CannotCheck:     # the file changed since it was checked: not its picture
                uri = None
            if uri:
                picture = f'<img alt="screenshot of {_e(page["url"])}" src="{uri}">'
                if report.verdict != VERIFIED:
                    # A printed page of pictures can be read apart from the verdict above.
                    picture += (f'<p class=fail>{_e(report.verdict)}: this picture may not be '
                                "what was captured.</p>")
            else:
                picture = "<p>(its screenshot record cannot be shown)</p>"
        media = "".join(_media(report, item, source) for item in page.get("media") or ())
        out.append(f"<div class=page><table>{table}</table>{picture}{media}</div>")
    return "".join(out) or "<p>No pages are listed in this file.</p>"


def _failures(report: Report) -> str:
    rows = failure_rows(report)
    if not rows:
        return ""
    body = "".join(f"<tr><td class=url>{_e(url)}</td><td class=nowrap>{_e(kind)}</td><td>{_e(reason)}</td></tr>"
                   for url, kind, reason in rows)
    return (f"<h2>Failed fetches ({len(rows)})</h2><p>Recorded in the WARC as evidence of what "
            "could not be fetched, and when.</p><table class=failures><tr><th>URL</th><th>what</th>"
            f"<th>reason</th></tr>{body}</table>")
def _media(report: Report, item: dict, source: Source | None) -> str:
    """One video or audio item of a page: what became of it, its thumbnail, format,
    duration and SHA-256, and the command that writes it out (the file itself is not
    embedded: the report stays small and self-contained)."""
    status = item.get("status", "unknown") + (f": {item['reason']}" if item.get("reason") else "")
    rows = [("media", f"#{item.get('n', '?')} {item.get('url', '')}"), ("status", status)]
    if item.get("frame"):
        rows.append(("in the frame", item["frame"]))
    if item.get("format"):
        rows.append(("format", item["format"]))
    if item.get("duration") is not None:
        rows.append(("duration", f"{item['duration']:g} s"))
    if item.get("size") is not None:
        rows.append(("size", f"{item['size']} bytes"))
    if item.get("sha256"):
        rows.append(("file SHA-256", item["sha256"]))
    if item.get("stored"):
        rows.append(("stored", f"{item['stored']}, the response of {item.get('storedIn', '?')}: "
                               "the file is its payload, byte for byte"))
    if item.get("record"):
        ext = mimetypes.guess_extension(item.get("contentType") or "") or ".bin"
        command = (f"archive extract {shlex.quote(report.target)} --url {shlex.quote(item['record'])} "
                   f"--out media-{item.get('n', 1)}{ext}")
        rows.append(("record", item["record"] + ("" if item.get("found") else " (NOT IN THE CAPTURE)")))
        rows.append(("write it out", command))
    table = "".join(f"<tr><th>{_e(k)}</th><td class=mono>{_e(v)}</td></tr>" for k, v in rows)
    picture = ""
    location = report.thumbnails.get(item.get("record") or "")
    if location is not None and source is not None:
        try:
            uri = _image_uri(read_record_block(source, location, SCREENSHOT_LIMIT))
        except CannotCheck:
            uri = None
        if uri:
            picture = f'<img alt="thumbnail of media #{_e(item.get("n", "?"))}" src="{uri}">'
    return f"<div class=media><table>{table}</table>{picture}</div>"


def _custody(report: Report) -> str:
    if not report.custody:
        return ""
    columns = ("seq", "time", "event", "actor", "key")
    head = "".join(f"<th>{_e(k)}</th>" for k in columns)
    # words and times whole; only the key's fingerprint (a hash) may break, at the line's end
    rows = "".join(
        "<tr>" + "".join(f"<td class='mono{'' if k in ('actor', 'key') else ' nowrap'}'>"
                         f"{_e(entry.get(k, '') if k != 'key' or entry.get('signed') else 'UNSIGNED')}</td>"
                         for k in columns) + "</tr>"
        for entry in report.custody)
    return f"<h2>Custody history</h2><table class=custody><tr>{head}</tr>{rows}</table>"


def render_html(report: Report, source: Source | None = None) -> str:
    verdict, _, reason = headline(report).partition(": ")
    details = "".join(f"<tr><th>{_e(label)}</th><td class=mono>{_e(value)}</td></tr>"
                      for label, value in facts(report))
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    now = utctime.readable()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>{_e(report.verdict)}: verification of {_e(report.target)}</title>
<style>{CSS}</style></head>
<body>
<section class="verdict {_verdict_class(report)}" id="verdict">
<h1>{_e(verdict)}</h1>
<p>{_e(reason)}</p>
</section>
<h2>What was checked</h2>
<table>{details}</table>
<h2>Checks</h2>
{_checks(report)}
{"<h2>Not checked, and good to know</h2><ul>" + notes + "</ul>" if notes else ""}
<h2>Pages ({len(report.pages)})</h2>
{_pages(report, source)}
{_failures(report)}
{_custody(report)}
<footer>Report made {_e(now)} by archive {_e(__version__)}. To check the file yourself:
<span class=mono>archive verify FILE --trust NAME=PUBLIC-KEY</span>; the file's SHA-256 is
<span class=mono>{_e(report.sha256 or "unknown")}</span>.</footer>
</body></html>
"""


def write_html(report: Report, source: Source | None, path: str) -> None:
    """Write the report whole, then rename it into place."""
    text = render_html(report, source)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
