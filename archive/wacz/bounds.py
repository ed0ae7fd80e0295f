"""How much work a file may make a reader do: bounds that stop hostile files quickly and
never refuse what this tool writes.

Deflate cannot expand its input more than 1032 times (its longest match, 258 bytes,
costs at least two bits), so one layer of gzip or zip compression, however repetitive
the content (a genuine response of gigabytes of zeros), makes at most about a thousand
bytes per byte read. Inflation is therefore bounded by WORK per byte of the FILE read,
counted over every layer: more than that only comes from compression inside compression
(a deflated zip entry holding gzip members), which is a bomb and is stopped within the
first megabytes, whatever sizes it declares. Checking what passes costs time in
proportion to the file's size, and no memory.

Members that must be small (the manifests, evidence files, pages list and index) also
have limits on the size their zip entry declares, so a bomb there is refused before
anything is inflated.
"""

from __future__ import annotations

from archive.wacz.names import INDEX_DIR, PAGES_DIR, WARC_PREFIX

WORK_PER_BYTE = 1100          # bytes inflated per byte of the file read: deflate's 1032, and slack
WORK_FLOOR = 16 << 20         # bytes inflated before the bound applies (headers, first reads)
TEXT_PER_BYTE = 200           # a text member (JSON, CDXJ) deflated more than this is a bomb
TEXT_FLOOR = 64 << 20

JSON_LIMIT = 64 << 20         # datapackage.json, its digest, evidence/*.json
LIST_LIMIT = 4 << 30          # pages/*.jsonl, indexes/*: they grow with a capture, but not past this


class Meter:
    """Bytes of the file read so far, for a reader that sees them only after a layer of
    inflation (a deflated zip entry): its bound counts the file's bytes, not those."""

    def __init__(self) -> None:
        self.read = 0


def over_budget(inflated: int, read: int) -> bool:
    """Whether `inflated` bytes out of `read` bytes of the file is more than any single
    layer of deflate can make: a decompression bomb."""
    return inflated > WORK_FLOOR and inflated > WORK_PER_BYTE * read


def bomb_message(read: int) -> str:
    return (f"decompresses to more than {WORK_PER_BYTE} bytes per byte read, more than one layer "
            f"of compression can make (a decompression bomb); stopped at byte {read}")


def declared_limit(name: str) -> int | None:
    """The most a member that must be small may declare (None: no limit of its own)."""
    if name.startswith(WARC_PREFIX):
        return None
    if name.endswith(".json"):
        return JSON_LIMIT
    if name.startswith((PAGES_DIR, INDEX_DIR)):
        return LIST_LIMIT
    return None


def member_refusal(name: str, declared: int, compressed: int, deflated: bool) -> str | None:
    """Why a zip entry's declared sizes make it a bomb, or None."""
    if deflated and declared > WORK_PER_BYTE * compressed + (1 << 20):
        return f"zip entry {name} claims to expand {declared // max(compressed, 1)} times (a zip bomb)"
    limit = declared_limit(name)
    if limit is None:
        return None
    if declared > limit:
        return f"zip entry {name} claims {declared} bytes; a member like it is never larger than {limit}"
    if deflated and not name.endswith(".gz") and declared > TEXT_PER_BYTE * compressed + TEXT_FLOOR:
        return (f"zip entry {name} claims to expand {declared // max(compressed, 1)} times, "
                "more than any text does (a zip bomb)")
    return None
