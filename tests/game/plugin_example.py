"""A plug-in adversary: honest until step ``step``, then one bit of one parameter flips.

A job spec names it ``strategy: "tests.game.plugin_example:FlipOnce"``, ``params: {step: 13}``.
"""

from dataclasses import dataclass

from verification.execution.program import StepOutput
from verification.strategies import flip_bit, honest_step


@dataclass(frozen=True)
class FlipOnce:
    step: int  # the first wrong step
    tensor: str = "param/fc0.weight"
    bit: int = 20
    name: str = "flip-once"

    def run_step(self, program, state):  # the solver's version of step state.step + 1
        out = honest_step(program, state)  # -> StepOutput(state, loss)
        if out.state.step != self.step:
            return out
        tensors = {**out.state.tensors, self.tensor: flip_bit(out.state.tensors[self.tensor], 0, self.bit)}
        return StepOutput(out.state.with_tensors(tensors), out.loss)

    def divergence_step(self, spec):  # reported as injected_divergence_step
        return self.step if self.step <= spec.steps else None
