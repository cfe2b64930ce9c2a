"""The referee: re-executes the smallest disputed piece of work and rules.

The referee trusts nothing but the job spec, the committed dataset and roots that both parties
agreed on. It receives an *opened* input (a state, or an operator's input tensors), checks it
against the agreed root, recomputes, and compares the result with both parties' claims (Verde,
Arun et al. 2025 §3; Canetti, Riva & Rothblum 2011 refereed delegation).

Ruling rule: the solver's claim is the one under test. If the referee's result equals the
solver's claim, the solver wins; otherwise the challenger wins (its own claim is recorded; a
challenger whose claim is also wrong still wins against a wrong solver, since the dispute is about
the solver's commitment).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils._python_dispatch import TorchDispatchMode

from proofs.types import Root, Step
from verification.execution.program import Program
from verification.execution.state import State
from verification.strategies import honest_step


class RefereeError(ValueError):
    """The referee was handed input that does not match what the parties agreed on."""


class OpCounter(TorchDispatchMode):
    """Counts the aten operators executed inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class StepRuling:
    step: Step
    referee_root: Root
    solver_root: Root
    challenger_root: Root
    winner: str  # "solver" | "challenger"
    referee_ops: int


def compute_winner(referee_root: Root, solver_root: Root) -> str:
    # Rule: the solver's claim is under test; it wins only if the referee reproduces it.
    return "solver" if referee_root == solver_root else "challenger"


def rule_on_step(program: Program, opened: State, agreed_root: Root, step: Step,
                 solver_root: Root, challenger_root: Root) -> StepRuling:
    """Recompute step ``step`` from the opened ``S_{step-1}`` and rule."""
    hash_name = program.spec.hash_name
    # Rule: the opened pre-state must hash to the root both parties agreed on.
    if opened.step != step - 1 or opened.root(hash_name) != agreed_root:
        raise RefereeError(f"opened state for step {step - 1} does not match agreed root {agreed_root.hex()}")
    with OpCounter() as counter:
        result = honest_step(program, opened).state
    referee_root = result.root(hash_name)
    return StepRuling(step, referee_root, solver_root, challenger_root,
                      compute_winner(referee_root, solver_root), counter.count)
