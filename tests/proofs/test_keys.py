import pytest

from proofs.bls import BACKEND_NAMES, MalformedKeyError, get_backend
from proofs.keys import KeyRegistry, RegistrationError, derive_keypair, register_party


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    return get_backend(request.param)


def test_demo_keys_are_deterministic_per_party_and_equal_across_backends():
    keys = derive_keypair(b"seed", "solver-1", get_backend("arkworks"))
    assert keys == derive_keypair(b"seed", "solver-1", get_backend("py_ecc"))
    assert keys != derive_keypair(b"seed", "solver-2", get_backend("arkworks"))
    assert keys != derive_keypair(b"seed2", "solver-1", get_backend("arkworks"))


def test_registration_needs_a_valid_proof_of_possession(backend):
    registry = KeyRegistry(backend)
    sk, pk = derive_keypair(b"seed", "alice", backend)
    other_sk, other_pk = derive_keypair(b"seed", "bob", backend)
    with pytest.raises(RegistrationError, match="alice"):
        registry.register("alice", pk, backend.pop_prove(other_sk))
    registry.register("alice", pk, backend.pop_prove(sk))
    assert registry.public_key("alice") == pk
    assert registry.is_registered("alice", pk) and not registry.is_registered("alice", other_pk)


def test_registry_rules():
    backend = get_backend("arkworks")
    registry = KeyRegistry(backend)
    sk, pk = derive_keypair(b"seed", "alice", backend)
    other_sk, _ = derive_keypair(b"seed", "bob", backend)
    assert register_party(registry, "alice", sk) == pk
    register_party(registry, "alice", sk)  # the same registration again is a no-op
    with pytest.raises(RegistrationError, match="already has key"):
        register_party(registry, "alice", other_sk)
    with pytest.raises(RegistrationError, match="already registered"):
        register_party(registry, "mallory", sk)
    with pytest.raises(RegistrationError, match="nobody"):
        registry.public_key("nobody")
    with pytest.raises(MalformedKeyError, match="c0"):
        registry.register("zero", b"\xc0" + b"\x00" * 47, b"")
    assert not registry.is_registered(["unhashable"], pk)


def test_default_backend_is_used(monkeypatch):
    monkeypatch.setenv("PINPOINT_BLS_BACKEND", "arkworks")
    assert KeyRegistry().backend.name == "arkworks"
    assert derive_keypair(b"s", "p") == derive_keypair(b"s", "p", get_backend("arkworks"))
