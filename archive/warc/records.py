"""The bodies of our warcinfo and metadata records (application/warc-fields)."""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import platform
import re
import socket
import sys

from archive import SOFTWARE, __version__, utctime

WARC_SPEC = "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1-1_latestdraft.pdf"


def default_operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


_URL_PASSWORD = re.compile(r"(://[^/@:\s]*):[^@/\s]*@")
_HTTP_USERINFO = re.compile(r"(https?://)[^/@\s]+@", re.I)


def _header_shown(text: str) -> str:
    name, sep, _ = text.partition(":")
    return f"{name}: ***" if sep else "***"


def redacted_command(argv: list[str]) -> str:
    """The command line as recorded: a password inside a URL (`redis://:secret@host`)
    becomes `***`, and so does a user name alone, and every --header value; secrets are
    never sealed."""
    shown, after_header = [], False
    for arg in argv:
        if after_header:
            arg, after_header = _header_shown(arg), False
        elif arg == "--header":
            after_header = True
        elif arg.startswith("--header="):
            arg = "--header=" + _header_shown(arg[len("--header="):])
        shown.append(arg)
    # an http(s) URL's user and password both go (a seed's login); another URL's password
    return _URL_PASSWORD.sub(r"\1:***@", _HTTP_USERINFO.sub(r"\1***@", " ".join(shown)))


def warcinfo_fields(
    capture_id: str,
    operator: str,
    user_agent: str,
    robots: str,
    job: str | None = None,
    extra: dict | None = None,
) -> dict:
    """What every WARC file of a capture says about how it was made."""
    return {
        "software": SOFTWARE,
        "version": __version__,
        "operator": operator,
        "hostname": socket.gethostname(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "command": redacted_command(sys.argv),
        "capture-id": capture_id,
        "job": job,
        "robots": robots,
        "http-header-user-agent": user_agent,
        "conformsTo": WARC_SPEC,
        **(extra or {}),
    }


def fetch_metadata_fields(result, outlinks=(), redirect=None, note=None) -> dict:
    """Evidence about one fetch: where it went, what certificate was shown, what failed."""
    fields: dict = {
        "fetch-started": utctime.micros(result.started),
        "fetch-time-ms": round(result.elapsed * 1000),
        "ip-address": result.ip,
        "port": result.port,
    }
    if result.cert_der:
        fields["tls-version"] = result.tls.get("version")
        fields["tls-cipher"] = result.tls.get("cipher")
        fields["server-certificate"] = base64.b64encode(result.cert_der).decode("ascii")
        fields["server-certificate-sha256"] = hashlib.sha256(result.cert_der).hexdigest()
        fields["certificate-chain"] = [
            base64.b64encode(der).decode("ascii") for der in result.cert_chain_der
        ]
    if result.status is not None:
        fields["http-status"] = result.status
    if result.truncated:
        fields["truncated"] = result.truncated
    if result.error:
        fields["error-kind"] = result.error_kind
        fields["error"] = result.error
    if redirect:
        fields["redirect-to"] = redirect
    if note:
        fields["note"] = note
    fields["outlink"] = list(outlinks)
    return fields
