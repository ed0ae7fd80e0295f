"""Checks of RFC 3161 timestamp tokens over datapackage.json.

A token proves that datapackage.json (so, through its hashes, every file of the
capture) existed no later than the time the TSA states, if and only if: its message
imprint is the hash of these datapackage.json bytes, its signature holds, and the
TSA's certificate chains to a certificate the user trusts (`--trust-tsa`). Nothing in
the file is trusted by itself. Signature and chain checks are rfc3161-client's.

Policy: trusted time is a statement on top of integrity. No token, or tokens from TSAs
the user does not trust, leave the capture verifiable with "no trusted time" said
plainly (warn); a token that is altered or belongs to other data is a failure.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import PKIStatus, VerificationError, VerifierBuilder, decode_timestamp_response

from archive import utctime
from archive.errors import ArchiveError
from archive.files import read_at_most
from archive.seal.timestamp import MAX_TOKENS, TOKEN_ERRORS, quiet_certificates, token_bytes
from archive.values import count
from archive.reader.problems import Problem
from archive.wacz.names import CAPTURE, DIGEST

CERTIFICATES_LIMIT = 16 << 20       # a --trust-tsa file: a whole CA bundle is well under 1 MiB
TRUSTED, UNTRUSTED, UNCHECKED, INVALID, MISSING = "trusted", "untrusted", "unchecked", "invalid", "missing"
IMPRINT_HASHES = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
# What OpenSSL's PKCS7_verify says when no certificate the user trusts ends the chain
# (as opposed to a chain or signature that is wrong, which is an altered token); the
# last two (and the chain ones) also cover a TSA whose own certificate is self-signed.
UNTRUSTED_ERRORS = ("unable to get local issuer certificate", "unable to get issuer certificate",
                    "self-signed certificate", "self signed certificate")

# OpenSSL's words for a chain that holds but may not sign timestamps then, in plain ones
# (OpenSSL checks them at the token's own time: "system clock" would mislead)
CHAIN_REASONS = {
    "unsuitable certificate purpose": "the certificate that signed it is not a time-stamping one "
                                      "(RFC 3161: extended key usage timeStamping only, critical)",
    "certificate is not yet valid": "a certificate of its chain is not yet valid",
    "certificate has expired": "a certificate of its chain has expired",
    "invalid CA certificate": "a certificate above the TSA's is not a CA's",
}


@dataclass
class TokenCheck:
    source: str                 # where the token was found
    tsa: str | None             # the URL it was asked from (a claim, as recorded)
    state: str                  # trusted / untrusted / unchecked / invalid / missing
    message: str
    time: str | None = None     # genTime stated in the token
    authority: str | None = None  # subject of the certificate that signed it
    later: bool = False         # added after sealing (kept beside the capture in the store)
    accuracy: float | None = None  # seconds either side of `time`, as the TSA states it

    def to_dict(self) -> dict:
        return asdict(self)


def load_tsa_certificates(paths: list[str] | None) -> list[x509.Certificate]:
    """Certificates from PEM (bundles allowed) or DER files; a one-line error otherwise."""
    certs: list[x509.Certificate] = []
    for path in paths or []:
        try:
            data = read_at_most(path, CERTIFICATES_LIMIT)      # /dev/zero never ends
        except OSError as exc:
            raise ArchiveError(f"cannot read TSA certificate {path}: {exc.strerror}") from None
        except ValueError:
            raise ArchiveError(f"{path} is larger than any certificate bundle ({CERTIFICATES_LIMIT >> 20} MiB)") from None
        try:
            certs += (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                      else [x509.load_der_x509_certificate(data)])
        except ValueError:
            raise ArchiveError(f"{path} is not an X.509 certificate (PEM or DER)") from None
    return certs


def _signer(response) -> tuple[x509.Certificate | None, str | None]:
    """The certificate that signed a token (when it carries it) and its subject; raises
    TOKEN_ERRORS when the token's certificates or signer cannot be read."""
    infos = list(response.signed_data.signer_infos)
    certs = [x509.load_der_x509_certificate(c) for c in response.signed_data.certificates]
    for cert in certs:
        if infos and cert.issuer == infos[0].issuer and cert.serial_number == infos[0].serial_number:
            return cert, cert.subject.rfc4514_string()
    return None, (infos[0].issuer.rfc4514_string() + " (issuer; certificate not in token)" if infos else None)


def _untrusted_message(signer: x509.Certificate | None, authority: str | None,
                       roots: list[x509.Certificate]) -> str:
    """Why a token is not trusted, naming its signer (several tokens may share one check)."""
    message = f"token by {authority}: its certificate does not chain to a TSA certificate you trust"
    if signer is not None and any(signer == root for root in roots):
        # what TSAs publish beside their root CA; openssl ts -verify -CAfile refuses it too
        message += (" (the --trust-tsa certificate you gave is the TSA's own, not a root: give the "
                    "root CA certificate that issued it)")
    return message


def check_token(entry: dict, datapackage: bytes, roots: list[x509.Certificate],
                source: str, later: bool = False) -> TokenCheck:
    """Check one entry of a `timestamps` list against the datapackage.json bytes."""
    if not isinstance(entry, dict):
        return TokenCheck(source, None, INVALID, "timestamp entry is not an object", later=later)
    tsa = entry.get("tsa") if isinstance(entry.get("tsa"), str) else None
    if entry.get("token") is None:
        # the entry is outside the signature: its reason is what the file says, not a fact
        reason = entry.get("error") or "no reason recorded"
        return TokenCheck(source, tsa, MISSING, f"no token from {tsa} (the capture says: {reason})", later=later)
    der = token_bytes(entry)
    if der is None:
        return TokenCheck(source, tsa, INVALID, "token is not base64", later=later)
    try:
        response = decode_timestamp_response(der)
        if response.status != PKIStatus.GRANTED:
            return TokenCheck(source, tsa, INVALID, f"token status is {response.status}, not granted", later=later)
        info = response.tst_info
        algorithm = IMPRINT_HASHES.get(info.message_imprint.hash_algorithm.dotted_string)
        imprint, gen_time = info.message_imprint.message, utctime.seconds(info.gen_time)
        accuracy = _seconds(info.accuracy)
    except TOKEN_ERRORS as exc:
        return TokenCheck(source, tsa, INVALID, f"token cannot be read: {str(exc)[:120]}", later=later)
    try:
        signer, authority = _signer(response)
    except TOKEN_ERRORS as exc:
        return TokenCheck(source, tsa, INVALID, f"token's certificates cannot be read: {str(exc)[:120]}",
                          gen_time, later=later)
    result = TokenCheck(source, tsa, INVALID, "", gen_time, authority, later, accuracy)
    if algorithm is None:
        result.message = "token imprint uses an unsupported hash algorithm"
        return result
    expected = hashlib.new(algorithm, datapackage).digest()
    if imprint != expected:
        result.message = (f"token is over another hash ({algorithm}:{imprint.hex()[:16]}...), "
                          "not over this datapackage.json")
        return result
    if not roots:
        result.state = UNCHECKED
        result.message = f"token states {gen_time}; not checked: no TSA certificate trusted (--trust-tsa)"
        return result
    if not response.signed_data.certificates:
        # RFC 3161 lets a TSA leave its certificate out (certReq false): then nothing
        # links the token to a certificate you trust. Not an altered token for that.
        result.state = UNTRUSTED
        result.message = (f"token carries no certificate, so who signed it ({authority}) cannot be "
                          "checked against the TSA certificates you trust")
        return result
    builder = VerifierBuilder()
    for root in _unique(roots):
        builder = builder.add_root_certificate(root)
    try:
        builder.build().verify(response, expected)
    except TOKEN_ERRORS as exc:
        result.message = f"token cannot be checked: {str(exc)[:120]}"
        return result
    except VerificationError as exc:
        text = str(exc)
        if any(marker in text for marker in UNTRUSTED_ERRORS):
            result.state = UNTRUSTED
            result.message = _untrusted_message(signer, authority, roots)
        else:
            result.message = "token does not verify: " + _reason(text)
        return result
    result.state = TRUSTED
    result.message = f"datapackage.json existed by {gen_time}, attested by {authority}"
    return result


def _seconds(accuracy) -> float | None:
    """A TSTInfo accuracy (seconds, millis, micros; RFC 3161 2.4.2) in seconds."""
    if accuracy is None:
        return None
    parts = (accuracy.seconds, accuracy.millis, accuracy.micros)
    return sum((part or 0) * scale for part, scale in zip(parts, (1, 1e-3, 1e-6)))


def clock_clash(best: TokenCheck | None, started: object) -> str | None:
    """When a capture says it started after the time a trusted token attests it already
    existed: its own clock (so every time it states) was ahead, or its times are false."""
    if best is None or best.time is None or not isinstance(started, str):
        return None
    try:
        said = datetime.fromisoformat(started)
        attested = datetime.fromisoformat(best.time)
        ahead = (said - attested).total_seconds() - (best.accuracy or 0) - 1   # 1: whole seconds
    except (ValueError, TypeError):     # a time without a zone cannot be compared
        return None
    if ahead <= 0:
        return None
    return (f"the capture says it started at {started}, yet a TSA you trust attests it existed by "
            f"{best.time}: the capturing machine's clock was at least {ahead:.0f}s ahead, or the "
            "times the capture states are false (only the trusted time holds)")


FUTURE_SLACK = 300      # seconds a trusted token may be ahead of this machine's clock unremarked


def future_token(best: TokenCheck | None, now: datetime | None = None) -> str | None:
    """When the trusted time is later than now: the TSA's clock was wrong when it signed,
    or this machine's clock is wrong now; either way the time it attests is not a fact."""
    if best is None or best.time is None:
        return None
    try:
        attested = datetime.fromisoformat(best.time)
        now = now or datetime.now(attested.tzinfo)
        ahead = (attested - now).total_seconds() - (best.accuracy or 0)
    except (ValueError, TypeError, OverflowError):
        return None
    if ahead <= FUTURE_SLACK:
        return None
    return (f"the trusted token of {best.authority} is dated {best.time}, {ahead:.0f}s after this "
            "machine's clock: the TSA's clock was wrong when it signed, or this clock is wrong now")


def removed_entries(sealed: object, evidence: object) -> str | None:
    """When the file holds fewer timestamp entries than TSAs were asked at sealing (the
    count is in the signed capture.json; each TSA asked leaves an entry, token or error):
    entries were removed from the digest file, which the signature does not cover."""
    asked = evidence.get("timestampsAsked") if isinstance(evidence, dict) else None
    if not isinstance(asked, int) or isinstance(asked, bool):
        return None     # sealed before the count was recorded, or not ours
    held = len(sealed) if isinstance(sealed, list) else 0
    if held >= asked:
        return None
    return (f"{asked - held} of the {asked} timestamp entries made at sealing were removed: "
            f"{CAPTURE} (signed) says {asked} TSA(s) were asked, the file holds {held}")


def _reason(text: str) -> str:
    """A readable reason out of rfc3161-client's message (which embeds OpenSSL's error stack)."""
    if 'Verify error: ' in text:
        error = text.split('Verify error: ', 1)[1].split('"', 1)[0]
        plain = next((words for marker, words in CHAIN_REASONS.items() if error.startswith(marker)), error)
        return plain + " (at the time the token states)"
    if "signature failure" in text or "padding check failed" in text:
        return "its signature does not match its content"
    return text.split(": ErrorStack")[0][:160]


def _unique(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    seen, out = set(), []
    for cert in certs:
        der = cert.public_bytes(Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return out


def check_timestamps(sealed: object, later: list[tuple[str, dict]], datapackage: bytes,
                     roots: list[x509.Certificate]) -> list[TokenCheck]:
    """Every token: those in datapackage-digest.json (`sealed`, the raw `timestamps`
    value) and those added later (`later`: (where, entry) pairs from the store)."""
    if sealed is None:
        sealed = []
    if not isinstance(sealed, list):
        return [TokenCheck(DIGEST, None, INVALID, "`timestamps` is not a list")]
    if len(sealed) + len(later) > MAX_TOKENS:
        # tokens are outside the signature: a flood of them would cost time and memory
        # out of all proportion (and bury the real ones in the report); refused whole
        return [TokenCheck(DIGEST, None, INVALID,
                           f"{len(sealed)} timestamp entries in the capture and {len(later)} beside it: more "
                           f"than any capture has (at most {MAX_TOKENS}), so none was checked")]
    with quiet_certificates():
        results = [check_token(e, datapackage, roots, DIGEST) for e in sealed]
        results += [check_token(e, datapackage, roots, where, later=True) for where, e in later]
    return results


def _latest(result: TokenCheck) -> float:
    """The latest moment (POSIX seconds) a token lets its data have existed by: the time
    it states plus the accuracy it states (RFC 3161 2.4.2); inf when that cannot be read."""
    try:
        return datetime.fromisoformat(result.time).timestamp() + (result.accuracy or 0)
    except (TypeError, ValueError, OverflowError):
        return math.inf


def within(accuracy: float | None) -> str:
    """A token's stated accuracy, to follow its time in a report ("" when it states none)."""
    return f" ±{accuracy:g}s" if accuracy else ""


def trusted_time(results: list[TokenCheck]) -> TokenCheck | None:
    """The trusted token with the earliest time its data existed by, accuracy counted: the
    strongest statement of when the capture existed (an hour earlier give or take a day
    says less than a second earlier give or take a second)."""
    trusted = [r for r in results if r.state == TRUSTED]
    return min(trusted, key=_latest) if trusted else None


def summarize(results: list[TokenCheck], have_roots: bool) -> tuple[str, str, list[Problem]]:
    """(status, one-line summary, problems) for the `timestamps` check of a report."""
    problems = [Problem(r.message, r.source) for r in results if r.state in (INVALID, MISSING, UNTRUSTED)]
    invalid = [r for r in results if r.state == INVALID]
    tokens = [r for r in results if r.state != MISSING]
    best = trusted_time(results)
    if invalid:
        # not always "altered": a token may hold yet be signed by a certificate not fit for it
        others = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
        verb = "does" if len(invalid) == 1 else "do"
        return "fail", f"{count(len(invalid), 'timestamp token')} {verb} not hold: {invalid[0].message}{others}", problems
    if best is not None:
        later = " (token added after sealing)" if best.later else ""
        return "pass", (f"trusted time: datapackage.json existed by {best.time}{within(best.accuracy)}{later}, "
                        f"attested by {best.authority}"), problems
    if not tokens:
        missing = len(results)
        return "warn", ("no trusted time: the capture holds no RFC 3161 timestamp token"
                        + (f" ({missing} TSA request(s) at sealing gave none)" if missing else "")), problems
    if not have_roots:
        return "warn", (f"no trusted time: {len(tokens)} token(s) present, not checked "
                        "(give the TSA's CA certificate with --trust-tsa)"), problems
    return "warn", (f"no trusted time: {len(tokens)} token(s) present, none from a TSA "
                    "certificate you trust"), problems
