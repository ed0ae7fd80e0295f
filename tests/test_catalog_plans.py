"""PostgreSQL's ranking query reads what its matches need, not the whole catalog: on a
catalog of texts whose word lists are past TOAST's 2 kB, after the compaction `archive
index` ends with, the query for a rare word goes through the GIN index and reads a few
pages, and the one for a word in half the texts reads no more pages than the table has.
What this holds off (each was measured on bench_search's catalog): a sequential scan of
the texts, a GIN pending list left unmerged (read whole by every search), and word lists
read from TOAST (several more pages for each text ranked)."""

from __future__ import annotations

import json
import random

import pytest

from archive.catalog import query as q
from archive.catalog.backends import PostgresBackend
from archive.catalog.catalog import CaptureEntry, Catalog, PageEntry
from tests.pgserver import pg_cluster  # noqa: F401 - the session's PostgreSQL cluster

TEXTS = 1500
WORDS = 400        # per text: a word list of about 4 kB


def _text(rng: random.Random, n: int) -> str:
    words = ["".join(rng.choice("etaoinshrdlcumwfgypbvk") for _ in range(rng.randint(3, 9))) for _ in range(WORDS)]
    words.append("jazz" if n % 2 else "jolt")      # j and z: never in a made-up word
    if n % 100 == 0:
        words.append("quiz")
    return " ".join(words)


@pytest.fixture(scope="module")
def compacted(pg_cluster):  # noqa: F811
    rng = random.Random(5)
    catalog = Catalog(PostgresBackend(pg_cluster.database()), "plans")
    catalog.prepare("plans", write=True)
    catalog.add(CaptureEntry(
        id="20260101T000000Z-00000001", created="2026-01-01T00:00:00Z", title=None, seeds=[], signer=None,
        sha256=None, size=None, job=None, operator=None, address=None,
        pages=[PageEntry(url=f"https://example.org/{n}", title=f"Page {n}", text=_text(rng, n))
               for n in range(TEXTS)]))
    catalog.compact()
    yield catalog.db
    catalog.close()


def _explain(db: PostgresBackend, word: str) -> tuple[dict, int]:
    """The ranking query's plan as run, and the pages it read (found in memory or not)."""
    sql, params = db.ranking(q.parse(word), 200)
    (plan,), = db.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    return top, top["Shared Hit Blocks"] + top["Shared Read Blocks"]


def test_word_lists_are_large_enough_to_be_toasted(compacted):
    (size,), = compacted.execute("SELECT min(pg_column_size(words)) FROM texts")
    assert size > 2100, size      # else this file tests nothing: TOAST never takes them


def test_a_rare_word_is_ranked_through_the_index_reading_a_few_pages(compacted):
    plan, pages = _explain(compacted, "quiz")
    assert "texts_words" in json.dumps(plan), plan
    assert plan["Actual Rows"] == TEXTS // 100
    assert pages < 60, (pages, plan)


def test_a_common_word_is_ranked_reading_no_more_than_the_table(compacted):
    (table_pages,), = compacted.execute("SELECT relpages FROM pg_class WHERE relname = 'texts'")
    plan, pages = _explain(compacted, "jazz")
    assert plan["Actual Rows"] == 200
    # the index's own pages aside, at most each page of the table once: no TOAST reads
    assert pages <= table_pages + 40, (pages, table_pages, plan)
