"""Reference Merkle tree builder: RFC 6962, section 2.1, transcribed literally as recursion.

Slow (it re-hashes subtrees and copies slices) but obviously correct; :mod:`proofs.merkle.fast`
is tested against it. Terms are defined in :mod:`proofs.merkle.core`.
"""

from __future__ import annotations

from collections.abc import Sequence

from proofs.hashing import SHA256, Hashing
from proofs.merkle.core import MerkleProof, check_index, empty_root, hash_node, split_point
from proofs.types import Root


def merkle_root(leaf_hashes: Sequence[bytes], domain: bytes, hashing: Hashing = SHA256) -> Root:
    """``MTH(D[0:n])`` of RFC 6962 over leaf hashes made by :func:`hash_leaf`."""
    size = len(leaf_hashes)
    if size == 0:
        return empty_root(domain, hashing)
    if size == 1:
        return Root(bytes(leaf_hashes[0]))
    k = split_point(size)
    left = merkle_root(leaf_hashes[:k], domain, hashing)
    right = merkle_root(leaf_hashes[k:], domain, hashing)
    return hash_node(left, right, domain, hashing)


def merkle_proof(
    leaf_hashes: Sequence[bytes], index: int, domain: bytes, hashing: Hashing = SHA256
) -> MerkleProof:
    """Inclusion proof of leaf ``index``: ``PATH(m, D[0:n])`` of RFC 6962, section 2.1.1."""
    check_index(index, len(leaf_hashes))
    path = audit_path(leaf_hashes, index, domain, hashing)
    return MerkleProof(index=index, size=len(leaf_hashes), path=tuple(path))


def audit_path(
    leaf_hashes: Sequence[bytes], index: int, domain: bytes, hashing: Hashing
) -> list[bytes]:
    """Sibling subtree roots from leaf ``index`` up to the root."""
    size = len(leaf_hashes)
    if size == 1:
        return []
    k = split_point(size)
    if index < k:
        below = audit_path(leaf_hashes[:k], index, domain, hashing)
        return below + [merkle_root(leaf_hashes[k:], domain, hashing)]
    below = audit_path(leaf_hashes[k:], index - k, domain, hashing)
    return below + [merkle_root(leaf_hashes[:k], domain, hashing)]
