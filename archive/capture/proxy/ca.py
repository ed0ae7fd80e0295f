"""The throwaway certificate authority our recording proxy uses to read the browser's
HTTPS traffic: made fresh for each capture, kept only in memory and a private temporary
folder, and trusted by that capture's browser alone (by the SHA-256 of its leaf key).

The certificates it issues are never evidence: what the real server presented is
recorded by the proxy from its own upstream connection.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "archive capture proxy (not evidence)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
    ])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class InterceptionCA:
    """Issues server certificates for the hosts the browser asks the proxy to reach.

    Every leaf shares one key, so the browser can be told to accept exactly that key
    (`spki_hash`) and nothing else. The leaf key is on disk only while a context loads
    it (the ssl module loads keys from files), so a capture killed -9 leaves no key
    behind in the temporary folder.
    """

    def __init__(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        self._not_before = now - datetime.timedelta(hours=1)
        self._not_after = now + VALIDITY
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_name = _name("archive capture proxy CA")
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(self._ca_name).issuer_name(self._ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before).not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self._key_pem = _pem_key(self._leaf_key)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @property
    def spki_hash(self) -> str:
        """base64 SHA-256 of the leaves' SubjectPublicKeyInfo, the form Chromium's
        --ignore-certificate-errors-spki-list takes."""
        der = self._leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")

    def _leaf(self, host: str) -> x509.Certificate:
        try:
            alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        return (
            x509.CertificateBuilder()
            .subject_name(_name(host)).issuer_name(self._ca_name)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before).not_valid_after(self._not_after)
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._ca_key, hashes.SHA256())
        )

    def server_context(self, host: str) -> ssl.SSLContext:
        """A server-side TLS context presenting a certificate for `host` (HTTP/1.1 only)."""
        host = host.lower()
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                with tempfile.TemporaryDirectory(prefix="archive-proxy-ca-") as folder:
                    chain, key = Path(folder) / "chain.pem", Path(folder) / "leaf.key"
                    chain.write_bytes(
                        self._leaf(host).public_bytes(serialization.Encoding.PEM)
                        + self.ca_cert.public_bytes(serialization.Encoding.PEM)
                    )
                    key.write_bytes(self._key_pem)
                    context.load_cert_chain(chain, key)
                # The recorded exchange is HTTP/1.1 bytes: the browser must not pick h2.
                context.set_alpn_protocols(["http/1.1"])
                self._contexts[host] = context
            return context

    def close(self) -> None:
        """Forget the contexts (nothing is left on disk to remove)."""
        with self._lock:
            self._contexts.clear()
