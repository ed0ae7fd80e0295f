"""A few words of a page around the hits of a query, with where each hit is: made here,
from the page's text as written (accents and harakat kept), the same for every backend.
Only the part of the text near the first hit is read word by word."""

from __future__ import annotations

from archive.catalog.fold import fold, written_words
from archive.catalog.query import Term

WIDTH = 24          # words shown
MAX_SCAN = 200_000  # characters of a page looked through for hits
CHUNK = 200         # characters folded at once to find where the first hit is
BEFORE = 60         # characters read before the piece holding the first hit


def _ends_here(flat: list[str], term: Term) -> bool:
    """Whether `term` matches the words ending at the last of `flat`."""
    n = len(term.words)
    if len(flat) < n:
        return False
    tail = flat[-n:]
    last = tail[-1].startswith(term.words[-1]) if term.prefix else tail[-1] == term.words[-1]
    return last and all(a == b for a, b in zip(tail[:-1], term.words[:-1]))


def _near_first(text: str, terms: list[Term]) -> int | None:
    """Where to start reading: a few words before the first piece of text whose folded
    form holds a term's first word (no hit can be earlier); None when none holds one."""
    firsts = {t.words[0] for t in terms}
    pos = 0
    while pos < len(text):
        end = text.find(" ", pos + CHUNK)
        end = len(text) if end < 0 else end
        folded = fold(text[pos:end])
        if any(w in folded for w in firsts):
            return max(0, text.rfind(" ", 0, max(0, pos - BEFORE)) + 1) if pos else 0
        pos = end
    return None


def snippet(text: str, terms: list[Term], width: int = WIDTH) -> tuple[str, list[list[int]]]:
    """(the snippet, [start, end) of each hit in it): `width` words from a little before
    the first hit; the text's start when there is none (a hit only in the title, say)."""
    text = text[:MAX_SCAN]
    tokens: list[tuple[int, int, list[str]]] = []
    flat: list[str] = []          # the words so far
    owner: list[int] = []         # the token each word is in
    hits: list[tuple[int, int]] = []
    stop = None
    start_at = _near_first(text, terms) if terms else None
    if start_at is None:        # no hit in the text: its first words, nothing marked
        terms, start_at = [], 0
    for token in written_words(text, start_at):
        index = len(tokens)
        tokens.append(token)
        for word in token[2]:
            flat.append(word)
            owner.append(index)
            for term in terms:
                if _ends_here(flat, term):
                    hits.append((owner[len(flat) - len(term.words)], index))
        if hits and stop is None:
            stop = max(0, hits[0][0] - width // 4) + width
        if stop is not None and index + 1 >= stop or not terms and index + 1 >= width:
            break
    if not tokens:
        return text[:200], []
    start = max(0, hits[0][0] - width // 4) if hits else 0
    end = min(len(tokens), start + width)
    begin_char, end_char = tokens[start][0], tokens[end - 1][1]
    prefix = "…" if begin_char > 0 else ""
    suffix = "…" if end_char < len(text) else ""
    offset = len(prefix) - begin_char
    marks = [[tokens[a][0] + offset, tokens[b][1] + offset] for a, b in hits if start <= a and b < end]
    return prefix + text[begin_char:end_char] + suffix, marks
