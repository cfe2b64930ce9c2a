"""A plug-in strategy for the data-parallel tests: a worker whose replica drifts from the others.

It is imported by name (``"tests.distributed.strategies:FlipOnRank"``) inside every spawned
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
