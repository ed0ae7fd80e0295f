"""Verification reports for people (text) and for scripts (JSON)."""

from __future__ import annotations

import json

from archive.verify.checks import Report

MARKS = {"pass": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}
MAX_PROBLEMS_SHOWN = 20


def headline(report: Report) -> str:
    verdict = report.verdict + (f" ({report.qualifier})" if report.qualifier else "")
    return f"{verdict}: {report.reason}"


def render_text(report: Report) -> str:
    lines = [headline(report), ""]
    lines.append(f"  file      {report.target}")
    if report.sha256:
        lines.append(f"  sha256    {report.sha256}")
    if report.size is not None:
        lines.append(f"  size      {report.size} bytes")
    capture = report.capture
    for label, key in (("title", "title"), ("created", "created"), ("main page", "mainPageUrl"),
                       ("software", "software"), ("pages", "pages")):
        if capture.get(key) not in (None, ""):
            lines.append(f"  {label:<9} {capture[key]}")
    signature = report.signature
    if signature.get("signed"):
        who = signature.get("trustedAs") or "an untrusted key"
        lines.append(f"  signer    {who} ({signature.get('fingerprint') or 'unreadable key'})")
    elif signature:
        lines.append("  signer    none: UNSIGNED")
    if report.time:
        lines.append(f"  time      {report.time['time'] + ' (trusted timestamp)' if report.time.get('trusted') else 'no trusted time'}")
    lines.append("")
    lines.append("checks:")
    for check in report.checks:
        lines.append(f"  [{MARKS.get(check.status, check.status)}] {check.name}: {check.summary}")
        for problem in check.problems[:MAX_PROBLEMS_SHOWN]:
            where = problem.where()
            lines.append(f"         - {problem.message}" + (f" ({where})" if where and where not in problem.message else ""))
        if len(check.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"         ... and {len(check.problems) - MAX_PROBLEMS_SHOWN} more")
    if report.custody:
        lines += ["", "custody history:"]
        for entry in report.custody:
            key = f"key {entry['key'][:12]}…" if entry.get("signed") else "UNSIGNED"
            lines.append(f"  {entry['seq']:>5}  {entry['time']}  {entry['event']:<17} {entry['actor']} ({key})")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
