"""Where a WarcWriter writes its files: the sink protocol (begin, write, end, flush).

The WACZ container being sealed (archive.wacz.zipwriter.ContainerWriter) and a worker's
folder of plain files (archive.warc.filesink.FileSink) both satisfy it, so the one
WarcWriter serves both without knowing either."""

from __future__ import annotations

from typing import Protocol

from archive.wacz.ziplayout import Entry


class OpenFile(Protocol):
    """The file being written: bytes go in, its size and CRC-32 so far are known."""

    name: str
    size: int
    crc: int
    zip64: bool

    def write(self, data: bytes) -> None: ...


class FinishedFile(Protocol):
    """A finished file: where it is (name, size, CRC-32) and the SHA-256 of its bytes."""

    @property
    def entry(self) -> Entry: ...

    @property
    def sha256(self) -> str: ...


class Sink(Protocol):
    def begin(self, name: str, zip64: bool = False) -> OpenFile:
        """Start the file `name` (`archive/<file>.warc.gz`); one at a time."""

    def end(self, durable: bool = True) -> FinishedFile:
        """Finish the open file (`durable`: on disk before anything after it)."""

    def flush(self) -> None:
        """Hand what was written to the OS, so that a killed process loses none of it."""
