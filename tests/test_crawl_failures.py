"""Failures are evidence: every kind is recorded (metadata record and pages.jsonl entry),
transient ones are retried a bounded number of times, and the crawl still verifies."""

from __future__ import annotations

import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import stored_waczs, tool
from tests.site import SiteServer, failures_site
from tests.warcs import pages, records


def _fields(payload: bytes) -> dict:
    out: dict = {}
    for line in payload.decode().splitlines():
        if ": " in line:
            name, value = line.split(": ", 1)
            out.setdefault(name, value)
    return out


@pytest.fixture
def no_dns_for_invalid(monkeypatch):
    """Names under .invalid fail to resolve without asking any resolver (no traffic)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_every_failure_is_recorded_and_the_crawl_still_verifies(
        run, key, pubkey, tmp_path, no_dns_for_invalid):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    closed.close()   # nothing listens there now
    with SiteServer(failures_site()) as server:
        result = run(
            "capture", server.url("/"), "http://nowhere.invalid/", refused_url,
            "--depth", "1", "--scope", "host", "--timeout", "1", "--retries", "1",
            "--retry-wait", "0.2", "--max-body", "1MB", "--max-redirects", "5",
            "--key", key, "--store", tmp_path / "store", "--work-dir", tmp_path / "w", "--quiet",
        )
        requests = list(server.site.requests)
    assert result.code == 0, result
    wacz = Path(stored_waczs(tmp_path / "store")[0])
    verify = run("verify", wacz, "--trust", pubkey)
    assert verify.code == 0, verify

    entries = {p["url"]: p for p in pages(wacz)}
    url = server.url

    def kind(u):
        return entries[u].get("errorKind"), entries[u].get("error", "")

    assert kind(url("/missing"))[0] == "http" and entries[url("/missing")]["status"] == 404
    assert kind(url("/error")) == ("http", "HTTP 500")
    assert entries[url("/error")]["attempts"] == 2 and requests.count("/error") == 2
    assert kind(url("/reset"))[0] == "reset" and "cut short" in kind(url("/reset"))[1]
    assert kind(url("/slow"))[0] == "timeout"
    assert kind("http://nowhere.invalid/")[0] == "dns"
    assert kind(refused_url)[0] == "refused"
    assert "redirect loop" in kind(url("/loop/b"))[1]
    assert "more than 5 redirects" in kind(url("/long/5"))[1]
    assert requests.count("/long/6") == 0
    # a chain within the limit: every hop is its own request/response pair
    assert entries[url("/chain/3")]["redirectedFrom"] == url("/chain/0")
    assert "error" not in entries[url("/chain/3")]
    # Retry-After: 2 honoured: the second request came seconds later, not at --retry-wait 0.2
    busy = entries[url("/busy")]
    assert busy["status"] == 200 and busy["attempts"] == 2
    times = [t for p, t in server.site.times if p == "/busy"]
    assert times[1] - times[0] >= 1.0

    recs = records(wacz)
    responses = [r for r in recs if r["type"] == "response"]
    # both attempts at /error are in the WARC, each with its own metadata record
    assert sum(1 for r in responses if r["uri"] == url("/error")) == 2
    metas = [_fields(r["payload"]) for r in recs if r["type"] == "metadata"]
    assert any(m.get("error-kind") == "dns" for m in metas)
    assert any(m.get("error-kind") == "refused" for m in metas)
    assert any("retrying" in m.get("note", "") for m in metas)
    # bodies cut short, by the server or by --max-body, are kept and marked
    reset = [r for r in responses if r["uri"] == url("/reset")]
    assert reset and all(r["headers"]["WARC-Truncated"] == "disconnect" for r in reset)
    assert reset[-1]["payload"] == b"x" * 1000
    big = next(r for r in responses if r["uri"] == url("/big.bin"))
    assert big["headers"]["WARC-Truncated"] == "length"
    assert 1_000_000 <= len(big["payload"]) < 3 * 1024 * 1024

    out = tmp_path / "unzipped"
    zipfile.ZipFile(wacz).extractall(out)
    warcs = sorted(str(p) for p in (out / "archive").glob("*.warc.gz"))
    check = subprocess.run([tool("warcio"), "check", *warcs], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_retry_after_beyond_the_limit_is_recorded_not_waited_for(run, key, tmp_path):
    from tests.site import Site, fails_then
    site = Site()
    site.add("/", handler=fails_then(429, {"Retry-After": "3600"}, times=5))
    with SiteServer(site) as server:
        result = run("capture", server.url("/"), "--key", key, "--store", tmp_path / "s",
                     "--work-dir", tmp_path / "w", "--quiet", "--max-time", "60")
        assert server.site.requests.count("/") == 1
    assert result.code == 1, result     # stored, but its only page failed
    entry = pages(Path(stored_waczs(tmp_path / "s")[0]))[0]
    assert entry["status"] == 429 and entry["error"] == "HTTP 429"


def test_max_time_cuts_a_fetch_stalled_before_its_headers(run, key, tmp_path):
    """--max-time bounds a fetch whose server never starts answering, as it bounds a slow
    body: the wait for the head ends at the crawl's deadline, not after --timeout, and
    the page is recorded as failed there, saying why."""
    import time

    from tests.site import Site, slow
    site = Site()
    site.html("/", "Home", '<a href="/stalled.html">stalled</a>')
    site.add("/stalled.html", handler=slow(40))      # no status line for 40 s
    with SiteServer(site) as server:
        started = time.monotonic()
        result = run("capture", server.url("/"), "--key", key, "--store", tmp_path / "s",
                     "--work-dir", tmp_path / "w", "--quiet", "--depth", "1", "--scope", "host",
                     "--max-time", "2",
                     "--timeout", "60")
        took = time.monotonic() - started
        assert "/stalled.html" in server.site.requests
    assert took < 15, f"--max-time 2, but the capture took {took:.1f} s"
    assert result.code == 0 and "failed fetches 1" in result.out, result
    stalled = next(p for p in pages(Path(stored_waczs(tmp_path / "s")[0]))
                   if p["url"].endswith("/stalled.html"))
    assert stalled["errorKind"] == "timeout" and "deadline (--max-time)" in stalled["error"], stalled
