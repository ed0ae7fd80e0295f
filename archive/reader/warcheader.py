"""A WARC record's header read as warcio reads it: fields (first occurrence, names
without case), target URIs (wget's <...> removed, spaces escaped), and the fields that may
not repeat."""

from __future__ import annotations

from archive.warc.writer import WARC_VERSION_LINES

HEADER_LIMIT = 8 << 20          # bytes of WARC headers in one record we are willing to hold
# WARC header fields that decide how a record is read and found. The standard lets none of
# them repeat; readers that meet one twice disagree on which counts (warcio takes the
# first, warcio.js, and with it ReplayWeb.page, the last), so replay could read another
# block, payload or address than the one checked.
SINGLE_FIELDS = frozenset((
    "content-length", "content-type", "warc-type", "warc-target-uri", "warc-date",
    "warc-record-id", "warc-block-digest", "warc-payload-digest", "warc-segment-number",
    "warc-truncated", "warc-refers-to", "warc-refers-to-target-uri", "warc-refers-to-date",
))


class Unusual(Exception):
    """The fast reader met a shape it does not handle; warcio's reader decides."""


# field names as written -> as compared; the names of one file are nearly always the same
# few, and normalising each anew was a good part of the per-record work
_FIELD_NAMES: dict[str, str] = {}
FIELD_NAMES_KEPT = 4096


def header_fields(block: bytes) -> dict[str, str]:
    """WARC header fields (first occurrence of each name, lowercased) of a header block
    ending in CRLF CRLF; raises Unusual for anything warcio would read differently."""
    head = block[:-4]
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise Unusual("bare CR or LF in the header")
    try:
        lines = head.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        # warcio decodes each line on its own: UTF-8, else ISO-8859-1
        lines = []
        for raw in head.split(b"\r\n"):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(raw.decode("iso-8859-1"))
    if lines[0] not in WARC_VERSION_LINES:
        raise Unusual("unexpected WARC version line")
    fields: dict[str, str] = {}
    names = _FIELD_NAMES
    for line in lines[1:]:
        # the value is the rest of the line, stripped as warcio strips it (the line's
        # end, then the start of the value)
        name, sep, value = line.partition(":")
        if not sep:
            raise Unusual("header continuation, blank line or line without a colon")
        key = names.get(name)
        if key is None:
            if not name.strip() or name[0] in " \t":
                raise Unusual("header continuation, blank line or line without a colon")
            key = name.rstrip(" \t").lower()
            if len(names) < FIELD_NAMES_KEPT:
                names[name] = key
        name, value = key, value.strip()
        if name not in fields:
            fields[name] = value
        elif name in SINGLE_FIELDS and fields[name] != value:
            raise Unusual("a header field given twice with different values")
    return fields


def conflicting_fields(headers: list[tuple[str, str]]) -> list[str]:
    """Why a record's WARC header cannot be read one way only: SINGLE_FIELDS given twice
    with different values."""
    first: dict[str, str] = {}
    found = []
    for name, value in headers:
        key = name.lower()
        if key not in SINGLE_FIELDS:
            continue
        if key not in first:
            first[key] = value
        # warcio rewrites the last WARC-Target-URI it holds (<...> removed, spaces escaped)
        elif first[key] != value and not (key == "warc-target-uri" and target_uri(first[key]) == value):
            found.append(f"{name} is given twice, as {first[key]!r} and {value!r}: readers disagree "
                         "on which counts (warcio takes the first, warcio.js and ReplayWeb.page "
                         "the last)")
    return found


def refers_to(fields: dict[str, str]) -> tuple[str | None, str | None]:
    """A revisit's WARC-Refers-To-Target-URI (read as warcio reads a target URI) and
    WARC-Refers-To-Date."""
    return (target_uri(fields.get("warc-refers-to-target-uri")),
            fields.get("warc-refers-to-date"))


def target_uri(uri: str | None) -> str | None:
    """A WARC-Target-URI (or WARC-Refers-To-Target-URI) value as warcio reads it (wget's
    <...> removed, spaces escaped)."""
    if uri is not None and uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    if uri is not None and " " in uri:
        uri = uri.replace(" ", "%20")
    return uri
