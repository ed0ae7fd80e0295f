"""Checking a custody ledger: every link, sequence number and signature, and that the
ledger accounts for what the store holds. Every problem names the entry and where it
is stored (line number or object key), so a reader can go straight to it.

The check streams: one pass, entries read once, memory flat whatever the ledger's
length (a bit per sequence number, the ids of stored captures for the cross-check with
the store, and a bounded window of recent positions for messages).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Iterable

from archive.custody.entry import EVENTS, FIELDS, STORED, TIMESTAMPED, UPGRADED, sha256_of, signature_problem
from archive.custody.ledger import Record

RECENT = 4096           # positions of the last entries, kept to say where a repeat also is
GAP_WATCH = 1024        # a gap up to this long is watched to tell "reordered" from "removed"
BITMAP_LIMIT = 1 << 27  # sequence numbers below this are remembered in a bitmap (16 MiB at most)


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
    # [first, last] sequence numbers of the unsigned entries after the last signed one: a
    # signed entry commits (through `prev`) to every entry before it, nothing commits to these
    unprotected: list[int] = field(default_factory=list)
    head: dict | None = None                               # {"seq", "hash"} of the last entry
    files: dict | None = None          # with --files: {"checked", "bytes", "problems"}
    notes: list[str] = field(default_factory=list)         # what is not a break (a torn last line)
    log: dict | None = None            # a verifiable log: its size, root and heads checked

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.unaccounted and not (self.files or {}).get("problems")

    def to_dict(self) -> dict:
        return {
            "location": self.location, "intact": self.intact, "entries": self.entries,
            "breaks": [b.to_dict() for b in self.breaks], "unaccounted": self.unaccounted,
            "signers": self.signers, "unsigned": self.unsigned, "unprotected": self.unprotected,
            "head": self.head, "notes": self.notes,
            **({"log": self.log} if self.log is not None else {}),
            **({"files": self.files} if self.files is not None else {}),
        }


def seq_of(entry: dict | None) -> int | None:
    seq = entry.get("seq") if entry else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 else None


def shape_problem(entry: dict) -> str | None:
    if set(entry) != FIELDS:
        return f"not a custody entry (fields {sorted(set(entry) ^ FIELDS)} differ)"
    if entry["event"] not in EVENTS:
        return f"unknown event {entry['event']!r}"
    if not isinstance(entry["actor"], dict) or not isinstance(entry["details"], dict):
        return "actor or details is not an object"
    return None


class _Seen:
    """Which sequence numbers were met: a bitmap (a set beyond BITMAP_LIMIT), and where
    the most recent ones are."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.big: set[int] = set()
        self.recent: OrderedDict[int, str] = OrderedDict()

    def add(self, seq: int, where: str) -> None:
        if seq < BITMAP_LIMIT:
            if seq >> 3 >= len(self.bits):
                self.bits.extend(bytes(max((seq >> 3) + 1 - len(self.bits), len(self.bits))))
            self.bits[seq >> 3] |= 1 << (seq & 7)
        else:
            self.big.add(seq)
        self.recent[seq] = where
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)

    def __contains__(self, seq: int) -> bool:
        if seq < BITMAP_LIMIT:
            return seq >> 3 < len(self.bits) and bool(self.bits[seq >> 3] >> (seq & 7) & 1)
        return seq in self.big


@dataclass
class Stored:
    """The SHA-256 a capture's first authoritative 'stored' entry recorded (issue: a
    later entry must never replace it), and what contradicts or cannot establish it."""
    sha256: str
    seq: int
    key: str | None


class ChainCheck:
    """The chain checked one entry at a time, in storage order."""

    def __init__(self, location: str, trusted: dict[str, str] | None = None,
                 after: tuple[int, bytes] | None = None, anchored: Iterable[int] = ()) -> None:
        self.report = ChainReport(location)
        self.trusted = trusted
        self.signers: Counter[str] = Counter()
        self.seen = _Seen()
        self.last, self.prev_raw, self.prev_disordered = 0, None, False
        if after is not None:          # checking only what was appended after entry `after`
            self.last, self.prev_raw = after
        self.gaps: list[tuple[Break, set[int], str]] = []   # watched gaps: break, seqs not yet met
        self.unprotected: list[int] = []
        self.last_whole: Record | None = None
        self.last_seq: int | None = None
        self.stored: dict[str, Stored] = {}
        self.stored_problems: list[str] = []
        self.unestablished: dict[str, int] = {}   # capture -> first stored entry that cannot establish
        self.noted: set[str] = set()               # timestamp tokens the entries name
        self.where_before = "the start"
        self.anchored = set(anchored)              # entries to hold against anchors
        self.found: dict[int, Record] = {}
        self.upgraded: Break | None = None         # an 'upgraded' entry: the ledger is a log

    def add(self, record: Record) -> None:
        report = self.report
        report.entries += 1
        entry, seq = record.entry, seq_of(record.entry)

        def add(message: str) -> None:
            report.breaks.append(Break(record.where, seq, message))

        if record.torn:
            # an interrupted append, not an entry: it condemns nothing (`custody repair`)
            report.entries -= 1
            report.notes.append(f"{record.where}: an incomplete last line (an append that was "
                                "interrupted, e.g. by a full disk): not an entry; `archive custody "
                                "repair` moves it aside")
            return
        if entry is None:
            add("not a readable entry (not a JSON object)")
        elif seq is None:
            add("has no valid sequence number")
        if entry is None or seq is None:
            self.prev_raw, self.prev_disordered, self.where_before = record.raw, True, record.where
            self.unprotected = []
            return
        problem = shape_problem(entry)
        if record.key_seq is not None and record.key_seq != seq:
            add(f"is stored under the number of entry {record.key_seq}: moved or swapped")
        order, disordered = self._order(seq, record.where)
        if order:
            add(order)
        expected_prev = sha256_of(self.prev_raw) if self.prev_raw is not None else None
        # after a reported reorder or gap, a broken link says nothing new
        if entry.get("prev") != expected_prev and not disordered and not self.prev_disordered:
            add(f"does not link to the entry before it ({self.where_before}): that entry was altered, "
                "or this one was inserted")
        signed_ok = False
        if problem:
            add(problem)
        else:
            signed = signature_problem(entry, self.trusted)
            if signed:
                add(signed)
            elif entry["signature"] is None:
                report.unsigned += 1
            else:
                self.signers[entry["actor"]["key"]] += 1
                signed_ok = True
            self._note(entry, seq, signed_ok, bool(signed))
            if entry["event"] == UPGRADED:
                self.upgraded = Break(record.where, seq, "the ledger was made a verifiable log here, but "
                                      "its tree and heads are gone: removed, or the ledger was put back "
                                      "from an older copy")
        if signed_ok:
            self.unprotected = []
        else:
            self.unprotected = [self.unprotected[0] if self.unprotected else seq, seq]
        if seq not in self.seen:
            self.seen.add(seq, record.where)
        self.last = max(self.last, seq)
        self.prev_raw, self.prev_disordered, self.where_before = record.raw, disordered, record.where
        self.last_whole, self.last_seq = record, seq
        if seq in self.anchored:
            self.found.setdefault(seq, record)

    def _order(self, seq: int, where: str) -> tuple[str | None, bool]:
        """The ordering problem of entry `seq` (a message, or None when it is reported
        already), and whether it is out of its place."""
        last = self.last
        if seq in self.seen:
            also = self.seen.recent.get(seq)
            return f"repeats entry {seq}{f' (also at {also})' if also else ''}: an inserted or duplicated entry", True
        if seq <= last:
            self._met(seq)
            return f"comes after entry {last}: entries out of order", True
        if seq > last + 1:
            span = f"{last + 1}" if seq == last + 2 else f"{last + 1} to {seq - 1}"  # len() fails past 2**63
            message = f"entry {span} is missing before it: removed from the ledger"
            if seq - last - 1 > GAP_WATCH:
                return message, True
            brk = Break(where, seq, message)          # reworded if the gap turns up later
            self.gaps.append((brk, set(range(last + 1, seq)), span))
            self.report.breaks.append(brk)
            return None, True
        return None, False

    def _met(self, seq: int) -> None:
        """An entry out of order fills a watched gap: once all of it turns up, the gap
        was a reorder, not a removal."""
        for brk, missing, span in self.gaps:
            missing.discard(seq)
            if not missing and "missing" in brk.message:
                brk.message = f"comes where entry {span} should be: entries out of order"

    def _note(self, entry: dict, seq: int, signed_ok: bool, bad_signature: bool) -> None:
        """What the cross-check with the store and the fixity check need."""
        capture = entry.get("capture")
        if entry["event"] == TIMESTAMPED and isinstance(entry["details"].get("object"), str):
            self.noted.add(entry["details"]["object"])
        if entry["event"] != STORED or not isinstance(capture, str) or not isinstance(entry.get("wacz"), str):
            return
        key = entry["actor"].get("key")
        first = self.stored.get(capture)
        # the first 'stored' entry signed (by a trusted key, with --trust) establishes the
        # capture's hash; an unsigned one only while no key is required and none is signed
        authoritative = signed_ok or (not bad_signature and self.trusted is None and entry["signature"] is None)
        if first is None or (first.key is None and signed_ok):
            if authoritative:
                if first is not None and first.sha256 != entry["wacz"]:
                    self.stored_problems.append(
                        f"entry {first.seq} (unsigned) recorded capture {capture} as stored with SHA-256 "
                        f"{first.sha256}, the signed entry {seq} with {entry['wacz']}: the signed one counts")
                self.stored[capture] = Stored(entry["wacz"], seq, key if signed_ok else None)
            else:
                self.unestablished.setdefault(capture, seq)
        elif first.sha256 != entry["wacz"]:
            self.stored_problems.append(
                f"entry {seq} records capture {capture} as stored with SHA-256 {entry['wacz']}, but "
                f"entry {first.seq} recorded {first.sha256} first: a later 'stored' entry never replaces "
                "the first (whoever can write to the store can append one)")

    def finish(self) -> ChainReport:
        report = self.report
        report.signers = dict(self.signers)
        report.unprotected = self.unprotected
        if self.last_whole is not None:
            report.head = {"seq": self.last_seq, "hash": sha256_of(self.last_whole.raw)}
        for capture, seq in self.unestablished.items():
            if capture not in self.stored:
                why = "signed by a key you trust" if self.trusted is not None else "validly signed"
                self.stored_problems.append(
                    f"no 'stored' entry {why} establishes the SHA-256 of capture {capture} "
                    f"(entry {seq} cannot): its fixity cannot be checked")
        return report


def check_chain(records: Iterable[Record], location: str,
                trusted: dict[str, str] | None = None) -> ChainReport:
    """Check every entry in storage order; `trusted` (fingerprint -> name), when given,
    also requires every signature to be by one of those keys."""
    check = ChainCheck(location, trusted)
    for record in records:
        check.add(record)
    return check.finish()


def unaccounted(stored: Iterable[str], noted: Iterable[str], capture_ids: list[str],
                timestamp_keys: list[str]) -> list[str]:
    """What the store holds that no entry accounts for, and what entries say was stored
    that the store does not hold: how entries cut from the end of the ledger show.
    `stored`: captures 'stored' entries name; `noted`: tokens 'timestamped' entries name."""
    stored, noted = set(stored), set(noted)
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


def fixity_problem(capture_id: str, recorded: str | None, now: str) -> str | None:
    """What a stored capture hashing to `now` says against the ledger (None: it holds)."""
    if recorded is None or recorded == now:
        return None      # a capture no entry records is reported by `unaccounted`
    return (f"capture {capture_id} now hashes to {now}, not the {recorded} recorded when it was "
            "stored: its bytes were altered or damaged since")


def anchor_breaks(found: dict[int, Record], last_seq: int | None,
                  anchors: list[tuple[int, str]]) -> list[Break]:
    """Entries noted earlier (seq, hash) that the ledger no longer holds unchanged
    (`found`: the entries of those numbers, as the check met them). A hash chain cannot
    show entries cut from its end by itself; an anchor kept outside the store can."""
    out = []
    for seq, value in anchors:
        record = found.get(seq)
        if record is None:
            out.append(Break("anchor", seq, f"the anchored entry is gone (the ledger ends at "
                             f"entry {last_seq or 0}): entries were removed"))
        elif sha256_of(record.raw) != value:
            out.append(Break(record.where, seq, "differs from the anchored entry: altered"))
    return out
