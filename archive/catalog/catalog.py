"""The catalog: captures, pages (with their text), media and changes between the
captures of a job, in one of two databases (archive.catalog.backends). Derived from the
store and never evidence: deleting it loses nothing (`archive index` rebuilds it), and
`archive verify` never reads it.

This is the read API the CLI and the web app use: captures (filtered, paged by id, fast
at any size), one capture, the pages of a capture, search, the history of one URL."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import chain, islice
from typing import Iterable, Iterator

from archive import utctime
from archive.catalog import query as q
from archive.catalog.backends import Backend
from archive.catalog.snippet import snippet
from archive.errors import ArchiveError

# bump when the tables change; an older catalog is rebuilt from the store. 2: each distinct
# text kept (and its words indexed) once, pages pointing at it; captures added in batches
SCHEMA = 2
CAPTURE_COLUMNS = ("id", "created", "title", "seeds", "signer", "sha256", "size", "job", "operator",
                   "address", "lock", "pages", "verdict", "verified_at", "indexed_at", "missing_since")
PAGE_COLUMNS = ("capture_id", "url", "ts", "status", "title", "mime", "digest", "size", "error", "text_id")
MAX_LIMIT = 10_000
# ids in one IN (...), or (id, place) pairs in one VALUES: well under either database's
# limit on parameters (SQLite 32,766, PostgreSQL 65,535)
IN_BATCH = 5000
PAGE_BATCH = 1000   # pages added in one transaction: memory stays flat however many a capture holds
STALE = timedelta(minutes=10)   # an add whose owner has not been heard of for this long was abandoned


class OldCatalog(ArchiveError):
    """A catalog made by an older version of archive: it has to be rebuilt from the store."""


class _AddedElsewhere(Exception):
    """Another process took over adding the same capture, or finished it first."""


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
    text_id: int | None = None


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
    # lists, or iterators read once while the capture is added (a capture of 1,000,000
    # pages is never held whole)
    pages: Iterable[PageEntry] = field(default_factory=list)
    media: Iterable[dict] = field(default_factory=list)     # url, ts, mime, status, digest, size
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


def text_key(title: str, text: str | None) -> bytes:
    """What tells one page's words from another's: pages with the same title and text (a
    site captured again, mostly unchanged) share one row of text and of the word index."""
    key = hashlib.blake2b(title.encode("utf-8", "surrogatepass"), digest_size=16)
    key.update(b"\0" if text is None else b"\1" + text.encode("utf-8", "surrogatepass"))
    return key.digest()


def batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _abandoned(owner: str, heartbeat: str) -> bool:
    """Whether an add recorded as under way was given up (its process is gone, or silent)."""
    host, _, pid = owner.rpartition(" ")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return True         # an earlier add in this process failed
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass
    try:
        return utctime.now() - utctime.parse_seconds(heartbeat) > STALE
    except ValueError:
        return True


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
        """Add one capture with its pages and media; False when it is there already (or
        being added by another process). A capture of up to PAGE_BATCH pages is added in
        one transaction; a larger one in batches, seen by readers only once whole: an
        interrupted add is taken up again from the start by the next, nothing doubled."""
        pages, media = batched(entry.pages, PAGE_BATCH), batched(entry.media, PAGE_BATCH)
        first, first_media = next(pages, []), next(media, [])
        second, second_media = next(pages, None), next(media, None)
        try:
            if second is None and second_media is None:
                with self.db.transaction():
                    if not self._claim(entry.id, record=False):
                        return False
                    count = self._add_pages(entry.id, first)
                    self._add_media(entry.id, first_media)
                    return self._finish(entry, count)
            with self.db.transaction():
                if not self._claim(entry.id, record=True):
                    return False
        except _AddedElsewhere:
            return False
        try:
            count = 0
            # chained, not unpacked: the batches are read one at a time
            for batch in chain([first], [second] if second else [], pages):
                with self.db.transaction():
                    self._beat(entry.id)
                    count += self._add_pages(entry.id, batch)
            for batch in chain([first_media], [second_media] if second_media else [], media):
                with self.db.transaction():
                    self._beat(entry.id)
                    self._add_media(entry.id, batch)
            with self.db.transaction():
                self._beat(entry.id)
                return self._finish(entry, count)
        except _AddedElsewhere:
            return False        # what is there is the other process's: left alone
        except BaseException:
            self._abandon(entry.id)
            raise

    def _claim(self, capture_id: str, record: bool) -> bool:
        """Inside a transaction: whether this process may add the capture (no other is
        adding it); what an abandoned add left is removed, and with `record` this add is
        recorded as under way."""
        if self.db.execute("SELECT 1 FROM captures WHERE id = ?", (capture_id,)):
            return False
        rows = self.db.execute("SELECT owner, heartbeat FROM adding WHERE capture_id = ?", (capture_id,))
        if rows and not _abandoned(*rows[0]):
            return False
        if rows:
            self._remove_partial(capture_id)
        if record:
            self.db.execute("INSERT INTO adding (capture_id, owner, heartbeat) VALUES (?, ?, ?)",
                            (capture_id, _owner(), utctime.seconds()))
        return True

    def _remove_partial(self, capture_id: str) -> None:
        # texts only these pages named stay: the add taken up again finds them by key
        self.db.execute("DELETE FROM pages WHERE capture_id = ?", (capture_id,))
        self.db.execute("DELETE FROM media WHERE capture_id = ?", (capture_id,))
        self.db.execute("DELETE FROM adding WHERE capture_id = ?", (capture_id,))

    def _abandon(self, capture_id: str) -> None:
        """After a failed add in this process: remove what it added (best effort: a
        catalog that cannot be written to is cleaned by the next add of the capture)."""
        try:
            with self.db.transaction():
                self._remove_partial(capture_id)
        except Exception:  # noqa: BLE001 - the first failure is the one to report
            pass

    def _beat(self, capture_id: str) -> None:
        """Inside a transaction: this add is still under way, and still this process's."""
        if not self.db.execute("UPDATE adding SET heartbeat = ? WHERE capture_id = ? AND owner = ? "
                               "RETURNING capture_id", (utctime.seconds(), capture_id, _owner())):
            raise _AddedElsewhere(capture_id)      # judged abandoned and taken over meanwhile

    def _add_pages(self, capture_id: str, pages: list[PageEntry]) -> int:
        """Insert a batch of pages, each distinct text once; returns how many."""
        self._fill_revisits(pages)
        keys = [text_key(p.title or "", p.text) if p.text_id is None and (p.text is not None or p.title) else None
                for p in pages]
        distinct = {k: p for k, p in zip(keys, pages) if k is not None}
        ids = self._text_ids(list(distinct))
        new = [k for k in distinct if k not in ids]
        if new:
            self.db.add_texts([(k, pack(distinct[k].text)) for k in new],
                              [(distinct[k].title or "", distinct[k].text or "") for k in new])
            ids.update(self._text_ids(new))
        self.db.executemany(
            f"INSERT INTO pages ({', '.join(PAGE_COLUMNS)}) VALUES ({', '.join('?' * len(PAGE_COLUMNS))})",
            [(capture_id, p.url, p.ts, p.status, p.title, p.mime, p.digest, p.size, p.error,
              p.text_id if k is None else ids[k]) for p, k in zip(pages, keys)])
        return len(pages)

    def _text_ids(self, keys: list[bytes]) -> dict[bytes, int]:
        found = {}
        for start in range(0, len(keys), IN_BATCH):
            batch = keys[start:start + IN_BATCH]
            found.update((bytes(k), i) for k, i in self.db.execute(
                f"SELECT key, id FROM texts WHERE key IN ({', '.join('?' * len(batch))})", tuple(batch)))
        return found

    def _add_media(self, capture_id: str, media: list[dict]) -> None:
        if media:
            self.db.executemany(
                "INSERT INTO media (capture_id, url, ts, mime, status, digest, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(capture_id, m["url"], m.get("ts"), m.get("mime"), m.get("status"), m.get("digest"), m.get("size"))
                 for m in media])

    def _finish(self, entry: CaptureEntry, count: int) -> bool:
        """Inside a transaction: the captures row and the changes since the job's last capture."""
        added = self.db.execute(
            f"INSERT INTO captures ({', '.join(CAPTURE_COLUMNS)}) VALUES ({', '.join('?' * len(CAPTURE_COLUMNS))}) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            (entry.id, entry.created, entry.title, json.dumps(entry.seeds), entry.signer, entry.sha256,
             entry.size, entry.job, entry.operator, entry.address, entry.lock, count, entry.verdict,
             entry.verified_at, utctime.seconds(), None))
        self.db.execute("DELETE FROM adding WHERE capture_id = ?", (entry.id,))
        if not added:
            raise _AddedElsewhere(entry.id)
        self._record_changes(entry)
        return True

    def _fill_revisits(self, pages: list[PageEntry]) -> None:
        """A page stored as a revisit has the text of the page whose content it repeats."""
        for page in pages:
            if page.revisit and page.text is None and page.digest:
                rows = self.db.execute("SELECT p.title, p.text_id FROM pages p JOIN texts t ON t.id = p.text_id "
                                       "WHERE p.digest = ? AND t.text IS NOT NULL ORDER BY p.id LIMIT 1",
                                       (page.digest,))
                if rows:
                    page.title = page.title or rows[0][0]
                    page.text_id = rows[0][1]

    def _record_changes(self, entry: CaptureEntry) -> None:
        """Pages added, removed and changed since the job's previous capture (in the
        database: neither capture is read into memory)."""
        if not entry.job or not entry.created:
            return
        rows = self.db.execute("SELECT id FROM captures WHERE job = ? AND (created < ? OR created = ? AND id < ?) "
                               "ORDER BY created DESC, id DESC LIMIT 1",
                               (entry.job, entry.created, entry.created, entry.id))
        if not rows:
            return
        previous = rows[0][0]
        for change, sql, params in (
                ("added", "SELECT DISTINCT n.url FROM pages n WHERE n.capture_id = ? AND NOT EXISTS "
                          "(SELECT 1 FROM pages b WHERE b.capture_id = ? AND b.url = n.url)", (entry.id, previous)),
                ("removed", "SELECT DISTINCT b.url FROM pages b WHERE b.capture_id = ? AND NOT EXISTS "
                            "(SELECT 1 FROM pages n WHERE n.capture_id = ? AND n.url = b.url)", (previous, entry.id)),
                ("changed", "SELECT DISTINCT n.url FROM pages n JOIN pages b ON b.url = n.url AND b.capture_id = ? "
                            "WHERE n.capture_id = ? AND n.digest IS NOT NULL AND b.digest IS NOT NULL "
                            "AND n.digest <> b.digest", (previous, entry.id))):
            self.db.execute(f"INSERT INTO changes (capture_id, previous_id, url, change) "
                            f"SELECT ?, ?, u.url, ? FROM ({sql}) u", (entry.id, previous, change, *params))

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
        (pages,), = self.db.execute("SELECT coalesce(sum(pages), 0) FROM captures")
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
            # the best texts by the word index alone, then the pages holding them that pass
            # the filters (and whose capture is still in the store); more when too few pass
            ranked = self.db.ranked(node, fetch)
            kept = self._passing(ranked, where, params, wanted)
            if len(kept) >= wanted or len(ranked) < fetch:
                break
            fetch *= 8
        rows = kept[max(0, offset):wanted]
        texts = self._texts({r[1] for r in rows})
        found = q.terms(node)
        # the hits often share texts (a page unchanged in many captures): each snippet is
        # made once (snippets were most of a search's CPU time on bench_search's pages)
        shown: dict[str, tuple[str, list[list[int]]]] = {}
        hits = []
        for _, text_id, capture_id, page_url, created, ts, title, status in rows:
            text = texts.get(text_id) or title or ""
            if text not in shown:
                shown[text] = snippet(text, found)
            hits.append(Hit(capture_id, page_url, created, ts, title, status, *shown[text]))
        return hits

    def _passing(self, ranked: list[int], where: list[str], params: list, most: int) -> list[tuple]:
        """The first `most` rows of the pages holding the texts `ranked` that pass the
        filters, in the order given (the pages of one text: the latest added first)."""
        rows: list[tuple] = []
        # texts in rank order, a few first and more when too few of their pages pass: the
        # rows of a later batch sort after every row of an earlier one, so stopping once
        # `most` are found gives what reading them all would (a common word's 200 best
        # texts, each held by a page in each of 100 captures, cost 20,000 rows read at once)
        start, size = 0, max(most, 16)
        while start < len(ranked) and len(rows) < most:
            batch = ranked[start:start + size]
            # each text with its place in the ranking, so that the database orders and
            # cuts the rows: a text many pages share (a site captured daily) gives its
            # latest pages only, and no more rows than are kept come back
            places = tuple(chain.from_iterable((tid, start + n) for n, tid in enumerate(batch)))
            rows += self.db.execute(
                "SELECT p.id, p.text_id, p.capture_id, p.url, c.created, p.ts, p.title, p.status "
                f"FROM (VALUES {', '.join(['(?, ?)'] * len(batch))}) r "
                "JOIN pages p ON p.text_id = r.column1 JOIN captures c ON c.id = p.capture_id WHERE "
                + " AND ".join(["c.missing_since IS NULL", *where])
                + " ORDER BY r.column2, p.id DESC LIMIT ?", (*places, *params, most - len(rows)))
            start += len(batch)
            size = min(4 * size, IN_BATCH)
        return rows

    def _texts(self, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        return {tid: unpack(text) for tid, text in self.db.execute(
            f"SELECT id, text FROM texts WHERE id IN ({', '.join('?' * len(ids))})", tuple(ids))}

    def page_text(self, capture_id: str, url: str) -> str | None:
        """The text of a page of a capture (the first, if the URL is there twice)."""
        rows = self.db.execute("SELECT t.text FROM pages p JOIN texts t ON t.id = p.text_id WHERE p.capture_id = ? "
                               "AND p.url = ? AND t.text IS NOT NULL ORDER BY p.id LIMIT 1", (capture_id, url))
        return unpack(rows[0][0]) if rows else None

    def history(self, text: str, url: str) -> list[dict]:
        """Every capture of `url` in time order, and whether the query matches it there."""
        node = q.parse(text)
        rows = self.db.execute(
            "SELECT p.text_id, p.capture_id, c.created, p.ts, p.status, p.error, t.text IS NOT NULL FROM pages p "
            "JOIN captures c ON c.id = p.capture_id LEFT JOIN texts t ON t.id = p.text_id "
            "WHERE p.url = ? AND c.missing_since IS NULL ORDER BY c.created, c.id, p.id", (url,))
        joins, match, match_params = self.db.match(node)
        present = {r[0] for r in self.db.execute(
            f"SELECT t.id FROM texts t {joins} WHERE {match} AND t.id IN (SELECT text_id FROM pages WHERE url = ?)",
            (*match_params, url))}
        return [{"capture_id": cid, "time": created, "page_time": ts, "status": status, "error": error,
                 "present": tid in present, "has_text": bool(has_text)}
                for tid, cid, created, ts, status, error, has_text in rows]

    def close(self) -> None:
        self.db.close()
