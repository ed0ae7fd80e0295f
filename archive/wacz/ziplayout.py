"""The byte layout of the WACZ containers we write: STORED entries with fixed header
values, written front to back with no data descriptors.

One definition serves the writer (seal) and the strict checker (verify), so "canonical"
means exactly what the writer produces and any byte that differs is noticed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LOCAL = struct.Struct("<IHHHHHIIIHH")            # 30 bytes
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")    # 46 bytes
END = struct.Struct("<IHHHHIIH")                 # 22 bytes
END64 = struct.Struct("<IQHHIIQQQQ")             # 56 bytes
LOCATOR64 = struct.Struct("<IIQI")               # 20 bytes

LOCAL_SIG, CENTRAL_SIG, END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
END64_SIG, LOCATOR64_SIG = 0x06064B50, 0x07064B50

MAX32, MAX16 = 0xFFFFFFFF, 0xFFFF
MADE_BY = (3 << 8) | 45          # Unix, spec 4.5
NEEDED, NEEDED64 = 20, 45
FLAGS = 0                        # no data descriptor, ASCII names
METHOD_STORED = 0
DOS_TIME, DOS_DATE = 0, (1 << 5) | 1    # 1980-01-01 00:00, so a capture's bytes do not
                                        # depend on the wall clock of the sealer
EXTERNAL_ATTR = 0o100444 << 16   # regular file, read-only
ZIP64_EXTRA_ID = 0x0001


@dataclass(frozen=True)
class Entry:
    name: str
    offset: int       # of the local header
    size: int
    crc: int
    # Zip64 fields are required past 4 GiB; the writer may also choose them in advance for
    # a member whose final size it does not know yet (a WARC still being written).
    zip64: bool = False

    def __post_init__(self) -> None:
        if not self.zip64 and (self.size >= MAX32 or self.offset >= MAX32):
            object.__setattr__(self, "zip64", True)

    @property
    def data_offset(self) -> int:
        return self.offset + len(local_header(self))

    @property
    def end(self) -> int:
        return self.data_offset + self.size


def local_header(entry: Entry) -> bytes:
    name = entry.name.encode("ascii")
    if entry.zip64:
        extra = struct.pack("<HHQQ", ZIP64_EXTRA_ID, 16, entry.size, entry.size)
        size32 = MAX32
    else:
        extra, size32 = b"", entry.size
    return LOCAL.pack(
        LOCAL_SIG, NEEDED64 if entry.zip64 else NEEDED, FLAGS, METHOD_STORED,
        DOS_TIME, DOS_DATE, entry.crc, size32, size32, len(name), len(extra),
    ) + name + extra


def central_header(entry: Entry) -> bytes:
    name = entry.name.encode("ascii")
    if entry.zip64:
        extra = struct.pack("<HHQQQ", ZIP64_EXTRA_ID, 24, entry.size, entry.size, entry.offset)
        size32 = offset32 = MAX32
    else:
        extra, size32, offset32 = b"", entry.size, entry.offset
    return CENTRAL.pack(
        CENTRAL_SIG, MADE_BY, NEEDED64 if entry.zip64 else NEEDED, FLAGS, METHOD_STORED,
        DOS_TIME, DOS_DATE, entry.crc, size32, size32, len(name), len(extra), 0, 0, 0,
        EXTERNAL_ATTR, offset32,
    ) + name + extra


def end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """End of central directory (with the zip64 end and locator when they are needed)."""
    out = b""
    if count >= MAX16 or cd_offset >= MAX32 or cd_size >= MAX32:
        end64_offset = cd_offset + cd_size
        out += END64.pack(
            END64_SIG, END64.size - 12, MADE_BY, NEEDED64, 0, 0, count, count, cd_size, cd_offset
        )
        out += LOCATOR64.pack(LOCATOR64_SIG, 0, end64_offset, 1)
    out += END.pack(
        END_SIG, 0, 0, min(count, MAX16), min(count, MAX16),
        min(cd_size, MAX32), min(cd_offset, MAX32), 0,
    )
    return out


def safe_member_name(name: str) -> bool:
    """A relative path with no traversal, no absolute or drive prefix, printable ASCII."""
    if not name or not name.isascii() or not name.isprintable():
        return False
    if name.startswith("/") or "\\" in name or ":" in name:
        return False
    parts = name.split("/")
    return all(part not in ("", ".", "..") for part in parts)
