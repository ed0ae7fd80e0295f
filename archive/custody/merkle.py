"""RFC 9162 (Certificate Transparency 2.0) Merkle trees over custody entries.

leaf = SHA-256(0x00 || entry bytes), node = SHA-256(0x01 || left || right); the tree over
n leaves splits at the largest power of two below n (RFC 9162 section 2.1.1).

A tree is stored as its *perfect nodes*: the node at (level k, index j) is the hash of the
2**k leaves [j * 2**k, (j + 1) * 2**k). Every node the RFC's proofs need is either such a
node or a fold of the *peaks* of a tree size (its perfect nodes by the binary digits of
the size, largest first), so proofs are made here from a `get(level, index)` callable, and
the stores only ever keep perfect nodes (ledger.py). Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable

from archive.errors import ArchiveError

Node = tuple[int, int]                  # (level, index) of a perfect node
Get = Callable[[int, int], bytes]       # (level, index) -> its hash


class ProofError(ArchiveError, ValueError):
    """A proof that does not hold."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def peak_nodes(size: int) -> list[Node]:
    """The perfect nodes a tree of `size` leaves is made of, left to right."""
    out, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def fold_peaks(peaks: list[bytes]) -> bytes:
    """The root of a tree from its peaks (left to right), as RFC 9162 shapes it."""
    if not peaks:
        return empty_root()
    root = peaks[-1]
    for peak in reversed(peaks[:-1]):
        root = node_hash(peak, root)
    return root


def completed_nodes(size: int) -> list[Node]:
    """The perfect nodes that appending leaf number `size` (1-based) completes: levels
    0 up to the number of trailing zero bits of `size`."""
    return [(level, (size >> level) - 1) for level in range((size & -size).bit_length())]


class Frontier:
    """A tree built leaf by leaf in constant memory (its peaks only): the streaming
    check of a whole log recomputes every root and every perfect node with it."""

    def __init__(self, size: int = 0, peaks: Iterable[bytes] = ()) -> None:
        self.size = size
        self.peaks = list(peaks)
        if len(self.peaks) != bin(size).count("1"):
            raise ValueError(f"{len(self.peaks)} peaks cannot make a tree of {size} leaves")

    def append(self, data: bytes) -> list[bytes]:
        """Add one leaf (entry bytes); returns the hashes of the nodes it completed,
        level 0 first (see completed_nodes)."""
        made = [leaf_hash(data)]
        self.size += 1
        for _ in range((self.size & -self.size).bit_length() - 1):   # trailing zero bits
            made.append(node_hash(self.peaks.pop(), made[-1]))
        self.peaks.append(made[-1])
        return made

    def root(self) -> bytes:
        return fold_peaks(self.peaks)


def subtree_hash(lo: int, hi: int, get: Get) -> bytes:
    """MTH of leaves [lo, hi), a subtree of the RFC shape (lo aligned to its split)."""
    n = hi - lo
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, lo >> level)
    k = _split(n)
    return node_hash(subtree_hash(lo, lo + k, get), subtree_hash(lo + k, hi, get))


def inclusion_path(index: int, size: int, get: Get) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[size]): siblings from the leaf up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    path, lo, hi = [], 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            path.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, get))
            lo += k
    return path[::-1]


def consistency_path(old: int, new: int, get: Get) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old, D[new])."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from {old} to {new} entries")
    path, lo, hi, m, whole = [], 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, get))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(subtree_hash(lo, hi, get))
    return path[::-1]


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2 (with its trivial cases: equal sizes, an empty old tree)."""
    if old == new:
        return not path and old_root == new_root
    if old == 0:
        return True
    if not path or old > new:
        return False
    if old & (old - 1) == 0:
        path = [old_root, *path]
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0


def nodes_needed(make: Callable[[Get], object], known: dict[Node, bytes]) -> list[Node]:
    """The perfect nodes a proof built by `make(get)` reads that `known` lacks (to fetch
    them all at once, in parallel, before building it for real)."""
    wanted: list[Node] = []

    def record(level: int, index: int) -> bytes:
        if (level, index) not in known and (level, index) not in wanted:
            wanted.append((level, index))
        return known.get((level, index), b"\0" * 32)

    make(record)
    return wanted
