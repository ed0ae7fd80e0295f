"""One capture's custody out of a verifiable log, at the cost of that capture: its own
entries (found through the index), an RFC 9162 inclusion proof of each in the log under
its latest head, a consistency proof from a head noted earlier (`anchor`), and the few
entries appended after the latest head (which no head covers yet, checked as a chain).
A newest head that does not verify (forged or damaged: anyone who can write to the store
can put one there) is named and passed over for the newest one that does.
A few dozen reads whatever the size of the log: the nodes of all the proofs are read at
once, in parallel on object storage.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from archive.custody import merkle
from archive.custody.chain import ChainCheck, seq_of, shape_problem
from archive.custody.entry import signature_problem
from archive.custody.head import head_problem, head_text
from archive.custody.ledger import Record, parse
from archive.errors import ArchiveError

TAIL_LIMIT = 1000        # entries after the latest head read to find this capture's
HEADS_TRIED = 32         # newest heads tried, when the newest do not verify, before giving up


@dataclass
class CaptureProof:
    records: list[Record] = field(default_factory=list)    # the capture's entries, in order
    problems: list[str] = field(default_factory=list)      # what contradicts them
    elsewhere: list[str] = field(default_factory=list)     # damage that is not in them
    head: dict | None = None
    proven: int = 0                                        # entries proven under the head
    forged: list[str] = field(default_factory=list)        # newer heads passed over, and why


def prove_capture(ledger, capture_id: str, anchor: tuple[int, bytes] | None = None) -> CaptureProof:
    out = CaptureProof()
    head, passed = usable_head(ledger)
    if passed and head is None:
        out.problems.append(f"{passed[0]}, and no head before it verifies (the {len(passed)} newest were "
                            "tried): no entry can be proven in the log; run `archive custody verify`")
        return out
    if passed:
        # anyone who can write to the store can put a head there: a forged newest one says
        # nothing about this capture's entries, which are proven under the newest that holds
        more = f" (and {len(passed) - 1} heads before it)" if len(passed) > 1 else ""
        out.forged = passed
        out.elsewhere.append(f"{passed[0]}{more}: this capture's entries are proven under the newest "
                             f"head that verifies, {head_text(head)}")
    size = head["size"] if head else 0
    root = bytes.fromhex(head["root"]) if head else merkle.empty_root()
    out.head = head
    seqs = [s for s in ledger.seqs_of(capture_id) if s <= size]
    named = [(s, r) for s, r in zip(seqs, [ledger.entry_at(s) for s in seqs]) if r is not None]
    mine = [(s, r) for s, r in named if seq_of(r.entry) == s and r.entry.get("capture") == capture_id]
    # the index is only a finding aid, but whatever stands where it points must be in the
    # log: an entry altered or replaced there fails its proof
    if named:
        failed = _prove(ledger, named, size, root, out.problems)
        out.proven = len(mine) - len(failed & {s for s, _ in mine})
        for seq, record in named:
            if (seq, record) not in mine and seq not in failed:
                out.elsewhere.append(f"the log's index names entry {seq} for this capture, but that "
                                     "entry is another's (the index was altered)")
    if len(named) < len(seqs):
        out.problems.append(f"the log's index names {len(seqs) - len(named)} entries of this capture "
                            "that the ledger no longer holds: removed")
    if anchor:
        _hold_anchor(ledger, anchor, size, root, out.problems)
    tail, more = ledger.records_after(size, TAIL_LIMIT)
    if tail:
        _check_tail(ledger, size, tail, capture_id, out)
    if more:
        out.elsewhere.append(f"more than {TAIL_LIMIT} entries follow the log's latest head: they were "
                             "not read (`archive custody repair` covers them with a head)")
    out.elsewhere += [f"{key} is hidden behind a delete marker (its version was read)"
                      for key in getattr(ledger, "hidden", [])]
    out.records = [r for _, r in mine] + [r for r in tail if r.entry and r.entry.get("capture") == capture_id]
    for record in out.records:
        problem = shape_problem(record.entry) or signature_problem(record.entry, None)
        if problem:
            out.problems.append(f"entry {seq_of(record.entry)} ({record.where}): {problem}")
    return out


def _prove(ledger, mine: list[tuple[int, Record]], size: int, root: bytes, problems: list[str]) -> set[int]:
    """Inclusion proofs of entries under the head; the numbers of those that fail."""
    known: dict[merkle.Node, bytes] = {}
    for at in {size, mine[0][0] - 1}:          # the head's peaks, and the first entry's left siblings
        known.update(zip(merkle.peak_nodes(at), ledger.peaks(at)))

    def paths(get):
        return [merkle.inclusion_path(s - 1, size, get) for s, _ in mine]

    try:
        known.update(ledger.nodes(merkle.nodes_needed(paths, known)))
        found = paths(lambda level, index: known[(level, index)])
    except (KeyError, ValueError) as exc:
        problems.append(f"the log's tree lacks what the proofs of this capture's entries need ({exc}): "
                        "it was damaged or cut; run `archive custody verify`")
        return {s for s, _ in mine}
    failed = set()
    for (seq, record), path in zip(mine, found):
        if not merkle.verify_inclusion(seq - 1, size, merkle.leaf_hash(record.raw), path, root):
            failed.add(seq)
            problems.append(f"entry {seq} ({record.where}) is not in the log as its latest head "
                            f"({size}:{root.hex()}) states: the entry, or the log's tree, was altered")
    return failed


def _hold_anchor(ledger, anchor: tuple[int, bytes], size: int, root: bytes, problems: list[str]) -> None:
    """The consistency proof from a head noted earlier to the latest one."""
    old, old_root = anchor
    if old > size:
        problems.append(f"the log's latest head has {size} entries, fewer than the {old} of the head you "
                        "noted: entries were removed since; every capture recorded after entry "
                        f"{size} is in question")
        return
    known: dict[merkle.Node, bytes] = {}
    for at in {old, size}:
        known.update(zip(merkle.peak_nodes(at), ledger.peaks(at)))

    def path(get):
        return merkle.consistency_path(old, size, get) if old else []

    try:
        known.update(ledger.nodes(merkle.nodes_needed(path, known)))
        proof = path(lambda level, index: known[(level, index)])
    except (KeyError, ValueError) as exc:
        problems.append(f"the log's tree lacks what the consistency proof needs ({exc})")
        return
    if not merkle.verify_consistency(old, size, old_root, root, proof):
        problems.append(f"the log's latest head ({size}:{root.hex()}) contradicts the head you noted "
                        f"({old}:{old_root.hex()}): the log was rewritten since; every capture with "
                        f"entries up to entry {old} is in question")


def _check_tail(ledger, size: int, tail: list[Record], capture_id: str, out: CaptureProof) -> None:
    """Entries no head covers yet: chained to the last covered one, checked one by one."""
    last = ledger.entry_at(size) if size else None
    check = ChainCheck(ledger.location, None, (size, last.raw) if last is not None else None)
    for record in tail:
        check.add(record)
    report = check.finish()
    mine = {r.where for i, r in enumerate(tail) if r.entry and r.entry.get("capture") == capture_id}
    mine |= {tail[i + 1].where for i, r in enumerate(tail[:-1]) if r.where in mine}
    for brk in report.breaks:
        (out.problems if brk.where in mine else out.elsewhere).append(str(brk))
    out.elsewhere += report.notes
    if any(r.entry and r.entry.get("capture") == capture_id for r in tail):
        out.elsewhere.append(f"entries after {size} are not covered by a head that verifies" if out.forged
                             else f"entries after {size} are not yet covered by a head of the log")


def usable_head(ledger) -> tuple[dict | None, list[str]]:
    """The newest head of the log that holds (its signature, and its root against the
    log's tree at its size), and why each newer one was passed over. (None, []): the
    log has no head yet."""
    passed: list[str] = []
    for where, raw in itertools.islice(ledger.recent_heads(), HEADS_TRIED):
        head = parse(raw)
        problem = head_problem(head) or _root_problem(ledger, head)
        if problem is None:
            return head, passed
        size = f"size {head['size']} in " if isinstance(head, dict) and "size" in head else ""
        passed.append(f"the log's {'newest head' if not passed else 'head'}, {size}{where}, is forged or "
                      f"damaged ({problem})")
    return None, passed


def _root_problem(ledger, head: dict) -> str | None:
    """Why a well-formed head contradicts the log's tree (None: its root is the tree's)."""
    if head["size"] > ledger.tree_size():
        return f"it covers {head['size']} entries, the log's tree {ledger.tree_size()}"
    try:
        peaks = ledger.peaks(head["size"])
    except (KeyError, ValueError, LookupError, OSError, ArchiveError):
        return None        # the tree is damaged there: the proofs say so
    if merkle.fold_peaks(peaks).hex() != head["root"]:
        return "its root is not the root of the log's tree at its size"
    return None


def head_summary(head: dict | None, trusted: dict[str, str] | None) -> str:
    if not head:
        return "the log has no head yet"
    who = "unsigned" if head["signature"] is None else (
        f"signed by {trusted[head['key']]}" if trusted and head["key"] in trusted else f"signed by key {head['key']}")
    return f"head {head_text(head)} ({who})"
