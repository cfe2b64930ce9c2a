"""Protocol messages, their canonical encoding, signatures over them, and slashing evidence.

Messages are frozen dataclasses with fields only; a signed message wraps the plain one
(``Signed[Commitment]``), as in the Ethereum consensus specs.

Terms
-----
canonical encoding
    ``encode_message(m)`` = ``u8(len(tag)) || tag || field_1 || ... || field_n``: the tag is the
    class name (ASCII), fields follow in declared order, each by its type: ``Root`` as its 32
    bytes; ``int`` (and ``Step``) as a big-endian ``u64``; ``bool`` as one byte ``0x00``/``0x01``;
    ``str`` (ids, names) as ``u32(len) || UTF-8``; ``bytes`` as ``u32(len) || bytes``; tuples as
    ``u32(count)`` then each item. Every value has exactly one encoding, and
    ``decode_message(encode_message(m)) == m``.
message id
    ``hash_parts(DOMAIN_MESSAGE, encode_message(m))`` (SHA-256): the content address of a message,
    used to name claims, rulings and evidence.
signing root
    ``hash_parts(DOMAIN_SIGNING, tag, signed fields...)``: the 32 bytes a BLS signature is made on
    (Ethereum's ``compute_signing_root`` plays the same role). A field declared with
    ``metadata=UNSIGNED`` is left out: ``Attestation.verifier_id`` is, so that every verifier
    who reaches the same verdict signs the same bytes and their signatures aggregate
    (FastAggregateVerify); the verifier is bound by its registered public key instead, as a
    validator is in an Ethereum aggregate attestation.
equivocation
    Two valid signed commitments by one solver for one job that disagree on the trace root or the
    final state root. It proves misbehaviour without re-executing anything (slashable as is).
game move
    One move of the dispute game (``GAME_MOVES``): a level's commitment (``CommitSteps``,
    ``CommitOps``; level 1's is the signed trace root), a reveal or an opening checked against one
    (``RevealCheckpoint``, ``RevealStep``, ``RevealOp``, ``OpenOp``, ``OpenState``,
    ``OpenOperands``), the challenger's challenge of a round (``ChallengeInterval``,
    ``ChallengeCheckpoint``) and the final claim (``RuleOnOperator``, ``RuleOnStep``,
    ``ForfeitGame``). Messages like the others: a canonical encoding, a message id, a signing root.
JSON form
    ``message_to_json(m)``: the fields by name, roots and bytes as hex, tuples as lists; the form a
    transcript stores and hashes a move's message in (``verification.dispute``);
    ``message_from_json(type(m), message_to_json(m)) == m``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Generic, NewType, TypeVar, get_args, get_origin, get_type_hints

from proofs.bls import BlsBackend, get_backend
from proofs.hashing import DOMAIN_MESSAGE, DOMAIN_SIGNING, hash_parts
from proofs.keys import KeyRegistry
from proofs.types import (
    ROOT_SIZE,
    JobId,
    PartyId,
    PublicKey,
    Root,
    SecretKey,
    Signature,
    SolverId,
    Step,
)

UNSIGNED = {"signed": False}
MAX_U64 = 2**64 - 1
MAX_LENGTH = 2**32 - 1

T = TypeVar("T")


class MalformedMessageError(ValueError):
    """A message that cannot be encoded, or bytes that are not a message's canonical encoding."""


@dataclass(frozen=True)
class Commitment:
    """The solver's receipt: what it claims to have computed for a job (docs/design.md section 1.4)."""

    job_id: JobId
    solver_id: SolverId
    trace_root: Root
    final_state_root: Root
    steps: Step
    interval: Step
    # The execution environment the solver ran in (torch version, CPU capability, device, threads;
    # ``verification.execution.program.compute_environment``): in ``exact`` mode the bits depend on it.
    environment: str = ""


@dataclass(frozen=True)
class Attestation:
    """A verifier's verdict on a solver's trace root (``True``: re-execution matched)."""

    job_id: JobId
    verifier_id: PartyId = field(metadata=UNSIGNED)
    solver_id: SolverId
    trace_root: Root
    verdict: bool


@dataclass(frozen=True)
class Ruling:
    """The referee's ruling on the one disputed operator of a dispute."""

    job_id: JobId
    dispute_id: str
    step: Step
    operator: str
    winner: PartyId
    solver_output_root: Root
    challenger_output_root: Root
    referee_output_root: Root


# -- the dispute game's moves -----------------------------------------------------------------
# Each move of the bisection game (``verification.dispute``) is one of these messages: what the
# move says. The transcript's record of a move adds who made it, the game's status, the time it
# took and the id of the move before, and its move id hashes all of it with the message's JSON
# form (``message_to_json``), so the chain commits to every message in order.
@dataclass(frozen=True)
class RevealCheckpoint:
    """Level 1: the solver's state root at checkpoint ``index`` (proved against its signed trace root)."""

    index: int
    root: Root


@dataclass(frozen=True)
class ChallengeCheckpoint:
    """Level 1, final checkpoint agreed: the challenger disputes the solver's checkpoint ``index``
    (the first of them it does not reproduce)."""

    index: int


@dataclass(frozen=True)
class ChallengeInterval:
    """A dissection round: the challenger keeps ``[lo, hi]`` of level ``level``, agreed at ``lo``
    and disputed at ``hi`` (Arbitrum's dissection)."""

    level: str
    lo: int
    hi: int


@dataclass(frozen=True)
class CommitSteps:
    """Level 2: a party's Merkle root of its state roots of steps ``start … end``."""

    start: int
    end: int
    root: Root


@dataclass(frozen=True)
class RevealStep:
    """Level 2: a party's state root of ``step`` (proved against its step commitment)."""

    step: int
    root: Root


@dataclass(frozen=True)
class OpenState:
    """The solver opens its full state at ``step``, whose root is ``root`` (the referee re-executes
    the next step from it when level 3 is off)."""

    step: int
    root: Root


@dataclass(frozen=True)
class CommitOps:
    """Level 3: a party's Merkle root of the op digest chain of ``step`` and its ``count`` of records."""

    step: int
    root: Root
    count: int


@dataclass(frozen=True)
class RevealOp:
    """Level 3: a party's digest of operator record ``index`` (proved against its op commitment)."""

    index: int
    digest: Root


@dataclass(frozen=True)
class OpenOp:
    """Level 3: a party opens operator record ``index``: its operator and its output digests."""

    index: int
    op: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class OpenOperands:
    """The solver opens the ``inputs`` operands of record ``index`` and the ``segment`` of earlier
    records that carries their agreed hashes."""

    index: int
    inputs: int
    segment: int


@dataclass(frozen=True)
class RuleOnOperator:
    """The final claim on one operator: the referee's ruling on record ``index`` of ``step``
    (``kind``: on its structure or on its outputs), what it executed and the outputs it found."""

    step: int
    index: int
    operator: str
    kind: str
    winner: str
    ops: int
    schedule_ops: int
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class RuleOnStep:
    """The final claim on one whole step (level 3 off): the referee's post-state root and ruling."""

    step: int
    referee_root: Root
    winner: str
    ops: int


@dataclass(frozen=True)
class ForfeitGame:
    """The final claim of a party that failed to answer validly or in time: why it forfeits."""

    reason: str


GAME_MOVES: tuple[type, ...] = (RevealCheckpoint, ChallengeCheckpoint, ChallengeInterval, CommitSteps, RevealStep,
                                OpenState, CommitOps, RevealOp, OpenOp, OpenOperands, RuleOnOperator, RuleOnStep,
                                ForfeitGame)



@dataclass(frozen=True)
class Signed(Generic[T]):
    """A message with its signer's name, public key and BLS signature on its signing root."""

    message: T
    signer: PartyId
    public_key: PublicKey
    signature: Signature


@dataclass(frozen=True)
class AggregateAttestation:
    """One verdict signed by several verifiers: their keys and one aggregate signature."""

    job_id: JobId
    solver_id: SolverId
    trace_root: Root
    verdict: bool
    verifier_ids: tuple[PartyId, ...]
    public_keys: tuple[PublicKey, ...]
    signature: Signature


# An aggregate attestation is a message too: a canonical encoding, a message id (its content
# address in a job's records) and a JSON form (``message_to_json``); its signature is over its
# attestation's signing root, not its own.
MESSAGE_TYPES: dict[bytes, type] = {
    cls.__name__.encode("ascii"): cls for cls in (Commitment, Attestation, Ruling, AggregateAttestation, *GAME_MOVES)
}


@dataclass(frozen=True)
class Equivocation:
    """Two signed commitments that a solver should never both have signed."""

    first: Signed[Commitment]
    second: Signed[Commitment]


# -- canonical encoding ------------------------------------------------------------------------
@functools.cache
def field_types(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, type, signed)`` of every field of a message class, in declared order."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.metadata.get("signed", True)) for f in fields(cls))


def base_type(hint: Any) -> Any:
    """The runtime type behind a ``NewType`` (``Root`` is kept: it has a fixed size)."""
    while isinstance(hint, NewType) and hint is not Root:
        hint = hint.__supertype__
    return hint


def encode_length(length: int) -> bytes:
    """``u32`` length prefix."""
    if length > MAX_LENGTH:
        raise MalformedMessageError(f"length {length} does not fit in 32 bits")
    return length.to_bytes(4, "big")


def encode_value(value: Any, hint: Any, name: str) -> bytes:
    """Canonical bytes of one field value of type ``hint``."""
    hint = base_type(hint)
    if hint is Root:
        if not isinstance(value, bytes) or len(value) != ROOT_SIZE:
            raise MalformedMessageError(f"field {name} must be a {ROOT_SIZE}-byte root: {value!r}")
        return value
    if hint is bool:
        if type(value) is not bool:
            raise MalformedMessageError(f"field {name} must be a bool: {value!r}")
        return b"\x01" if value else b"\x00"
    if hint is int:
        if type(value) is not int or not 0 <= value <= MAX_U64:
            raise MalformedMessageError(f"field {name} must be an int in 0..2**64-1: {value!r}")
        return value.to_bytes(8, "big")
    if hint is str:
        if not isinstance(value, str):
            raise MalformedMessageError(f"field {name} must be a str: {value!r}")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedMessageError(f"field {name} is not valid UTF-8: {value!r}") from None
        return encode_length(len(data)) + data
    if hint is bytes:
        if not isinstance(value, bytes):
            raise MalformedMessageError(f"field {name} must be bytes: {value!r}")
        return encode_length(len(value)) + value
    if get_origin(hint) is tuple:
        if not isinstance(value, tuple):
            raise MalformedMessageError(f"field {name} must be a tuple: {value!r}")
        item = get_args(hint)[0]
        return encode_length(len(value)) + b"".join(encode_value(v, item, name) for v in value)
    raise TypeError(f"field {name} has a type with no canonical encoding: {hint!r}")


def message_tag(message: object) -> bytes:
    """The type tag of a message; :class:`MalformedMessageError` for other objects."""
    tag = type(message).__name__.encode("ascii")
    if MESSAGE_TYPES.get(tag) is not type(message):
        raise MalformedMessageError(f"{message!r} is not a message type")
    return tag


def encode_message(message: object) -> bytes:
    """Canonical encoding of a message (tag and every field)."""
    tag = message_tag(message)
    parts = [bytes([len(tag)]), tag]
    for name, hint, _ in field_types(type(message)):
        parts.append(encode_value(getattr(message, name), hint, name))
    return b"".join(parts)


class Reader:
    """A cursor over bytes being decoded; every short read is a :class:`MalformedMessageError`."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise MalformedMessageError(
                f"message 0x{self.data.hex()} ends at byte {len(self.data)}, "
                f"needed {size} more bytes at {self.offset}"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def take_int(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")


def decode_value(reader: Reader, hint: Any, name: str) -> Any:
    """One field value of type ``hint`` (inverse of :func:`encode_value`)."""
    hint = base_type(hint)
    if hint is Root:
        return Root(reader.take(ROOT_SIZE))
    if hint is bool:
        byte = reader.take(1)
        if byte not in (b"\x00", b"\x01"):
            raise MalformedMessageError(f"field {name} has bool byte 0x{byte.hex()}")
        return byte == b"\x01"
    if hint is int:
        return reader.take_int(8)
    if hint is str:
        raw = reader.take(reader.take_int(4))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessageError(f"field {name} is not UTF-8: 0x{raw.hex()}") from None
    if hint is bytes:
        return reader.take(reader.take_int(4))
    if get_origin(hint) is tuple:
        count, item = reader.take_int(4), get_args(hint)[0]
        return tuple(decode_value(reader, item, name) for _ in range(count))
    raise TypeError(f"field {name} has a type with no canonical encoding: {hint!r}")


def decode_message(data: bytes) -> Any:
    """The message whose canonical encoding is ``data``; :class:`MalformedMessageError` else."""
    if not isinstance(data, bytes):
        raise MalformedMessageError(f"message must be bytes, got {type(data).__name__}")
    reader = Reader(data)
    tag = reader.take(reader.take_int(1))
    cls = MESSAGE_TYPES.get(tag)
    if cls is None:
        raise MalformedMessageError(f"unknown message tag {tag!r} in 0x{data.hex()}")
    values = {name: decode_value(reader, hint, name) for name, hint, _ in field_types(cls)}
    # Rule: nothing may follow the last field.
    if reader.offset != len(data):
        raise MalformedMessageError(f"{len(data) - reader.offset} trailing bytes in 0x{data.hex()}")
    return cls(**values)


# -- a message's JSON form ---------------------------------------------------------------------
def encode_json_value(value: Any, hint: Any) -> Any:
    """The JSON value of one field of type ``hint`` (checked by :func:`encode_message` first)."""
    hint = base_type(hint)
    if hint is Root or hint is bytes:
        return bytes(value).hex()
    if hint is str:
        return str(value)
    if get_origin(hint) is tuple:
        return [encode_json_value(v, get_args(hint)[0]) for v in value]
    return value


def message_to_json(message: object) -> dict[str, Any]:
    """A message's fields as JSON values: roots and bytes as hex, tuples as lists, the rest as
    they are. :class:`MalformedMessageError` for a message with no canonical encoding."""
    encode_message(message)
    return {name: encode_json_value(getattr(message, name), hint) for name, hint, _ in field_types(type(message))}


def decode_json_value(value: Any, hint: Any, name: str) -> Any:
    """The field value of type ``hint`` whose JSON value is ``value`` (inverse of :func:`encode_json_value`)."""
    hint = base_type(hint)
    if hint is Root or hint is bytes:
        try:
            raw = bytes.fromhex(value)
        except (TypeError, ValueError):
            raise MalformedMessageError(f"field {name} must be hex, got {value!r}") from None
        return Root(raw) if hint is Root else raw
    if get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise MalformedMessageError(f"field {name} must be a list, got {value!r}")
        return tuple(decode_json_value(v, get_args(hint)[0], name) for v in value)
    return value


def message_from_json(cls: type, data: Any) -> Any:
    """The ``cls`` message whose JSON form is ``data``: every field and no other, each of its type
    (:func:`encode_message` checks them); :class:`MalformedMessageError` naming what is wrong."""
    if MESSAGE_TYPES.get(cls.__name__.encode("ascii")) is not cls:
        raise MalformedMessageError(f"{cls!r} is not a message type")
    if not isinstance(data, dict):
        raise MalformedMessageError(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = [name for name, _, _ in field_types(cls)]
    # Rule: a message's JSON form holds exactly its fields.
    if sorted(data) != sorted(names):
        raise MalformedMessageError(f"a {cls.__name__} has fields {names}, got {sorted(data)}")
    message = cls(**{name: decode_json_value(data[name], hint, name) for name, hint, _ in field_types(cls)})
    encode_message(message)
    return message


def message_id(message: object) -> Root:
    """Content address of a message."""
    return hash_parts(DOMAIN_MESSAGE, encode_message(message))


def signing_root(message: object) -> Root:
    """The bytes a signature on ``message`` is made on: its tag and its signed fields."""
    parts = [message_tag(message)]
    for name, hint, signed in field_types(type(message)):
        if signed:
            parts.append(encode_value(getattr(message, name), hint, name))
    return hash_parts(DOMAIN_SIGNING, *parts)


# -- signatures --------------------------------------------------------------------------------
def sign_message(
    message: T, sk: SecretKey, signer: PartyId, backend: BlsBackend | None = None
) -> Signed[T]:
    """``message`` signed by ``signer`` with secret key ``sk``."""
    backend = backend if backend is not None else get_backend()
    signature = backend.sign(sk, signing_root(message))
    return Signed(message, signer, get_public_key(backend, sk), signature)


@functools.lru_cache(maxsize=64)
def get_public_key(backend: BlsBackend, sk: SecretKey) -> PublicKey:
    """``SkToPk`` of a party's key, derived once per backend and key (a G1 multiplication cost a
    quarter of each signature; a party signs with the same key again and again)."""
    return backend.sk_to_pk(sk)


def verify_signed(signed: Signed[Any], backend: BlsBackend | None = None) -> bool:
    """Whether ``signed.signature`` is valid for its message under ``signed.public_key``.

    Whether that key belongs to ``signed.signer`` is the key registry's question
    (:func:`is_signed_by`). Never raises.
    """
    if not isinstance(signed, Signed):
        return False
    try:
        root = signing_root(signed.message)
    except MalformedMessageError:
        return False
    backend = backend if backend is not None else get_backend()
    return backend.verify(signed.public_key, root, signed.signature)


def is_signed_by(signed: Signed[Any], registry: KeyRegistry) -> bool:
    """Whether ``signed`` is validly signed with the registered key of its signer. Never raises."""
    if not isinstance(signed, Signed) or not registry.is_registered(
        signed.signer, signed.public_key
    ):
        return False
    return verify_signed(signed, registry.backend)


# -- aggregate attestations --------------------------------------------------------------------
def aggregate_attestations(
    attestations: Sequence[Signed[Attestation]], backend: BlsBackend | None = None
) -> AggregateAttestation:
    """Combine signed attestations of one verdict by distinct verifiers into one signature."""
    if len(attestations) == 0:
        raise MalformedMessageError("cannot aggregate an empty list of attestations")
    first = attestations[0].message
    for signed in attestations:
        # Rule: every attestation carries the same verdict on the same trace, and says who signed.
        if signing_root(signed.message) != signing_root(first):
            raise MalformedMessageError(f"attestation {signed.message!r} differs from {first!r}")
        if signed.signer != signed.message.verifier_id:
            raise MalformedMessageError(
                f"{signed.signer!r} signed as {signed.message.verifier_id!r}"
            )
    verifiers = tuple(signed.signer for signed in attestations)
    if len(set(verifiers)) != len(verifiers):
        raise MalformedMessageError(f"a verifier attests twice in {verifiers!r}")
    backend = backend if backend is not None else get_backend()
    signature = backend.aggregate([signed.signature for signed in attestations])
    return AggregateAttestation(
        first.job_id,
        first.solver_id,
        first.trace_root,
        first.verdict,
        verifiers,
        tuple(signed.public_key for signed in attestations),
        signature,
    )


def verify_aggregate_attestation(aggregate: AggregateAttestation, registry: KeyRegistry) -> bool:
    """Whether every listed verifier signed the aggregate's verdict with its registered key.

    Never raises.
    """
    if not isinstance(aggregate, AggregateAttestation):
        return False
    verifiers, keys = aggregate.verifier_ids, aggregate.public_keys
    # Rule: one registered key per distinct verifier.
    if (
        not isinstance(verifiers, tuple)
        or not isinstance(keys, tuple)
        or len(verifiers) != len(keys)
    ):
        return False
    if len(set(verifiers)) != len(verifiers):
        return False
    if not all(registry.is_registered(v, k) for v, k in zip(verifiers, keys, strict=True)):
        return False
    vote = Attestation(
        aggregate.job_id, PartyId(""), aggregate.solver_id, aggregate.trace_root, aggregate.verdict
    )
    try:
        root = signing_root(vote)
    except MalformedMessageError:
        return False
    return registry.backend.fast_aggregate_verify(list(keys), root, aggregate.signature)


# -- evidence ----------------------------------------------------------------------------------
def is_valid_equivocation(evidence: Equivocation, registry_or_pubkey: KeyRegistry | bytes) -> bool:
    """Whether ``evidence`` proves that one solver signed two conflicting commitments.

    ``registry_or_pubkey`` is the key registry, or the solver's known public key. Never raises.
    """
    if not isinstance(evidence, Equivocation):
        return False
    first, second = evidence.first, evidence.second
    if not all(
        isinstance(s, Signed) and isinstance(s.message, Commitment) for s in (first, second)
    ):
        return False
    a, b = first.message, second.message
    # Rule: one solver, signing its own commitments for one job.
    if not first.signer == second.signer == a.solver_id == b.solver_id or a.job_id != b.job_id:
        return False
    # Rule: the two commitments conflict.
    if a.trace_root == b.trace_root and a.final_state_root == b.final_state_root:
        return False
    if isinstance(registry_or_pubkey, KeyRegistry):
        return is_signed_by(first, registry_or_pubkey) and is_signed_by(second, registry_or_pubkey)
    # Rule: both signatures are by the solver's key.
    if not first.public_key == second.public_key == registry_or_pubkey:
        return False
    return verify_signed(first) and verify_signed(second)


__all__ = [
    "GAME_MOVES",
    "UNSIGNED",
    "AggregateAttestation",
    "Attestation",
    "ChallengeCheckpoint",
    "ChallengeInterval",
    "CommitOps",
    "CommitSteps",
    "Commitment",
    "Equivocation",
    "ForfeitGame",
    "MalformedMessageError",
    "OpenOp",
    "OpenOperands",
    "OpenState",
    "RevealCheckpoint",
    "RevealOp",
    "RevealStep",
    "RuleOnOperator",
    "RuleOnStep",
    "Ruling",
    "Signed",
    "aggregate_attestations",
    "decode_message",
    "encode_message",
    "is_signed_by",
    "is_valid_equivocation",
    "message_from_json",
    "message_id",
    "message_to_json",
    "sign_message",
    "signing_root",
    "verify_aggregate_attestation",
    "verify_signed",
]
