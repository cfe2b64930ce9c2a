"""Solver strategies: how a solver turns ``S_{t-1}`` into what it claims is ``S_t``.

A strategy is any object with

``name: str``
``run_step(program, state) -> StepOutput``
    the solver's version of step ``state.step + 1``. An honest solver calls ``program.step``.
    It must be deterministic: in a dispute the solver recomputes its steps with the same strategy
    (``verification.providers``), and its answers must match what it committed to. At level 3 the
    game records the aten operators of ``program.step`` as the strategy calls it (the strategy is
    handed a recording proxy of the program); whatever it does outside ``program.step`` is not an
    operator of the step, so a state changed there is caught at the ``commit_state`` record.
``divergence_step(spec) -> Step | None``
    the first step whose output differs from honest execution, when the strategy knows it
    (catalog adversaries do; reports it as ``injected_divergence_step``).

A job spec names a strategy by catalog name or as ``"package.module:attr"`` where ``attr`` is a
callable taking the strategy's ``params`` as keyword arguments and returning a strategy
(docs/design.md §4). Catalog adversaries follow the attacks studied on Proof-of-Learning (Jia et al.
2021; Zhang et al. 2022; Fang et al. 2023) and in Verde (Arun et al. 2025):

================  ==========================================  =====================
name              what it does                                divergence
================  ==========================================  =====================
honest            ``program.step``                            none
lazy              skips steps ``start … start+length-1``      ``start``
bitflip           flips one bit of ``S_step``                 ``step``
noise             Gaussian noise (``sigma``) on ``S_step``    ``step``
interpolate       fabricates ``S_t`` between ``S_0`` and a    1
                  target (PoL spoof)
data_order        trains ``step`` on another step's batch     ``step``
wrong_lr          another learning rate from ``step`` on      ``step``
replay            copies another solver's checkpoints         first copied wrong
                                                              checkpoint, or none
late              skips the last step                         ``T``
op_corrupt        flips one bit in operator ``op``'s output   ``step``, operator
                  inside ``step``                             ``op``
false_challenger  (challenger side) claims a wrong ``S_step``  ``step``
equivocate        trains honestly but signs a second,         none: slashed on the
                  conflicting commitment for the same job     evidence, no re-execution
================  ==========================================  =====================

A strategy may also define ``conflicting_commitment(commitment) -> Commitment | None``: a second
commitment for the same job that the solver signs and publishes besides its real one (it shows
one trace to one verifier and another to the next). Two valid signatures by one solver over
different trace roots are *equivocation evidence*: slashable with no re-execution, as a double
vote is in Ethereum's consensus (``proofs.messages.is_valid_equivocation``).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_unflatten

from proofs.hashing import DOMAIN_TRACE, hash_parts
from proofs.messages import Commitment
from proofs.types import Step, describe_unknown
from verification.execution.checkpoints import read_checkpoint
from verification.execution.opgraph import is_computation
from verification.execution.program import Program, StepOutput, derive_seed, honest_step
from verification.execution.state import State
from verification.spec import JobSpec, SolverSpec


class StrategyError(ValueError):
    """A solver names a strategy that cannot be found or built."""


class Strategy(Protocol):
    name: str

    def run_step(self, program: Program, state: State) -> StepOutput: ...

    def divergence_step(self, spec: JobSpec) -> Step | None: ...


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


def flip_bit(tensor: torch.Tensor, index: int | None, bit: int) -> torch.Tensor:
    """A copy of a float32 tensor with ``bit`` flipped in element ``index`` (``None``: in every element)."""
    flat = tensor.detach().clone().contiguous().view(-1)
    as_int = flat.view(torch.int32)
    mask = (1 << bit) if bit < 31 else -(1 << 31)
    if index is None:
        as_int.bitwise_xor_(mask)
    else:
        as_int[index] ^= mask
    return flat.view(tensor.shape)


@dataclass(frozen=True)
class ForcedError:
    """Truebit's forced error (§4.4): a solver drawn for one submits a wrong result on purpose.

    It runs its own strategy, then flips one bit of its *final* state ``S_T`` (bit 20 of the first
    element of the first float32 parameter, by name). At the last step, so that the forced error
    excuses nothing else: a dispute over the trace must end at step ``T``, or the solver's earlier
    steps were wrong of its own accord and it is slashed as any cheater."""

    inner: Strategy
    step: Step

    @property
    def name(self) -> str:
        return self.inner.name  # nothing in its run says it was drawn: the ticket does, at settlement

    def run_step(self, program: Program, state: State) -> StepOutput:
        out = self.inner.run_step(program, state)
        if out.state.step != self.step:
            return out
        tensors = out.state.tensors
        target = next(n for n in sorted(tensors) if n.startswith("param/") and tensors[n].dtype == torch.float32)
        return StepOutput(out.state.with_tensors({**tensors, target: flip_bit(tensors[target], 0, 20)}), out.loss)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        inner = self.inner.divergence_step(spec)
        return self.step if inner is None else min(inner, self.step)


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


@dataclass(frozen=True)
class Noise:
    """Honest, except that the parameters of ``S_step`` get Gaussian noise of standard deviation
    ``sigma`` — a perturbation orders of magnitude below the distance thresholds that
    Proof-of-Learning's tolerance checks must allow for honest hardware noise (Jia et al. 2021), so
    a tolerance verifier accepts it and an exact one does not. The noise is drawn from a generator
    seeded by the job seed and the step, so the cheater's replays match its commitment."""

    step: int
    sigma: float = 1e-6
    name: str = "noise"

    def run_step(self, program: Program, state: State) -> StepOutput:
        out = honest_step(program, state)
        if out.state.step != self.step:
            return out
        generator = torch.Generator().manual_seed(derive_seed(program.spec.seed, f"noise/{self.step}"))
        tensors = dict(out.state.tensors)
        for name in sorted(n for n in tensors if n.startswith("param/")):
            t = tensors[name]
            noise = torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
            tensors[name] = t + self.sigma * noise
        return StepOutput(out.state.with_tensors(tensors), out.loss)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step) if self.step <= spec.steps and self.sigma > 0 else None


@dataclass(frozen=True)
class Interpolate:
    """The Proof-of-Learning spoof (Zhang et al. 2022; Fang et al. 2023): fabricate the trajectory
    instead of training it. The spoofer holds a target state — honest ``S_target_step``, i.e. a
    model trained with fewer real steps, or with ``target_step = T`` (the default) the honest final
    model obtained elsewhere — and claims parameters ``S_t = S_0 + (t/T)(target - S_0)`` with the
    momentum buffers of that constant velocity (``-(target - S_0) / (T lr)``, so the claimed
    optimizer state is consistent with the fabricated path), and ``S_T = target`` exactly. Its checkpoints may end at the honest final root; its first
    step is already wrong, so the divergence is step 1 (for ``T >= 2``)."""

    target_step: int | None = None
    name: str = "interpolate"
    _anchors: dict = field(default_factory=dict, compare=False, repr=False)

    def get_anchors(self, program: Program) -> tuple[State, State]:
        """``(S_0, target)``, computed once per program (cached by its spec object)."""
        key = id(program.spec)
        if key not in self._anchors:
            end = program.spec.steps if self.target_step is None else self.target_step
            if not 1 <= end <= program.spec.steps:
                raise StrategyError(f"interpolate: target_step {end} is not in 1..T={program.spec.steps}")
            start = program.init_state()
            self._anchors[key] = (program.spec, start, program.run(start, Step(end)))
        _, start, target = self._anchors[key]
        return start, target

    def run_step(self, program: Program, state: State) -> StepOutput:
        start, target = self.get_anchors(program)
        t, total = state.step + 1, program.spec.steps
        if t == total:
            tensors = dict(target.tensors)
        else:  # parameters on the line; momentum of that constant velocity (p_t+1 - p_t = -lr buf)
            tensors = {}
            for name, p in start.params().items():
                delta = target.tensors[f"param/{name}"] - p
                tensors[f"param/{name}"] = p + (t / total) * delta
                tensors[f"optim/{name}/momentum_buffer"] = -delta / (total * program.spec.lr)
        return StepOutput(State(Step(t), tensors, state.rng), float("nan"))

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(1) if spec.steps >= 2 else None


@dataclass(frozen=True)
class DataOrder:
    """Trains step ``step`` on the batch of step ``batch_step`` (default ``step + 1``) — a wrong
    data order; every other step is honest."""

    step: int
    batch_step: int | None = None
    name: str = "data_order"

    def __post_init__(self):
        if self.batch_step == self.step:
            raise StrategyError(f"data_order: batch_step {self.batch_step} must differ from step {self.step}")

    def run_step(self, program: Program, state: State) -> StepOutput:
        if state.step + 1 != self.step:
            return honest_step(program, state)
        used = self.step + 1 if self.batch_step is None else self.batch_step
        return program.step(state, program.batch(Step(used)))

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step) if self.step <= spec.steps else None


@dataclass(frozen=True)
class WrongLR:
    """Uses learning rate ``lr`` instead of the spec's from step ``step`` on (a wrong
    hyper-parameter)."""

    step: int
    lr: float = 0.1
    name: str = "wrong_lr"

    def run_step(self, program: Program, state: State) -> StepOutput:
        if state.step + 1 < self.step:
            return honest_step(program, state)
        return program.step(state, program.batch(Step(state.step + 1)), lr=self.lr)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step) if self.step <= spec.steps and self.lr != spec.lr else None


@dataclass(frozen=True)
class Replay:
    """Copies another solver's checkpoints (``path``: that solver's zarr store) instead of
    training: at every checkpoint step it claims the copied state, and between checkpoints (the
    steps it must recompute in a dispute) it steps honestly from its copied checkpoint.

    ``source_divergence_step`` is the first wrong step of the copied trace, if any; the copier's
    own first wrong step is then the first checkpoint at or after it. A bit-for-bit copy of an
    honest trace is *not* detectable by re-execution — it is the honest computation, and what it
    steals is the reward. That is the job of solver-bound commitments (e.g. each solver first
    commits to ``H(solver id, trace root)`` and reveals the trace root only after all commitments
    are in), not of the game; such a copier is reported as having no divergence."""

    path: str
    source_divergence_step: int | None = None
    name: str = "replay"

    def run_step(self, program: Program, state: State) -> StepOutput:
        t, k = state.step + 1, program.spec.checkpoint_interval
        if t % k:
            return honest_step(program, state)
        return StepOutput(read_checkpoint(self.path, t // k, program.device), float("nan"))

    def divergence_step(self, spec: JobSpec) -> Step | None:
        if self.source_divergence_step is None:
            return None
        k = spec.checkpoint_interval
        step = -(-self.source_divergence_step // k) * k
        return Step(step) if step <= spec.steps else None


@dataclass(frozen=True)
class Late:
    """Honest for ``T - 1`` steps, then skips the work of the last one (claims ``S_T = S_{T-1}``
    with the step counter moved): the latest possible divergence."""

    name: str = "late"

    def run_step(self, program: Program, state: State) -> StepOutput:
        return Lazy(start=program.spec.steps, length=1).run_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(spec.steps)


@dataclass(frozen=True)
class Equivocate:
    """Trains honestly, but also signs a commitment to another trace for the same job (a cheaper
    or more favourable one, shown to a different verifier). Its real trace is correct, so no
    re-execution catches it; the two signatures do."""

    name: str = "equivocate"

    def run_step(self, program: Program, state: State) -> StepOutput:
        return honest_step(program, state)

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return None

    def conflicting_commitment(self, commitment: Commitment) -> Commitment:
        other = hash_parts(DOMAIN_TRACE, b"equivocate", bytes(commitment.trace_root))
        return dataclasses.replace(commitment, trace_root=other)


def corrupt_output(out: Any, element: int | None, bit: int) -> Any:
    """``out`` with ``bit`` flipped in element ``element`` (``None``: every element) of its first
    float32 tensor (a new tensor: never in place, since the output may be a view of the pre-state)."""
    leaves, tree = tree_flatten(out)
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, torch.Tensor) and leaf.dtype == torch.float32 and leaf.numel() > 0:
            leaves[i] = flip_bit(leaf, None if element is None else element % leaf.numel(), bit)
            return tree_unflatten(leaves, tree)
    raise StrategyError(f"op_corrupt: the operator's output {type(out).__name__} has no float32 tensor to corrupt")


def is_inplace(func: torch._ops.OpOverload) -> bool:
    """Whether an operator writes into its first argument (``add_``, ``mul_``, ``copy_``)."""
    first = func._schema.arguments[0] if func._schema.arguments else None
    return bool(first is not None and first.alias_info is not None and first.alias_info.is_write)


class OpCorruptor(TorchDispatchMode):
    """Corrupts the output of the ``op``-th aten operator (counting from 0) run inside the ``with``
    block: a fault, or a tamper, inside one kernel, seen by every later operator."""

    def __init__(self, op: int, element: int | None, bit: int):
        super().__init__()
        self.op, self.element, self.bit = op, element, bit
        self.seen = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not is_computation(func):  # counted as the op trace counts (verification.execution.opgraph)
            return out
        index, self.seen = self.seen, self.seen + 1
        if index != self.op:
            return out
        corrupted = corrupt_output(out, self.element, self.bit)
        if is_inplace(func):  # an optimizer's update: the caller keeps the mutated tensor, not the result
            with _disable_current_modes():
                args[0].copy_(tree_flatten(corrupted)[0][0])
            return out
        return corrupted


@dataclass(frozen=True)
class OpCorrupt:
    """Honest, except that inside step ``step`` the output of operator number ``op`` — its index
    in the step's operator trace (``verification.execution.opgraph``) — has bit ``bit`` flipped in
    element ``element`` (default: in every element), and the rest of the step computes on from
    the corrupted value. The divergence is that step and that operator, provided the corruption
    reaches ``S_step``: it does not when the operator only feeds the logged loss, or when a later
    operator masks it (a single element behind a ReLU that is off). An operator with no float32
    output (the slice of the integer labels) cannot be corrupted this way."""

    step: int
    op: int
    element: int | None = None
    bit: int = 22
    name: str = "op_corrupt"

    def run_step(self, program: Program, state: State) -> StepOutput:
        if state.step + 1 != self.step:
            return honest_step(program, state)
        batch = program.batch(Step(self.step))  # outside the mode: the count starts at the step
        corruptor = OpCorruptor(self.op, self.element, self.bit)
        with corruptor:
            out = program.step(state, batch)
        if corruptor.seen <= self.op:
            raise StrategyError(f"op_corrupt: step {self.step} runs {corruptor.seen} operators, no #{self.op}")
        return out

    def divergence_step(self, spec: JobSpec) -> Step | None:
        return Step(self.step) if self.step <= spec.steps else None


def false_challenger(step: int, tensor: str = "param/fc0.weight", index: int = 0, bit: int = 20) -> BitFlip:
    """A challenger-side adversary: it claims that an honest solver's ``S_step`` is wrong, by
    answering the game honestly except for one flipped bit in its own ``S_step``. Against an honest
    solver it must lose the game, and its bond."""
    return BitFlip(step=step, tensor=tensor, index=index, bit=bit, name="false_challenger")


CATALOG: dict[str, Callable[..., Any]] = {
    "honest": Honest,
    "lazy": Lazy,
    "bitflip": BitFlip,
    "noise": Noise,
    "interpolate": Interpolate,
    "data_order": DataOrder,
    "wrong_lr": WrongLR,
    "replay": Replay,
    "late": Late,
    "op_corrupt": OpCorrupt,
    "false_challenger": false_challenger,
    "equivocate": Equivocate,
}


def is_plugin(name: str) -> bool:
    """Whether a strategy name is a plug-in (``"package.module:attr"``), not a catalog name.
    Plug-ins are imported only inside party processes (``verification.parties``)."""
    return ":" in name


def resolve_strategy(name: str, params: dict[str, Any]) -> Strategy:
    """Build the strategy a solver spec names (catalog name or ``"package.module:attr"``)."""
    if is_plugin(name):
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except Exception as exc:  # noqa: BLE001 -- whatever the plug-in's import raises, named
            raise StrategyError(f"plug-in strategy {name!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    elif name in CATALOG:
        factory = CATALOG[name]
    else:
        raise StrategyError(f"{describe_unknown('strategy', name, CATALOG)}, or a plug-in 'package.module:attr'")
    try:
        strategy = factory(**params)
    except TypeError as exc:
        raise StrategyError(f"strategy {name!r}: bad parameters {params}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 -- a plug-in's own failure, named with the plug-in
        raise StrategyError(f"strategy {name!r} with parameters {params} raised {type(exc).__name__}: {exc}") from exc
    for method in ("run_step", "divergence_step"):
        if not callable(getattr(strategy, method, None)):
            raise StrategyError(f"strategy {name!r} has no method {method}()")
    return strategy


def resolve_party_strategy(party: SolverSpec) -> None:
    """``StrategyError`` naming the party if its strategy cannot be resolved."""
    try:
        resolve_strategy(party.strategy, party.params)
    except StrategyError as exc:
        raise StrategyError(f"party {party.solver_id!r}: {exc}") from None


def resolve_party_strategies(parties: list[SolverSpec]) -> None:
    """Resolve every strategy (run in a party process: plug-in modules are imported there)."""
    for party in parties:
        resolve_party_strategy(party)


def compute_divergence(spec: JobSpec, party: SolverSpec) -> Step | None:
    """The step a party's strategy declares it diverges at (run in its process for a plug-in)."""
    return resolve_strategy(party.strategy, party.params).divergence_step(spec)
