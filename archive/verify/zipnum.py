"""The idx of a ZipNum index (archive.warc.zipnum) against the blocks it names.

Replay (wabac.js, pywb) finds a URL through the idx alone: it loads the one block whose
first key comes before the URL's, at the offset and length the idx gives. A block the
idx misplaces, leaves out or names twice is an index line replay never finds, so the
idx is held to the index exactly: one line per gzip member, in order, each at that
member's offset and length, with its digest and its first key. The digest may be of the
block's lines (what wabac.js checks, and what we write) or of its gzip bytes (what
py-wacz and js-wacz write): either binds the block.
"""

from __future__ import annotations

from archive.reader.members import GzipMember, IdxSink, IndexSink
from archive.reader.problems import Problem
from archive.warc.zipnum import FORMAT


def idx_problems(idx: IdxSink, indexes: dict[str, IndexSink], ours: bool) -> list[Problem]:
    """What is wrong with `idx` against the index members (by member name) it names."""
    problems = list(idx.problems)
    if idx.meta is None:
        return problems + [Problem("its first line is not the `!meta 0 {...}` line", idx.name)]
    folder = idx.name.rsplit("/", 1)[0]
    default = idx.meta.get("filename")
    if idx.meta.get("format") != FORMAT:
        problems.append(Problem(f"its format is {str(idx.meta.get('format'))[:40]!r}, not {FORMAT}", idx.name))
    by_file: dict[str, list] = {}
    for number, entry in idx.blocks:
        name = entry.filename or default
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"line {number} names no index file", idx.name))
            continue
        by_file.setdefault(f"{folder}/{name}", []).append((number, entry))
    if not idx.blocks and not isinstance(default, str):
        problems.append(Problem("it names no index file", idx.name))
    if not by_file and isinstance(default, str):
        by_file[f"{folder}/{default}"] = []      # an index of no lines: no blocks
    for name, blocks in by_file.items():
        sink = indexes.get(name)
        if sink is None or not name.endswith(".gz"):
            problems.append(Problem(f"it names {name}, which is not a gzip index of this capture", idx.name))
            continue
        problems.extend(_blocks(idx.name, blocks, sink, ours))
    return problems


def _blocks(idx_name: str, blocks: list, sink: IndexSink, ours: bool) -> list[Problem]:
    if sink.stopped:
        return []           # the index itself cannot be read: said once, in its own problems
    if sink.too_many_members:
        return [Problem(f"{sink.name} has more than {len(sink.members)} blocks: its idx was not checked", idx_name)]
    members = sink.members
    if not blocks:
        if any(m.lines for m in members):
            return [Problem(f"it names no block of {sink.name}, which holds index lines", idx_name)]
        return []
    problems, previous = [], None
    for position, (number, entry) in enumerate(blocks):
        member: GzipMember | None = members[position] if position < len(members) else None
        said = f"line {number} (block at offset {entry.offset}, {entry.length} bytes)"
        if member is None:
            problems.append(Problem(f"{said}: {sink.name} has no such block", idx_name))
            continue
        if (entry.offset, entry.length) != (member.offset, member.length):
            problems.append(Problem(f"{said}: the block there is at offset {member.offset}, "
                                    f"{member.length} bytes", idx_name))
        elif entry.digest is not None and entry.digest.lower() not in (member.plain_digest, member.digest):
            problems.append(Problem(f"{said}: the block's digest is {member.plain_digest} (of its "
                                    f"lines; {member.digest} of its gzip bytes), the idx says "
                                    f"{entry.digest[:80]}", idx_name))
        first = member.first
        # py-wacz writes `<surt> <timestamp>`, js-wacz the SURT alone
        if first is None or entry.key not in (first[0], f"{first[0]} {first[1]}"):
            problems.append(Problem(f"{said}: its key {entry.key[:200]!r} is not the block's first "
                                    f"({' '.join(first) if first else 'it holds no line'})", idx_name))
        if not member.at_line_end:
            problems.append(Problem(f"{said}: its last line runs on into the next block", idx_name))
        # equal first keys: wabac.js keeps one block per key, so the other one is never read
        if previous is not None and (entry.key < previous or (ours and entry.key == previous)):
            problems.append(Problem(f"{said}: its key does not come after the block before it", idx_name))
        previous = entry.key
    if len(members) > len(blocks):
        missing = members[len(blocks)]
        problems.append(Problem(f"{len(members) - len(blocks)} block(s) of {sink.name}, from offset "
                                f"{missing.offset}, are in no line of the idx: replay cannot find them",
                                idx_name))
    return problems
