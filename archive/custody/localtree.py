"""The Merkle tree of a folder store's ledger, kept beside `custody/ledger.jsonl`:

    custody/tree/offsets.bin     8 bytes (big-endian) a entry: where its line starts
    custody/tree/level-KK.bin    32 bytes a perfect node of level KK, in index order
                                 (level 00: the leaf hashes)
    custody/heads.jsonl          one signed head a line, one per append
    custody/index/<xx>.seqs      "<capture id> <seq>" a line for each entry naming a capture,
                                 in one of 256 files by the first byte of the id's SHA-256
                                 (a lookup reads 1/256 of the index, an append touches one file)

Every file is only appended to, under the ledger's lock, and is derived from the ledger:
a write cut short (a full disk, a crash) is cut back or caught up by the next append or
`archive custody repair`. A node is read with one pread, so a proof costs a few dozen
reads whatever the size of the log.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterator

from archive.custody import merkle
from archive.custody.entry import canonical
from archive.custody.head import make_head

OFFSET = 8
HASH = 32


def cut_to(path: Path, size: int) -> None:
    """Cut a file back to `size` bytes (a write that did not finish)."""
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())


def torn_tail(path: Path) -> int | None:
    """Where an unterminated last line starts, or None (no file, or it ends in a newline)."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            if end == 0:
                return None
            fh.seek(end - 1)
            if fh.read(1) == b"\n":
                return None
            pos = end
            while pos > 0:
                step = min(1 << 16, pos)
                pos -= step
                fh.seek(pos)
                cut = fh.read(step).rfind(b"\n")
                if cut >= 0:
                    return pos + cut + 1
            return 0
    except FileNotFoundError:
        return None


def read_line_at(fh, offset: int) -> bytes:
    """The line starting at `offset` (without its newline; to the end if unterminated)."""
    out = b""
    while True:
        chunk = os.pread(fh.fileno(), 1 << 14, offset + len(out))
        cut = chunk.find(b"\n")
        if cut >= 0:
            return out + chunk[:cut]
        if not chunk:
            return out
        out += chunk


class LocalTree:
    def __init__(self, custody_dir: Path) -> None:
        self.dir = custody_dir / "tree"
        self.heads = custody_dir / "heads.jsonl"
        self.index_dir = custody_dir / "index"

    def exists(self) -> bool:
        return (self.dir / "offsets.bin").exists()

    def _level(self, level: int) -> Path:
        return self.dir / f"level-{level:02d}.bin"

    def size(self) -> int:
        """Entries the tree covers."""
        try:
            return (self.dir / "offsets.bin").stat().st_size // OFFSET
        except FileNotFoundError:
            return 0

    def offset(self, index: int) -> int:
        with open(self.dir / "offsets.bin", "rb") as fh:
            value = os.pread(fh.fileno(), OFFSET, index * OFFSET)
        if len(value) != OFFSET:
            raise KeyError(f"entry {index + 1} is past the tree")
        return int.from_bytes(value, "big")

    def node(self, level: int, index: int) -> bytes:
        try:
            with open(self._level(level), "rb") as fh:
                value = os.pread(fh.fileno(), HASH, index * HASH)
        except FileNotFoundError:
            value = b""
        if len(value) != HASH:
            raise KeyError((level, index))
        return value

    def nodes(self, wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        return {n: self.node(*n) for n in wanted}

    def peaks(self, size: int) -> list[bytes]:
        return [self.node(*n) for n in merkle.peak_nodes(size)]

    def _bucket(self, capture_id: str) -> Path:
        return self.index_dir / f"{hashlib.sha256(capture_id.encode()).hexdigest()[:2]}.seqs"

    def seqs_of(self, capture_id: str) -> list[int]:
        try:
            data = self._bucket(capture_id).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return []
        name, out = capture_id.encode() + b" ", []
        start = data.find(name)
        while start >= 0:
            if start == 0 or data[start - 1] == 10:      # at the start of a line
                end = data.find(b"\n", start)
                value = data[start + len(name): end if end >= 0 else len(data)]
                if end >= 0 and value.isdigit():
                    out.append(int(value))
            start = data.find(name, start + 1)
        return out

    def mend(self) -> None:
        """Cut back what an interrupted write left half done: a partial offset or node,
        offsets and leaves of different counts, nodes past what they cover, a torn head
        line. Missing upper nodes are made again from the level below."""
        self.dir.mkdir(parents=True, exist_ok=True)
        offsets, leaves = self.dir / "offsets.bin", self._level(0)
        for path in (offsets, leaves):
            if not path.exists():
                path.touch()
        size = min(offsets.stat().st_size // OFFSET, leaves.stat().st_size // HASH)
        if offsets.stat().st_size != size * OFFSET:
            cut_to(offsets, size * OFFSET)
        for level in range(size.bit_length() + 2):
            path, want = self._level(level), size >> level
            if not path.exists():
                if want == 0:
                    continue
                path.touch()
            have = path.stat().st_size // HASH
            if have > want or path.stat().st_size != have * HASH:
                have = min(have, want)
                cut_to(path, have * HASH)
            if have < want:
                with open(path, "ab") as out:
                    for index in range(have, want):
                        out.write(merkle.node_hash(self.node(level - 1, 2 * index),
                                                   self.node(level - 1, 2 * index + 1)))
                    out.flush()
                    os.fsync(out.fileno())
        start = torn_tail(self.heads)
        if start is not None:
            cut_to(self.heads, start)

    def add(self, start: int, lines: list[bytes], entries: list[dict | None], signer) -> dict:
        """Cover entries just appended to the ledger (their lines from offset `start`)
        and write a head for the new size; returns the head."""
        size = self.size()
        frontier = merkle.Frontier(size, self.peaks(size))
        handles: dict[int, object] = {}
        index_lines: dict[str, list[bytes]] = {}
        try:
            with open(self.dir / "offsets.bin", "ab") as offsets:
                for line, entry in zip(lines, entries):
                    offsets.write(start.to_bytes(OFFSET, "big"))
                    start += len(line) + 1
                    for level, value in enumerate(frontier.append(line)):
                        if level not in handles:
                            handles[level] = open(self._level(level), "ab")
                        handles[level].write(value)
                    capture = entry.get("capture") if entry else None
                    if isinstance(capture, str) and _safe_name(capture):
                        index_lines.setdefault(self._bucket(capture), []).append(
                            b"%s %d\n" % (capture.encode(), frontier.size))
                for fh in handles.values():
                    fh.flush()
                    os.fsync(fh.fileno())
                offsets.flush()
                os.fsync(offsets.fileno())
        finally:
            for fh in handles.values():
                fh.close()
        if index_lines:
            self.index_dir.mkdir(parents=True, exist_ok=True)
        for bucket, seqs in index_lines.items():
            with open(bucket, "ab") as fh:
                fh.write(b"".join(seqs))
                fh.flush()
                os.fsync(fh.fileno())
        head = make_head(frontier.size, frontier.root(), signer)
        self.append_head(head)
        return head

    def append_head(self, head: dict) -> None:
        before = self.heads.stat().st_size if self.heads.exists() else 0
        try:
            with open(self.heads, "ab") as fh:
                fh.write(canonical(head) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            cut_to(self.heads, before)
            raise

    def latest_head(self) -> bytes | None:
        """The bytes of the last whole head line."""
        return next(self.recent_heads(), None) or None

    def recent_heads(self) -> Iterator[bytes]:
        """Whole head lines, newest first (a torn last line left out), read backwards
        in blocks: the newest few cost a read or two whatever the size of the file."""
        try:
            fh = open(self.heads, "rb")
        except FileNotFoundError:
            return
        with fh:
            torn = torn_tail(self.heads)
            pos = torn if torn is not None else fh.seek(0, os.SEEK_END)
            data = b""                  # bytes from pos on: whole lines, each ending in "\n"
            while True:
                cut = data.rfind(b"\n", 0, len(data) - 1)
                if cut >= 0:
                    yield data[cut + 1:-1]
                    data = data[:cut + 1]
                elif pos == 0:
                    if data:
                        yield data[:-1]
                    return
                else:
                    step = min(1 << 14, pos)
                    pos -= step
                    data = os.pread(fh.fileno(), step, pos) + data

    def iter_heads(self) -> Iterator[tuple[str, bytes]]:
        try:
            fh = open(self.heads, "rb")
        except FileNotFoundError:
            return
        with fh:
            for number, line in enumerate(fh, 1):
                if line.endswith(b"\n"):
                    yield f"{self.heads.name} line {number}", line[:-1]


class LevelReader:
    """The stored offsets and nodes read in order, for the full check (sequential,
    buffered: one pass over each file)."""

    def __init__(self, tree: LocalTree, start: int = 1) -> None:
        self.tree = tree
        self.start = start           # the first entry whose offset and nodes are read
        self.files: dict[int, object] = {}

    def _file(self, name: str | int):
        if name not in self.files:
            path = self.tree.dir / "offsets.bin" if name == "offsets" else self.tree._level(name)
            try:
                fh = self.files[name] = open(path, "rb", buffering=1 << 16)
            except FileNotFoundError:
                self.files[name] = None
            else:
                # level k's first node completed at or after entry `start`
                first = self.start - 1 if name == "offsets" else -(-self.start >> name) - 1
                fh.seek(first * (OFFSET if name == "offsets" else HASH))
        return self.files[name]

    def next_offset(self) -> int | None:
        fh = self._file("offsets")
        value = fh.read(OFFSET) if fh else b""
        return int.from_bytes(value, "big") if len(value) == OFFSET else None

    def next_node(self, level: int) -> bytes | None:
        fh = self._file(level)
        value = fh.read(HASH) if fh else b""
        return value if len(value) == HASH else None

    def close(self) -> None:
        for fh in self.files.values():
            if fh:
                fh.close()


def _safe_name(capture: str) -> bool:
    from archive.ids import is_capture_id
    return is_capture_id(capture)
