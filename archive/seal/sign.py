"""Signatures in the anonymous form of Webrecorder's WACZ signing spec (wacz-auth 0.1.0).

What is signed is the ASCII string `sha256:<hex>` of datapackage.json (the `hash` value
itself), with ECDSA / SHA-256; `publicKey` is base64 DER SubjectPublicKeyInfo.
`signature` is base64 of the raw `r||s` form (IEEE P1363) that WebCrypto writes and
verifies: ReplayWeb.page (wabac.js) checks it so, with a P-384 key, and ArchiveWeb.page
signs so. Captures sealed before were signed in DER, some with P-256 keys: both curves
and both encodings verify here. A key found in the file is never trusted by itself:
verification compares it with the keys the user gives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from archive import SOFTWARE
from archive.keys import curve_name, fingerprint, public_key_b64, public_key_from_b64, public_pem

SPEC_VERSION = "0.1.0"
ANONYMOUS_FIELDS = {"hash", "created", "software", "version", "signature", "publicKey"}
DOMAIN_FIELDS = {
    "hash", "created", "software", "version", "signature", "domain", "domainCert",
    "timeSignature", "timestampCert", "crossSignedCert",
}


def sign_hash(private_key: ec.EllipticCurvePrivateKey, hash_value: str, created: str) -> dict:
    """signedData for `hash_value` (`sha256:<hex>`), anonymous form, raw r||s signature."""
    der = private_key.sign(hash_value.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    signed = {
        "hash": hash_value,
        "created": created,
        "software": SOFTWARE,
        "version": SPEC_VERSION,
        "signature": base64.b64encode(der_to_raw(der, private_key.curve)).decode("ascii"),
        "publicKey": public_key_b64(private_key.public_key()),
    }
    # Refuse to emit a signature we could not check ourselves.
    if not check_signature(signed).valid:
        raise RuntimeError("fresh signature does not verify")
    return signed


def _size(curve: ec.EllipticCurve) -> int:
    """Bytes of r (and of s) in the raw form."""
    return (curve.key_size + 7) // 8


def der_to_raw(der: bytes, curve: ec.EllipticCurve) -> bytes:
    """DER ECDSA-Sig-Value -> r||s, each padded to the curve's size (IEEE P1363)."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(_size(curve), "big") + s.to_bytes(_size(curve), "big")


def raw_to_der(raw: bytes, curve: ec.EllipticCurve) -> bytes:
    """r||s -> DER, the form openssl and most libraries verify; ValueError when the
    length is not the curve's."""
    n = _size(curve)
    if len(raw) != 2 * n:
        raise ValueError(f"a raw {curve.name} signature is {2 * n} bytes, not {len(raw)}")
    return encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))


def signature_forms(signature: bytes, curve: ec.EllipticCurve) -> list[tuple[bytes, str]]:
    """[(DER, "DER" or "raw")]: the readings of a signature, each given in DER. Raw r||s
    has exactly twice the curve's size; DER is a SEQUENCE of two INTEGERs, strictly
    encoded. Both, in the rare case a raw value also reads as DER; none when neither."""
    forms = []
    try:
        r, s = decode_dss_signature(signature)
        if encode_dss_signature(r, s) == signature:
            forms.append((signature, "DER"))
    except ValueError:
        pass
    if len(signature) == 2 * _size(curve):
        forms.append((raw_to_der(signature, curve), "raw"))
    return forms


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool                 # the signature matches `hash` under the embedded key
    form: str                   # "anonymous", "domain" or "unknown"
    fingerprint: str | None     # of the embedded public key
    problem: str | None = None
    curve: str | None = None    # "P-384" or "P-256", of the embedded key
    encoding: str | None = None     # "raw" (r||s, as WebCrypto) or "DER"


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
        return SignatureCheck(False, "anonymous", None, "publicKey is not an ECDSA P-384 or P-256 key")
    fp, curve = fingerprint(public_key), curve_name(public_key)
    try:
        forms = signature_forms(base64.b64decode(signed["signature"], validate=True), public_key.curve)
        message = str(signed["hash"]).encode("ascii")
    except (ValueError, TypeError, UnicodeEncodeError):
        forms = []
    if not forms:
        return SignatureCheck(False, "anonymous", fp, "the signature is neither DER nor a raw "
                              f"{curve} r||s value", curve)
    for der, encoding in forms:
        try:
            public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            return SignatureCheck(True, "anonymous", fp, None, curve, encoding)
        except InvalidSignature:
            continue
    return SignatureCheck(False, "anonymous", fp, "signature does not match the hash", curve, forms[-1][1])


class Signer:
    """A loaded signing key, ready to sign datapackage hashes."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self.fingerprint = fingerprint(private_key.public_key())

    def sign(self, hash_value: str, created: str) -> dict:
        return sign_hash(self._key, hash_value, created)

    def public_pem(self) -> bytes:
        return public_pem(self._key.public_key())

    def derived_secret(self, label: bytes) -> bytes:
        """A secret derived from the private key for one purpose (`label`): HMAC-SHA256 of
        the label under the private scalar. The same key always gives the same secret, and
        the secret reveals nothing of the key (e.g. the key of redaction digests)."""
        scalar = self._key.private_numbers().private_value
        return hmac.new(scalar.to_bytes(66, "big"), label, hashlib.sha256).digest()

    @property
    def curve(self) -> str:
        """`P-384` or `P-256`."""
        return curve_name(self._key)
