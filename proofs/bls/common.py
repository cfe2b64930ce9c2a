"""Constants, errors and input rules shared by both BLS backends.

The scheme is the proof-of-possession ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``
of the IETF BLS signature draft (draft-irtf-cfrg-bls-signature-05, sections 4.2.3 and 4.2.1) in
its *minimal-pubkey-size* variant, the one Ethereum's consensus layer uses: public keys are
compressed G1 points (48 bytes), signatures compressed G2 points (96 bytes), messages are hashed
to G2 with the RFC 9380 suite ``BLS12381G2_XMD:SHA-256_SSWU_RO_``. Point encodings are the
ZCash compressed serialization (draft section 2.6 / RFC 9380 appendix; flag bits
``compressed | infinity | sign`` in the top three bits of the first byte).

Terms
-----
secret key
    An integer ``0 < sk < r`` where ``r`` is the order of G1 and G2 (:data:`CURVE_ORDER`).
KeyValidate (draft section 2.5)
    A public key is valid when it decodes to a point of G1 that is not the identity.
signature validity
    A signature is valid when it decodes to a point of G2 (the identity is allowed, as in the
    draft's ``signature_to_point`` + subgroup check; it never verifies against a valid key).
"""

from __future__ import annotations

from proofs.types import SecretKey

DST_SIGN = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
DST_POP = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
PUBKEY_SIZE = 48
SIGNATURE_SIZE = 96
MIN_IKM_SIZE = 32
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


class MalformedKeyError(ValueError):
    """Bytes that are not a valid public key (length, encoding, curve, subgroup, identity)."""


class MalformedSignatureError(ValueError):
    """Bytes that are not a valid signature (length, encoding, curve, subgroup)."""


class SecretKeyError(ValueError):
    """A secret key out of range, or key material too short to derive one."""


class UnknownBackendError(ValueError):
    """A BLS backend name that is not one of ``BACKEND_NAMES``."""


def check_secret_key(sk: int) -> SecretKey:
    """``sk`` itself if ``0 < sk < r``; :class:`SecretKeyError` otherwise (value not echoed)."""
    if type(sk) is not int or not 0 < sk < CURVE_ORDER:
        raise SecretKeyError(f"secret key of type {type(sk).__name__} is not in 1..r-1")
    return SecretKey(sk)


def check_ikm(ikm: bytes) -> bytes:
    """Key material of at least 32 bytes (draft section 2.3); :class:`SecretKeyError` otherwise."""
    if not isinstance(ikm, bytes) or len(ikm) < MIN_IKM_SIZE:
        raise SecretKeyError(f"key material must be >= {MIN_IKM_SIZE} bytes, got {ikm!r:.80}")
    return ikm


def check_message(message: bytes) -> bytes:
    """A message to sign must be ``bytes``."""
    if not isinstance(message, bytes):
        raise TypeError(f"message to sign must be bytes, got {type(message).__name__}")
    return message


def check_pubkey_size(data: object) -> bytes:
    """``data`` if it is 48 bytes; :class:`MalformedKeyError` naming it otherwise."""
    if not isinstance(data, bytes) or len(data) != PUBKEY_SIZE:
        raise MalformedKeyError(f"public key must be {PUBKEY_SIZE} bytes, got {describe(data)}")
    return data


def check_signature_size(data: object) -> bytes:
    """``data`` if it is 96 bytes; :class:`MalformedSignatureError` naming it otherwise."""
    if not isinstance(data, bytes) or len(data) != SIGNATURE_SIZE:
        raise MalformedSignatureError(
            f"signature must be {SIGNATURE_SIZE} bytes, got {describe(data)}"
        )
    return data


def describe(data: object) -> str:
    """How an offending value is named in error messages: hex for bytes, repr otherwise."""
    if isinstance(data, bytes):
        return f"{len(data)} bytes 0x{data.hex()}"
    return f"{type(data).__name__} {data!r:.80}"
