"""Reading a WACZ's zip container without trusting it.

A WACZ we wrote must be canonical (archive.wacz.ziplayout): every byte of every header is
then predictable, so a flipped byte anywhere in the container is caught, not only in
the content. Files from other tools are read leniently through zipfile, and the report
says that the container itself was not checked byte for byte; such a file is refused
where ReplayWeb.page's zip reader (wabac.js, emulated by wabac_entries) would find other
bytes than zipfile (which py-wacz and pywb use) finds.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from archive.errors import ArchiveError
from archive.hashing import CHUNK
from archive.wacz.bounds import TEXT_FLOOR, TEXT_PER_BYTE, Meter, member_refusal
from archive.wacz.ziplayout import (
    CENTRAL, CENTRAL_SIG, END, END64, END64_SIG, END_SIG, LOCAL, LOCAL_SIG, LOCATOR64,
    LOCATOR64_SIG, MAX16, MAX32, ZIP64_EXTRA_ID, Entry, central_header, end_records,
    local_header, safe_member_name,
)

MAX_ENTRIES = 100_000
MEMBER_LIMIT = 1 << 40          # bytes we are willing to inflate from one foreign member
STRUCTURE_LIMIT = 64 << 20      # one read by zipfile: it reads a central directory whole


class ContainerError(ArchiveError):
    """The file cannot be read as a zip at all."""


@dataclass
class Member:
    name: str
    size: int                   # uncompressed
    crc: int
    data_offset: int | None     # where STORED bytes start; None when compressed
    info: zipfile.ZipInfo | None = None
    deflated_at: int | None = None   # where DEFLATED bytes start (inflated here, not by zipfile)


@dataclass
class Container:
    members: list[Member]
    canonical: bool
    problems: list[str] = field(default_factory=list)   # why it is not canonical
    zipfile: zipfile.ZipFile | None = None              # for compressed members
    disagreement: str | None = None     # where ReplayWeb.page would read other bytes than zipfile

    def get(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)


def _read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    if offset < 0 or size < 0:
        raise ValueError(f"a structure points outside the file (byte {offset})")
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise ValueError(f"file ends inside a structure at byte {offset}")
    return data


def read_canonical(fh: BinaryIO, file_size: int) -> list[Entry]:
    """Parse a container that must match our layout exactly; raises ValueError naming
    the first byte range that does not."""
    if file_size < END.size:
        raise ValueError("too short to be a zip file")
    end = END.unpack(_read_at(fh, file_size - END.size, END.size))
    if end[0] != END_SIG:
        raise ValueError("the last 22 bytes are not a zip end record (trailing data or a comment)")
    count, cd_size, cd_offset = end[4], end[5], end[6]
    tail = END.size
    if count == MAX16 or cd_size == MAX32 or cd_offset == MAX32:
        locator = LOCATOR64.unpack(
            _read_at(fh, file_size - END.size - LOCATOR64.size, LOCATOR64.size)
        )
        if locator[0] != LOCATOR64_SIG:
            raise ValueError("zip64 locator missing")
        end64 = END64.unpack(_read_at(fh, locator[2], END64.size))
        if end64[0] != END64_SIG:
            raise ValueError("zip64 end record missing")
        count, cd_size, cd_offset = end64[7], end64[8], end64[9]
        tail += LOCATOR64.size + END64.size
    if count > MAX_ENTRIES:
        raise ValueError(f"{count} entries declared; refusing more than {MAX_ENTRIES}")
    if cd_offset + cd_size + tail != file_size:
        raise ValueError("central directory does not end where the end records begin")
    if cd_size > STRUCTURE_LIMIT:
        raise ValueError(f"central directory of {cd_size} bytes declared; refusing more than {STRUCTURE_LIMIT}")
    directory = _read_at(fh, cd_offset, cd_size)
    entries, pos, expected_offset, names = [], 0, 0, set()
    for index in range(count):
        if pos + CENTRAL.size > len(directory):
            raise ValueError(f"central directory entry {index} is cut short")
        fields = CENTRAL.unpack_from(directory, pos)
        if fields[0] != CENTRAL_SIG:
            raise ValueError(f"central directory entry {index} has a bad signature")
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        raw_name = directory[pos + CENTRAL.size: pos + CENTRAL.size + name_len]
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"entry {index} has a non-ASCII name") from None
        # Our writer never repeats a name or writes an unsafe one. A repeated name would be
        # two members to one check (the last is hashed, the first read by others).
        if not safe_member_name(name) or name in names:
            raise ValueError(f"entry {index} ({name!r}) is repeated or has a name our writer never writes")
        names.add(name)
        size, offset = fields[9], fields[16]
        extra = directory[pos + CENTRAL.size + name_len: pos + CENTRAL.size + name_len + extra_len]
        zip64 = len(extra) == 28 and struct.unpack_from("<HH", extra) == (ZIP64_EXTRA_ID, 24)
        if zip64:
            size, _, offset = struct.unpack_from("<QQQ", extra, 4)
        entry = Entry(name, offset, size, fields[7], zip64)
        expected = central_header(entry)
        actual = directory[pos: pos + CENTRAL.size + name_len + extra_len + comment_len]
        if actual != expected:
            raise ValueError(f"central directory entry for {name} differs from the canonical form")
        if offset != expected_offset:
            raise ValueError(f"{name} does not start where the previous entry ends")
        if _read_at(fh, offset, len(local_header(entry))) != local_header(entry):
            raise ValueError(f"local header of {name} differs from its central directory entry")
        entries.append(entry)
        expected_offset = entry.end
        pos += len(actual)
    if pos != len(directory) or expected_offset != cd_offset:
        raise ValueError("bytes between the last entry and the central directory")
    if _read_at(fh, cd_offset + cd_size, tail) != end_records(count, cd_offset, cd_size):
        raise ValueError("end records differ from the canonical form")
    return entries


class _BoundedReads:
    """A file to hand zipfile, which reads a central directory whole at the size the end
    record claims (up to the whole file): a read of more than STRUCTURE_LIMIT is refused."""

    def __init__(self, fh: BinaryIO, file_size: int) -> None:
        self._fh, self._size = fh, file_size

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._size - self._fh.tell())
        if size > STRUCTURE_LIMIT:
            raise ValueError(f"a zip structure claims {size} bytes; refusing to read more than "
                             f"{STRUCTURE_LIMIT} at once")
        return self._fh.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def seekable(self) -> bool:
        return True


def open_zip(fh: BinaryIO, file_size: int | None = None) -> zipfile.ZipFile:
    """zipfile over `fh`, its reads bounded (ValueError for a structure claiming more)."""
    if file_size is None:
        file_size = fh.seek(0, 2)
    fh.seek(0)
    return zipfile.ZipFile(_BoundedReads(fh, file_size))


def read_small(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member that should be small (a JSON file), ValueError when it holds more than `limit`."""
    with zf.open(name) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} is larger than {limit} bytes")
    return data



def member_lines(zf: zipfile.ZipFile, name: str, line_limit: int, skip_long: bool = False) -> Iterator[bytes]:
    """The lines of a member (gunzipped when its name ends in .gz), streamed in flat memory
    and bounded time: a member may be large, or hostile (a line of gigabytes, a bomb).
    ValueError past what text inflates to from its stored size (archive.wacz.bounds),
    or for a line longer than `line_limit` unless `skip_long` (then it is left out)."""
    limit = TEXT_FLOOR + TEXT_PER_BYTE * zf.getinfo(name).compress_size
    read = 0
    with zf.open(name) as member, (gzip.GzipFile(fileobj=member) if name.endswith(".gz")
                                   else nullcontext(member)) as stream:
        skipping = False
        while line := stream.readline(line_limit):
            read += len(line)
            if read > limit:
                raise ValueError(f"{name} inflates to more than {limit} bytes (a decompression bomb?)")
            whole = line.endswith(b"\n") or len(line) < line_limit
            if not whole and not skip_long:
                raise ValueError(f"{name} has a line longer than {line_limit} bytes")
            if whole and not skipping:
                yield line
            skipping = not line.endswith(b"\n")


def read_container(fh: BinaryIO, file_size: int) -> Container:
    """Canonical when possible, otherwise lenient through zipfile (ContainerError if
    it is not a zip at all)."""
    try:
        entries = read_canonical(fh, file_size)
        return Container([Member(e.name, e.size, e.crc, e.data_offset) for e in entries], True)
    except ValueError as exc:
        reason = str(exc)
    try:
        zf = open_zip(fh, file_size)
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        raise ContainerError(f"not a readable zip file ({exc})") from None
    if len(infos) > MAX_ENTRIES:
        raise ContainerError(f"{len(infos)} entries; refusing more than {MAX_ENTRIES}")
    members, starts, folders = [], {}, 0
    for info in infos:
        if _empty_folder(info):
            folders += 1         # `zip -r` adds one per folder; every zip reader passes them over
            continue
        try:
            fields = LOCAL.unpack(_read_at(fh, info.header_offset, LOCAL.size))
        except ValueError:
            fields = None
        if fields and fields[0] == LOCAL_SIG:
            starts[info.orig_filename] = info.header_offset + LOCAL.size + fields[9] + fields[10]
        plain = not info.flag_bits & 0x1          # not encrypted
        start = starts.get(info.orig_filename) if plain else None
        stored = info.compress_type == zipfile.ZIP_STORED
        members.append(Member(info.filename, info.file_size, info.CRC, start if stored else None, info,
                              start if info.compress_type == zipfile.ZIP_DEFLATED else None))
    notes = [reason] + ([f"{folders} empty folder entr{'y' if folders == 1 else 'ies'} (as `zip -r` "
                         "adds) passed over"] if folders else [])
    container = Container(members, False, notes, zf)
    container.disagreement = _disagreement(infos, starts, wabac_entries(fh, file_size))
    fh.seek(0)
    return container


def _empty_folder(info: zipfile.ZipInfo) -> bool:
    """A folder entry that holds nothing, under a safe path."""
    name = info.orig_filename
    return (name.endswith("/") and info.file_size == 0 and info.compress_size == 0
            and safe_member_name(name[:-1]))


def _disagreement(infos: list[zipfile.ZipInfo], starts: dict[str, int],
                  wabac: dict[str, tuple] | None) -> str | None:
    """Where ReplayWeb.page (wabac_entries) would read other bytes than zipfile reads, as
    py-wacz, pywb and this verifier do: another central directory (data prepended, a
    second end record), a local header longer than its central entry says, a stored
    entry with two sizes, a compression method it does not know."""
    seen = {info.orig_filename: info for info in infos if not info.orig_filename.endswith("/")}
    for name, info in seen.items():
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return (f"zip entry {name} is compressed with method {info.compress_type}, which "
                    "ReplayWeb.page reads as stored bytes")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            return (f"zip entry {name} is stored with two sizes ({info.file_size} and {info.compress_size} "
                    "bytes): zip readers differ on where it ends")
    if wabac is None:
        return None             # it finds no zip: it shows nothing
    if set(seen) != set(wabac):
        name = sorted(set(seen) ^ set(wabac))[0]
        return f"zip readers disagree on its entries: only {'py-wacz' if name in seen else 'ReplayWeb.page'} sees {name!r}"
    for name, info in seen.items():
        offset, size, start, deflated = wabac[name]
        if (offset, size, deflated) != (info.header_offset, info.compress_size,
                                        info.compress_type == zipfile.ZIP_DEFLATED) or \
                None not in (start, starts.get(name)) and start != starts[name]:
            return (f"zip readers disagree on where {name} is: py-wacz reads it at byte "
                    f"{starts.get(name, info.header_offset)}, ReplayWeb.page at byte {start or offset}")
    return None


def hostile(container: Container, file_size: int) -> str | None:
    """Why a foreign container is refused outright (zip slip, duplicates, readers that
    would read different bytes, bombs)."""
    names = [m.name for m in container.members]
    for name in names:
        if not safe_member_name(name):
            return (f"zip entry {name!r} has a name refused here: not a plain relative path of printable "
                    "ASCII (a path leaving the folder, a drive, a backslash, or letters that only look alike)")
    seen = set()
    for name in names:
        if name in seen:
            return f"zip entry {name} appears twice"
        seen.add(name)
    if container.disagreement:
        return container.disagreement
    for m in container.members:
        info = m.info
        if info is None:
            continue
        if m.data_offset is not None and m.data_offset + m.size > file_size:
            return f"zip entry {m.name} claims {m.size} bytes, more than the file holds"
        why = member_refusal(m.name, info.file_size, info.compress_size,
                             info.compress_type != zipfile.ZIP_STORED)
        if why:
            return why
        if info.file_size > MEMBER_LIMIT:
            return f"zip entry {m.name} claims {info.file_size} bytes"
    return None


def open_container(fh: BinaryIO, file_size: int, name: str) -> Container:
    """read_container for a command that reads what a WACZ holds (extract, diff): a file
    that is no zip, or one that verify refuses as hostile (a repeated name, readers that
    would read other bytes, a bomb), is an ArchiveError: nothing is read from it."""
    try:
        container = read_container(fh, file_size)
    except ContainerError as exc:
        raise ArchiveError(f"{name}: {exc}") from None
    why = None if container.canonical else hostile(container, file_size)
    if why:
        raise ArchiveError(f"refusing to read {name}: {why}; run `archive verify`")
    return container


def iter_member(fh: BinaryIO, container: Container, member: Member,
                limit: int | None = None, meter: Meter | None = None) -> Iterator[bytes]:
    """The member's uncompressed bytes in chunks, its CRC-32 checked at the end.

    `limit` guards against zip bombs: more bytes than that raise ValueError. `meter`
    counts the bytes of the file read for them (fewer than those yielded when deflated).
    """
    crc, total = 0, 0
    meter = meter or Meter()
    if member.data_offset is not None:
        fh.seek(member.data_offset)
        remaining = member.size
        while remaining:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                raise ValueError(f"{member.name} is cut short")
            remaining -= len(chunk)
            meter.read += len(chunk)
            crc = zlib.crc32(chunk, crc)
            yield chunk
    else:
        chunks = _inflate(fh, member.deflated_at, member.info.compress_size, meter) \
            if member.deflated_at is not None else _unzipped(container, member, meter)
        for chunk in chunks:
            total += len(chunk)
            if limit is not None and total > limit:
                raise ValueError(f"{member.name} expands beyond {limit} bytes")
            if member.deflated_at is not None and total > member.size:
                # zipfile stops at the size the entry gives; wabac.js shows the rest
                raise ValueError(f"{member.name} inflates to more than the {member.size} bytes its zip "
                                 "entry gives (replay tools differ on what it holds)")
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if total != member.size:
            raise ValueError(f"{member.name} inflates to {total} bytes, its zip entry gives {member.size}")
    if crc != member.crc:
        raise ValueError(f"{member.name} does not match its zip CRC-32")


def _unzipped(container: Container, member: Member, meter: Meter) -> Iterator[bytes]:
    with container.zipfile.open(member.info) as stream:
        while chunk := stream.read(CHUNK):
            # stored: the bytes read are those yielded (other methods are refused)
            meter.read += len(chunk)
            yield chunk


def _inflate(fh: BinaryIO, start: int, size: int, meter: Meter) -> Iterator[bytes]:
    """The whole deflate stream of `size` bytes at `start`, as a reader that does not know
    the entry's uncompressed size (wabac.js) inflates it."""
    inflater, position, left, pending = zlib.decompressobj(-zlib.MAX_WBITS), start, size, b""
    while not inflater.eof:
        if not pending:
            fh.seek(position)
            pending = fh.read(min(CHUNK, left))
            if not pending:
                raise ValueError("its deflate data ends early")
            position, left = position + len(pending), left - len(pending)
        before = len(pending)
        chunk = inflater.decompress(pending, CHUNK)
        pending = inflater.unconsumed_tail
        meter.read += before - len(pending)
        if chunk:
            yield chunk


def _zip64_values(extra: bytes, unpacked: int, size: int, offset: int) -> tuple[int, int]:
    """(compressed size, local header offset), from the zip64 extra field for each 32-bit
    field that is full, in the order the zip specification gives them."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        values = list(struct.unpack_from(f"<{min(length, len(extra) - at - 4) // 8}Q", extra, at + 4))
        at += 4 + length
        if kind == ZIP64_EXTRA_ID:
            if unpacked == MAX32 and values:
                values.pop(0)
            if size == MAX32 and values:
                size = values.pop(0)
            if offset == MAX32 and values:
                offset = values.pop(0)
    return size, offset


def _wabac_directory(fh: BinaryIO, start: int, end: int, count: int) -> dict[str, tuple]:
    """name -> (local header offset, compressed size, data offset or None when it is
    read from the local header, deflated) of the central directory entries from `start` on."""
    data = _read_at(fh, start, min(end - start, 16 << 20))
    entries: dict[str, tuple] = {}
    pos = seen = 0
    while seen < min(count, MAX_ENTRIES) and pos + CENTRAL.size <= len(data):
        fields = CENTRAL.unpack_from(data, pos)
        if fields[0] != CENTRAL_SIG:
            break
        seen += 1
        name_len, extra_len = fields[10], fields[11]
        name = data[pos + CENTRAL.size: pos + CENTRAL.size + name_len].decode(
            "utf-8" if fields[3] & 0x800 else "cp1252", "replace")
        size, unpacked, offset = fields[8], fields[9], fields[16]
        if MAX32 in (size, unpacked, offset):
            extra = data[pos + CENTRAL.size + name_len: pos + CENTRAL.size + name_len + extra_len]
            size, offset = _zip64_values(extra, unpacked, size, offset)
        if not name.endswith("/"):
            entries[name] = (offset, size, None if extra_len else offset + LOCAL.size + name_len,
                             fields[4] == zipfile.ZIP_DEFLATED)
        pos += CENTRAL.size + name_len + extra_len + fields[12]
    return entries


def wabac_entries(fh: BinaryIO, file_size: int) -> dict[str, tuple] | None:
    """The members as ReplayWeb.page's zip reader (wabac.js ZipRangeReader) finds them
    (see _wabac_directory), None when it finds none: the end record nearest the end (at
    most 64 KiB back), zip64 only when its 32-bit fields say so, the central directory
    where the record puts it, prepended data not allowed for, and the data of an entry
    without extra fields taken to follow a local header just like it."""
    try:
        tail_start = max(0, file_size - (MAX16 + 23))
        tail = _read_at(fh, tail_start, file_size - tail_start)
        at = tail.rfind(END_SIG.to_bytes(4, "little"), 0, max(0, len(tail) - END.size + 4))
        if at < 0:
            return None
        end = END.unpack_from(tail, at)
        count, offset = end[4], end[6]
        if offset == MAX32 or count == MAX16:
            locator = LOCATOR64.unpack(_read_at(fh, tail_start + at - LOCATOR64.size, LOCATOR64.size))
            end64 = END64.unpack(_read_at(fh, locator[2], END64.size))
            if locator[0] != LOCATOR64_SIG or end64[0] != END64_SIG:
                return None
            count, offset = end64[7], end64[9]
        return _wabac_directory(fh, offset, tail_start + at, count) or None
    except (ValueError, struct.error, OverflowError):
        return None


def names_zip_readers_see(fh: BinaryIO, file_size: int) -> set[str]:
    """Every member name that Python's zipfile (py-wacz, pywb) or wabac.js (ReplayWeb.page)
    would find in the file, whatever else it is (a WARC can also be a zip)."""
    names: set[str] = set()
    try:
        names.update(open_zip(fh, file_size).namelist())
    except Exception:  # noqa: BLE001 - not a zip to zipfile, for any of many reasons
        pass
    names.update(wabac_entries(fh, file_size) or ())
    return names
