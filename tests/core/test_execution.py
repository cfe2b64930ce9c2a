import copy

import numpy as np
import pytest
import torch

from proofs.types import Step
from verification.execution.checkpoints import CheckpointError, read_checkpoint, read_roots
from verification.execution.state import state_from_arrays
from verification.solver import train
from verification.strategies import BitFlip, Honest, Lazy, StrategyError, flip_bit, resolve_strategy


def test_step_is_deterministic_and_replayable(minimal_program):
    p = minimal_program
    s0 = p.init_state()
    a = p.run(s0, Step(5))
    b = p.run(p.init_state(), Step(5))
    assert a.root() == b.root()
    assert a.step == 5


def test_state_round_trips_through_arrays(minimal_program):
    s = minimal_program.run(minimal_program.init_state(), Step(3))
    back = state_from_arrays(s.to_arrays())
    assert back.root() == s.root() and back.step == 3 and back.rng == s.rng


def test_sgd_momentum_matches_a_plain_torch_loop(minimal_program):
    """The State-to-State step equals an ordinary training loop: one module, one torch.optim.SGD
    kept across steps (differential test, torch as the oracle)."""
    p = minimal_program
    s0 = p.init_state()
    module = copy.deepcopy(p.module)
    module.load_state_dict(s0.params())
    params = dict(module.named_parameters())
    opt = torch.optim.SGD(module.parameters(), lr=p.spec.lr, momentum=p.spec.momentum)
    state = s0
    for t in (1, 2, 3):
        batch = p.batch(Step(t))
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(batch.x), batch.y).backward()
        opt.step()
        state = p.step(state, batch).state
    for n, t in params.items():
        torch.testing.assert_close(state.tensors[f"param/{n}"], t.detach(), rtol=1e-5, atol=1e-6)


def test_training_learns(minimal_program, tmp_path):
    run = train(minimal_program, Honest(), tmp_path / "c.zarr", "job", "s")
    assert np.mean(run.losses[-5:]) < np.mean(run.losses[:5])


def test_checkpoints_round_trip(minimal_program, tmp_path):
    run = train(minimal_program, Honest(), tmp_path / "c.zarr", "job", "s")
    k = minimal_program.spec.checkpoint_interval
    assert read_roots(run.checkpoint_path) == list(run.roots)
    for i, root in enumerate(run.roots):
        state = read_checkpoint(run.checkpoint_path, i)
        assert state.step == i * k and state.root() == root
    with pytest.raises(CheckpointError, match="asked for"):
        read_checkpoint(run.checkpoint_path, len(run.roots))
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "missing.zarr", 0)


def test_adversaries_diverge_exactly_where_they_say(minimal_program, tmp_path):
    honest = train(minimal_program, Honest(), tmp_path / "h.zarr", "job", "h")
    for strategy in (Lazy(start=9, length=8), BitFlip(step=21)):
        run = train(minimal_program, strategy, tmp_path / f"{strategy.name}.zarr", "job", strategy.name)
        k = minimal_program.spec.checkpoint_interval
        first_bad = next(i for i, (a, b) in enumerate(zip(honest.roots, run.roots, strict=True)) if a != b)
        assert (first_bad - 1) * k < run.injected_divergence_step <= first_bad * k


def test_flip_bit_flips_exactly_one_bit():
    t = torch.tensor([1.0, 2.0])
    f = flip_bit(t, 1, 0)
    assert f[0] == t[0] and f[1] != t[1]
    assert (f.view(torch.int32) ^ t.view(torch.int32)).tolist() == [0, 1]


def test_unknown_strategy_is_named():
    with pytest.raises(StrategyError, match="sneaky"):
        resolve_strategy("sneaky", {})
    with pytest.raises(StrategyError, match="bad parameters"):
        resolve_strategy("lazy", {"begin": 3})
    with pytest.raises(StrategyError, match="cannot be imported"):
        resolve_strategy("no.such.module:thing", {})


def test_micro_batched_step_is_the_mean_gradient(minimal_spec, minimal_dataset):
    import dataclasses

    from verification.execution.program import load_program

    one = load_program(minimal_spec, minimal_dataset[0])
    two = load_program(dataclasses.replace(minimal_spec, micro_batches=2), minimal_dataset[0])
    a = one.run(one.init_state(), Step(3))
    b = two.run(two.init_state(), Step(3))
    for name, t in a.tensors.items():
        torch.testing.assert_close(b.tensors[name], t, rtol=1e-4, atol=1e-6)
    assert two.run(two.init_state(), Step(3)).root() == b.root()
