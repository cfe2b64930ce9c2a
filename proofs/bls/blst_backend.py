"""Fast BLS backend on ``pyblst`` (Python bindings of supranational/blst, ~0.3 ms to sign).

blst supplies the group operations, RFC 9380 hash-to-curve (called with the ciphersuite's DST) and
pairings; this module writes the draft's CoreSign / CoreVerify / FastAggregateVerify / PopProve /
PopVerify (draft-irtf-cfrg-bls-signature-05, sections 2.6-2.9 and 3.3) on top. Key derivation
comes from :mod:`proofs.bls.keygen`.

Terms
-----
``uncompress``
    ``BlstP1Element.uncompress`` / ``BlstP2Element.uncompress`` (``blst_p1_uncompress`` then
    ``blst_p1_in_g1``, likewise for G2): rejects a missing compression flag, an infinity flag with
    other bits set, a coordinate ``>= p``, a point off the curve and a point outside the
    prime-order subgroup, but accepts the identity. So the encodings it accepts are exactly the
    canonical ones, and KeyValidate adds only the identity check.
``miller_loop(P, Q)``, ``final_verify(a, b)``
    The Miller loop of ``e(P, Q)`` for ``P`` in G1 and ``Q`` in G2, and whether ``a`` and ``b``
    are equal after the final exponentiation: ``final_verify(miller_loop(P, Q), miller_loop(R,
    S))`` is ``e(P, Q) == e(R, S)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyblst import BlstP1Element, BlstP2Element, final_verify, miller_loop

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

# The standard generator of G1 (draft section 4.2.1, ZCash compressed encoding).
G1_GENERATOR = BlstP1Element.uncompress(
    bytes.fromhex(
        "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac58"
        "6c55e83ff97a1aeffb3af00adb22c6bb"
    )
)
G1_IDENTITY = BlstP1Element()
G2_IDENTITY = BlstP2Element()


def pubkey_point(data: bytes) -> BlstP1Element:
    """The G1 point of a public key that passes KeyValidate; :class:`MalformedKeyError` else."""
    check_pubkey_size(data)
    # Rule (KeyValidate): a canonical encoding of a point in the prime-order subgroup G1.
    try:
        point = BlstP1Element.uncompress(data)
    except ValueError as error:
        raise MalformedKeyError(f"public key {describe(data)}: {error}") from None
    # Rule (KeyValidate): not the identity.
    if point == G1_IDENTITY:
        raise MalformedKeyError(f"public key {describe(data)} is the identity")
    return point


def signature_point(data: bytes) -> BlstP2Element:
    """The G2 point of a signature; :class:`MalformedSignatureError` else."""
    check_signature_size(data)
    # Rule: a canonical encoding of a point in the prime-order subgroup G2.
    try:
        return BlstP2Element.uncompress(data)
    except ValueError as error:
        raise MalformedSignatureError(f"signature {describe(data)}: {error}") from None


def core_sign(sk: SecretKey, message: bytes, dst: bytes) -> Signature:
    """CoreSign (draft section 2.6): ``sk * hash_to_curve(message, dst)``."""
    point = BlstP2Element.hash_to_group(check_message(message), dst)
    return Signature(point.scalar_mul(check_secret_key(sk)).compress())


def core_verify(pk: BlstP1Element, message: bytes, signature: bytes, dst: bytes) -> bool:
    """CoreVerify (draft section 2.7): ``e(pk, H(m)) == e(g1, sig)``. Never raises."""
    if not isinstance(message, bytes):
        return False
    try:
        sig = signature_point(signature)
    except MalformedSignatureError:
        return False
    hashed = BlstP2Element.hash_to_group(message, dst)
    return final_verify(miller_loop(pk, hashed), miller_loop(G1_GENERATOR, sig))


def verify_with_key(pk: bytes, message: bytes, signature: bytes, dst: bytes) -> bool:
    """KeyValidate then CoreVerify. Never raises."""
    try:
        point = pubkey_point(pk)
    except MalformedKeyError:
        return False
    return core_verify(point, message, signature, dst)


class BlstBackend:
    """The BLS API of :class:`proofs.bls.BlsBackend` on blst."""

    name = "blst"

    def key_gen(self, ikm: bytes) -> SecretKey:
        return key_gen(ikm)

    def sk_to_pk(self, sk: SecretKey) -> PublicKey:
        return PublicKey(G1_GENERATOR.scalar_mul(check_secret_key(sk)).compress())

    def sign(self, sk: SecretKey, message: bytes) -> Signature:
        return core_sign(sk, message, DST_SIGN)

    def verify(self, pk: PublicKey, message: bytes, signature: Signature) -> bool:
        return verify_with_key(pk, message, signature, DST_SIGN)

    def aggregate(self, signatures: Sequence[Signature]) -> Signature:
        if len(signatures) == 0:
            raise MalformedSignatureError("cannot aggregate an empty list of signatures")
        total = G2_IDENTITY
        for signature in signatures:
            total = total + signature_point(signature)
        return Signature(total.compress())

    def fast_aggregate_verify(
        self, pks: Sequence[PublicKey], message: bytes, signature: Signature
    ) -> bool:
        if not isinstance(pks, list | tuple) or len(pks) == 0:
            return False
        total = G1_IDENTITY
        try:
            for pk in pks:
                total = total + pubkey_point(pk)
        except MalformedKeyError:
            return False
        # Rule (KeyValidate of the aggregate key): keys that cancel out verify nothing.
        if total == G1_IDENTITY:
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
