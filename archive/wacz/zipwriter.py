"""The WACZ container being assembled: a canonical STORED zip (archive.wacz.ziplayout)
written front to back into `<name>.open`.

A capture writes its WARC data straight into the container, member by member, so
sealing never copies the WARC bytes again: it appends the index, page list and
manifests, the central directory, then reads the file once to hash it (and to check
every member against the CRC-32 computed when it was written).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from zlib_ng.zlib_ng import crc32

from archive.errors import ArchiveError
from archive.files import fsync_dir, note_sha256
from archive.hashing import CHUNK, HashThread
from archive.wacz.ziplayout import (
    LOCAL, LOCAL_SIG, MAX32, Entry, central_header, end_records, local_header, safe_member_name,
)

OPEN_SUFFIX = ".open"


class ContainerChanged(ArchiveError):
    """Bytes on disk differ from what was written: the container must not be sealed."""


@dataclass(frozen=True)
class MemberInfo:
    """A finished member: its entry and the SHA-256 of its bytes as they were written."""

    entry: Entry
    sha256: str


SPREAD = 1 << 20       # a write this large is hashed on a thread (see MemberWriter.write)


class MemberWriter:
    """Appends one member's bytes, keeping its size, CRC-32 and SHA-256 (zlib-ng's CRC-32:
    zlib's checksum, several times faster, where a video's bytes pass more than once)."""

    def __init__(self, container: "ContainerWriter", name: str, offset: int, zip64: bool) -> None:
        self.container = container
        self.name = name
        self.offset = offset
        self.zip64 = zip64
        self.size = 0
        self.crc = 0
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        if data:
            self.container._fh.write(data)
            self.size += len(data)
            self.crc = crc32(data, self.crc)
            if len(data) >= SPREAD:
                # a large record's pieces (a video's, 1 MiB at a time) are hashed on a
                # thread of their own, beside the copying; small ones here, once the
                # thread's are done (a thread per small write would cost more than it saves)
                if not isinstance(self.sha, HashThread):
                    self.sha = HashThread(self.sha)
                self.sha.update(bytes(data))        # bytes: never changed once handed over
            else:
                self.inline_sha().update(data)

    def inline_sha(self) -> "hashlib._Hash":
        """The SHA-256 back in the caller's thread, every update handed to a thread done."""
        if isinstance(self.sha, HashThread):
            self.sha = self.sha.hasher()
        return self.sha

    def tell(self) -> int:
        return self.size


class ContainerWriter:
    def __init__(self, path: Path) -> None:
        """Start a new container at `path` (written as `path.open`)."""
        self.path = Path(path)
        self.open_path = self.path.with_name(self.path.name + OPEN_SUFFIX)
        self._fh = open(self.open_path, "xb")
        self.members: list[MemberInfo] = []
        self.current: MemberWriter | None = None

    @classmethod
    def reopen(cls, path: Path, journaled: list[tuple]) -> tuple["ContainerWriter", int | None]:
        """Take up a container left unfinished by a crash (`path.open`), cut back to the
        latest of the `journaled` positions it still holds.

        `journaled`: (member name, data size, CRC-32 of that data) after each record group,
        oldest first. A kill leaves at least the last one on disk. A power loss can leave
        less: the file then ends before some journaled position, and the container is
        cut back to the last one it holds (the caller drops the groups after it). Bytes
        that are there but differ from what was journaled (a disk error, or tampering)
        are never cut away: ContainerChanged. The members before the chosen position
        must be finished and intact (their CRC is checked and their SHA-256 recomputed,
        reading them once); its member is cut there and left open; everything after it
        (a half-written record, a later member, a half-written seal) is cut off.

        Returns the container and the index of the position kept (None: none was, and
        the container is emptied).
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self.open_path = self.path.with_name(self.path.name + OPEN_SUFFIX)
        self._fh = open(self.open_path, "r+b")
        self.members, self.current = [], None
        held, lost = self._scan(journaled)
        if (held[0] if held else None) != (len(journaled) - 1 if journaled else None) and not lost:
            self._fh.close()
            raise ContainerChanged(
                "the captured data changed on disk after it was journaled (CRC differs); "
                "not resuming")
        if held is None:
            self._fh.truncate(0)
            return self, None
        index, self.members, self.current = held
        current = self.current
        end = Entry(current.name, current.offset, 0, 0, current.zip64).data_offset + current.size
        self._fh.truncate(end)
        self._fh.seek(end)
        return self, index

    def _scan(self, journaled: list[tuple]) -> tuple[tuple | None, bool]:
        """Read the members front to back, checking the journaled positions in them.
        Returns ((index, members before, member as at that position) of the latest
        position held, or None; whether the reading stopped because the file ended)."""
        marks: dict[str, list[tuple[int, int, int]]] = {}
        for index, (name, size, crc) in enumerate(journaled):
            marks.setdefault(name, []).append((index, size, crc))
        file_size = os.fstat(self._fh.fileno()).st_size
        held, offset = None, 0
        while (found := self._read_local_header(offset)) is not None:
            entry, crc, zip64 = found
            member = MemberWriter(self, entry.name, offset, zip64)
            for index, size, mark_crc in sorted(marks.get(entry.name, ()), key=lambda m: m[1]):
                if not self._hash_to(entry.data_offset, size, member):
                    return held, True
                if member.crc != mark_crc:
                    return held, False
                held = (index, list(self.members), _copy_member(member))
            if entry.size == 0:          # the member being written: its header is completed last
                return held, False
            if not self._hash_to(entry.data_offset, entry.size, member):
                return held, True
            if member.size != entry.size or member.crc != crc:
                return held, False
            self.members.append(MemberInfo(Entry(entry.name, offset, entry.size, crc, zip64),
                                           member.sha.hexdigest()))
            offset = entry.end
        # no member header here: lost when the file ends before one could be whole
        next_name = next((m[0] for m in journaled[held[0] + 1 if held else 0:]), "")
        longest = len(local_header(Entry(next_name, offset, 0, 0, True)))
        return held, file_size - offset < longest

    def _read_local_header(self, offset: int) -> tuple[Entry, int, bool] | None:
        """(entry, CRC, zip64) of the member whose local header is at `offset`, when that
        header is exactly one our writer makes; None otherwise."""
        self._fh.seek(offset)
        head = self._fh.read(LOCAL.size)
        if len(head) < LOCAL.size or LOCAL.unpack(head)[0] != LOCAL_SIG:
            return None
        fields = LOCAL.unpack(head)
        crc, size32, name_len, extra_len = fields[6], fields[7], fields[9], fields[10]
        try:
            name = self._fh.read(name_len).decode("ascii")
        except UnicodeDecodeError:
            return None
        extra = self._fh.read(extra_len)
        zip64 = extra_len > 0
        size = int.from_bytes(extra[4:12], "little") if zip64 else size32
        entry = Entry(name, offset, size, crc, zip64)
        if head + name.encode("ascii") + extra != local_header(entry):
            return None
        return entry, crc, zip64

    def _hash_to(self, data_offset: int, size: int, member: MemberWriter) -> bool:
        """Feed a member's data into its size, CRC and hash until `size` bytes are in;
        False when the file ends first."""
        self._fh.seek(data_offset + member.size)
        while member.size < size:
            chunk = self._fh.read(min(CHUNK, size - member.size))
            if not chunk:
                return False
            member.size += len(chunk)
            member.crc = crc32(chunk, member.crc)
            member.sha.update(chunk)
        return True

    @property
    def offset(self) -> int:
        return self._fh.tell()

    def begin(self, name: str, zip64: bool = False) -> MemberWriter:
        """Start a member of unknown size; its local header is completed by end()."""
        if self.current is not None:
            raise RuntimeError("a member is already open")
        if not safe_member_name(name) or any(m.entry.name == name for m in self.members):
            raise ValueError(f"bad or duplicate zip member name: {name!r}")
        offset = self.offset
        zip64 = zip64 or offset >= MAX32
        self._fh.write(local_header(Entry(name, offset, 0, 0, zip64)))
        self.current = MemberWriter(self, name, offset, zip64)
        return self.current

    def end(self, durable: bool = True) -> MemberInfo:
        """Finish the open member: the real size and CRC go into its local header
        (`durable`: on disk before anything after it)."""
        member, self.current = self.current, None
        entry = Entry(member.name, member.offset, member.size, member.crc, member.zip64)
        if entry.zip64 != member.zip64:
            raise ValueError(f"{member.name} grew past 4 GiB without zip64 fields")
        self._fh.flush()
        os.pwrite(self._fh.fileno(), local_header(entry), member.offset)
        if durable:
            # A power loss then never leaves a later member's data behind a header still
            # saying "size unknown", which no resume could get past.
            os.fsync(self._fh.fileno())
        info = MemberInfo(entry, member.sha.hexdigest())
        self.members.append(info)
        return info

    def add_bytes(self, name: str, data: bytes) -> MemberInfo:
        member = self.begin(name)
        member.write(data)
        return self.end(durable=False)    # the seal's small members: finish() syncs them all

    def finish(self) -> tuple[str, int]:
        """Write the central directory and end records, fsync, check every member against
        the CRC-32 it had when written, and rename to the final name.

        Returns (SHA-256 hex of the whole file, its size). Reads the file once.
        """
        if self.current is not None:
            raise RuntimeError("a member is still open")
        cd_offset = self.offset
        for info in self.members:
            self._fh.write(central_header(info.entry))
        self._fh.write(end_records(len(self.members), cd_offset, self.offset - cd_offset))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        size = self.offset
        self._fh.close()
        before = os.stat(self.open_path)
        sha = _hash_and_check(self.open_path, self.members)
        os.rename(self.open_path, self.path)
        fsync_dir(self.path.parent)
        after = os.stat(self.path)
        if (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, size, before.st_mtime_ns):
            # unwritten while it was hashed: a store taking this very file needs no second read
            note_sha256(after, sha)
        return sha, size

    def flush(self) -> None:
        """Hand what was written to the OS (a killed process then loses none of it)."""
        self._fh.flush()

    def close(self) -> None:
        """Stop writing, keeping the `.open` file (it may hold captured data)."""
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


def _copy_member(member: MemberWriter) -> MemberWriter:
    copy = MemberWriter(member.container, member.name, member.offset, member.zip64)
    copy.size, copy.crc, copy.sha = member.size, member.crc, member.inline_sha().copy()
    return copy


def _hash_and_check(path: Path, members: list[MemberInfo]) -> str:
    """SHA-256 of the whole file as read back, checking on the way that each member's data
    still has the CRC-32 computed while it was written.

    What this check is for: the SHA-256 of each member in datapackage.json was computed
    over the bytes as they were written, and the file's SHA-256 here over the bytes as
    they are now; between the two, bytes on disk may have changed (a bug of ours writing at
    the wrong offset, another process, a disk error), and a capture whose members no longer
    match their sealed hashes must never be reported as sealed. A CRC-32 recomputed here
    finds such accidents (every burst of up to 32 bits, anything else but for one chance in
    four billion) at a small fraction of the cost of a second SHA-256 of every byte,
    which would add next to nothing against them. It is not meant to stop a forger who
    can write into the work folder (who could as well change the bytes before they were
    written): the signature, the timestamps and `archive verify` stand against forgery.
    """
    # the SHA-256 on a thread of its own, beside the reading and the CRC-32s
    whole = HashThread(hashlib.sha256())
    ranges = sorted(((m.entry.data_offset, m.entry.end, m) for m in members), key=lambda r: r[0])
    crcs = [0] * len(ranges)
    position = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            whole.update(chunk)
            end = position + len(chunk)
            view = memoryview(chunk)
            for i, (lo, hi, _) in enumerate(ranges):
                if lo < end and hi > position:
                    crcs[i] = crc32(view[max(lo, position) - position: min(hi, end) - position], crcs[i])
            position = end
    mismatched = [m.entry.name for (_, _, m), crc in zip(ranges, crcs) if crc != m.entry.crc]
    if mismatched:
        raise ContainerChanged(
            f"{', '.join(mismatched)} changed on disk after being written; not sealing"
        )
    return whole.hexdigest()
