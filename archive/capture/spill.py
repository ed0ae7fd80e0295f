"""Where a crawl's memory overflows to: an SQLite file in its spool folder.

A crawl of a million URLs must not hold a million URLs (and their payload digests and
queued items) in memory. Each of these structures keeps up to `bound` entries in memory
and puts the rest in one SQLite file beside the WARC data. The file is never evidence
and never needed to resume: the crawl journal is the crawl's memory, and a resumed crawl
rebuilds all of this from it (a stale file is removed). Nothing is written there until
a bound is passed, so a small crawl never makes the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Callable, Iterable, Iterator

SPILL_NAME = "frontier.sqlite"
# Entries of each kind (URLs seen, URLs queued, payload digests) kept in memory before
# the rest go to disk: a few tens of MB each. ARCHIVE_CRAWL_MEMORY changes it (tests
# use a small one to spill early).
DEFAULT_BOUND = 100_000


def memory_bound() -> int:
    """Entries of each kind kept in memory ($ARCHIVE_CRAWL_MEMORY, at least 1)."""
    try:
        return max(1, int(os.environ.get("ARCHIVE_CRAWL_MEMORY", DEFAULT_BOUND)))
    except ValueError:
        return DEFAULT_BOUND


class SpillFile:
    """The SQLite file, opened when first needed; every call holds its own lock (the
    frontier and the deduplication use it under different locks)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        if path is not None and os.path.exists(path):
            os.unlink(path)      # left by a killed run: the journal says what it held

    @property
    def usable(self) -> bool:
        return self.path is not None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            # rebuilt from the journal after any crash: no need to survive one
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript("""
                CREATE TABLE IF NOT EXISTS seen (url TEXT PRIMARY KEY) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS digests (digest BLOB PRIMARY KEY, value TEXT) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS queue (host TEXT, priority INTEGER, seq INTEGER,
                    page INTEGER, item TEXT, PRIMARY KEY (host, priority, seq)) WITHOUT ROWID;
            """)
            self._conn = conn
        return self._conn

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._open().execute(sql, args).fetchall()

    def executemany(self, sql: str, rows: Iterable[tuple]) -> None:
        with self._lock:
            self._open().executemany(sql, rows)

    def iterate(self, sql: str, args: tuple = ()) -> Iterator[tuple]:
        """Rows one at a time (the lock is held between them only)."""
        with self._lock:
            cursor = self._open().execute(sql, args)
        while True:
            with self._lock:
                rows = cursor.fetchmany(1000)
            if not rows:
                return
            yield from rows

    def close(self) -> None:
        """Close and remove the file (what it held is in the journal)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self.path is not None and os.path.exists(self.path):
                os.unlink(self.path)


class SeenSet:
    """A set of URLs: the first `bound` in memory, the rest in the spill file."""

    def __init__(self, spill: SpillFile | None = None, bound: int | None = None) -> None:
        self._memory: set[str] = set()
        self._spill = spill if spill is not None and spill.usable else None
        self._bound = bound or memory_bound()
        self._spilled = 0

    def __contains__(self, url: str) -> bool:
        if url in self._memory:
            return True
        return bool(self._spilled) and bool(self._spill.execute("SELECT 1 FROM seen WHERE url = ?", (url,)))

    def add(self, url: str) -> None:
        self.update((url,))

    def update(self, urls: Iterable[str]) -> None:
        overflow = []
        for url in urls:
            if self._spill is None or len(self._memory) < self._bound:
                self._memory.add(url)
            elif url not in self._memory:
                overflow.append((url,))
        if overflow:
            self._spill.executemany("INSERT OR IGNORE INTO seen VALUES (?)", overflow)
            self._spilled += len(overflow)


class DigestMap:
    """Payload key (algorithm, digest bytes) -> value: the first `bound` in memory, the
    rest in the spill file as `encode` makes them text. The first value for a key stays."""

    def __init__(self, spill: SpillFile | None = None, bound: int | None = None,
                 encode: Callable[[object], str] = json.dumps,
                 decode: Callable[[str], object] = json.loads) -> None:
        self._memory: dict = {}
        self._encode, self._decode = encode, decode
        self._spill = spill if spill is not None and spill.usable else None
        self._bound = bound or memory_bound()
        self._spilled = 0

    @staticmethod
    def _blob(key: tuple) -> bytes:
        algorithm, raw = key
        return algorithm.encode("ascii") + b":" + raw

    def get(self, key: tuple):
        if key in self._memory:
            return self._memory[key]
        if not self._spilled:
            return None
        rows = self._spill.execute("SELECT value FROM digests WHERE digest = ?", (self._blob(key),))
        return self._decode(rows[0][0]) if rows else None

    def setdefault(self, key: tuple, value) -> None:
        if key in self._memory:
            return
        if self._spill is None or len(self._memory) < self._bound:
            self._memory[key] = value
            return
        self._spill.execute("INSERT OR IGNORE INTO digests VALUES (?, ?)", (self._blob(key), self._encode(value)))
        self._spilled += 1


class SortedLines:
    """Lines kept for sorting (a capture's index lines, one per record): in memory up to
    the bound, then in an SQLite file of their own, which sorts them on disk. Iterating
    gives them in the order added; `sorted()` in sorted order (as Python sorts strings:
    SQLite compares UTF-8 bytes, which orders code points the same way)."""

    def __init__(self, path: str, bound: int | None = None) -> None:
        self._memory: list[str] = []
        self._bound = bound or memory_bound()
        self._file = SpillFile(path)
        self._spilled = False

    def append(self, line: str) -> None:
        self._memory.append(line)
        if len(self._memory) >= self._bound:
            self._flush()

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.append(line)

    def __iadd__(self, lines: Iterable[str]) -> "SortedLines":
        self.extend(lines)
        return self

    def _flush(self) -> None:
        if not self._spilled:
            self._file.execute("CREATE TABLE IF NOT EXISTS lines (line TEXT)")
            self._spilled = True
        self._file.executemany("INSERT INTO lines VALUES (?)", ((line,) for line in self._memory))
        self._memory = []

    def __iter__(self) -> Iterator[str]:
        if self._spilled:
            yield from (row[0] for row in self._file.iterate("SELECT line FROM lines ORDER BY rowid"))
        yield from list(self._memory)

    def __len__(self) -> int:
        spilled = self._file.execute("SELECT count(*) FROM lines")[0][0] if self._spilled else 0
        return spilled + len(self._memory)

    def sorted(self) -> Iterator[str]:
        if not self._spilled:
            yield from sorted(self._memory)
            return
        self._flush()
        yield from (row[0] for row in self._file.iterate("SELECT line FROM lines ORDER BY line"))

    def close(self) -> None:
        """Remove the file."""
        self._file.close()


class SpooledRecords:
    """JSON values in the order added (a capture's page entries, its failures, while it
    is sealed): the first `bound` in memory, the rest appended to a file of JSON lines.
    Iterable any number of times; each pass reads the file again, one line at a time."""

    def __init__(self, path: str, bound: int | None = None) -> None:
        self.path = path
        self._memory: list = []
        self._bound = bound or memory_bound()
        self._file = None
        self._count = 0
        if os.path.exists(path):
            os.unlink(path)      # left by a killed run: rebuilt from the journal

    def append(self, value) -> None:
        self._count += 1
        if self._file is None and len(self._memory) < self._bound:
            self._memory.append(value)
            return
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8")
        # the same JSON the journal held it as: read back, it is the same value
        self._file.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")

    def __iter__(self) -> Iterator:
        yield from list(self._memory)
        if self._file is None:
            return
        self._file.flush()
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Remove the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if os.path.exists(self.path):
            os.unlink(self.path)
