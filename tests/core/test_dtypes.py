"""States in float32, float16 and bfloat16 hash canonically and round-trip bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from proofs.types import Step
from verification.execution.checkpoints import CheckpointWriter, read_checkpoint
from verification.execution.state import State, StateError, state_from_arrays


def mixed_state() -> State:
    base = torch.linspace(-3, 3, 24).reshape(4, 6)
    return State(Step(7), {"param/a": base, "param/b": base.to(torch.float16), "param/c": base.to(torch.bfloat16),
                           "optim/c/exp_avg": (base * 1e-3).to(torch.bfloat16)}, 5)


def test_every_dtype_round_trips_through_the_canonical_arrays():
    state = mixed_state()
    back = state_from_arrays(state.to_arrays())
    assert back.root() == state.root()
    for name, tensor in state.tensors.items():
        assert back.tensors[name].dtype == tensor.dtype
        assert torch.equal(back.tensors[name].view(torch.int16) if tensor.dtype == torch.bfloat16 else back.tensors[name],
                           tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor)


def test_the_root_binds_the_dtype_and_the_bits():
    state = mixed_state()
    as_int16 = State(state.step, {**state.tensors, "param/c": state.tensors["param/c"].view(torch.int16)}, state.rng)
    assert as_int16.root() != state.root()  # same bits, other dtype
    flipped = state.tensors["param/c"].view(torch.int16).clone()
    flipped[0, 0] ^= 1
    changed = State(state.step, {**state.tensors, "param/c": flipped.view(torch.bfloat16)}, state.rng)
    assert changed.root() != state.root()


def test_a_dtype_label_that_does_not_match_the_bits_is_refused():
    arrays = mixed_state().to_arrays()
    arrays["meta/dtype/param/c"] = np.frombuffer(b"float64", np.uint8)
    with pytest.raises(StateError, match="param/c"):
        state_from_arrays(arrays)


def test_checkpoints_store_low_precision_states(tmp_path):
    state = mixed_state()
    writer = CheckpointWriter(tmp_path / "c.zarr", state, interval=1, num_checkpoints=1)
    writer.write(0, state)
    writer.finish([state.root()])
    back = read_checkpoint(tmp_path / "c.zarr", 0)
    assert back.root() == state.root() and back.tensors["param/c"].dtype == torch.bfloat16
