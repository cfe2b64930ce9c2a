"""Benchmarks of proofs/: BLS per backend, Merkle builders, state commitment vs raw SHA-256.

Ratios are what matter (fast vs reference backend, state_root vs one SHA-256 pass over the same
bytes); each benchmark records what it measured in ``extra_info`` so the report can form them.
py_ecc pairings take ~0.3 s, so its verifications run once (``pedantic``, one round).
"""

import hashlib

import numpy as np
import pytest

from proofs.bls import BACKEND_NAMES, get_backend
from proofs.encoding import state_root
from proofs.hashing import DOMAIN_SHARD
from proofs.merkle import BACKENDS as MERKLE_BACKENDS
from proofs.merkle import hash_leaf

MESSAGE = b"\x56" * 32
SIGNERS = 16


def keys(backend, count):
    secret_keys = [backend.key_gen(bytes([i + 1]) * 32) for i in range(count)]
    return secret_keys, [backend.sk_to_pk(sk) for sk in secret_keys]


def run(benchmark, backend, fn, *args):
    """Slow reference-backend operations run once; everything else is timed normally."""
    if backend.name == "py_ecc":
        return benchmark.pedantic(fn, args=args, rounds=1, iterations=1)
    return benchmark(fn, *args)


@pytest.mark.benchmark(group="sign")
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_sign(benchmark, name):
    backend = get_backend(name)
    (sk,), _ = keys(backend, 1)
    benchmark.extra_info["backend"] = name
    signature = run(benchmark, backend, backend.sign, sk, MESSAGE)
    assert len(signature) == 96


@pytest.mark.benchmark(group="sign")
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_verify(benchmark, name):
    backend = get_backend(name)
    (sk,), (pk,) = keys(backend, 1)
    signature = backend.sign(sk, MESSAGE)
    benchmark.extra_info["backend"] = name
    assert run(benchmark, backend, backend.verify, pk, MESSAGE, signature)


@pytest.mark.benchmark(group="sign")
@pytest.mark.parametrize("name", BACKEND_NAMES)
def test_fast_aggregate_verify(benchmark, name):
    backend, fast = get_backend(name), get_backend("arkworks")
    secret_keys, pks = keys(fast, SIGNERS)
    signature = fast.aggregate([fast.sign(sk, MESSAGE) for sk in secret_keys])
    benchmark.extra_info.update(backend=name, signers=SIGNERS)
    assert run(benchmark, backend, backend.fast_aggregate_verify, pks, MESSAGE, signature)


@pytest.mark.benchmark(group="merkle")
@pytest.mark.parametrize("leaves", [1024, 65536])
@pytest.mark.parametrize("builder", sorted(MERKLE_BACKENDS))
def test_merkle_root(benchmark, builder, leaves):
    hashes = [hash_leaf(i.to_bytes(8, "big"), DOMAIN_SHARD) for i in range(leaves)]
    merkle_root = MERKLE_BACKENDS[builder].merkle_root
    benchmark.extra_info.update(builder=builder, leaves=leaves)
    root = benchmark.pedantic(merkle_root, args=(hashes, DOMAIN_SHARD), rounds=3, iterations=1)
    assert root == MERKLE_BACKENDS["fast"].merkle_root(hashes, DOMAIN_SHARD)


def make_state(total_bytes):
    """A model-like state: a few float32 matrices and vectors adding up to ``total_bytes``."""
    rng = np.random.default_rng(0)
    rows = total_bytes // (4 * 4 * 1024)
    state = {f"layer{i}.weight": rng.standard_normal((rows, 1024), np.float32) for i in range(4)}
    state["layer0.bias"] = np.zeros(1024, np.float32)
    state["step"] = np.int64(1)
    return state


def sha256_pass(state):
    """One raw SHA-256 pass over every tensor's bytes: the floor for any commitment."""
    return [
        hashlib.sha256(memoryview(a.reshape(-1).view(np.uint8))).digest() for a in state.values()
    ]


@pytest.mark.benchmark(group="commit")
@pytest.mark.parametrize("megabytes", [1, 16])
@pytest.mark.parametrize("method", ["state_root", "raw_sha256"])
def test_state_commitment(benchmark, method, megabytes):
    state = make_state(megabytes * 2**20)
    fn = state_root if method == "state_root" else sha256_pass
    nbytes = sum(np.asarray(a).nbytes for a in state.values())
    benchmark.extra_info.update(method=method, bytes=nbytes)
    benchmark.pedantic(fn, args=(state,), rounds=5, iterations=1, warmup_rounds=1)
