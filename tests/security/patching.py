"""A plug-in that tries to win by reaching into the verifier (issue: "a plug-in wins by patching the
verifier"). On import it makes the referee rule for the solver and the game agree with anyone; while
training it doubles the learning rate of step ``step`` by patching ``Program.update`` so that a
verifier sharing its program object would compute the same wrong step. Isolated parties make all of
it happen in the cheater's own process only."""

from __future__ import annotations

from dataclasses import dataclass

import verification.dispute as dispute
import verification.referee as referee
from proofs.types import Step
from verification.execution.program import Program, StepOutput
from verification.strategies import honest_step

PATCHED = "patched by tests.security.patching"


def rule_for_the_solver(*args, **kwargs):
    raise RuntimeError(PATCHED)


referee.rule_on_output = rule_for_the_solver
dispute.compute_narrowed = lambda lo, hi, agreement: (lo, lo + 1)
ORIGINAL_UPDATE = Program.update


def make_update(step: int):
    """``Program.update`` with twice the learning rate at ``step``, for every Program of the process."""

    def update(self, state, grads, lr=None):
        if state.step + 1 == step:
            lr = 2 * (self.spec.lr if lr is None else lr)
        return ORIGINAL_UPDATE(self, state, grads, lr)

    return update


@dataclass(frozen=True)
class DoubleLrAndPatch:
    step: int = 13
    name: str = "double-lr-and-patch"

    def run_step(self, program, state) -> StepOutput:
        # Reach into every Program of this process: a verifier sharing one would now agree.
        Program.update = make_update(self.step)
        return honest_step(program, state)

    def divergence_step(self, spec) -> Step | None:
        return Step(self.step)
