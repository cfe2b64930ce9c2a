"""Merkle trees and inclusion proofs (RFC 6962 with domain tags).

Two builders share one API: :mod:`proofs.merkle.reference` (the recursive definition of RFC 6962)
and :mod:`proofs.merkle.fast` (bottom-up, level by level). The functions exported here are the fast
ones. Hashing rules, proofs and their verification are in :mod:`proofs.merkle.core`.
"""

from proofs.merkle import fast, reference
from proofs.merkle.core import (
    MalformedProofError,
    MerkleProof,
    empty_root,
    hash_leaf,
    hash_node,
    verify_merkle_proof,
)

merkle_root = fast.merkle_root
merkle_proof = fast.merkle_proof

BACKENDS = {"reference": reference, "fast": fast}

__all__ = [
    "BACKENDS",
    "MalformedProofError",
    "MerkleProof",
    "empty_root",
    "fast",
    "hash_leaf",
    "hash_node",
    "merkle_proof",
    "merkle_root",
    "reference",
    "verify_merkle_proof",
]
