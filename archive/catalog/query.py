"""The search syntax, read by us (never handed raw to a database): words, "phrases",
prefix*, AND (or nothing), OR, NOT (or -word), parentheses. A query is parsed into a
small tree of words already folded (archive.catalog.fold), then written out for each
backend: an FTS5 MATCH expression or a PostgreSQL tsquery, both passed as parameters.
What either backend could not answer the same way is refused here, with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from archive.catalog.fold import words
from archive.errors import ArchiveError

MAX_QUERY = 1000        # characters
MAX_TERMS = 64
MAX_DEPTH = 16          # nested parentheses
MIN_PREFIX = 2          # letters before a *: one letter would match most of the catalog

TOKEN = re.compile(r'\s*(?:(?P<phrase>"[^"]*"\*?)|(?P<open>\()|(?P<close>\))|(?P<word>[^\s"()]+)|(?P<quote>"))')
OPERATORS = {"AND", "OR", "NOT"}


class QueryError(ArchiveError):
    """A query the search syntax rejects (exit 2, one line)."""


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]      # folded; more than one: a phrase
    prefix: bool = False        # the last word is a prefix


@dataclass(frozen=True)
class Not:
    item: "Node"


@dataclass(frozen=True)
class And:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    items: tuple["Node", ...]


Node = Term | Not | And | Or


def _lex(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if match is None or match.end() == pos:     # only spaces left
            break
        pos = match.end()
        kind = match.lastgroup
        if kind == "quote":
            raise QueryError('a quote (") is not closed: phrases go between two quotes')
        value = match.group(kind)
        if kind == "word" and value in OPERATORS:
            kind = value
        elif kind == "word" and value.startswith("-") and len(value) > 1:
            tokens.append(("NOT", "-"))
            value = value[1:]
        tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.pos, self.depth, self.terms = tokens, 0, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node | None:
        node = self.any_of()
        if self.peek() is not None:
            raise QueryError("a closing parenthesis has no opening one")
        return node

    def any_of(self) -> Node | None:
        items = [self.all_of()]
        while self.peek() == "OR":
            self.take()
            if self.peek() in (None, "close", "OR", "AND"):
                raise QueryError("OR needs something to search for on both sides")
            items.append(self.all_of())
        kept = tuple(i for i in items if i is not None)
        return None if not kept else kept[0] if len(kept) == 1 else Or(kept)

    def all_of(self) -> Node | None:
        items = []
        while self.peek() not in (None, "close", "OR"):
            if self.peek() == "AND":
                self.take()
                if self.peek() in (None, "close", "OR", "AND") or not items:
                    raise QueryError("AND needs something to search for on both sides")
                continue
            items.append(self.unary())
        kept = tuple(i for i in items if i is not None)
        return None if not kept else kept[0] if len(kept) == 1 else And(kept)

    def unary(self) -> Node | None:
        if self.peek() == "NOT":
            self.take()
            if self.peek() in (None, "close", "OR", "AND"):
                raise QueryError("NOT needs a word or phrase after it")
            item = self.unary()
            return None if item is None else item.item if isinstance(item, Not) else Not(item)
        kind, value = self.take()
        if kind == "open":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"parentheses nested more than {MAX_DEPTH} deep")
            node = self.any_of()
            if self.peek() != "close":
                raise QueryError("a parenthesis is not closed")
            self.take()
            self.depth -= 1
            return node
        if kind == "close":
            raise QueryError("a closing parenthesis has no opening one")
        return self.term(kind, value)

    def term(self, kind: str, value: str) -> Term | None:
        prefix = value.endswith("*")
        raw = value.rstrip("*")
        if kind == "phrase":
            raw = raw[1:-1]
        found = tuple(words(raw))
        if not found:
            return None      # punctuation alone: nothing to look for, as in the text
        if prefix and len(found[-1]) < MIN_PREFIX:
            raise QueryError(f"a prefix needs at least {MIN_PREFIX} letters before the *")
        self.terms += len(found)
        if self.terms > MAX_TERMS:
            raise QueryError(f"a query may hold at most {MAX_TERMS} words")
        return Term(found, prefix)


def parse(text: str) -> Node:
    """The query's tree; QueryError with the reason for anything else."""
    if len(text) > MAX_QUERY:
        raise QueryError(f"a query may be at most {MAX_QUERY} characters long")
    node = _Parser(_lex(text)).parse()
    if node is None:
        raise QueryError("the query has no words to search for")
    _check(node, top=True)
    return node


def _check(node: Node, top: bool = False) -> None:
    """What both backends can answer: every NOT beside a word that must be there."""
    if isinstance(node, Not):
        raise QueryError("NOT (or -) must follow something to search for: `war NOT games`"
                         if top else "NOT inside OR cannot be searched: put it beside a word, `(a OR b) NOT c`")
    if isinstance(node, And):
        positive = [i for i in node.items if not isinstance(i, Not)]
        if not positive:
            raise QueryError("NOT (or -) must follow something to search for: `war NOT games`")
        for item in positive:
            _check(item)
        for item in node.items:
            if isinstance(item, Not):
                _check(item.item)
    if isinstance(node, Or):
        for item in node.items:
            _check(item)


def terms(node: Node) -> list[Term]:
    """The words and phrases that must or may be there (not those after NOT): the hits to mark."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Not):
        return []
    return [t for item in node.items for t in terms(item)]


def fts5(node: Node) -> str:
    """The query as an SQLite FTS5 MATCH expression (words are letters and digits only)."""
    if isinstance(node, Term):
        return '"' + " ".join(node.words) + '"' + ("*" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(fts5(i) for i in node.items) + ")"
    if isinstance(node, And):
        positive = " AND ".join(fts5(i) for i in node.items if not isinstance(i, Not))
        negative = "".join(f" NOT {fts5(i.item)}" for i in node.items if isinstance(i, Not))
        return f"(({positive}){negative})" if negative else f"({positive})"
    raise QueryError("NOT must follow something to search for")


def _lexeme(word: str, prefix: bool = False) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")


def tsquery(node: Node) -> str:
    """The query as a PostgreSQL tsquery literal (read with ::tsquery, no parser between)."""
    if isinstance(node, Term):
        parts = [_lexeme(w, node.prefix and n == len(node.words) - 1) for n, w in enumerate(node.words)]
        return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"
    if isinstance(node, Not):
        return "!" + tsquery(node.item)
    joiner = " | " if isinstance(node, Or) else " & "
    return "(" + joiner.join(tsquery(i) for i in node.items) + ")"
