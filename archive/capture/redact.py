"""The credentials we send, taken out of a request record before it is written: the
values of Cookie and Authorization headers are replaced, and the record's metadata
says which headers were redacted and why. Responses are never altered."""

from __future__ import annotations

from archive.capture.recorder import FetchResult

# Request headers that carry what we were given (cookies, a login): never sealed.
SECRET_HEADERS = {"cookie", "authorization", "proxy-authorization"}
MARKER = b"[redacted]"


def redact_request(request: bytes) -> tuple[bytes, list[str]]:
    """The request as sent with the values of SECRET_HEADERS replaced; and their names."""
    end = request.find(b"\r\n\r\n")
    head, rest = (request[:end], request[end:]) if end >= 0 else (request, b"")
    lines, redacted = head.split(b"\r\n"), []
    for i, line in enumerate(lines[1:], 1):
        name, sep, _ = line.partition(b":")
        if sep and name.strip().lower().decode("latin-1") in SECRET_HEADERS:
            lines[i] = name + b": " + MARKER
            redacted.append(name.strip().decode("latin-1"))
    return b"\r\n".join(lines) + rest, redacted


def redacted_exchange(result: FetchResult, fields: dict) -> dict:
    """Redact `result`'s request in place; `fields` (its metadata) with what was redacted."""
    if not result.request:
        return fields
    result.request, names = redact_request(result.request)
    if not names:
        return fields
    return {**fields, "redacted": [f"{name} request header: credentials given to the capture"
                                   for name in names]}
