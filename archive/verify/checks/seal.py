"""Checks of the seal: datapackage-digest.json over datapackage.json, the signature
(anonymous or domain-identity form, by a key the user trusts), the RFC 3161 timestamps,
and that a file read from a store is the capture stored there."""

from __future__ import annotations

import hashlib

from archive.seal.sign import check_signature
from archive.values import text_field
from archive.verify.domainsig import check_domain_signature
from archive.verify.model import FAIL, PASS, SKIP, WARN, Report, VerifyOptions
from archive.reader.problems import Problem
from archive.verify.timestamps import (
    check_timestamps, clock_clash, future_token, removed_entries, summarize, trusted_time,
)
from archive.wacz.names import CAPTURE, DATAPACKAGE, DIGEST

def legacy(datapackage: dict | None) -> bool:
    """The WACZ 1.0.0 layout: no digest file, hashes under `stats`."""
    return isinstance(datapackage, dict) and datapackage.get("wacz_version") == "1.0.0"


def legacy_checks(report: Report, options: VerifyOptions, evidence: dict | None) -> None:
    report.add("datapackage-digest", WARN, "old WACZ 1.0.0 layout: it has no datapackage-digest.json, "
               "so nothing seals datapackage.json itself")
    if _signature_removed(report, evidence):
        return
    report.signature = {"signed": False}
    report.add("signature", WARN if options.allow_unsigned else FAIL,
               "UNSIGNED: the WACZ 1.0.0 layout has no signature; nothing proves who made it"
               + ("" if options.allow_unsigned else " (--allow-unsigned accepts that)"))
    report.notes.append("WACZ 1.0.0 (an old layout): every file was checked against "
                        "datapackage.json, but datapackage.json itself is not sealed or signed")


def digest_check(report: Report, digest: dict | None, error: str | None, dp_bytes: bytes | None) -> None:
    if digest is None or dp_bytes is None:
        report.add("datapackage-digest", FAIL, error or "datapackage.json cannot be read",
                   [Problem(error or "cannot be read", DIGEST)])
        return
    actual = "sha256:" + hashlib.sha256(dp_bytes).hexdigest()
    if digest.get("hash") != actual or digest.get("path") != DATAPACKAGE:
        report.add("datapackage-digest", FAIL,
                   "datapackage.json does not match the hash in datapackage-digest.json",
                   [Problem(f"expected {digest.get('hash')}, found {actual}", DIGEST)])
    else:
        report.add("datapackage-digest", PASS, "datapackage.json matches datapackage-digest.json")


def signature_check(report: Report, digest: dict | None, dp_bytes: bytes | None,
                     datapackage: dict | None, evidence: dict | None, options: VerifyOptions,
                     ours: bool = False) -> None:
    if digest is None or dp_bytes is None:
        report.add("signature", FAIL, "no signature can be checked without the digest file")
        return
    actual = "sha256:" + hashlib.sha256(dp_bytes).hexdigest()
    signed = digest.get("signedData")
    if signed is None and _signature_removed(report, evidence):
        return
    if signed is None:
        report.signature = {"signed": False}
        report.add("signature", WARN if options.allow_unsigned else FAIL,
                   "UNSIGNED: nothing proves who made this capture"
                   + ("" if options.allow_unsigned else " (--allow-unsigned accepts that)"))
        return
    try:
        check = check_signature(signed)
    except Exception as exc:  # noqa: BLE001 - a damaged key can raise from deep in cryptography
        report.signature = {"signed": True, "form": "unknown", "fingerprint": None, "trustedAs": None,
                            "holds": False}
        report.add("signature", FAIL, f"the signature cannot be read ({type(exc).__name__})",
                   [Problem(f"signedData cannot be read: {exc}", DIGEST)])
        return
    # `trustedAs` names the signer only once the signature holds for this very file: a
    # trusted key copied next to a broken or replayed signature proves nothing
    report.signature = {
        "signed": True, "form": check.form, "fingerprint": check.fingerprint, "trustedAs": None,
        "holds": None if check.form == "domain" else False,
        "created": text_field(signed.get("created")) if isinstance(signed, dict) else None,
        "software": text_field(signed.get("software")) if isinstance(signed, dict) else None,
        "curve": check.curve, "encoding": check.encoding,
    }
    if check.form == "domain":
        named = _named_signer(evidence)
        if named or ours:
            # our captures are signed in the anonymous form (by the key their evidence names)
            said = f"{CAPTURE} names signer {named}" if named else "this file was written by this tool"
            report.add("signature", FAIL, f"the signature was replaced: {said}, but the file carries a "
                       "domain-identity signature",
                       [Problem("signedData is not the signature of the key that made it", DIGEST)])
            return
        _domain_signature(report, signed, actual)
        return
    if not check.valid:
        report.add("signature", FAIL, f"signature not valid: {check.problem}",
                   [Problem(check.problem or "invalid signature", DIGEST)])
        return
    problems = []
    if signed.get("hash") != actual:
        problems.append(Problem("the signature covers another datapackage.json", DIGEST))
    if isinstance(datapackage, dict) and signed.get("created") != datapackage.get("created"):
        problems.append(Problem("signed `created` differs from datapackage.json", DIGEST))
    if problems:
        report.add("signature", FAIL, "the signature does not belong to this capture", problems)
        return
    report.signature.update(holds=True, trustedAs=options.trusted.get(check.fingerprint))
    if check.fingerprint not in options.trusted:
        report.add("signature", FAIL,
                   f"valid signature by key {check.fingerprint}, which is not among the keys you trust"
                   + ("" if options.trusted else " (give the signer's public key with --trust)"))
        return
    report.add("signature", PASS, f"signed by {options.trusted[check.fingerprint]} (key {check.fingerprint}, "
               f"ECDSA {check.curve}, {_ENCODINGS[check.encoding]} signature)")
    if (check.curve, check.encoding) != ("P-384", "raw"):
        report.notes.append(f"ReplayWeb.page cannot confirm this signature: it checks ECDSA P-384 "
                            f"signatures in raw r||s form, this one is {check.curve} in "
                            f"{_ENCODINGS[check.encoding]} (made before this tool used P-384 keys); "
                            "this verification is unaffected")


_ENCODINGS = {"raw": "raw r||s (IEEE P1363)", "DER": "DER"}


def stored_as_check(report: Report, evidence: dict | None, capture_id: str) -> None:
    """A file read from its place in a store must be the capture stored there: another
    capture, signed and intact, copied over it would otherwise verify under its id."""
    named = evidence.get("captureId") if isinstance(evidence, dict) else None
    if named == capture_id:
        report.add("capture-id", PASS, f"the file is capture {capture_id}, the one stored there")
        return
    said = f"says it is capture {named}" if isinstance(named, str) else "does not say which capture it is"
    report.add("capture-id", FAIL, f"the file stored as capture {capture_id} {said}",
               [Problem(f"{CAPTURE} {said}, not {capture_id}", CAPTURE)])


def _named_signer(evidence: dict | None) -> str | None:
    """The signing key our evidence file names (a capture of ours, signed when sealed)."""
    signer = evidence.get("signer") if isinstance(evidence, dict) else None
    return signer if isinstance(signer, str) and signer else None


def _signature_removed(report: Report, evidence: dict | None) -> bool:
    """A capture whose evidence file names the key that signed it, but which carries no
    signature, had it removed (adds the failure)."""
    signer = _named_signer(evidence)
    if not signer:
        return False
    report.signature = {"signed": False}
    report.add("signature", FAIL, f"the signature was removed: {CAPTURE} names signer {signer}, "
               "but there is no signature", [Problem("there is no signature", DIGEST)])
    return True


def _domain_signature(report: Report, signed: dict, actual: str) -> None:
    domain = signed.get("domain")
    report.signature["domain"] = domain if isinstance(domain, str) else None
    if signed.get("hash") != actual:
        report.add("signature", FAIL, "the signature covers another datapackage.json",
                   [Problem("signedData hash differs from datapackage.json", DIGEST)])
        return
    result = check_domain_signature(signed)
    if result.matches is False:
        report.add("signature", FAIL, f"domain-identity signature for {domain}: {result.detail}",
                   [Problem(result.detail, DIGEST)])
        return
    report.signature["certificate"] = result.detail
    report.add("signature", SKIP,
               f"signed in the domain-identity form for {domain}: {result.detail}; whether that "
               "certificate deserves trust cannot be checked offline, so who signed it was NOT "
               "checked (py-wacz `wacz validate --verify-auth` checks it against its roots)")
    report.notes.append("a domain-identity signature needs the signing service's certificate "
                        "roots and countersigned time: those were not checked here")


def timestamps_check(report: Report, digest: dict | None, dp_bytes: bytes | None,
                      options: VerifyOptions, evidence: dict | None) -> None:
    """RFC 3161 tokens over datapackage.json (archive.verify.timestamps): trusted time is
    a statement on top of integrity, so its absence is said plainly, not a failure."""
    if digest is None or dp_bytes is None:
        report.add("timestamps", WARN, "no timestamp can be checked without datapackage.json and its digest")
        return
    results = check_timestamps(digest.get("timestamps"), list(options.later_timestamps), dp_bytes,
                               list(options.tsa_roots))
    best = trusted_time(results)
    report.time = {"trusted": best is not None, "time": best.time if best else None,
                   "accuracy": best.accuracy if best else None, "tokens": [r.to_dict() for r in results]}
    status, summary, problems = summarize(results, bool(options.tsa_roots))
    for remark in (clock_clash(best, evidence.get("started") if isinstance(evidence, dict) else None),
                   future_token(best)):
        if remark:
            status = WARN if status == PASS else status
            problems.append(Problem(remark, CAPTURE))
    removed = removed_entries(digest.get("timestamps"), evidence)
    if removed:
        status, summary = FAIL, removed
        problems.append(Problem(removed, DIGEST))
    report.add("timestamps", status, summary, problems)
