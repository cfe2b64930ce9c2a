"""Plug-in strategies for the data-parallel tests: a worker whose replica drifts from the others,
and a worker that crashes.

They are imported by name (``"tests.distributed.strategies:FlipOnRank"``) inside every spawned
worker, as a job spec's plug-in strategy would be.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.distributed as dist

from proofs.types import Step
from verification.execution.program import Program, StepOutput
from verification.execution.state import State
from verification.spec import JobSpec
from verification.strategies import BitFlip, honest_step


@dataclass(frozen=True)
class FlipOnRank:
    """Honest on every rank but ``rank``, which flips a bit of ``S_step`` (``BitFlip``)."""

    rank: int
    step: int
    name: str = "flip-on-rank"

    def run_step(self, program: Program, state: State) -> StepOutput:
        if dist.is_initialized() and dist.get_rank() == self.rank:
            return BitFlip(self.step).run_step(program, state)
        return honest_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step)


class WorkerCrash(RuntimeError):
    """Raised by ``CrashOnRank``: a worker that dies in the middle of a job."""


@dataclass(frozen=True)
class CrashOnRank:
    """Honest, except that ``rank`` raises ``WorkerCrash`` at step ``step`` (the other ranks are
    then left waiting in the step's all-gather)."""

    rank: int
    step: int
    name: str = "crash-on-rank"

    def run_step(self, program: Program, state: State) -> StepOutput:
        if state.step + 1 == self.step and dist.is_initialized() and dist.get_rank() == self.rank:
            raise WorkerCrash(f"rank {self.rank} crashes at step {self.step}")
        return honest_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return None
