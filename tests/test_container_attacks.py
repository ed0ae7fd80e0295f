"""Attacks on the zip container of a signed capture: files whose members, as zip readers
(Python's zipfile for py-wacz and pywb, wabac.js for ReplayWeb.page) or `archive extract`
read them, differ from what the verifier hashed and checked. None may verify."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from archive.cli.common import trusted_keys
from archive.verify import segments
from archive.verify.checks import verify_source
from archive.wacz.zipreader import (
    ContainerError, names_zip_readers_see, read_canonical, read_container, wabac_entries,
)
from archive.reader.extract import extract
from archive.diff import read_summary
from archive.errors import ArchiveError
from archive.verify.model import CannotCheck, VerifyOptions
from archive.reader.source import local_source
from archive.warc.writer import block_digests
from archive.wacz.ziplayout import Entry, central_header, end_records, local_header
from tests.verifyhelp import build_wacz, gzip_members, new_signer

URL = "https://example.org/statement"
FORGERY = b"FORGED" + b" " * 16      # as long as "the original statement", and compresses better


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[Path, Path]:
    """A capture of ours (canonical container, signed) and the public key to trust."""
    folder = tmp_path_factory.mktemp("attacks")
    signer, pub = new_signer(folder / "keys")
    wacz = build_wacz(folder / "capture.wacz", [
        {"url": URL, "body": b"<html>the original statement, as published</html>"},
        {"url": "https://example.org/other", "body": b"<html>another page</html>"}], signer)
    return wacz, pub


def _verify(path: Path, pub: Path):
    return verify_source(local_source(str(path)), VerifyOptions(trusted_keys([str(pub)])))


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _canonical(entries: list[tuple[str, bytes]], at: int = 0) -> bytes:
    """Entries laid out exactly as our writer lays them out (archive.wacz.ziplayout), with
    offsets counted from `at` bytes before the zip (to be put after that many bytes)."""
    out, written = bytearray(), []
    for name, data in entries:
        entry = Entry(name, at + len(out), len(data), zlib.crc32(data))
        out += local_header(entry) + data
        written.append(entry)
    directory = at + len(out)
    for entry in written:
        out += central_header(entry)
    return bytes(out + end_records(len(written), directory, at + len(out) - directory))


def _record(block: bytes, uri: str, number: int) -> bytes:
    """An uncompressed WARC resource record with a good block digest."""
    digest, _ = block_digests("resource", uri, block)
    return (b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-%012d>\r\n"
            b"WARC-Target-URI: %s\r\nWARC-Date: 2026-01-01T00:00:00Z\r\nContent-Type: application/zip\r\n"
            b"WARC-Block-Digest: %s\r\nContent-Length: %d\r\n\r\n"
            % (number, uri.encode(), digest.encode(), len(block))) + block + b"\r\n\r\n"


def _gzip_exactly(raw: bytes, length: int) -> bytes:
    """`raw` as one gzip member of exactly `length` bytes (padded with a header comment)."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = deflate.compress(raw) + deflate.flush()
    pad = length - (10 + 1 + len(body) + 8)
    assert pad >= 0
    return (b"\x1f\x8b\x08\x10\0\0\0\0\0\x03" + b"c" * pad + b"\0" + body
            + struct.pack("<II", zlib.crc32(raw), len(raw)))


def _forged_warc(warc: bytes, old: bytes, new: bytes) -> bytes:
    """The WARC with `old` replaced by `new` in a record that keeps its offset and length,
    its digests recomputed: every record of it checks out on its own."""
    out = b""
    for member in gzip_members(warc):
        raw = gzip.decompress(member)
        if old in raw:
            head, _, block = raw.partition(b"\r\n\r\n")
            block = block[:-4].replace(old, new)
            block_digest, payload_digest = block_digests("response", URL, block)
            head = re.sub(rb"WARC-Block-Digest: \S+", b"WARC-Block-Digest: " + block_digest.encode(), head)
            head = re.sub(rb"WARC-Payload-Digest: \S+", b"WARC-Payload-Digest: " + payload_digest.encode(), head)
            member = _gzip_exactly(head + b"\r\n\r\n" + block + b"\r\n\r\n", len(member))
        out += member
    return out


def test_a_member_name_given_twice_is_not_verified(signed, tmp_path, monkeypatch):
    """A forged copy of the WARC under the same name, before the real one: zip readers
    take the last entry of a name (the real, hashed one); `archive extract` took the
    first. With the records checked in worker processes both copies' records were
    merged by offset and the capture VERIFIED while extract wrote the forgery."""
    wacz, pub = signed
    entries = _members(wacz)
    name, warc = entries[0]
    forged = _forged_warc(warc, b"the original statement", FORGERY)
    path = tmp_path / "twice.wacz"
    path.write_bytes(_canonical([(name, forged)] + entries))
    with zipfile.ZipFile(path) as zf:
        assert zf.read(name) == warc          # what replay tools read
    monkeypatch.setattr(segments, "PARALLEL_MIN", 0)
    report = _verify(path, pub)
    assert report.verdict == "NOT VERIFIED"
    assert report.check("container").status == "fail"
    assert "appears twice" in report.check("container").summary
    with pytest.raises(ArchiveError, match="appears twice"):
        extract(local_source(str(path)), URL, io.BytesIO())


@pytest.mark.parametrize("name", ["../evidence/x.json", "archive//x.warc.gz", "./datapackage.json"])
def test_the_canonical_reader_takes_only_names_our_writer_writes(name):
    data = _canonical([(name, b"{}"), ("datapackage.json", b"{}")])
    with pytest.raises(ValueError, match="name our writer never writes"):
        read_canonical(io.BytesIO(data), len(data))


def test_the_signed_capture_itself_verifies(signed):
    wacz, pub = signed
    assert _verify(wacz, pub).verdict == "VERIFIED"
    assert json.loads(dict(_members(wacz))["datapackage.json"])["resources"]


@pytest.mark.parametrize("blind_zipfile", [False, True])
def test_a_warc_that_zip_readers_open_as_a_wacz_is_not_verified(signed, tmp_path, blind_zipfile):
    """A WARC whose record holds a forged WACZ: a valid WARC, and to py-wacz (zipfile) or
    ReplayWeb.page (wabac.js, which takes offsets as they are and looks for the end
    record from 22 bytes before the end) that WACZ. It verified as a bare WARC, exit 0.
    With an end record signature in the last 21 bytes zipfile gives up; wabac.js not."""
    wacz, pub = signed
    entries = _members(wacz)
    name, warc = entries[0]
    entries[0] = (name, _forged_warc(warc, b"the original statement", FORGERY))
    size = len(_canonical(entries))
    at = len(_record(b"x" * size, "urn:x", 1)) - size - 4       # the record's header: digests are of one length
    warc_file = _record(_canonical(entries, at), "urn:x", 1)
    if blind_zipfile:
        warc_file += _record(b"PK\x05\x06", "urn:y", 2)
    path = tmp_path / "capture.wacz"
    path.write_bytes(warc_file)
    try:
        with zipfile.ZipFile(path) as zf:
            assert zf.read(name) == entries[0][1] and not blind_zipfile
    except zipfile.BadZipFile:
        assert blind_zipfile
    # (a bare WARC passes only with --allow-unsigned: given, so that the verdict is the zip's)
    report = verify_source(local_source(str(path)), VerifyOptions(trusted_keys([str(pub)]), allow_unsigned=True))
    assert report.kind == "warc" and report.check("records").status == "pass"
    assert report.verdict == "COULD NOT CHECK" and report.exit_code == 2
    assert "also a zip" in report.check("container").summary


def test_a_warc_holding_a_captured_zip_still_verifies(tmp_path):
    """A bare WARC whose last record is a zip download (not a WACZ) stays a WARC."""
    inner = _canonical([("word/document.xml", b"<w:document/>"), ("[Content_Types].xml", b"<Types/>")])
    path = tmp_path / "download.warc"
    path.write_bytes(_record(inner, "https://example.org/report.docx", 1))
    report = verify_source(local_source(str(path)), VerifyOptions({}, allow_unsigned=True))
    assert report.verdict == "VERIFIED" and report.check("container") is None


def _zip(entries: list[tuple[str, bytes]], at: int = 0, local_extra: dict[str, bytes] | None = None,
         placed: dict[str, int] | None = None, packed: dict[str, tuple[int, bytes]] | None = None) -> bytes:
    """A zip as other tools write it (real dates, STORED), offsets counted from `at` bytes
    before it; `local_extra` gives an entry's local header an extra field its central
    entry lacks; `placed` points an entry's central record at another local header;
    `packed` gives an entry's compression method and compressed bytes."""
    local_extra, placed, packed = local_extra or {}, placed or {}, packed or {}
    out, directory = bytearray(), bytearray()
    for name, data in entries:
        raw, extra, crc = name.encode(), local_extra.get(name, b""), zlib.crc32(data)
        offset = placed.get(name, at + len(out))
        method, body = packed.get(name, (0, data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0x6000, 0x5821, crc, len(body), len(data),
                           len(raw), len(extra)) + raw + extra + body
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0x6000, 0x5821, crc,
                                 len(body), len(data), len(raw), 0, 0, 0, 0, 0, offset) + raw
    return bytes(out + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                                               len(directory), at + len(out), 0))


@pytest.fixture(scope="module")
def foreign(signed, tmp_path_factory) -> tuple[list[tuple[str, bytes]], Path, Path]:
    """The capture as another tool would have packed and signed it (with a key we trust):
    its entries, the WACZ, and the public key."""
    wacz, _ = signed
    folder = tmp_path_factory.mktemp("foreign")
    signer, pub = new_signer(folder)
    entries = dict(_members(wacz))
    datapackage = json.loads(entries["datapackage.json"])
    datapackage["software"] = "another tool 1.0"
    entries["datapackage.json"] = json.dumps(datapackage).encode()
    digest = "sha256:" + hashlib.sha256(entries["datapackage.json"]).hexdigest()
    entries["datapackage-digest.json"] = json.dumps({
        "path": "datapackage.json", "hash": digest,
        "signedData": signer.sign(digest, datapackage["created"])}).encode()
    entries = list(entries.items())
    path = folder / "foreign.wacz"
    path.write_bytes(_zip(entries))
    return entries, path, pub


def test_the_foreign_capture_verifies(foreign):
    _, path, pub = foreign
    report = _verify(path, pub)
    assert report.verdict == "VERIFIED" and report.check("container").status == "warn"


def test_a_second_central_directory_for_replaywebpage_is_refused(foreign, tmp_path):
    """Data put before a zip whose offsets count from its own start: zipfile allows for it
    and reads the real members; wabac.js takes the end record's offsets as they are and
    reads a central directory hidden in that data, pointing the WARC at a forgery."""
    entries, path, pub = foreign
    name, warc = entries[0]
    original = path.read_bytes()
    directory_at = struct.unpack_from("<I", original, len(original) - 6)[0]
    forged_member = _zip([(name, _forged_warc(warc, b"the original statement", FORGERY))])
    forged_local = forged_member[:forged_member.index(b"PK\x01\x02")]
    prefix = len(forged_local) + directory_at + 100
    decoy = _zip(entries, at=prefix, placed={name: 0})
    decoy_directory = decoy[decoy.index(b"PK\x01\x02"):decoy.index(b"PK\x05\x06")]
    data = bytearray(prefix) + original
    data[:len(forged_local)] = forged_local
    assert len(forged_local) <= directory_at
    data[directory_at:directory_at + len(decoy_directory)] = decoy_directory
    attacked = tmp_path / "prefixed.wacz"
    attacked.write_bytes(bytes(data))
    with zipfile.ZipFile(attacked) as zf:
        assert zf.read(name) == warc                              # py-wacz: the real WARC
    with open(attacked, "rb") as fh:
        offset, size, start, _ = wabac_entries(fh, len(data))[name]  # ReplayWeb.page: the forgery
        assert (offset, size) == (0, len(warc)) and FORGERY in gzip.decompress(data[start:start + size])
    _refused(attacked, pub, "disagree")


def test_a_local_header_longer_than_its_central_entry_says_is_refused(foreign, tmp_path):
    """wabac.js takes the data of an entry without extra fields to start right after a
    local header of the same name: a local extra field (which zipfile skips) holding a
    forged WARC is what ReplayWeb.page reads at the offsets the index gives."""
    entries, _, pub = foreign
    name, warc = entries[0]
    forged = _forged_warc(warc, b"the original statement", FORGERY)
    attacked = tmp_path / "extra.wacz"
    attacked.write_bytes(_zip(entries, local_extra={name: forged}))
    with zipfile.ZipFile(attacked) as zf:
        assert zf.read(name) == warc
    _refused(attacked, pub, "disagree")


PAGE = b'{"url": "%s", "ts": "2026-01-01T00:00:00Z", "title": "FORGED"}\n' % URL.encode()


def _deflated(data: bytes) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(data) + deflate.flush()


def test_deflated_data_beyond_the_entry_size_is_not_verified(foreign, tmp_path):
    """zipfile stops inflating at the size the entry gives (the real page list, hashed);
    wabac.js inflates the whole stream, and lists a forged page after it."""
    entries, _, pub = foreign
    pages = dict(entries)["pages/pages.jsonl"]
    attacked = tmp_path / "deflated.wacz"
    attacked.write_bytes(_zip(entries, packed={"pages/pages.jsonl": (8, _deflated(pages + PAGE))}))
    with zipfile.ZipFile(attacked) as zf:
        assert zf.read("pages/pages.jsonl") == pages
    report = _verify(attacked, pub)
    assert report.verdict == "NOT VERIFIED"
    assert "inflates to more than" in json.dumps([c.to_dict() for c in report.checks])
    index = dict(entries)["indexes/index.cdx.gz"]
    damaged = tmp_path / "index.wacz"
    damaged.write_bytes(_zip(entries, packed={"indexes/index.cdx.gz": (8, _deflated(index + b"x"))}))
    with pytest.raises(ArchiveError, match="index.cdx.gz cannot be read"):
        extract(local_source(str(damaged)), URL, io.BytesIO())
    fair = tmp_path / "fair.wacz"                    # deflated members as such are fine
    fair.write_bytes(_zip(entries, packed={"pages/pages.jsonl": (8, _deflated(pages))}))
    assert _verify(fair, pub).verdict == "VERIFIED"


def test_a_method_replaywebpage_reads_as_stored_is_refused(foreign, tmp_path):
    """bzip2 (method 12): zipfile reads the first bzip2 stream, wabac.js the raw bytes,
    which may go on after that stream with forged page lines."""
    import bz2
    entries, _, pub = foreign
    pages = dict(entries)["pages/pages.jsonl"]
    attacked = tmp_path / "bzip2.wacz"
    attacked.write_bytes(_zip(entries, packed={"pages/pages.jsonl": (12, bz2.compress(pages) + b"\n" + PAGE)}))
    with zipfile.ZipFile(attacked) as zf:
        assert zf.read("pages/pages.jsonl") == pages
    _refused(attacked, pub, "method 12")


def test_a_stored_entry_with_two_sizes_is_refused(foreign, tmp_path):
    """A STORED entry whose compressed size goes past its size: zipfile and this verifier
    read its size (the real page list), wabac.js its compressed size (a forged page too)."""
    entries, _, pub = foreign
    pages = dict(entries)["pages/pages.jsonl"]
    data = bytearray(_zip(entries, packed={"pages/pages.jsonl": (0, pages + PAGE)}))
    attacked = tmp_path / "sizes.wacz"
    attacked.write_bytes(bytes(data))
    with zipfile.ZipFile(attacked) as zf:
        assert zf.read("pages/pages.jsonl") == pages
    _refused(attacked, pub, "two sizes")


def _refused(path: Path, pub: Path, words: str) -> None:
    with pytest.raises(CannotCheck, match=words):
        _verify(path, pub)
    with pytest.raises(ArchiveError, match=words):
        extract(local_source(str(path)), URL, io.BytesIO())


def test_extract_from_a_damaged_foreign_zip_says_what_cannot_be_read(foreign, tmp_path):
    """A deflated WARC whose local header is damaged: zipfile raises BadZipFile, which
    extract gave as an internal error."""
    entries, _, _ = foreign
    name, warc = entries[0]
    data = bytearray(_zip(entries, packed={name: (8, _deflated(warc))}))
    data[0] ^= 0xFF
    damaged = tmp_path / "damaged.wacz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="no readable record"):
        extract(local_source(str(damaged)), URL, io.BytesIO())


def test_a_hash_algorithm_without_a_fixed_digest_is_a_mismatch(foreign, tmp_path):
    """datapackage.json naming shake_128 for a file: no digest to compare (hexdigest needs
    a length), which was an internal error; now that file does not match its hash."""
    entries, _, pub = foreign
    datapackage = json.loads(dict(entries)["datapackage.json"])
    datapackage["resources"][0]["hash"] = "shake_128:00"
    changed = [(n, json.dumps(datapackage).encode() if n == "datapackage.json" else d) for n, d in entries]
    path = tmp_path / "shake.wacz"
    path.write_bytes(_zip(changed))
    report = verify_source(local_source(str(path)), VerifyOptions({}, allow_unsigned=True))
    assert report.verdict == "NOT VERIFIED"
    assert "does not match its hash" in json.dumps(report.check("resources").to_dict())


def test_a_size_given_as_text_says_so(foreign, tmp_path):
    """`"bytes": "7047"` for a file of 7047 bytes is no match (a number is what the spec
    and py-wacz read), and the report must not read as "is 7047 bytes, says 7047"."""
    entries, _, pub = foreign
    datapackage = json.loads(dict(entries)["datapackage.json"])
    resource = datapackage["resources"][0]
    resource["bytes"] = str(resource["bytes"])
    changed = [(n, json.dumps(datapackage).encode() if n == "datapackage.json" else d) for n, d in entries]
    path = tmp_path / "text-size.wacz"
    path.write_bytes(_zip(changed))
    report = verify_source(local_source(str(path)), VerifyOptions({}, allow_unsigned=True))
    assert report.verdict == "NOT VERIFIED"
    text = json.dumps(report.check("resources").to_dict())
    assert f'datapackage.json says \\"{resource["bytes"]}\\" (not a whole number)' in text, text


class _Huge:
    """An 8 GiB file of zeros but for a few bytes, that refuses any read big enough to
    hurt: what a claimed central directory of gigabytes would make a reader allocate."""

    def __init__(self, written: dict[int, bytes], size: int = 8 << 30) -> None:
        self.written, self.size, self.pos = written, size, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.size - self.pos if size is None or size < 0 else min(size, self.size - self.pos)
        assert size <= 256 << 20, f"a read of {size} bytes"
        data = bytearray(size)
        for at, chunk in self.written.items():
            lo, hi = max(at, self.pos), min(at + len(chunk), self.pos + size)
            if lo < hi:
                data[lo - self.pos:hi - self.pos] = chunk[lo - at:hi - at]
        self.pos += size
        return bytes(data)


@pytest.mark.parametrize("head", [b"PK\x03\x04", b"WARC/1.1\r\n"])
def test_a_claimed_central_directory_of_gigabytes_is_not_read_whole(head):
    """An end record claiming a central directory of nearly the whole (8 GiB) file: the
    canonical reader and zipfile (for a foreign WACZ, or to see whether a WARC is also a
    zip) read it whole, allocating gigabytes. Now: one clear refusal, bounded reads."""
    size = 8 << 30
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, 0xFFFFFFFF - 1, size - 22 - (0xFFFFFFFF - 1), 0)
    huge = _Huge({0: head, size - 22: end}, size)
    with pytest.raises(ContainerError, match="refusing to read more than"):
        read_container(huge, size)
    assert names_zip_readers_see(huge, size) == set()
    with pytest.raises(ArchiveError, match="refusing to read more than"):
        read_summary(huge, "later")                 # archive diff
