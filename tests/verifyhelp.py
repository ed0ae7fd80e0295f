"""Helpers for the verification tests: captures made once per module, hand-built WACZ
files (with screenshot records), pictures, the foreign test data, re-zipping."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from archive.cli import main as cli_main
from archive.keys import public_pem
from archive.wacz.zipwriter import ContainerWriter
from archive.seal.sign import Signer
from archive.seal.wacz import SealInput, seal
from archive.warc.cdxj import cdxj_line
from archive.warc.writer import WarcWriter
from tests.conftest import PASSPHRASE, stored_waczs
from tests.site import SiteServer, standard_site

from tests.shared import FOREIGN  # noqa: E402,F401 - re-exported
BIN = Path(sys.executable).parent


@contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_capture(workdir: Path, keydir: Path, *paths: str, extra=()) -> Path:
    """A real capture of the test site (signed with the session key); the WACZ path."""
    with SiteServer(standard_site()) as server, _env(ARCHIVE_KEY_PASSPHRASE=PASSPHRASE):
        urls = [server.url(p) for p in paths or ("/",)]
        code = cli_main(["capture", *urls, "--key", str(keydir / "signing-key.pem"),
                         "--store", str(workdir / "store"), "--work-dir", str(workdir / "work"),
                         "--quiet", *extra])
    assert code == 0
    return Path(stored_waczs(workdir / "store")[-1])


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def new_signer(keydir: Path) -> tuple[Signer, Path]:
    """A fresh signing key; its public key written to keydir."""
    key = ec.generate_private_key(ec.SECP384R1())
    keydir.mkdir(parents=True, exist_ok=True)
    pub = keydir / "signer.pub.pem"
    pub.write_bytes(public_pem(key.public_key()))
    return Signer(key), pub


def build_wacz(path: Path, pages: list[dict], signer: Signer | None, edit_index=None) -> Path:
    """A WACZ made with our writer: for each page {url, body, screenshot?} a response
    record and, when given, a `urn:screenshot:<url>` resource record. `edit_index`
    changes the index lines before they are sealed (an index that lies, signed)."""
    container = ContainerWriter(path)
    writer = WarcWriter(container, "built", {"software": "tests"})
    lines, entries = [], []
    for page in pages:
        block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + page["body"]
        ref = writer.write("response", page["url"], block)
        lines.append(cdxj_line(page["url"], ref.date, ref.filename, ref.offset, ref.length, "response",
                               None, "text/html", 200))
        if page.get("screenshot"):
            shot = writer.write("resource", "urn:screenshot:" + page["url"], page["screenshot"],
                                content_type="image/png")
            lines.append(cdxj_line("urn:screenshot:" + page["url"], shot.date, shot.filename,
                                   shot.offset, shot.length, "resource", None, "image/png"))
        entries.append({"id": hashlib.sha1(page["url"].encode()).hexdigest(), "url": page["url"],
                        "ts": "2026-01-01T00:00:00Z", "title": page.get("title", "A page"), "status": 200})
    writer.close()
    lines = edit_index(lines) if edit_index else lines
    evidence = {"captureId": "built", "seeds": [p["url"] for p in pages], "operator": "tester",
                "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:05Z",
                "stats": {"pages": len(pages), "bytes": 1234}}
    seal(container, SealInput("built", lines, entries,
                              {"evidence/capture.json": json.dumps(evidence).encode()}), signer)
    return path


def rezip(src: Path, dst: Path, replace: dict[str, bytes] | None = None,
          drop: set[str] = frozenset(), order: list[str] | None = None) -> Path:
    """Re-zip with members replaced, dropped or reordered (what a tamperer can do)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin:
        names = order or [i.filename for i in zin.infolist()]
        with zipfile.ZipFile(dst, "w") as zout:
            for name in names:
                if name not in drop:
                    zout.writestr(name, replace.get(name, zin.read(name) if name in zin.namelist() else b""))
    return dst


def refresh(src: Path, dst: Path, changed: dict[str, bytes]) -> Path:
    """Replace members and recompute datapackage.json and its digest, keeping the old
    signature: everything consistent except the signature."""
    with zipfile.ZipFile(src) as zf:
        datapackage = json.loads(zf.read("datapackage.json"))
        digest = json.loads(zf.read("datapackage-digest.json"))
    for resource in datapackage["resources"]:
        if resource["path"] in changed:
            body = changed[resource["path"]]
            resource["hash"] = "sha256:" + hashlib.sha256(body).hexdigest()
            resource["bytes"] = len(body)
    dp = json.dumps(datapackage, indent=2).encode()
    digest["hash"] = "sha256:" + hashlib.sha256(dp).hexdigest()
    return rezip(src, dst, {**changed, "datapackage.json": dp,
                            "datapackage-digest.json": json.dumps(digest).encode()})


def gzip_members(data: bytes) -> list[bytes]:
    """The gzip members of a .warc.gz (one record each)."""
    members, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        members.append(data[pos:end])
        pos = end
    return members


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it (all such files together, in `total`)."""
    total = 0

    def read(self, size=-1):
        data = super().read(size)
        CountingFile.total += len(data)
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        CountingFile.total += n or 0
        return n


def warcio_check(path: Path) -> int:
    return subprocess.run([str(BIN / "warcio"), "check", str(path)], capture_output=True).returncode


def archive_cmd(*args, timeout: float = 120, limit_mb: int | None = None) -> subprocess.CompletedProcess:
    """The real `archive` command in a child process (optionally memory-capped)."""
    def cap():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))
    return subprocess.run([str(BIN / "archive"), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap if limit_mb else None)


def rewrite_records(wacz: Path, dst: Path, edit) -> Path:
    """Every record of the WACZ's WARC edited (uncompressed) and compressed again, the index's
    offsets and lengths moved to match: a tamperer who keeps the index consistent."""
    with zipfile.ZipFile(wacz) as zf:
        name = next(n for n in zf.namelist() if n.startswith("archive/"))
        data, index = zf.read(name), gzip.decompress(zf.read("indexes/index.cdx.gz")).decode()
    moved, warc, old = {}, b"", 0
    for member in gzip_members(data):
        new = gzip.compress(edit(gzip.decompress(member)))
        moved[old] = (len(warc), len(new))
        warc, old = warc + new, old + len(member)
    lines = []
    for line in index.splitlines():
        head, fields = line.split(" {", 1)
        fields = json.loads("{" + fields)
        offset, length = moved[int(fields["offset"])]
        fields.update(offset=str(offset), length=str(length))
        lines.append(head + " " + json.dumps(fields))
    return refresh(wacz, dst, {name: warc, "indexes/index.cdx.gz": gzip.compress(("\n".join(lines) + "\n").encode())})


def add_deflated(path: Path, name: str, raw: bytes, size: int, crc: int = 0) -> None:
    """Append a deflated entry from deflate bytes made elsewhere (zipfile would inflate
    them: a bomb of gigabytes costs nothing this way), declaring `size` and `crc`."""
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 5))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.CRC, info.file_size, info.compress_size = crc, size, len(raw)
        with zf._lock:  # noqa: SLF001 - writing pre-compressed data has no public API
            zf.fp.seek(zf.start_dir)
            info.header_offset = zf.start_dir
            zf.fp.write(info.FileHeader(False))
            zf.fp.write(raw)
            zf.start_dir = zf.fp.tell()
            zf.filelist.append(info)
            zf.NameToInfo[info.filename] = info
            zf._didModify = True  # noqa: SLF001
