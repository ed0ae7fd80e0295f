"""Checking a custody ledger: every link, sequence number and signature, and that the
ledger accounts for what the store holds. Every problem names the entry and where it
is stored (line number or object key), so a reader can go straight to it."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from archive.custody.entry import EVENTS, FIELDS, STORED, TIMESTAMPED, sha256_of, signature_problem
from archive.custody.ledger import Record


@dataclass
class Break:
    where: str              # "line 7" or "custody/000000000007.json"
    seq: int | None
    message: str

    def __str__(self) -> str:
        entry = f"entry {self.seq}" if self.seq is not None else "entry"
        return f"{entry} ({self.where}): {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChainReport:
    location: str
    entries: int = 0
    breaks: list[Break] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)   # store contents with no entry
    signers: dict[str, int] = field(default_factory=dict)  # key fingerprint -> entries signed
    unsigned: int = 0
    # sequence numbers of the unsigned entries after the last signed one: a signed entry
    # commits (through `prev`) to every entry before it, nothing commits to these
    unprotected: list[int] = field(default_factory=list)
    head: dict | None = None                               # {"seq", "hash"} of the last entry
    files: dict | None = None          # with --files: {"checked", "bytes", "problems"}

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.unaccounted and not (self.files or {}).get("problems")

    def to_dict(self) -> dict:
        return {
            "location": self.location, "intact": self.intact, "entries": self.entries,
            "breaks": [b.to_dict() for b in self.breaks], "unaccounted": self.unaccounted,
            "signers": self.signers, "unsigned": self.unsigned, "unprotected": self.unprotected,
            "head": self.head, **({"files": self.files} if self.files is not None else {}),
        }


def _seq_of(entry: dict | None) -> int | None:
    seq = entry.get("seq") if entry else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None


def _order_problem(seq: int, last: int, seen: dict[int, str], later: set[int]) -> str | None:
    if seq in seen:
        return f"repeats entry {seq} (also at {seen[seq]}): an inserted or duplicated entry"
    if seq <= last:
        return f"comes after entry {last}: entries out of order"
    if seq > last + 1:
        gap = range(last + 1, seq)
        span = f"{last + 1}" if seq == last + 2 else f"{last + 1} to {seq - 1}"  # len() fails past 2**63
        if all(s in later for s in gap):
            return f"comes where entry {span} should be: entries out of order"
        return f"entry {span} is missing before it: removed from the ledger"
    return None


def _shape_problem(entry: dict) -> str | None:
    if set(entry) != FIELDS:
        return f"not a custody entry (fields {sorted(set(entry) ^ FIELDS)} differ)"
    if entry["event"] not in EVENTS:
        return f"unknown event {entry['event']!r}"
    if not isinstance(entry["actor"], dict) or not isinstance(entry["details"], dict):
        return "actor or details is not an object"
    return None


def check_chain(records: list[Record], location: str,
                trusted: dict[str, str] | None = None) -> ChainReport:
    """Check every entry in storage order; `trusted` (fingerprint -> name), when given,
    also requires every signature to be by one of those keys."""
    report = ChainReport(location, entries=len(records))
    seqs_at = [_seq_of(r.entry) for r in records]
    signers: Counter[str] = Counter()
    seen: dict[int, str] = {}
    last, prev_raw, prev_disordered = 0, None, False
    for index, record in enumerate(records):
        entry, seq = record.entry, seqs_at[index]

        def add(message: str) -> None:
            report.breaks.append(Break(record.where, seq, message))

        if record.torn:
            add("an incomplete entry (a write that was interrupted, or a cut file)")
        elif entry is None:
            add("not a readable entry (not a JSON object)")
        elif seq is None:
            add("has no valid sequence number")
        if entry is None or seq is None:
            prev_raw, prev_disordered = record.raw, True
            continue
        problem = _shape_problem(entry)
        if record.key_seq is not None and record.key_seq != seq:
            add(f"is stored under the number of entry {record.key_seq}: moved or swapped")
        order = _order_problem(seq, last, seen, set(seqs_at[index + 1:]))
        if order:
            add(order)
        expected_prev = sha256_of(prev_raw) if prev_raw is not None else None
        # after a reported reorder or gap, a broken link says nothing new
        if entry.get("prev") != expected_prev and not order and not prev_disordered:
            before = records[index - 1].where if index else "the start"
            add(f"does not link to the entry before it ({before}): that entry was altered, "
                "or this one was inserted")
        if problem:
            add(problem)
        else:
            signed = signature_problem(entry, trusted)
            if signed:
                add(signed)
            elif entry["signature"] is None:
                report.unsigned += 1
            else:
                signers[entry["actor"]["key"]] += 1
        seen.setdefault(seq, record.where)
        last, prev_raw, prev_disordered = max(last, seq), record.raw, bool(order)
    report.signers = dict(signers)
    for index in range(len(records) - 1, -1, -1):
        entry = records[index].entry
        if not entry or entry.get("signature") is not None or seqs_at[index] is None:
            break
        report.unprotected.insert(0, seqs_at[index])
    if records:
        report.head = {"seq": seqs_at[-1], "hash": sha256_of(records[-1].raw)}
    return report


def unaccounted(records: list[Record], capture_ids: list[str], timestamp_keys: list[str]) -> list[str]:
    """What the store holds that no entry accounts for, and what entries say was stored
    that the store does not hold: how entries cut from the end of the ledger show."""
    entries = [r.entry for r in records if r.entry]
    stored = {e.get("capture") for e in entries if e.get("event") == STORED and isinstance(e.get("capture"), str)}
    noted = {e["details"].get("object") for e in entries if e.get("event") == TIMESTAMPED
             and isinstance(e.get("details"), dict) and isinstance(e["details"].get("object"), str)}
    out = [f"capture {c} is in the store, but no 'stored' entry records it" for c in capture_ids
           if c not in stored]
    out += [f"{k} is in the store, but no 'timestamped' entry records it" for k in timestamp_keys
            if k not in noted]
    held = set(capture_ids)
    out += [f"the ledger records capture {c} as stored, but the store does not hold it"
            for c in sorted(c for c in stored if c and c not in held)]
    kept = set(timestamp_keys)
    out += [f"the ledger records the timestamp token {k}, but the store does not hold it"
            for k in sorted(k for k in noted if isinstance(k, str) and k not in kept)]
    return out


def stored_digests(records: list[Record]) -> dict[str, str]:
    """capture id -> the SHA-256 of its bytes that its 'stored' entry recorded."""
    return {e["capture"]: e["wacz"] for e in (r.entry for r in records if r.entry)
            if e.get("event") == STORED and isinstance(e.get("capture"), str) and isinstance(e.get("wacz"), str)}


def fixity_problem(capture_id: str, recorded: str | None, now: str) -> str | None:
    """What a stored capture hashing to `now` says against the ledger (None: it holds)."""
    if recorded is None or recorded == now:
        return None      # a capture no entry records is reported by `unaccounted`
    return (f"capture {capture_id} now hashes to {now}, not the {recorded} recorded when it was "
            "stored: its bytes were altered or damaged since")


def anchor_breaks(records: list[Record], anchors: list[tuple[int, str]]) -> list[Break]:
    """Entries noted earlier (seq, hash) that the ledger no longer holds unchanged. A
    hash chain cannot show entries cut from its end by itself; an anchor kept outside
    the store (or the store cross-check, `unaccounted`) can."""
    by_seq = {_seq_of(r.entry): r for r in records if _seq_of(r.entry)}
    out = []
    for seq, value in anchors:
        record = by_seq.get(seq)
        if record is None:
            out.append(Break("anchor", seq, f"the anchored entry is gone (the ledger ends at "
                             f"entry {max(by_seq, default=0)}): entries were removed"))
        elif sha256_of(record.raw) != value:
            out.append(Break(record.where, seq, "differs from the anchored entry: altered"))
    return out
