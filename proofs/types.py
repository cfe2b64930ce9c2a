"""Domain types shared by every layer.

Each quantity of the protocol has its own type so that a step can never be passed where a token
amount or a root is expected (the convention of ethereum/consensus-specs). They are `NewType`s:
free at run time, checked by type checkers and readers.

Terms
-----
Root
    A 32-byte digest: of a tensor, a state, a dataset, a trace or a Merkle subtree.
Step
    A count of optimizer steps. State ``S_t`` is the training state after ``t`` steps; step ``t``
    maps ``S_{t-1}`` to ``S_t`` (steps are numbered from 1; ``S_0`` is the initial state).
JobId, SolverId, PartyId
    Names of a job and of the parties that take part in it (a solver, a verifier, a submitter).
SecretKey, PublicKey, Signature
    A BLS secret key (an integer ``0 < sk < r``), a 48-byte compressed G1 public key and a 96-byte
    compressed G2 signature (see :mod:`proofs.bls`).
HashName
    The hash function a job commits with (:mod:`proofs.hashing`). Like every protocol enum it is a
    ``StrEnum``: a member is its string, so records, JSON and job ids read the same as before.
Party
    A role in the dispute game (``verification.dispute``): the two players, solver and
    challenger, and the referee who rules. A ruling's winner and a move's maker are parties; the
    messages of :mod:`proofs.messages` carry them as their plain names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum
from typing import NewType

Root = NewType("Root", bytes)
Step = NewType("Step", int)
JobId = NewType("JobId", str)
SolverId = NewType("SolverId", str)
PartyId = NewType("PartyId", str)
SecretKey = NewType("SecretKey", int)
PublicKey = NewType("PublicKey", bytes)
Signature = NewType("Signature", bytes)

ROOT_SIZE = 32


class HashName(StrEnum):
    SHA256 = "sha256"  # FIPS 180-4, via hashlib
    BLAKE3 = "blake3"


class Party(StrEnum):
    SOLVER = "solver"  # claims the trace under test
    CHALLENGER = "challenger"  # disputes it
    REFEREE = "referee"  # rules on the one disputed step or operator


def is_root(value: object) -> bool:
    """Whether ``value`` is a root: ``ROOT_SIZE`` bytes."""
    return isinstance(value, bytes) and len(value) == ROOT_SIZE


def decode_root(value: object) -> Root:
    """A root from its hex form (as written in reports, records and proofs). ``ValueError`` names
    the value when it is not hex or not ``ROOT_SIZE`` bytes; callers wrap it in their own error."""
    try:
        root = bytes.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not hex") from None
    if len(root) != ROOT_SIZE:
        raise ValueError(f"{value!r} is not {ROOT_SIZE} bytes")
    return Root(root)


def describe_unknown(kind: str, name: object, known: Iterable[str]) -> str:
    """``unknown model 'mlpp' (did you mean 'mlp'?); known: [...]``: an unknown name, the closest
    known one and all of them, for an error a person can act on."""
    choices = sorted(known)
    close = difflib.get_close_matches(str(name), choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; known: {choices}"
