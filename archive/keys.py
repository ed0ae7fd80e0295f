"""Signing keys: ECDSA P-256 key pairs, encrypted PEM on disk, SHA-256 fingerprints."""

from __future__ import annotations

import base64
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
PRIVATE_NAME = "signing-key.pem"
PUBLIC_NAME = "signing-key.pub.pem"
ALGORITHM = "ECDSA P-256 (secp256r1) with SHA-256"


@dataclass(frozen=True)
class KeyFiles:
    private: Path
    public: Path
    fingerprint: str


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


def passphrase_from_env_or_prompt(confirm: bool = False) -> bytes | None:
    """The key passphrase from ARCHIVE_KEY_PASSPHRASE, else an interactive prompt.

    Returns None when neither is available (no variable and no terminal).
    """
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode("utf-8")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("Key passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise ArchiveError("the two passphrases differ")
    return first.encode("utf-8") if first else None


def generate(out_dir: str | Path, passphrase: bytes | None) -> KeyFiles:
    """Write a new key pair into out_dir; the private key encrypted unless passphrase is None.

    Refuses to replace existing key files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise AlreadyExists(f"{path} already exists; refusing to overwrite a key")
    key = ec.generate_private_key(ec.SECP256R1())
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
    return KeyFiles(private_path, public_path, fingerprint(key.public_key()))


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
    return _require_p256(key, path)


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
    return _require_p256(key, path)


def public_key_from_b64(value: str) -> ec.EllipticCurvePublicKey:
    """Parse a base64 DER SubjectPublicKeyInfo; raises ValueError when it is not P-256."""
    raw = base64.b64decode(value, validate=True)
    try:
        key = serialization.load_der_public_key(raw)
    except UnsupportedAlgorithm:
        # a damaged key can name a curve or algorithm the library does not know
        raise ValueError("not an ECDSA P-256 public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and public_der(key) != raw:
        # another encoding of a key (compressed or hybrid point, odd DER) is not what
        # a signer writes: the bytes must be the canonical SubjectPublicKeyInfo
        raise ValueError("public key is not in its canonical encoding")
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def _require_p256(key, path):
    if (
        not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))
        or key.curve.name != "secp256r1"
    ):
        raise ArchiveError(f"{path} is not an ECDSA P-256 key")
    return key
