"""Where custody entries live, appended so that concurrent writers never fork the chain.

- In a local store: one append-only file `<store>/custody/ledger.jsonl`, one entry a
  line; an exclusive `flock` on the file is held from reading the last entry to the
  fsync of the new one, so local writers (threads or processes) take turns.
- In any other store: one object per entry, `custody/<seq, 12 digits>.json`, created
  with the store's put-if-absent (`Store.put_object` raises AlreadyExists, on S3 a
  conditional write): a writer that loses the race for a sequence number reads the new
  head and tries the next one, so every entry gets its own number and links to the
  entry before it. The head is found by one listing per ledger object, then by asking
  for the next numbers (objects can only be added, never replaced).
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from archive.custody.entry import canonical, sha256_of
from archive.errors import AlreadyExists, ArchiveError, NotFound
from archive.files import fsync_dir
from archive.values import parse_json

LEDGER_FILE = "custody/ledger.jsonl"
OBJECT_PREFIX = "custody/"
OBJECT_KEY = re.compile(r"^custody/(\d{12})\.json$")
MAX_RACES = 10_000          # lost put-if-absent races before giving up (never in practice)
TAIL_BLOCK = 1 << 16

Build = Callable[[int, "str | None"], dict]   # (seq, prev hash) -> entry


@dataclass
class Record:
    """One stored entry as found: where, its bytes, and its JSON when it parses."""
    where: str                  # "line 3" or "custody/000000000003.json"
    raw: bytes
    entry: dict | None
    key_seq: int | None = None  # the sequence number an object's key gives
    torn: bool = False          # a last line without its newline: an interrupted write


def parse(raw: bytes) -> dict | None:
    try:
        value = parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


class Ledger(Protocol):
    location: str

    def append(self, build: Build) -> dict:
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


class FileLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)

    def append(self, build: Build) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "r+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)   # released when the file is closed
            last, torn = _last_line(fh)
            if torn:
                # An interrupted write left half a line: end it so it stays visible
                # (custody verify reports it) and chain to the last whole entry.
                fh.write(b"\n")
            prev = sha256_of(last) if last is not None else None
            entry = build(_head_seq(last, self.location) + 1 if last is not None else 1, prev)
            fh.write(canonical(entry) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        if created:
            fsync_dir(self.path.parent)
        return entry

    def records(self) -> list[Record]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:      # a folder in its place, a file where its folder should be
            raise ArchiveError(f"cannot read the custody ledger {self.path}: {exc.strerror or exc}") from None
        lines = data.split(b"\n")
        torn_tail = lines[-1] != b""
        out = []
        for number, line in enumerate(lines[:-1] if not torn_tail else lines, 1):
            torn = torn_tail and number == len(lines)
            out.append(Record(f"line {number}", line, None if torn else parse(line), torn=torn))
        return out


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


class ObjectLedger:
    def __init__(self, store) -> None:
        self.store = store
        self.location = f"{store.address.rstrip('/')}/{OBJECT_PREFIX}"
        self._head: tuple[int, bytes | None] | None = None   # last entry seen: (seq, bytes)

    def _keys(self) -> list[tuple[int, str]]:
        keys = []
        for key in self.store.list_objects(OBJECT_PREFIX):
            match = OBJECT_KEY.match(key)
            if match:
                keys.append((int(match.group(1)), key))
        return sorted(keys)

    def _find_head(self) -> tuple[int, bytes | None]:
        """The last entry: one listing the first time, then a probe for entries written
        since, so an append costs a few requests however long the ledger is."""
        if self._head is None:
            keys = self._keys()
            self._head = (keys[-1][0], self.store.get_object(keys[-1][1])) if keys else (0, None)
        seq, raw = self._head
        while True:
            try:
                raw = self.store.get_object(object_key(seq + 1))
            except NotFound:
                break
            seq += 1
        self._head = (seq, raw)
        return self._head

    def append(self, build: Build) -> dict:
        for _ in range(MAX_RACES):
            last_seq, last_raw = self._find_head()
            entry = build(last_seq + 1, sha256_of(last_raw) if last_raw is not None else None)
            data = canonical(entry)
            try:
                self.store.put_object(object_key(last_seq + 1), data)
            except AlreadyExists:
                continue   # another writer took this number: find the new head, try the next
            self._head = (last_seq + 1, data)
            return entry
        raise ArchiveError(f"could not append to the custody ledger in {self.location}: "
                           f"lost {MAX_RACES} races to other writers")

    def records(self) -> list[Record]:
        out = []
        for seq, key in self._keys():
            raw = self.store.get_object(key)
            out.append(Record(key, raw, parse(raw), key_seq=seq))
        return out


def object_key(seq: int) -> str:
    return f"{OBJECT_PREFIX}{seq:012d}.json"


def open_ledger(store) -> Ledger:
    """The ledger of a store: a file in a local folder, objects elsewhere."""
    root = getattr(store, "root", None)
    if isinstance(root, Path):
        return FileLedger(root / LEDGER_FILE)
    return ObjectLedger(store)
