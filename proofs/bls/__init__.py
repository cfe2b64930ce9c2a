"""BLS signatures: one API, three interchangeable backends.

The scheme, sizes, encodings and error rules are described in :mod:`proofs.bls.common`
(IETF draft-irtf-cfrg-bls-signature-05, proof-of-possession ciphersuite, minimal-pubkey-size; RFC
9380 hash-to-curve; the Ethereum consensus specs use the same suite). Backends, by name:

``"blst"`` (fast, the default, :mod:`proofs.bls.blst_backend`)
    ``pyblst``: bindings of supranational/blst (C and assembly): 0.34 ms to sign, 1.1 ms to verify.
``"arkworks"`` (fast, :mod:`proofs.bls.arkworks_backend`)
    ``py_arkworks_bls12381``: Rust, 1.0 ms to sign, 2.2 ms to verify.
``"py_ecc"`` (reference, :mod:`proofs.bls.py_ecc_backend`)
    ``py_ecc.bls.G2ProofOfPossession``: pure Python, slow (a verification takes about 0.3 s). The
    test suite checks each fast backend against it byte for byte (keys, signatures, aggregates,
    and every rejection), so the reference defines what a fast one must do.

:data:`DEFAULT_BACKEND` is used when no name is given, unless the environment variable
``PINPOINT_BLS_BACKEND`` names another backend. The default was py_ecc, then arkworks once one
py_ecc signature cost about as much as the default job's whole 300-step training; it is blst since
blst did every operation 1.9-3x faster than arkworks (paired, interleaved, at load 0.5 on 2 cores:
``benchmarks/test_bench_proofs.py::test_paired_fast_backends``) with the same rejections.

Every ``verify*`` method returns a ``bool`` and never raises; ``decode_pubkey`` and
``decode_signature`` raise :class:`MalformedKeyError` / :class:`MalformedSignatureError` with the
offending bytes in hex.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from proofs.bls.arkworks_backend import ArkworksBackend
from proofs.bls.blst_backend import BlstBackend
from proofs.bls.common import (
    DST_POP,
    DST_SIGN,
    PUBKEY_SIZE,
    SIGNATURE_SIZE,
    MalformedKeyError,
    MalformedSignatureError,
    SecretKeyError,
    UnknownBackendError,
)
from proofs.bls.py_ecc_backend import PyEccBackend
from proofs.types import PublicKey, SecretKey, Signature

DEFAULT_BACKEND = "blst"
BACKEND_ENV_VAR = "PINPOINT_BLS_BACKEND"


class BlsBackend(Protocol):
    """The operations of the ciphersuite (draft-irtf-cfrg-bls-signature-05, sections 2-3)."""

    name: str

    def key_gen(self, ikm: bytes) -> SecretKey:
        """KeyGen (section 2.3) from at least 32 bytes of key material."""

    def sk_to_pk(self, sk: SecretKey) -> PublicKey:
        """SkToPk (section 2.4)."""

    def sign(self, sk: SecretKey, message: bytes) -> Signature:
        """Sign (section 3.3 / 2.6) under the ``..._POP_`` DST."""

    def verify(self, pk: PublicKey, message: bytes, signature: Signature) -> bool:
        """Verify (section 3.3 / 2.7), including KeyValidate. Never raises."""

    def aggregate(self, signatures: Sequence[Signature]) -> Signature:
        """Aggregate (section 2.8) of at least one valid signature."""

    def fast_aggregate_verify(
        self, pks: Sequence[PublicKey], message: bytes, signature: Signature
    ) -> bool:
        """FastAggregateVerify (section 3.3.4): many signers, one message. Never raises."""

    def pop_prove(self, sk: SecretKey) -> Signature:
        """PopProve (section 3.3.2)."""

    def pop_verify(self, pk: PublicKey, proof: Signature) -> bool:
        """PopVerify (section 3.3.3). Never raises."""

    def decode_pubkey(self, data: bytes) -> PublicKey:
        """``data`` if it is a valid public key, else :class:`MalformedKeyError`."""

    def decode_signature(self, data: bytes) -> Signature:
        """``data`` if it is a valid signature, else :class:`MalformedSignatureError`."""


BACKENDS: dict[str, BlsBackend] = {
    "py_ecc": PyEccBackend(),
    "arkworks": ArkworksBackend(),
    "blst": BlstBackend(),
}
BACKEND_NAMES = tuple(BACKENDS)


def get_backend(name: str | None = None) -> BlsBackend:
    """The backend called ``name``; by default ``$PINPOINT_BLS_BACKEND`` or :data:`DEFAULT_BACKEND`."""
    if name is None:
        name = os.environ.get(BACKEND_ENV_VAR, DEFAULT_BACKEND)
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise UnknownBackendError(
            f"unknown BLS backend {name!r}; expected one of {BACKEND_NAMES}"
        ) from None


def decode_pubkey(data: bytes, backend: str | None = None) -> PublicKey:
    """``data`` if it is a valid public key, else :class:`MalformedKeyError` naming it."""
    return get_backend(backend).decode_pubkey(data)


def decode_signature(data: bytes, backend: str | None = None) -> Signature:
    """``data`` if it is a valid signature, else :class:`MalformedSignatureError` naming it."""
    return get_backend(backend).decode_signature(data)


__all__ = [
    "BACKEND_ENV_VAR",
    "BACKEND_NAMES",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DST_POP",
    "DST_SIGN",
    "PUBKEY_SIZE",
    "SIGNATURE_SIZE",
    "BlsBackend",
    "MalformedKeyError",
    "MalformedSignatureError",
    "SecretKeyError",
    "UnknownBackendError",
    "decode_pubkey",
    "decode_signature",
    "get_backend",
]
