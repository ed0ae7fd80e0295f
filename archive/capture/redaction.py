"""Secrets never sealed: the one redaction every request record goes through.

Whatever writes a request record (the HTTP crawler, the browser's recording proxy, the
media downloads' proxy) writes it through capture.exchange.write_exchange, which hands
the request as sent to `Redaction.redact`. The value of each secret header (Cookie,
Authorization, Proxy-Authorization and those named with --secret-header) is replaced by
a marker that names the header and carries a keyed digest of the value:

    Authorization: [redacted Authorization hmac-sha256:<hex>]
    Cookie: [redacted Cookie sid=hmac-sha256:<hex>; theme=hmac-sha256:<hex>]

The digest is HMAC-SHA256 of the value's bytes (of each cookie's value, for Cookie)
under a key that is not in the capture: derived from the signing key (so two captures
signed with one key show the same digest for the same session), or random for an
unsigned capture (comparable within it only). Without the key a digest says nothing
about the value, however short or guessable the value is.

Responses are never altered: what a server sent is the evidence. Their Set-Cookie
headers are only read, to name (never to copy) the session cookies a capture received.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

# Request headers that carry credentials whatever the operator says.
DEFAULT_SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
REASON = "credentials sent by the capture are never sealed"
# Cookies whose names say they hold a session or a login, when the capture was given
# credentials: their Set-Cookie in a response is a session to end after the capture.
SESSION_LIKE = re.compile(r"sess|sid|auth|token|login|jwt|remember|csrf|xsrf|user", re.I)
DIGEST_PREFIX = "hmac-sha256:"
MAX_LISTED = 1000      # distinct redacted values or session cookies named in the evidence


def marker(header: str, digests: str) -> str:
    """What replaces a secret header's value in a request record."""
    return f"[redacted {header} {digests}]"


@dataclass(frozen=True)
class Redacted:
    """One secret value replaced in one request record."""

    header: str                 # as the request spelled it
    digest: str                 # hmac-sha256:<hex>
    cookie: str | None = None   # for Cookie: which cookie

    def to_json(self) -> list:
        return [self.header, self.cookie, self.digest]


@dataclass
class Redaction:
    """Which request headers are secret and the key their digests are made with."""

    secret_headers: frozenset = frozenset(DEFAULT_SECRET_HEADERS)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    key_origin: str = "a random key of this run (digests comparable within it only)"
    # names of the cookies we were given, and whether any credentials were: what makes a
    # Set-Cookie a session credential worth naming
    sent_cookies: frozenset = frozenset()
    credentials_given: bool = False

    @classmethod
    def make(cls, extra_secret: list[str] | tuple = (), key: bytes | None = None,
             key_origin: str | None = None, sent_cookies: list[str] | tuple = (),
             credentials_given: bool = False) -> "Redaction":
        made = cls(frozenset(DEFAULT_SECRET_HEADERS) | {h.strip().lower() for h in extra_secret},
                   sent_cookies=frozenset(sent_cookies), credentials_given=credentials_given)
        if key is not None:
            made.key, made.key_origin = key, key_origin or "a key given to the capture"
        return made

    def digest(self, value: bytes) -> str:
        return DIGEST_PREFIX + hmac.new(self.key, value, hashlib.sha256).hexdigest()

    def is_secret(self, name: str) -> bool:
        return name.strip().lower() in self.secret_headers

    def redact(self, request: bytes) -> tuple[bytes, list[Redacted]]:
        """The request as sent with the value of every secret header replaced by its
        marker; and what was replaced. The request line and body are untouched."""
        end = request.find(b"\r\n\r\n")
        head, rest = (request[:end], request[end:]) if end >= 0 else (request, b"")
        lines, done = head.split(b"\r\n"), []
        for i, line in enumerate(lines[1:], 1):
            raw_name, sep, raw_value = line.partition(b":")
            name = raw_name.strip().decode("latin-1")
            if not sep or not self.is_secret(name):
                continue
            value = raw_value.strip()
            if name.lower() == "cookie":
                found = self._cookies(name, value)
                shown = "; ".join(f"{r.cookie}={r.digest}" for r in found)
            else:
                found = [Redacted(name, self.digest(value))]
                shown = found[0].digest
            lines[i] = raw_name + b": " + marker(name, shown).encode("latin-1", "replace")
            done += found
        return b"\r\n".join(lines) + rest, done

    def _cookies(self, header: str, value: bytes) -> list[Redacted]:
        found = []
        for pair in value.split(b";"):
            name, _, cookie_value = pair.strip().partition(b"=")
            if name or cookie_value:
                # a cookie's name is not a secret (it says which session), its value is
                shown = re.sub(r"[^A-Za-z0-9_.~!$&'*+^`|-]", "?", name.decode("latin-1"))
                found.append(Redacted(header, self.digest(cookie_value), shown or "?"))
        return found

    def session_cookies(self, set_cookies: list[str]) -> list[str]:
        """The names, among `Set-Cookie` values a response carried, of the cookies that
        hold the session we were given (one we sent, or session-like when we were given
        credentials at all)."""
        names = []
        for header in set_cookies:
            name = header.split(";", 1)[0].partition("=")[0].strip()
            if name and (name in self.sent_cookies
                         or (self.credentials_given and SESSION_LIKE.search(name))):
                names.append(name)
        return names


def set_cookie_values(head: bytes) -> list[str]:
    """Every Set-Cookie value of a response head (a dict of headers keeps only one)."""
    values = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"set-cookie":
            values.append(value.strip().decode("latin-1"))
    return values
