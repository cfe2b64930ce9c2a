"""Group ``schemes``: verification schemes side by side on one job (:mod:`benchmarks.schemes`).

The job is the default MLP trained for ``SCHEME_T`` steps with checkpoints every ``SCHEME_K``.
``extra_info["scheme"]`` names the scheme: ``training`` (the job itself, no checkpoints or hashes:
the cost every other entry is divided by), ``replication``, ``pol-top-q`` (with ``Q``),
``optimistic-check`` (a spot check of ``m`` intervals) and ``optimistic-dispute`` (the whole
bisection game and referee ruling against a cheating solver).

Every scheme's cost is measured on an honest solver except the dispute, which needs a cheater: a
``lazy`` solver that skips every step of the middle interval. ``extra_info["catches_lazy"]`` records
whether the scheme, run once on that solver, rejects it (``detection`` is the probability for the
randomized spot check). The zero-knowledge scheme is a cost model, never benchmarked: see
``benchmarks.schemes.KAIZEN_VGG11``.
"""

from __future__ import annotations

import pytest

from benchmarks import is_full_study
from benchmarks.conftest import DEFAULT_WIDTH, bench_coin, describe_program, sign_run
from benchmarks.schemes import (
    get_lazy_interval_params,
    play_dispute,
    replicate_job,
    verify_pol_top_q,
)
from proofs.encoding import trace_root
from proofs.types import PartyId, SolverId, Step
from verification.spec import SolverSpec, compute_job_id
from verification.strategies import Honest, resolve_strategy
from verification.verifier import check_interval, compute_check_intervals

SCHEME_T, SCHEME_K = (1000, 25) if is_full_study() else (200, 10)
SCHEME_N = SCHEME_T // SCHEME_K
POL_Q = (1, 2)
POL_DELTA = 0.0  # exact mode re-executes bit for bit; PoL needs delta > 0 only across hardware
HONEST = SolverSpec(SolverId("honest"), "honest")
LAZY = SolverSpec(SolverId("lazy"), "lazy", get_lazy_interval_params(SCHEME_N, SCHEME_K))


@pytest.fixture(scope="module")
def scheme_job(bench_program, bench_run):
    program = bench_program("mlp", DEFAULT_WIDTH, steps=SCHEME_T, checkpoint_interval=SCHEME_K)
    honest, lazy = bench_run(program, HONEST), bench_run(program, LAZY)
    return program, honest, lazy


def scheme_info(program, scheme: str, **fields) -> dict:
    return {**describe_program(program), "scheme": scheme, "T": SCHEME_T, "k": SCHEME_K,
            "n": SCHEME_N, **fields}


def claimed_root(program, run):
    return trace_root(list(run.roots), program.spec.hashing)


@pytest.mark.benchmark(group="schemes")
def test_scheme_training(benchmark, scheme_job):
    program = scheme_job[0]
    benchmark.extra_info.update(scheme_info(program, "training", steps_executed=SCHEME_T))
    state = benchmark(program.run, program.init_state(), Step(SCHEME_T))
    assert state.step == SCHEME_T


@pytest.mark.benchmark(group="schemes")
def test_scheme_replication(benchmark, scheme_job, tmp_path):
    program, honest, lazy = scheme_job
    job_id, verifier = compute_job_id(program.spec), SolverId(program.spec.verifier)
    check = benchmark(replicate_job, program, honest.solver_id, claimed_root(program, honest),
                      tmp_path / "replica.zarr", job_id, verifier)
    caught = replicate_job(program, lazy.solver_id, claimed_root(program, lazy),
                           tmp_path / "replica-lazy.zarr", job_id, verifier).mismatch
    benchmark.extra_info.update(scheme_info(program, "replication", steps_executed=check.steps_executed,
                                            detection=1.0, catches_lazy=caught))
    assert not check.mismatch and caught


@pytest.mark.benchmark(group="schemes")
@pytest.mark.parametrize("q", POL_Q)
def test_scheme_pol_top_q(benchmark, scheme_job, q):
    program, honest, lazy = scheme_job
    checkpoints = program.spec.num_checkpoints
    check = benchmark(verify_pol_top_q, program, honest.checkpoint_path, checkpoints, q, POL_DELTA)
    on_lazy = verify_pol_top_q(program, lazy.checkpoint_path, checkpoints, q, POL_DELTA)
    benchmark.extra_info.update(scheme_info(program, "pol-top-q", Q=q, steps_executed=check.steps_executed,
                                            catches_lazy=not on_lazy.accepted))
    # The lazy interval has a zero update, so top-Q never re-executes it.
    assert check.accepted and on_lazy.accepted


@pytest.mark.benchmark(group="schemes")
def test_scheme_optimistic_check(benchmark, scheme_job):
    program, honest, lazy = scheme_job
    spec = program.spec
    m = spec.intervals_per_check

    def spot_check(run, strategy):
        intervals = compute_check_intervals(bench_coin(spec), run.solver_id, sign_run(spec, run).signature, SCHEME_N, m, spec.hashing)
        return check_interval(program, run.solver_id, run.roots, claimed_root(program, run),
                              run.checkpoint_path, intervals)

    check = benchmark(spot_check, honest, Honest())
    caught = spot_check(lazy, resolve_strategy(LAZY.strategy, LAZY.params)).mismatch
    benchmark.extra_info.update(scheme_info(program, "optimistic-check", m=m, detection=m / SCHEME_N,
                                            p=spec.spot_check_probability,
                                            steps_executed=check.steps_executed, catches_lazy=caught))
    assert not check.mismatch


@pytest.mark.benchmark(group="schemes")
def test_scheme_optimistic_dispute(benchmark, scheme_job):
    program, honest, lazy = scheme_job
    strategy = resolve_strategy(LAZY.strategy, LAZY.params)
    challenger = PartyId(program.spec.verifier)
    result = benchmark(play_dispute, program, lazy, strategy, honest, claimed_root(program, lazy), challenger)
    benchmark.extra_info.update(scheme_info(program, "optimistic-dispute", rounds=result.rounds,
                                            referee_ops=result.referee_ops, operator=result.operator,
                                            winner=result.winner,
                                            first_divergent_step=result.first_divergent_step,
                                            catches_lazy=result.winner == "challenger"))
    assert result.winner == "challenger" and result.first_divergent_step == LAZY.params["start"]
