"""Benchmarks of proofs/: BLS per backend, Merkle builders, state commitment vs raw SHA-256.

Ratios are what matter (fast vs reference backend, state_root vs one SHA-256 pass over the same
bytes); each benchmark records what it measured in ``extra_info`` so the report can form them.
py_ecc pairings take ~0.3 s, so its operations run ``PY_ECC_ROUNDS`` rounds of one call each
(``pedantic``): enough for a spread (min/median/max in the report), a few seconds in all.

``test_paired_fast_backends`` times the two fast backends against each other on one operation,
paired and interleaved (:mod:`benchmarks.paired`): each side is ``PAIRED_CALLS`` calls of the
operation on one backend, on the same bytes; the ratio ``arkworks/blst`` is above 1 where blst is
faster.
"""

import hashlib
from collections.abc import Callable

import numpy as np
import pytest

from benchmarks import get_paired_rounds, get_smoke
from benchmarks.paired import measure_paired, ratio_of
from proofs.bls import BACKEND_NAMES, BlsBackend, get_backend
from proofs.encoding import state_root
from proofs.hashing import DOMAIN_SHARD
from proofs.merkle import BACKENDS as MERKLE_BACKENDS
from proofs.merkle import hash_leaf

MESSAGE = b"\x56" * 32
SIGNERS = 16
PAIRED_SIGNERS = 8  # the keys of FastAggregateVerify in the paired measurement
PAIRED_CALLS = get_smoke(100, 1)  # calls of the operation per side and round
PAIRED_ROUNDS = get_paired_rounds(7)
PAIRED_OPERATIONS = ("sign", "verify", "fast_aggregate_verify", "sk_to_pk", "decode")


def keys(backend, count):
    secret_keys = [backend.key_gen(bytes([i + 1]) * 32) for i in range(count)]
    return secret_keys, [backend.sk_to_pk(sk) for sk in secret_keys]


PY_ECC_ROUNDS = 5


def run(benchmark, backend, fn, *args):
    """Slow reference-backend operations run ``PY_ECC_ROUNDS`` rounds; the rest is timed normally."""
    if backend.name == "py_ecc":
        return benchmark.pedantic(fn, args=args, rounds=PY_ECC_ROUNDS, iterations=1)
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


def compute_operations(backend: BlsBackend) -> dict[str, Callable[[], object]]:
    """One call of each paired operation on ``backend``; ``decode`` is a key and a signature."""
    secret_keys, pks = keys(backend, PAIRED_SIGNERS)
    signature = backend.sign(secret_keys[0], MESSAGE)
    aggregate = backend.aggregate([backend.sign(sk, MESSAGE) for sk in secret_keys])
    return {"sign": lambda: backend.sign(secret_keys[0], MESSAGE),
            "verify": lambda: backend.verify(pks[0], MESSAGE, signature),
            "fast_aggregate_verify": lambda: backend.fast_aggregate_verify(pks, MESSAGE, aggregate),
            "sk_to_pk": lambda: backend.sk_to_pk(secret_keys[0]),
            "decode": lambda: (backend.decode_pubkey(pks[0]), backend.decode_signature(signature))}


def repeated(call: Callable[[], object]) -> Callable[[], list]:
    return lambda: [call() for _ in range(PAIRED_CALLS)]


@pytest.mark.benchmark(group="sign")
@pytest.mark.parametrize("operation", PAIRED_OPERATIONS)
def test_paired_fast_backends(benchmark, operation):
    calls = {name: compute_operations(get_backend(name))[operation] for name in ("arkworks", "blst")}
    sides = {name: repeated(call) for name, call in calls.items()}
    result = benchmark.pedantic(measure_paired, (sides, {"arkworks/blst": ratio_of("arkworks", "blst")},
                                                 PAIRED_ROUNDS), rounds=1, iterations=1)
    case = f"{operation}({PAIRED_SIGNERS})" if operation == "fast_aggregate_verify" else operation
    benchmark.extra_info.update(case=case, calls=PAIRED_CALLS, paired=result.to_info())
    outcomes = [call() for call in calls.values()]
    assert outcomes[0] == outcomes[1] and outcomes[0] is not False


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
