"""The training program: ``init(spec) -> State`` and ``step(State, batch) -> State``.

This is the one code path (docs/design.md §1.3): solvers run it, verifiers re-run it, and the referee
calls it. The optimizer is SGD with momentum written out functionally (PyTorch's convention,
``buf <- mu * buf + (g + wd * p)``, ``p <- p - lr * buf``; with a zero initial buffer this equals
``torch.optim.SGD`` including its first step), so its buffers are part of the committed State.

Execution modes (docs/design.md §3):

``exact``
    torch's kernels with a pinned thread count and ``torch.use_deterministic_algorithms``. Two
    honest parties agree only on an identical software/hardware environment.
``reproducible``
    the same program on Pinpoint's fixed-order operators (``verification.execution.repro``).
``tolerance``
    torch's kernels; parties are compared up to a distance threshold (Proof-of-Learning).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from datasets.schedule import batch_indices
from datasets.sharding import DatasetCommitment, load_dataset
from proofs.hashing import DOMAIN_STATE, hash_parts
from proofs.types import Root, Step
from verification.execution.models import Model, build_model
from verification.execution.ops import get_ops
from verification.execution.repro import StepRng
from verification.execution.state import State
from verification.spec import JobSpec


@dataclass(frozen=True)
class Batch:
    step: Step
    indices: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    part: int = 0  # which micro-batch of the step this is

    def rng(self, key: int, parts: int) -> StepRng:
        """The counter-based RNG of this (step, micro-batch): dropout masks are a pure function of
        the state's RNG key, the step and the micro-batch, on every device."""
        return StepRng(key, self.step * parts + self.part)


@dataclass(frozen=True)
class StepOutput:
    state: State
    loss: float


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when present, CPU otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("job spec asks for device 'cuda' but no CUDA device is available")
    return torch.device(name)


def configure_mode(mode: str, threads: int) -> None:
    """Pin the process-wide knobs an execution mode relies on.

    ``exact`` switches torch to deterministic algorithms; cuBLAS then refuses to run unless
    ``CUBLAS_WORKSPACE_CONFIG`` pins its workspace, so the value is set here (if the environment
    has none) before any GPU matmul. ``reproducible`` does not need the switch: its operators
    reduce only exact integer sums, whose result no kernel order can change, and the switch would
    fill every fresh tensor with NaN first (``torch.utils.deterministic.fill_uninitialized_memory``),
    doubling the memory traffic of its many elementwise kernels.
    """
    torch.set_num_threads(threads)
    if mode == "exact":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(mode == "exact", warn_only=False)


def compute_environment(device: torch.device) -> str:
    """What ``exact`` mode's bits depend on besides the program: torch's version, the CPU kernels'
    capability (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), the device and the intra-op thread
    count. A solver commits to it; a verifier in another environment cannot judge an exact trace."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return (f"torch={torch.__version__};cpu={torch.backends.cpu.get_cpu_capability()};"
            f"device={name};threads={torch.get_num_threads()}")


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose, derived from the job seed (independent streams)."""
    digest = hash_parts(DOMAIN_STATE, b"seed", purpose.encode(), seed.to_bytes(8, "big"))
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


class Program:
    """A job's training program bound to its committed dataset and a device."""

    def __init__(self, spec: JobSpec, x: np.ndarray, y: np.ndarray, dataset_root: Root,
                 data_meta: dict, device: torch.device | None = None):
        self.spec = spec
        self.device = device or resolve_device(spec.device)
        self.model: Model = build_model(spec.model, spec.model_params, data_meta)
        self.ops = get_ops(spec.mode)
        self.dataset_root = dataset_root
        self.num_samples = int(x.shape[0])
        self._x = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        self._y = torch.from_numpy(np.ascontiguousarray(y)).to(self.device)
        configure_mode(spec.mode, spec.threads)

    def environment(self) -> str:
        """This program's execution environment (``compute_environment``)."""
        return compute_environment(self.device)

    def init_state(self) -> State:
        """``S_0``: parameters from the seeded generator, zero momentum buffers."""
        generator = torch.Generator().manual_seed(derive_seed(self.spec.seed, "init"))
        params = self.model.init_params(generator)
        tensors = {}
        for name, p in params.items():
            tensors[f"param/{name}"] = p.to(self.device)
            tensors[f"momentum/{name}"] = torch.zeros_like(p, device=self.device)
        return State(Step(0), tensors, derive_seed(self.spec.seed, "rng"))

    def batch(self, step: Step) -> Batch:
        """The batch of ``step``: a pure function of (dataset root, seed, step)."""
        idx = batch_indices(self.dataset_root, self.spec.seed, step, self.num_samples, self.spec.batch_size)
        index = torch.from_numpy(idx.copy()).to(self.device)
        return Batch(step, idx, self._x.index_select(0, index), self._y.index_select(0, index))

    def micro_batch(self, batch: Batch, index: int) -> Batch:
        """Micro-batch ``index`` of ``micro_batches`` equal, contiguous slices of ``batch``."""
        size = len(batch.indices) // self.spec.micro_batches
        part = slice(index * size, (index + 1) * size)
        return Batch(batch.step, batch.indices[part], batch.x[part], batch.y[part], index)

    def gradients(self, state: State, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Gradients of the mean loss over ``batch`` w.r.t. every parameter, and that loss."""
        names = sorted(state.params())
        params = {n: state.tensors[f"param/{n}"].detach().requires_grad_(True) for n in names}
        rng = batch.rng(state.rng, self.spec.micro_batches)
        loss = self.model.loss(params, batch.x, batch.y, self.ops, rng=rng)
        grads = torch.autograd.grad(loss, [params[n] for n in names])
        return dict(zip(names, grads, strict=True)), loss.detach()

    def combine(self, parts: list[tuple[dict[str, torch.Tensor], torch.Tensor]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Mean of micro-batch gradients, summed in micro-batch order (a fixed reduction order:
        data-parallel workers and a single process reduce identically)."""
        if len(parts) == 1:
            return parts[0]
        with torch.no_grad():
            grads = {}
            for name in parts[0][0]:
                total = parts[0][0][name]
                for g, _ in parts[1:]:
                    total = total + g[name]
                grads[name] = total / len(parts)
            loss = parts[0][1]
            for _, part_loss in parts[1:]:
                loss = loss + part_loss
        return grads, loss / len(parts)

    def update(self, state: State, grads: dict[str, torch.Tensor], lr: float | None = None) -> State:
        """SGD with momentum: ``buf <- mu * buf + (g + wd * p)``, ``p <- p - lr * buf``."""
        lr = self.spec.lr if lr is None else lr
        mu, wd = self.spec.momentum, self.spec.weight_decay
        tensors = {}
        with torch.no_grad():
            for n, g in grads.items():
                p = state.tensors[f"param/{n}"]
                if wd:
                    g = g + wd * p
                buf = mu * state.tensors[f"momentum/{n}"] + g
                tensors[f"param/{n}"] = p - lr * buf
                tensors[f"momentum/{n}"] = buf
        return State(Step(state.step + 1), tensors, state.rng)

    def step(self, state: State, batch: Batch, lr: float | None = None) -> StepOutput:
        """One optimizer step ``S_{t-1} -> S_t`` on ``batch`` (``lr`` overrides the spec's)."""
        parts = [self.gradients(state, self.micro_batch(batch, r)) for r in range(self.spec.micro_batches)]
        grads, loss = self.combine(parts)
        return StepOutput(self.update(state, grads, lr), float(loss))

    def run(self, state: State, end: Step) -> State:
        """Honest execution from ``state`` up to step ``end``."""
        while state.step < end:
            state = self.step(state, self.batch(Step(state.step + 1))).state
        return state


def load_program(spec: JobSpec, dataset: DatasetCommitment, device: torch.device | None = None) -> Program:
    """The job's program on the committed data (every shard verified against its root)."""
    x, y = load_dataset(dataset)
    return Program(spec, x, y, dataset.root, dataset.meta, device)
