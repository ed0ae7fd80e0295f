"""`archive custody verify` as one function over plain values: the whole ledger checked
(a verifiable log by LogCheck, a plain hash chain by ChainCheck), heads and entries noted
earlier held against it, what the store holds accounted for, and on request every stored
capture hashed against the SHA-256 its 'stored' entry recorded (the fixity walk)."""

from __future__ import annotations

from typing import Callable

from archive.custody.chain import Break, ChainCheck, ChainReport, anchor_breaks, fixity_problem, unaccounted
from archive.custody.head import parse_head_text
from archive.custody.logcheck import LogCheck
from archive.errors import ArchiveError
from archive.hashing import stream_sha256


def parse_anchor(text: str) -> tuple[int, str]:
    """`SEQ:sha256:HEX`, an entry of a plain hash chain noted earlier."""
    seq, _, value = text.partition(":")
    if not seq.isdigit() or not value.startswith("sha256:"):
        raise ArchiveError(f"not an anchor: {text!r} (give SIZE:ROOT or SEQ:sha256:HEX, as `head` prints it)")
    return int(seq), value


def parse_anchors(texts: list[str]) -> tuple[list[tuple[int, str]], list[tuple[int, bytes]]]:
    """--anchor values: entries of a plain chain (SEQ:sha256:HEX) and heads (SIZE:ROOT)."""
    entries, heads = [], []
    for text in texts:
        if text.partition(":")[2].startswith("sha256:"):
            entries.append(parse_anchor(text))
        else:
            try:
                heads.append(parse_head_text(text))
            except ArchiveError:
                raise ArchiveError(f"not an anchor: {text!r} (give SIZE:ROOT or SEQ:sha256:HEX, as "
                                   "`head` prints it)") from None
    return entries, heads


def audit_custody(store, ledger, trusted: dict[str, str] | None = None, anchors: list[str] = (),
                  since: tuple[int, bytes] | None = None, files: bool = False, tokens_prefix: str = "",
                  progress: Callable[[int], None] | None = None,
                  hashing: Callable[[str, int, int], None] | None = None) -> ChainReport:
    """The ledger of `store` checked whole (or only what was appended `since` a head
    noted earlier); `tokens_prefix`: where the store keeps timestamp tokens, which entries
    must account for; `files`: also the fixity walk. `progress(entries checked)`,
    `hashing(capture id, done, total)` for a progress display."""
    entry_anchors, head_anchors = parse_anchors(list(anchors))
    show = progress or (lambda n: None)
    log = ledger.is_log()
    if since and not log:
        raise ArchiveError(f"{ledger.location} is a plain hash chain, without heads: --since needs a "
                           "verifiable log (`archive custody upgrade`)")
    if files and since is not None:
        raise ArchiveError("--files reads every capture: give it without --since")
    anchored = [seq for seq, _ in entry_anchors]
    if log:
        checker = LogCheck(ledger, trusted, since, anchored, show, head_anchors)
        report, found, chain = checker.run(), checker.found, checker.chain
    else:
        chain = ChainCheck(ledger.location, trusted, anchored=anchored)
        for record in ledger.iter_records():
            chain.add(record)
            show(chain.report.entries)
        report, found = chain.finish(), chain.found
        for size, root in head_anchors:
            report.breaks.append(Break("anchor", size, f"you noted a head of a verifiable log "
                                       f"({size}:{root.hex()}), but this ledger has no tree: it was "
                                       "removed, or the ledger is not the one you noted"))
        if chain.upgraded:
            report.breaks.append(chain.upgraded)
    report.breaks += anchor_breaks(found, chain.last_seq, entry_anchors)
    if since is None:
        captures = [c.capture_id for c in store.list_captures()]
        tokens = list(store.list_objects(tokens_prefix))
        report.unaccounted = unaccounted(chain.stored, chain.noted, captures, tokens)
        if files:
            report.files = check_fixity(store, captures, {c: s.sha256 for c, s in chain.stored.items()},
                                        hashing)
            report.files["problems"] = chain.stored_problems + report.files["problems"]
    return report


def check_fixity(store, captures: list[str], recorded: dict[str, str],
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Every stored capture read and hashed against the SHA-256 its 'stored' entry holds."""
    checked, total, problems = 0, 0, []
    for number, capture_id in enumerate(captures, 1):
        if progress:
            progress(capture_id, number - 1, len(captures))
        try:
            with store.open_capture(capture_id) as fh:
                sha, size = stream_sha256(fh)
        except (ArchiveError, OSError) as exc:
            problems.append(f"capture {capture_id} could not be read: {exc}")
            continue
        checked, total = checked + 1, total + size
        problem = fixity_problem(capture_id, recorded.get(capture_id), sha)
        if problem:
            problems.append(problem)
    return {"checked": checked, "bytes": total, "problems": problems}
