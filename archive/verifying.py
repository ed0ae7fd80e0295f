"""One verification of a capture with everything around it in its store, as `archive
verify` and the web app (`archive serve`, "Verify now") both run it: trusted TSA
certificates, timestamp tokens added after sealing, the capture's custody history as a
check, and the `verified` entry recorded in the custody ledger afterwards.

A wiring module (like pipeline.py): it joins verify, store, timestamping and custody,
which do not import each other."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from cryptography.hazmat.primitives import hashes

from archive.custody.entry import VERIFIED, Actor
from archive.custody.history import capture_history, judge_history
from archive.custody.ledger import open_ledger
from archive.custody.log import CustodyLog
from archive.custody.proof import head_summary, prove_capture
from archive.errors import ArchiveError
from archive.ids import is_capture_id
from archive.store.local import LocalStore
from archive.timestamping import later_tokens
from archive.verify.checks import verify_source
from archive.verify.model import Report, VerifyOptions
from archive.reader.source import Source
from archive.verify.timestamps import load_tsa_certificates


def locate_capture(target: str) -> tuple[LocalStore, str] | None:
    """The local store and capture id of a path `<store>/captures/Y/M/D/<id>.wacz`."""
    path = Path(target).resolve()
    capture_id = path.name.removesuffix(".wacz")
    if not path.name.endswith(".wacz") or not is_capture_id(capture_id) or len(path.parents) < 5:
        return None
    store = LocalStore(path.parents[4])
    return (store, capture_id) if store.path_of(capture_id).resolve() == path else None


def store_around(target: str, store: str | None = None, endpoint_url: str | None = None) -> tuple:
    """(store, capture id) around what is verified, for timestamps added later and custody:
    an s3:// address of a stored capture, a capture id in `store`, a file at its place in
    a local store; () for a file anywhere else, without loading the store modules (and the
    S3 SDK)."""
    if target.lower().startswith("s3://") or is_capture_id(target):
        from archive.store.address import StoreOptions, locate_s3_capture, open_existing_store

        located = locate_s3_capture(target, endpoint_url)
        if located:
            return located
        if is_capture_id(target) and not target.endswith(".wacz"):
            return open_existing_store(store, StoreOptions(endpoint_url=endpoint_url)), target
    return locate_capture(target) or ()


def store_key_warnings(trust: list[str] | None) -> list[str]:
    """--trust given a store's own keys/ folder (or a key in it): whoever can write to the
    store can add a key there, so it proves nothing about who signed."""
    warnings = []
    for value in trust or ():
        path = Path(value if os.path.exists(value) else value.split("=", 1)[-1]).resolve()
        folder = path if path.is_dir() else path.parent
        if folder.name == "keys" and any((folder.parent / d).is_dir() for d in ("captures", "custody")):
            warnings.append(f"--trust {value}: this is the keys folder of the store {folder.parent}, where "
                            "anyone who can write to the store can add a key; trust keys you got from "
                            "their owners, not from the store")
    return warnings


class VerifyContext:
    """What a verification needs from the store around a capture, and gives back.

    `actor` is called once the report is made (so a key's passphrase is asked for only
    then) and returns who records the `verified` entry; None records nothing."""

    def __init__(self, tsa_paths: list[str] | None, store=None, capture_id: str | None = None,
                 actor: Callable[[], Actor] | None = None, anchor: tuple[int, bytes] | None = None) -> None:
        self.tsa_roots = load_tsa_certificates(tsa_paths)
        self.anchor = anchor        # a head of the log noted earlier (verify --anchor SIZE:ROOT)
        self.ledger = None
        self.store, self.capture_id = store, capture_id
        self.later = later_tokens(store, capture_id) if store is not None else []
        self.actor = actor
        self.warnings: list[str] = []       # what recording the verification could not do

    def options(self, trusted: dict[str, str], allow_unsigned: bool = False,
                expected_sha256: str | None = None) -> VerifyOptions:
        return VerifyOptions(trusted, allow_unsigned, expected_sha256, self.tsa_roots, self.later,
                             self.capture_id)

    def finish(self, report: Report, trusted: dict[str, str]) -> None:
        """Add the capture's custody history to the report, then record the verification."""
        if self.store is None:
            if report.kind == "wacz":
                report.notes.append("custody: this file is not at its place in a store, so no custody "
                                    "ledger was read; verify it by id (--store) to see who handled it, and "
                                    "timestamp tokens added after sealing")
            return
        from archive.verify.checks import add_late_check
        from archive.reader.problems import Problem
        ledger = open_ledger(self.store)
        sealed_tokens = sum(1 for t in report.time.get("tokens", [])
                            if not t["later"] and t["state"] != "missing")
        later = [key for key, _ in self.later]
        try:
            if ledger.is_log():     # the capture's own entries, each proven under the latest head
                proof = prove_capture(ledger, self.capture_id, self.anchor)
                history = judge_history(proof.records, ledger.location, report.sha256, sealed_tokens,
                                        later, trusted, proof.problems, proof.elsewhere,
                                        f"each proven in the log under its {head_summary(proof.head, trusted)}")
            else:
                history = capture_history(ledger.records(), ledger.location, self.capture_id,
                                          report.sha256, sealed_tokens, later, trusted)
        except (ArchiveError, OSError) as exc:
            add_late_check(report, "custody", "warn", f"the custody ledger cannot be read: {exc}")
        else:
            report.custody = history.entries
            add_late_check(report, "custody", history.status, history.summary,
                           [Problem(p, ledger.location) for p in history.problems])
        self.ledger = ledger
        if self.actor is not None:
            self._record(report, trusted)

    def _record(self, report: Report, trusted: dict[str, str]) -> None:
        log = CustodyLog(self.store, self.actor(), self.ledger)
        log.record(
            VERIFIED, self.capture_id, report.sha256, result=report.verdict,
            qualifier=report.qualifier, failed=[c.name for c in report.checks if c.status == "fail"],
            trusted_keys=sorted(trusted), trusted_time=report.time.get("time"),
            trusted_tsa=sorted(c.fingerprint(hashes.SHA256()).hex() for c in self.tsa_roots),
        )
        self.warnings += log.problems


def verify_capture(source: Source, context: VerifyContext, trusted: dict[str, str],
                   allow_unsigned: bool = False, expected_sha256: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Report:
    """Verify `source` (raises CannotCheck when it cannot be checked at all), with its
    custody history, and record the verification as `context` says."""
    report = verify_source(source, context.options(trusted, allow_unsigned, expected_sha256), progress)
    context.finish(report, trusted)
    return report
