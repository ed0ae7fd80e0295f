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
