"""One front-to-back read of a WACZ, every byte handed to the checks that need it.

For a canonical container (ours) every byte range is known in advance: local header,
member data, central directory, end records. The file is read once, in order: the
whole-file SHA-256, each member's SHA-256 and CRC-32, and each member's own check (WARC
records, index lines, page lines, JSON) all see the same chunk. The work is spread over
threads (hashlib and zlib release the GIL): the reading thread hashes members, one
worker hashes the whole file, one checks WARC records (and the block and payload digests
of a large record, a video's, are hashed on threads of their own: archive.reader.digests).
For a large local file of many records the WARC records are checked apart instead, on
every core (archive.verify.segments), and their members are only hashed here.

A foreign container is read member by member through zipfile, then the file hashed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable

from archive.hashing import Worker, stream_sha256
from archive.wacz.bounds import Meter
from archive.wacz.zipreader import Container, iter_member
from archive.reader.fastzlib import crc32

CHUNK = 1 << 20


class Sink:
    """Receives one member's bytes in order."""

    def feed(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass

    def metered(self, meter) -> None:
        """Count the work of inflating what is fed against the file bytes `meter` says
        were read for it (a deflated zip entry: archive.wacz.bounds)."""


@dataclass
class MemberDigest:
    name: str
    size: int = 0
    crc: int = 0
    digests: dict[str, str] = field(default_factory=dict)   # algorithm -> hex
    error: str | None = None                                  # could not be read whole


@dataclass
class ScanResult:
    sha256: str | None
    members: dict[str, MemberDigest]


def _hashers(algorithms: Iterable[str]) -> dict[str, "hashlib._Hash"]:
    out = {}
    for algorithm in algorithms:
        try:
            hasher = hashlib.new(algorithm)
        except ValueError:
            continue
        if hasher.digest_size:      # shake_*: no digest without a length, nothing to compare
            out[algorithm] = hasher
    return out or {"sha256": hashlib.sha256()}


def scan_canonical(
    fh: BinaryIO, container: Container, file_size: int,
    sinks: dict[str, Sink], threaded: set[str],
    progress: Callable[[int, int], None] | None = None,
) -> ScanResult:
    """Read a canonical container once; members named in `threaded` have their sinks run
    on the worker thread (the WARC files), the others inline."""
    whole = hashlib.sha256()
    hashing, checking = Worker("verify-hash"), Worker("verify-records")
    results: dict[str, MemberDigest] = {}
    position = 0
    fh.seek(0)

    def read_through(end: int, member: MemberDigest | None, hasher, sink: Sink | None, worker) -> None:
        nonlocal position
        crc = 0
        while position < end:
            chunk = fh.read(min(CHUNK, end - position))
            if not chunk:
                raise ValueError(f"the file ends at byte {position}, inside the zip structure")
            position += len(chunk)
            hashing.submit(whole.update, chunk)
            if member is not None:
                hasher.update(chunk)
                crc = crc32(chunk, crc)
                member.size += len(chunk)
                if sink is not None:
                    if worker is not None:
                        worker.submit(sink.feed, chunk)
                    else:
                        sink.feed(chunk)
            if progress:
                progress(position, file_size)
        if member is not None:
            member.crc = crc

    try:
        for m in container.members:
            read_through(m.data_offset, None, None, None, None)      # local header
            digest = MemberDigest(m.name)
            hasher = hashlib.sha256()
            sink = sinks.get(m.name)
            worker = checking if m.name in threaded else None
            read_through(m.data_offset + m.size, digest, hasher, sink, worker)
            digest.digests["sha256"] = hasher.hexdigest()
            if digest.crc != m.crc:
                digest.error = f"{m.name} does not match its zip CRC-32"
            if sink is not None:
                (worker.submit(sink.finish) if worker else sink.finish())
            results[m.name] = digest
        read_through(file_size, None, None, None, None)               # directory, end
    finally:
        hashing.close()
        checking.close()
    return ScanResult(whole.hexdigest(), results)


def scan_lenient(
    fh: BinaryIO, container: Container, sinks: dict[str, Sink],
    algorithms: dict[str, list[str]], limit: int,
) -> ScanResult:
    """Read a foreign container member by member (zipfile decompresses), hashing each
    with the algorithms its datapackage entry names; the file hash is a second read."""
    results: dict[str, MemberDigest] = {}
    for m in container.members:
        if m.name in results:
            continue
        digest = MemberDigest(m.name)
        hashers = _hashers(algorithms.get(m.name, ["sha256"]))
        sink = sinks.get(m.name)
        meter = Meter()
        if sink is not None:
            sink.metered(meter)
        try:
            for chunk in iter_member(fh, container, m, limit, meter):
                digest.size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                if sink is not None:
                    sink.feed(chunk)
        except Exception as exc:  # noqa: BLE001 - zipfile raises many kinds on damaged input
            digest.error = f"{m.name} cannot be read: {exc}"
        if sink is not None:
            sink.finish()
        digest.digests = {a: h.hexdigest() for a, h in hashers.items()}
        results[m.name] = digest
    return ScanResult(None, results)


def file_sha256(fh: BinaryIO) -> str:
    fh.seek(0)
    return stream_sha256(fh)[0]
