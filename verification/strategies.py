"""Solver strategies: how a solver turns ``S_{t-1}`` into what it claims is ``S_t``.

A strategy is any object with

``name: str``
``run_step(program, state) -> StepOutput``
    the solver's version of step ``state.step + 1``. An honest solver calls ``program.step``.
``divergence_step(spec) -> Step | None``
    the first step whose output differs from honest execution, when the strategy knows it
    (catalog adversaries do; reports it as ``injected_divergence_step``).

A job spec names a strategy by catalog name or as ``"package.module:attr"`` where ``attr`` is a
callable taking the strategy's ``params`` as keyword arguments and returning a strategy
(DESIGN.md §4). Catalog adversaries follow the attacks studied on Proof-of-Learning (Jia et al.
2021; Zhang et al. 2022; Fang et al. 2023) and in Verde (Arun et al. 2025).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from proofs.types import Step
from verification.execution.program import Program, StepOutput
from verification.execution.state import State
from verification.spec import JobSpec


class StrategyError(ValueError):
    """A solver names a strategy that cannot be found or built."""


class Strategy(Protocol):
    name: str

    def run_step(self, program: Program, state: State) -> StepOutput: ...

    def divergence_step(self, spec: JobSpec) -> Step | None: ...


def honest_step(program: Program, state: State) -> StepOutput:
    """The step every honest party computes."""
    return program.step(state, program.batch(Step(state.step + 1)))


@dataclass(frozen=True)
class Honest:
    name: str = "honest"

    def run_step(self, program: Program, state: State) -> StepOutput:
        return honest_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return None


@dataclass(frozen=True)
class Lazy:
    """Skips the work of steps ``start … start+length-1``: claims the state did not change
    (only the step counter moves). Saves ``length/T`` of the compute."""

    start: int
    length: int
    name: str = "lazy"

    def run_step(self, program: Program, state: State) -> StepOutput:
        t = state.step + 1
        if self.start <= t < self.start + self.length:
            return StepOutput(state.with_tensors(state.tensors, Step(t)), float("nan"))
        return honest_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.start) if self.start <= spec.steps else None


def flip_bit(tensor: torch.Tensor, index: int, bit: int) -> torch.Tensor:
    """A copy of a float32 tensor with one bit of one element flipped."""
    flat = tensor.detach().clone().contiguous().view(-1)
    as_int = flat.view(torch.int32)
    as_int[index] ^= (1 << bit) if bit < 31 else -(1 << 31)
    return flat.view(tensor.shape)


@dataclass(frozen=True)
class BitFlip:
    """Honest until ``step``; then flips ``bit`` of element ``index`` of ``tensor`` in ``S_step``
    and continues honestly from the corrupted state (a silent hardware fault or a cheap tamper)."""

    step: int
    tensor: str = "param/fc0.weight"
    index: int = 0
    bit: int = 20
    name: str = "bitflip"

    def run_step(self, program: Program, state: State) -> StepOutput:
        out = honest_step(program, state)
        if out.state.step != self.step:
            return out
        if self.tensor not in out.state.tensors:
            raise StrategyError(f"bitflip: state has no tensor {self.tensor!r}")
        tensors = dict(out.state.tensors)
        tensors[self.tensor] = flip_bit(tensors[self.tensor], self.index, self.bit)
        return StepOutput(out.state.with_tensors(tensors), out.loss)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step) if self.step <= spec.steps else None


CATALOG: dict[str, Callable[..., Any]] = {
    "honest": Honest,
    "lazy": Lazy,
    "bitflip": BitFlip,
}


def resolve_strategy(name: str, params: dict[str, Any]) -> Strategy:
    """Build the strategy a solver spec names (catalog name or ``"package.module:attr"``)."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise StrategyError(f"plug-in strategy {name!r} cannot be imported: {exc}") from exc
    elif name in CATALOG:
        factory = CATALOG[name]
    else:
        raise StrategyError(f"unknown strategy {name!r}; catalog: {sorted(CATALOG)} or 'package.module:attr'")
    try:
        strategy = factory(**params)
    except TypeError as exc:
        raise StrategyError(f"strategy {name!r}: bad parameters {params}: {exc}") from exc
    for method in ("run_step", "divergence_step"):
        if not callable(getattr(strategy, method, None)):
            raise StrategyError(f"strategy {name!r} has no method {method}()")
    return strategy
