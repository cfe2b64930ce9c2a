"""BLS KeyGen of draft-irtf-cfrg-bls-signature-05, section 2.3, in pure Python.

py_arkworks_bls12381 has no key derivation, so the fast backend uses this one; the reference
backend uses py_ecc's, and the shared test suite checks that both derive the same keys.

Terms
-----
HKDF-Extract, HKDF-Expand
    RFC 5869 with HMAC-SHA-256.
KeyGen(IKM, key_info)
    ``salt = "BLS-SIG-KEYGEN-SALT-"``; repeat ``salt = SHA-256(salt)``,
    ``PRK = HKDF-Extract(salt, IKM || I2OSP(0, 1))``,
    ``OKM = HKDF-Expand(PRK, key_info || I2OSP(L, 2), L)``, ``SK = OS2IP(OKM) mod r`` until
    ``SK != 0``; ``L = ceil(3 * ceil(log2(r)) / 16) = 48``.
"""

from __future__ import annotations

import hashlib
import hmac

from proofs.bls.common import CURVE_ORDER, check_ikm
from proofs.types import SecretKey

KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"
OKM_SIZE = 48


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869, section 2.2."""
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869, section 2.3."""
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


def key_gen(ikm: bytes) -> SecretKey:
    """Secret key derived from at least 32 bytes of key material (``key_info`` is empty)."""
    check_ikm(ikm)
    salt, sk = KEYGEN_SALT, 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hkdf_extract(salt, ikm + b"\x00")
        okm = hkdf_expand(prk, OKM_SIZE.to_bytes(2, "big"), OKM_SIZE)
        sk = int.from_bytes(okm, "big") % CURVE_ORDER
    return SecretKey(sk)
