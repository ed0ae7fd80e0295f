"""Signatures in the anonymous form of Webrecorder's WACZ signing spec (wacz-auth 0.1.0).

What is signed is the ASCII string `sha256:<hex>` of datapackage.json (the `hash` value
itself), with ECDSA P-256 / SHA-256; `signature` is base64 DER, `publicKey` base64 DER
SubjectPublicKeyInfo. A key found in the file is never trusted by itself: verification
compares it with the keys the user gives.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from archive import SOFTWARE
from archive.keys import fingerprint, public_key_b64, public_key_from_b64, public_pem

SPEC_VERSION = "0.1.0"
ANONYMOUS_FIELDS = {"hash", "created", "software", "version", "signature", "publicKey"}
DOMAIN_FIELDS = {
    "hash", "created", "software", "version", "signature", "domain", "domainCert",
    "timeSignature", "timestampCert", "crossSignedCert",
}


def sign_hash(private_key: ec.EllipticCurvePrivateKey, hash_value: str, created: str) -> dict:
    """signedData for `hash_value` (`sha256:<hex>`), anonymous form."""
    signature = private_key.sign(hash_value.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    signed = {
        "hash": hash_value,
        "created": created,
        "software": SOFTWARE,
        "version": SPEC_VERSION,
        "signature": base64.b64encode(signature).decode("ascii"),
        "publicKey": public_key_b64(private_key.public_key()),
    }
    # Refuse to emit a signature we could not check ourselves.
    if not check_signature(signed).valid:
        raise RuntimeError("fresh signature does not verify")
    return signed


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool                 # the signature matches `hash` under the embedded key
    form: str                   # "anonymous", "domain" or "unknown"
    fingerprint: str | None     # of the embedded public key
    problem: str | None = None


def check_signature(signed: dict) -> SignatureCheck:
    """Check an anonymous-form signature against the key embedded in it (trust is separate)."""
    if not isinstance(signed, dict):
        return SignatureCheck(False, "unknown", None, "signedData is not an object")
    keys = set(signed)
    if "domain" in keys or "domainCert" in keys:
        extra = keys - DOMAIN_FIELDS
        return SignatureCheck(
            False, "domain", None,
            "domain-identity signature (certificate based); this tool checks anonymous signatures"
            + (f"; unexpected fields {sorted(extra)}" if extra else ""),
        )
    if keys != ANONYMOUS_FIELDS:
        missing, extra = ANONYMOUS_FIELDS - keys, keys - ANONYMOUS_FIELDS
        return SignatureCheck(
            False, "unknown", None,
            f"signedData fields do not match the anonymous form "
            f"(missing {sorted(missing)}, unexpected {sorted(extra)})",
        )
    try:
        public_key = public_key_from_b64(signed["publicKey"])
    except (ValueError, TypeError):
        return SignatureCheck(False, "anonymous", None, "publicKey is not an ECDSA P-256 key")
    fp = fingerprint(public_key)
    try:
        signature = base64.b64decode(signed["signature"], validate=True)
        public_key.verify(signature, str(signed["hash"]).encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError, UnicodeEncodeError):
        return SignatureCheck(False, "anonymous", fp, "signature does not match the hash")
    return SignatureCheck(True, "anonymous", fp)


class Signer:
    """A loaded signing key, ready to sign datapackage hashes."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self.fingerprint = fingerprint(private_key.public_key())

    def sign(self, hash_value: str, created: str) -> dict:
        return sign_hash(self._key, hash_value, created)

    def public_pem(self) -> bytes:
        return public_pem(self._key.public_key())
