"""A store in a local folder: write-once files under captures/YYYY/MM/DD/."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from archive.errors import AlreadyExists, ArchiveError, NotFound, TooLarge
from archive.files import fsync_dir, noted_sha256
from archive.hashing import CHUNK, file_sha256
from archive.ids import is_capture_id
from archive.store.base import StoredCapture, capture_key, check_object_key, publish_public_key

READ_ONLY = 0o444
COPY_CHUNK = 1 << 30      # asked of copy_file_range at a time (it may copy less)


def _remove_leftovers(final: Path) -> None:
    """Remove the temporary files an earlier attempt at `final` left (killed while it
    copied): named after `final`, they can only be ours, and hold nothing stored."""
    for leftover in final.parent.glob(f".{final.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _link_or_copy(src: Path, dst: Path, sha256: str) -> int:
    """Put src at dst and check what is at dst against the sealed hash; returns the size.

    A hard link when src is on the same file system (the sealed file is not written a
    second time), a copy otherwise.

    What the check is for: that the file stored under the capture's name is the sealed
    one, whole: not another file, not one changed since it was sealed, not a copy cut
    short (a full disk) or garbled on the way. A link copies nothing, so when sealing
    hashed this very file in this process and nothing has touched it since (its inode,
    size, mtime and ctime are what they were then: files.noted_sha256), the link is that
    file and reading it again would only read the same page cache back; else it is read
    and hashed. A copy is always read back and hashed: what is checked is the bytes now
    under the stored name, not the bytes we meant to write. Neither read reaches past the
    page cache to the disk's surface: the decay of a stored file over years is what
    `archive custody verify` and `archive verify`, reading it again later, are for.
    """
    sealed = os.stat(src)
    try:
        os.link(src, dst)
    except OSError:
        digest, size = _copy(src, dst)
    else:
        held = os.stat(dst)
        if (held.st_dev, held.st_ino) == (sealed.st_dev, sealed.st_ino) \
                and noted_sha256(sealed) == sha256:
            return held.st_size
        digest, size = file_sha256(dst)
    if digest != sha256:
        raise ArchiveError(f"{src} does not match its sealed hash")
    return size


def _copy(src: Path, dst: Path) -> tuple[str, int]:
    """Copy src to a new file dst, durably: in the kernel (copy_file_range, a reflink
    where the file system has them) when it can, else through memory. Returns the SHA-256
    and size of the copy, read back: what is now at dst, not what was meant to be."""
    with open(src, "rb") as fh, open(dst, "xb") as out:
        try:
            while os.copy_file_range(fh.fileno(), out.fileno(), COPY_CHUNK):
                pass
        except OSError:
            # not across these file systems (or not on this kernel): start again in memory
            fh.seek(0)
            out.seek(0)
            out.truncate()
            shutil.copyfileobj(fh, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())
    return file_sha256(dst)


def _newest_files(base: Path, count: int, depth: int = 3) -> list[Path]:
    """The last `count` captures under the date folders of `base`, oldest first."""
    if depth == 0:
        files = sorted(p for p in base.glob("*.wacz") if is_capture_id(p.name[: -len(".wacz")]))
        return files[-count:] if count else []
    out: list[Path] = []
    for folder in sorted((p for p in base.iterdir() if p.is_dir()), reverse=True):
        if len(out) >= count:
            break
        out = _newest_files(folder, count - len(out), depth - 1) + out
    return out


class LocalStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.address = str(self.root)

    def path_of(self, capture_id: str) -> Path:
        return self.root / capture_key(capture_id)

    def put_capture(self, capture_id: str, wacz: Path, sha256: str, metadata: dict) -> StoredCapture:
        final = self.path_of(capture_id)
        if final.exists():
            raise AlreadyExists(f"{final} already exists; captures are never overwritten")
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(final)
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        try:
            size = _link_or_copy(wacz, tmp, sha256)
            os.chmod(tmp, READ_ONLY)
            try:
                # link() fails if the name exists: no window in which a capture is replaced.
                os.link(tmp, final)
            except FileExistsError:
                raise AlreadyExists(f"{final} already exists; captures are never overwritten") from None
            fsync_dir(final.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return StoredCapture(capture_id, str(final), size, sha256, metadata.get("signer"),
                             metadata.get("created"), tuple(metadata.get("seeds") or ()))

    def open_capture(self, capture_id: str) -> BinaryIO:
        path = self.path_of(capture_id) if is_capture_id(capture_id) else Path(capture_id)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise NotFound(f"no capture {capture_id} in {self.root}") from None

    def stat_capture(self, capture_id: str) -> StoredCapture:
        path = self.path_of(capture_id) if is_capture_id(capture_id) else Path(capture_id)
        if not path.is_file():
            raise NotFound(f"no capture {capture_id} in {self.root}")
        name = path.name.removesuffix(".wacz")
        return StoredCapture(name, str(path), path.stat().st_size)

    def list_captures(self, newest: int | None = None) -> Iterator[StoredCapture]:
        """Captures oldest first (`newest`: only the last N, found by walking the date
        folders newest first)."""
        base = self.root / "captures"
        if not base.is_dir():
            return
        paths = sorted(base.glob("*/*/*/*.wacz")) if newest is None else _newest_files(base, newest)
        for path in paths:
            capture_id = path.name[: -len(".wacz")]
            if is_capture_id(capture_id):
                yield StoredCapture(capture_id, str(path), path.stat().st_size)

    def put_public_key(self, fingerprint: str, pem: bytes) -> None:
        publish_public_key(self, fingerprint, pem)

    def _object_path(self, key: str) -> Path:
        return self.root / check_object_key(key)

    def put_object(self, key: str, data: bytes) -> None:
        path = self._object_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)   # appears whole or not at all, never replaced
            except FileExistsError:
                raise AlreadyExists(f"{key} already exists in {self.root}") from None
            fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def get_object(self, key: str, limit: int | None = None) -> bytes:
        try:
            with open(self._object_path(key), "rb") as fh:
                data = fh.read(-1 if limit is None else limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no {key} in {self.root}") from None
        if limit is not None and len(data) > limit:
            raise TooLarge(f"{key} holds more than {limit} bytes")
        return data

    def list_objects(self, prefix: str) -> Iterator[str]:
        base = self.root
        for path in sorted(base.glob(prefix.rstrip("/") + "/**/*") if prefix else base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(base).as_posix()
                if not key.startswith("captures/"):
                    yield key

    def last_object(self, prefix: str) -> str | None:
        """The greatest key under a prefix, descending its folders (never a full listing)."""
        path = self.root / prefix.strip("/")
        while path.is_dir():
            names = sorted(n for n in os.listdir(path) if not n.startswith("."))
            if not names:
                return None
            path = path / names[-1]
        return path.relative_to(self.root).as_posix() if path.is_file() and path != self.root else None

    def delete_object(self, key: str) -> None:
        try:
            self._object_path(key).unlink()
        except FileNotFoundError:
            raise NotFound(f"no {key} in {self.root}") from None

