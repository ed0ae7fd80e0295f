"""Signing keys: ECDSA P-384 (the default) or P-256 key pairs, encrypted PEM on disk,
SHA-256 fingerprints.

P-384 because ReplayWeb.page (wabac.js), the only other tool that checks the anonymous
WACZ signature, imports the signer's key as P-384 only; P-256 keys made before still
sign and verify here.
"""

from __future__ import annotations

import base64
import functools
import getpass
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from archive.errors import AlreadyExists, ArchiveError
from archive.files import read_at_most

PASSPHRASE_ENV = "ARCHIVE_KEY_PASSPHRASE"
KEY_ENV = "ARCHIVE_KEY"                 # the signing key file commands use without --key
PASSPHRASE_FILE_LIMIT = 1 << 20
PRIVATE_NAME = "signing-key.pem"
PUBLIC_NAME = "signing-key.pub.pem"
# curve option -> (curve, its name in reports)
CURVES = {"p384": (ec.SECP384R1, "P-384"), "p256": (ec.SECP256R1, "P-256")}
DEFAULT_CURVE = "p384"
_NAMES = {curve.name: name for curve, name in CURVES.values()}      # secp384r1 -> P-384


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path
    fingerprint: str
    algorithm: str


def curve_name(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str:
    """`P-384` or `P-256`."""
    return _NAMES[key.curve.name]


def algorithm(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> str:
    """What a key signs with, for people: `ECDSA P-384 (secp384r1) with SHA-256`."""
    return f"ECDSA {curve_name(key)} ({key.curve.name}) with SHA-256"


def public_der(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """DER SubjectPublicKeyInfo: what `publicKey` in a WACZ signature holds."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex."""
    return hashlib.sha256(public_der(public_key)).hexdigest()


def public_key_b64(public_key: ec.EllipticCurvePublicKey) -> str:
    return base64.b64encode(public_der(public_key)).decode("ascii")


def public_pem(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def passphrase_from_env_or_prompt(confirm: bool = False, env: str = PASSPHRASE_ENV,
                                  label: str = "Key") -> bytes | None:
    """The key passphrase from ARCHIVE_KEY_PASSPHRASE (or `env`), else an interactive
    prompt (asking for the `label` passphrase).

    Returns None when neither is available (no variable and no terminal).
    """
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"{label} passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise ArchiveError("the two passphrases differ")
    return first.encode("utf-8") if first else None


def generate(out_dir: str | Path, passphrase: bytes | None, curve: str = DEFAULT_CURVE) -> KeyFiles:
    """Write a new key pair on `curve` (p384 or p256) into out_dir; the private key
    encrypted unless passphrase is None. Refuses to replace existing key files.
    """
    if curve not in CURVES:
        raise ArchiveError(f"unknown curve {curve!r}: choose {' or '.join(CURVES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise AlreadyExists(f"{path} already exists; refusing to overwrite a key")
    key = ec.generate_private_key(CURVES[curve][0]())
    encryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    # O_EXCL + mode 0600 at creation: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    fd = os.open(public_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(public_pem(key.public_key()))
    return KeyFiles(private_path, public_path, fingerprint(key.public_key()), algorithm(key))


KEY_FILE_LIMIT = 1 << 20      # a PEM key is a few hundred bytes


def read_key_file(path: str | Path) -> bytes:
    try:
        return read_at_most(path, KEY_FILE_LIMIT)
    except FileNotFoundError:
        raise ArchiveError(f"key file not found: {path}") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read key file {path}: {exc.strerror}") from None
    except ValueError:
        raise ArchiveError(f"{path} is not a key file: it is larger than any key") from None


def is_encrypted_pem(data: bytes) -> bool:
    return b"ENCRYPTED" in data.split(b"\n", 1)[0]


def load_private_key(path: str | Path, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    """Load the signing key; a wrong or missing passphrase is a one-line ArchiveError."""
    data = read_key_file(path)
    if b"PRIVATE KEY" not in data:
        raise ArchiveError(f"{path} is not a PEM private key")
    if is_encrypted_pem(data) and not passphrase:
        raise ArchiveError(
            f"{path} is encrypted: set {PASSPHRASE_ENV} or run from a terminal to be asked"
        )
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase if is_encrypted_pem(data) else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ArchiveError(f"cannot open {path}: wrong passphrase or damaged key") from None
    return _require_supported(key, path)


@dataclass(frozen=True)
class PassphraseSource:
    """Where a passphrase comes from: a variable or a file a job file names, else (for a
    person at a command) `default_env` ($ARCHIVE_KEY_PASSPHRASE for a signing key) or a
    prompt. Signing keys and browser profiles both take theirs this way."""

    env: str | None = None         # a variable named in a job file: it must be set
    file: Path | None = None       # a file holding it
    interactive: bool = True       # neither named: $ARCHIVE_KEY_PASSPHRASE, else a prompt
    missing: str = f"set {PASSPHRASE_ENV} or run from a terminal to be asked"   # said when none is given
    default_env: str = PASSPHRASE_ENV   # the variable a person sets (each secret its own)
    label: str = "Key"                  # what the prompt asks for
    confirm: bool = False               # a new secret is asked twice

    def read(self) -> bytes | None:
        """The passphrase (None if this source gives none); a named one that cannot be
        read is an ArchiveError."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ArchiveError(f"the passphrase variable {self.env} is not set")
            return value.encode("utf-8")
        if self.file:
            try:
                data = read_at_most(self.file, PASSPHRASE_FILE_LIMIT)
            except OSError as exc:
                raise ArchiveError(f"cannot read passphrase file {self.file}: {exc.strerror or exc}") from None
            except ValueError:
                raise ArchiveError(f"passphrase file {self.file} is larger than any passphrase") from None
            # A trailing newline is what editors and `echo` leave; it is not part of it.
            return data.rstrip(b"\r\n") or None
        if not self.interactive:
            return None
        return passphrase_from_env_or_prompt(self.confirm, env=self.default_env, label=self.label)


def load_signing_key(path: str | Path, source: PassphraseSource = PassphraseSource()
                     ) -> ec.EllipticCurvePrivateKey:
    """The private key in `path`, its passphrase (asked for only if it is encrypted) from
    `source`: the one way every command and job opens a signing key."""
    data = read_key_file(path)
    secret = None
    if is_encrypted_pem(data) and b"PRIVATE KEY" in data:
        secret = source.read()
        if not secret:
            raise ArchiveError(f"{path} is encrypted: {source.missing}")
    return load_private_key(path, secret)


def load_signer(path: str | Path, source: PassphraseSource = PassphraseSource()):
    """A Signer (archive.seal.sign) for the key in `path`."""
    from archive.seal.sign import Signer   # sign.py reads keys with this module: imported late

    return Signer(load_signing_key(path, source))


def chosen_signer(key: str | None, unsigned: bool):
    """The signer a command was given (--key FILE, else $ARCHIVE_KEY), None with
    --unsigned; loaded before any network traffic so that a bad key fails fast."""
    key = key or os.environ.get(KEY_ENV)
    if unsigned:
        if key and not os.environ.get(KEY_ENV):
            raise ArchiveError("--unsigned and --key contradict each other")
        return None
    if not key:
        raise ArchiveError(
            f"no signing key: give --key FILE (or set {KEY_ENV}); "
            "`archive keys generate` makes one, --unsigned captures without signing"
        )
    return load_signer(key)


def load_public_key(path: str | Path) -> ec.EllipticCurvePublicKey:
    """A trusted public key: PEM public key, or the public half of a PEM private key file
    that is not encrypted, or base64 DER as found in a WACZ `publicKey`."""
    data = read_key_file(path).strip()
    blocks = data.count(b"-----BEGIN ")
    if blocks > 1:
        # only the first would be read: a key bundle would silently trust one key, and a
        # file showing one key in an editor could hand the verifier another
        raise ArchiveError(f"{path} holds {blocks} PEM blocks; give one public key per file "
                           "(or a folder of key files)")
    try:
        if b"PUBLIC KEY" in data:
            key = serialization.load_pem_public_key(data)
        elif b"PRIVATE KEY" in data:
            raise ArchiveError(f"{path} is a private key; give the public key (.pub.pem)")
        else:
            key = serialization.load_der_public_key(base64.b64decode(data, validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm, base64.binascii.Error):
        raise ArchiveError(f"{path} is not a public key (PEM or base64 DER)") from None
    return _require_supported(key, path)


# a ledger of a million entries names a handful of keys: each is parsed (and its point
# checked) once, not once per signature (a key is immutable, so sharing it is safe)
@functools.lru_cache(maxsize=64)
def public_key_from_b64(value: str) -> ec.EllipticCurvePublicKey:
    """Parse a base64 DER SubjectPublicKeyInfo; raises ValueError when it is not an
    ECDSA P-384 or P-256 key (TypeError when `value` is not a string)."""
    raw = base64.b64decode(value, validate=True)
    try:
        key = serialization.load_der_public_key(raw)
    except UnsupportedAlgorithm:
        # a damaged key can name a curve or algorithm the library does not know
        raise ValueError("not an ECDSA P-384 or P-256 public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and public_der(key) != raw:
        # another encoding of a key (compressed or hybrid point, odd DER) is not what
        # a signer writes: the bytes must be the canonical SubjectPublicKeyInfo
        raise ValueError("public key is not in its canonical encoding")
    if not _supported(key):
        raise ValueError("not an ECDSA P-384 or P-256 public key")
    return key


def _supported(key) -> bool:
    return (isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))
            and key.curve.name in _NAMES)


def _require_supported(key, path):
    if not _supported(key):
        raise ArchiveError(f"{path} is not an ECDSA P-384 or P-256 key")
    return key


STATE_ENV = "XDG_STATE_HOME"


def notices_dir() -> Path:
    """Where one-time notices to a key's owner are remembered (XDG state folder)."""
    base = os.environ.get(STATE_ENV) or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "archive" / "notices"


def p256_notice(key_fingerprint: str, curve: str) -> str | None:
    """The notice for the owner of a P-256 key, the first time it signs on this account
    (None after that, and for P-384 keys). Remembered per key in notices_dir(); where
    that cannot be written, the notice is given every time rather than never."""
    if curve != "P-256":
        return None
    marker = notices_dir() / f"p256-{key_fingerprint}"
    if marker.exists():
        return None
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("told: ReplayWeb.page cannot confirm signatures of this P-256 key\n")
    except OSError:
        pass
    return (f"key {key_fingerprint[:16]}… is ECDSA P-256: `archive verify` checks its signatures, "
            "but ReplayWeb.page confirms P-384 signatures only; `archive keys generate --out DIR` "
            "makes a P-384 key (publish its .pub.pem to those who verify). Said once per key")
