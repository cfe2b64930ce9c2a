"""Adversaries written against the documented plug-in interface (``run_step`` and
``divergence_step``, README "Adversaries and plug-ins") that try to break the game itself rather
than merely cheat. Each cheats at ``step`` like ``bitflip`` and then, once its own training is done
(``marker`` exists), misbehaves whenever it is asked to recompute a step in the dispute."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from proofs.types import Step
from verification.execution.program import StepOutput
from verification.strategies import BitFlip, honest_step


def misbehave(how: str) -> StepOutput:
    if how == "raise":
        raise RuntimeError("I will not recompute anything")
    if how == "exit":
        os._exit(3)
    if how == "hang":
        time.sleep(3600)
    return "garbage"  # type: ignore[return-value]  # not a StepOutput


@dataclass(frozen=True)
class MisbehavesInDispute:
    marker: str
    how: str = "raise"
    step: int = 6
    name: str = "misbehaves-in-dispute"

    def run_step(self, program, state) -> StepOutput:
        if Path(self.marker).exists():
            return misbehave(self.how)
        out = BitFlip(step=self.step).run_step(program, state)
        if out.state.step == program.spec.steps:
            Path(self.marker).touch()
        return out

    def divergence_step(self, spec) -> Step | None:
        return Step(self.step)


@dataclass(frozen=True)
class MisbehavesInTraining:
    """Misbehaves (``how``) at step ``step`` of its training: it never delivers a trace."""

    how: str = "raise"
    step: int = 3
    name: str = "misbehaves-in-training"

    def run_step(self, program, state) -> StepOutput:
        if state.step + 1 == self.step:
            return misbehave(self.how)
        return honest_step(program, state)

    def divergence_step(self, spec) -> Step | None:
        return Step(self.step)


@dataclass(frozen=True)
class HonestOnTwoThreads:
    """Honest work on 2 intra-op threads where the job asks for 1: another execution environment."""

    name: str = "honest-two-threads"

    def run_step(self, program, state) -> StepOutput:
        torch.set_num_threads(2)
        return honest_step(program, state)

    def divergence_step(self, spec) -> Step | None:
        return None


@dataclass(frozen=True)
class DeclaresNonsense:
    """Honest work, but a divergence step that is no step at all."""

    name: str = "declares-nonsense"

    def run_step(self, program, state) -> StepOutput:
        return honest_step(program, state)

    def divergence_step(self, spec):
        return "soon"
