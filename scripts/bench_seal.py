#!/usr/bin/env python3
"""Benchmark: sealing N MiB of WARC data into a signed WACZ, against one
`openssl dgst -sha256` pass over the same WARC files (the least any sealing must cost).

Prints both times, the ratio (goal: at most 2x) and the peak RSS (goal: under 150 MB).
`--mib 1024` is the full-size run; the test suite runs a small one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from archive.hashing import warc_digest  # noqa: E402
from archive.wacz.zipwriter import ContainerWriter  # noqa: E402
from archive.seal.sign import Signer  # noqa: E402
from archive.seal.wacz import SealInput, seal  # noqa: E402
from archive.warc.cdxj import cdxj_line  # noqa: E402
from archive.warc.writer import WarcWriter  # noqa: E402

BODY = 1 << 20


def make_warcs(container: ContainerWriter, mib: int) -> tuple[list, list[str]]:
    """About `mib` MiB of incompressible response records, as a crawl would write them."""
    writer = WarcWriter(container, "bench", {"software": "bench"}, max_size=256 << 20)
    lines = []
    for n in range(mib):
        body = os.urandom(BODY)
        block = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + body
        url = f"http://bench.test/{n}"
        ref = writer.write(
            "response", url, BytesIO(block), len(block),
            warc_digest(hashlib.sha256(block)), warc_digest(hashlib.sha256(body)),
        )
        lines.append(cdxj_line(url, ref.date, ref.filename, ref.offset, ref.length, "response"))
    return writer.close(), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="MiB of WARC data (default 1024)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        tmp = Path(tmp)
        container = ContainerWriter(tmp / "bench.wacz")
        warcs, lines = make_warcs(container, args.mib)
        container._fh.flush()
        total = sum(w.size for w in warcs)
        # The crawl wrote its data over minutes; by sealing time it is on disk, as it is
        # for openssl here.
        os.sync()

        start = time.perf_counter()
        subprocess.run(["openssl", "dgst", "-sha256", str(container.open_path)],
                       check=True, stdout=subprocess.DEVNULL)
        openssl_s = time.perf_counter() - start

        signer = Signer(ec.generate_private_key(ec.SECP256R1()))
        pages = [{"url": "http://bench.test/0", "ts": "2026-01-01T00:00:00Z"}]
        start = time.perf_counter()
        sealed = seal(container, SealInput("bench", lines, pages), signer)
        seal_s = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    result = {
        "warc_bytes": total, "wacz_bytes": sealed.size,
        "openssl_seconds": round(openssl_s, 3), "seal_seconds": round(seal_s, 3),
        "ratio": round(seal_s / openssl_s, 2), "goal_ratio": 2.0,
        "seal_MBps": round(total / seal_s / 1e6, 1), "openssl_MBps": round(total / openssl_s / 1e6, 1),
        "peak_rss_mb": round(peak_mb, 1), "goal_rss_mb": 150,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"WARC data       {total / 2**20:.0f} MiB in {len(warcs)} files")
        print(f"openssl sha256  {openssl_s:.3f} s  ({result['openssl_MBps']} MB/s)")
        print(f"seal (signed)   {seal_s:.3f} s  ({result['seal_MBps']} MB/s)")
        print(f"ratio           {result['ratio']}x  (goal: at most 2x)")
        print(f"peak RSS        {result['peak_rss_mb']} MB  (goal: under 150 MB)")


if __name__ == "__main__":
    main()
