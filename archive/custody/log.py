"""Recording custody events from the pipeline and the commands.

A failure to write the ledger never costs a capture: CustodyLog keeps the message in
`problems` for the caller to report (loudly), and `archive custody verify` later shows
what the ledger does not account for.
"""

from __future__ import annotations

from typing import Callable

from archive.custody.chain import ChainCheck
from archive.custody.entry import (
    SEALED, TIMESTAMP_MISSING, TIMESTAMPED, UPGRADED, Actor, make_entry,
)
from archive.custody.ledger import Ledger, open_ledger
from archive.errors import ArchiveError


def upgrade_to_log(store, ledger: Ledger, actor: Callable[[], Actor]) -> dict:
    """Make a plain hash chain a verifiable log (its Merkle tree, a head signed by the
    actor's key) and record the upgrade as an entry; `actor` is asked only once the chain
    is found intact. A damaged chain is refused: upgrading would seal the damage in."""
    if ledger.is_log():
        raise ArchiveError(f"{ledger.location} is already a verifiable log")
    check = ChainCheck(ledger.location)
    for record in ledger.iter_records():
        check.add(record)
    report = check.finish()
    if report.breaks:
        raise ArchiveError(f"{ledger.location} does not verify ({report.breaks[0]}): upgrading it would "
                           "seal the damage into the log; examine it with `archive custody verify`")
    who = actor()
    head = ledger.upgrade(who.signer)
    log = CustodyLog(store, who, ledger)
    entry = log.record(UPGRADED, None, None, entries=head["size"], root=head["root"])
    if entry is None:
        raise ArchiveError(log.problems[0])
    return {"location": ledger.location, "entries": head["size"], "root": head["root"],
            "upgraded_entry": entry["seq"]}


class CustodyLog:
    def __init__(self, store, actor: Actor, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or open_ledger(store)
        self.actor = actor
        self.problems: list[str] = []

    def record(self, event: str, capture: str | None = None, wacz: str | None = None,
               **details) -> dict | None:
        """Append one event; None (and a problem noted) when the ledger cannot be written."""
        clean = {k: v for k, v in details.items() if v is not None}
        try:
            return self.ledger.append(
                lambda seq, prev: make_entry(seq, prev, event, self.actor, capture, wacz, clean),
                self.actor.signer)
        except (ArchiveError, OSError) as exc:
            self.problems.append(f"custody ledger {self.ledger.location}: could not record "
                                 f"'{event}': {exc}")
            return None

    def record_timestamps(self, capture: str, wacz: str | None, entries: list[dict],
                          objects: list[str | None] = ()) -> None:
        """One 'timestamped' or 'timestamp-missing' entry per TSA asked; `objects` are
        the store keys of tokens kept beside the capture (none: in the WACZ)."""
        objects = list(objects) or [None] * len(entries)
        for entry, key in zip(entries, objects):
            if entry.get("token"):
                self.record(TIMESTAMPED, capture, wacz, tsa=entry.get("tsa"), time=entry.get("time"),
                            imprint=entry.get("imprint"), object=key)
            else:
                self.record(TIMESTAMP_MISSING, capture, wacz, tsa=entry.get("tsa"),
                            imprint=entry.get("imprint"), error=entry.get("error"))

    def record_sealed(self, capture: str, sealed) -> None:
        """'sealed', then the outcome of every TSA request made while sealing."""
        self.record(SEALED, capture, sealed.sha256, size=sealed.size,
                    datapackage=sealed.datapackage_hash, signer=sealed.signer_fingerprint)
        self.record_timestamps(capture, sealed.sha256, sealed.timestamps)
