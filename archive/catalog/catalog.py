"""The catalog: captures, pages (with their text), media and changes between the
captures of a job, in one of two databases (archive.catalog.backends). Derived from the
store and never evidence: deleting it loses nothing (`archive index` rebuilds it), and
`archive verify` never reads it.

This is the read API the CLI and the web app use: captures (filtered, paged by id, fast
at any size), one capture, the pages of a capture, search, the history of one URL."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from archive import utctime
from archive.catalog import query as q
from archive.catalog.backends import Backend
from archive.catalog.snippet import snippet
from archive.errors import ArchiveError

SCHEMA = 1      # bump when the tables change; an older catalog is rebuilt from the store
CAPTURE_COLUMNS = ("id", "created", "title", "seeds", "signer", "sha256", "size", "job", "operator",
                   "address", "lock", "pages", "verdict", "verified_at", "indexed_at", "missing_since")
MAX_LIMIT = 10_000
IN_BATCH = 5000     # ids in one IN (...): well under either database's limit on parameters


class OldCatalog(ArchiveError):
    """A catalog made by an older version of archive: it has to be rebuilt from the store."""


@dataclass
class PageEntry:
    url: str
    ts: str | None = None
    status: int | None = None
    title: str | None = None
    mime: str | None = None
    digest: str | None = None
    size: int | None = None
    error: str | None = None
    text: str | None = None
    revisit: bool = False      # its text is that of an earlier page with the same digest


@dataclass
class CaptureEntry:
    id: str
    created: str | None
    title: str | None
    seeds: list[str]
    signer: str | None
    sha256: str | None
    size: int | None
    job: str | None
    operator: str | None
    address: str | None
    lock: str | None = None      # Object Lock retention when catalogued (it may be extended later)
    pages: list[PageEntry] = field(default_factory=list)
    media: list[dict] = field(default_factory=list)     # url, ts, mime, status, digest, size
    verdict: str | None = None
    verified_at: str | None = None


@dataclass
class Hit:
    capture_id: str
    url: str
    time: str | None           # of the capture
    page_time: str | None
    title: str | None
    status: int | None
    snippet: str
    marks: list[list[int]]     # [start, end) of each hit in the snippet


def pack(text: str | None) -> bytes | None:
    """A page's text as kept: compressed (the catalog then stays near the text's own size)."""
    return None if text is None else zlib.compress(text.encode("utf-8"), 3)


def unpack(data) -> str | None:
    return None if data is None else zlib.decompress(bytes(data)).decode("utf-8")


def _capture_row(row: tuple) -> dict:
    data = dict(zip(CAPTURE_COLUMNS, row))
    try:
        data["seeds"] = json.loads(data["seeds"]) if data["seeds"] else []
    except ValueError:
        data["seeds"] = []
    return data


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ArchiveError(f"--limit must be from 1 to {MAX_LIMIT}")
    return limit


class Catalog:
    def __init__(self, backend: Backend, location: str) -> None:
        self.db, self.location = backend, location

    # -- schema ----------------------------------------------------------------------

    def schema(self) -> int | None:
        """The schema version it holds; None for an empty database, 0 for tables of unknown make."""
        tables = self.db.tables()
        if not tables:
            return None
        if "catalog_meta" not in tables:
            return 0
        rows = self.db.execute("SELECT value FROM catalog_meta WHERE key = 'schema'")
        return int(rows[0][0]) if rows and rows[0][0].isdigit() else 0

    def meta(self, key: str) -> str | None:
        rows = self.db.execute("SELECT value FROM catalog_meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def prepare(self, store: str, write: bool) -> str | None:
        """Check (and, for writing, create or rebuild) the tables for `store`; returns a
        message when an older catalog was emptied to be rebuilt."""
        version = self.schema()
        message = None
        if version is not None and version > SCHEMA:
            raise ArchiveError(f"the catalog {self.location} was made by a newer version of archive "
                               f"(schema {version}, this one knows {SCHEMA}): use that version, or "
                               "`archive index --rebuild` to rebuild it for this one")
        if version is not None and version < SCHEMA:
            if not write:
                raise OldCatalog(f"the catalog {self.location} was made by an older version of archive "
                                 f"(schema {version}): `archive index` rebuilds it from the store")
            self.db.drop()
            message = (f"the catalog {self.location} was made by an older version of archive "
                       f"(schema {version}): emptied, to be rebuilt from the store")
            version = None
        if version is None:
            if not write:
                raise ArchiveError(f"no catalog at {self.location}: `archive index` builds it")
            self.db.create()
            with self.db.transaction():
                self.db.executemany("INSERT INTO catalog_meta (key, value) VALUES (?, ?)",
                                    [("schema", str(SCHEMA)), ("store", store), ("created", utctime.seconds())])
        held = self.meta("store")
        if held and held != store:
            raise ArchiveError(f"the catalog {self.location} indexes the store {held}, not {store}: "
                               "give the catalog of this store (--catalog), or `archive index --rebuild`")
        return message

    def reset(self, store: str) -> None:
        """Empty it (`archive index --rebuild`)."""
        self.db.drop()
        self.prepare(store, write=True)

    # -- writing ---------------------------------------------------------------------

    def known(self) -> dict[str, str | None]:
        """capture id -> when it was found missing from the store (None: it is there)."""
        return dict(self.db.execute("SELECT id, missing_since FROM captures"))

    def add(self, entry: CaptureEntry) -> bool:
        """Add one capture with its pages, in one transaction (an interrupted index leaves
        whole captures only); False when it is there already."""
        with self.db.transaction():
            added = self.db.execute(
                f"INSERT INTO captures ({', '.join(CAPTURE_COLUMNS)}) VALUES ({', '.join('?' * len(CAPTURE_COLUMNS))}) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (entry.id, entry.created, entry.title, json.dumps(entry.seeds), entry.signer, entry.sha256,
                 entry.size, entry.job, entry.operator, entry.address, entry.lock, len(entry.pages), entry.verdict,
                 entry.verified_at, utctime.seconds(), None))
            if not added:
                return False
            self._fill_revisits(entry.pages)
            ids = self.db.reserve_ids(len(entry.pages)) if entry.pages else []
            self.db.add_pages([(pid, entry.id, p.url, p.ts, p.status, p.title, p.mime, p.digest, p.size,
                                p.error, pack(p.text)) for pid, p in zip(ids, entry.pages)],
                              [p.text or "" for p in entry.pages])
            if entry.media:
                self.db.executemany(
                    "INSERT INTO media (capture_id, url, ts, mime, status, digest, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(entry.id, m["url"], m.get("ts"), m.get("mime"), m.get("status"), m.get("digest"), m.get("size"))
                     for m in entry.media])
            self._record_changes(entry)
        return True

    def _fill_revisits(self, pages: list[PageEntry]) -> None:
        """A page stored as a revisit has the text of the page whose content it repeats."""
        for page in pages:
            if page.revisit and page.text is None and page.digest:
                rows = self.db.execute("SELECT title, text FROM pages WHERE digest = ? AND text IS NOT NULL "
                                       "ORDER BY id LIMIT 1", (page.digest,))
                if rows:
                    page.title = page.title or rows[0][0]
                    page.text = unpack(rows[0][1])

    def _record_changes(self, entry: CaptureEntry) -> None:
        """Pages added, removed and changed since the job's previous capture."""
        if not entry.job or not entry.created:
            return
        rows = self.db.execute("SELECT id FROM captures WHERE job = ? AND (created < ? OR created = ? AND id < ?) "
                               "ORDER BY created DESC, id DESC LIMIT 1",
                               (entry.job, entry.created, entry.created, entry.id))
        if not rows:
            return
        previous = rows[0][0]
        before = dict(self.db.execute("SELECT url, digest FROM pages WHERE capture_id = ?", (previous,)))
        now = {p.url: p.digest for p in entry.pages}
        changes = [(u, "added") for u in now if u not in before]
        changes += [(u, "removed") for u in before if u not in now]
        changes += [(u, "changed") for u, d in now.items() if u in before and d and before[u] and d != before[u]]
        self.db.executemany("INSERT INTO changes (capture_id, previous_id, url, change) VALUES (?, ?, ?, ?)",
                            [(entry.id, previous, u, c) for u, c in sorted(changes)])

    def compact(self) -> None:
        self.db.compact()

    def set_missing(self, capture_ids: list[str], missing: bool) -> None:
        """Mark captures the store no longer holds (or holds again)."""
        with self.db.transaction():
            self.db.executemany("UPDATE captures SET missing_since = ? WHERE id = ?",
                                [(utctime.seconds() if missing else None, c) for c in capture_ids])

    def set_verdicts(self, verdicts: dict[str, tuple[str, str]]) -> None:
        """capture id -> (verdict, when), from the custody ledger's `verified` entries."""
        with self.db.transaction():
            self.db.executemany("UPDATE captures SET verdict = ?, verified_at = ? WHERE id = ?",
                                [(v, t, c) for c, (v, t) in verdicts.items()])

    # -- reading ---------------------------------------------------------------------

    def captures(self, since: str | None = None, until: str | None = None, job: str | None = None,
                 after: str | None = None, limit: int = 100, missing: bool = False) -> list[dict]:
        """Captures in id (time) order, from after the id `after` (paging by key: as fast on
        the last page of 100,000 as on the first)."""
        where, params = self._filters(since, until, job, "c")
        if after:
            where.append("c.id > ?")
            params.append(after)
        if not missing:
            where.append("c.missing_since IS NULL")
        sql = (f"SELECT {', '.join('c.' + c for c in CAPTURE_COLUMNS)} FROM captures c "
               f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY c.id LIMIT ?")
        return [_capture_row(r) for r in self.db.execute(sql, (*params, _limit(limit)))]

    def capture(self, capture_id: str) -> dict | None:
        rows = self.db.execute(f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM captures WHERE id = ?", (capture_id,))
        return _capture_row(rows[0]) if rows else None

    def pages(self, capture_id: str, after: int = 0, limit: int = 1000) -> list[dict]:
        """The pages of a capture (without their text), paged by page id."""
        rows = self.db.execute("SELECT id, url, ts, status, title, mime, digest, size, error FROM pages "
                               "WHERE capture_id = ? AND id > ? ORDER BY id LIMIT ?",
                               (capture_id, after, _limit(limit)))
        return [dict(zip(("id", "url", "ts", "status", "title", "mime", "digest", "size", "error"), r)) for r in rows]

    def changes(self, capture_id: str) -> list[dict]:
        rows = self.db.execute("SELECT previous_id, url, change FROM changes WHERE capture_id = ? ORDER BY url",
                               (capture_id,))
        return [dict(zip(("previous", "url", "change"), r)) for r in rows]

    def media(self, capture_id: str) -> list[dict]:
        """The images, audio and video of a capture."""
        rows = self.db.execute("SELECT url, ts, mime, status, digest, size FROM media WHERE capture_id = ? "
                               "ORDER BY url, ts", (capture_id,))
        return [dict(zip(("url", "ts", "mime", "status", "digest", "size"), r)) for r in rows]

    def counts(self) -> dict:
        (captures, missing), = self.db.execute("SELECT count(*), count(missing_since) FROM captures")
        (pages,), = self.db.execute("SELECT count(*) FROM pages")
        return {"captures": captures, "missing": missing, "pages": pages}

    @staticmethod
    def _filters(since, until, job, alias: str) -> tuple[list[str], list]:
        where, params = [], []
        if since:
            where.append(f"{alias}.created >= ?")
            params.append(since)
        if until:
            where.append(f"{alias}.created <= ?")
            params.append(until)
        if job:
            where.append(f"{alias}.job = ?")
            params.append(job)
        return where, params

    def search(self, text: str, url_prefix: str | None = None, since: str | None = None,
               until: str | None = None, job: str | None = None, limit: int = 20, offset: int = 0) -> list[Hit]:
        """Pages matching a query, best first, each with a snippet marking the hits."""
        node = q.parse(text)
        where, params = self._filters(since, until, job, "c")
        if url_prefix:
            where.append("substr(p.url, 1, ?) = ?")
            params += [len(url_prefix), url_prefix]
        wanted = _limit(limit) + max(0, offset)
        fetch = max(4 * wanted, 200)
        while True:
            # the best pages by the word index alone, then those that pass the filters (and
            # whose capture is still in the store); more when too few pass
            ranked = self.db.ranked(node, fetch)
            kept = self._passing(ranked, where, params)
            if len(kept) >= wanted or len(ranked) < fetch:
                break
            fetch *= 8
        rows = kept[max(0, offset):wanted]
        texts = self._texts([r[0] for r in rows])
        found = q.terms(node)
        hits = []
        for pid, capture_id, page_url, created, ts, title, status in rows:
            shown, marks = snippet(texts.get(pid) or title or "", found)
            hits.append(Hit(capture_id, page_url, created, ts, title, status, shown, marks))
        return hits

    def _passing(self, ranked: list[int], where: list[str], params: list) -> list[tuple]:
        """The rows of the pages `ranked` that pass the filters, in the order given."""
        rows: dict[int, tuple] = {}
        for start in range(0, len(ranked), IN_BATCH):
            batch = ranked[start:start + IN_BATCH]
            for row in self.db.execute(
                    "SELECT p.id, p.capture_id, p.url, c.created, p.ts, p.title, p.status FROM pages p "
                    "JOIN captures c ON c.id = p.capture_id WHERE "
                    + " AND ".join([f"p.id IN ({', '.join('?' * len(batch))})", "c.missing_since IS NULL", *where]),
                    (*batch, *params)):
                rows[row[0]] = row
        return [rows[pid] for pid in ranked if pid in rows]

    def _texts(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        return {pid: unpack(text) for pid, text in self.db.execute(
            f"SELECT id, text FROM pages WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))}

    def history(self, text: str, url: str) -> list[dict]:
        """Every capture of `url` in time order, and whether the query matches it there."""
        node = q.parse(text)
        rows = self.db.execute(
            "SELECT p.id, p.capture_id, c.created, p.ts, p.status, p.error, p.text IS NOT NULL FROM pages p "
            "JOIN captures c ON c.id = p.capture_id WHERE p.url = ? AND c.missing_since IS NULL "
            "ORDER BY c.created, c.id, p.id", (url,))
        joins, match, match_params = self.db.match(node)
        present = {r[0] for r in self.db.execute(f"SELECT p.id FROM pages p {joins} WHERE {match} AND p.url = ?",
                                                 (*match_params, url))}
        return [{"capture_id": cid, "time": created, "page_time": ts, "status": status, "error": error,
                 "present": pid in present, "has_text": bool(has_text)}
                for pid, cid, created, ts, status, error, has_text in rows]

    def close(self) -> None:
        self.db.close()
