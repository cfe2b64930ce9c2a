"""Proof-of-Learning's verifier as published, Zhang et al.'s spoof, and Pinpoint's exact check beside them.

Proof-of-Learning (PoL; Jia et al., "Proof-of-Learning: Definitions and Practice", IEEE S&P 2021)
lets a prover show that it trained a model. The proof holds the checkpoints ``W_0, W_k, …, W_T``,
the indices of the data points every step trained on, a hash of the training data and the
hyper-parameters. The verifier (Algorithm 2; the authors' code, cleverhans-lab/Proof-of-Learning
``verify.py``) checks

1. the data hash: the data the proof trains on hashes to the hash the verifier trusts
   (``verify_hash``);
2. the initialisation: ``W_0`` looks like a fresh draw of the declared initialiser, a
   Kolmogorov-Smirnov test per layer that fails when the smallest p-value is below 0.01
   (``verify_initialization``);
3. the top-Q intervals: for each of the four metrics the ``Q`` intervals with the largest update
   ``d(W_ik, W_(i+1)k)``, united over the metrics (``verify_topq``). Each is re-executed for
   ``k`` steps from the claimed ``W_ik`` on the proof's data into ``R_i`` and passes iff
   ``d(R_i, W_(i+1)k)`` is within an absolute threshold for every metric.

Zhang et al. ("'Adversarial Examples' for Proof-of-Learning", IEEE S&P 2022) spoof it. The spoofer
holds the final model (stolen, or trained elsewhere), fabricates the checkpoints between ``W_0``
and it, and then, the way one optimises an adversarial example, optimises the data points of
every interval until the verifier's replay from the fabricated ``W_ik`` lands near the fabricated
``W_(i+1)k``. The proof then shows those crafted points as its data, and a verifier that checks
the data against the proof's own hash cannot tell. ``craft_spoof`` does this here, with
``torch.optim.LBFGS`` on the input features of each batch (labels fixed).

Terms
-----
metrics, distance
    PoL's four, over all parameters as one vector: ``l1``, ``l2``, ``linf`` of ``a - b`` and
    ``cosine = 1 - cos(a, b)`` (``verification.tolerance.compute_distances``). A small cosine
    distance means nearly parallel: a threshold of 0.001 accepts a cosine similarity of 0.999 or
    more. (The authors' code divides by ``||a||^2`` where ``||a|| ||b||`` is meant; that slip is
    not copied.)
paper parameters
    ``verify.py``'s defaults (``PAPER``): thresholds l1 1000, l2 10, linf 0.1, cosine 0.001
    (Zhang et al.'s code uses 0.01 for cosine), ``Q = 2`` and an initialisation p-value of 0.01.
calibrated thresholds
    ``margin`` times the largest honest reproduction error of another job (seed + 1) between the
    prover's environment and the verifier's (``verification.tolerance.calibrate_thresholds``).
environments
    The prover trains natively (mode ``exact``, pinned threads). The PoL verifier re-executes on
    other kernels: Pinpoint's ``reproducible`` operators stand in for another machine's, about
    1e-7 (l2) away from the native results per interval. One and two native threads give
    identical bits on this small MLP, so they would calibrate every threshold to zero.
data reference
    The data hash the PoL verifier trusts (``DataReference``): ``DECLARED``, the proof's own, of the
    data the prover shows (PoL's model-ownership setting, where the data is the prover's, and the
    verifier of Zhang et al.'s experiments, which loads the spoofer's dataset); ``JOB``, the root
    of the job's committed dataset (``Program.dataset_root``: Pinpoint's job, and PoL's setting
    of outsourced training on the buyer's data).
paced line
    The spoof's checkpoints: on the line from ``W_0`` to the target ``W``, spaced as momentum SGD
    moves under one constant gradient ``g*``: ``W_t = W_0 + (D(t) / D(T)) (W - W_0)`` with
    ``D(t) = sum_{s<=t} lr_s (1 - mu^s) / (1 - mu)``, and the momentum buffers of that motion,
    ``(1 - mu^t) / (1 - mu) g*``. A replay from ``W_0`` starts with a zero buffer, so on the evenly
    spaced line of the interpolation spoof the first interval is out of the crafted batches'
    reach (measured: cosine distance 1.15e-3 after 100 L-BFGS iterations, against the paper's 1e-3).
initialisation check
    One test per layer at p 0.01: with the MLP's 4 layers about 4 % of honest draws fail it.
prover's work
    Batch gradients the prover evaluated: ``T`` for honest training, none for the interpolation
    spoof, which holds the final model; for the crafted spoof ``k`` per evaluation of the
    crafting objective, each evaluation also back-propagating through those ``k`` gradients.
verifier's cost
    Training steps re-executed.

Pinpoint's exact check (``verify_exact``) takes no data from the proof: the batch of step ``t`` is
a function of the job's dataset root, seed and ``t`` (``datasets.schedule``), so it replays the
job's own batches, and compares state roots, which no fabricated interval matches.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from datasets.sharding import compute_arrays_root
from datasets.sources import Source, load_source
from proofs.hashing import Hashing
from proofs.types import Root, Step
from verification.execution.program import BUFFER, OPTIM, PARAM, Batch, Program
from verification.execution.state import State
from verification.spec import JobSpec, Mode, get_preset
from verification.tolerance import (
    METRICS,
    Distances,
    Thresholds,
    calibrate_thresholds,
    check_intervals,
    compute_distances,
    compute_honest_trace,
    compute_interpolation_spoof,
    in_environment,
    is_within_tolerance,
)

DEFAULT_INIT_MODELS = ("mlp", "cnn")  # catalog models left at torch's nn.Linear / nn.Conv initialiser
DEFAULT_INIT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
SGD_OPTIMIZERS = ("sgd", "sgd_momentum")  # what the spoofer's differentiable replay models
TIE_DIGITS = 3  # update magnitudes that agree to this many significant digits tie in the top-Q
# The smallest calibrated threshold per metric: 1 - cos(a, b) of float64 vectors is computed to
# about 1e-16, so honest noise of 0 and of 2e-16 are the same; a zero cosine threshold would
# reject one honest environment and accept the next.
THRESHOLD_FLOOR = Thresholds(l1=0.0, l2=0.0, linf=0.0, cosine=1e-12)


class PolError(ValueError):
    """A proof or a job the PoL verifier or the spoof cannot handle (names the value)."""


class DataReference(StrEnum):
    """The data hash a PoL verifier trusts."""

    DECLARED = "declared"  # the proof's own: the prover's data (PoL's ownership setting, Zhang et al.)
    JOB = "job"  # the job's committed dataset root


class Reason(StrEnum):
    """Why a verifier decided as it did."""

    ACCEPTED = "accepted"
    DATA_HASH = "data hash"
    INITIALISATION = "initialisation"
    DISTANCE = "distance"
    STATE_ROOT = "state root"


@dataclass(frozen=True)
class PolParameters:
    thresholds: Thresholds
    q: int  # top-Q per metric
    init_p_value: float  # reject W_0 when a layer's KS p-value is below this


PAPER = PolParameters(Thresholds(l1=1000.0, l2=10.0, linf=0.1, cosine=0.001), q=2, init_p_value=0.01)


@dataclass(frozen=True)
class PolData:
    """The data a proof shows: samples ``x``, ``y`` (on the CPU) and PoL's index sequence."""

    x: torch.Tensor
    y: torch.Tensor
    sequence: tuple[np.ndarray, ...]  # sequence[t - 1]: the indices of step t's batch

    def batch(self, step: Step, device: torch.device) -> Batch:
        indices = self.sequence[step - 1]
        index = torch.from_numpy(indices.copy())
        return Batch(step, indices, self.x.index_select(0, index).to(device), self.y.index_select(0, index).to(device))

    def root(self, num_shards: int, hashing: Hashing) -> Root:
        return compute_arrays_root(self.x.numpy(), self.y.numpy(), num_shards, hashing)


@dataclass(frozen=True)
class PolProof:
    checkpoints: tuple[State, ...]  # W_0, W_k, …, W_T
    data: PolData
    data_root: Root  # the prover's hash of its data


@dataclass(frozen=True)
class Verdict:
    """One verifier's decision on one proof."""

    accepted: bool
    reason: Reason
    checked: tuple[int, ...]  # intervals re-executed
    distances: tuple[Distances, ...]  # PoL: d(R_i, claimed W_(i+1)k) per checked interval
    init_p_value: float | None  # PoL: the smallest KS p-value of W_0's layers
    steps_reexecuted: int


# -- the proof ------------------------------------------------------------------------------------
def make_program(spec: JobSpec, source: Source) -> Program:
    """The job's program on ``source`` as ``write_shards`` would commit it (nothing written)."""
    root = compute_arrays_root(source.x, source.y, spec.num_shards, spec.hashing)
    return Program(spec, source.x, source.y, root, source.meta)


def get_job_data(program: Program, source: Source) -> PolData:
    """The job's dataset and the batches its schedule draws: what an honest proof shows."""
    sequence = tuple(program.batch(Step(t)).indices for t in range(1, program.spec.steps + 1))
    return PolData(torch.from_numpy(source.x), torch.from_numpy(source.y), sequence)


def make_proof(program: Program, checkpoints: list[State], data: PolData) -> PolProof:
    spec = program.spec
    return PolProof(tuple(checkpoints), data, data.root(spec.num_shards, spec.hashing))


# -- PoL's verifier (Jia et al. 2021, Algorithm 2) ------------------------------------------------
def compute_update_magnitudes(checkpoints: tuple[State, ...]) -> list[Distances]:
    """``d(W_ik, W_(i+1)k)`` per interval, every metric."""
    return [compute_distances(a, b) for a, b in zip(checkpoints[:-1], checkpoints[1:], strict=True)]


def round_significant(value: float, digits: int) -> float:
    return float(f"{value:.{digits - 1}e}")


def select_top_q(magnitudes: list[Distances], q: int) -> tuple[int, ...]:
    """Per metric the ``q`` intervals with the largest update, united over the metrics. Updates
    equal to ``TIE_DIGITS`` significant digits tie, and a tie goes to the earlier interval (the
    authors' ``argpartition`` breaks ties arbitrarily; the evenly spaced interpolation spoof makes
    every l1, l2 and linf update equal up to rounding, which must not decide the selection)."""
    chosen: set[int] = set()
    for metric in METRICS:
        rank = sorted(range(len(magnitudes)),
                      key=lambda i: (-round_significant(getattr(magnitudes[i], metric), TIE_DIGITS), i))
        chosen.update(rank[:q])
    return tuple(sorted(chosen))


def get_default_init_bounds(program: Program) -> dict[str, float]:
    """Parameters drawn by torch's nn.Linear / nn.Conv initialiser, each with its bound ``b``:
    weight and bias are ``U(-b, b)``, ``b = 1 / sqrt(fan_in)`` (PoL's ``default`` and
    ``default_bias`` checks)."""
    # Rule: the check knows the initialiser only of models left at torch's defaults.
    if program.spec.model not in DEFAULT_INIT_MODELS:
        raise PolError(f"PoL initialisation check: model {program.spec.model!r} has no default "
                       f"initialiser to test against (known: {list(DEFAULT_INIT_MODELS)})")
    bounds = {}
    for prefix, module in program.module.named_modules():
        if isinstance(module, DEFAULT_INIT_LAYERS):
            for name, _ in module.named_parameters(recurse=False):
                bounds[f"{prefix}.{name}" if prefix else name] = 1.0 / math.sqrt(module.weight[0].numel())
    return bounds


def compute_ks_statistic(samples: torch.Tensor, bound: float) -> float:
    """Two-sided Kolmogorov-Smirnov statistic of ``samples`` against ``U(-bound, bound)``."""
    x = samples.detach().double().cpu().flatten().sort().values
    n = x.numel()
    cdf = ((x + bound) / (2 * bound)).clamp(0.0, 1.0)
    rank = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(rank / n - cdf, cdf - (rank - 1) / n).max())


def compute_ks_p_value(statistic: float, n: int) -> float:
    """``P(D_n >= statistic)``: Kolmogorov's limit law with Stephens' finite-``n`` correction
    (Numerical Recipes' ``probks``; within a few per cent of the exact law down to ``n = 10``)."""
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * statistic
    if lam < 0.05:
        return 1.0
    tail = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
    return min(1.0, max(0.0, tail))


def compute_init_p_value(program: Program, state: State) -> float:
    """The smallest KS p-value over ``state``'s default-initialised parameters."""
    params = state.params()
    return min(compute_ks_p_value(compute_ks_statistic(params[name], bound), params[name].numel())
               for name, bound in get_default_init_bounds(program).items())


def replay_interval(verifier: Program, proof: PolProof, index: int) -> State:
    """``R_i``: ``k`` steps from the claimed ``W_ik`` on the proof's batches, under the
    verifier's settings (``Program.settings``)."""
    state = proof.checkpoints[index]
    end = Step(state.step + verifier.spec.checkpoint_interval)
    with verifier.settings():
        while state.step < end:
            state = verifier.step(state, proof.data.batch(Step(state.step + 1), verifier.device)).state
    return state


def get_trusted_root(verifier: Program, proof: PolProof, reference: DataReference) -> Root:
    return proof.data_root if reference is DataReference.DECLARED else verifier.dataset_root


def check_proof_shape(verifier: Program, proof: PolProof) -> None:
    spec = verifier.spec
    # Rule: a proof holds one checkpoint per k steps and one batch per step of the job.
    if len(proof.checkpoints) != spec.num_checkpoints or len(proof.data.sequence) != spec.steps:
        raise PolError(f"PoL proof holds {len(proof.checkpoints)} checkpoints and {len(proof.data.sequence)} "
                       f"batches; job {spec.name!r} has {spec.num_checkpoints} and {spec.steps}")


def verify_pol(verifier: Program, proof: PolProof, params: PolParameters = PAPER,
               reference: DataReference = DataReference.DECLARED) -> Verdict:
    """PoL's verification of ``proof``, re-executing on ``verifier``'s environment."""
    check_proof_shape(verifier, proof)
    spec = verifier.spec
    # Rule (PoL, data hash): the proof's data hashes to the root the verifier trusts.
    if proof.data.root(spec.num_shards, spec.hashing) != get_trusted_root(verifier, proof, reference):
        return Verdict(False, Reason.DATA_HASH, (), (), None, 0)
    p_value = compute_init_p_value(verifier, proof.checkpoints[0])
    # Rule (PoL, initialisation): every layer of W_0 passes the KS test against its initialiser.
    if p_value < params.init_p_value:
        return Verdict(False, Reason.INITIALISATION, (), (), p_value, 0)
    checked = select_top_q(compute_update_magnitudes(proof.checkpoints), params.q)
    distances = tuple(compute_distances(replay_interval(verifier, proof, i), proof.checkpoints[i + 1])
                      for i in checked)
    # Rule (PoL, Algorithm 2): every re-executed top-Q interval is within every threshold.
    accepted = all(is_within_tolerance(d, params.thresholds) for d in distances)
    return Verdict(accepted, Reason.ACCEPTED if accepted else Reason.DISTANCE, checked, distances, p_value,
                   len(checked) * spec.checkpoint_interval)


# -- Pinpoint's exact check -------------------------------------------------------------------------
def verify_exact(verifier: Program, checkpoints: tuple[State, ...]) -> Verdict:
    """Re-execute the claimed intervals in order on the job's own batches; reject at the first
    whose state root differs from the claimed one (where the dispute game would start)."""
    k, hashing = verifier.spec.checkpoint_interval, verifier.spec.hashing
    # Rule (Pinpoint): S_0 is the job's initial state, a function of its seed.
    if checkpoints[0].root(hashing) != verifier.init_state().root(hashing):
        return Verdict(False, Reason.INITIALISATION, (), (), None, 0)
    for i, (start, end) in enumerate(zip(checkpoints[:-1], checkpoints[1:], strict=True)):
        with verifier.settings():
            replayed = verifier.run(start, Step(start.step + k))
        # Rule (Pinpoint): the re-executed interval ends at the claimed state root.
        if replayed.root(hashing) != end.root(hashing):
            return Verdict(False, Reason.STATE_ROOT, tuple(range(i + 1)), (), None, (i + 1) * k)
    return Verdict(True, Reason.ACCEPTED, tuple(range(len(checkpoints) - 1)), (), None, (len(checkpoints) - 1) * k)


# -- Zhang et al.'s spoof ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CraftingBudget:
    evaluations: int = 10  # of the crafting objective per interval (L-BFGS, no line search)
    closeness: float = 1e-5  # weight of ||x' - x||^2: keeps crafted points near real ones (Zhang et al.)
    history: int = 20  # L-BFGS memory


@dataclass(frozen=True)
class CraftedInterval:
    x: torch.Tensor  # (k, B, ...) crafted inputs
    y: torch.Tensor  # (k, B) the scheduled batches' labels, unchanged
    real: torch.Tensor  # (k, B, ...) the scheduled batches' inputs the crafting started from
    evaluations: int


@dataclass(frozen=True)
class CraftedSpoof:
    proof: PolProof
    gradient_evaluations: int  # batch gradients the spoofer evaluated (k per objective evaluation)
    perturbation_rms: float  # root mean square of crafted minus real inputs


def get_momentum(spec: JobSpec) -> float:
    # Rule: the spoofer's differentiable replay models torch.optim.SGD with plain momentum only.
    if spec.optimizer not in SGD_OPTIMIZERS or spec.optimizer_params:
        raise PolError(f"crafted spoof: optimizer {spec.optimizer!r} with {spec.optimizer_params} is not "
                       f"modelled (known: {list(SGD_OPTIMIZERS)} without optimizer_params)")
    return spec.momentum if spec.optimizer == "sgd_momentum" else 0.0


def compute_paced_line(program: Program, start: State, target: State) -> list[State]:
    """The checkpoints momentum SGD passes under one constant gradient from ``start`` to ``target``."""
    spec, mu = program.spec, get_momentum(program.spec)
    velocity = [(1 - mu ** s) / (1 - mu) if mu else 1.0 for s in range(1, spec.steps + 1)]  # buf_s / g*
    travelled = [0.0, *itertools.accumulate(program.lr_at(Step(s)) * v for s, v in enumerate(velocity, 1))]
    s0, w = start.params(), target.params()
    trace = [start]
    for t in range(spec.checkpoint_interval, spec.steps + 1, spec.checkpoint_interval):
        tensors = dict(start.tensors)
        for name in s0:
            delta = w[name] - s0[name]
            tensors[PARAM + name] = w[name] if t == spec.steps else s0[name] + delta * (travelled[t] / travelled[-1])
            if mu:
                tensors[f"{OPTIM}{name}/momentum_buffer"] = -delta / travelled[-1] * velocity[t - 1]
        trace.append(State(Step(t), tensors, start.rng))
    return trace


def replay_differentiable(program: Program, state: State, xs: torch.Tensor, ys: torch.Tensor) -> dict[str, torch.Tensor]:
    """The spoofer's model of the verifier's replay: steps of torch.optim.SGD from ``state`` on
    batches ``xs[j], ys[j]``, differentiable in the inputs."""
    spec, mu = program.spec, get_momentum(program.spec)
    params = {n: state.tensors[PARAM + n].detach().requires_grad_(True) for n in program.param_names}
    buffers = {n: state.tensors[BUFFER + n] for n in program.buffer_names}
    velocity = {n: state.tensors.get(f"{OPTIM}{n}/momentum_buffer") for n in params}
    for j, (x, y) in enumerate(zip(xs, ys, strict=True), start=1):
        inputs = {f"model.{n}": t for n, t in {**params, **buffers}.items()}
        with program.swap_lock:
            loss = torch.func.functional_call(program.objective, inputs, (x, y), strict=True)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        lr = program.lr_at(Step(state.step + j))
        for (name, p), g in zip(list(params.items()), grads, strict=True):
            g = g + spec.weight_decay * p
            velocity[name] = mu * velocity[name] + g if mu else g
            params[name] = p - lr * velocity[name]
    return params


def craft_interval(program: Program, start: State, end: State, budget: CraftingBudget) -> CraftedInterval:
    """Inputs for the ``k`` steps after ``start`` whose replay lands near ``end``'s parameters:
    L-BFGS over the input features, from the scheduled batches, labels fixed. Unlike Zhang et
    al.'s code the inputs are not clamped to the pixel range: only ``closeness`` holds them near
    the real ones, and no PoL check looks at the range."""
    batches = [program.batch(Step(start.step + j)) for j in range(1, program.spec.checkpoint_interval + 1)]
    real, labels = torch.stack([b.x for b in batches]), torch.stack([b.y for b in batches])
    crafted = real.clone().requires_grad_(True)
    target = end.params()
    optimizer = torch.optim.LBFGS([crafted], max_iter=budget.evaluations, max_eval=budget.evaluations,
                                  tolerance_grad=0.0, tolerance_change=0.0, history_size=budget.history)
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimizer.zero_grad()
        landed = replay_differentiable(program, start, crafted, labels)
        miss = sum(((landed[n] - target[n]) ** 2).sum() for n in target)
        objective = miss + budget.closeness * ((crafted - real) ** 2).sum()
        objective.backward()
        return objective

    optimizer.step(closure)
    return CraftedInterval(crafted.detach(), labels, real, evaluations)


def craft_spoof(program: Program, target: State, budget: CraftingBudget = CraftingBudget()) -> CraftedSpoof:
    """Zhang et al.'s spoof of a PoL for ``target``: the paced line from the job's ``S_0`` to it,
    and for every interval a crafted batch per step. Its data is the crafted points, in order."""
    line = compute_paced_line(program, program.init_state(), target)
    crafted = [craft_interval(program, a, b, budget) for a, b in zip(line[:-1], line[1:], strict=True)]
    x = torch.cat([c.x.flatten(0, 1) for c in crafted]).cpu()
    y = torch.cat([c.y.flatten(0, 1) for c in crafted]).cpu()
    size = program.spec.batch_size
    sequence = tuple(np.arange((t - 1) * size, t * size) for t in range(1, program.spec.steps + 1))
    real = torch.cat([c.real.flatten(0, 1) for c in crafted]).cpu()
    return CraftedSpoof(make_proof(program, line, PolData(x, y, sequence)),
                        sum(c.evaluations for c in crafted) * program.spec.checkpoint_interval,
                        float((x - real).pow(2).mean().sqrt()))


# -- the table --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trace:
    name: str
    proof: PolProof
    prover_gradients: int


def compute_traces(prover: Program, source: Source, budget: CraftingBudget) -> list[Trace]:
    """The honest proof, the interpolation spoof and the crafted spoof, all for the honest final model."""
    spec = prover.spec
    honest = in_environment(prover, lambda: compute_honest_trace(prover))
    data = get_job_data(prover, source)
    line = compute_interpolation_spoof(honest[0], honest[-1], spec.steps, spec.checkpoint_interval, spec.lr)
    spoof = in_environment(prover, lambda: craft_spoof(prover, honest[-1], budget))
    return [Trace("honest", make_proof(prover, honest, data), spec.steps),
            Trace("interpolation only", make_proof(prover, line, data), 0),
            Trace("Zhang et al. crafted batches", spoof.proof, spoof.gradient_evaluations)]


def calibrate_pol(spec: JobSpec, source: Source, margin: float) -> Thresholds:
    """``margin`` times the honest noise of the job with seed + 1, prover native, verifier on
    ``reproducible`` operators (another environment)."""
    job = dataclasses.replace(spec, seed=spec.seed + 1)
    prover, verifier = make_program(job, source), make_program(dataclasses.replace(job, mode=Mode.REPRODUCIBLE), source)
    trace = in_environment(prover, lambda: compute_honest_trace(prover))
    noise = [c.distances for c in in_environment(verifier, lambda: check_intervals(verifier, trace))]
    calibrated = calibrate_thresholds(noise, margin)
    return Thresholds(*(max(getattr(calibrated, m), getattr(THRESHOLD_FLOOR, m)) for m in METRICS))


def get_study_spec() -> JobSpec:
    """The job of the README's table: the default MLP on digits, ``T = 32``, ``k = 8``."""
    return dataclasses.replace(get_preset("default"), name="pol-study", steps=32, checkpoint_interval=8)


def compute_pol_table(spec: JobSpec, margin: float = 10.0, budget: CraftingBudget = CraftingBudget()) -> list[dict[str, Any]]:
    """One row per (trace, verifier): accepted or not, why, and both sides' costs.

    Traces: honest, the interpolation spoof (``verification.tolerance.compute_interpolation_spoof``)
    and the crafted spoof (``craft_spoof``), both spoofs towards the honest final model (the
    spoofer's best case). Verifiers: PoL with the paper's thresholds and with calibrated ones,
    trusting the proof's data hash (``DataReference.DECLARED``), re-executing on another
    environment; PoL with the paper's thresholds against the job's dataset root; Pinpoint's exact
    check in the job's environment. Each party's work runs under its program's torch settings
    (``verification.tolerance.in_environment``), put back after it.
    """
    source = load_source(spec.dataset, **spec.dataset_params)
    prover = make_program(spec, source)
    other = make_program(dataclasses.replace(spec, mode=Mode.REPRODUCIBLE), source)
    traces = compute_traces(prover, source, budget)
    calibrated = PolParameters(calibrate_pol(spec, source, margin), PAPER.q, PAPER.init_p_value)
    verifiers = {
        "PoL, paper thresholds": lambda p: in_environment(other, lambda: verify_pol(other, p, PAPER)),
        f"PoL, calibrated x{margin:g}": lambda p: in_environment(other, lambda: verify_pol(other, p, calibrated)),
        "PoL, paper thresholds, job's data root": lambda p: in_environment(
            other, lambda: verify_pol(other, p, PAPER, DataReference.JOB)),
        "Pinpoint, exact roots": lambda p: in_environment(prover, lambda: verify_exact(prover, p.checkpoints)),
    }
    return [{"trace": t.name, "prover_gradients": t.prover_gradients, "verifier": name, "verdict": check(t.proof)}
            for t in traces for name, check in verifiers.items()]


def format_verdict(verdict: Verdict) -> str:
    decision = "accepted" if verdict.accepted else f"rejected: {verdict.reason}"
    return f"{decision} ({verdict.steps_reexecuted} steps)"


def render_pol_table(rows: list[dict[str, Any]]) -> str:
    """Traces down, verifiers across; each cell the verdict and the steps it re-executed."""
    verifiers = list(dict.fromkeys(r["verifier"] for r in rows))
    cells = {(r["trace"], r["verifier"]): r for r in rows}
    lines = ["| trace | prover's work (batch gradients) | " + " | ".join(verifiers) + " |",
             "|---|---|" + "---|" * len(verifiers)]
    for trace in dict.fromkeys(r["trace"] for r in rows):
        verdicts = [format_verdict(cells[(trace, v)]["verdict"]) for v in verifiers]
        lines.append(f"| {trace} | {cells[(trace, verifiers[0])]['prover_gradients']} | " + " | ".join(verdicts) + " |")
    return "\n".join(lines)
