"""The dispute game and its referee, against re-executing the whole job.

Jobs: the tiny MLP (width 4, batches of 8) for ``T`` in 10 … 10,000 steps with a checkpoint every
``k ≈ sqrt(T)`` steps, so that long traces cost seconds. The cheater corrupts one operator (the
first ``addmm``) of one step two thirds of the way in (``op_corrupt``), so every game runs all three
levels and ends in a one-operator ruling.

Groups
------
``dispute``
    ``test_dispute[T-arity]``: one whole game (``DisputeGame.play``) between the cheater and an
    honest challenger's replica, for dissection arity 2 and 40; ``extra_info`` holds ``T``, ``k``,
    ``arity``, the rounds per level and the referee's operator count. ``test_replication[T]``
    (``role = replication``): the verifier re-training the whole job with checkpoints and comparing
    trace roots — what the game is compared with (``benchmarks.report``).
``referee``
    The referee alone on the disputed step of the ``T = 10,000`` job: ``operator`` (open, check
    and re-execute the one disputed operator), ``structure`` (a structure ruling: the step's
    schedule on fake tensors) and ``step`` (level 3 off: re-execute the whole step). The same
    three at larger widths (``test_referee_width``, no job: one step of a fresh state) show how
    the one-operator ruling scales with the model against a whole step.
"""

from __future__ import annotations

import pytest

from benchmarks import get_sizes, get_smoke
from benchmarks.conftest import describe_program
from benchmarks.schemes import replicate_job
from proofs.encoding import trace_root
from proofs.types import PartyId, SolverId, Step
from verification.dispute import DisputeGame, compute_game_round_bound
from verification.execution.checkpoints import read_checkpoint
from verification.execution.opgraph import derive_schedule, open_operands, record_step
from verification.providers import TraceProvider
from verification.referee import rule_on_output, rule_on_step, rule_on_structure
from verification.spec import SolverSpec
from verification.strategies import Honest, OpCorrupt, resolve_strategy

WIDTH = 4
BATCH = 8
JOBS = get_smoke({10: 5, 100: 10, 1000: 40, 10_000: 100}, {10: 5, 100: 10, 1000: 40})  # T -> interval k
ARITIES = get_sizes((2, 40), (4, 8))
CORRUPTED_OP = 7  # the first addmm of the MLP's step (after the batch slices, detaches and a t)
REFEREE_T = get_smoke(10_000, 1000)
REFEREE_WIDTHS = get_sizes((64, 256), (1024,))
PEDANTIC_ROUNDS = 3


def get_cheater(T: int) -> SolverSpec:
    return SolverSpec(SolverId("cheater"), "op_corrupt", {"step": T - T // 3, "op": CORRUPTED_OP})


@pytest.fixture(scope="module")
def dispute_job(bench_program, bench_run):
    """``get(T) -> (program, cheater run, cheater strategy, honest replica run)``."""
    def get(T: int):
        program = bench_program("mlp", WIDTH, steps=T, checkpoint_interval=JOBS[T], batch_size=BATCH)
        cheater = get_cheater(T)
        return (program, bench_run(program, cheater), resolve_strategy(cheater.strategy, cheater.params),
                bench_run(program, SolverSpec(SolverId("honest"), "honest")))

    return get


def new_game(program, run, strategy, replica, arity: int) -> DisputeGame:
    return DisputeGame(program, TraceProvider(PartyId("cheater"), run, program, strategy),
                       TraceProvider(PartyId("verifier"), replica, program, Honest()),
                       trace_root(list(run.roots), program.spec.hashing), arity, 600.0)


@pytest.mark.benchmark(group="dispute")
@pytest.mark.parametrize("arity", ARITIES)
@pytest.mark.parametrize("T", sorted(JOBS))
def test_dispute(benchmark, dispute_job, T, arity):
    program, run, strategy, replica = dispute_job(T)
    spec = program.spec

    def setup():
        return (new_game(program, run, strategy, replica, arity),), {}

    def play(game):
        return game.play(spec.num_checkpoints - 1, spec.checkpoint_interval)

    result = benchmark.pedantic(play, setup=setup, rounds=PEDANTIC_ROUNDS)
    ops = len(derive_schedule(program, Step(strategy.step)))
    assert (result.winner, result.first_divergent_step, result.operator_index) == \
        ("challenger", strategy.step, CORRUPTED_OP)
    benchmark.extra_info.update(describe_program(program), T=T, k=spec.checkpoint_interval, arity=arity,
                                rounds=result.rounds, levels=result.levels, ops_per_step=ops,
                                round_bound=compute_game_round_bound(T, spec.checkpoint_interval, ops, arity),
                                referee_ops=result.referee_ops, operator=result.operator,
                                divergent_step=result.first_divergent_step)


@pytest.mark.benchmark(group="dispute")
@pytest.mark.parametrize("T", sorted(JOBS))
def test_replication(benchmark, dispute_job, tmp_path_factory, T):
    program, run, _, _ = dispute_job(T)
    spec = program.spec
    claimed = trace_root(list(run.roots), spec.hashing)

    def setup():
        path = tmp_path_factory.mktemp("replica") / "checkpoints.zarr"
        return (program, run.solver_id, claimed, path, "bench", SolverId("verifier")), {}

    check = benchmark.pedantic(replicate_job, setup=setup, rounds=PEDANTIC_ROUNDS)
    assert check.mismatch
    benchmark.extra_info.update(describe_program(program), T=T, k=spec.checkpoint_interval, role="replication")


# -- the referee --------------------------------------------------------------------------------
def get_disputed_step(program, strategy, pre):
    """Both parties' records of the disputed step and the referee's inputs for it."""
    hashing = program.spec.hashing
    theirs = record_step(program, strategy, pre, hashing)
    index = strategy.op
    agreed = theirs.genesis if index == 0 else theirs.digests[index - 1]
    return theirs.records[index], open_operands(theirs, pre, index), agreed


def run_referees(benchmark, part, program, strategy, pre):
    step, hashing = Step(strategy.step), program.spec.hashing
    record, operands, agreed = get_disputed_step(program, strategy, pre)
    honest = record_step(program, Honest(), pre, hashing)
    honest_root, pre_root = honest.records[-1].outputs[0], pre.root(hashing)
    rulings = {
        "operator": lambda: rule_on_output(program, step, pre_root, agreed, record, operands),
        "structure": lambda: rule_on_structure(program, step, len(honest.records) - 1,
                                               None, honest.records[-1]),
        "step": lambda: rule_on_step(program, pre, pre_root, step, bytes.fromhex(honest_root), bytes(32)),
    }
    ruling = benchmark(rulings[part])
    assert ruling.winner == ("solver" if part == "step" else "challenger")
    return ruling


@pytest.mark.benchmark(group="referee")
@pytest.mark.parametrize("part", ["operator", "structure", "step"])
def test_referee(benchmark, dispute_job, part):
    program, run, strategy, _ = dispute_job(REFEREE_T)
    k = program.spec.checkpoint_interval
    pre = program.run(read_checkpoint(run.checkpoint_path, (strategy.step - 1) // k, program.device),
                      Step(strategy.step - 1))
    ruling = run_referees(benchmark, part, program, strategy, pre)
    benchmark.extra_info.update(describe_program(program), T=REFEREE_T, k=k, part=part,
                                referee_ops=ruling.referee_ops,
                                schedule_ops=getattr(ruling, "schedule_ops", 0))


@pytest.mark.benchmark(group="referee")
@pytest.mark.parametrize("part", ["operator", "structure", "step"])
@pytest.mark.parametrize("width", REFEREE_WIDTHS)
def test_referee_width(benchmark, bench_program, width, part):
    program = bench_program("mlp", width, batch_size=64)
    strategy = OpCorrupt(step=11, op=CORRUPTED_OP)
    pre = program.run(program.init_state(), Step(10))
    ruling = run_referees(benchmark, part, program, strategy, pre)
    benchmark.extra_info.update(describe_program(program), part=part, referee_ops=ruling.referee_ops,
                                schedule_ops=getattr(ruling, "schedule_ops", 0))
