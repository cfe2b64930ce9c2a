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
from proofs.hashing import SHA256, Hashing
from proofs.types import Root, Step

STEP_KEY = "meta/step"
RNG_KEY = "meta/rng"
DTYPE_PREFIX = "meta/dtype/"  # meta/dtype/<name>: the torch dtype of a tensor numpy cannot hold
BIT_VIEWS = {torch.bfloat16: torch.int16}  # committed as its bits, its dtype named beside it


class StateError(ValueError):
    """A stored or opened state is malformed (missing tensors, wrong shapes or dtypes)."""


@dataclass(frozen=True)
class State:
    step: Step
    tensors: Mapping[str, torch.Tensor]
    rng: int

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Canonical host arrays, sorted by name (the committed form). float32 and float16 are
        numpy's own; a bfloat16 tensor is committed as its 16-bit patterns (int16) with
        ``meta/dtype/<name>`` naming its dtype, so every dtype hashes to its exact bits."""
        arrays = {}
        for name, t in sorted(self.tensors.items()):
            if t.dtype not in BIT_VIEWS:
                arrays[name] = t.numpy(force=True)  # detached, on the host: one call (no copy on a CPU)
                continue
            t = t.detach().cpu()
            arrays[DTYPE_PREFIX + name] = np.frombuffer(str(t.dtype).removeprefix("torch.").encode(), np.uint8)
            if bool(t.isnan().any()):  # the canonical NaN, as numpy's dtypes get in proofs.encoding
                t = torch.where(t.isnan(), torch.tensor(float("nan"), dtype=t.dtype), t)
            arrays[name] = t.view(BIT_VIEWS[t.dtype]).numpy()
        arrays[STEP_KEY] = np.asarray(self.step, dtype=np.int64)
        arrays[RNG_KEY] = np.asarray(self.rng, dtype=np.uint64)
        return arrays

    def root(self, hashing: Hashing = SHA256) -> Root:
        return state_root(self.to_arrays(), hashing)

    def with_tensors(self, tensors: Mapping[str, torch.Tensor], step: Step | None = None) -> State:
        return State(self.step if step is None else step, dict(tensors), self.rng)

    def params(self) -> dict[str, torch.Tensor]:
        return {k[len("param/"):]: v for k, v in self.tensors.items() if k.startswith("param/")}


def state_from_arrays(arrays: Mapping[str, np.ndarray], device: torch.device | str = "cpu") -> State:
    """Inverse of ``State.to_arrays``."""
    missing = [k for k in (STEP_KEY, RNG_KEY) if k not in arrays]
    if missing:
        raise StateError(f"state arrays lack {missing}")
    tensors = {}
    for name, a in arrays.items():
        if name.startswith("meta/"):
            continue
        tensor = torch.from_numpy(np.array(a, copy=True))
        if DTYPE_PREFIX + name in arrays:
            tensor = tensor.view(get_viewed_dtype(name, arrays[DTYPE_PREFIX + name], tensor.dtype))
        tensors[name] = tensor.to(device)
    return State(Step(int(arrays[STEP_KEY])), tensors, int(arrays[RNG_KEY]))


def get_viewed_dtype(name: str, label: np.ndarray, stored: torch.dtype) -> torch.dtype:
    """The dtype ``meta/dtype/<name>`` names, checked against the bits it was stored as."""
    dtype = getattr(torch, bytes(np.asarray(label, dtype=np.uint8)).decode(errors="replace"), None)
    if BIT_VIEWS.get(dtype) != stored:
        raise StateError(f"state tensor {name!r}: {DTYPE_PREFIX}{name} does not name a dtype stored as {stored}")
    return dtype
