"""The text of one page in two captures, sentence by sentence: which sentences the later
one removed and which it added (difflib over sentences, not characters: an investigator
reads claims, and a claim is a sentence)."""

from __future__ import annotations

import difflib
import re

# a sentence ends at . ! ? (and the Arabic ؟ and full stop ۔) before a space, or at a line end
SENTENCE_END = re.compile(r"(?<=[.!?\u061f\u06d4])\s+|\s*\n\s*")
MOST_SENTENCES = 20_000      # a page longer than this is compared on its beginning (said so)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text or "") if s and s.strip()]


def sentence_diff(before: str, after: str) -> tuple[list[tuple[str, str]], bool]:
    """([(kind, sentence)] in reading order, kind one of same/removed/added; whether the
    texts were cut to MOST_SENTENCES)."""
    a, b = sentences(before), sentences(after)
    cut = len(a) > MOST_SENTENCES or len(b) > MOST_SENTENCES
    a, b = a[:MOST_SENTENCES], b[:MOST_SENTENCES]
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [("same", s) for s in a[i1:i2]]
            continue
        out += [("removed", s) for s in a[i1:i2]]
        out += [("added", s) for s in b[j1:j2]]
    return out, cut
