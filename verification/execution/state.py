"""The training State: everything a step reads, so every step can be replayed from data alone.

``State`` = parameters (``param/<name>``), buffers (``buffer/<name>``) and optimizer state (``optim/<name>/<key>``) + the step
counter + the RNG key. Randomness inside step ``t`` (dropout, for models that use it) is a pure
function of ``(rng key, t)`` — a counter-based RNG — so there is no hidden global RNG state
(STYLE.md, nanoGPT and micrograd, but replayable).

The canonical array form (``to_arrays``) adds ``meta/step`` (int64) and ``meta/rng`` (uint64);
its state root (``proofs.encoding.state_root``) is what solvers commit to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from proofs.encoding import state_root
from proofs.types import Root, Step

STEP_KEY = "meta/step"
RNG_KEY = "meta/rng"


class StateError(ValueError):
    """A stored or opened state is malformed (missing tensors, wrong shapes or dtypes)."""


@dataclass(frozen=True)
class State:
    step: Step
    tensors: Mapping[str, torch.Tensor]
    rng: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Canonical host arrays, sorted by name (the committed form)."""
        arrays = {name: t.detach().cpu().numpy() for name, t in sorted(self.tensors.items())}
        arrays[STEP_KEY] = np.asarray(self.step, dtype=np.int64)
        arrays[RNG_KEY] = np.asarray(self.rng, dtype=np.uint64)
        return arrays

    def root(self, hash_name: str = "sha256") -> Root:
        return state_root(self.to_arrays(), hash_name)

    def with_tensors(self, tensors: Mapping[str, torch.Tensor], step: Step | None = None) -> State:
        return State(self.step if step is None else step, dict(tensors), self.rng)

    def params(self) -> dict[str, torch.Tensor]:
        return {k[len("param/"):]: v for k, v in self.tensors.items() if k.startswith("param/")}


def state_from_arrays(arrays: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> State:
    """Inverse of ``State.to_arrays``."""
    missing = [k for k in (STEP_KEY, RNG_KEY) if k not in arrays]
    if missing:
        raise StateError(f"state arrays lack {missing}")
    tensors = {
        name: torch.from_numpy(np.array(a, copy=True)).to(device)
        for name, a in arrays.items()
        if not name.startswith("meta/")
    }
    return State(Step(int(arrays[STEP_KEY])), tensors, int(arrays[RNG_KEY]))
