"""The whole-log check: every entry through the chain check (chain.py), and the Merkle
tree recomputed from the entries in the same single pass (one leaf at a time, its peaks
only in memory) and held against everything the store keeps of it: every perfect node,
every signed head. `since`: only what was appended after a head noted earlier, starting
from the peaks of that head, which must fold to the root that was noted (that is the
consistency proof: the log at the noted size is a prefix of the log now).
"""

from __future__ import annotations

from typing import Callable, Iterator

from archive.custody import merkle
from archive.custody.chain import Break, ChainCheck, ChainReport, seq_of
from archive.custody.head import head_problem, head_text
from archive.custody.ledger import Record, TreeStep, parse

TREE_BREAKS = 20         # tree mismatches reported one by one; the rest are counted


class LogCheck:
    def __init__(self, ledger, trusted: dict[str, str] | None = None,
                 since: tuple[int, bytes] | None = None, anchored=(),
                 progress: Callable[[int], None] | None = None,
                 head_anchors: list[tuple[int, bytes]] = ()) -> None:
        self.ledger = ledger
        self.trusted = trusted
        self.since = since
        self.progress = progress or (lambda n: None)
        self.anchored = anchored
        self.head_anchors = dict(head_anchors)     # size -> root noted earlier
        self.chain: ChainCheck | None = None
        self.found: dict = {}
        self.tree_breaks = 0
        self.bad_leaves: list[int] = []      # entries whose leaf differs from the tree's (the first few)
        self.stale_heads = 0                 # later heads that differ only because of it
        self.heads = 0
        self.latest: dict | None = None

    def _break(self, report: ChainReport, where: str, seq: int | None, message: str) -> None:
        self.tree_breaks += 1
        if self.tree_breaks <= TREE_BREAKS:
            report.breaks.append(Break(where, seq, message))

    def run(self) -> ChainReport:
        ledger = self.ledger
        start, frontier, after = 0, merkle.Frontier(), None
        early: list[Break] = []
        if self.since:
            size, root = self.since
            start = size
            try:
                peaks = ledger.peaks(size) if size <= ledger.tree_size() else None
            except (KeyError, ValueError, OSError, LookupError):
                peaks = None
            except Exception as exc:    # an object store's own error, one line
                peaks, early = None, [Break("since", size, f"the log's tree at {size} cannot be read: {exc}")]
            if peaks is None:
                early = early or [Break("since", size, f"the log no longer reaches the noted head "
                                  f"(size {size}): entries were removed since it was noted")]
            elif merkle.fold_peaks(peaks) != root:
                early = [Break("since", size, f"the log at size {size} is not the one noted ({size}:"
                               f"{root.hex()}): it was rewritten since, or the noted head is not "
                               "from this log; every capture with entries up to it is in question")]
            else:
                frontier = merkle.Frontier(size, peaks)
                record = ledger.entry_at(size) if size else None
                after = (size, record.raw) if record is not None else None
        check = self.chain = ChainCheck(ledger.location, self.trusted, after, self.anchored)
        self.found = check.found
        report = check.report
        report.breaks += early
        if early:
            return check.finish()
        steps = self._steps(start)
        step = next(steps, None)
        following = True           # the tree can be recomputed (no entry is missing or torn)
        for record in self._records(start):
            check.add(record)
            self.progress(report.entries)
            if record.torn:
                continue
            seq = seq_of(record.entry)
            expected = frontier.size + 1
            if following and record.key_seq is not None and record.key_seq != expected:
                following = False   # an object missing: the leaves after it cannot line up
                self._break(report, record.where, seq, f"the log has no entry {expected}: the tree "
                            "cannot be followed past it (later heads unchecked)")
            if not following:
                continue
            made = frontier.append(record.raw)
            if frontier.size in self.head_anchors:
                self._hold_anchor(report, record, frontier)
            while step is not None and step.seq < frontier.size:
                step = next(steps, None)
            if step is None or step.seq != frontier.size:
                if frontier.size <= self._covered:
                    self._break(report, record.where, seq, "the log's tree has nothing for this entry")
                continue
            self._hold(report, record, step, made, frontier)
            step = next(steps, None)
        while step is not None:
            for where, raw in step.heads:
                head = parse(raw) or {}
                self._break(report, where, None, f"a head of size {head.get('size')} is past the "
                            f"end of the log ({frontier.size} entries): entries after it were "
                            "removed, or the head is forged")
            if not step.heads and step.seq > frontier.size:
                self._break(report, step.where, step.seq, "the tree covers an entry the ledger no "
                            "longer holds: entries were removed from its end")
            step = next(steps, None)
        for size, root in self.head_anchors.items():
            if size > frontier.size or not following and size > frontier.size:
                report.breaks.append(Break("anchor", size, f"the log ends at entry {frontier.size}, before "
                                           f"the head you noted ({size}:{root.hex()}): entries were "
                                           "removed; every capture recorded after it is in question"))
        gap = getattr(ledger, "gap", None)
        if gap:
            report.breaks.append(Break("tree", gap[0], f"the log's newest tree object claims {gap[1]} "
                                       f"entries, but none from entry {gap[0]} on can be read: entries "
                                       "removed, or a tree object forged far past the end"))
        for key in getattr(ledger, "hidden", []):
            report.breaks.append(Break(key, None, "hidden behind a delete marker (deleted without a "
                                       "version id): its version was read and checked, but whoever "
                                       "deleted it meant it gone"))
        if self.stale_heads > 1:
            report.breaks.append(Break("heads", None, f"and {self.stale_heads - 1} later heads, which "
                                       "cover the entries reported above"))
        if self.tree_breaks > TREE_BREAKS:
            report.breaks.append(Break("tree", None, f"and {self.tree_breaks - TREE_BREAKS} "
                                       "more differences in the log's tree"))
        report = check.finish()
        report.log = {"size": frontier.size, "root": frontier.root().hex(), "heads_checked": self.heads,
                      "latest_head": self.latest,
                      "since": f"{self.since[0]}:{self.since[1].hex()}" if self.since else None}
        if frontier.size > self._covered:
            report.notes.append(f"entries {self._covered + 1} to {frontier.size} are not yet covered "
                                "by a head (an append was cut short): the next append or `archive "
                                "custody repair` covers them")
        return report

    def _hold_anchor(self, report: ChainReport, record: Record, frontier: merkle.Frontier) -> None:
        root = self.head_anchors[frontier.size]
        if frontier.root() != root:
            report.breaks.append(Break(record.where, frontier.size, f"the log up to here is not the one "
                                       f"you noted ({frontier.size}:{root.hex()}): entries up to it were "
                                       "altered, removed or inserted since"))

    def _records(self, start: int) -> Iterator[Record]:
        if start == 0:
            return self.ledger.iter_records()
        return self.ledger.iter_records(start + 1)

    def _steps(self, start: int) -> Iterator[TreeStep]:
        self._covered = self.ledger.tree_size()
        return self.ledger.iter_tree(start + 1)

    def _hold(self, report: ChainReport, record: Record, step: TreeStep, made: list[bytes],
              frontier: merkle.Frontier) -> None:
        """One entry's stored tree data against the recomputed one."""
        seq = frontier.size
        if step.offset is not None and record.offset is not None and step.offset != record.offset:
            self._break(report, step.where, seq, "the tree's offset of this entry is wrong: reading "
                        "the entry by number would give another line")
        for level, (stored, value) in enumerate(zip(step.nodes, made)):
            if stored == value:
                continue
            if level == 0 and len(self.bad_leaves) < TREE_BREAKS:
                self.bad_leaves.append(seq)
            elif level and any((bad - 1) >> level == (seq - 1) >> level for bad in self.bad_leaves):
                continue      # above an entry already reported: it cannot match
            what = "is missing" if stored is None else "differs from the one the entries give"
            self._break(report, step.where, seq, f"the tree's node at level {level} {what}: "
                        "proofs that use it fail")
        if step.peaks is not None and step.peaks != frontier.peaks:
            self._break(report, step.where, seq, "the peaks kept with this entry are not the tree's: "
                        "appends that start from them make a wrong tree")
        root = None
        for where, raw in step.heads:
            head = parse(raw)
            problem = head_problem(head, self.trusted)
            if problem:
                self._break(report, where, seq, f"a forged or damaged head: {problem}")
                continue
            self.heads += 1
            root = root or frontier.root()
            if head["size"] != seq:
                self._break(report, where, seq, f"a head of size {head['size']} kept where size {seq} "
                            "belongs: heads out of order")
            elif head["root"] != root.hex() and self.bad_leaves and self.stale_heads:
                self.stale_heads += 1     # every head after an altered entry differs: said once
            elif head["root"] != root.hex():
                self.stale_heads += bool(self.bad_leaves)
                self._break(report, where, seq, f"the head signed for size {seq} does not match the "
                            "entries up to it: the log was rewritten after that head was written, or "
                            "the head is forged")
            else:
                self.latest = {"size": seq, "root": head["root"], "key": head["key"],
                               "signed": head["signature"] is not None, "text": head_text(head)}
