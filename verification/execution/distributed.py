"""The data-parallel step: one rank's share of ``Program.step`` over ``torch.distributed``.

Terms
-----
world size ``R``, rank ``r``
    ``R`` worker processes train one job together; worker ``r`` is rank ``r``. Every rank holds a
    full replica of the State.
micro-batch ``r``
    the batch of step ``t`` is cut into ``R = spec.micro_batches`` equal slices
    (``Program.micro_batch``); rank ``r`` computes the gradients of slice ``r`` only.
fixed-order reduction
    the ranks exchange their gradients with ``all_gather`` (a copy of bytes, rank order), and each
    rank sums them with ``Program.combine`` in micro-batch order. ``all_reduce`` is not used: its
    summation order is the backend's choice (ring, tree, …), so its bits are not a function of the
    State. With the fixed order, a data-parallel step is bit-identical to ``Program.step`` on one
    process with ``micro_batches = R`` (same hardware, same thread count per process), so the trace
    of an ``R``-process run is disputed and refereed by the one-process game
    (``verification.dispute``) unchanged — the property RepOps (Arun et al., "Verde", 2025) asks of
    distributed training and docs/design.md §5 asks of Pinpoint.

This module is execution only: it knows no party. Starting the ``R`` processes, training a solver
on them and checking that the replicas agree is the solver's side, ``verification.data_parallel``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from datasets.sharding import DatasetCommitment, load_dataset
from proofs.types import Root
from verification.execution.program import Batch, Program, StepOutput
from verification.execution.state import State
from verification.spec import JobSpec

Parts = list[tuple[dict[str, torch.Tensor], torch.Tensor]]


class PeerLost(RuntimeError):
    """A collective broke because another rank left it: a consequence, never the root cause."""


# -- the data-parallel step --------------------------------------------------------------------
def compute_byte_buffer(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The raw bytes of ``tensors`` in order, as one flat ``uint8`` tensor (no arithmetic)."""
    return torch.cat([t.detach().contiguous().reshape(-1).view(torch.uint8) for t in tensors])


def compute_tensors_from_bytes(buffer: torch.Tensor, templates: list[torch.Tensor]) -> list[torch.Tensor]:
    """Inverse of ``compute_byte_buffer``: tensors shaped and typed like ``templates``."""
    tensors, offset = [], 0
    for t in templates:
        size = t.numel() * t.element_size()
        raw = buffer[offset:offset + size].clone()  # own storage: aligned for the dtype view
        tensors.append(raw.view(t.dtype).reshape(t.shape))
        offset += size
    return tensors


def all_gather_parts(grads: dict[str, torch.Tensor], loss: torch.Tensor, world_size: int) -> Parts:
    """Every rank's ``(grads, loss)`` in rank order: one ``all_gather`` of their bytes."""
    names = list(grads)
    templates = [grads[n] for n in names] + [loss]
    local = compute_byte_buffer(templates)
    gathered = [torch.empty_like(local) for _ in range(world_size)]
    try:
        dist.all_gather(gathered, local)
    except RuntimeError as exc:  # gloo/NCCL report a peer that left as a RuntimeError
        raise PeerLost(f"a peer left the all-gather: {exc}") from exc
    parts = []
    for buffer in gathered:
        *tensors, part_loss = compute_tensors_from_bytes(buffer, templates)
        parts.append((dict(zip(names, tensors, strict=True)), part_loss))
    return parts


class DataParallelProgram(Program):
    """A ``Program`` whose ``step`` is data-parallel over the default process group: this rank's
    micro-batch gradients, an all-gather, ``combine`` in rank order, the update. Everything else
    (``batch``, ``init_state``, ``run`` …) is ``Program``'s, so strategies and ``train`` run on it
    unchanged."""

    def __init__(self, spec: JobSpec, dataset: DatasetCommitment, device: torch.device,
                 rank: int, world_size: int):
        x, y = load_dataset(dataset)  # every shard verified against the committed root
        super().__init__(spec, x, y, dataset.root, dataset.meta, device)
        self.rank = rank
        self.world_size = world_size

    def step(self, state: State, batch: Batch, lr: float | None = None) -> StepOutput:
        grads, loss = self.gradients(state, self.micro_batch(batch, self.rank))
        grads, loss = self.combine(all_gather_parts(grads, loss, self.world_size))
        return StepOutput(self.update(state, grads, lr), float(loss))


def all_gather_roots(root: Root, device: torch.device, world_size: int) -> list[Root]:
    local = torch.tensor(list(root), dtype=torch.uint8, device=device)
    gathered = [torch.empty_like(local) for _ in range(world_size)]
    try:
        dist.all_gather(gathered, local)
    except RuntimeError as exc:  # gloo/NCCL report a peer that left as a RuntimeError
        raise PeerLost(f"a peer left the all-gather: {exc}") from exc
    return [Root(bytes(t.cpu().tolist())) for t in gathered]
