"""The two databases a catalog lives in, behind one small interface: SQLite (the standard
library's, FTS5; embedded, the default) and PostgreSQL (psycopg 3; shared by several
machines, job runners and the web app). SQL is written once with `?` parameters;
what differs (ids, the word index, matching, ranking) is each backend's to say.
Values are always parameters, never spliced into SQL."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from archive.catalog import query as q
from archive.catalog.fold import fold, words
from archive.errors import ArchiveError

# shared by both: only the id column and the word index differ
TABLES = """
CREATE TABLE catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE captures (
    id TEXT PRIMARY KEY, created TEXT, title TEXT, seeds TEXT, signer TEXT, sha256 TEXT,
    size BIGINT, job TEXT, operator TEXT, address TEXT, lock TEXT, pages INTEGER, verdict TEXT,
    verified_at TEXT, indexed_at TEXT NOT NULL, missing_since TEXT);
CREATE INDEX captures_by_time ON captures (created, id);
CREATE INDEX captures_by_job ON captures (job, created);
CREATE TABLE adding (capture_id TEXT PRIMARY KEY, owner TEXT NOT NULL, heartbeat TEXT NOT NULL);
CREATE TABLE texts (id {id}, key {blob} NOT NULL UNIQUE, text {blob}{words});
CREATE TABLE pages (
    id {id}, capture_id TEXT NOT NULL, url TEXT NOT NULL, ts TEXT, status INTEGER, title TEXT,
    mime TEXT, digest TEXT, size BIGINT, error TEXT, text_id BIGINT);
CREATE INDEX pages_by_capture ON pages (capture_id, id);
CREATE INDEX pages_by_url ON pages (url, capture_id);
CREATE INDEX pages_by_digest ON pages (digest);
CREATE INDEX pages_by_text ON pages (text_id);
CREATE TABLE media (
    capture_id TEXT NOT NULL, url TEXT NOT NULL, ts TEXT, mime TEXT, status INTEGER, digest TEXT, size BIGINT);
CREATE INDEX media_by_capture ON media (capture_id);
CREATE TABLE changes (
    capture_id TEXT NOT NULL REFERENCES captures (id), previous_id TEXT NOT NULL,
    url TEXT NOT NULL, change TEXT NOT NULL);
CREATE INDEX changes_by_capture ON changes (capture_id);
"""
# a capture's pages and media are added in batches before its captures row (which comes
# last, in one transaction with its changes): a reader joining captures sees a capture
# whole or not at all, so pages and media name a capture that may not be there yet
DROP = ["page_words", "changes", "media", "pages", "texts", "adding", "captures", "catalog_meta"]
MAX_POSITION = 16383         # PostgreSQL's last word position (later words share it)
MAX_POSITIONS = 256          # positions PostgreSQL keeps for one word in one page


class Backend:
    """A connection and what differs between databases. Methods take SQL with `?`."""

    name = ""

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def tables(self) -> set[str]:
        raise NotImplementedError

    def ddl(self) -> str:
        """The statements that make its tables, separated by `;`."""
        raise NotImplementedError

    drop_suffix = ""

    def create(self) -> None:
        with self.transaction():
            for statement in filter(str.strip, self.ddl().split(";")):
                self.execute(statement)

    def drop(self) -> None:
        with self.transaction():
            for table in DROP:
                self.execute(f"DROP TABLE IF EXISTS {table}{self.drop_suffix}")

    def add_texts(self, rows: list[tuple[bytes, bytes | None]], words: list[tuple[str, str]]) -> None:
        """Insert texts not held yet ((key, the text packed)) and index their words ((title, text))."""
        raise NotImplementedError

    def compact(self) -> None:
        """Make the word index as small and fast as it gets (after adding many pages)."""

    def match(self, node: q.Node) -> tuple[str, tuple]:
        """(JOIN clause, WHERE condition, its params) for texts `t` matching a query."""
        raise NotImplementedError

    def ranked(self, node: q.Node, count: int) -> list[int]:
        """The ids of the `count` best texts for a query, best first (the word index
        alone: no join until the few shown are known). Equal scores: the latest added first."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.address = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")     # readers (a search) never wait for a writer
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            raise CatalogError(f"cannot open the catalog {path} ({exc}); it holds nothing that is not in "
                               "the store: `archive index --rebuild` makes it anew") from None

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with _said(self.address, sqlite3.Error):
            return self.db.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with _said(self.address, sqlite3.Error):
            self.db.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN IMMEDIATE")      # one writer at a time, waiting up to the timeout
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def tables(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def ddl(self) -> str:
        return TABLES.format(id="INTEGER PRIMARY KEY", blob="BLOB", words="") + (
            # contentless: the text is kept once, in texts; marks and case are folded by us
            "CREATE VIRTUAL TABLE page_words USING fts5(title, body, content='', "
            "tokenize='unicode61 remove_diacritics 2');")

    def add_texts(self, rows: list[tuple[bytes, bytes | None]], words: list[tuple[str, str]]) -> None:
        # inside BEGIN IMMEDIATE: no other writer, so none of these keys can appear meanwhile
        last = self.execute("SELECT coalesce(max(id), 0) FROM texts")[0][0]
        ids = range(last + 1, last + 1 + len(rows))
        self.executemany("INSERT INTO texts (id, key, text) VALUES (?, ?, ?)",
                         [(i, key, text) for i, (key, text) in zip(ids, rows)])
        self.executemany("INSERT INTO page_words (rowid, title, body) VALUES (?, ?, ?)",
                         [(i, fold(title), fold(text)) for i, (title, text) in zip(ids, words)])

    def compact(self) -> None:
        # FTS5 merges its segments into one (the index shrinks by about a sixth), then the
        # file gives back the pages that freed
        with self.transaction():
            self.execute("INSERT INTO page_words (page_words) VALUES ('optimize')")
        self.execute("VACUUM")

    def match(self, node: q.Node) -> tuple[str, str, tuple]:
        return "JOIN page_words ON page_words.rowid = t.id", "page_words MATCH ?", (q.fts5(node),)

    def ranked(self, node: q.Node, count: int) -> list[int]:
        return [r[0] for r in self.execute(
            "SELECT rowid FROM page_words WHERE page_words MATCH ? "
            "ORDER BY bm25(page_words, 4.0, 1.0), rowid DESC LIMIT ?", (q.fts5(node), count))]

    def close(self) -> None:
        self.db.close()


def tsvector(title: str, text: str) -> str:
    """The words of a page as a tsvector literal (title words weighted A), read by
    ::tsvector: PostgreSQL's own parser never sees the text, so it finds what SQLite finds.
    (Words are letters and digits only: nothing in them needs quoting.)"""
    positions: dict[str, list] = {}
    title_words = words(title)
    for n, word in enumerate(title_words, 1):
        positions.setdefault(word, []).append(f"{min(n, MAX_POSITION)}A")
    # a gap after the title: a phrase does not run from the title into the text
    first = len(title_words) + 2
    body = words(text)
    for n, word in enumerate(body, first):
        positions.setdefault(word, []).append(n)
    clamp = first + len(body) > MAX_POSITION
    return " ".join(
        f"'{word}':" + ",".join(str(min(p, MAX_POSITION)) if clamp and isinstance(p, int) else str(p)
                              for p in found[:MAX_POSITIONS]) if clamp else
        f"'{word}':" + ",".join(map(str, found[:MAX_POSITIONS]))
        for word, found in positions.items())


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg      # loaded only for a shared catalog

        self.address = _without_password(url)
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=15)
        except psycopg.Error as exc:
            raise ArchiveError(f"cannot connect to the catalog {self.address}: {_first_line(exc)}") from None
        self.errors = psycopg.Error

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")       # our SQL holds no other ? or %

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with _said(self.address, self.errors), self.db.cursor() as cur:
            cur.execute(self._sql(sql), params)
            return cur.fetchall() if cur.description else []

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with _said(self.address, self.errors), self.db.cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    def tables(self) -> set[str]:
        return {r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    drop_suffix = " CASCADE"

    def ddl(self) -> str:
        return TABLES.format(id="BIGSERIAL PRIMARY KEY", blob="BYTEA", words=", words tsvector") + (
            # A page's word list (2-3 kB for a page of 200 words) is kept in the table's own
            # rows (MAIN), not moved out to TOAST as any value past 2 kB would be: the GIN
            # index gives candidates, and ranking them and checking a phrase's positions
            # read each candidate's words, which from TOAST costs an index lookup and more
            # pages per row (bench_search's catalog: a word in 1,134 texts ranked in 15.8 ->
            # 1.7 ms, 3,964 -> 945 pages read). It also lets the planner cost what a scan
            # reads, as detoasting is not costed: with the words out of line the table
            # looked 600 pages long and a sequential scan was picked for a phrase of common
            # words at 41 ms; inline, the table's size is what a scan reads (that phrase:
            # 6 ms, by scan or index alike), and the index is chosen whenever it reads less.
            # (Forcing the index instead, SET LOCAL enable_seqscan = off, would have left
            # every candidate detoasted, and overruled the planner where a scan is right.)
            # The compressed text, read only for the hits shown, may still go out of line,
            # and so do the words of a page too long to fit in a row (past about 8 kB).
            "ALTER TABLE texts ALTER COLUMN words SET STORAGE MAIN;"
            "CREATE INDEX texts_words ON texts USING GIN (words);")

    def add_texts(self, rows: list[tuple[bytes, bytes | None]], words: list[tuple[str, str]]) -> None:
        # another machine may add the same text meanwhile: it is then kept once
        self.executemany("INSERT INTO texts (key, text, words) VALUES (?, ?, ?::tsvector) ON CONFLICT (key) DO NOTHING",
                         [(key, text, tsvector(title, body)) for (key, text), (title, body) in zip(rows, words)])

    def compact(self) -> None:
        # What autovacuum would do a minute or more later, done now: the words of texts
        # just added wait in the GIN index's pending list (fastupdate), which every search
        # reads whole, up to 4 MB, until a VACUUM merges it (ANALYZE alone does not); and
        # the planner gets the word statistics it chooses between index and scan by
        # (bench_search's 100,000 pages, words inline: p50 6.2 -> 1.6 ms)
        self.execute("VACUUM (ANALYZE) texts, pages, captures")

    def match(self, node: q.Node) -> tuple[str, str, tuple]:
        return "", "t.words @@ ?::tsquery", (q.tsquery(node),)

    def ranked(self, node: q.Node, count: int) -> list[int]:
        return [r[0] for r in self.execute(*self.ranking(node, count))]

    @staticmethod
    def ranking(node: q.Node, count: int) -> tuple[str, tuple]:
        """The SQL of `ranked` and its parameters (its plan is what a test looks at)."""
        literal = q.tsquery(node)
        return ("SELECT id FROM texts WHERE words @@ ?::tsquery "
                "ORDER BY ts_rank_cd(words, ?::tsquery) DESC, id DESC LIMIT ?", (literal, literal, count))

    def close(self) -> None:
        self.db.close()


@contextmanager
def _said(address: str, errors) -> Iterator[None]:
    """A database error as one line naming the catalog (a full disk, a lost connection, a
    file that is not a catalog): `archive index --rebuild` makes a new one."""
    try:
        yield
    except errors as exc:
        raise CatalogError(f"the catalog {address} failed ({_first_line(exc)}); it holds nothing that is "
                           "not in the store: `archive index --rebuild` makes it anew") from None


class CatalogError(ArchiveError):
    """The database behind a catalog failed."""


def _without_password(url: str) -> str:
    """A connection URL fit to print: any password replaced."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[-1]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    return urlunsplit(parts)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
