"""Merkle hashing rules and inclusion proofs shared by both tree builders.

The tree is the Merkle Tree Hash of RFC 6962 (Certificate Transparency), section 2.1, with a domain
tag added to every hash so that trees of different kinds (tensor, state, trace, dataset, ...) never
share nodes.

Terms
-----
leaf hash
    ``H(0x00 || dom || data)`` where ``dom = u8(len(domain)) || domain`` (see
    :func:`proofs.hashing.encode_domain`).
node hash
    ``H(0x01 || dom || left || right)`` for two 32-byte child hashes.
Merkle root of ``n`` leaf hashes ``D[0:n]`` (RFC 6962, section 2.1)
    ``n = 0``: the *empty root* ``H(domain)``. Domain tags are printable ASCII, so this input never
    begins with ``0x00`` or ``0x01`` and cannot equal a leaf or node input.
    ``n = 1``: the leaf hash ``D[0]`` itself.
    ``n > 1``: ``node(root(D[0:k]), root(D[k:n]))`` where ``k`` is the largest power of two
    ``< n``. An odd node is never duplicated (unlike Bitcoin's tree), so no two leaf lists share a
    root (CVE-2012-2459 does not apply).
inclusion proof (RFC 6962 "audit path", RFC 9162 section 2.1.3)
    The leaf ``index``, the tree ``size`` and the sibling hashes from the leaf up to the root.
    A proof binds the leaf to the root only together with the tree size, and the size is not
    committed in the root: verifiers take ``size`` (and usually ``index``) from what they already
    know, e.g. the number of checkpoints in a signed commitment, and compare it with the proof's.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from proofs.hashing import DIGEST_SIZE, SHA256, DomainError, Hashing, encode_domain
from proofs.types import Root, decode_root

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


class MalformedProofError(ValueError):
    """A serialized Merkle proof that cannot be decoded."""


@dataclass(frozen=True)
class MerkleProof:
    """Inclusion proof of the leaf at ``index`` in a tree of ``size`` leaves (leaf-to-root path)."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON form: ``{"index": int, "size": int, "path": [hex, ...]}``."""
        return {"index": self.index, "size": self.size, "path": [h.hex() for h in self.path]}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> MerkleProof:
        """Inverse of :meth:`to_dict`; raises :class:`MalformedProofError` naming the bad value."""
        if not isinstance(data, Mapping):
            raise MalformedProofError(f"Merkle proof must be a mapping, got {data!r}")
        index, size, path = data.get("index"), data.get("size"), data.get("path")
        # Rule: index and size are integers with 0 <= index < size.
        if type(index) is not int or type(size) is not int or not 0 <= index < size:
            raise MalformedProofError(f"Merkle proof has bad index/size {index!r}/{size!r}")
        if not isinstance(path, list):
            raise MalformedProofError(f"Merkle proof path must be a list, got {path!r}")
        return cls(index=index, size=size, path=tuple(_decode_path_hash(h) for h in path))


def _decode_path_hash(value: object) -> bytes:
    """One 32-byte path hash from its hex form."""
    try:
        return decode_root(value)
    except ValueError as error:
        raise MalformedProofError(f"Merkle proof path hash {error}") from None


@functools.lru_cache(maxsize=64)
def leaf_prefix(domain: bytes) -> bytes:
    """The bytes hashed before a leaf's data: ``0x00 || dom``."""
    return LEAF_PREFIX + encode_domain(domain)


@functools.lru_cache(maxsize=64)
def node_prefix(domain: bytes) -> bytes:
    """The bytes hashed before a node's two children: ``0x01 || dom``."""
    return NODE_PREFIX + encode_domain(domain)


def hash_leaf(data: bytes, domain: bytes, hashing: Hashing = SHA256) -> Root:
    """Leaf hash ``H(0x00 || dom || data)``."""
    hasher = hashing.new(leaf_prefix(domain))
    hasher.update(data)
    return Root(hasher.digest())


def hash_node(left: bytes, right: bytes, domain: bytes, hashing: Hashing = SHA256) -> Root:
    """Node hash ``H(0x01 || dom || left || right)``."""
    return Root(hashing.new(node_prefix(domain) + left + right).digest())


def empty_root(domain: bytes, hashing: Hashing = SHA256) -> Root:
    """Root of the tree with no leaves: ``H(domain)``."""
    encode_domain(domain)  # Rule: only valid domain tags name a tree.
    return Root(hashing.new(domain).digest())


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size >= 2``), RFC 6962 section 2.1."""
    return 1 << ((size - 1).bit_length() - 1)


def check_index(index: int, size: int) -> None:
    """Raise :class:`IndexError` unless ``0 <= index < size``."""
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} out of range for a Merkle tree of {size} leaves")


def is_valid_proof_shape(root: object, leaf_hash: object, proof: object) -> bool:
    """Whether the arguments of :func:`verify_merkle_proof` have the right types and sizes."""
    return (
        isinstance(proof, MerkleProof)
        and type(proof.index) is int
        and type(proof.size) is int
        and 0 <= proof.index < proof.size
        and isinstance(proof.path, tuple)
        and all(isinstance(h, bytes) and len(h) == DIGEST_SIZE for h in proof.path)
        and isinstance(root, bytes)
        and isinstance(leaf_hash, bytes)
        and len(root) == len(leaf_hash) == DIGEST_SIZE
    )


def verify_merkle_proof(
    root: bytes, leaf_hash: bytes, proof: MerkleProof, domain: bytes, hashing: Hashing = SHA256
) -> bool:
    """Whether ``proof`` shows ``leaf_hash`` at ``proof.index`` of a ``proof.size``-leaf tree.

    The algorithm of RFC 9162, section 2.1.3.2. Never raises: malformed input gives ``False``.
    """
    if not is_valid_proof_shape(root, leaf_hash, proof) or not isinstance(hashing, Hashing):
        return False
    try:
        prefix = node_prefix(domain)
    except (DomainError, TypeError):
        return False
    new = hashing.new
    fn, sn, node = proof.index, proof.size - 1, leaf_hash
    for sibling in proof.path:
        # Rule: the path may not be longer than the tree is deep.
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = new(prefix + sibling + node).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = new(prefix + node + sibling).digest()
        fn, sn = fn >> 1, sn >> 1
    # Rule: the path reaches the root exactly, and its hash is the committed root.
    return sn == 0 and node == root
