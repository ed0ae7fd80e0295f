"""The custody history of one capture, as verification reports it beside the
integrity checks, and what it says about the file being verified."""

from __future__ import annotations

from dataclasses import dataclass, field

from archive.custody.chain import ChainCheck, ChainReport, check_chain
from archive.custody.entry import CAPTURED, SEALED, STORED, TIMESTAMPED
from archive.custody.ledger import Record
from archive.values import text_field


@dataclass
class History:
    status: str                     # "pass", "warn" or "fail", as report checks use them
    summary: str
    problems: list[str] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)


def summary_of(entry: dict) -> dict:
    """The parts of an entry a reader of a report wants, in reading order. Anyone able
    to write to the store can append an entry: a value of the wrong type is None."""
    actor = entry.get("actor") if isinstance(entry.get("actor"), dict) else {}
    seq, details = entry.get("seq"), entry.get("details")
    return {
        "seq": seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        "time": text_field(entry.get("time")), "event": text_field(entry.get("event")),
        "actor": text_field(actor.get("name")), "key": text_field(actor.get("key")),
        "signed": entry.get("signature") is not None, "wacz": text_field(entry.get("wacz")),
        "details": details if isinstance(details, dict) else {},
    }


def entries_in_chain(ledger, capture_id: str | None = None) -> tuple[list[dict], ChainReport]:
    """The entries of one capture (every entry without one) out of a whole plain hash
    chain, and the check of that chain."""
    check = ChainCheck(ledger.location)
    chosen = []
    for record in ledger.iter_records():
        check.add(record)
        if record.entry and (capture_id is None or record.entry.get("capture") == capture_id):
            chosen.append(record.entry)
    return chosen, check.finish()


def capture_history(records: list[Record], location: str, capture_id: str,
                    file_sha256: str | None, tokens_in_file: int,
                    later_keys: list[str] = (), trusted: dict[str, str] | None = None) -> History:
    """The history of a capture from a whole plain hash chain (a ledger without its tree):
    the chain is checked, and its breaks at or just after this capture's entries count
    against it."""
    mine = [i for i, r in enumerate(records) if r.entry and r.entry.get("capture") == capture_id]
    if not mine:
        return History("warn", f"no custody history: the ledger ({location}) has no entry for this capture")
    chain = check_chain(records, location)
    wheres = {records[i].where for i in mine} | {records[i + 1].where for i in mine if i + 1 < len(records)}
    problems = [str(b) for b in chain.breaks if b.where in wheres]
    elsewhere = [str(b) for b in chain.breaks if b.where not in wheres]
    return judge_history([records[i] for i in mine], location, file_sha256, tokens_in_file, later_keys,
                         trusted, problems, elsewhere, "ledger chain intact")


def judge_history(mine: list[Record], location: str, file_sha256: str | None, tokens_in_file: int,
                  later_keys: list[str], trusted: dict[str, str] | None, problems: list[str],
                  elsewhere: list[str], intact: str) -> History:
    """Hold a capture's entries against the file verified and the tokens kept beside it
    (`later_keys`, as the store lists them). The history passes only when the entries
    saying how the capture came into the store are signed by keys in `trusted`
    (fingerprint -> name): anyone who can write to the store can write a consistent
    chain of entries signed by a key of their own. `problems`: damage in these entries;
    `elsewhere`: damage the ledger shows outside them (listed with a warning, never a
    failure of this capture); `intact`: what was proven."""
    entries = [summary_of(r.entry) for r in mine]
    if not entries and not problems:
        lost = f" ({elsewhere[0]})" if elsewhere else ""
        return History("warn", f"no custody history: the ledger ({location}) has no entry for this capture{lost}")
    problems = list(problems)
    for entry in entries:
        if entry["event"] in (SEALED, STORED) and file_sha256 and entry["wacz"] != file_sha256:
            problems.append(f"entry {entry['seq']} records the {entry['event']} file as sha256 "
                            f"{entry['wacz']}, but this file is {file_sha256}: not the file that was {entry['event']}")
    at_seal = sum(1 for e in entries if e["event"] == TIMESTAMPED and not e["details"].get("object"))
    if at_seal > tokens_in_file:
        problems.append(f"the ledger records {at_seal} timestamp token(s) obtained at sealing, "
                        f"the file holds {tokens_in_file}: tokens were removed")
    for entry in entries:
        kept = entry["details"].get("object") if entry["event"] == TIMESTAMPED else None
        if kept and kept not in later_keys:
            problems.append(f"entry {entry['seq']} records a timestamp token kept at {kept}, "
                            "but the store no longer holds it: removed")
    if problems:
        return History("fail", "the custody history contradicts this file or is damaged", problems, entries)
    events = ", ".join(dict.fromkeys(e["event"] for e in entries))
    if not any(e["event"] == STORED for e in entries):
        # entries of later events (a 'verified' one, written by verify itself) say nothing
        # about how the file came into the store
        return History("warn", f"no 'stored' entry: the ledger does not record how this capture came "
                       f"into the store ({len(entries)} later entries: {events})", list(elsewhere), entries)
    unvouched = [e for e in entries if e["event"] in (CAPTURED, SEALED, STORED)
                 and not (e["signed"] and e["key"] in (trusted or {}))]
    if unvouched:
        first = unvouched[0]
        how = f"signed by key {first['key']}, which is not among the keys you trust" if first["signed"] \
            else "unsigned"
        return History("warn", f"{len(entries)} custody entries ({events}), but entry {first['seq']} "
                       f"('{first['event']}') is {how}: this account of who captured and stored the "
                       "capture rests only on the store's access control", list(elsewhere), entries)
    if elsewhere:
        return History("warn", f"{len(entries)} custody entries ({events}) intact, but the ledger is "
                       f"damaged elsewhere ({elsewhere[0]}): run `archive custody verify`", elsewhere[1:],
                       entries)
    return History("pass", f"{len(entries)} custody entries ({events}), {intact}", [], entries)
