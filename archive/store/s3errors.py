"""botocore exceptions -> one-line ArchiveErrors that say what to do (never credentials)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from botocore.exceptions import (
    BotoCoreError, ClientError, ConnectionError as BotoConnectionError, NoCredentialsError,
    NoRegionError, ParamValidationError, PartialCredentialsError, ReadTimeoutError,
)

from archive.errors import AlreadyExists, ArchiveError, NotFound

CREDENTIAL_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
    "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidClientTokenId",
    "UnrecognizedClientException",
}
NO_CREDENTIALS = ("no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY, or run with an instance role")


class Locked(ArchiveError):
    """The service refused to delete or change an object (Object Lock or permissions)."""


def error_code(exc: ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a ClientError."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", status)), int(status or 0)


def redact_url(text: str) -> str:
    """`text` without the userinfo of any URL in it (http://user:secret@host -> http://host)."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", str(text))


def _one_line(text: str) -> str:
    # userinfo in a URL never reaches the terminal
    return " ".join(redact_url(text).split())


def translate(exc: Exception, what: str) -> ArchiveError:
    """The ArchiveError to show for `exc`, raised while doing `what` (e.g. `s3://b/k`)."""
    if isinstance(exc, ArchiveError):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ArchiveError(NO_CREDENTIALS)
    if isinstance(exc, NoRegionError):
        return ArchiveError("no AWS region configured: set AWS_REGION or a profile's region")
    if isinstance(exc, (BotoConnectionError, ReadTimeoutError)):
        return ArchiveError(f"{what}: cannot reach the S3 endpoint ({_one_line(exc)})")
    if isinstance(exc, ParamValidationError):
        return ArchiveError(f"{what}: invalid S3 request ({_one_line(exc)})")
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        message = _one_line(exc.response.get("Error", {}).get("Message", "") or code)
        if code == "NoSuchBucket":
            return NotFound(f"{what}: the bucket does not exist")
        if code in ("NoSuchKey", "NotFound", "NoSuchVersion") or status == 404:
            return NotFound(f"{what}: not found")
        if code == "PreconditionFailed" or status == 412:
            return AlreadyExists(f"{what}: already exists; it is never overwritten")
        if code in CREDENTIAL_CODES:
            return ArchiveError(f"{what}: the S3 service rejected the credentials ({code})")
        if code == "AccessDenied" or status == 403:
            return Locked(f"{what}: access denied by the S3 service ({message})")
        if status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout"):
            return ArchiveError(f"{what}: the S3 service kept failing after retries ({code}: {message})")
        return ArchiveError(f"{what}: S3 error {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return ArchiveError(f"{what}: {_one_line(exc)}")
    return ArchiveError(f"{what}: {type(exc).__name__}: {_one_line(exc)}")


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turn botocore exceptions raised inside into ArchiveErrors about `what`."""
    try:
        yield
    except ArchiveError:
        raise
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, what) from exc
