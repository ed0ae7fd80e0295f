"""Secrets never sealed: the one redaction every request record goes through.

Whatever writes a request record (the HTTP crawler, the browser's recording proxy, the
media downloads' proxy) writes it through capture.exchange.write_exchange, which hands
the request as sent to `Redaction.redact`. The value of each secret header (Cookie,
Authorization, Proxy-Authorization and those named with --secret-header) is replaced by
a marker that names the header and carries a keyed digest of the value:

    Authorization: [redacted Authorization hmac-sha256:<hex>]
    Cookie: [redacted Cookie sid=hmac-sha256:<hex>; theme=hmac-sha256:<hex>; ?=hmac-sha256:<hex>]

(`?`: a cookie sent without a name, `Cookie: VALUE`: its value is never taken for a name.)

Secrets also travel where no header name says so: a page's script copies a token from
local storage into `X-Auth-Token`, a query string or a JSON body; a framework copies a
cookie into `X-XSRF-TOKEN`; a yt-dlp extractor sends a cookie as `x-csrf-token`. So the
redaction is also given the secret *values* the capture knows (`KnownValues`: the values
of the cookies, secret headers and seed URL credentials it was given, and of the browser
profile's cookies and storage). Then:

- any request header, whatever its name, whose value carries one of them is redacted as
  a secret header is (the evidence says why: it carried a value known to be secret);
- in the request-target and the request body each occurrence (as given, URL-encoded,
  JSON-escaped, base64) is replaced by `(redacted:hmac-sha256:<hex>)`, a marker that
  is at home in a URL, a JSON string or a form; the same marker replaces it in the URL
  the capture records the exchange under (WARC-Target-URI, the index) and in what the
  capture writes of addresses (metadata records, pages.jsonl, capture.json): `url()`,
  `scrub()`. The request's Content-Length is left as sent.

Values shorter than MIN_SECRET bytes are not looked for (every "1" of every request
would go), nor cookie and storage values that read as an address (a URL, a path, a host
name: they would take the capture's own addresses with them); the evidence says so.

The digest is HMAC-SHA256 of the value's bytes (of each cookie's value, for Cookie)
under a key that is not in the capture: derived from the signing key (so two captures
signed with one key show the same digest for the same session), or random for an
unsigned capture (comparable within it only). Without the key a digest says nothing
about the value, however short or guessable the value is.

Responses are never altered: what a server sent is the evidence, even when it echoes a
secret back (a metadata record then says the response's head carries one). Their
Set-Cookie headers are only read, to name (never to copy) the session cookies a capture
received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import quote_from_bytes, urlsplit

# Request headers that carry credentials whatever the operator says.
DEFAULT_SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
REASON = "credentials sent by the capture are never sealed"
CARRIED = "it carried a value known to be secret (one the capture was given to log in with)"
# Cookies whose names say they hold a session or a login, when the capture was given
# credentials: their Set-Cookie in a response is a session to end after the capture.
SESSION_LIKE = re.compile(r"sess|sid|auth|token|login|jwt|remember|csrf|xsrf|user", re.I)
DIGEST_PREFIX = "hmac-sha256:"
MAX_LISTED = 1000      # distinct redacted values or session cookies named in the evidence
MIN_SECRET = 8         # bytes: a shorter known value is not looked for (it would match anything)
# What the evidence calls the parts of a request that are not headers (the names HTTP
# message signatures give them: no header can be named so)
TARGET = "(request-target)"
BODY = "(request-body)"
ECHOED = ("the response's head carries a value known to be secret (sent by this capture); "
          "responses are never altered: it is kept as the server sent it")
# a value that reads as an address is the capture's own business, not a credential
_ADDRESS = re.compile(rb"^/|://|^([a-z0-9-]+\.)+[a-z]{2,}\.?$|^[0-9]+(\.[0-9]+){3}$")
_COOKIE_NAME = re.compile(r"[^A-Za-z0-9_.~!$&'*+^`|-]")


def marker(header: str, digests: str) -> str:
    """What replaces a secret header's value in a request record."""
    return f"[redacted {header} {digests}]"


def value_marker(digests: str) -> str:
    """What replaces a known secret value inside a URL, a body or our own text: nothing
    in it needs escaping in a URL, a JSON string or a form."""
    return f"(redacted:{digests})"


def _base64_cores(value: bytes) -> set[bytes]:
    """The base64 characters that only `value` decides, at the three alignments it may
    have in a longer encoded text (standard and URL-safe alphabets)."""
    cores = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + value)
        core = encoded[(pad * 8 + 5) // 6:(pad + len(value)) * 8 // 6]
        if len(core) >= MIN_SECRET:
            cores |= {core, core.translate(bytes.maketrans(b"+/", b"-_"))}
    return cores


def forms(value: bytes) -> set[bytes]:
    """The ways `value` may be written in a request: as is, URL-encoded (as Python,
    encodeURIComponent and forms do, either hex case), JSON-escaped, base64."""
    found = {value}
    for safe in (b"", b"-_.!~*'()"):
        encoded = quote_from_bytes(value, safe=safe).encode("ascii")
        found |= {encoded, encoded.replace(b"%20", b"+"),
                  re.sub(rb"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        for ascii_only in (True, False):
            escaped = json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode("utf-8")
            found |= {escaped, escaped.replace(b"/", b"\\/")}
    return found | _base64_cores(value)


@dataclass(frozen=True)
class KnownValues:
    """The secret values a capture was given, as the forms to look for in what it sends."""

    forms: tuple = ()          # (form, value), longest form first
    looked_for: int = 0        # distinct values looked for
    too_short: int = 0         # given, but shorter than MIN_SECRET bytes
    addresses: int = 0         # given, but reading as an address
    # the forms by their first MIN_SECRET bytes: a short text (an address, a header) is
    # looked at window by window rather than searched once for every form
    by_prefix: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, values: Iterable[str | bytes], loose: Iterable[str | bytes] = ()) -> "KnownValues":
        """`values`: secrets whatever they look like (secret headers, passwords);
        `loose`: values of stores that hold other things too (cookies, local storage),
        left out when they read as an address."""
        kept: set[bytes] = set()
        too_short, addresses = set(), set()
        for value, strict in [(v, True) for v in values] + [(v, False) for v in loose]:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            if len(raw) < MIN_SECRET:
                too_short.add(raw)
            elif not strict and _ADDRESS.search(raw):
                addresses.add(raw)
            elif raw not in value_marker(DIGEST_PREFIX).encode():
                kept.add(raw)
        pairs = {form: value for value in sorted(kept, key=len) for form in forms(value)}
        ordered = tuple(sorted(pairs.items(), key=lambda p: -len(p[0])))
        by_prefix: dict = {}
        for form, value in ordered:
            by_prefix.setdefault(form[:MIN_SECRET], []).append((form, value))
        return cls(ordered, len(kept), len(too_short - kept), len(addresses - kept), by_prefix)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def _candidates(self, data: bytes) -> tuple:
        """The (form, value) pairs worth searching `data` for: all of them for a long text
        (each search runs in C), those whose first bytes are in it for a short one."""
        if len(data) * 2 >= len(self.forms):
            return self.forms
        seen = {data[at:at + MIN_SECRET] for at in range(len(data) - MIN_SECRET + 1)}
        return tuple(pair for prefix in seen & self.by_prefix.keys() for pair in self.by_prefix[prefix])

    def found_in(self, data: bytes) -> bool:
        """Whether any known value is in `data`, in any of its forms."""
        return any(form in data for form, _ in self._candidates(data))

    def spans(self, data: bytes) -> list[tuple[int, int, list[bytes]]]:
        """Where known values lie in `data`: (start, end, the values there), in order,
        overlapping occurrences joined into one span."""
        found = []
        for form, value in self._candidates(data):
            at = data.find(form)
            while at >= 0:
                found.append((at, at + len(form), value))
                at = data.find(form, at + len(form))
        found.sort(key=lambda f: (f[0], -f[1]))
        joined: list[tuple[int, int, list[bytes]]] = []
        for start, end, value in found:
            if joined and start < joined[-1][1]:
                first, last_end, values = joined[-1]
                joined[-1] = (first, max(last_end, end), values + [value] * (value not in values))
            else:
                joined.append((start, end, [value]))
        return joined


@dataclass(frozen=True)
class Redacted:
    """One secret value replaced in one request record."""

    header: str                 # as the request spelled it, or TARGET, BODY
    digest: str                 # hmac-sha256:<hex>
    cookie: str | None = None   # for Cookie: which cookie ("?": one without a name)
    host: str | None = None     # for TARGET: the host asked
    carried: bool = False       # a header redacted because its value carried a known value

    @property
    def part(self) -> str | None:
        """What the evidence's second field says: the cookie, or the host of a URL."""
        return self.cookie if self.cookie is not None else self.host

    def to_json(self) -> list:
        return [self.header, self.part, self.digest]


def describe(r: Redacted) -> str:
    """A metadata record's `redacted:` line for `r`."""
    if r.header == TARGET:
        return (f"request-target and WARC-Target-URI: a value known to be secret replaced by "
                f"{value_marker(r.digest)}; {REASON}")
    if r.header == BODY:
        return (f"request body: a value known to be secret replaced by {value_marker(r.digest)} "
                f"(Content-Length gives the length as sent); {REASON}")
    cookie = f" (cookie {r.cookie})" if r.cookie else ""
    why = f"{CARRIED}; {REASON}" if r.carried else REASON
    return f"{r.header} request header{cookie}: {why}; value replaced by its {r.digest}"


@dataclass
class Redaction:
    """Which request headers are secret, the secret values known, and the key their
    digests are made with."""

    secret_headers: frozenset = frozenset(DEFAULT_SECRET_HEADERS)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    key_origin: str = "a random key of this run (digests comparable within it only)"
    # names of the cookies we were given, and whether any credentials were: what makes a
    # Set-Cookie a session credential worth naming
    sent_cookies: frozenset = frozenset()
    credentials_given: bool = False
    known: KnownValues = field(default_factory=KnownValues, repr=False)

    @classmethod
    def make(cls, extra_secret: list[str] | tuple = (), key: bytes | None = None,
             key_origin: str | None = None, sent_cookies: list[str] | tuple = (),
             credentials_given: bool = False, known: KnownValues | None = None) -> "Redaction":
        made = cls(frozenset(DEFAULT_SECRET_HEADERS) | {h.strip().lower() for h in extra_secret},
                   sent_cookies=frozenset(n for n in sent_cookies if n),
                   credentials_given=credentials_given, known=known or KnownValues())
        if key is not None:
            made.key, made.key_origin = key, key_origin or "a key given to the capture"
        return made

    def digest(self, value: bytes) -> str:
        return DIGEST_PREFIX + hmac.new(self.key, value, hashlib.sha256).hexdigest()

    def is_secret(self, name: str) -> bool:
        return name.strip().lower() in self.secret_headers

    def why(self, header: str) -> str:
        """Why values of `header` (or TARGET, BODY) were redacted, for the evidence."""
        if header in (TARGET, BODY) or not self.is_secret(header):
            return f"{CARRIED}; {REASON}"
        return REASON

    # -- known values in text ------------------------------------------------------
    def _replace(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """`data` with every known value replaced by its value marker; the values found."""
        spans = self.known.spans(data) if self.known else []
        if not spans:
            return data, []
        out, at, found = [], 0, []
        for start, end, values in spans:
            shown = ",".join(self.digest(v) for v in values)
            out += [data[at:start], value_marker(shown).encode("ascii")]
            at = end
            found += [v for v in values if v not in found]
        out.append(data[at:])
        return b"".join(out), found

    def carries(self, data: bytes) -> bool:
        """Whether `data` holds a known secret value."""
        return bool(self.known) and self.known.found_in(data)

    def url(self, url: str) -> str:
        """`url` as the capture records it: each known value replaced by its marker."""
        if not self.known:
            return url
        replaced, found = self._replace(url.encode("utf-8", "surrogateescape"))
        return replaced.decode("utf-8", "surrogateescape") if found else url

    def scrub(self, value):
        """A copy of `value` (JSON-like: dicts, lists, strings) with every known value in
        its strings replaced by its marker: what the capture writes of addresses and
        texts of its own (metadata records, pages.jsonl, capture.json)."""
        if not self.known:
            return value
        if isinstance(value, str):
            return self.url(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value

    # -- a request as sent -------------------------------------------------------
    def redact(self, request: bytes, url: str | None = None) -> tuple[bytes, list[Redacted]]:
        """The request as sent with the value of every secret header, and of every
        header carrying a known value, replaced by its marker, and the known values in
        its request-target and body by theirs; and what was replaced. `url`: the URL
        asked (its host names a redacted request-target in the evidence)."""
        end = request.find(b"\r\n\r\n")
        head, body = (request[:end], request[end + 4:]) if end >= 0 else (request, None)
        lines, done = head.split(b"\r\n"), []
        lines[0] = self._request_line(lines[0], url, done)
        redacting = False       # the header whose folded lines (obs-fold) follow
        for i, line in enumerate(lines[1:], 1):
            if line[:1] in (b" ", b"\t"):
                if redacting or self.carries(line):
                    lines[i] = line[:1] + b"[redacted continuation of the header above]"
                continue
            redacting = False
            raw_name, sep, raw_value = line.partition(b":")
            name = raw_name.strip().decode("latin-1")
            if not sep:
                if self.carries(line):
                    lines[i] = b"[redacted line]"
                continue
            value = raw_value.strip()
            if self.is_secret(name):
                if name.lower() == "cookie":
                    found = self._cookies(name, value)
                    shown = "; ".join(f"{r.cookie}={r.digest}" for r in found)
                else:
                    found = [Redacted(name, self.digest(value))]
                    shown = found[0].digest
            elif self.carries(line):
                found = [Redacted(name, self.digest(value), carried=True)]
                shown = found[0].digest
                if self.carries(raw_name):      # a header named after a secret: not said
                    raw_name, name = b"X-Redacted-Name", "X-Redacted-Name"
            else:
                continue
            lines[i] = raw_name + b": " + marker(name, shown).encode("latin-1", "replace")
            done += found
            redacting = True
        if body is None:
            return b"\r\n".join(lines), done
        body, values = self._replace(body)
        done += [Redacted(BODY, self.digest(v)) for v in values]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body, done

    def _request_line(self, line: bytes, url: str | None, done: list) -> bytes:
        method, sep, rest = line.partition(b" ")
        target, sep2, version = rest.rpartition(b" ") if b" " in rest else (rest, b"", b"")
        replaced, values = self._replace(target)
        if not values:
            return line
        host = (urlsplit(url).hostname or "") if url else ""
        done += [Redacted(TARGET, self.digest(v), host=host or None) for v in values]
        return method + sep + replaced + sep2 + version

    def _cookies(self, header: str, value: bytes) -> list[Redacted]:
        found = []
        for pair in value.split(b";"):
            pair = pair.strip()
            name, eq, cookie_value = pair.partition(b"=")
            if not eq:      # `Cookie: VALUE`: a cookie without a name, not a name without value
                name, cookie_value = b"", pair
            if name or cookie_value:
                # a cookie's name is not a secret (it says which session), its value is;
                # a name that holds a known value is not shown either
                shown = "" if self.carries(name) else _COOKIE_NAME.sub("?", name.decode("latin-1"))
                digest = self.digest(cookie_value if shown or not name else pair)
                found.append(Redacted(header, digest, shown or "?"))
        return found

    def session_cookies(self, set_cookies: list[str]) -> list[str]:
        """The names, among `Set-Cookie` values a response carried, of the cookies that
        hold the session we were given (one we sent, or session-like when we were given
        credentials at all). A cookie set without a name (`Set-Cookie: VALUE`) has none
        to give, and a name that holds a known value is not said."""
        names = []
        for header in set_cookies:
            name, eq, _ = header.split(";", 1)[0].partition("=")
            name = name.strip() if eq else ""
            if name and not self.carries(name.encode("utf-8", "surrogateescape")) \
                    and (name in self.sent_cookies
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
