"""Fast BLS backend on ``py_arkworks_bls12381`` (Rust arkworks bindings, ~1 ms to verify).

arkworks supplies the group operations, RFC 9380 hash-to-curve (called with the ciphersuite's
DST) and pairings; this module writes the draft's CoreSign / CoreVerify / FastAggregateVerify /
PopProve / PopVerify (draft-irtf-cfrg-bls-signature-05, sections 2.6-2.9 and 3.3) on top.
Key derivation comes from :mod:`proofs.bls.keygen`.

arkworks accepts some non-canonical encodings (e.g. any bytes with the infinity flag set decode to
the identity), so a point is accepted only if re-encoding it gives back the same bytes. With that
rule both backends accept exactly the same byte strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from proofs.bls.common import (
    DST_POP,
    DST_SIGN,
    MalformedKeyError,
    MalformedSignatureError,
    check_message,
    check_pubkey_size,
    check_secret_key,
    check_signature_size,
    describe,
)
from proofs.bls.keygen import key_gen
from proofs.types import PublicKey, SecretKey, Signature

G1_GENERATOR = G1Point()


def pubkey_point(data: bytes) -> G1Point:
    """The G1 point of a public key that passes KeyValidate; :class:`MalformedKeyError` else."""
    check_pubkey_size(data)
    try:
        point = G1Point.from_compressed_bytes(data)
    except ValueError as error:
        raise MalformedKeyError(f"public key {describe(data)}: {error}") from None
    # Rule: the encoding is canonical.
    if point.to_compressed_bytes() != data:
        raise MalformedKeyError(f"public key {describe(data)} is not canonically encoded")
    # Rule (KeyValidate): not the identity, and in the prime-order subgroup G1.
    if point == G1Point.identity():
        raise MalformedKeyError(f"public key {describe(data)} is the identity")
    if not point.is_in_subgroup():
        raise MalformedKeyError(f"public key {describe(data)} is not in G1")
    return point


def signature_point(data: bytes) -> G2Point:
    """The G2 point of a signature; :class:`MalformedSignatureError` else."""
    check_signature_size(data)
    try:
        point = G2Point.from_compressed_bytes(data)
    except ValueError as error:
        raise MalformedSignatureError(f"signature {describe(data)}: {error}") from None
    # Rule: the encoding is canonical.
    if point.to_compressed_bytes() != data:
        raise MalformedSignatureError(f"signature {describe(data)} is not canonically encoded")
    # Rule: in the prime-order subgroup G2.
    if not point.is_in_subgroup():
        raise MalformedSignatureError(f"signature {describe(data)} is not in G2")
    return point


def core_sign(sk: SecretKey, message: bytes, dst: bytes) -> Signature:
    """CoreSign (draft section 2.6): ``sk * hash_to_curve(message, dst)``."""
    point = G2Point.hash_to_curve(check_message(message), dst) * Scalar(check_secret_key(sk))
    return Signature(point.to_compressed_bytes())


def core_verify(pk: G1Point, message: bytes, signature: bytes, dst: bytes) -> bool:
    """CoreVerify (draft section 2.7): ``e(pk, H(m)) == e(g1, sig)``. Never raises."""
    if not isinstance(message, bytes):
        return False
    try:
        sig = signature_point(signature)
    except MalformedSignatureError:
        return False
    return GT.pairing_check([pk, -G1_GENERATOR], [G2Point.hash_to_curve(message, dst), sig])


def verify_with_key(pk: bytes, message: bytes, signature: bytes, dst: bytes) -> bool:
    """KeyValidate then CoreVerify. Never raises."""
    try:
        point = pubkey_point(pk)
    except MalformedKeyError:
        return False
    return core_verify(point, message, signature, dst)


class ArkworksBackend:
    """The BLS API of :class:`proofs.bls.BlsBackend` on arkworks."""

    name = "arkworks"

    def key_gen(self, ikm: bytes) -> SecretKey:
        return key_gen(ikm)

    def sk_to_pk(self, sk: SecretKey) -> PublicKey:
        return PublicKey((G1_GENERATOR * Scalar(check_secret_key(sk))).to_compressed_bytes())

    def sign(self, sk: SecretKey, message: bytes) -> Signature:
        return core_sign(sk, message, DST_SIGN)

    def verify(self, pk: PublicKey, message: bytes, signature: Signature) -> bool:
        return verify_with_key(pk, message, signature, DST_SIGN)

    def aggregate(self, signatures: Sequence[Signature]) -> Signature:
        if len(signatures) == 0:
            raise MalformedSignatureError("cannot aggregate an empty list of signatures")
        total = G2Point.identity()
        for signature in signatures:
            total = total + signature_point(signature)
        return Signature(total.to_compressed_bytes())

    def fast_aggregate_verify(
        self, pks: Sequence[PublicKey], message: bytes, signature: Signature
    ) -> bool:
        if not isinstance(pks, list | tuple) or len(pks) == 0:
            return False
        total = G1Point.identity()
        try:
            for pk in pks:
                total = total + pubkey_point(pk)
        except MalformedKeyError:
            return False
        # Rule (KeyValidate of the aggregate key): keys that cancel out verify nothing.
        if total == G1Point.identity():
            return False
        return core_verify(total, message, signature, DST_SIGN)

    def pop_prove(self, sk: SecretKey) -> Signature:
        return core_sign(sk, self.sk_to_pk(sk), DST_POP)

    def pop_verify(self, pk: PublicKey, proof: Signature) -> bool:
        return verify_with_key(pk, pk, proof, DST_POP)

    def decode_pubkey(self, data: bytes) -> PublicKey:
        pubkey_point(data)
        return PublicKey(data)

    def decode_signature(self, data: bytes) -> Signature:
        signature_point(data)
        return Signature(data)
