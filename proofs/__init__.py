"""Commitments and signatures of Pinpoint: everything a verifier checks without re-executing.

- :mod:`proofs.hashing`: hash functions (SHA-256, BLAKE3) and domain tags.
- :mod:`proofs.merkle`: RFC 6962 Merkle trees and inclusion proofs (reference and fast builders).
- :mod:`proofs.encoding`: canonical encoding of training state; tensor, state and trace roots.
- :mod:`proofs.bls`: BLS signatures (IETF POP ciphersuite; py_ecc and arkworks backends).
- :mod:`proofs.keys`: key registry with proofs of possession; deterministic demo keys.
- :mod:`proofs.messages`: signed commitments, attestations, rulings; equivocation evidence.

Imports only the standard library, numpy, py_ecc, blake3 and py_arkworks_bls12381.
"""
