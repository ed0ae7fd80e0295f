#!/usr/bin/env python3
"""Benchmark: recording one N MiB response through the browser's recording proxy,
against the HTTP crawler's fetcher recording the same response, both written to a WARC
the same way (archive.capture.exchange), from the tests' server on 127.0.0.1.

Prints both times, their ratio (proxy / fetcher) and the peak RSS of the process
(memory must stay flat whatever the size: the proxy streams and spools to disk).
`--mib 512` is the full-size run; the test suite runs a small one.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from archive.capture.exchange import write_exchange  # noqa: E402
from archive.capture.fetch import fetch, make_session  # noqa: E402
from archive.capture.proxy import InterceptionCA, ProxyOptions, RecordingProxy  # noqa: E402
from archive.wacz.zipwriter import ContainerWriter  # noqa: E402
from archive.warc.writer import WarcWriter  # noqa: E402
from tests.site import Site, SiteServer, streamed  # noqa: E402  (the tests' real server)
from archive.capture.addresses import AddressPolicy  # noqa: E402

LOOPBACK = AddressPolicy(allow_private=True)   # the test servers are on 127.0.0.1


class WarcSink:
    """Writes the proxy's exchanges as the browser session does."""

    def __init__(self, writer: WarcWriter) -> None:
        self.writer = writer

    def begin(self, url):
        return None

    def end(self, token, result, notes) -> None:
        write_exchange(self.writer, result, extra_fields=notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="MiB in the response (default 512)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    site = Site()
    site.add("/big", handler=streamed(args.mib << 20))
    with SiteServer(site) as server, tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        tmp = Path(tmp)
        url = server.url("/big")
        container = ContainerWriter(tmp / "bench.wacz")
        writer = WarcWriter(container, "bench", {"software": "bench"})

        start = time.perf_counter()
        result = fetch(make_session(policy=LOOPBACK), url, spool_dir=str(tmp))
        write_exchange(writer, result)
        result.close()
        fetcher_s = time.perf_counter() - start

        ca = InterceptionCA()
        with RecordingProxy(WarcSink(writer), ca, ProxyOptions(policy=LOOPBACK, spool_dir=str(tmp))) as proxy:
            session = requests.Session()
            session.trust_env = False
            session.proxies = {"http": proxy.url}
            start = time.perf_counter()
            with session.get(url, stream=True) as response:
                received = sum(len(c) for c in response.iter_content(1 << 16))
        proxy_s = time.perf_counter() - start     # the proxy has written its records by now
        ca.close()
        writer.close()
        container.close()
    if received != args.mib << 20:
        sys.exit(f"the client received {received} bytes, not {args.mib << 20}")
    out = {
        "response_bytes": args.mib << 20,
        "fetcher_seconds": round(fetcher_s, 3),
        "proxy_seconds": round(proxy_s, 3),
        "ratio": round(proxy_s / fetcher_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(out))
    else:
        mib = args.mib
        print(f"crawler fetcher  {out['fetcher_seconds']:8.2f} s  ({mib / fetcher_s:6.0f} MiB/s)")
        print(f"browser proxy    {out['proxy_seconds']:8.2f} s  ({mib / proxy_s:6.0f} MiB/s)")
        print(f"ratio            {out['ratio']:8.2f}")
        print(f"peak RSS         {out['peak_rss_mb']:8.1f} MB")


if __name__ == "__main__":
    main()
