"""Verification reports for people (text) and for scripts (JSON, report.schema.json)."""

from __future__ import annotations

import json
from importlib import resources

from archive.values import count, human_bytes, printable
from archive.verify.model import Report
from archive.verify.timestamps import within

MARKS = {"pass": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "NOT CHECKED"}
MAX_PROBLEMS_SHOWN = 20
CHECK_TITLES = {
    "container": "zip container",
    "resources": "files and their hashes",
    "records": "WARC record digests",
    "http-headers": "where HTTP bodies start",
    "index": "index of records",
    "pages": "list of pages",
    "datapackage-digest": "manifest digest",
    "signature": "signature",
    "timestamps": "trusted time (RFC 3161)",
    "capture-id": "stored as",
    "custody": "custody",
    "file-hash": "published hash",
}


def headline(report: Report) -> str:
    verdict = report.verdict + (f" ({report.qualifier})" if report.qualifier else "")
    return f"{verdict}: {report.reason}"


def signer_line(report: Report) -> str | None:
    sig = report.signature
    if not sig:
        return None
    if not sig.get("signed"):
        return "nobody: UNSIGNED"
    if sig.get("form") == "domain":
        return f"a certificate for {sig.get('domain')} (domain-identity form; not checked)"
    if not sig.get("holds"):
        named = f" (it names key {sig['fingerprint']})" if sig.get("fingerprint") else ""
        return f"NOT PROVEN: the signature does not hold for this file{named}"
    if sig.get("trustedAs"):
        return f"{sig['trustedAs']} (key {sig.get('fingerprint')})"
    return f"an UNTRUSTED key {sig.get('fingerprint') or '(unreadable)'}"


def facts(report: Report) -> list[tuple[str, str]]:
    """The capture's description, as (label, value) rows for text and HTML."""
    c = report.capture
    rows = [("file", report.target)]
    if report.sha256:
        rows.append(("sha256", report.sha256))
    if report.size is not None:
        rows.append(("size", human_bytes(report.size, exact=True)))
    for label, key in (("capture", "id"), ("title", "title")):
        if c.get(key):
            rows.append((label, str(c[key])))
    if c.get("seeds"):
        rows.append(("seed URLs", " ".join(c["seeds"])))
    elif c.get("mainPageUrl"):
        rows.append(("main page", c["mainPageUrl"]))
    if c.get("started"):
        rows.append(("captured", f"{c['started']} to {c.get('finished', '?')} (UTC, the capturing machine's clock)"))
    elif c.get("created"):
        rows.append(("created", f"{c['created']} (as the file says)"))
    for label, key in (("operator", "operator"), ("host", "host"), ("job", "job"), ("software", "software")):
        if c.get(key):
            rows.append((label, str(c[key])))
    counts = []
    if c.get("pages") is not None:
        counts.append(count(c["pages"], "page"))
    if c.get("records") is not None:
        counts.append(count(c["records"], "record"))
    if c.get("bytes") is not None:
        counts.append(f"{human_bytes(int(c['bytes']), exact=True)} fetched")
    if c.get("failed"):
        # failed fetches are evidence too (recorded, listed in pages with their error)
        counts.append(f"{count(c['failed'], 'failed fetch', 'failed fetches')} (listed below)")
    if counts:
        rows.append(("contents", ", ".join(counts)))
    if c.get("resumed"):
        redone = (f"; {count(c['redone'], 'fetch', 'fetches')} done again, their records lost "
                  "on disk in a power failure" if c.get("redone") else "")
        rows.append(("resumed", f"{count(c['resumed'], 'time')} after the capturing process "
                                f"stopped{redone}"))
    rows += login_rows(c)
    signer = signer_line(report)
    if signer:
        rows.append(("signed by", signer))
    if report.time:
        trusted = next((t for t in report.time.get("tokens", [])
                        if t.get("time") == report.time.get("time") and t.get("state") == "trusted"), None)
        rows.append(("time", f"{report.time['time']}{within(report.time.get('accuracy'))} "
                             "(trusted timestamp, RFC 3161, by "
                     f"{(trusted or {}).get('authority') or 'a TSA you trust'})"
                     if report.time.get("trusted") else "no trusted time (no timestamp from a TSA you trust)"))
    return rows


def login_rows(c: dict) -> list[tuple[str, str]]:
    """Which identity a capture behind a login used, and what that means for its session."""
    rows = []
    ident = c.get("identity") or {}
    source = (f"cookies from {ident['cookieFile']}" if ident.get("cookieFile")
              else f"the browser profile {ident['profile']}" if ident.get("profile") else None)
    if source:
        rows.append(("logged in", f"{source} for "
                                  f"{', '.join(ident.get('cookieDomains') or ['?'])} (cookie names "
                                  f"sha256 {ident.get('cookieNamesSha256', '?')})"))
    if ident.get("localStorageOrigins"):
        rows.append(("local storage", "the browser started with local storage of "
                                      f"{', '.join(ident['localStorageOrigins'])} (never sealed)"))
    for label, key in (("secret headers", "secretHeaders"), ("URL logins", "urlCredentials")):
        if ident.get(key):
            rows.append((label, ", ".join(ident[key])))
    if c.get("redacted"):
        rows.append(("redacted", f"{count(c['redacted'], 'request record')} with secret header values "
                                 "replaced by keyed digests (credentials are never sealed); key "
                                 f"{c.get('redactionKey') or 'not said'}"))
    if c.get("sessionCookies"):
        rows.append(("session", f"the capture received session cookies ({', '.join(c['sessionCookies'])}): "
                                "whoever holds this file holds that session; end it (log out)"))
    return rows


def custody_lines(report: Report) -> list[str]:
    """The capture's custody history, one line per entry."""
    lines = []
    for entry in report.custody:
        key = f"key {str(entry.get('key'))[:12]}…" if entry.get("signed") else "UNSIGNED"
        seq = entry.get("seq")
        lines.append(f"{'' if seq is None else seq:>5}  {entry.get('time') or ''}  {entry.get('event') or '':<17} "
                     f"{entry.get('actor') or ''} ({key})")
    return lines


def failure_rows(report: Report) -> list[tuple[str, str, str]]:
    """(URL, page or requisite, reason) of every failed fetch the capture counts."""
    return [(f.get("url", "?"), f.get("kind", ""), f.get("error", "reason not recorded"))
            for f in report.capture.get("failures", [])]


def render_text(report: Report) -> str:
    lines = [headline(report), ""]
    lines += [f"  {label:<13} {value}" for label, value in facts(report)]
    lines.append("")
    lines.append("checks:")
    for check in report.checks:
        title = CHECK_TITLES.get(check.name, check.name)
        lines.append(f"  [{MARKS.get(check.status, check.status)}] {title}: {check.summary}")
        for problem in check.problems[:MAX_PROBLEMS_SHOWN]:
            where = problem.where()
            lines.append(f"         - {problem.message}" + (f" ({where})" if where and where not in problem.message else ""))
        if len(check.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"         ... and {len(check.problems) - MAX_PROBLEMS_SHOWN} more (--json lists all)")
    if report.screenshots:
        lines += ["", "screenshots (how each page looked when captured; "
                      "`archive extract FILE --url urn:screenshot:URL --out shot.png` writes one out):"]
        lines += [f"  {url}  ({where.member or 'WARC'}, offset {where.offset})"
                  for url, where in sorted(report.screenshots.items())]
    failures = failure_rows(report)
    if failures:
        lines += ["", "failed fetches (recorded in the WARC, as evidence):"]
        lines += [f"  {url}  ({kind}) {reason}" if kind else f"  {url}  {reason}"
                  for url, kind, reason in failures]
    media = [(page["url"], item) for page in report.pages for item in page.get("media") or ()]
    if media:
        lines += ["", "media (video and audio found on the pages; `archive extract FILE --media` "
                      "lists them, `--media N --out FILE` writes one out):"]
        lines += [f"  {page}  #{item.get('n', '?')} {item.get('status', '?')}"
                  + (f"  sha256 {item['sha256']}" if item.get("sha256") else "")
                  + (f"  ({item['reason']})" if item.get("reason") else "")
                  for page, item in media]
    if report.custody:
        lines += ["", "custody history:"] + [f"  {line}" for line in custody_lines(report)]
    if report.notes:
        lines.append("")
        lines.append("not checked / good to know:")
        lines += [f"  - {note}" for note in report.notes]
    # every line may quote the file or the ledger: nothing in them may redraw the verdict
    return "\n".join(printable(line) for line in lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def schema() -> dict:
    """The JSON Schema of render_json's output."""
    return json.loads(resources.files("archive.verify").joinpath("report.schema.json").read_text("utf-8"))
