"""RFC 9162 Merkle trees: roots, proofs made from perfect nodes, checked with the RFC's own
verification algorithms against a naive reference implementation of MTH."""

import hashlib

import pytest

from archive.custody import merkle


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, written as the RFC states it (the reference)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def tree(n: int):
    leaves = [f"entry {i}".encode() for i in range(n)]
    frontier, nodes = merkle.Frontier(), {}
    for data in leaves:
        made = frontier.append(data)
        for (level, index), value in zip(merkle.completed_nodes(frontier.size), made):
            nodes[(level, index)] = value
    return leaves, frontier, nodes


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 20])
def test_roots_and_proofs_match_the_rfc(n):
    leaves, frontier, nodes = tree(n)
    get = lambda level, index: nodes[(level, index)]  # noqa: E731
    assert frontier.root() == mth(leaves)
    assert merkle.fold_peaks([nodes[p] for p in merkle.peak_nodes(n)]) == mth(leaves)
    for size in range(1, n + 1):
        root = mth(leaves[:size])
        for index in range(size):
            path = merkle.inclusion_path(index, size, get)
            leaf = merkle.leaf_hash(leaves[index])
            assert merkle.verify_inclusion(index, size, leaf, path, root)
            assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"forged"), path, root)
            if path:
                bad = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
                assert not merkle.verify_inclusion(index, size, leaf, bad, root)
        for old in range(1, size + 1):
            path = merkle.consistency_path(old, size, get)
            old_root = mth(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, root, path)
            if old < size:
                assert not merkle.verify_consistency(old, size, merkle.leaf_hash(b"x"), root, path)
                assert not merkle.verify_consistency(old, size, old_root, merkle.leaf_hash(b"x"), path)


def test_proofs_are_logarithmic_and_need_only_the_peaks_and_a_few_nodes():
    n = 1_000_000
    index = 123_457
    known = {}
    # the peaks of the tree at the leaf and at the head are read with those heads
    for size in (index, n):
        known.update({p: b"\0" * 32 for p in merkle.peak_nodes(size)})
    wanted = merkle.nodes_needed(lambda get: merkle.inclusion_path(index, n, get), known)
    assert len(wanted) <= 20
    wanted = merkle.nodes_needed(lambda get: merkle.consistency_path(index, n, get), known)
    assert len(wanted) <= 20
