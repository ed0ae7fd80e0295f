"""The CDXJ index in blocks ("ZipNum", format `cdxj-gzip-1.0`), as Webrecorder's tools
write it and wabac.js (ReplayWeb.page), pywb and py-wacz read it.

`index.cdx.gz` is a series of gzip members, each a block of sorted CDXJ lines;
`index.idx` starts with a `!meta 0 {...}` line and has one line per block: the block's
first key (`<surt> <timestamp>`, as py-wacz's cdxj-indexer writes it) then JSON
`{"offset", "length", "digest"}` of that gzip member in `index.cdx.gz`. The digest is
`sha256:<hex>` of the block's lines (uncompressed): what wabac.js (ReplayWeb.page)
computes when it checks a block it loads (`doCDXLoad`, with its hash checks on).
py-wacz and js-wacz hash the gzip bytes instead, which wabac.js then finds not to match.
A reader loads only the blocks a URL can be in, so a capture of millions of records
replays without loading its whole index.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from archive.values import parse_json

FORMAT = "cdxj-gzip-1.0"
DATA_NAME = "index.cdx.gz"
# js-wacz (which browsertrix-crawler uses) cuts blocks of 3000 lines, py-wacz 1024
BLOCK_LINES = 3000


@dataclass(frozen=True)
class Block:
    key: str         # `<surt> <timestamp>` of its first line
    offset: int      # in index.cdx.gz
    length: int
    digest: str      # `sha256:<hex>` of its lines


def line_key(line: str) -> str:
    """`<surt> <timestamp>` of a CDXJ line: what a block is found by."""
    return " ".join(line.split(" ", 2)[:2])


def blocks_of(lines: Iterable[str], block_lines: int = BLOCK_LINES) -> Iterator[list[str]]:
    """The lines sorted and cut into blocks of about `block_lines`, one at a time; a cut
    only falls where the key changes, so no two blocks share a first key (wabac.js keeps
    its blocks by first key: a second block under the same key would be lost to replay).
    Lines that sort themselves (a `sorted()` method: a million of them, sorted on disk)
    are taken in that order."""
    current: list[str] = []
    ordered = lines.sorted() if hasattr(lines, "sorted") else sorted(lines)
    for line in ordered:
        if len(current) >= block_lines and line_key(line) != line_key(current[-1]):
            yield current
            current = []
        current.append(line)
    if current:
        yield current


def write_zipnum(lines: Iterable[str], block_lines: int = BLOCK_LINES) -> tuple[bytes, bytes]:
    """(index.cdx.gz, index.idx) for these CDXJ lines; the same lines give the same bytes."""
    data: list[bytes] = []
    idx = write_zipnum_to(lines, data.append, block_lines)
    return b"".join(data), idx


def write_zipnum_to(lines: Iterable[str], write: Callable[[bytes], object],
                    block_lines: int = BLOCK_LINES) -> bytes:
    """Hand index.cdx.gz to `write` one gzip member (block) at a time, and return
    index.idx (a line per block: small). Only one block is held at a time, so a capture
    of millions of records is indexed in the memory of one."""
    idx = [meta_line()]
    offset = 0
    for block in blocks_of(lines, block_lines):
        # mtime=0: the same index gives the same bytes whenever it is sealed
        lines_bytes = "".join(line + "\n" for line in block).encode("utf-8")
        member = gzip.compress(lines_bytes, compresslevel=6, mtime=0)
        idx.append(idx_line(Block(line_key(block[0]), offset, len(member),
                                  "sha256:" + hashlib.sha256(lines_bytes).hexdigest())))
        write(member)
        offset += len(member)
    if len(idx) == 1:
        write(gzip.compress(b"", mtime=0))    # an empty index is still a gzip file
    return "".join(line + "\n" for line in idx).encode("utf-8")


def meta_line() -> str:
    return "!meta 0 " + json.dumps({"format": FORMAT, "filename": DATA_NAME})


def idx_line(block: Block) -> str:
    return f"{block.key} " + json.dumps({"offset": block.offset, "length": block.length,
                                         "digest": block.digest})


@dataclass(frozen=True)
class IdxEntry:
    key: str
    filename: str | None
    offset: int
    length: int
    digest: str | None


def parse_meta(line: str) -> dict:
    """The JSON of a `!meta 0 {...}` line; ValueError when it is not one."""
    if not line.startswith("!meta"):
        raise ValueError("not a !meta line")
    start = line.find(" {")
    value = parse_json(line[start + 1:]) if start >= 0 else None
    if not isinstance(value, dict):
        raise ValueError("the !meta line holds no JSON object")
    return value


def parse_idx_line(line: str) -> IdxEntry:
    """One block line: `<key> {json}` (cdxj-gzip-1.0) or pywb's tab-separated
    `<key>\\t<filename>\\t<offset>\\t<length>`; ValueError on anything else."""
    if "\t" in line:
        key, filename, offset, length = line.split("\t")[:4]
        return IdxEntry(key, filename, _number(offset), _number(length), None)
    start = line.find(" {")
    if start < 0:
        raise ValueError("no JSON in the line")
    fields = parse_json(line[start + 1:])
    if not isinstance(fields, dict):
        raise ValueError("not a JSON object")
    filename, digest = fields.get("filename"), fields.get("digest")
    if not isinstance(filename, (str, type(None))) or not isinstance(digest, (str, type(None))):
        raise ValueError("filename and digest are text")
    return IdxEntry(line[:start], filename, _number(fields.get("offset")),
                    _number(fields.get("length")), digest)


def _number(value) -> int:
    # bool is an int to Python, and "1e3" or "٣" are not byte offsets
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str)
                                                                  and value.isascii() and value.isdigit())):
        raise ValueError(f"{str(value)[:40]!r} is not a byte count")
    number = int(value)
    if number < 0:
        raise ValueError("negative byte count")
    return number
