"""WARC files written as plain files in a folder, for a worker of a shared crawl: the same
sink protocol as the WACZ container (begin, end, flush), so the one WarcWriter serves both.
A file is `<name>.open` while written and renamed, fsynced, when finished."""

from __future__ import annotations

import os
from pathlib import Path

from archive.files import fsync_dir
from archive.wacz.zipwriter import MemberInfo, MemberWriter
from archive.wacz.ziplayout import Entry


class FileSink:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.current: MemberWriter | None = None
        self._fh = None
        self._path: Path | None = None

    def begin(self, name: str, zip64: bool = False) -> MemberWriter:
        """Start the file `name` (an `archive/...` member name: its last part is used)."""
        if self.current is not None:
            raise RuntimeError("a file is already open")
        self._path = self.directory / name.rsplit("/", 1)[-1]
        self._fh = open(self._path.with_name(self._path.name + ".open"), "xb")
        self.current = MemberWriter(self, name, 0, zip64)
        return self.current

    def end(self, durable: bool = True) -> MemberInfo:
        member, self.current = self.current, None
        self._fh.flush()
        if durable:
            os.fsync(self._fh.fileno())
        self._fh.close()
        os.rename(self._fh.name, self._path)
        fsync_dir(self.directory)
        return MemberInfo(Entry(member.name, 0, member.size, member.crc, member.zip64),
                          member.sha.hexdigest())

    def path_of(self, name: str) -> Path:
        return self.directory / name.rsplit("/", 1)[-1]

    def flush(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
