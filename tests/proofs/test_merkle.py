"""One suite run against both Merkle builders (reference and fast)."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.hashing import DOMAIN_SHARD, DOMAIN_STATE, HASHINGS, SHA256, encode_domain
from proofs.merkle import (
    BACKENDS,
    MalformedProofError,
    MerkleProof,
    fast,
    hash_leaf,
    hash_node,
    merkle_proof,
    merkle_root,
    reference,
    verify_merkle_proof,
)

DOMAIN = DOMAIN_SHARD


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]


def leaves(size, hashing=SHA256):
    """Distinct leaf hashes (identical leaves would make index tampering undetectable)."""
    return [hash_leaf(i.to_bytes(4, "big"), DOMAIN, hashing) for i in range(size)]


def test_public_functions_are_the_fast_builder():
    assert merkle_root is fast.merkle_root and merkle_proof is fast.merkle_proof


def test_leaf_and_node_hashes_follow_rfc6962_with_a_domain_tag():
    dom = encode_domain(DOMAIN)
    assert hash_leaf(b"data", DOMAIN) == hashlib.sha256(b"\x00" + dom + b"data").digest()
    left, right = b"\x11" * 32, b"\x22" * 32
    assert hash_node(left, right, DOMAIN) == hashlib.sha256(b"\x01" + dom + left + right).digest()


@pytest.mark.parametrize("hashing", HASHINGS, ids=str)
def test_small_trees_have_the_rfc6962_shape(backend, hashing):
    a, b, c, d, e = leaves(5, hashing)

    def node(x, y):
        return hash_node(x, y, DOMAIN, hashing)

    assert backend.merkle_root([], DOMAIN, hashing) == hashing.digest(DOMAIN)
    assert backend.merkle_root([a], DOMAIN, hashing) == a
    assert backend.merkle_root([a, b], DOMAIN, hashing) == node(a, b)
    assert backend.merkle_root([a, b, c], DOMAIN, hashing) == node(node(a, b), c)
    five = node(node(node(a, b), node(c, d)), e)
    assert backend.merkle_root([a, b, c, d, e], DOMAIN, hashing) == five
    assert backend.merkle_proof([a, b, c, d, e], 4, DOMAIN, hashing).path == (
        node(node(a, b), node(c, d)),
    )
    assert backend.merkle_proof([a, b, c, d, e], 2, DOMAIN, hashing).path == (d, node(a, b), e)


def test_domain_separates_roots(backend):
    hashes = leaves(3)
    assert backend.merkle_root(hashes, DOMAIN) != backend.merkle_root(hashes, DOMAIN_STATE)
    assert backend.merkle_root([], DOMAIN) != backend.merkle_root([], DOMAIN_STATE)


@pytest.mark.parametrize("size", range(1, 34))
def test_every_proof_verifies(backend, size):
    hashes = leaves(size)
    root = backend.merkle_root(hashes, DOMAIN)
    for index in range(size):
        proof = backend.merkle_proof(hashes, index, DOMAIN)
        assert verify_merkle_proof(root, hashes[index], proof, DOMAIN)
        # A one-leaf tree has no node hashes, so only its leaf hash carries the domain.
        assert size == 1 or not verify_merkle_proof(root, hashes[index], proof, DOMAIN_STATE)


def test_proof_index_out_of_range_is_named(backend):
    with pytest.raises(IndexError, match="7"):
        backend.merkle_proof(leaves(3), 7, DOMAIN)
    with pytest.raises(IndexError):
        backend.merkle_proof([], 0, DOMAIN)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.data())
def test_builders_agree_and_proofs_verify(size, data):
    hashes = leaves(size)
    root = reference.merkle_root(hashes, DOMAIN)
    assert fast.merkle_root(hashes, DOMAIN) == root
    if size == 0:
        return
    index = data.draw(st.integers(0, size - 1))
    proof = fast.merkle_proof(hashes, index, DOMAIN)
    assert reference.merkle_proof(hashes, index, DOMAIN) == proof
    assert verify_merkle_proof(root, hashes[index], proof, DOMAIN)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.data())
def test_tampered_proofs_fail(size, data):
    hashes = leaves(size)
    root = fast.merkle_root(hashes, DOMAIN)
    index = data.draw(st.integers(0, size - 1))
    proof = fast.merkle_proof(hashes, index, DOMAIN)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index)) if size > 1 else None
    # Tampered leaf.
    assert not verify_merkle_proof(root, hash_leaf(b"forged", DOMAIN), proof, DOMAIN)
    # Tampered index (same size).
    if other is not None:
        moved = MerkleProof(other, size, proof.path)
        assert not verify_merkle_proof(root, hashes[index], moved, DOMAIN)
    # Tampered path: one bit flipped, one hash dropped, one hash added.
    if proof.path:
        at = data.draw(st.integers(0, len(proof.path) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = bytearray(proof.path[at])
        flipped[bit // 8] ^= 1 << (bit % 8)
        path = proof.path[:at] + (bytes(flipped),) + proof.path[at + 1 :]
        assert not verify_merkle_proof(root, hashes[index], MerkleProof(index, size, path), DOMAIN)
        shorter = MerkleProof(index, size, proof.path[:-1])
        assert not verify_merkle_proof(root, hashes[index], shorter, DOMAIN)
    longer = MerkleProof(index, size, (*proof.path, root))
    assert not verify_merkle_proof(root, hashes[index], longer, DOMAIN)
    # Tampered root.
    assert not verify_merkle_proof(hashes[index], hashes[index], proof, DOMAIN) or size == 1


@pytest.mark.parametrize(
    "args",
    [
        (b"short", b"\x00" * 32, MerkleProof(0, 1, ())),
        (b"\x00" * 32, b"\x00" * 32, MerkleProof(1, 1, ())),
        (b"\x00" * 32, b"\x00" * 32, MerkleProof(-1, 1, ())),
        (b"\x00" * 32, b"\x00" * 32, MerkleProof(0, 2, (b"x",))),
        (b"\x00" * 32, b"\x00" * 32, MerkleProof(0, 2, ("00" * 32,))),
        (b"\x00" * 32, b"\x00" * 32, MerkleProof(0, 2, [b"\x00" * 32])),
        (b"\x00" * 32, b"\x00" * 32, {"index": 0, "size": 1, "path": []}),
        (None, None, None),
    ],
)
def test_verify_never_raises_on_malformed_input(args):
    assert verify_merkle_proof(*args, DOMAIN) is False


def test_verify_never_raises_on_bad_domain_or_hash():
    hashes = leaves(2)
    root, proof = merkle_root(hashes, DOMAIN), merkle_proof(hashes, 0, DOMAIN)
    assert verify_merkle_proof(root, hashes[0], proof, b"", SHA256) is False
    assert verify_merkle_proof(root, hashes[0], proof, "text", SHA256) is False
    assert verify_merkle_proof(root, hashes[0], proof, DOMAIN, "md5") is False


@pytest.mark.parametrize("size", [1, 2, 5, 64])
def test_proof_dict_round_trip(size):
    proof = merkle_proof(leaves(size), size - 1, DOMAIN)
    assert MerkleProof.from_dict(proof.to_dict()) == proof


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"index": 0, "size": 0, "path": []},
        {"index": 2, "size": 2, "path": []},
        {"index": True, "size": 2, "path": []},
        {"index": 0, "size": 2, "path": "00"},
        {"index": 0, "size": 2, "path": ["zz"]},
        {"index": 0, "size": 2, "path": ["00" * 31]},
        {"index": 0, "size": 2, "path": [7]},
    ],
)
def test_malformed_proof_dicts_are_named(data):
    with pytest.raises(MalformedProofError):
        MerkleProof.from_dict(data)


@given(
    st.dictionaries(
        st.sampled_from(["index", "size", "path", "x"]),
        st.one_of(
            st.integers(-2, 3),
            st.lists(st.text("0af", min_size=62, max_size=66), max_size=3),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_fuzzed_proof_dicts_raise_only_the_named_error(data):
    try:
        proof = MerkleProof.from_dict(data)
    except MalformedProofError:
        return
    assert MerkleProof.from_dict(proof.to_dict()) == proof
