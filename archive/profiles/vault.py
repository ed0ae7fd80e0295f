"""A profile folder on disk: Playwright's storage state (cookies, local storage) as
JSON, encrypted with AES-256-GCM under a key derived from a passphrase with scrypt.
Folder mode 0700, file mode 0600; the plain state is never written to disk."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from archive.capture.login import Credentials, identity
from archive.errors import AlreadyExists, ArchiveError
from archive.files import read_at_most

PROFILE_NAME = "profile.enc"
FORMAT = "archive-browser-profile"
VERSION = 1
# scrypt at N=2**15, r=8: ~32 MiB and ~0.1 s a try (the cost OWASP names for interactive
# logins); kept in the file so a later version may raise it and still open old profiles.
SCRYPT = {"n": 1 << 15, "r": 8, "p": 1}
MAX_SCRYPT_N = 1 << 20           # a hostile file cannot make us spend gigabytes
MAX_PROFILE = 64 << 20           # cookies and local storage of many sites stay far below


def profile_file(folder: str | Path) -> Path:
    return Path(folder) / PROFILE_NAME


def _key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _header(kdf: dict) -> dict:
    return {"format": FORMAT, "version": VERSION, "cipher": "AES-256-GCM", "kdf": kdf}


def _aad(header: dict) -> bytes:
    # the header is bound to the ciphertext: its parameters cannot be swapped unnoticed
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def encrypt(state: dict, passphrase: bytes) -> bytes:
    """The file's bytes for `state` under `passphrase`."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _header({"name": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode("ascii")})
    key = _key(passphrase, salt, SCRYPT["n"], SCRYPT["r"], SCRYPT["p"])
    plain = json.dumps(state, separators=(",", ":")).encode("utf-8")
    sealed = AESGCM(key).encrypt(nonce, plain, _aad(header))
    return json.dumps({
        **header, "nonce": base64.b64encode(nonce).decode("ascii"),
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
    }, indent=1).encode("utf-8") + b"\n"


def decrypt(data: bytes, passphrase: bytes, where: str) -> dict:
    """The storage state in a profile file's bytes; a wrong passphrase, a damaged or
    foreign file is a one-line ArchiveError naming `where`."""
    try:
        envelope = json.loads(data)
        header = {k: envelope[k] for k in ("format", "version", "cipher", "kdf")}
        kdf = header["kdf"]
        if header["format"] != FORMAT or header["version"] != VERSION or kdf.get("name") != "scrypt":
            raise ValueError("not a profile of this version")
        n, r, p = (int(kdf[k]) for k in ("n", "r", "p"))
        if not (1 < n <= MAX_SCRYPT_N and 0 < r <= 32 and 0 < p <= 16) or n & (n - 1):
            raise ValueError("unusable scrypt parameters")
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        sealed = base64.b64decode(envelope["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ArchiveError(f"{where} is not a browser profile (made by `archive profile create`)") from None
    try:
        plain = AESGCM(_key(passphrase, salt, n, r, p)).decrypt(nonce, sealed, _aad(header))
    except (InvalidTag, ValueError):
        raise ArchiveError(f"cannot open the profile {where}: wrong passphrase or damaged file") from None
    state = json.loads(plain)
    if not isinstance(state, dict) or not isinstance(state.get("cookies", []), list):
        raise ArchiveError(f"{where} does not hold a browser's storage state")
    return state


def save(folder: str | Path, state: dict, passphrase: bytes, replace: bool = False) -> Path:
    """Write `state` encrypted into `folder` (made 0700), the file 0600; an existing
    profile is kept unless `replace` (then swapped in whole, never half written)."""
    if not passphrase:
        raise ArchiveError("a profile needs a passphrase: it holds the account's session")
    folder = Path(folder)
    try:
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True)
            os.chmod(folder, 0o700)     # whatever the umask; a folder that was there is left as it is
    except OSError as exc:
        raise ArchiveError(f"cannot make the profile folder {folder}: {exc.strerror or exc}") from None
    target = profile_file(folder)
    if target.exists() and not replace:
        raise AlreadyExists(f"{target} already exists; give --replace to overwrite that profile")
    data = encrypt(state, passphrase)
    temp = folder / f".{PROFILE_NAME}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ArchiveError(f"cannot write the profile {target}: {exc.strerror or exc}") from None
    return target


def open_to_others(folder: str | Path) -> bool:
    """Whether others than its owner may list or enter the profile's folder."""
    try:
        return bool(os.stat(folder).st_mode & 0o077)
    except OSError:
        return False


def load_state(folder: str | Path, passphrase: bytes | None) -> dict:
    """The decrypted storage state of the profile in `folder`."""
    path = profile_file(folder)
    if not Path(folder).is_dir():
        raise ArchiveError(f"no such profile folder: {folder}")
    if not passphrase:
        raise ArchiveError(f"the profile {folder} is encrypted: give its passphrase "
                           "(see `archive profile --help`)")
    try:
        data = read_at_most(path, MAX_PROFILE)
    except FileNotFoundError:
        raise ArchiveError(f"{folder} holds no profile ({PROFILE_NAME} is missing)") from None
    except ValueError:
        raise ArchiveError(f"{path} is not a browser profile: larger than {MAX_PROFILE >> 20} MiB") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read the profile {path}: {exc.strerror or exc}") from None
    return decrypt(data, passphrase, str(folder))


def open_profile(folder: str | Path, passphrase: bytes | None) -> Credentials:
    """The profile in `folder` as what a capture logs in with, and its identity."""
    state = load_state(folder, passphrase)
    origins = [o.get("origin", "") for o in state.get("origins") or () if isinstance(o, dict)]
    return Credentials(state, identity(Path(os.path.abspath(folder)).name,
                                       list(state.get("cookies") or ()), origins))


def open_named(folder: str | Path, passphrase_file: str | Path | None = None,
               passphrase_env: str | None = None) -> Credentials:
    """The profile in `folder`, its passphrase from the file or variable named (else
    $ARCHIVE_PROFILE_PASSPHRASE or a prompt)."""
    from archive.profiles.passphrase import MISSING, profile_passphrase

    passphrase = profile_passphrase(passphrase_file, passphrase_env)
    if not passphrase:
        raise ArchiveError(f"the profile {folder} is encrypted: {MISSING}")
    return open_profile(folder, passphrase)


def open_for_capture(folder: str | Path, passphrase_file: str | Path | None = None,
                     passphrase_env: str | None = None) -> Credentials:
    """open_named(), refusing a profile whose every cookie has expired: a capture would
    only record the login wall."""
    credentials = open_named(folder, passphrase_file, passphrase_env)
    now = time.time()
    cookies = credentials.cookies
    live = [c for c in cookies if not (isinstance(c.get("expires"), (int, float)) and 0 < c["expires"] <= now)]
    if cookies and not live:
        raise ArchiveError(f"every cookie of the profile {folder} has expired: log in again with "
                           f"`archive profile create {folder} --url LOGIN-URL --replace`")
    # the expired ones are not sent (nor given to yt-dlp); the identity stays that of the
    # profile as saved, so a resume later finds the same one
    return replace(credentials, storage_state={**credentials.storage_state, "cookies": live})
