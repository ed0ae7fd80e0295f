"""Where custody entries live, appended so that concurrent writers never fork the chain,
and the Merkle tree (RFC 9162) that makes the ledger a verifiable log.

- In a local store: one append-only file `<store>/custody/ledger.jsonl`, one entry a
  line; an exclusive `flock` on the file is held from reading the last entry to the
  fsync of the new one and of its tree (localtree.py), so local writers take turns. An
  append is all or nothing: a write that fails (a full disk) is cut back, and a torn
  line left by a crash is moved aside (`custody/torn/<offset>.bin`) by the next append
  or `archive custody repair`.
- In any other store: one object per entry, `custody/<seq, 12 digits>.json`, created
  with the store's put-if-absent (on S3 a conditional write): a writer that loses the
  race for a sequence number finds the new head and tries the next one. Beside each
  entry, `custody/tree/<millions>/<thousands>/<seq>.json` holds the signed head of the
  log at that size, its peaks and the perfect nodes that entry completed, and
  `custody/index/<capture id>/<seq>` names the entries of each capture. The newest
  head is found by three listings of at most a thousand names each, whatever the size.

A ledger written before the tree existed (a plain hash chain) stays one until
`archive custody upgrade` builds its tree and records the upgrade as an entry.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

from archive.custody import merkle
from archive.custody.entry import canonical, sha256_of
from archive.custody.head import make_head
from archive.custody.localtree import LocalTree, LevelReader, cut_to, read_line_at, torn_tail
from archive.errors import AlreadyExists, ArchiveError, NotFound
from archive.files import fsync_dir
from archive.ids import is_capture_id
from archive.values import parse_json

LEDGER_FILE = "custody/ledger.jsonl"
OBJECT_PREFIX = "custody/"
TREE_PREFIX = "custody/tree/"
INDEX_PREFIX = "custody/index/"
OBJECT_KEY = re.compile(r"^custody/(\d{12})\.json$")
TREE_KEY = re.compile(r"^custody/tree/\d{6}/\d{3}/(\d{12})\.json$")
MAX_RACES = 10_000          # lost put-if-absent races before giving up (never in practice)
MISSING_RUN = 1000          # object numbers missing in a row that end a reading of the ledger
TAIL_BLOCK = 1 << 16
READERS = 16                # parallel reads of ledger objects
BATCH = 10_000              # lines read at once while a tree is built or caught up

Build = Callable[[int, "str | None"], dict]   # (seq, prev hash) -> entry


@dataclass
class Record:
    """One stored entry as found: where, its bytes, and its JSON when it parses."""
    where: str                  # "line 3" or "custody/000000000003.json"
    raw: bytes
    entry: dict | None
    key_seq: int | None = None  # the sequence number an object's key gives
    torn: bool = False          # a last line without its newline: an interrupted write
    offset: int | None = None   # where a line starts in a ledger file


@dataclass
class TreeStep:
    """What the log's tree stores for entry `seq`, for the full check to compare."""
    seq: int
    where: str
    nodes: list[bytes | None]   # the perfect nodes entry `seq` completed (None: missing)
    heads: list[tuple[str, bytes]] = field(default_factory=list)   # heads of this size
    offset: int | None = None   # where a file ledger's index says the entry's line starts
    peaks: list[bytes] | None = None    # an object ledger's peaks at seq (appenders use them)


def parse(raw: bytes) -> dict | None:
    try:
        value = parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class Ledger(Protocol):
    location: str

    def append(self, build: Build, signer=None) -> dict:
        """Append build(next seq, hash of the last entry) atomically; returns the entry."""

    def records(self) -> list[Record]:
        """Every stored entry in storage order."""


def _head_seq(raw: bytes, where: str) -> int:
    entry = parse(raw)
    seq = entry.get("seq") if entry else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ArchiveError(f"the custody ledger's last entry ({where}) is damaged; "
                           "run `archive custody verify`")
    return seq


def _chain(builds: Iterable[Build], seq: int, prev_raw: bytes | None) -> list[tuple[dict, bytes]]:
    out = []
    for build in builds:
        entry = build(seq + 1, sha256_of(prev_raw) if prev_raw is not None else None)
        prev_raw, seq = canonical(entry), seq + 1
        out.append((entry, prev_raw))
    return out


def ordered_map(fn, items: Iterable, workers: int = READERS) -> Iterator:
    """fn over items on `workers` threads, results in order, at most a few hundred in
    flight (memory stays flat however many items there are)."""
    window = workers * 16
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -- a folder store: one file --------------------------------------------------------
class FileLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.tree = LocalTree(self.path.parent)

    def is_log(self) -> bool:
        """Whether the ledger has its tree (a new ledger is a log from its first entry)."""
        return self.tree.exists() or not self.path.exists() or self.path.stat().st_size == 0

    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        # unbuffered: nothing is left in a buffer to be written when the file is closed
        # after a failed write has been cut back
        fh = os.fdopen(fd, "r+b", buffering=0)
        fcntl.flock(fh, fcntl.LOCK_EX)   # released when the file is closed
        return fh

    def append(self, build: Build, signer=None) -> dict:
        return self.append_many([build], signer)[0]

    def append_many(self, builds: list[Build], signer=None) -> list[dict]:
        """Append entries in one write, all or none, and (for a log) one head over them."""
        created = not self.path.exists()
        log = self.is_log()
        with self._locked() as fh:
            self._set_aside_torn_tail()
            if log:
                seq, last = self._catch_up(fh)
            else:
                last, _ = _last_line(fh)
                seq = _head_seq(last, self.location) if last is not None else 0
            made = _chain(builds, seq, last)
            start = fh.seek(0, os.SEEK_END)
            try:
                data = memoryview(b"".join(raw + b"\n" for _, raw in made))
                while data:
                    data = data[os.write(fh.fileno(), data):]
                os.fsync(fh.fileno())
            except OSError:
                cut_to(self.path, start)   # a full disk leaves no half line behind
                raise
            if log:
                try:
                    self.tree.add(start, [raw for _, raw in made], [e for e, _ in made], signer)
                except OSError as exc:
                    raise ArchiveError(
                        f"entry {seq + len(made)} was recorded, but the ledger's tree and head could "
                        f"not be written ({exc.strerror or exc}); the next append or `archive custody "
                        "repair` completes them") from None
        if created:
            fsync_dir(self.path.parent)
        return [e for e, _ in made]

    def _set_aside_torn_tail(self) -> int | None:
        """Move an unterminated last line (a write that never finished: we hold the lock)
        to custody/torn/<offset>.bin and cut the ledger back to its last whole entry."""
        start = torn_tail(self.path)
        if start is None:
            return None
        with open(self.path, "rb") as fh:
            fh.seek(start)
            tail = fh.read()
        aside = self.path.parent / "torn" / f"{start}.bin"
        aside.parent.mkdir(parents=True, exist_ok=True)
        if not aside.exists():
            with open(aside, "xb") as out:
                out.write(tail)
                out.flush()
                os.fsync(out.fileno())
        cut_to(self.path, start)
        return start

    def _catch_up(self, locked) -> tuple[int, bytes | None]:
        """Make the tree cover every whole line (entries whose tree write was cut short);
        returns (entries, bytes of the last one)."""
        with open(self.path, "rb") as fh:
            return self._catch_up_from(fh)

    def _catch_up_from(self, fh) -> tuple[int, bytes | None]:
        self.tree.mend()
        size = self.tree.size()
        last = read_line_at(fh, self.tree.offset(size - 1)) if size else None
        start = self.tree.offset(size - 1) + len(last) + 1 if size else 0
        end = fh.seek(0, os.SEEK_END)
        if size and (start > end or merkle.leaf_hash(last) != self.tree.node(0, size - 1)):
            # never append on top of a ledger cut or rewritten under its tree
            raise ArchiveError(f"the custody ledger {self.location} no longer holds entry {size} as its "
                               "tree recorded it: entries were removed or altered; run `archive custody verify`")
        while start < end:
            lines = []
            pos = start
            fh.seek(start)
            for line in fh:
                if not line.endswith(b"\n") or len(lines) >= BATCH:
                    break
                lines.append(line[:-1])
            if not lines:
                break
            self.tree.add(pos, lines, [parse(line) for line in lines], None)
            size += len(lines)
            last = lines[-1]
            start = pos + sum(len(line) + 1 for line in lines)
        return size, last

    def repair(self) -> list[str]:
        """Set a torn line aside and complete the tree; what was done."""
        done = []
        with self._locked() as fh:
            start = self._set_aside_torn_tail()
            if start is not None:
                done.append(f"an incomplete last line (an interrupted write, not an entry) was moved "
                            f"to {self.path.parent / 'torn' / f'{start}.bin'}")
            if self.is_log():
                before = self.tree.size()
                size, _ = self._catch_up(fh)
                if size != before:
                    done.append(f"the tree now covers entries {before + 1} to {size}")
        return done

    def upgrade(self, signer) -> dict:
        """Build the tree of a plain hash chain (under the lock); returns its head."""
        with self._locked(), open(self.path, "rb") as fh:
            if self.tree.exists():
                raise ArchiveError(f"{self.location} is already a verifiable log")
            self._set_aside_torn_tail()
            self.tree.mend()
            head, pos, lines = None, 0, []
            for line in fh:
                lines.append(line[:-1])
                if len(lines) >= BATCH:
                    head = self.tree.add(pos, lines, [parse(x) for x in lines], signer)
                    pos += sum(len(x) + 1 for x in lines)
                    lines = []
            if lines or head is None:
                head = self.tree.add(pos, lines, [parse(x) for x in lines], signer)
            return head

    # -- reading --------------------------------------------------------------------
    def iter_records(self, start: int = 1) -> Iterator[Record]:
        """Entries in storage order, from entry `start` (found by the tree's offsets)."""
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:      # a folder in its place, a file where its folder should be
            raise ArchiveError(f"cannot read the custody ledger {self.path}: {exc.strerror or exc}") from None
        with fh:
            offset = self._start_of(fh, start)
            fh.seek(offset)
            for number, line in enumerate(fh, start):
                if line.endswith(b"\n"):
                    yield Record(f"line {number}", line[:-1], parse(line[:-1]), offset=offset)
                else:
                    yield Record(f"line {number}", line, None, torn=True, offset=offset)
                offset += len(line)

    def _start_of(self, fh, seq: int) -> int:
        """Where entry `seq`'s line starts: by the tree's offsets, or after the last
        entry they cover."""
        covered = self.tree.size()
        if seq <= covered:
            return self.tree.offset(seq - 1)
        if covered == 0:
            return 0
        start = self.tree.offset(covered - 1)
        return start + len(read_line_at(fh, start)) + 1

    def records(self) -> list[Record]:
        return list(self.iter_records())

    def latest_head(self) -> tuple[str, bytes] | None:
        raw = self.tree.latest_head()
        return (str(self.tree.heads), raw) if raw is not None else None

    def recent_heads(self) -> Iterator[tuple[str, bytes]]:
        """(where, bytes) of the heads, newest first."""
        for back, raw in enumerate(self.tree.recent_heads()):
            yield (f"{self.tree.heads}, {back} lines before its last" if back else str(self.tree.heads)), raw

    def tree_size(self) -> int:
        return self.tree.size()

    def peaks(self, size: int) -> list[bytes]:
        return self.tree.peaks(size)

    def nodes(self, wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        return self.tree.nodes(wanted)

    def entry_at(self, seq: int) -> Record | None:
        if not 0 < seq <= self.tree.size():
            return None
        with open(self.path, "rb") as fh:
            raw = read_line_at(fh, self.tree.offset(seq - 1))
        return Record(f"entry {seq} of {self.path.name}", raw, parse(raw))

    def seqs_of(self, capture_id: str) -> list[int]:
        return self.tree.seqs_of(capture_id) if is_capture_id(capture_id) else []

    def records_after(self, size: int, limit: int) -> tuple[list[Record], bool]:
        """Up to `limit` entries after the first `size` (those no head covers yet), and
        whether there are more."""
        covered = self.tree.size()
        out = [self.entry_at(s) for s in range(size + 1, min(covered, size + limit) + 1)]
        if covered > size + limit:
            return out, True
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:
            return out, False
        with fh:
            offset = self._start_of(fh, covered + 1)
            fh.seek(offset)
            for number, line in enumerate(fh, covered + 1):
                if len(out) >= limit:
                    return out, True
                whole = line.endswith(b"\n")
                out.append(Record(f"line {number}", line[:-1] if whole else line,
                                  parse(line[:-1]) if whole else None, torn=not whole, offset=offset))
                offset += len(line)
        return out, False

    def iter_tree(self, start: int = 1) -> Iterator[TreeStep]:
        reader = LevelReader(self.tree, start)
        heads = ((where, raw, (parse(raw) or {}).get("size")) for where, raw in self.tree.iter_heads())
        pending = next(heads, None)
        while pending is not None and (pending[2] if isinstance(pending[2], int) else 0) < start:
            pending = next(heads, None)        # heads before `start` belong to what --since skips
        try:
            for seq in range(start, self.tree.size() + 1):
                step = TreeStep(seq, f"the tree of {self.path.name}, entry {seq}",
                                [reader.next_node(level) for level in range((seq & -seq).bit_length())],
                                offset=reader.next_offset())
                while pending is not None and not (isinstance(pending[2], int) and pending[2] > seq):
                    step.heads.append(pending[:2])   # this size, or out of order (the check says)
                    pending = next(heads, None)
                yield step
            while pending is not None:           # heads past the tree: the check says
                yield TreeStep(self.tree.size() + 1, pending[0], [], [pending[:2]])
                pending = next(heads, None)
        finally:
            reader.close()


def _last_line(fh) -> tuple[bytes | None, bool]:
    """The last complete line of a file (without its newline), and whether a torn,
    unterminated line follows it. Read backwards, so an append costs the same however
    long the ledger is."""
    pos = fh.seek(0, os.SEEK_END)
    data = b""
    while True:
        cut = data.rfind(b"\n")                 # end of the last complete line
        start = data.rfind(b"\n", 0, max(cut, 0))  # end of the line before it
        if (cut >= 0 and start >= 0) or pos == 0:
            break
        step = min(TAIL_BLOCK, pos)
        pos -= step
        fh.seek(pos)
        data = fh.read(step) + data
    torn = bool(data) and not data.endswith(b"\n")
    return (data[start + 1: cut] if cut >= 0 else None), torn


# -- any other store: one object per entry -------------------------------------------
def object_key(seq: int) -> str:
    return f"{OBJECT_PREFIX}{seq:012d}.json"


def tree_key(seq: int) -> str:
    return f"{TREE_PREFIX}{seq // 10 ** 6:06d}/{seq // 1000 % 1000:03d}/{seq:012d}.json"


def index_key(capture_id: str, seq: int) -> str:
    return f"{INDEX_PREFIX}{capture_id}/{seq:012d}"


def tree_object(head: dict, made: list[bytes], peaks: list[bytes]) -> bytes:
    return canonical({"head": head, "nodes": [n.hex() for n in made], "peaks": [p.hex() for p in peaks]})


def parse_tree_object(raw: bytes) -> dict:
    """{"head", "nodes", "peaks"} with hashes as bytes; ArchiveError when it is not one."""
    value = parse(raw)
    try:
        return {"head": value["head"], "nodes": [bytes.fromhex(n) for n in value["nodes"]],
                "peaks": [bytes.fromhex(p) for p in value["peaks"]]}
    except (TypeError, KeyError, ValueError):
        raise ArchiveError("not a tree object of the custody log") from None


class ObjectLedger:
    def __init__(self, store) -> None:
        self.store = store
        self.location = f"{store.address.rstrip('/')}/{OBJECT_PREFIX}"
        # the last entry seen: (seq, bytes, peaks of the tree at seq; None: a plain chain)
        self._head: tuple[int, bytes | None, list[bytes] | None] | None = None
        self.hidden: list[str] = []      # ledger objects read from behind a delete marker
        # the newest tree object, looked up once (then kept current by this writer's appends):
        # (seq, parsed tree object), None while not looked up, False when there is none
        self._latest: tuple[int, dict] | None | bool = None
        self.gap: tuple[int, int] | None = None   # (first, last) numbers the tree claims but no object holds

    def _get(self, key: str) -> bytes | None:
        """An object's bytes; one hidden behind a delete marker (S3: deleted without a
        version id) is read at its newest version, and noted: it is still the ledger."""
        try:
            return self.store.get_object(key)
        except NotFound:
            raw = self.store.hidden_object(key) if hasattr(self.store, "hidden_object") else None
            if raw is not None and key not in self.hidden:
                self.hidden.append(key)
            return raw

    def _keys(self) -> list[tuple[int, str]]:
        keys = []
        for key in self.store.list_objects(OBJECT_PREFIX):
            match = OBJECT_KEY.match(key)
            if match:
                keys.append((int(match.group(1)), key))
        return sorted(keys)

    def _last_tree(self) -> tuple[int, dict] | None:
        if self._latest is None:
            key = self.store.last_object(TREE_PREFIX)
            match = TREE_KEY.match(key or "")
            self._latest = (int(match.group(1)), parse_tree_object(self.store.get_object(key))) \
                if match else False
        return self._latest or None

    def is_log(self) -> bool:
        return self._last_tree() is not None or self._get(object_key(1)) is None

    def _find_head(self) -> tuple[int, bytes | None, list[bytes] | None]:
        """The last entry: the newest tree object (or, for a plain chain, one listing)
        the first time, then a probe for entries written since; entries a writer
        stopped before covering get their tree object here."""
        if self._head is None:
            last = self._last_tree()
            if last is not None:
                seq, tree = last
                self._head = (seq, self._get(object_key(seq)), tree["peaks"])
            elif self._get(object_key(1)) is None:
                self._head = (0, None, [])                      # a new ledger: a log
            else:
                keys = self._keys()                              # a plain hash chain
                self._head = (keys[-1][0], self.store.get_object(keys[-1][1]), None)
        seq, raw, peaks = self._head
        while (nxt := self._get(object_key(seq + 1))) is not None:
            seq, raw = seq + 1, nxt
            if peaks is not None:
                peaks = self._cover(seq, raw, peaks, None)
        self._head = (seq, raw, peaks)
        return self._head

    def _cover(self, seq: int, raw: bytes, peaks: list[bytes], signer) -> list[bytes]:
        """Write entry seq's tree object (its nodes, peaks and a head) and its index
        name; returns the peaks at seq."""
        frontier = merkle.Frontier(seq - 1, peaks)
        made = frontier.append(raw)
        head = make_head(seq, frontier.root(), signer)
        try:
            self.store.put_object(tree_key(seq), tree_object(head, made, frontier.peaks))
        except AlreadyExists:
            pass            # another writer covered it: the nodes are the same
        self._latest = (seq, {"head": head, "nodes": made, "peaks": frontier.peaks})
        entry = parse(raw)
        capture = entry.get("capture") if entry else None
        if isinstance(capture, str) and is_capture_id(capture):
            try:
                self.store.put_object(index_key(capture, seq), b"")
            except AlreadyExists:
                pass
        return frontier.peaks

    def append(self, build: Build, signer=None) -> dict:
        return self.append_many([build], signer)[0]

    def append_many(self, builds: list[Build], signer=None) -> list[dict]:
        out = []
        for build in builds:
            for attempt in range(MAX_RACES):
                # the head this ledger wrote last is tried first: a lost race (AlreadyExists)
                # is what sends it looking for entries written since
                seq, last_raw, peaks = self._head if self._head and not attempt else self._find_head()
                entry = build(seq + 1, sha256_of(last_raw) if last_raw is not None else None)
                data = canonical(entry)
                try:
                    self.store.put_object(object_key(seq + 1), data)
                except AlreadyExists:
                    continue   # another writer took this number: find the new head, try the next
                if peaks is not None:
                    peaks = self._cover(seq + 1, data, peaks, signer)
                self._head = (seq + 1, data, peaks)
                out.append(entry)
                break
            else:
                raise ArchiveError(f"could not append to the custody ledger in {self.location}: "
                                   f"lost {MAX_RACES} races to other writers")
        return out

    def repair(self) -> list[str]:
        """Cover entries a writer stopped before covering (nothing is ever torn here:
        each entry is one object, written whole or not at all)."""
        covered = self.tree_size()
        self._head, self._latest = None, None
        seq, _, peaks = self._find_head()
        return [f"the tree now covers entries {covered + 1} to {seq}"] if peaks is not None and seq > covered else []

    def upgrade(self, signer) -> dict:
        self._head, self._latest = None, None
        seq, raw, peaks = self._find_head()
        if peaks is not None:
            raise ArchiveError(f"{self.location} is already a verifiable log")
        peaks, head = [], None
        for number, record in enumerate(self.iter_records(), 1):
            if record.key_seq != number:
                raise ArchiveError(f"entry {number} is missing: check the ledger (`archive custody verify`)")
            peaks = self._cover(number, record.raw, peaks, signer if number == seq else None)
        self._head = (seq, raw, peaks)
        last = self._last_tree()
        return last[1]["head"] if last else make_head(0, merkle.empty_root(), signer)

    # -- reading --------------------------------------------------------------------
    def _record(self, seq: int) -> Record | None:
        raw = self._get(object_key(seq))
        return None if raw is None else Record(object_key(seq), raw, parse(raw), key_seq=seq)

    def iter_records(self, start: int = 1) -> Iterator[Record]:
        last = self._last_tree()
        if last is None:
            for seq, key in self._keys():                      # a plain hash chain: list it
                raw = self.store.get_object(key)
                yield Record(key, raw, parse(raw), key_seq=seq)
            return
        size = last[0] if last else 0
        # entries the tree covers, read in parallel by number (no listing), then any
        # written after it; a long run of missing numbers ends the reading (a tree object
        # put far past the end must not cost a read per number it claims)
        missing, seq = 0, start - 1
        for record in ordered_map(self._record, range(start, size + 1)):
            if record is None:
                missing += 1
                if missing >= MISSING_RUN:
                    self.gap = (seq + 1, size)
                    return
                continue
            missing, seq = 0, record.key_seq
            yield record
        seq = max(size, start - 1)
        while (record := self._record(seq + 1)) is not None:
            yield record
            seq += 1

    def records(self) -> list[Record]:
        return list(self.iter_records())

    def latest_head(self) -> tuple[str, bytes] | None:
        last = self._last_tree()
        if last is None:
            return None
        seq, tree = last
        return tree_key(seq), canonical(tree["head"]) if isinstance(tree["head"], dict) else b""

    def recent_heads(self) -> Iterator[tuple[str, bytes]]:
        """(where, bytes) of the heads, newest first: one tree object each (b"" for one
        that is missing or not a tree object)."""
        last = self._last_tree()
        if last is None:
            return
        yield self.latest_head()
        for seq in range(last[0] - 1, 0, -1):
            raw = self._get(tree_key(seq))
            try:
                head = parse_tree_object(raw)["head"] if raw is not None else None
            except ArchiveError:
                head = None
            yield tree_key(seq), canonical(head) if isinstance(head, dict) else b""

    def tree_size(self) -> int:
        last = self._last_tree()
        return last[0] if last else 0

    def peaks(self, size: int) -> list[bytes]:
        if size == 0:
            return []
        last = self._last_tree()
        if last is not None and last[0] == size:
            return last[1]["peaks"]
        return parse_tree_object(self.store.get_object(tree_key(size)))["peaks"]

    def nodes(self, wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        seqs = sorted({(index + 1) << level for level, index in wanted})

        def read(seq: int) -> tuple[int, list[bytes]]:
            return seq, parse_tree_object(self.store.get_object(tree_key(seq)))["nodes"]

        made = dict(ordered_map(read, seqs))
        out = {}
        for level, index in wanted:
            nodes = made[(index + 1) << level]
            if level >= len(nodes):
                raise ArchiveError(f"{tree_key((index + 1) << level)} lacks the node of level {level}")
            out[(level, index)] = nodes[level]
        return out

    def entry_at(self, seq: int) -> Record | None:
        return self._record(seq)

    def records_after(self, size: int, limit: int) -> tuple[list[Record], bool]:
        out: list[Record] = []
        while (record := self._record(size + len(out) + 1)) is not None:
            if len(out) >= limit:
                return out, True
            out.append(record)
        last = self._last_tree()
        if not out and last is not None and last[0] == size and self._head is None:
            # the head is known now: an append that follows (a 'verified' entry) needs
            # no search for it, only the bytes of the entry it links to
            self._head = (size, self._get(object_key(size)), last[1]["peaks"])
        return out, False

    def seqs_of(self, capture_id: str) -> list[int]:
        if not is_capture_id(capture_id):
            return []
        prefix = f"{INDEX_PREFIX}{capture_id}"
        return sorted(int(k.rsplit("/", 1)[-1]) for k in self.store.list_objects(prefix)
                      if k.rsplit("/", 1)[-1].isdigit())

    def iter_tree(self, start: int = 1) -> Iterator[TreeStep]:
        last = self._last_tree()

        def read(seq: int) -> TreeStep:
            raw = self._get(tree_key(seq))
            want = len(merkle.completed_nodes(seq))
            if raw is None:
                return TreeStep(seq, tree_key(seq), [None] * want)
            try:
                tree = parse_tree_object(raw)
            except ArchiveError:
                return TreeStep(seq, tree_key(seq), [None] * want, [(tree_key(seq), raw)])
            nodes = (tree["nodes"] + [None] * want)[:want]
            head = tree["head"]
            return TreeStep(seq, tree_key(seq), nodes,
                            [(tree_key(seq), canonical(head) if isinstance(head, dict) else b"")],
                            peaks=tree["peaks"])

        missing = 0
        for step in ordered_map(read, range(start, (last[0] if last else 0) + 1)):
            missing = missing + 1 if all(n is None for n in step.nodes) and not step.heads else 0
            if missing >= MISSING_RUN:
                return
            yield step


def open_ledger(store) -> FileLedger | ObjectLedger:
    """The ledger of a store: a file in a local folder, objects elsewhere."""
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        return FileLedger(root / LEDGER_FILE)
    return ObjectLedger(store)
