"""Links and page requisites found in HTML and CSS, with a real HTML parser (lexbor)."""

from __future__ import annotations

import re
from itertools import accumulate, islice
from operator import sub
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

from requests.utils import parse_header_links
from selectolax.lexbor import LexborHTMLParser

CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.I)
CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.I)
# image-set("a.png" 1x, "b.png" 2x): bare strings are URLs there (url() is found anyway)
CSS_IMAGE_SET = re.compile(r"""image-set\(([^()]*(?:\([^()]*\)[^()]*)*)\)""", re.I)
CSS_STRING = re.compile(r""""([^"]*)"|'([^']*)'""")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
REFRESH_URL = re.compile(r"""^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?["']?([^"']+)""", re.I)

# (tag, attribute) of page requisites; an attribute ending in "srcset" holds a list
REQUISITE_ATTRS = [
    ("img", "src"), ("img", "srcset"), ("img", "data-src"), ("img", "data-srcset"),
    ("source", "src"), ("source", "srcset"), ("source", "data-srcset"), ("script", "src"),
    ("video", "src"), ("video", "poster"), ("audio", "src"), ("track", "src"),
    ("embed", "src"), ("object", "data"), ("input", "src"), ("iframe", "src"),
    ("frame", "src"), ("image", "href"), ("use", "href"), ("link", "imagesrcset"),
    # the background images of old table layouts, still on many official sites
    ("body", "background"), ("table", "background"), ("td", "background"), ("th", "background"),
]
# SVG 1.1's xlink:href (no CSS selector matches an attribute name with a colon)
XLINK_TAGS = "image, use"
PAGE_ATTRS = [("a", "href"), ("area", "href")]
LINK_REQUISITE_RELS = {
    "stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "prefetch",
    "modulepreload", "manifest", "mask-icon",
}


# Bounds on what one document can make the crawler do or hold (a hostile page):
MAX_LINKS = 100_000     # links kept from one document; a page with a million holds no more
MAX_DEPTH = 512         # element nesting, as Chromium's HTML parser caps it: deeper is flattened
TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*>")
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# elements whose end tag may be left out (a new one closes the last): they do not nest,
# and old pages leave thousands of <p> and <li> open; not counted, never flattened
OPTIONAL_END = frozenset("p li dt dd tr td th option optgroup rb rt rp thead tbody tfoot colgroup caption "
                         "html head body".split())
FLAT = VOID | OPTIONAL_END
# text that is not markup: "<div>" in a script or a comment opens nothing
RAW_START = re.compile(r"<(script|style|textarea|title)\b|<!--", re.I)
# (in HTML a "/>" closes nothing but a void or foreign element: <div/> is opened)
VOID_TAG = re.compile(r"</?(?:%s)\b" % "|".join(sorted(FLAT)), re.I)
TAG_START = re.compile(r"<(/?)[A-Za-z]")


@dataclass
class Links:
    pages: list[str] = field(default_factory=list)
    requisites: list[str] = field(default_factory=list)
    title: str | None = None
    cut: list[str] = field(default_factory=list)     # why not every link was taken

    def add(self, base: str, raw: str | None, requisite: bool) -> None:
        url = absolute(base, raw)
        if url:
            self.take([url], requisite)

    @property
    def full(self) -> bool:
        return len(self.pages) + len(self.requisites) >= MAX_LINKS

    def take(self, urls: list[str], requisite: bool) -> None:
        """Keep these URLs, up to MAX_LINKS in all; what is left out is said in `cut`."""
        room = MAX_LINKS - len(self.pages) - len(self.requisites)
        if len(urls) > room:
            urls = urls[:max(0, room)]
            self.overflowed()
        (self.requisites if requisite else self.pages).extend(urls)

    def overflowed(self) -> None:
        message = f"more than {MAX_LINKS} links: the rest were not kept or followed"
        if message not in self.cut:
            self.cut.append(message)


def _markup(text: str) -> str:
    """The document without scripts, styles, comments and the like, in one pass (an
    unclosed one runs to the end, as the parser reads it; a regular expression looking
    for each one's end would take time in the square of their number)."""
    lowered, out, at = text.lower(), [], 0
    while match := RAW_START.search(text, at):
        out.append(text[at:match.start()])
        end = "-->" if match.group(1) is None else f"</{match.group(1).lower()}"
        close = lowered.find(end, match.end())
        if close < 0:
            break
        at = close + len(end)
    else:
        out.append(text[at:])
    return "".join(out)


def _deepest(text: str) -> int:
    """How deep elements nest, estimated from start and end tags (the loops run in C:
    a document of a million tags takes a fraction of its parse)."""
    if text.count("<") <= MAX_DEPTH:
        return 0
    steps = [-1 if slash else 1 for slash in TAG_START.findall(VOID_TAG.sub("", _markup(text)))]
    if not steps:
        return 0
    levels = list(accumulate(steps))
    # an end tag with nothing open closes nothing: the depth is the rise above the lowest level before
    return max(map(sub, levels, islice(accumulate(levels, min, initial=0), 1, None)))


def flatten_deep(text: str) -> tuple[str, bool]:
    """The document with elements nested deeper than MAX_DEPTH made siblings (each such
    start tag closed at once, its end tag dropped), as Chromium's parser does: lexbor's
    time grows with the square of the depth (100,000 nested elements took 14 s, 200,000
    two minutes). Attributes, and so links, are kept. (text, whether it was flattened)."""
    if _deepest(text) <= MAX_DEPTH:
        return text, False
    out, at, depth, flattened = [], 0, 0, {}
    for match in TAG.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if name in FLAT:
            continue
        if closing:
            if flattened.get(name):
                flattened[name] -= 1
                out.append(text[at:match.start()])
                at = match.end()
            else:
                depth = max(0, depth - 1)
        else:
            if depth >= MAX_DEPTH:
                flattened[name] = flattened.get(name, 0) + 1
                out.append(text[at:match.end()] + f"</{match.group(2)}>")
                at = match.end()
            else:
                depth += 1
    out.append(text[at:])
    return "".join(out), True


def absolute(base: str, raw: str | None) -> str | None:
    """Resolve a link against base; None for non-HTTP schemes and empty links."""
    if not raw:
        return None
    raw = raw.strip().replace("\n", "").replace("\r", "").replace("\t", "")
    if not raw or raw.startswith("#"):
        return None
    try:
        url = urldefrag(urljoin(base, raw))[0]
    except ValueError:
        return None
    return url if url.startswith(("http://", "https://")) else None


def refresh_target(value: str | None) -> str | None:
    """Where a refresh (`5; url=/next`, in a meta element or an HTTP Refresh header) leads."""
    match = REFRESH_URL.match(value or "")
    return match.group(1) if match else None


def header_requisites(base: str, link_header: str | None) -> list[str]:
    """What an HTTP `Link` header asks a browser to load with the page (rel=preload,
    stylesheet...), as a `<link>` element would."""
    found = []
    for link in parse_header_links(link_header or ""):
        if set((link.get("rel") or "").lower().split()) & LINK_REQUISITE_RELS:
            found.append(absolute(base, link.get("url")))
    return [url for url in found if url]


def charset_of(content_type: str | None, body: bytes) -> str:
    """The document's encoding: Content-Type charset, else <meta charset>, else UTF-8."""
    for match in (
        HEADER_CHARSET.search(content_type or ""),
        META_CHARSET.search(body[:4096]),
    ):
        if match:
            name = match.group(1)
            name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
            try:
                "".encode(name)
                return name
            except LookupError:
                continue
    return "utf-8"


def srcset_urls(value: str) -> list[str]:
    """The URLs of a srcset, parsed as the HTML standard says: a URL may hold commas (image
    services put sizes in the path: /w_300,h_200/a.jpg); the candidates are separated by
    the comma after each URL's descriptors."""
    urls, i, n = [], 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        if url.endswith(","):
            url = url.rstrip(",")      # no descriptors: the comma ends the candidate
        else:
            depth = 0                  # descriptors, up to a comma outside parentheses
            while i < n and not (value[i] == "," and depth == 0):
                depth += {"(": 1, ")": -1 if depth else 0}.get(value[i], 0)
                i += 1
        if url:
            urls.append(url)
    return urls


def css_links(text: str, base: str) -> list[str]:
    found = []
    for match in CSS_URL.finditer(text):
        found.append(next(g for g in match.groups() if g is not None))
    for match in CSS_IMPORT.finditer(text):
        found.append(match.group(1) or match.group(2))
    for match in CSS_IMAGE_SET.finditer(text):
        found += [string.group(1) or string.group(2) for string in CSS_STRING.finditer(match.group(1))
                  if not match.group(1)[:string.start()].rstrip().endswith("(")]   # url(), type()
    return [url for url in (absolute(base, raw) for raw in found) if url]


def extract_css(body: bytes, base: str, content_type: str | None = None) -> Links:
    text = body.decode(charset_of(content_type, b""), errors="replace")
    links = Links()
    links.take(css_links(text, base), requisite=True)
    return links


def extract_html(body: bytes, base: str, content_type: str | None = None) -> Links:
    """Pages and requisites linked from an HTML document, in document order."""
    text, flattened = flatten_deep(body.decode(charset_of(content_type, body), errors="replace"))
    tree = LexborHTMLParser(text)
    links = Links()
    if flattened:
        links.cut.append(f"elements nested deeper than {MAX_DEPTH} were read as siblings, "
                         "as a browser's parser reads them")
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        base = absolute(base, base_tag.attributes.get("href")) or base
    title = tree.css_first("title")
    if title is not None:
        links.title = " ".join(title.text().split()) or None
    # requisites first: a page cut at MAX_LINKS keeps what it needs to be seen
    for tag, attr in REQUISITE_ATTRS:
        for node in _nodes(tree, f"{tag}[{attr}]", links):
            value = node.attributes.get(attr) or ""
            for raw in srcset_urls(value) if attr.endswith("srcset") else [value]:
                links.add(base, raw, requisite=True)
    for node in _nodes(tree, XLINK_TAGS, links):
        links.add(base, node.attributes.get("xlink:href"), requisite=True)
    for node in _nodes(tree, "link[href]", links):
        rels = set((node.attributes.get("rel") or "").lower().split())
        links.add(base, node.attributes.get("href"), requisite=bool(rels & LINK_REQUISITE_RELS))
    for node in _nodes(tree, "style", links):
        links.take(css_links(node.text(), base), requisite=True)
    for node in _nodes(tree, "[style]", links):
        links.take(css_links(node.attributes.get("style") or "", base), requisite=True)
    for node in _nodes(tree, "meta[http-equiv]", links):
        if (node.attributes.get("http-equiv") or "").lower() == "refresh":
            links.add(base, refresh_target(node.attributes.get("content")), requisite=False)
    for tag, attr in PAGE_ATTRS:
        for node in _nodes(tree, f"{tag}[{attr}]", links):
            links.add(base, node.attributes.get(attr), requisite=False)
    return links


def _nodes(tree: LexborHTMLParser, selector: str, links: Links):
    """The nodes a selector matches, until `links` is full (then a cut is noted)."""
    if links.full:
        return
    for node in tree.css(selector):
        if links.full:
            links.overflowed()
            return
        yield node
