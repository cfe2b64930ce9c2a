"""One suite run against every BLS backend, plus cross-backend agreement and known answers."""

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py_arkworks_bls12381 import G1Point, G2Point
from py_ecc.bls.g2_primitives import G2_to_signature
from py_ecc.bls.hash_to_curve import hash_to_G2, map_to_curve_G2
from py_ecc.optimized_bls12_381 import FQ2, field_modulus, normalize
from pyblst import BlstP2Element

from proofs.bls import (
    BACKEND_ENV_VAR,
    BACKEND_NAMES,
    DEFAULT_BACKEND,
    MalformedKeyError,
    MalformedSignatureError,
    SecretKeyError,
    UnknownBackendError,
    decode_pubkey,
    decode_signature,
    get_backend,
)
from proofs.bls.common import CURVE_ORDER
from tests.proofs import bls_vectors as vectors

PY_ECC = get_backend("py_ecc")
FAST_NAMES = tuple(name for name in BACKEND_NAMES if name != "py_ecc")
SLOW = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    return get_backend(request.param)


# -- known answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("i", range(3))
def test_spec_public_keys(backend, i):
    assert backend.sk_to_pk(vectors.PRIVKEYS[i]).hex() == vectors.PUBKEYS[i]


@pytest.mark.parametrize("i", range(3))
@pytest.mark.parametrize("j", range(3))
def test_spec_signatures(backend, i, j):
    assert backend.sign(vectors.PRIVKEYS[i], vectors.MESSAGES[j]).hex() == vectors.SIGNATURES[i][j]


@pytest.mark.parametrize("case", vectors.VERIFY_CASES)
def test_spec_verify_cases(backend, case):
    pk, message, signature, expected = case
    assert backend.verify(bytes.fromhex(pk), message, bytes.fromhex(signature)) is expected


@pytest.mark.parametrize("reason", sorted(vectors.INVALID_PUBKEYS))
def test_spec_invalid_public_keys(backend, reason):
    pk = bytes.fromhex(vectors.INVALID_PUBKEYS[reason])
    with pytest.raises(MalformedKeyError, match=pk.hex()):
        backend.decode_pubkey(pk)
    # With the identity key the identity signature passes the pairing check: KeyValidate stops it.
    infinity = bytes.fromhex(vectors.INFINITY_SIGNATURE)
    assert backend.pop_verify(pk, infinity) is False
    assert backend.verify(pk, b"m", infinity) is False
    assert backend.fast_aggregate_verify([pk], b"m", infinity) is False


def test_hash_to_g2_of_every_library_is_rfc9380():
    x0, x1, y0, y1 = vectors.HASH_TO_G2_EMPTY
    x, y = normalize(hash_to_G2(b"", vectors.HASH_TO_G2_DST, hashlib.sha256))
    assert [int(c) for c in (*x.coeffs, *y.coeffs)] == [x0, x1, y0, y1]
    xy = G2Point.hash_to_curve(b"", vectors.HASH_TO_G2_DST).to_xy_bytes_be()
    assert xy == b"".join(c.to_bytes(48, "big") for c in (x0, x1, y0, y1))
    compressed = G2Point.hash_to_curve(b"", vectors.HASH_TO_G2_DST).to_compressed_bytes()
    assert BlstP2Element.hash_to_group(b"", vectors.HASH_TO_G2_DST).compress() == compressed


# -- the API on each backend -------------------------------------------------------------------
def keypair(backend, seed):
    sk = backend.key_gen(bytes([seed]) * 32)
    return sk, backend.sk_to_pk(sk)


def test_sign_verify_round_trip_and_failures(backend):
    sk, pk = keypair(backend, 1)
    _, other_pk = keypair(backend, 2)
    signature = backend.sign(sk, b"message")
    assert len(pk) == 48 and len(signature) == 96
    assert backend.verify(pk, b"message", signature)
    assert not backend.verify(pk, b"massage", signature)
    assert not backend.verify(other_pk, b"message", signature)
    assert not backend.verify(pk, b"message", backend.sign(sk, b"other"))


def test_aggregate_and_fast_aggregate_verify(backend):
    keys = [keypair(backend, seed) for seed in (1, 2, 3)]
    pks = [pk for _, pk in keys]
    signatures = [backend.sign(sk, b"verdict") for sk, _ in keys]
    aggregate = backend.aggregate(signatures)
    assert aggregate == PY_ECC.aggregate(signatures)
    assert backend.fast_aggregate_verify(pks, b"verdict", aggregate)
    assert not backend.fast_aggregate_verify(pks, b"other", aggregate)
    assert not backend.fast_aggregate_verify(pks[:2], b"verdict", aggregate)
    assert not backend.fast_aggregate_verify([], b"verdict", aggregate)
    negated = (-G1Point.from_compressed_bytes(pks[0])).to_compressed_bytes()
    assert not backend.fast_aggregate_verify([pks[0], negated], b"verdict", aggregate)
    with pytest.raises(MalformedSignatureError):
        backend.aggregate([])
    with pytest.raises(MalformedSignatureError, match="00ff"):
        backend.aggregate([aggregate, b"\x00\xff"])


def test_proof_of_possession(backend):
    sk, pk = keypair(backend, 4)
    _, other_pk = keypair(backend, 5)
    proof = backend.pop_prove(sk)
    assert backend.pop_verify(pk, proof)
    assert not backend.pop_verify(other_pk, proof)
    # A signature on the key's bytes under the signing DST is not a proof of possession.
    assert not backend.pop_verify(pk, backend.sign(sk, pk))


@pytest.mark.parametrize("sk", [0, CURVE_ORDER, -1, True, 1.0, "1"])
def test_secret_keys_out_of_range_are_rejected(backend, sk):
    with pytest.raises(SecretKeyError):
        backend.sk_to_pk(sk)
    with pytest.raises(SecretKeyError):
        backend.sign(sk, b"m")


def test_key_material_must_be_32_bytes(backend):
    with pytest.raises(SecretKeyError):
        backend.key_gen(b"\x01" * 31)
    with pytest.raises(TypeError):
        backend.sign(1, "text")


@pytest.mark.parametrize(
    "args",
    [
        (None, b"m", None),
        (b"", b"", b""),
        ("pk", b"m", "sig"),
        (b"\x00" * 48, b"m", b"\x00" * 96),
        (bytes.fromhex(vectors.PUBKEYS[0]), "m", bytes.fromhex(vectors.SIGNATURES[0][0])),
        (bytes.fromhex(vectors.PUBKEYS[0]), b"m", bytes.fromhex(vectors.INFINITY_SIGNATURE)),
    ],
)
def test_verifiers_never_raise(backend, args):
    pk, message, signature = args
    assert backend.verify(pk, message, signature) is False
    assert backend.pop_verify(pk, signature) is False
    assert backend.fast_aggregate_verify([pk], message, signature) is False
    assert backend.fast_aggregate_verify(pk, message, signature) is False


def test_infinity_signature_decodes(backend):
    infinity = bytes.fromhex(vectors.INFINITY_SIGNATURE)
    assert backend.decode_signature(infinity) == infinity


# -- cross-backend agreement -------------------------------------------------------------------
def assert_all_like_reference(run):
    """``run(backend)`` gives on every backend what it gives on py_ecc, the reference."""
    outcomes = {name: run(get_backend(name)) for name in BACKEND_NAMES}
    assert outcomes == dict.fromkeys(BACKEND_NAMES, outcomes["py_ecc"])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=80))
def test_key_derivation_agrees(ikm):
    assert_all_like_reference(lambda backend: backend.key_gen(ikm))


@SLOW
@given(st.integers(1, CURVE_ORDER - 1), st.binary(max_size=64))
def test_outputs_are_byte_identical(sk, message):
    assert_all_like_reference(lambda backend: backend.sk_to_pk(sk))
    assert_all_like_reference(lambda backend: backend.sign(sk, message))
    assert_all_like_reference(lambda backend: backend.pop_prove(sk))


def mutated(valid: bytes):
    """Valid encodings with one byte changed or truncated, or random bytes of random length."""
    flip = st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)).map(
        lambda change: (
            valid[: change[0]] + bytes([valid[change[0]] ^ change[1]]) + valid[change[0] + 1 :]
        )
    )
    return st.one_of(
        flip, st.integers(0, len(valid)).map(lambda n: valid[:n]), st.binary(max_size=100)
    )


VALID_PK = bytes.fromhex(vectors.PUBKEYS[1])
VALID_SIG = bytes.fromhex(vectors.SIGNATURES[1][1])


def decode_outcome(decode, data, error):
    try:
        return decode(data)
    except error as raised:
        assert data.hex() in str(raised)
        return error


@settings(max_examples=60, deadline=None)
@given(mutated(VALID_PK))
def test_pubkey_decoders_agree_and_raise_only_the_named_error(data):
    assert_all_like_reference(lambda b: decode_outcome(b.decode_pubkey, data, MalformedKeyError))


@settings(max_examples=25, deadline=None)
@given(mutated(VALID_SIG))
def test_signature_decoders_agree_and_raise_only_the_named_error(data):
    error = MalformedSignatureError
    assert_all_like_reference(lambda b: decode_outcome(b.decode_signature, data, error))


@pytest.mark.parametrize("flags", [0xA0, 0xE0, 0xFF, 0x40, 0x00])
def test_non_canonical_infinity_encodings_are_rejected(backend, flags):
    with pytest.raises(MalformedKeyError):
        backend.decode_pubkey(bytes([flags]) + b"\x00" * 47)
    with pytest.raises(MalformedSignatureError):
        backend.decode_signature(bytes([flags]) + b"\x00" * 95)
    with pytest.raises(MalformedSignatureError):
        backend.decode_signature(b"\xc0" + b"\x00" * 94 + b"\x01")


# A point on the curve E2 outside G2: the simplified SWU map of RFC 9380 before cofactor clearing.
NOT_IN_G2 = G2_to_signature(map_to_curve_G2(FQ2([1, 2])))
COMPRESSED_FLAG = bytes([0x80]) + b"\x00" * 47


def test_signature_outside_g2_is_rejected(backend):
    with pytest.raises(MalformedSignatureError, match=NOT_IN_G2.hex()):
        backend.decode_signature(NOT_IN_G2)
    assert backend.verify(VALID_PK, b"m", NOT_IN_G2) is False
    with pytest.raises(MalformedSignatureError, match=NOT_IN_G2.hex()):
        backend.aggregate([VALID_SIG, NOT_IN_G2])


@pytest.mark.parametrize("excess", [0, 1, 4])
def test_coordinates_of_at_least_the_field_modulus_are_rejected(backend, excess):
    x = (field_modulus + excess).to_bytes(48, "big")
    flagged = bytes(a | b for a, b in zip(x, COMPRESSED_FLAG, strict=True))
    with pytest.raises(MalformedKeyError, match=flagged.hex()):
        backend.decode_pubkey(flagged)
    for signature in (flagged + b"\x00" * 48, COMPRESSED_FLAG + x):
        with pytest.raises(MalformedSignatureError, match=signature.hex()):
            backend.decode_signature(signature)


@pytest.mark.parametrize("name", FAST_NAMES)
@settings(max_examples=100, deadline=None)
@given(st.one_of(mutated(VALID_PK), st.none(), st.text()), st.binary(), mutated(VALID_SIG))
def test_fast_verifiers_never_raise(name, pk, message, signature):
    backend = get_backend(name)
    assert backend.verify(pk, message, signature) is False
    assert backend.pop_verify(pk, signature) is False
    assert backend.fast_aggregate_verify([pk], message, signature) is False


@SLOW
@given(mutated(VALID_PK), st.binary(max_size=8), mutated(VALID_SIG))
def test_py_ecc_verifiers_never_raise(pk, message, signature):
    assert PY_ECC.verify(pk, message, signature) is False
    assert PY_ECC.fast_aggregate_verify([pk], message, signature) is False


# -- backend selection -------------------------------------------------------------------------
def test_default_backend_and_environment_override(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    assert get_backend().name == DEFAULT_BACKEND == "blst"
    monkeypatch.setenv(BACKEND_ENV_VAR, "py_ecc")
    assert get_backend().name == "py_ecc"
    assert decode_pubkey(VALID_PK) == VALID_PK and decode_signature(VALID_SIG) == VALID_SIG
    monkeypatch.setenv(BACKEND_ENV_VAR, "mcl")
    with pytest.raises(UnknownBackendError, match="mcl"):
        get_backend()
    with pytest.raises(MalformedKeyError):
        decode_pubkey(b"", "py_ecc")
