"""A capture behind a login, wired for the pipeline: the credentials read when a run
starts (refused whole when any is unusable, before anything is fetched), the key of the
redaction digests, and what the evidence and the custody ledger say of them (names,
never values)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from archive.capture import credentials
from archive.capture.cookiesfile import name_and_value
from archive.capture.crawl import CrawlOptions
from archive.capture.login import Credentials
from archive.capture.redaction import (
    BODY, CARRIED, DIGEST_PREFIX, MAX_LISTED, MIN_SECRET, REASON, TARGET, KnownValues, Redaction,
    marker, value_marker,
)
from archive.errors import ArchiveError
from archive.seal.sign import Signer

KEY_LABEL = b"archive: redaction digests of request header values, v1"
ADDRESSES = ("these addresses are recorded (and replayed) with that value replaced by a marker "
             "(the request line, WARC-Target-URI, the index, pages.jsonl); what the servers sent "
             "back is kept as sent")
ADVICE = ("the capture received session cookies ({names}): whoever holds this capture's WARC "
          "holds that session; end it (log out, or revoke it) now that the capture is made")


@dataclass
class Login:
    """What one run of a capture is given to log in with."""

    redaction: Redaction
    cookies: list = field(default_factory=list)     # http.cookiejar.Cookie, unexpired
    identity: dict = field(default_factory=dict)    # for the evidence and custody
    profile: Credentials | None = None              # a browser profile's cookies and local storage


def prepare(options: CrawlOptions, signer: Signer | None, shared: bool = False,
            profile: Credentials | None = None) -> Login:
    """Read and check what the capture is given to log in with (ArchiveError, one line,
    for a file in another format, an expired jar, a header without a value). `profile`:
    a browser profile, opened by the caller (archive.profiles), for the browser and media."""
    if profile is not None and options.cookies:
        raise ArchiveError("a browser profile and --cookies: give one login, not two")
    given = options.credentials_given or bool(options.headers) or profile is not None
    if shared and given:
        raise ArchiveError("--cookies, --header and credentials in a URL are not supported with "
                           "--redis yet (workers would need the secrets): capture in one process")
    try:
        credentials.check_headers(options.headers, options.secret_headers)
        cookies, expired = credentials.load_cookies(options.cookies) if options.cookies else ([], [])
    except credentials.CredentialsError as exc:
        raise ArchiveError(str(exc)) from None
    if signer is not None:
        key = signer.derived_secret(KEY_LABEL)
        origin = (f"derived from the signing key {signer.fingerprint}: captures signed with that "
                  "key show the same digest for the same value")
    else:
        key, origin = None, None
    sent = [name_and_value(c)[0] for c in cookies] + \
        [str(c.get("name", "")) for c in (profile.cookies if profile else ())]
    redaction = Redaction.make(options.secret_headers, key, origin, sent_cookies=sent,
                               credentials_given=options.credentials_given or profile is not None,
                               known=known_values(options, cookies, profile))
    identity = credentials.identity(options.cookies, cookies, options.headers,
                                    options.secret_headers, list(options.url_logins), expired)
    if profile is not None:
        identity.update(profile.identity)
    return Login(redaction, cookies, identity, profile)


def known_values(options: CrawlOptions, cookies: list, profile: Credentials | None) -> KnownValues:
    """The secret values this capture is given, to be redacted wherever what it sends
    carries them: the values of the secret headers (and the token after an auth scheme,
    `Bearer TOKEN`), the credentials of seed URLs, the cookies' values, and the
    profile's cookies and local (and session) storage values. Cookies and storage hold
    other things too: there a value that reads as an address is not taken (KnownValues)."""
    strict, loose = [], []
    secret = credentials.secret_header_names(options.secret_headers)
    for text in options.headers:
        name, value = credentials.parse_header(text)
        if name.lower() in secret:
            strict += [value, value.partition(" ")[2].strip()]
    for login in options.url_logins.values():       # "Basic <base64 of user:password>"
        token = login.partition(" ")[2]
        strict.append(token)
        try:
            strict.append(base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    loose += [name_and_value(c)[1] for c in cookies]
    if profile is not None:
        loose += [str(c.get("value") or "") for c in profile.cookies]
        loose += list(_storage_values(profile.storage_state))
    return KnownValues.of([v for v in strict if v], [v for v in loose if v])


def _storage_values(state: dict):
    """Every local- and session-storage value of a storage state, and the strings inside
    one that is a JSON document (an app keeps its tokens in one: {"accessToken": ...})."""
    for origin in state.get("origins") or ():
        if not isinstance(origin, dict):
            continue
        for key in ("localStorage", "sessionStorage"):
            for item in origin.get(key) or ():
                value = item.get("value") if isinstance(item, dict) else None
                if isinstance(value, str):
                    yield value
                    yield from _json_strings(value)


def _json_strings(text: str):
    """The strings in `text` when it is a JSON document (none otherwise)."""
    if not text[:1] in ("{", "[", '"') or len(text) < MIN_SECRET:
        return
    try:
        doc = json.loads(text)
    except ValueError:
        return
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            stack += list(value.values())
        elif isinstance(value, list):
            stack += value


def sealable_options(options: CrawlOptions) -> dict:
    """The crawl options as the evidence says them: no secret value, no local path."""
    data = {k: v for k, v in asdict(options).items() if k != "seeds"}
    data["headers"] = credentials.sealable_headers(options.headers, options.secret_headers)
    data["url_logins"] = sorted(options.url_logins)
    if options.cookies:
        data["cookies"] = Path(options.cookies).name
    if isinstance(data.get("media"), dict) and data["media"].get("cookies"):
        data["media"]["cookies"] = Path(data["media"]["cookies"]).name
    return data


def evidence(login: Login, redacted: dict, session_cookies: dict) -> dict | None:
    """The `credentials` part of evidence/capture.json (None: no credentials, nothing
    redacted, no session cookie)."""
    if not (login.identity or redacted or session_cookies):
        return None
    r = login.redaction
    values: dict = {}
    hosts: set[str] = set()
    for (header, part, digest), count in redacted.items():
        if header == TARGET and part:
            hosts.add(part)
        where = {"host" if header == TARGET else "cookie": part} if part else {}
        why = {"why": CARRIED} if r.why(header) != REASON else {}
        entry = values.setdefault((header.lower(), part, digest), {
            "header": header, **where, "digest": digest, "requests": 0, **why})
        entry["requests"] += count
    out = {
        "identity": login.identity,
        "redaction": {
            "reason": REASON,
            "headers": sorted(r.secret_headers),
            "marker": marker("<Header>", f"{DIGEST_PREFIX}<hex>"),
            "cookieMarker": marker("Cookie", f"<name>={DIGEST_PREFIX}<hex>; ..."),
            "namelessCookie": "a cookie sent without a name (Cookie: VALUE) is shown as ?=<digest>",
            "digest": "HMAC-SHA256 of the value's bytes (of each cookie's value, for Cookie)",
            "digestKey": r.key_origin,
            "knownValues": known_values_evidence(r.known),
            "requests": sum(redacted.values()) if redacted else 0,
            "values": sorted(values.values(), key=lambda v: (
                v["header"], v.get("cookie") or v.get("host") or ""))[:MAX_LISTED],
        },
    }
    if hosts:
        out["redaction"]["addresses"] = {"hosts": sorted(hosts)[:MAX_LISTED], "note": ADDRESSES}
    if session_cookies:
        names = sorted(session_cookies)[:MAX_LISTED]
        out["sessionCookies"] = [{"name": n, "setBy": session_cookies[n]} for n in names]
        out["advice"] = session_advice(names)
    return out


def known_values_evidence(known: KnownValues) -> dict:
    """What capture.json says of the secret values looked for (counts, never a value)."""
    return {
        "why": ("secrets also travel where no header name says so: a page's script copies a "
                "token into a header, an address or a body; a framework or a yt-dlp extractor "
                "copies a cookie into a header"),
        "from": ("the values of the cookies, secret headers and seed URL credentials given, "
                 "and of the browser profile's cookies and local storage"),
        "lookedFor": known.looked_for,
        "notLookedFor": {
            f"shorterThan{MIN_SECRET}Bytes": known.too_short,
            "cookieOrStorageValuesReadingAsAnAddress": known.addresses,
            "why": "they would match ordinary text and the capture's own addresses, not a credential",
        },
        "forms": "as given, URL-encoded, JSON-escaped, base64",
        "where": (f"every request header, whatever its name (its value replaced by the marker, "
                  f"the header named); in the request-target ({TARGET}) and the request body "
                  f"({BODY}) each occurrence, replaced by {value_marker(f'{DIGEST_PREFIX}<hex>')}; "
                  "the addresses the capture records those requests under (WARC-Target-URI, "
                  "the index, pages.jsonl, metadata records, this file), the same way"),
        "notAltered": ("responses, even one that echoes a secret value (its metadata record then "
                       "says so): what a server sent is the evidence; the snapshots of rendered "
                       "pages (DOM, screenshot) and the text of pages, which are what a page showed"),
    }


def address_warning(redacted: dict) -> str | None:
    """The capture's warning when addresses carried a secret value (hosts, never values)."""
    hosts = sorted({part for (header, part, _), _ in redacted.items() if header == TARGET and part})
    if not hosts:
        return None
    shown = ", ".join(hosts[:10]) + (f" and {len(hosts) - 10} more" if len(hosts) > 10 else "")
    return f"requests to {shown} carried a secret value in their address: {ADDRESSES}"


def session_advice(names: list[str]) -> str:
    return ADVICE.format(names=", ".join(names))


def custody_fields(login: Login | None) -> dict:
    """What the custody `captured` entry says of the identity (none without credentials)."""
    ident = login.identity if login else {}
    names = {"cookieFile": "cookie_file", "profile": "profile", "cookieDomains": "cookie_domains",
             "cookieNamesSha256": "cookie_names_sha256", "localStorageOrigins": "local_storage_origins",
             "secretHeaders": "secret_headers", "urlCredentials": "url_logins"}
    return {field: ident[key] for key, field in names.items() if ident.get(key)}
