"""Server-side request forgery: a page must not make the capture reach inside.

Everything runs on loopback. The seed's host (127.0.0.1) is the operator's choice, so it
is fetched; another loopback host (127.0.0.2, or the name `localhost`, which resolves
inside) is "inside" for the rule, exactly as 10.0.0.5 would be on a real network. The
metadata address 169.254.169.254 is refused before any connection is tried, so no
packet leaves the machine."""

from __future__ import annotations


import pytest

from archive.capture.addresses import AddressPolicy, AddressRefused
from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy
from tests.warcs import warc_bytes
from tests.site import PNG, Site, SiteServer
from tests.test_browser_proxy import Collected, proxied
from tests.test_hostile_servers import capture_to

SECRET = b"INTERNAL-CREDENTIALS-0xC0FFEE"
METADATA = "http://169.254.169.254/latest/meta-data/iam/"


@pytest.fixture
def inside():
    site = Site()
    site.add("/secret.png", SECRET, content_type="image/png")
    site.add("/direct.png", SECRET + b"-direct", content_type="image/png")
    with SiteServer(site, host="127.0.0.2") as server:
        yield server


@pytest.fixture
def outside(inside):
    """The 'public' page: its requisites reach inside by a redirect, directly, by a name
    that resolves to loopback, and at the metadata address."""
    site = Site()
    with SiteServer(site) as server:
        site.html("/", "Hostile", (
            '<img src="/r"><img src="%s"><img src="http://localhost:%d/own.png"><img src="%s">'
            '<img src="/ok.png">' % (inside.url("/direct.png"), server.port, METADATA)))
        site.add("/r", status=302, headers={"Location": inside.url("/secret.png")})
        site.add("/ok.png", PNG, content_type="image/png")
        site.add("/own.png", SECRET + b"-via-localhost", content_type="image/png")
        yield server


def _capture(run, tmp_path, url, *extra) -> tuple[dict, bytes]:
    summary, wacz = capture_to(run, tmp_path, url, *extra)
    return summary, warc_bytes(wacz)


def test_requisites_inside_are_refused_and_recorded(run, tmp_path, outside, inside):
    summary, warc = _capture(run, tmp_path, outside.url("/"))
    assert inside.site.requests == []                        # no connection was even made
    assert SECRET not in warc
    assert outside.site.requests.count("/own.png") == 0      # `localhost` is not the seed's host
    assert PNG in warc and outside.site.requests.count("/ok.png") == 1
    # each refusal is evidence, as any failed fetch: the address and the way to allow it
    assert summary["failed"] == 4
    assert warc.count(b"address-refused") >= 4
    assert b"127.0.0.2, a loopback, private or reserved address" in warc
    assert b"169.254.169.254, a link-local address" in warc and b"--allow-metadata-addresses" in warc


def test_allow_private_addresses_fetches_inside_but_never_the_metadata_range(run, tmp_path, outside, inside):
    summary, warc = _capture(run, tmp_path, outside.url("/"), "--allow-private-addresses")
    assert sorted(set(inside.site.requests) - {"/robots.txt"}) == ["/direct.png", "/secret.png"]
    assert SECRET + b"-direct" in warc and SECRET + b"-via-localhost" in warc
    assert summary["failed"] == 1 and b"169.254.169.254, a link-local address" in warc


def test_a_seed_inside_is_the_operators_choice(run, tmp_path, inside):
    """A seed on 127.0.0.2 named as `localhost`'s neighbour: its own host is fetched."""
    summary, warc = _capture(run, tmp_path, inside.url("/secret.png"))
    assert summary["failed"] == 0 and SECRET in warc


def test_the_recording_proxy_applies_the_same_rule(outside, inside):
    ca = InterceptionCA()
    sink = Collected()
    policy = AddressPolicy.for_seeds([outside.url("/")])
    try:
        with RecordingProxy(sink, ca, ProxyOptions(policy=policy)) as proxy:
            session = proxied(proxy)
            assert session.get(outside.url("/ok.png")).content == PNG
            refused = session.get(inside.url("/secret.png"))
            meta = session.get(METADATA)
    finally:
        ca.close()
    assert refused.status_code == 502 and SECRET not in refused.content
    assert meta.status_code == 502 and inside.site.requests == []
    for url in (inside.url("/secret.png"), METADATA):
        result, raw, _ = sink.one(url)
        assert raw is None and result.error_kind == "address-refused", result.error


def test_the_address_decided_is_the_address_connected_to():
    """A name is resolved once, by the policy, and every answer judged: names inside
    are refused (a DNS name can point anywhere), IPv4-mapped IPv6 is seen through."""
    policy = AddressPolicy.for_seeds(["http://127.0.0.1/"])
    assert policy.refusal("127.0.0.1", "127.0.0.1") is None
    for host, address in (("localhost", "127.0.0.1"), ("x", "::ffff:10.0.0.1"), ("x", "192.168.1.1"),
                          ("x", "100.64.0.1"), ("x", "::1"), ("x", "0.0.0.0"), ("x", "fd00:ec2::254")):
        assert policy.refusal(host, address), (host, address)
    assert policy.refusal("x", "93.184.216.34") is None
    with pytest.raises(AddressRefused, match="localhost is at 127.0.0.1"):
        policy.resolve("localhost", 80)
    assert AddressPolicy(allow_private=True).refusal("x", "169.254.169.254")
    assert AddressPolicy(allow_private=True, allow_metadata=True).refusal("x", "169.254.169.254") is None



def test_a_browser_capture_goes_through_the_same_rule(run, tmp_path, outside, inside):
    """Chromium's requests all pass the recording proxy, which applies the crawl's rule."""
    summary, warc = _capture(run, tmp_path, outside.url("/"), "--browser", "--page-timeout", "20s")
    assert inside.site.requests == [] and SECRET not in warc
    assert b"address-refused" in warc and b"127.0.0.2, a loopback, private or reserved address" in warc
    assert PNG in warc
