"""CDXJ index lines (`<surt> <timestamp> <json>`) for the records we write, and their
parsing when we check an index against its WARC files."""

from __future__ import annotations

import json
import re

from archive.values import parse_json

INDEXED_TYPES = ("response", "revisit", "resource", "metadata")


_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)


def timestamp14(warc_date: str) -> str:
    """`2025-03-08T12:15:00.123456Z` -> `20250308121500`."""
    if warc_date.isascii():     # the usual case, in C (verification does this per record)
        digits = warc_date.encode("ascii").translate(None, _NOT_DIGITS).decode("ascii")
    else:                       # \d takes other scripts' digits too
        digits = re.sub(r"\D", "", warc_date)
    return digits[:14].ljust(14, "0")


def surt_key(url: str) -> str:
    # imported here: surt loads tldextract and requests (0.09 s), which readers of an
    # index (verification) do not need
    from surt import surt

    try:
        return surt(url)
    except Exception:  # noqa: BLE001 - surt raises on odd URLs; fall back to the URL
        return url


def cdxj_line(
    url: str,
    warc_date: str,
    filename: str,
    offset: int,
    length: int,
    record_type: str,
    digest: str | None = None,
    mime: str | None = None,
    status: int | None = None,
) -> str:
    fields = {"url": url}
    if mime:
        fields["mime"] = mime
    if status is not None:
        fields["status"] = str(status)
    if digest:
        fields["digest"] = digest
    fields.update(
        {"length": str(length), "offset": str(offset), "filename": filename}
    )
    if record_type != "response":
        fields["recordType"] = record_type
    return f"{surt_key(url)} {timestamp14(warc_date)} {json.dumps(fields, ensure_ascii=False)}"


def parse_cdxj_line(line: str) -> tuple[str, str, dict]:
    """Split a CDXJ line; raises ValueError on a malformed one."""
    key, stamp, rest = line.split(" ", 2)
    fields = parse_json(rest)
    if not isinstance(fields, dict):
        raise ValueError("CDXJ fields are not a JSON object")
    return key, stamp, fields
