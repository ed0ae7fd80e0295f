"""A few words of a page around the hits of a query, with where each hit is: made here,
from the page's text as written (accents and harakat kept), the same for every backend."""

from __future__ import annotations

from archive.catalog.fold import written_words
from archive.catalog.query import Term

WIDTH = 24          # words shown
MAX_SCAN = 200_000  # characters of a page looked through for hits


def _hits(tokens: list[tuple[int, int, list[str]]], terms: list[Term]) -> list[tuple[int, int]]:
    """(first, last) token index of each occurrence of a term in `tokens`."""
    flat: list[tuple[int, str]] = [(i, w) for i, (_, _, found) in enumerate(tokens) for w in found]
    found = []
    for term in terms:
        n = len(term.words)
        for k in range(len(flat) - n + 1):
            ok = all(flat[k + j][1] == term.words[j] for j in range(n - 1))
            last = flat[k + n - 1][1]
            ok = ok and (last.startswith(term.words[-1]) if term.prefix else last == term.words[-1])
            if ok:
                found.append((flat[k][0], flat[k + n - 1][0]))
    return sorted(set(found))


def snippet(text: str, terms: list[Term], width: int = WIDTH) -> tuple[str, list[list[int]]]:
    """(the snippet, [start, end) of each hit in it): the window of `width` words with
    the most hits; the text's start when none is found (a hit only in the title, say)."""
    tokens = list(written_words(text[:MAX_SCAN]))
    if not tokens:
        return text[:200], []
    hits = _hits(tokens, terms)
    start = 0
    if hits:
        best = max(range(len(hits)), key=lambda i: sum(1 for h in hits if hits[i][0] <= h[0] < hits[i][0] + width))
        start = max(0, hits[best][0] - width // 4)
    end = min(len(tokens), start + width)
    begin_char, end_char = tokens[start][0], tokens[end - 1][1]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(tokens) else ""
    shown = prefix + text[begin_char:end_char] + suffix
    offset = len(prefix) - begin_char
    marks = [[tokens[a][0] + offset, tokens[b][1] + offset] for a, b in hits if start <= a and b < end]
    return shown, marks
