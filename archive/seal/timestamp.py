"""RFC 3161 timestamp tokens from Time Stamping Authorities, over datapackage.json.

A token's message imprint is the SHA-256 of the datapackage.json bytes, so
`openssl ts -verify -data datapackage.json -in token.tsr -CAfile tsa-ca.pem` checks it.
Each TSA asked gives one entry for the top-level `timestamps` list of
datapackage-digest.json (FACTS.md):

    {"tsa": URL, "imprint": "sha256:<hex>", "token": base64 DER TimeStampResp,
     "time": genTime as the TSA states it, "requested": our clock}

or, when the TSA is down, slow or answers nonsense, the same without `token` and with
`error`: a missing token is recorded, never hidden, and never stops a capture.

Here a response is only checked for being the answer to our request (granted, over
our hash, with our nonce); whether the TSA is trusted is for verification to decide.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import datetime
from typing import Callable, Iterator

from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import InvalidVersion, ObjectIdentifier
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

from archive import SOFTWARE, utctime
from archive.errors import ArchiveError

DEFAULT_TIMEOUT = 15.0              # seconds for one TSA, connection to last byte
MAX_RESPONSE = 1 << 20              # a token is a few KB; anything near this is hostile
MAX_TOKENS = 100                    # of one capture, sealed and added later: a few TSAs, a few times
SHA256_OID = ObjectIdentifier("2.16.840.1.101.3.4.2.1")
QUERY_TYPE = "application/timestamp-query"
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")   # DER of 1.2.840.113549.1.7.2
GRANTED = bytes.fromhex("3003020100")                       # PKIStatusInfo {status granted}

Timestamper = Callable[[bytes], list[dict]]
# What rfc3161-client and cryptography raise on the parts of a damaged or hostile token
# they read lazily (a certificate with an impossible version, a signer name that does
# not parse): such a token is unreadable, never a crash.
TOKEN_ERRORS = (ValueError, KeyError, InvalidVersion)


@contextmanager
def quiet_certificates() -> Iterator[None]:
    """Keep cryptography's warnings about certificates it will refuse one day (a serial
    number that is not positive) off stderr: OpenSSL takes them, and what is wrong with a
    token is said in the report, not in lines around it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


class TimestampError(ArchiveError):
    """A TSA gave no usable token; the message says why, in one line."""


def _post(url: str, body: bytes, timeout: float) -> bytes:
    """POST a query and read the answer within `timeout` seconds in total.

    requests' timeout bounds each socket read, not the whole exchange: a TSA that
    trickles its headers or body a byte at a time would hold the capture for hours. So
    the exchange runs in a daemon thread the caller stops waiting for at the deadline
    (the thread, reading one socket read at a time, gives up soon after)."""
    outcome: dict = {}

    def exchange() -> None:
        try:
            outcome["data"] = _exchange(url, body, timeout, time.monotonic() + timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, name="tsa-request", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimestampError(f"TSA did not answer within {timeout:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _exchange(url: str, body: bytes, timeout: float, deadline: float) -> bytes:
    import requests     # here: `archive verify` loads this module but never asks a TSA
    import urllib3      # (raw reads raise urllib3's errors, not requests')

    try:
        with requests.post(
            url, data=body, timeout=(timeout, timeout), stream=True,
            headers={"Content-Type": QUERY_TYPE, "User-Agent": SOFTWARE},
        ) as response:
            if response.status_code != 200:
                raise TimestampError(f"TSA answered HTTP {response.status_code}")
            data = bytearray()
            while True:
                if time.monotonic() > deadline:
                    raise TimestampError(f"TSA did not answer within {timeout:g}s")
                # read1: what one socket read gives, so the deadline is checked as bytes trickle in
                chunk = response.raw.read1(16384)
                if not chunk:
                    return bytes(data)
                data += chunk
                if len(data) > MAX_RESPONSE:
                    raise TimestampError(f"TSA answer is larger than {MAX_RESPONSE} bytes")
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise TimestampError(f"TSA did not answer within {timeout:g}s") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise TimestampError(f"TSA unreachable: {type(exc).__name__}") from None


def request_token(url: str, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> tuple[bytes, datetime]:
    """A TimeStampResp (DER) over SHA-256(data) from the TSA at url, and its genTime.

    Raises TimestampError when the answer is not a granted token for our hash and nonce.
    """
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    answer = _post(url, request.as_bytes(), timeout)
    try:
        response = decode_timestamp_response(answer)
        status = response.status
    except ValueError:
        raise TimestampError("TSA answer is not an RFC 3161 response") from None
    # granted-with-mods tokens are refused by verifiers (rfc3161-client): treat as no token
    if status != PKIStatus.GRANTED:
        text = "; ".join(response.status_string or []) or f"status {status}"
        raise TimestampError(f"TSA refused: {text}")
    try:
        info = response.tst_info
        imprint = info.message_imprint
        algorithm, message, nonce, gen_time = imprint.hash_algorithm, imprint.message, info.nonce, info.gen_time
    except ValueError:
        raise TimestampError("TSA answer holds no readable token") from None
    if algorithm != SHA256_OID or message != hashlib.sha256(data).digest():
        raise TimestampError("TSA token is over another hash than the one asked for")
    if nonce != request.nonce:
        raise TimestampError("TSA token does not carry our nonce (a replayed or foreign answer)")
    return answer, gen_time


def timestamp_entry(url: str, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """One entry of the `timestamps` list: a token, or the reason there is none."""
    entry = {
        "tsa": url,
        "imprint": "sha256:" + hashlib.sha256(data).hexdigest(),
        "requested": utctime.seconds(),
    }
    try:
        token, gen_time = request_token(url, data, timeout)
    except TimestampError as exc:
        return {**entry, "token": None, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - no TSA failure may cost the capture
        return {**entry, "token": None, "error": f"unexpected failure: {type(exc).__name__}: {exc}"}
    return {**entry, "token": base64.b64encode(token).decode("ascii"), "time": utctime.seconds(gen_time)}


def make_timestamper(urls: list[str], timeout: float = DEFAULT_TIMEOUT) -> Timestamper | None:
    """What sealing calls with the datapackage.json bytes; None when no TSA is configured."""
    if not urls:
        return None
    return lambda data: [timestamp_entry(url, data, timeout) for url in urls]


def token_bytes(entry: dict) -> bytes | None:
    """The DER TimeStampResp of an entry, None when it has none or it is not base64."""
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str):
        return None
    try:
        return as_response(base64.b64decode(token, validate=True))
    except ValueError:
        return None


def _der_length(n: int) -> bytes:
    """A DER length: one byte below 128, else the count of the big-endian bytes that follow."""
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


def as_response(der: bytes) -> bytes:
    """A TimeStampResp for a bare TimeStampToken (a CMS ContentInfo holding SignedData, as
    `openssl ts -reply -token_out` writes it), which an entry may hold (FACTS.md): a
    granted status put in front. Anything else is returned as it is."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    start = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)       # after the SEQUENCE's header
    if der[start:start + len(SIGNED_DATA_OID)] != SIGNED_DATA_OID:
        return der
    body = GRANTED + der
    return b"\x30" + _der_length(len(body)) + body
