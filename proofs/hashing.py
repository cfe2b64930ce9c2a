"""Hash functions and domain separation.

Every digest in Pinpoint is computed under a *domain tag*: a short byte string that says what the
bytes being hashed are (a tensor, a state, a trace, a message, ...). Two values of different kinds
therefore never share a digest even if their encodings happen to be equal.

Terms
-----
hash name
    One of :data:`HASH_NAMES`: ``"sha256"`` (FIPS 180-4, via :mod:`hashlib`) or ``"blake3"``
    (the BLAKE3 specification, via the ``blake3`` package). Both give 32-byte digests. It is what
    records, JSON, job ids and transcripts write (:class:`proofs.types.HashName`).
hash context
    A :class:`Hashing`: the hash name resolved, once, to its constructor, and what every hashing
    routine takes instead of the name. It is obtained from a name by :func:`get_hashing` (the one
    resolver; :class:`UnknownHashError` names a bad name) and reads as its name (``str``, pickle),
    so everything that writes it writes the same bytes as the name. :data:`SHA256` (the default of
    every routine) and :data:`BLAKE3` are the two contexts.
domain tag
    A byte string ``b"pinpoint/<kind>/v<version>"``: 1 to 255 bytes of printable ASCII. The
    ``DOMAIN_*`` constants below are all the tags the toolkit uses. Being printable, a tag never
    starts with the Merkle leaf or node prefix bytes ``0x00`` / ``0x01`` (see
    :mod:`proofs.merkle`).
parts hash
    ``hash_parts(domain, p_1, ..., p_n)`` = ``H(u8(len(domain)) || domain || u64(len(p_1)) || p_1
    || ... || u64(len(p_n)) || p_n)`` with big-endian lengths. Every part is length-prefixed, so
    the split of the input into parts is unambiguous: ``("ab", "c")`` and ``("a", "bc")`` hash
    differently (the injective-encoding rule of NIST SP 800-185, section 2.3).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import blake3

from proofs.types import HashName, Root

HASH_NAMES = tuple(h.value for h in HashName)  # ("sha256", "blake3")
DIGEST_SIZE = 32

DOMAIN_TENSOR = b"pinpoint/tensor/v1"
DOMAIN_CHUNK = b"pinpoint/chunk/v1"
DOMAIN_STATE = b"pinpoint/state/v1"
DOMAIN_TRACE = b"pinpoint/trace/v1"
DOMAIN_DATASET = b"pinpoint/dataset/v1"
DOMAIN_SHARD = b"pinpoint/shard/v1"
DOMAIN_BATCH = b"pinpoint/batch/v1"
DOMAIN_MESSAGE = b"pinpoint/message/v1"
DOMAIN_SIGNING = b"pinpoint/signing/v1"
DOMAIN_KEYS = b"pinpoint/keys/v1"
DOMAIN_OPS = b"pinpoint/ops/v1"
DOMAIN_STEPS = b"pinpoint/steps/v1"
DOMAIN_COIN = b"pinpoint/coin/v1"
DOMAIN_FORCED_ERROR = b"pinpoint/forced-error/v1"

MAX_DOMAIN_SIZE = 255


class UnknownHashError(ValueError):
    """A hash name that is not one of :data:`HASH_NAMES`."""


class DomainError(ValueError):
    """A domain tag that is empty, too long or not printable ASCII."""


class Hasher(Protocol):
    """The incremental interface shared by ``hashlib`` and ``blake3`` hash objects."""

    def update(self, data: bytes | memoryview, /) -> object: ...

    def copy(self) -> Hasher: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True, eq=False)
class Hashing:
    """A hash context: the hash function a job commits with, resolved once from its name.

    ``new(data)`` is an incremental hash object primed with ``data``. There is one context per name
    (:func:`get_hashing`; unpickling returns it too), so contexts compare, and key caches, by
    identity: no hashing of fields on every cached plan lookup. Not constructed directly."""

    name: HashName
    new: Callable[[bytes], Hasher] = field(repr=False)

    def digest(self, data: bytes | memoryview) -> bytes:
        """The one-shot raw digest ``H(data)``: 32 bytes."""
        return self.new(data).digest()

    def __str__(self) -> str:
        return self.name.value

    def __reduce__(self) -> tuple:
        return get_hashing, (self.name.value,)  # unpickled, it is the resolver's own context


_HASHERS: dict[HashName, Callable[[bytes], Hasher]] = {
    HashName.SHA256: hashlib.sha256,
    HashName.BLAKE3: blake3.blake3,
}
_CONTEXTS = {name: Hashing(name, new) for name, new in _HASHERS.items()}


def get_hashing(name: str) -> Hashing:
    """The hash context of a hash name (a :class:`HashName` or its string, as records hold it):
    always the same object for one name."""
    try:
        return _CONTEXTS[HashName(name)]
    except ValueError:
        raise UnknownHashError(f"unknown hash {name!r}; expected one of {HASH_NAMES}") from None


SHA256 = get_hashing(HashName.SHA256)
BLAKE3 = get_hashing(HashName.BLAKE3)
HASHINGS = tuple(_CONTEXTS.values())  # (SHA256, BLAKE3)


@functools.cache
def encode_domain(domain: bytes) -> bytes:
    """``u8(len(domain)) || domain``: the self-delimiting form of a domain tag."""
    if not 0 < len(domain) <= MAX_DOMAIN_SIZE or not all(0x20 <= b < 0x7F for b in domain):
        raise DomainError(
            f"domain tag {domain!r} must be 1..{MAX_DOMAIN_SIZE} bytes of printable ASCII"
        )
    return bytes([len(domain)]) + domain


def hash_parts(domain: bytes, *parts: bytes, hashing: Hashing = SHA256) -> Root:
    """Domain-separated digest of a sequence of byte strings, each length-prefixed."""
    hasher = hashing.new(encode_domain(domain))
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return Root(hasher.digest())
