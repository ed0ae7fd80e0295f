"""The text of a captured page, for search and for pages.jsonl: an HTML page's title,
meta description and visible text in the page's own charset, a PDF's text (poppler's
pdftotext), plain text as it is. Bodies come here decoded (chunking and gzip undone)."""

from __future__ import annotations

import codecs
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

MAX_BODY = 32 << 20         # bytes of one decoded body read for its text
MAX_TEXT = 1_000_000        # characters of text kept for one page
MAX_TITLE = 2000
PDF_TIMEOUT = 60            # seconds pdftotext may take over one file
PDF_PAGES = 500             # pages of one PDF read

HTML_TYPES = ("text/html", "application/xhtml+xml")
CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.I)
SPACES = re.compile(r"\s+")
HIDDEN = "script, style, noscript, template, svg, head"


@dataclass(frozen=True)
class PageText:
    title: str = ""
    description: str = ""
    text: str = ""

    def searchable(self) -> str:
        """What a search looks through besides the title: the description, then the text."""
        return f"{self.description} {self.text}" if self.description else self.text


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _param_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    # browsers read latin-1 and ascii labels as windows-1252 (WHATWG Encoding)
    return "cp1252" if name in ("latin-1", "iso8859-1", "ascii") else name


def charset(body: bytes, content_type: str | None) -> str:
    """The encoding a browser would read the page in: a byte order mark, the HTTP header's
    charset, a <meta> charset in the first 4 KiB, else UTF-8 if it decodes, else windows-1252."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return name
    found = _codec(_param_charset(content_type))
    if found is None:
        match = CHARSET.search(body[:4096])
        found = _codec(match.group(1).decode("ascii")) if match else None
    if found is None:
        try:
            body[:MAX_BODY].decode("utf-8")
            found = "utf-8"
        except UnicodeDecodeError:
            found = "cp1252"
    return found


def _clean(text: str | None, limit: int = MAX_TEXT) -> str:
    return SPACES.sub(" ", text or "").strip()[:limit]


def html_text(body: bytes, content_type: str | None = None) -> PageText:
    from selectolax.lexbor import LexborHTMLParser    # loaded only when pages are read

    from archive.capture.links import flatten_deep    # one rule for reading hostile nesting

    html = body.decode(charset(body, content_type), errors="replace")
    # read as a browser reads it: lexbor takes minutes over 100,000 nested elements, and
    # the text is read while sealing and cataloguing
    tree = LexborHTMLParser(flatten_deep(html)[0])
    title = tree.css_first("title")
    title = title.text() if title is not None else ""
    description = ""
    for meta in tree.css("meta[name], meta[property]"):
        name = (meta.attributes.get("name") or meta.attributes.get("property") or "").lower()
        if name in ("description", "og:description") and meta.attributes.get("content"):
            description = meta.attributes["content"]
            break
    for node in tree.css(HIDDEN):
        node.decompose()
    root = tree.body or tree.root
    text = root.text(deep=True, separator=" ", strip=True) if root is not None else ""
    return PageText(_clean(title, MAX_TITLE), _clean(description, 10_000), _clean(text))


def pdf_text(body: bytes) -> PageText:
    """The text of a PDF by poppler's pdftotext; nothing when it is not installed or fails."""
    tool = shutil.which("pdftotext")
    if tool is None:
        return PageText()
    with tempfile.NamedTemporaryFile(suffix=".pdf") as tmp:
        tmp.write(body)
        tmp.flush()
        try:
            done = subprocess.run([tool, "-q", "-enc", "UTF-8", "-l", str(PDF_PAGES), tmp.name, "-"],
                                  capture_output=True, timeout=PDF_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return PageText()
    return PageText(text=_clean(done.stdout[:MAX_TEXT * 4].decode("utf-8", errors="replace")))


def extract_text(body: bytes, content_type: str | None) -> PageText | None:
    """The text of a decoded body by its media type; None for types without text (images)."""
    kind = media_type(content_type)
    if kind in HTML_TYPES or (not kind and body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))):
        return html_text(body, content_type)
    if kind == "application/pdf" or body.startswith(b"%PDF-"):
        return pdf_text(body)
    if kind == "text/plain":
        return PageText(text=_clean(body.decode(charset(body, content_type), errors="replace")))
    return None
