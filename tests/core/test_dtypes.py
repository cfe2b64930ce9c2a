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
    writer = CheckpointWriter(tmp_path / "c.zarr", state.to_arrays(), interval=1, num_checkpoints=1)
    writer.write(0, state.to_arrays(), ())
    assert writer.finish() == [state.root()]
    back = read_checkpoint(tmp_path / "c.zarr", 0)
    assert back.root() == state.root() and back.tensors["param/c"].dtype == torch.bfloat16


def with_nan_bits(tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """``tensor`` with element 0 replaced by the NaN whose bit pattern is ``bits``."""
    view = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[tensor.dtype]
    raw = tensor.clone().view(view)
    raw.view(-1)[0] = torch.tensor(bits, dtype=torch.int64).to(view)
    out = raw.view(tensor.dtype)
    assert bool(out.view(-1)[0].isnan())
    return out


@pytest.mark.parametrize(("name", "payloads"), [
    ("param/a", (0x7FC00000, 0x7FC00001, -0x00400000, 0x7F800001)),  # quiet, payload, -nan, signalling
    ("param/b", (0x7E00, 0x7E01, -0x0200, 0x7C01)),
    ("param/c", (0x7FC0, 0x7FC1, -0x0040, 0x7F81)),
])
def test_a_nan_hashes_the_same_whatever_its_sign_and_payload(name, payloads):
    """IEEE 754 leaves a NaN's sign and payload to the hardware: two honest devices that both
    reach NaN commit the same root (proofs.encoding's canonical NaN)."""
    state = mixed_state()
    roots = {State(state.step, {**state.tensors, name: with_nan_bits(state.tensors[name], p)}, state.rng).root()
             for p in payloads}
    assert len(roots) == 1 and roots != {state.root()}
