import dataclasses
import json
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.bls import get_backend
from proofs.keys import KeyRegistry, derive_keypair, register_party
from proofs.messages import (
    GAME_MOVES,
    AggregateAttestation,
    Attestation,
    Commitment,
    Equivocation,
    MalformedMessageError,
    OpenOp,
    RevealCheckpoint,
    RuleOnOperator,
    Ruling,
    Signed,
    aggregate_attestations,
    decode_message,
    encode_message,
    is_signed_by,
    is_valid_equivocation,
    message_from_json,
    message_id,
    message_to_json,
    sign_message,
    signing_root,
    verify_aggregate_attestation,
    verify_signed,
)

FAST = get_backend("arkworks")
ROOT_A, ROOT_B = b"\xaa" * 32, b"\xbb" * 32

roots = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)
names = st.text(max_size=12)
FIELD_VALUES = {bytes: roots, int: u64, str: names, bool: st.booleans(),
                tuple[str, ...]: st.lists(names, max_size=3).map(tuple)}


def game_moves(cls: type) -> st.SearchStrategy:
    """Any ``cls`` game move: each field drawn by its type (roots as 32 bytes)."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: FIELD_VALUES[bytes if hints[f.name].__name__ == "Root" else hints[f.name]]
                             for f in dataclasses.fields(cls)})


moves = st.one_of(*(game_moves(cls) for cls in GAME_MOVES))
messages = st.one_of(
    st.builds(Commitment, names, names, roots, roots, u64, u64),
    st.builds(Attestation, names, names, names, roots, st.booleans()),
    st.builds(Ruling, names, names, u64, names, names, roots, roots, roots),
    moves,
)


def commitment(trace_root=ROOT_A, final_root=ROOT_B, solver="solver-1"):
    return Commitment("job-1", solver, trace_root, final_root, 100, 10)


@pytest.fixture
def registry():
    registry = KeyRegistry(FAST)
    for party in ("solver-1", "solver-2", "v1", "v2", "v3"):
        register_party(registry, party, derive_keypair(b"seed", party, FAST)[0])
    return registry


def sk(party):
    return derive_keypair(b"seed", party, FAST)[0]


# -- encoding ----------------------------------------------------------------------------------
def test_encoding_layout():
    encoded = encode_message(Commitment("j", "s", ROOT_A, ROOT_B, 3, 1))
    assert encoded == (
        b"\x0aCommitment"
        + b"\x00\x00\x00\x01j"
        + b"\x00\x00\x00\x01s"
        + ROOT_A
        + ROOT_B
        + (3).to_bytes(8, "big")
        + (1).to_bytes(8, "big")
        + b"\x00\x00\x00\x00"  # environment: empty
    )


@given(messages)
def test_encode_decode_round_trip(message):
    encoded = encode_message(message)
    assert decode_message(encoded) == message
    assert message_id(decode_message(encoded)) == message_id(message)


@given(messages, st.data())
def test_fuzzed_bytes_raise_only_the_named_error(message, data):
    encoded = encode_message(message)
    fuzzed = data.draw(
        st.one_of(
            st.binary(max_size=200),
            st.integers(0, len(encoded) - 1).map(lambda n: encoded[:n]),
            st.binary(min_size=1, max_size=4).map(lambda extra: encoded + extra),
            st.tuples(st.integers(0, len(encoded) - 1), st.integers(1, 255)).map(
                lambda c: encoded[: c[0]] + bytes([encoded[c[0]] ^ c[1]]) + encoded[c[0] + 1 :]
            ),
        )
    )
    try:
        decoded = decode_message(fuzzed)
    except MalformedMessageError:
        return
    # Anything accepted is canonical.
    assert encode_message(decoded) == fuzzed


@pytest.mark.parametrize(
    "message",
    [
        Commitment("j", "s", b"short", ROOT_B, 1, 1),
        Commitment("j", "s", ROOT_A, ROOT_B, -1, 1),
        Commitment("j", "s", ROOT_A, ROOT_B, 2**64, 1),
        Commitment("j", "s", ROOT_A, ROOT_B, True, 1),
        Commitment(7, "s", ROOT_A, ROOT_B, 1, 1),
        Commitment("\ud800", "s", ROOT_A, ROOT_B, 1, 1),
        Attestation("j", "v", "s", ROOT_A, 1),
        "not a message",
    ],
)
def test_unencodable_messages_are_named(message):
    with pytest.raises(MalformedMessageError):
        encode_message(message)


def test_decode_rejects_non_canonical_bytes():
    encoded = encode_message(Attestation("j", "v", "s", ROOT_A, True))
    with pytest.raises(MalformedMessageError, match="bool byte 0x02"):
        decode_message(encoded[:-1] + b"\x02")
    with pytest.raises(MalformedMessageError, match="trailing"):
        decode_message(encoded + b"\x00")
    with pytest.raises(MalformedMessageError, match="unknown message tag"):
        decode_message(b"\x06Signed")
    with pytest.raises(MalformedMessageError):
        decode_message("text")


def test_ids_and_signing_roots():
    a = Attestation("j", "v1", "s", ROOT_A, True)
    b = dataclasses.replace(a, verifier_id="v2")
    assert message_id(a) != message_id(b)
    assert signing_root(a) == signing_root(b)  # verifier_id is unsigned: votes aggregate
    assert signing_root(a) != signing_root(dataclasses.replace(a, verdict=False))
    assert signing_root(a) != message_id(a)
    assert message_id(commitment()) != message_id(commitment(trace_root=ROOT_B))


# -- signatures --------------------------------------------------------------------------------
def test_sign_and_verify_with_the_reference_backend():
    reference = get_backend("py_ecc")
    key = derive_keypair(b"seed", "solver-1", reference)[0]
    signed = sign_message(commitment(), key, "solver-1", reference)
    assert signed == sign_message(commitment(), key, "solver-1", FAST)
    assert verify_signed(signed, reference)


def test_verify_signed(registry):
    signed = sign_message(commitment(), sk("solver-1"), "solver-1", FAST)
    assert isinstance(signed, Signed) and verify_signed(signed, FAST)
    assert is_signed_by(signed, registry)
    forged = dataclasses.replace(signed, message=commitment(trace_root=ROOT_B))
    assert not verify_signed(forged, FAST) and not is_signed_by(forged, registry)
    impostor = dataclasses.replace(signed, signer="solver-2")
    assert verify_signed(impostor, FAST) and not is_signed_by(impostor, registry)
    for bad in [
        None,
        dataclasses.replace(signed, message="text"),
        dataclasses.replace(signed, signature=b"\x00"),
        dataclasses.replace(signed, public_key=None),
    ]:
        assert verify_signed(bad, FAST) is False
        assert is_signed_by(bad, registry) is False


def test_aggregate_attestation(registry):
    vote = Attestation("job-1", "v1", "solver-1", ROOT_A, True)
    signed = [
        sign_message(dataclasses.replace(vote, verifier_id=v), sk(v), v, FAST)
        for v in ("v1", "v2", "v3")
    ]
    aggregate = aggregate_attestations(signed, FAST)
    assert aggregate.verifier_ids == ("v1", "v2", "v3")
    assert verify_aggregate_attestation(aggregate, registry)
    assert not verify_aggregate_attestation(dataclasses.replace(aggregate, verdict=False), registry)
    assert not verify_aggregate_attestation(
        dataclasses.replace(aggregate, verifier_ids=("v1", "v2", "v2")), registry
    )
    assert not verify_aggregate_attestation(
        dataclasses.replace(aggregate, verifier_ids=("v2", "v1", "v3")), registry
    )
    assert not verify_aggregate_attestation(
        dataclasses.replace(aggregate, public_keys=aggregate.public_keys[:2]), registry
    )
    assert not verify_aggregate_attestation(None, registry)
    assert not verify_aggregate_attestation(
        AggregateAttestation("job-1", "solver-1", b"x", True, ("v1",), (b"",), b""), registry
    )


def test_aggregation_rules():
    vote = Attestation("job-1", "v1", "solver-1", ROOT_A, True)
    one = sign_message(vote, sk("v1"), "v1", FAST)
    with pytest.raises(MalformedMessageError, match="empty"):
        aggregate_attestations([], FAST)
    with pytest.raises(MalformedMessageError, match="twice"):
        aggregate_attestations([one, one], FAST)
    disagree = sign_message(
        dataclasses.replace(vote, verifier_id="v2", verdict=False), sk("v2"), "v2", FAST
    )
    with pytest.raises(MalformedMessageError, match="differs"):
        aggregate_attestations([one, disagree], FAST)
    with pytest.raises(MalformedMessageError, match="signed as"):
        aggregate_attestations([sign_message(vote, sk("v2"), "v2", FAST)], FAST)


# -- evidence ----------------------------------------------------------------------------------
def test_equivocation(registry):
    first = sign_message(commitment(), sk("solver-1"), "solver-1", FAST)
    second = sign_message(commitment(trace_root=ROOT_B), sk("solver-1"), "solver-1", FAST)
    evidence = Equivocation(first, second)
    assert is_valid_equivocation(evidence, registry)
    assert is_valid_equivocation(evidence, registry.public_key("solver-1"))
    final_only = sign_message(commitment(final_root=ROOT_A), sk("solver-1"), "solver-1", FAST)
    assert is_valid_equivocation(Equivocation(first, final_only), registry)


def test_not_an_equivocation(registry, monkeypatch):
    monkeypatch.setenv("PINPOINT_BLS_BACKEND", "arkworks")
    first = sign_message(commitment(), sk("solver-1"), "solver-1", FAST)
    second = sign_message(commitment(trace_root=ROOT_B), sk("solver-1"), "solver-1", FAST)
    pk = registry.public_key("solver-1")
    # The same commitment twice.
    assert not is_valid_equivocation(Equivocation(first, first), registry)
    # Another job.
    other_job = dataclasses.replace(commitment(trace_root=ROOT_B), job_id="job-2")
    other = sign_message(other_job, sk("solver-1"), "solver-1", FAST)
    assert not is_valid_equivocation(Equivocation(first, other), registry)
    # Someone else's commitment, or one signed by someone else.
    theirs = sign_message(commitment(solver="solver-2"), sk("solver-2"), "solver-2", FAST)
    assert not is_valid_equivocation(Equivocation(first, theirs), registry)
    framed = sign_message(commitment(trace_root=ROOT_B), sk("solver-2"), "solver-1", FAST)
    assert not is_valid_equivocation(Equivocation(first, framed), registry)
    assert not is_valid_equivocation(Equivocation(first, framed), pk)
    # A forged signature.
    forged = dataclasses.replace(second, signature=first.signature)
    assert not is_valid_equivocation(Equivocation(first, forged), registry)
    assert not is_valid_equivocation(Equivocation(first, forged), pk)
    assert is_valid_equivocation(Equivocation(first, second), pk)
    assert not is_valid_equivocation(None, registry)
    assert not is_valid_equivocation(Equivocation(first, "x"), registry)


@settings(max_examples=3, deadline=None)
@given(st.builds(Commitment, names, names, roots, roots, u64, u64))
def test_signatures_survive_encoding(message):
    signed = sign_message(message, sk("solver-1"), "solver-1", FAST)
    assert verify_signed(
        dataclasses.replace(signed, message=decode_message(encode_message(message))), FAST
    )


@pytest.mark.parametrize("backend_name", ["blst", "arkworks"])
def test_a_signed_message_carries_its_signers_own_public_key(backend_name):
    """The public key is derived once per backend and key (``get_public_key``); two parties
    signing in turn each still carry their own key, the one ``SkToPk`` gives."""
    backend = get_backend(backend_name)
    message = Commitment("job", "a", ROOT_A, ROOT_B, 10, 5)
    for seed in (b"a" * 32, b"b" * 32, b"a" * 32):
        sk = backend.key_gen(seed)
        signed = sign_message(message, sk, "a", backend)
        assert signed.public_key == backend.sk_to_pk(sk) and verify_signed(signed, backend)


# -- the dispute game's moves ------------------------------------------------------------------
@given(moves)
def test_a_game_move_round_trips_through_its_json_form(move):
    data = json.loads(json.dumps(message_to_json(move)))
    assert message_from_json(type(move), data) == move
    assert message_id(message_from_json(type(move), data)) == message_id(move)


def test_a_game_move_is_content_addressed_and_signed_like_any_message():
    move = RevealCheckpoint(3, ROOT_A)
    assert message_id(move) == message_id(RevealCheckpoint(3, ROOT_A)) != message_id(RevealCheckpoint(4, ROOT_A))
    assert signing_root(move) != signing_root(RevealCheckpoint(3, ROOT_B))
    signed = sign_message(move, sk("solver-1"), "solver-1", FAST)
    assert verify_signed(signed, FAST)
    assert not verify_signed(dataclasses.replace(signed, message=RevealCheckpoint(3, ROOT_B)), FAST)


def test_the_json_form_of_a_move_names_its_fields():
    assert message_to_json(OpenOp(2, "aten.mm.default", ("ab", "cd"))) == {
        "index": 2, "op": "aten.mm.default", "outputs": ["ab", "cd"]}
    assert message_to_json(RevealCheckpoint(1, ROOT_A)) == {"index": 1, "root": ROOT_A.hex()}


@pytest.mark.parametrize("cls, data, error", [
    (RevealCheckpoint, {"index": 1}, "has fields \\['index', 'root'\\]"),
    (RevealCheckpoint, {"index": 1, "root": ROOT_A.hex(), "extra": 0}, "has fields"),
    (RevealCheckpoint, {"index": True, "root": ROOT_A.hex()}, "field index must be an int"),
    (RevealCheckpoint, {"index": -1, "root": ROOT_A.hex()}, "field index must be an int"),
    (RevealCheckpoint, {"index": 1, "root": "zz"}, "field root must be hex"),
    (RevealCheckpoint, {"index": 1, "root": "ab"}, "field root must be a 32-byte root"),
    (OpenOp, {"index": 1, "op": "aten.mm", "outputs": "ab"}, "field outputs must be a list"),
    (OpenOp, {"index": 1, "op": 7, "outputs": []}, "field op must be a str"),
    (RuleOnOperator, ["not", "an", "object"], "must be a JSON object"),
    (dict, {}, "is not a message type"),
])
def test_a_malformed_json_move_is_named(cls, data, error):
    with pytest.raises(MalformedMessageError, match=error):
        message_from_json(cls, data)
