"""Reference BLS backend: ``py_ecc.bls.G2ProofOfPossession`` (pure Python, ~0.1 s to sign).

py_ecc is the implementation the Ethereum consensus-spec test vectors are generated with. This
module only adds the input rules of :mod:`proofs.bls.common` and the named decoding errors; the
scheme itself is py_ecc's.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_ecc.bls import G2ProofOfPossession as Scheme
from py_ecc.bls.g2_primitives import is_inf, pubkey_to_G1, signature_to_G2, subgroup_check

from proofs.bls.common import (
    MalformedKeyError,
    MalformedSignatureError,
    check_ikm,
    check_message,
    check_pubkey_size,
    check_secret_key,
    check_signature_size,
    describe,
)
from proofs.types import PublicKey, SecretKey, Signature


class PyEccBackend:
    """The BLS API of :class:`proofs.bls.BlsBackend` on py_ecc."""

    name = "py_ecc"

    def key_gen(self, ikm: bytes) -> SecretKey:
        return SecretKey(Scheme.KeyGen(check_ikm(ikm)))

    def sk_to_pk(self, sk: SecretKey) -> PublicKey:
        return PublicKey(Scheme.SkToPk(check_secret_key(sk)))

    def sign(self, sk: SecretKey, message: bytes) -> Signature:
        return Signature(Scheme.Sign(check_secret_key(sk), check_message(message)))

    def verify(self, pk: PublicKey, message: bytes, signature: Signature) -> bool:
        if not all(isinstance(value, bytes) for value in (pk, message, signature)):
            return False
        return Scheme.Verify(pk, message, signature)

    def aggregate(self, signatures: Sequence[Signature]) -> Signature:
        if len(signatures) == 0:
            raise MalformedSignatureError("cannot aggregate an empty list of signatures")
        return Signature(Scheme.Aggregate([self.decode_signature(s) for s in signatures]))

    def fast_aggregate_verify(
        self, pks: Sequence[PublicKey], message: bytes, signature: Signature
    ) -> bool:
        if not isinstance(pks, list | tuple) or len(pks) == 0:
            return False
        if not all(isinstance(value, bytes) for value in [*pks, message, signature]):
            return False
        return Scheme.FastAggregateVerify(list(pks), message, signature)

    def pop_prove(self, sk: SecretKey) -> Signature:
        return Signature(Scheme.PopProve(check_secret_key(sk)))

    def pop_verify(self, pk: PublicKey, proof: Signature) -> bool:
        if not isinstance(pk, bytes) or not isinstance(proof, bytes):
            return False
        return Scheme.PopVerify(pk, proof)

    def decode_pubkey(self, data: bytes) -> PublicKey:
        check_pubkey_size(data)
        try:
            point = pubkey_to_G1(data)
        except ValueError as error:
            raise MalformedKeyError(f"public key {describe(data)}: {error}") from None
        # Rule (KeyValidate): not the identity, and in the prime-order subgroup G1.
        if is_inf(point):
            raise MalformedKeyError(f"public key {describe(data)} is the identity")
        if not subgroup_check(point):
            raise MalformedKeyError(f"public key {describe(data)} is not in G1")
        return PublicKey(data)

    def decode_signature(self, data: bytes) -> Signature:
        check_signature_size(data)
        try:
            point = signature_to_G2(data)
        except ValueError as error:
            raise MalformedSignatureError(f"signature {describe(data)}: {error}") from None
        # Rule: in the prime-order subgroup G2.
        if not subgroup_check(point):
            raise MalformedSignatureError(f"signature {describe(data)} is not in G2")
        return Signature(data)
