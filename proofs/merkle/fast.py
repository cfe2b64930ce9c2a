"""Fast Merkle tree builder: bottom-up, one level at a time.

Each level pairs adjacent nodes and hashes ``0x01 || dom || left || right`` in one call; a last
unpaired node moves up unchanged. This is the same tree as the recursive definition of RFC 6962,
section 2.1 (the left subtree of every node is complete, so the only unpaired node of a level is
the rightmost one, which RFC 6962 also joins at a higher level) and is tested against
:mod:`proofs.merkle.reference`. Each node is hashed once; the node prefix is built once per tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proofs.hashing import SHA256, Hasher, Hashing
from proofs.merkle.core import MerkleProof, check_index, empty_root, node_prefix
from proofs.types import Root


def next_level(level: list[bytes], prefix: bytes, new: Callable[[bytes], Hasher]) -> list[bytes]:
    """The parents of one level: hashes of adjacent pairs, plus a last unpaired node as is."""
    parents = [new(prefix + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def merkle_root(leaf_hashes: Sequence[bytes], domain: bytes, hashing: Hashing = SHA256) -> Root:
    """Merkle root of leaf hashes made by :func:`hash_leaf` (same value as the reference)."""
    if len(leaf_hashes) == 0:
        return empty_root(domain, hashing)
    prefix, new = node_prefix(domain), hashing.new
    if len(leaf_hashes) <= 2:  # a lone leaf, or one node: most tensors of a small state
        return Root(bytes(leaf_hashes[0]) if len(leaf_hashes) == 1 else
                    new(prefix + bytes(leaf_hashes[0]) + bytes(leaf_hashes[1])).digest())
    level = [bytes(h) for h in leaf_hashes]
    while len(level) > 1:
        level = next_level(level, prefix, new)
    return Root(level[0])


def merkle_proof(
    leaf_hashes: Sequence[bytes], index: int, domain: bytes, hashing: Hashing = SHA256
) -> MerkleProof:
    """Inclusion proof of leaf ``index`` (same value as the reference)."""
    check_index(index, len(leaf_hashes))
    prefix, new = node_prefix(domain), hashing.new
    level, position, path = [bytes(h) for h in leaf_hashes], index, []
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level, position = next_level(level, prefix, new), position >> 1
    return MerkleProof(index=index, size=len(leaf_hashes), path=tuple(path))
