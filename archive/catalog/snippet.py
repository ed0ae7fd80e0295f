"""A few words of a page around the hits of a query, with where each hit is: made here,
from the page's text as written (accents and harakat kept), the same for every backend.
Only the part of the text near the first hit is read word by word."""

from __future__ import annotations

from archive.catalog.fold import fold, written_words
from archive.catalog.query import Term

WIDTH = 24          # words shown
MAX_SCAN = 200_000  # characters of a page looked through for hits
BEFORE = 80         # characters read before where the first hit seems to be


def _ends_here(flat: list[str], term: Term) -> bool:
    """Whether `term` matches the words ending at the last of `flat`."""
    n = len(term.words)
    if len(flat) < n:
        return False
    tail = flat[-n:]
    last = tail[-1].startswith(term.words[-1]) if term.prefix else tail[-1] == term.words[-1]
    return last and all(a == b for a, b in zip(tail[:-1], term.words[:-1]))


def _near_first(text: str, terms: list[Term]) -> int | None:
    """Where to start reading: a few words before where a term's longest word (the
    rarest, likely) first shows in the folded text, placed in the text as written by the
    two lengths (folding mostly only drops marks); None when no term's is in it at all."""
    folded = fold(text)
    found = []
    for term in terms:
        key = max(range(len(term.words)), key=lambda n: len(term.words[n]))
        at = folded.find(term.words[key])
        if at >= 0:     # back over the words of the phrase before it
            found.append(max(0, at - sum(len(w) + 2 for w in term.words[:key])))
    if not found:
        return None
    guess = int(min(found) * len(text) / max(1, len(folded)))
    return max(0, text.rfind(" ", 0, max(0, guess - BEFORE)) + 1) if guess > BEFORE else 0


def _read(text: str, terms: list[Term], start_at: int, width: int) -> tuple[list, list[tuple[int, int]]]:
    """The words as written from `start_at` up to `width` after the first hit (or the first
    `width` without terms), and the (first, last) word of each hit."""
    tokens: list[tuple[int, int, list[str]]] = []
    flat: list[str] = []          # the words so far
    owner: list[int] = []         # the token each word is in
    hits: list[tuple[int, int]] = []
    stop = None
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
    return tokens, hits


def snippet(text: str, terms: list[Term], width: int = WIDTH) -> tuple[str, list[list[int]]]:
    """(the snippet, [start, end) of each hit in it): `width` words from a little before
    the first hit; the text's start when there is none (a hit only in the title, say)."""
    text = text[:MAX_SCAN]
    start_at = _near_first(text, terms) if terms else None
    if start_at is None:        # no hit in the text: its first words, nothing marked
        terms, start_at = [], 0
    tokens, hits = _read(text, terms, start_at, width)
    if not hits and start_at:   # the guess overshot (folding made the text much longer): from the start
        tokens, hits = _read(text, terms, 0, width)
    if not tokens:
        return text[:200], []
    start = max(0, hits[0][0] - width // 4) if hits else 0
    end = min(len(tokens), start + width)
    begin_char, end_char = tokens[start][0], tokens[end - 1][1]
    while end_char < len(text) and end_char - tokens[end - 1][1] < 3 and not text[end_char].isspace():
        end_char += 1       # the punctuation that ends the last word shown
    prefix = "…" if begin_char > 0 else ""
    suffix = "…" if any(c.isalnum() for c in text[end_char:end_char + 200]) else ""
    offset = len(prefix) - begin_char
    marks = [[tokens[a][0] + offset, tokens[b][1] + offset] for a, b in hits if start <= a and b < end]
    return prefix + text[begin_char:end_char] + suffix, marks
