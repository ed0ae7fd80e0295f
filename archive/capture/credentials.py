"""What a capture behind a login is given: a cookies file, extra request headers (some of
them secret) and credentials written in a seed URL. Read when the run starts, never
sealed: the evidence names which identity was used (the cookie file's name, its
domains, a fingerprint of its cookie names), never a value.

The cookies file is Netscape's cookies.txt, as browser extensions export it and yt-dlp
reads it, parsed by the standard library's MozillaCookieJar; which cookie goes to which
request (domain, path, secure) is decided by its cookie policy, as a browser would.
"""

from __future__ import annotations

import base64
import http.cookiejar
import io
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from archive import utctime
from archive.capture.cookiesfile import name_and_value, playwright_cookie
from archive.capture.login import cookie_identity
from archive.capture.redaction import DEFAULT_SECRET_HEADERS
from archive.errors import ArchiveError

HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")   # an RFC 9110 token
NETSCAPE_HEADER = "# Netscape HTTP Cookie File\n"
MAX_COOKIE_FILE = 16 << 20


class CredentialsError(ArchiveError, ValueError):
    """A cookies file, header or URL the capture cannot use (one line, said as is)."""


def parse_header(text: str) -> tuple[str, str]:
    """`Name: value` -> (name, value); a header without a value is refused."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not HEADER_NAME.match(name):
        raise CredentialsError(f"--header {name or text[:40]!r}: give it as 'Name: value'")
    if not value:
        raise CredentialsError(f"--header {name}: has no value")
    if "\r" in value or "\n" in value:
        raise CredentialsError(f"--header {name}: a value on more than one line")
    try:
        value.encode("latin-1")     # what HTTP/1.1 headers are written in
    except UnicodeEncodeError:
        raise CredentialsError(f"--header {name}: a value with characters HTTP headers cannot carry") from None
    return name, value


def parse_header_name(text: str) -> str:
    """A --secret-header NAME (a header name, no value)."""
    name = text.strip()
    if not HEADER_NAME.match(name):
        raise CredentialsError(f"--secret-header {text[:40]!r}: not a header name")
    return name


def check_headers(headers: list[str], secret: list[str]) -> None:
    """Refuse a malformed header or a secret header name given no value (a --secret-header
    that no --header sets is only a name to redact, which is fine)."""
    for text in headers:
        parse_header(text)
    for name in secret:
        parse_header_name(name)


def split_url_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without user and password, an `Authorization: Basic` value or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return parts._replace(netloc=host).geturl(), f"Basic {token}"


def origin(url: str) -> str:
    """scheme://host:port of a URL, port always given (what Basic credentials go to)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _normalised(text: str) -> str:
    """A cookies.txt as exporters write it, in the form MozillaCookieJar reads: line
    endings unified, the header line added when an exporter left it out, and an expiry of
    0 (a session cookie, for yt-dlp and the browser extensions) written as none."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 7 and fields[4] == "0":
            fields[4] = ""
            line = "\t".join(fields)
        body.append(line)
    out = "\n".join(body)
    first = lines[0] if lines else ""
    if not http.cookiejar.NETSCAPE_MAGIC_RGX.match(first):
        if not any(len(line.split("\t")) == 7 for line in lines):
            raise CredentialsError("not a Netscape cookies.txt file (tab-separated lines of "
                                   "domain, flag, path, secure, expiry, name, value)")
        out = NETSCAPE_HEADER + out
    return out


def read_cookies_text(path: str | Path) -> str:
    """The text of a cookies file the user names, read at most MAX_COOKIE_FILE bytes
    (CredentialsError, one line, when it cannot be read, is larger or is not text)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_COOKIE_FILE + 1)
    except OSError as exc:
        raise CredentialsError(f"--cookies {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_COOKIE_FILE:
        raise CredentialsError(f"--cookies {path}: larger than {MAX_COOKIE_FILE >> 20} MiB, not a cookies file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"--cookies {path}: not a Netscape cookies.txt file (not text)") from None


def load_cookies(path: str | Path) -> tuple[list[http.cookiejar.Cookie], list[str]]:
    """(the unexpired cookies of a cookies.txt file, the names of those left out as
    expired). Another format, a file without cookies or one whose cookies have all expired
    is refused (CredentialsError)."""
    path = Path(path)
    try:
        text = _normalised(read_cookies_text(path))
    except CredentialsError as exc:
        if str(exc).startswith("--cookies "):
            raise

        raise CredentialsError(f"--cookies {path}: {exc}") from None
    jar = http.cookiejar.MozillaCookieJar()
    try:
        # load() only opens the file and calls this: the text is read and normalised above
        jar._really_load(io.StringIO(text), str(path), ignore_discard=True, ignore_expires=True)
    except (http.cookiejar.LoadError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CredentialsError(f"--cookies {path}: not a Netscape cookies.txt file ({first})") from None
    cookies = list(jar)
    if not cookies:
        raise CredentialsError(f"--cookies {path}: holds no cookies")
    now = time.time()
    alive = [c for c in cookies if not c.is_expired(now)]
    if not alive:
        latest = max(c.expires for c in cookies if c.expires is not None)
        when = utctime.seconds(latest)
        raise CredentialsError(f"--cookies {path}: every cookie in it has expired (the last at "
                               f"{when}): export the session again")
    # a cookie without a name is named "?": its name field holds its value
    return alive, sorted({name_and_value(c)[0] or "?" for c in cookies if c.is_expired(now)})


def identity(path: str | Path | None, cookies: list[http.cookiejar.Cookie],
             headers: list[str], secret: list[str], url_logins: list[str],
             expired: list[str] = ()) -> dict:
    """Which identity a capture used, for the evidence: never a value."""
    out: dict = {}
    if expired:
        out["expiredCookiesLeftOut"] = list(expired)
    if path is not None:
        out["cookieFile"] = Path(path).name
        out.update(cookie_identity([playwright_cookie(c) for c in cookies]))
    secret_names = secret_header_names(secret)
    given = [parse_header(h)[0] for h in headers]
    if given:
        out["headers"] = given
    if any(name.lower() in secret_names for name in given):
        out["secretHeaders"] = [n for n in given if n.lower() in secret_names]
    if url_logins:
        out["urlCredentials"] = sorted(url_logins)
    return out


def secret_header_names(secret: list[str]) -> set[str]:
    return set(DEFAULT_SECRET_HEADERS) | {name.strip().lower() for name in secret}


def sealable_headers(headers: list[str], secret: list[str]) -> list[str]:
    """The --header values as the evidence may say them: secret values left out."""
    names = secret_header_names(secret)
    shown = []
    for text in headers:
        name, value = parse_header(text)
        shown.append(f"{name}: [redacted]" if name.lower() in names else f"{name}: {value}")
    return shown


def request_headers(url: str, headers: list[str], secret: list[str], seed_hosts: set[str],
                    url_logins: dict[str, str]) -> dict[str, str]:
    """The extra headers a request for `url` carries: every header given, except that
    secret ones go only to the seeds' hosts (a token is not handed to a CDN or a third
    party a page links to), and credentials from a seed URL only to its origin."""
    names = secret_header_names(secret)
    out = {}
    to_seed_host = host_of(url) in seed_hosts
    for text in headers:
        name, value = parse_header(text)
        if name.lower() not in names or to_seed_host:
            out[name] = value
    login = url_logins.get(origin(url))
    if login:       # the seed URL's own credentials, more specific than a --header's
        out = {n: v for n, v in out.items() if n.lower() != "authorization"}
        out["Authorization"] = login
    return out
