"""A Time Stamping Authority for the tests: a certificate authority made with
cryptography, and an HTTP server on 127.0.0.1 that answers RFC 3161 requests with real
responses (CMS SignedData over a TSTInfo, ESS signing-certificate-v2 attribute, as
openssl and commercial TSAs produce them), built with asn1crypto.

Modes make it misbehave the ways a real authority can: `slow` (answers after a long
wait), `garbage` (HTTP 200 with junk), `reject` (status rejection), `wrong-hash` (a valid
token over another hash), `http-error` (HTTP 500), `trickle` (a real answer, a byte at
a time, each within any per-read timeout) and `trickle-headers` (the same for the headers).
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import algos, cms, core, tsp, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.site import serving_thread

POLICY = "1.3.6.1.4.1.99999.1.1"   # a private-arc policy OID for the test TSA
UTC = datetime.timezone.utc


@dataclass
class TsaCredentials:
    ca_cert: x509.Certificate
    tsa_cert: x509.Certificate
    tsa_key: rsa.RSAPrivateKey

    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.ca_pem())
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Archive Test Trust"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, issuer_key, extensions,
                 days: tuple[int, int] = (-1, 3650)):
    """A certificate valid from yesterday for ten years (or from and to `days` from now),
    with (extension, critical) pairs."""
    now = datetime.datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tsa_credentials(label: str = "Test", usage=ExtendedKeyUsageOID.TIME_STAMPING,
                         days: tuple[int, int] = (-1, 3650)) -> TsaCredentials:
    """A root CA and a TSA certificate it issued (critical EKU timeStamping, RFC 3161 2.3;
    or another `usage`, None for no EKU at all; valid over `days` from now)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{label} TSA Root CA")
    ca_cert = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
    ])
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tsa_cert = _certificate(_name(f"{label} Time Stamping Authority"), ca_name, tsa_key.public_key(), ca_key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(True, True, False, False, False, False, False, False, False), True),
        *([(x509.ExtendedKeyUsage([usage]), True)] if usage else []),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
    ], days)
    return TsaCredentials(ca_cert, tsa_cert, tsa_key)


def make_self_signed_tsa_credentials(label: str = "Lone") -> TsaCredentials:
    """A TSA whose own certificate is self-signed (no CA above it), as small authorities run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(f"{label} Time Stamping Authority")
    cert = _certificate(name, name, key.public_key(), key, [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True),
    ])
    return TsaCredentials(cert, cert, key)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def issue_response(request_der: bytes, creds: TsaCredentials, serial: int,
                   gen_time: datetime.datetime | None = None,
                   imprint_override: bytes | None = None, accuracy: int = 1) -> bytes:
    """A granted TimeStampResp (DER) answering the DER TimeStampReq."""
    request = tsp.TimeStampReq.load(request_der)
    imprint = request["message_imprint"]
    if imprint_override is not None:
        imprint = tsp.MessageImprint({
            "hash_algorithm": imprint["hash_algorithm"], "hashed_message": imprint_override})
    gen_time = (gen_time or datetime.datetime.now(UTC)).replace(microsecond=0)
    info = {
        "version": "v1",
        "policy": POLICY,
        "message_imprint": imprint,
        "serial_number": serial,
        "gen_time": gen_time,
        "accuracy": {"seconds": accuracy},
        "ordering": False,
    }
    if request["nonce"].native is not None:
        info["nonce"] = request["nonce"].native
    tst_info = tsp.TSTInfo(info)
    tst_der = tst_info.dump()
    tsa_asn1 = asn1_x509.Certificate.load(_der(creds.tsa_cert))
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": gen_time})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({
            "certs": [tsp.ESSCertIDv2({
                "hash_algorithm": {"algorithm": "sha256"},
                "cert_hash": hashlib.sha256(_der(creds.tsa_cert)).digest(),
                "issuer_serial": {
                    "issuer": [asn1_x509.GeneralName({"directory_name": tsa_asn1.issuer})],
                    "serial_number": tsa_asn1.serial_number,
                },
            })],
        })]}),
    ])
    # The signature covers the DER of the attributes as a SET (RFC 5652 5.4).
    signature = creds.tsa_key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": tsa_asn1.issuer, "serial_number": tsa_asn1.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
        "signature": signature,
    })
    signed_data = {
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": cms.EncapsulatedContentInfo({
            "content_type": "tst_info", "content": core.ParsableOctetString(tst_der)}),
        "signer_infos": [signer_info],
    }
    if request["cert_req"].native:
        signed_data["certificates"] = [tsa_asn1]
    token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
    return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


def rejection() -> bytes:
    """A TimeStampResp with status rejection and no token. (asn1crypto's TimeStampResp
    wrongly requires the token, so the outer SEQUENCE is written here.)"""
    info = tsp.PKIStatusInfo({
        "status": "rejection", "status_string": ["test TSA refuses"],
        "fail_info": {"bad_request"}}).dump()
    assert len(info) < 128
    return b"\x30" + bytes([len(info)]) + info


class TestTsa:
    """`with TestTsa(creds) as tsa: tsa.url` — modes as in the module docstring."""

    __test__ = False  # not a pytest class

    def __init__(self, creds: TsaCredentials, mode: str = "ok", delay: float = 60.0) -> None:
        self.creds = creds
        self.mode = mode
        self.delay = delay
        self.requests = 0
        self._serials = itertools.count(1)
        self._released = threading.Event()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                tsa.requests += 1
                status, data = tsa._answer(body, self.headers.get("Content-Type", ""))
                if tsa.mode.startswith("trickle"):
                    return tsa._trickle(self, data)
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass   # the client gave up (the slow mode)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/tsr"
        self._thread = serving_thread(self._server)

    def _trickle(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        """Send the answer (headers too, in `trickle-headers`) one byte every 0.2 s."""
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        if self.mode == "trickle":
            handler.wfile.write(head)
        slow = (head if self.mode == "trickle-headers" else b"") + data
        try:
            for i in range(len(slow)):
                if self._released.wait(0.2):
                    return
                handler.wfile.write(slow[i:i + 1])
                handler.wfile.flush()
        except OSError:
            pass   # the client gave up

    def _answer(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        if content_type != "application/timestamp-query":
            return 400, b"not a timestamp query"
        if self.mode == "slow":
            self._released.wait(self.delay)
        if self.mode == "garbage":
            return 200, b"<html>this is not a timestamp response</html>"
        if self.mode == "http-error":
            return 500, b"internal error"
        if self.mode == "reject":
            return 200, rejection()
        try:
            tsp.TimeStampReq.load(body).native
        except Exception:  # noqa: BLE001 - any parse failure is a bad request
            return 400, b"bad request"
        override = hashlib.sha256(b"some other document").digest() if self.mode == "wrong-hash" else None
        return 200, issue_response(body, self.creds, next(self._serials), imprint_override=override)

    def __enter__(self) -> "TestTsa":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
