"""Who holds which BLS key: a registry guarded by proofs of possession, and demo keys.

Terms
-----
proof of possession (PoP)
    A signature by the secret key on its own public key under a separate DST
    (draft-irtf-cfrg-bls-signature-05, section 3.3). Requiring one at registration stops
    rogue-key attacks on aggregate signatures: nobody can register a key derived from other
    parties' keys, since they cannot sign with it.
key registry
    The map party id -> public key that verifiers trust. A party registers once; its key and its
    id are unique in the registry.
demo key
    ``KeyGen(hash_parts(DOMAIN_KEYS, seed, party))``: deterministic keys for demos and tests, so a
    run can be replayed from its seed. A real party brings its own key material.
"""

from __future__ import annotations

from proofs.bls import BlsBackend, get_backend
from proofs.hashing import DOMAIN_KEYS, hash_parts
from proofs.types import PartyId, PublicKey, SecretKey


class RegistrationError(ValueError):
    """A registration the registry refuses (bad proof of possession, taken id or key)."""


class KeyRegistry:
    """Party id -> public key, every key registered with a valid proof of possession."""

    def __init__(self, backend: BlsBackend | None = None) -> None:
        self.backend = backend if backend is not None else get_backend()
        self.keys: dict[PartyId, PublicKey] = {}

    def register(self, party: PartyId, public_key: bytes, proof: bytes) -> None:
        """Add ``party``'s key; :class:`MalformedKeyError` or :class:`RegistrationError` if bad."""
        self.backend.decode_pubkey(public_key)
        # Rule: one key per party and one party per key; registering again is a no-op.
        if self.keys.get(party) == public_key:
            return
        if party in self.keys:
            raise RegistrationError(f"party {party!r} already has key 0x{self.keys[party].hex()}")
        if public_key in self.keys.values():
            raise RegistrationError(f"key 0x{public_key.hex()} is already registered")
        # Rule: the registrant proves it holds the secret key.
        if not self.backend.pop_verify(public_key, proof):
            raise RegistrationError(
                f"invalid proof of possession 0x{bytes(proof).hex()} for party {party!r}"
            )
        self.keys[party] = PublicKey(public_key)

    def public_key(self, party: PartyId) -> PublicKey:
        """The registered key of ``party``; :class:`RegistrationError` if it has none."""
        try:
            return self.keys[party]
        except (KeyError, TypeError):
            raise RegistrationError(f"party {party!r} is not registered") from None

    def is_registered(self, party: PartyId, public_key: bytes) -> bool:
        """Whether ``public_key`` is the registered key of ``party``. Never raises."""
        try:
            return self.keys.get(party) == public_key
        except TypeError:
            return False


def derive_keypair(
    seed: bytes, party: str, backend: BlsBackend | None = None
) -> tuple[SecretKey, PublicKey]:
    """Deterministic demo keys of ``party`` from a job seed."""
    backend = backend if backend is not None else get_backend()
    ikm = hash_parts(DOMAIN_KEYS, seed, party.encode("utf-8"))
    sk = backend.key_gen(ikm)
    return sk, backend.sk_to_pk(sk)


def register_party(registry: KeyRegistry, party: PartyId, sk: SecretKey) -> PublicKey:
    """Register ``party`` with the key of ``sk``, proving possession; returns the public key."""
    public_key = registry.backend.sk_to_pk(sk)
    registry.register(party, public_key, registry.backend.pop_prove(sk))
    return public_key
