"""The honest path of a job: training steps, the solver's commitment, the verifier's spot checks.

Groups
------
``train-step``
    One ``Program.step`` (forward, backward, SGD-momentum update) per model and width: the unit
    every other cost is divided by.
``commit``
    The solver's commitment work (docs/design.md §1.4), in its two parts, marked by ``extra_info["part"]``:

    ``checkpoint``
        the state root of one checkpoint, computed at every checkpoint (per model and width);
    ``store``
        writing one checkpoint to zarr, which the solver keeps to answer a dispute (per model and
        width; reported next to the commitment, not inside it);
    ``job``
        once per job: the trace root over the ``n = T/k + 1`` checkpoint roots and one BLS signature
        of the commitment ``(job id, solver id, trace root, final state root, T, k)`` (per interval
        ``k`` of a job of ``T = COMMIT_T`` steps, per BLS backend; py_ecc is pure Python, so it gets
        a few pedantic rounds instead of pytest-benchmark's calibration).

    The honest-case overhead of a job is ``(n · checkpoint + job) / (T · train-step)``, which tends
    to ``checkpoint / (k · train-step)`` for long jobs; ``benchmarks.report`` computes both.
``spot-check``
    The verifier's ``interval`` policy re-executing ``m`` of the ``n`` intervals of one honest job
    from the solver's own checkpoints (trace proofs checked), against the ``replicate`` policy that
    re-trains the whole job. One bad interval is caught with probability ``m / n`` by the former
    and 1 by the latter (``extra_info["detection"]``; verification.verifier).
"""

from __future__ import annotations

import math

import pytest

from benchmarks import get_sizes, is_full_study
from benchmarks.conftest import DEFAULT_WIDTH, bench_coin, describe_program, sign_run
from benchmarks.schemes import replicate_job
from proofs.bls import BACKEND_NAMES, get_backend
from proofs.encoding import trace_root
from proofs.hashing import DOMAIN_STATE, hash_parts
from proofs.keys import derive_keypair
from proofs.messages import Commitment, sign_message, verify_signed
from proofs.types import JobId, PartyId, Root, SolverId, Step
from verification.execution.checkpoints import CheckpointWriter, read_checkpoint
from verification.spec import SolverSpec, compute_job_id
from verification.verifier import check_interval, compute_check_intervals

MODEL_SIZES = [("mlp", w) for w in get_sizes((32, DEFAULT_WIDTH, 128, 512), (1024, 2048))] + \
    [("cnn", w) for w in get_sizes((8, 16), (32, 64))] + \
    [("transformer", w) for w in get_sizes((32, 64), (128,))]
COMMIT_T = 1000
COMMIT_INTERVALS = get_sizes((1, 10, 25, 100, 1000), (5, 50, 250, 500))
PEDANTIC_BACKENDS = {"py_ecc": 5}  # backend -> rounds, for backends too slow to calibrate
SPOT_T, SPOT_K = (1000, 25) if is_full_study() else (200, 10)
SPOT_N = SPOT_T // SPOT_K
SPOT_SAMPLES = sorted({1, 2, 5, SPOT_N // 2, SPOT_N})
HONEST = SolverSpec(SolverId("honest"), "honest")


@pytest.mark.benchmark(group="train-step")
@pytest.mark.parametrize("model, width", MODEL_SIZES)
def test_train_step(benchmark, bench_program, model, width):
    program = bench_program(model, width)
    state, batch = program.init_state(), program.batch(Step(1))
    benchmark.extra_info.update(describe_program(program))
    out = benchmark(program.step, state, batch)
    assert out.state.step == 1 and math.isfinite(out.loss)


@pytest.mark.benchmark(group="commit")
@pytest.mark.parametrize("model, width", MODEL_SIZES)
def test_commit_checkpoint(benchmark, bench_program, model, width):
    program = bench_program(model, width)
    state = program.step(program.init_state(), program.batch(Step(1))).state
    benchmark.extra_info.update(describe_program(program), part="checkpoint")
    root = benchmark(state.root, program.spec.hashing)
    assert root == state.root(program.spec.hashing)


@pytest.mark.benchmark(group="commit")
@pytest.mark.parametrize("model, width", MODEL_SIZES)
def test_commit_store(benchmark, bench_program, model, width, tmp_path):
    program = bench_program(model, width)
    state = program.step(program.init_state(), program.batch(Step(1))).state
    arrays = state.to_arrays()
    writer = CheckpointWriter(tmp_path / "checkpoints.zarr", arrays, interval=1, num_checkpoints=2)
    benchmark.extra_info.update(describe_program(program), part="store")

    def store() -> None:  # the whole write (root and row), waited for
        writer.write(1, arrays, (0.0,))
        writer.wait()

    benchmark(store)
    writer.close()
    stored = read_checkpoint(writer.tmp, 1)
    assert stored.root(program.spec.hashing) == state.root(program.spec.hashing) == writer.roots()[-1]


def make_checkpoint_roots(count: int) -> list[Root]:
    """``count`` distinct stand-in state roots (the trace root's cost depends only on their number)."""
    return [hash_parts(DOMAIN_STATE, b"bench", i.to_bytes(8, "big")) for i in range(count)]


@pytest.mark.benchmark(group="commit")
@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("k", COMMIT_INTERVALS)
def test_commit_job(benchmark, backend_name, k):
    backend, solver = get_backend(backend_name), SolverId("honest")
    roots = make_checkpoint_roots(COMMIT_T // k + 1)
    sk, _ = derive_keypair(b"bench-seed", solver, backend)

    def commit():
        commitment = Commitment(JobId("job-bench-commit"), solver, trace_root(roots),
                                roots[-1], Step(COMMIT_T), Step(k))
        return sign_message(commitment, sk, PartyId(solver), backend)

    benchmark.extra_info.update(part="job", T=COMMIT_T, k=k, checkpoints=len(roots),
                                backend=backend_name, hash_name="sha256")
    if backend_name in PEDANTIC_BACKENDS:
        signed = benchmark.pedantic(commit, rounds=PEDANTIC_BACKENDS[backend_name], iterations=1)
    else:
        signed = benchmark(commit)
    assert verify_signed(signed, get_backend("arkworks"))  # byte-identical backends: check fast


@pytest.fixture(scope="module")
def spot_job(bench_program, bench_run):
    """The default MLP on a job of ``SPOT_T`` steps, interval ``SPOT_K``, trained once honestly."""
    program = bench_program("mlp", DEFAULT_WIDTH, steps=SPOT_T, checkpoint_interval=SPOT_K)
    return program, bench_run(program, HONEST)


def spot_info(program, policy: str, m: int, steps_executed: int) -> dict:
    detection = 1.0 if policy == "replicate" else m / SPOT_N
    return {**describe_program(program), "policy": policy, "m": m, "n": SPOT_N, "T": SPOT_T,
            "k": SPOT_K, "detection": detection, "steps_executed": steps_executed}


@pytest.mark.benchmark(group="spot-check")
@pytest.mark.parametrize("m", SPOT_SAMPLES)
def test_spot_check_interval(benchmark, spot_job, m):
    program, run = spot_job
    spec, solver = program.spec, HONEST.solver_id
    claimed = trace_root(list(run.roots), spec.hashing)
    intervals = compute_check_intervals(bench_coin(spec), run.solver_id, sign_run(spec, run).signature, SPOT_N, m, spec.hashing)
    check = benchmark(check_interval, program, solver, run.roots, claimed, run.checkpoint_path, intervals)
    benchmark.extra_info.update(spot_info(program, "interval", m, check.steps_executed))
    assert not check.mismatch and check.steps_executed == m * SPOT_K


@pytest.mark.benchmark(group="spot-check")
def test_spot_check_replicate(benchmark, spot_job, tmp_path):
    program, run = spot_job
    spec, solver = program.spec, HONEST.solver_id
    claimed = trace_root(list(run.roots), spec.hashing)
    check = benchmark(replicate_job, program, solver, claimed, tmp_path / "replica.zarr",
                      compute_job_id(spec), SolverId(spec.verifier))
    benchmark.extra_info.update(spot_info(program, "replicate", SPOT_N, check.steps_executed))
    assert not check.mismatch and check.steps_executed == SPOT_T
