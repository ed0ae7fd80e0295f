"""What can be checked offline of a domain-identity signature (Webrecorder's signing spec):
that the signature matches the leaf certificate it names. Whether that certificate
chains to an authority anyone should trust, and the signing-time countersignature,
need the signing service's roots: not checked here, and the report says so."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


@dataclass(frozen=True)
class DomainSignature:
    matches: bool | None        # None: the certificate or signature cannot be read
    detail: str


def check_domain_signature(signed: dict) -> DomainSignature:
    try:
        certs = x509.load_pem_x509_certificates(str(signed.get("domainCert", "")).encode("ascii"))
        leaf = certs[0]
        signature = base64.b64decode(str(signed.get("signature", "")), validate=True)
        message = str(signed.get("hash", "")).encode("ascii")
        key = leaf.public_key()         # parsed only now: a damaged key raises here
    except (ValueError, IndexError, UnicodeEncodeError):
        return DomainSignature(None, "its certificate or signature cannot be read")
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            return DomainSignature(None, "its certificate holds a key type this tool does not check")
    except InvalidSignature:
        return DomainSignature(False, "the signature does not match the certificate it names")
    try:
        subject = leaf.subject.rfc4514_string()
        issuer = leaf.issuer.rfc4514_string()
        valid = f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}"
    except ValueError:
        return DomainSignature(True, "the signature matches its certificate, whose names and dates "
                                     "cannot be read")
    return DomainSignature(True, f"the signature matches the certificate {subject} issued by "
                                 f"{issuer} (valid {valid})")
