"""The captures list's queries over a real catalog (SQLite and a throwaway PostgreSQL):
filters by job, seed host, date and verdict, and keyset paging that neither skips nor
repeats a capture."""

from __future__ import annotations

import pytest

from archive.catalog.catalog import CaptureEntry, PageEntry
from archive.catalog.locate import open_catalog
from archive.serve.listing import Filters, badge, jobs, list_captures, url_history
from archive.store.local import LocalStore
from tests.pgserver import pg_cluster  # noqa: F401 - the session's PostgreSQL cluster

COUNT = 120


def _entry(n: int) -> CaptureEntry:
    host = ["news.example", "news.example.org", "ministry_gov.example", "a%b.example"][n % 4]
    capture_id = f"202601{1 + n // 24:02d}T{n % 24:02d}0000Z-{n:08x}"
    return CaptureEntry(
        id=capture_id, created=f"2026-01-{1 + n // 24:02d}T{n % 24:02d}:00:00Z", title=f"Capture {n}",
        seeds=[f"https://{host}/statement"], signer=None if n % 5 == 0 else "ab" * 32, sha256="00" * 32,
        size=1000 + n, job=f"job{n % 3}", operator="test", address=None,
        pages=[PageEntry(url=f"https://{host}/statement", status=200, title="Statement", digest=f"sha256:{n % 7}",
                         text=f"text {n}")])


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request, tmp_path):
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    address = (str(tmp_path / "catalog.sqlite3") if request.param == "sqlite"
               else request.getfixturevalue("pg_cluster").database())
    opened, _ = open_catalog(store, address, write=True)
    for n in range(COUNT):
        opened.add(_entry(n))
    opened.set_verdicts({_entry(n).id: ("NOT VERIFIED" if n % 11 == 0 else "VERIFIED", "2026-02-01T00:00:00Z")
                         for n in range(0, COUNT, 2)})
    yield opened
    opened.close()


def _all(catalog, filters: Filters, limit: int = 17) -> list[dict]:
    rows, before, pages = [], None, 0
    while True:
        page, before = list_captures(catalog, filters, before, limit)
        rows += page
        pages += 1
        assert len(page) <= limit and pages < 100
        if before is None:
            return rows


def test_filters_and_keyset_paging(catalog):
    everything = _all(catalog, Filters())
    ids = [r["id"] for r in everything]
    assert len(ids) == COUNT == len(set(ids)) and ids == sorted(ids, reverse=True)     # newest first, each once

    def expected(keep) -> list[str]:
        return sorted((_entry(n).id for n in range(COUNT) if keep(n)), reverse=True)

    assert [r["id"] for r in _all(catalog, Filters(job="job1"))] == expected(lambda n: n % 3 == 1)
    # a host is matched whole: news.example is not news.example.org; LIKE's % and _ are literal
    assert [r["id"] for r in _all(catalog, Filters(host="news.example"))] == expected(lambda n: n % 4 == 0)
    assert [r["id"] for r in _all(catalog, Filters(host="NEWS.example.org"))] == expected(lambda n: n % 4 == 1)
    assert [r["id"] for r in _all(catalog, Filters(host="ministry_gov.example"))] == expected(lambda n: n % 4 == 2)
    assert [r["id"] for r in _all(catalog, Filters(host="a%b.example"))] == expected(lambda n: n % 4 == 3)
    assert _all(catalog, Filters(host="ministryXgov.example")) == [] and _all(catalog, Filters(host="a")) == []
    assert [r["id"] for r in _all(catalog, Filters(since="2026-01-03T00:00:00Z", until="2026-01-04T23:59:59Z"))] \
        == expected(lambda n: 2 <= n // 24 <= 3)
    verified = expected(lambda n: n % 2 == 0 and n % 11 and n % 5)
    assert [r["id"] for r in _all(catalog, Filters(verdict="verified"))] == verified
    assert [r["id"] for r in _all(catalog, Filters(verdict="not-verified"))] == expected(lambda n: n % 22 == 0)
    assert [r["id"] for r in _all(catalog, Filters(verdict="unsigned"))] == expected(lambda n: n % 5 == 0 and n % 22)
    assert [r["id"] for r in _all(catalog, Filters(verdict="unchecked"))] == expected(lambda n: n % 2 and n % 5)
    both = _all(catalog, Filters(job="job2", host="news.example", verdict="verified"))
    assert [r["id"] for r in both] == expected(lambda n: n % 3 == 2 and n % 4 == 0 and n % 2 == 0 and n % 11 and n % 5)
    badges = {r["id"]: r["badge"] for r in everything}
    assert badges[_entry(0).id] == "NOT VERIFIED" and badges[_entry(5).id] == "UNSIGNED"
    assert badges[_entry(2).id] == "VERIFIED" and badges[_entry(1).id] == "not verified yet"
    assert badge({"verdict": None, "signer": None}) == "UNSIGNED"

    assert jobs(catalog) == ["job0", "job1", "job2"]
    history = url_history(catalog, "https://news.example/statement")
    assert [h["capture_id"] for h in history] == sorted(_entry(n).id for n in range(0, COUNT, 4))
