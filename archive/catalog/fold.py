"""Words as search sees them, the same for every backend: lower case, compatibility forms
unfolded, marks dropped (accents, Arabic harakat U+064B-U+0652 and tatweel, Hebrew
points, Persian zero-width non-joiners), then runs of letters and digits (Unicode L* and
N*, what SQLite's unicode61 tokenizer also takes). Text is indexed and queries are read
through these functions, so SQLite and PostgreSQL are given the same words and no
backend's stemmer or language rules decide what matches."""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterator

from archive.catalog.marks import IGNORED_RANGES

WORD = re.compile(r"[^\W_]+")
MAX_WORD = 64          # longer runs (base64, hashes) are not words anyone searches for


def _class(ranges) -> str:
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@functools.cache
def _marks() -> re.Pattern:
    # the marks of the Basic Multilingual Plane as one class: re tests those in constant
    # time (a class reaching past U+FFFF is tested range by range, 15 times slower)
    return re.compile(f"[{_class((a, b) for a, b in IGNORED_RANGES if b < 0x10000)}]+")


@functools.cache
def _astral_marks() -> dict[int, None]:
    return {c: None for a, b in IGNORED_RANGES if a >= 0x10000 for c in range(a, b + 1)}


# a word as written: from a letter or digit up to a space or ASCII punctuation, marks and
# all (what it holds is then split by words(): other punctuation stays inside the span)
WRITTEN_WORD = re.compile(r"[^\W_][^\s!-/:-@\[-`{-~]*")


def fold(text: str) -> str:
    """`Café ٱلْكِتَابُ` -> `cafe الكتاب`: lower case, NFKD, marks and joiners dropped."""
    if text.isascii():       # most text: nothing to unfold
        return text.lower()
    # alef wasla as alef: vowelled (Quranic, classical) text writes it for a plain alef
    text = _marks().sub("", unicodedata.normalize("NFKD", text).lower()).replace("\u0671", "\u0627")
    if len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text):   # past U+FFFF (10x faster than max())
        text = text.translate(_astral_marks())
    return text


def words(text: str) -> list[str]:
    """The searchable words of `text`, in order."""
    return [w for w in WORD.findall(fold(text)) if len(w) <= MAX_WORD]


def written_words(text: str, start: int = 0) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, its searchable words) of each word as written in `text`, from `start`."""
    for match in WRITTEN_WORD.finditer(text, start):
        word = match.group()
        if word.isascii():      # letters and digits only: one word, as fold() would give it
            if len(word) <= MAX_WORD:
                yield match.start(), match.end(), [word.lower()]
            continue
        found = words(word)
        if found:
            yield match.start(), match.end(), found
