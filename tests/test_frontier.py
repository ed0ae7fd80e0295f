"""The frontier's order and limits, without a network."""

import threading
import time

from archive.capture.crawl import retry_after
from archive.capture.frontier import Frontier, Item


def test_requisites_first_then_pages_breadth_first_and_no_url_twice():
    f = Frontier(per_host=10)
    for item in (Item("http://a/2", 2), Item("http://a/1", 1), Item("http://a/img", 1, True),
                 Item("http://a/1", 1)):
        f.add(item)
    order = []
    while (item := f.claim()) is not None:
        order.append(item.url)
        f.release(item)
    assert order == ["http://a/img", "http://a/1", "http://a/2"]


def test_max_pages_stops_pages_but_not_requisites_or_retries():
    f = Frontier(max_pages=1)
    f.add(Item("http://a/p1", 0))
    f.add(Item("http://a/p2", 0))
    first = f.claim()
    f.add(Item("http://a/img", 0, True))
    f.retry(first.retried(), 0)
    f.release(first)
    got = []
    while (item := f.claim()) is not None:
        got.append((item.url, item.attempt))
        f.release(item)
    assert got == [("http://a/img", 0), ("http://a/p1", 1)]
    assert [i.url for i in f.remaining()] == ["http://a/p2"]


def test_per_host_limit_and_other_hosts_go_ahead():
    f = Frontier(per_host=1)
    for url in ("http://a/1", "http://a/2", "http://b/1"):
        f.add(Item(url, 0))
    one = f.claim()
    other = f.claim()          # a's only slot is taken: b goes ahead
    assert (one.url, other.url) == ("http://a/1", "http://b/1")
    got = []
    waiter = threading.Thread(target=lambda: got.append(f.claim()))
    waiter.start()
    waiter.join(0.3)
    assert got == [] and waiter.is_alive()       # waits for a's slot
    f.release(one)
    waiter.join(5)
    assert got[0].url == "http://a/2"


def test_hold_delays_a_host():
    f = Frontier()
    f.add(Item("http://a/1", 0))
    f.hold("http://a/x", time.monotonic() + 0.5)
    started = time.monotonic()
    assert f.claim().url == "http://a/1"
    assert time.monotonic() - started >= 0.45


def test_retry_after_forms():
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0     # in the past
    assert retry_after("soon") is None and retry_after(None) is None


def _drain(frontier: Frontier, more=lambda item: ()) -> list[tuple]:
    """Claim everything, adding what `more` says each claimed item links to."""
    order = []
    while (item := frontier.claim()) is not None:
        order.append((item.url, item.depth, item.requisite))
        frontier.add_many(list(more(item)))
        frontier.release(item)
    return order


def _site_links(item: Item):
    """A generated site: each page links to three deeper pages and one image (shared by
    its siblings, so most are seen already), on two hosts."""
    if item.requisite or item.depth >= 4:
        return ()
    n = item.url.rsplit("/", 1)[-1]
    host = "http://b" if n.endswith("2") else "http://a"
    yield Item(f"http://a/img{len(n)}.png", item.depth, True)
    for k in range(3):
        yield Item(f"{host}/{n}{k}", item.depth + 1)


def test_a_spilled_frontier_hands_out_the_same_urls_in_the_same_order(tmp_path, monkeypatch):
    from archive.capture.spill import SpillFile

    def crawl(spill, max_pages=None):
        f = Frontier(per_host=1, max_pages=max_pages, spill=spill)
        f.add(Item("http://a/p", 0))
        order = _drain(f, _site_links)
        left = sorted(i.url for i in f.remaining())
        return order, left, f.over_limit_more

    in_memory = crawl(None)
    assert len(in_memory[0]) == 1 + 3 + 9 + 27 + 81 + 4   # pages, and the four images
    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", "4")
    spill = SpillFile(str(tmp_path / "frontier.sqlite"))
    assert crawl(spill) == in_memory
    assert (tmp_path / "frontier.sqlite").exists()          # it did spill
    spill.close()
    assert not (tmp_path / "frontier.sqlite").exists()
    # --max-pages with pages spilled: the same pages fetched, the same ones left out
    limited = crawl(None, max_pages=20)
    assert crawl(SpillFile(str(tmp_path / "again.sqlite")), max_pages=20) == limited
    assert len([u for u in limited[0] if not u[2]]) == 20


def test_spilled_seen_urls_and_digests_are_still_known(tmp_path, monkeypatch):
    from archive.capture.dedup import Dedup, Original
    from archive.capture.spill import SpillFile

    monkeypatch.setenv("ARCHIVE_CRAWL_MEMORY", "2")
    spill = SpillFile(str(tmp_path / "spill.sqlite"))
    f = Frontier(spill=spill)
    assert [f.add(Item(f"http://a/{n}", 1)) for n in range(6)] == [True] * 6
    assert [f.add(Item(f"http://a/{n}", 2)) for n in range(6)] == [False] * 6
    assert f.mark_seen(["http://a/5", "http://a/9"]) == ["http://a/9"]
    dedup = Dedup(spill=spill)
    digests = [f"sha256:{n:064x}" for n in range(5)]
    for n, digest in enumerate(digests):
        dedup.add(digest, Original(f"http://a/{n}", "2026-01-01T00:00:00Z", f"<urn:uuid:{n}>"))
    dedup.add(digests[4], Original("http://a/later", "2026-01-02T00:00:00Z", "<urn:uuid:x>"))
    assert [dedup.lookup(d).uri for d in digests] == [f"http://a/{n}" for n in range(5)]
    assert dedup.lookup("sha256:" + "f" * 64) is None
