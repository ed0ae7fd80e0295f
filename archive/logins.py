"""A capture behind a login, wired for the pipeline: the credentials read when a run
starts (refused whole when any is unusable, before anything is fetched), the key of the
redaction digests, and what the evidence and the custody ledger say of them (names,
never values)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from archive.capture import credentials
from archive.capture.crawl import CrawlOptions
from archive.capture.login import Credentials
from archive.capture.redaction import DIGEST_PREFIX, MAX_LISTED, REASON, Redaction, marker
from archive.errors import ArchiveError
from archive.seal.sign import Signer

KEY_LABEL = b"archive: redaction digests of request header values, v1"
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
    sent = [c.name for c in cookies] + [str(c.get("name", "")) for c in (profile.cookies if profile else ())]
    redaction = Redaction.make(options.secret_headers, key, origin, sent_cookies=sent,
                               credentials_given=options.credentials_given or profile is not None)
    identity = credentials.identity(options.cookies, cookies, options.headers,
                                    options.secret_headers, list(options.url_logins), expired)
    if profile is not None:
        identity.update(profile.identity)
    return Login(redaction, cookies, identity, profile)


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
    for (header, cookie, digest), count in redacted.items():
        entry = values.setdefault((header.lower(), cookie, digest), {
            "header": header, **({"cookie": cookie} if cookie else {}), "digest": digest, "requests": 0})
        entry["requests"] += count
    out = {
        "identity": login.identity,
        "redaction": {
            "reason": REASON,
            "headers": sorted(r.secret_headers),
            "marker": marker("<Header>", f"{DIGEST_PREFIX}<hex>"),
            "cookieMarker": marker("Cookie", f"<name>={DIGEST_PREFIX}<hex>; ..."),
            "digest": "HMAC-SHA256 of the value's bytes (of each cookie's value, for Cookie)",
            "digestKey": r.key_origin,
            "requests": sum(redacted.values()) if redacted else 0,
            "values": sorted(values.values(), key=lambda v: (v["header"], v.get("cookie") or ""))[:MAX_LISTED],
        },
    }
    if session_cookies:
        names = sorted(session_cookies)[:MAX_LISTED]
        out["sessionCookies"] = [{"name": n, "setBy": session_cookies[n]} for n in names]
        out["advice"] = session_advice(names)
    return out


def session_advice(names: list[str]) -> str:
    return ADVICE.format(names=", ".join(names))


def custody_fields(login: Login | None) -> dict:
    """What the custody `captured` entry says of the identity (none without credentials)."""
    ident = login.identity if login else {}
    names = {"cookieFile": "cookie_file", "profile": "profile", "cookieDomains": "cookie_domains",
             "cookieNamesSha256": "cookie_names_sha256", "localStorageOrigins": "local_storage_origins",
             "secretHeaders": "secret_headers", "urlCredentials": "url_logins"}
    return {field: ident[key] for key, field in names.items() if ident.get(key)}
