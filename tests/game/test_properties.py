"""Property tests over random divergence steps, operators and arities k (2..40).

Claims: the honest party always wins; the divergence is pinpointed exactly (step, and operator
where one operator was corrupted); a game takes at most
``ceil(log_k(T/k_ckpt)) + ceil(log_k(k_ckpt)) + ceil(log_k(ops per step))`` dissection rounds
(additive constant 0); the referee executes exactly one operator on data when the records differ in
an output, none when they differ in structure — never a whole step.
"""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proofs.types import Step
from verification.dispute import compute_game_round_bound, compute_round_bound
from verification.execution.opgraph import derive_schedule
from verification.strategies import (
    BitFlip,
    DataOrder,
    Honest,
    Lazy,
    Noise,
    OpCorrupt,
    StrategyError,
    WrongLR,
    false_challenger,
)

from .conftest import play

PROBE_STEP = Step(10)


@pytest.fixture(scope="module")
def schedule(game_program):
    return derive_schedule(game_program, PROBE_STEP)


@pytest.fixture(scope="module")
def corruptible(game_program, schedule):
    """Operators whose corrupted output changes the post-state (all but the logged loss's)."""
    pre = game_program.run(game_program.init_state(), Step(PROBE_STEP - 1))
    honest = Honest().run_step(game_program, pre).state.root()
    found = []
    for j in range(len(schedule) - 1):
        try:
            if OpCorrupt(step=PROBE_STEP, op=j).run_step(game_program, pre).state.root() != honest:
                found.append(j)
        except StrategyError:
            continue
    return found


def check_bound(result, spec, ops, arity):
    k = spec.checkpoint_interval
    assert result.levels["checkpoints"] <= compute_round_bound(spec.steps // k, arity)
    assert result.levels["steps"] <= compute_round_bound(k, arity)
    assert result.levels["operators"] <= compute_round_bound(ops, arity)
    assert result.rounds <= compute_game_round_bound(spec.steps, k, ops, arity)


def test_almost_every_operator_of_the_step_can_be_corrupted(corruptible, schedule):
    assert len(corruptible) >= len(schedule) - 6


@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_a_cheater_always_loses_exactly_where_it_diverged(game_program, game_runs, honest_run, schedule,
                                                          corruptible, data):
    spec = game_program.spec
    step = data.draw(st.integers(1, spec.steps), label="step")
    arity = data.draw(st.integers(2, 40), label="arity")
    kind = data.draw(st.sampled_from(["op_corrupt", "data_order", "bitflip", "noise", "lazy", "wrong_lr"]))
    op = data.draw(st.sampled_from(corruptible), label="op") if kind == "op_corrupt" else None
    strategy = {
        "op_corrupt": lambda: OpCorrupt(step=step, op=op),
        "data_order": lambda: DataOrder(step=step),
        "bitflip": lambda: BitFlip(step=step, index=data.draw(st.integers(0, 255)), bit=data.draw(st.integers(0, 31))),
        "noise": lambda: Noise(step=step, sigma=1e-6),
        "lazy": lambda: Lazy(start=step, length=data.draw(st.integers(1, 6))),
        "wrong_lr": lambda: WrongLR(step=step, lr=data.draw(st.sampled_from([0.01, 0.1, 0.5]))),
    }[kind]()
    run = game_runs(strategy)
    assume(run.roots != honest_run.roots)  # a flip of a bit that a later operator masks changes nothing
    _, result = play(game_program, run, strategy, honest_run, Honest(), arity)
    assert result.winner == "challenger", result.reason
    assert result.first_divergent_step == step
    if kind == "op_corrupt":
        assert (result.operator_index, result.operator) == (op, schedule[op][0])
    # Output disputes cost the referee one operator; structural ones none (the schedule decides).
    assert result.referee_ops == (1 if kind in ("op_corrupt", "data_order") else 0)
    check_bound(result, spec, len(schedule), arity)


@given(step=st.integers(1, 24), arity=st.integers(2, 40))
@settings(max_examples=15, deadline=None)
def test_an_honest_solver_always_beats_a_false_challenger(game_program, game_runs, honest_run, schedule,
                                                          step, arity):
    liar = false_challenger(step=step)
    _, result = play(game_program, honest_run, Honest(), game_runs(liar), liar, arity)
    assert (result.winner, result.first_divergent_step) == ("solver", step)
    assert result.referee_ops <= 1
    check_bound(result, game_program.spec, len(schedule), arity)
