"""A proxied response's spool is read once into the WARC and handed back as it is read
(archive.dropbehind): the record holds every byte served, the spool's disk space goes as
the copy goes, and nothing can read the spool afterwards (it would find zeros)."""

from __future__ import annotations

import os
import random
import tempfile

import pytest
import requests
from warcio.archiveiterator import ArchiveIterator

from archive.capture.addresses import AddressPolicy
from archive.capture.exchange import write_for_sink
from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy
from archive.dropbehind import RELEASE_EVERY, ReleasedBehind, _punch_call
from archive.warc.filesink import FileSink
from archive.warc.writer import WarcWriter
from tests.conftest import stored_waczs
from tests.site import Site, SiteServer
from tests.warcs import records

MIB = 1 << 20
BIG = 20 * MIB + 12345          # past two punches, and not a whole number of pages


def _spool(folder, data: bytes):
    spool = tempfile.SpooledTemporaryFile(MIB, dir=folder)
    spool.write(data)
    spool.seek(0)
    return spool


@pytest.fixture
def punching(tmp_path):
    """Skip where the file system of the test's folder cannot punch holes."""
    call = _punch_call()
    with open(tmp_path / "probe", "wb") as fh:
        fh.write(b"x" * (1 << 16))
        fh.flush()
        if call is None or call(fh.fileno(), 3, 0, 1 << 16) != 0:
            pytest.skip("this file system cannot punch holes in a file")


def test_the_spool_reads_whole_and_its_disk_space_goes_behind_the_reading(tmp_path, punching):
    data = random.Random(3).randbytes(BIG)
    spool = _spool(tmp_path, data)
    fd = spool.fileno()
    before = os.fstat(fd).st_blocks * 512
    reader = ReleasedBehind(spool)
    pieces, middle = [], None
    while piece := reader.read(MIB):
        pieces.append(piece)
        if len(pieces) == 12:
            middle = os.fstat(fd).st_blocks * 512
    assert b"".join(pieces) == data
    # what was read is gone from the disk (8 MiB at a time), what was not is still there
    assert before >= BIG
    assert before - 12 * MIB <= middle <= before - RELEASE_EVERY
    # read to its end, the spool is closed: nothing reads zeros where the bytes were
    assert spool.closed
    with pytest.raises(ValueError):
        spool.read(1)


def test_a_spool_still_in_memory_is_read_as_it_is_and_never_written_out(tmp_path):
    data = random.Random(4).randbytes(1000)
    spool = _spool(tmp_path, data)
    reader = ReleasedBehind(spool)
    assert not hasattr(reader, "seek")          # read once, front to back: nothing goes back
    assert reader.read(600) + reader.read() == data
    assert spool._rolled is False and list(tmp_path.iterdir()) == []
    assert reader.read() == b"" and spool.closed


class _Sink:
    """A recording proxy's sink writing each exchange as the media and browser sessions do
    (write_for_sink), noting whether the spool was left open for anything to read."""

    def __init__(self, writer: WarcWriter) -> None:
        self.writer, self.failures, self.spool_open = writer, [], {}

    def begin(self, url):
        return url

    def end(self, token, result, notes):
        write_for_sink(self.writer, lambda recorded: None, result, notes, None, self.failures)
        self.spool_open[result.url] = not result.response.closed


@pytest.mark.parametrize("size", [BIG, 5000])
def test_a_proxied_response_is_recorded_byte_for_byte_and_its_spool_is_closed(tmp_path, size):
    served = random.Random(size).randbytes(size)
    site = Site()
    site.add("/video.mp4", served, content_type="video/mp4")
    writer = WarcWriter(FileSink(tmp_path / "warc"), "t", {"software": "test"})
    sink, authority = _Sink(writer), InterceptionCA()
    try:
        with SiteServer(site) as server, RecordingProxy(
                sink, authority, ProxyOptions(policy=AddressPolicy(allow_private=True))) as proxy:
            session = requests.Session()
            session.trust_env = False
            session.proxies = {"http": proxy.url}
            assert session.get(server.url("/video.mp4")).content == served
            proxy.settle(server.url("/video.mp4"), "test over")
    finally:
        authority.close()
    files = writer.close()
    assert sink.failures == []
    assert sink.spool_open == {server.url("/video.mp4"): False}
    with open(tmp_path / "warc" / files[0].name, "rb") as fh:
        responses = [(record.content_stream().read(), record.rec_headers)
                     for record in ArchiveIterator(fh, check_digests="raise")
                     if record.rec_type == "response"]
    assert len(responses) == 1
    payload, headers = responses[0]
    assert payload == served and headers.get_header("WARC-Target-URI") == server.url("/video.mp4")


def test_a_crawled_file_is_recorded_byte_for_byte_and_the_page_linking_it_too(run, key, pubkey, tmp_path):
    """The crawler copies a response it does not parse (a video, here) through the same
    reader; a page it parses is read again after its records are written, and keeps its
    spool whole for that: its links are followed."""
    served = random.Random(5).randbytes(BIG)
    site = Site()
    site.html("/", "Home", '<a href="/film.mp4">the film</a> <a href="/next">next</a>')
    site.html("/next", "Next", "<p>the next page</p>")
    site.add("/film.mp4", served, content_type="video/mp4")
    with SiteServer(site) as server:
        result = run("capture", server.url("/"), "--depth", "1", "--scope", "host", "--key", key, "--store", tmp_path / "store",
                     "--work-dir", tmp_path / "work", "--quiet", "--allow-private-addresses")
    assert result.code == 0, result
    wacz = stored_waczs(tmp_path / "store")[-1]
    assert run("verify", wacz, "--trust", pubkey).code == 0
    payloads = {r["uri"]: r["http"] and r["payload"] for r in records(wacz) if r["type"] == "response"}
    assert set(payloads) == {server.url(p) for p in ("/robots.txt", "/", "/next", "/film.mp4")}
    assert payloads[server.url("/film.mp4")].endswith(served)
