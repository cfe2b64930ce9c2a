"""Tolerance checks (Proof-of-Learning) and the interpolation spoof that passes them.

docs/design.md §3, mode ``tolerance``: parties are compared up to a distance threshold, as in
Proof-of-Learning (Jia et al., "Proof-of-Learning: Definitions and Practice", IEEE S&P 2021). It
is kept to measure what the alternative to bit-exact execution costs: thresholds loose enough for
honest hardware noise are loose enough for cheap fabricated traces (Zhang et al., "'Adversarial
Examples' for Proof-of-Learning", IEEE S&P 2022; Fang et al., "Proof-of-Learning is Currently More
Broken Than You Think", IEEE EuroS&P 2023), while exact state roots on reproducible operators
reject every fabricated interval and accept every honest one.

Terms
-----
distance
    Between the parameters of two states (``param/*``; PoL compares weights), concatenated into one
    float64 vector: ``l1 = sum |a - b|``, ``l2 = ||a - b||_2``, ``linf = max |a - b|`` and
    ``cosine = 1 - cos(a, b)`` — PoL's four metrics.
threshold
    One per metric (``Thresholds``); an interval passes iff every distance is at most its
    threshold (PoL's verification rule).
interval check
    The verifier re-executes the claimed checkpoint ``S_ik`` for ``k`` steps on its own hardware
    into ``R_i`` and compares ``R_i`` with the claimed ``S_(i+1)k``: by root equality (``exact``) or
    within thresholds (``tolerance``).
honest noise
    The distance between an honest claimed checkpoint and its honest re-execution in another
    environment (here another CPU thread count): what a threshold must absorb.
threshold policy
    ``calibrated``: ``margin`` times the largest honest noise of a calibration job (the same job
    with another seed, in the same pair of environments), the best a verifier can do when it knows
    the environments in advance. ``relative``: ``rho`` times the distance the verifier's own
    re-execution moved, ``d(S_ik, R_i)`` — a normalised reproduction error, for verifiers that
    cannot know every prover's hardware in advance.
interpolation spoof
    A prover that holds a final state ``W`` (stolen, or trained elsewhere) but never trained this
    job fabricates ``S_ik = S_0 + (ik / T)(W - S_0)`` with the momentum buffers of that constant
    velocity, ``buf = -(W - S_0) / (T lr)``: a complete trace for zero training steps.
false reject / false accept
    An honest interval that fails the check / a spoofed interval that passes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from proofs.types import Step
from verification.execution.program import Program
from verification.execution.state import State
from verification.spec import JobSpec, Mode

METRICS = ("l1", "l2", "linf", "cosine")
EXECUTION_MODES = (Mode.EXACT, Mode.REPRODUCIBLE)
DEFAULT_RHOS = (0.01, 0.1, 0.5, 1.0)


class ToleranceError(ValueError):
    """Inputs to a tolerance check that cannot be compared (names the value)."""


@dataclass(frozen=True)
class Distances:
    l1: float
    l2: float
    linf: float
    cosine: float


@dataclass(frozen=True)
class Thresholds:
    l1: float
    l2: float
    linf: float
    cosine: float

    def scaled(self, factor: float) -> Thresholds:
        return Thresholds(*(factor * getattr(self, m) for m in METRICS))


def get_param_vector(state: State) -> torch.Tensor:
    """The state's parameters, sorted by name, as one float64 vector on the CPU."""
    params = state.params()
    return torch.cat([params[n].detach().double().cpu().flatten() for n in sorted(params)])


def compute_distances(a: State, b: State) -> Distances:
    """PoL's four distances between the parameters of ``a`` and ``b``."""
    if sorted(a.params()) != sorted(b.params()):
        raise ToleranceError(f"states hold different parameters: {sorted(a.params())} vs {sorted(b.params())}")
    va, vb = get_param_vector(a), get_param_vector(b)
    diff = va - vb
    linf = float(diff.abs().max())
    denom = float(torch.linalg.vector_norm(va) * torch.linalg.vector_norm(vb))
    cosine = 1.0 - float(va @ vb) / denom if denom > 0 else float(denom != 0)
    # Identical parameters are at distance 0 in every metric; the float64 dot and norms of the
    # cosine would otherwise leave a rounding residue (4e-16 seen).
    return Distances(float(diff.abs().sum()), float(torch.linalg.vector_norm(diff)), linf,
                     0.0 if linf == 0.0 else max(0.0, cosine))


def is_within_tolerance(distances: Distances, thresholds: Thresholds) -> bool:
    # Rule (PoL verification): accept iff every metric is within its threshold.
    return all(getattr(distances, m) <= getattr(thresholds, m) for m in METRICS)


def calibrate_thresholds(honest: list[Distances], margin: float) -> Thresholds:
    """``margin`` times the largest honest noise seen per metric (PoL's calibration)."""
    if not honest:
        raise ToleranceError("calibrating thresholds needs at least one honest distance")
    return Thresholds(*(margin * max(getattr(d, m) for d in honest) for m in METRICS))


def compute_relative_thresholds(moved: Distances, rho: float) -> Thresholds:
    """``rho`` times the distance the verifier's re-execution moved (normalised error <= rho)."""
    return Thresholds(*(rho * getattr(moved, m) for m in METRICS))


def compute_interpolation_spoof(start: State, target: State, steps: int, interval: int, lr: float) -> list[State]:
    """Fabricated checkpoints ``S_0, S_k, …, S_T`` on the line from ``start`` to ``target``."""
    if steps % interval:
        raise ToleranceError(f"steps T={steps} must be a multiple of the interval k={interval}")
    s0, w = start.params(), target.params()
    velocity = {n: (w[n] - s0[n]) / (steps * lr) for n in s0}  # p_{t+1} - p_t = -lr * buf
    trace = []
    for t in range(0, steps + 1, interval):
        tensors = {}
        for n in s0:
            tensors[f"param/{n}"] = s0[n] + (w[n] - s0[n]) * (t / steps)
            tensors[f"optim/{n}/momentum_buffer"] = -velocity[n] if t else torch.zeros_like(s0[n])
        trace.append(State(Step(t), tensors, start.rng))
    return trace


@dataclass(frozen=True)
class IntervalCheck:
    """One re-executed interval: the distances of the check and whether the roots matched."""

    index: int
    distances: Distances  # d(R_i, claimed S_(i+1)k)
    moved: Distances  # d(R_i, claimed S_ik): how far the verifier's re-execution went
    roots_match: bool


def in_environment(program: Program, work: Callable[[], Any]) -> Any:
    """Run ``work`` under ``program``'s mode and thread count (``Program.settings``: process-wide
    torch settings, put back as they were once ``work`` returns)."""
    with program.settings():
        return work()


def compute_honest_trace(program: Program) -> list[State]:
    """The honest checkpoints ``S_0, S_k, …, S_T`` of ``program``, under its settings."""
    k = program.spec.checkpoint_interval
    trace = [program.init_state()]
    with program.settings():
        while trace[-1].step < program.spec.steps:
            trace.append(program.run(trace[-1], Step(trace[-1].step + k)))
    return trace


def check_intervals(verifier: Program, claimed: list[State]) -> list[IntervalCheck]:
    """The verifier re-executes every claimed interval and compares the end states."""
    k, hashing = verifier.spec.checkpoint_interval, verifier.spec.hashing
    checks = []
    for i, (start, end) in enumerate(zip(claimed[:-1], claimed[1:], strict=True)):
        with verifier.settings():
            replay = verifier.run(start, Step(start.step + k))
        checks.append(IntervalCheck(i, compute_distances(replay, end), compute_distances(replay, start),
                                    replay.root(hashing) == end.root(hashing)))
    return checks


ProgramFactory = Callable[[JobSpec], Program]


@dataclass(frozen=True)
class ModeChecks:
    """Every interval check of one execution mode: honest, spoofed, and the calibration job's."""

    mode: Mode
    honest: list[IntervalCheck]
    spoofed: list[IntervalCheck]
    calibration: list[IntervalCheck]


def measure_mode(spec: JobSpec, make_program: ProgramFactory, mode: Mode, threads: tuple[int, int]) -> ModeChecks:
    """Prover on ``threads[0]`` threads, verifier re-executing on ``threads[1]``."""
    def environments(job: JobSpec) -> tuple[Program, Program]:
        return (make_program(dataclasses.replace(job, mode=mode, threads=threads[0])),
                make_program(dataclasses.replace(job, mode=mode, threads=threads[1])))

    prover, verifier = environments(spec)
    honest = in_environment(prover, lambda: compute_honest_trace(prover))
    spoof = compute_interpolation_spoof(honest[0], honest[-1], spec.steps, spec.checkpoint_interval, spec.lr)
    cal_prover, cal_verifier = environments(dataclasses.replace(spec, seed=spec.seed + 1))
    cal_honest = in_environment(cal_prover, lambda: compute_honest_trace(cal_prover))
    return ModeChecks(mode, *in_environment(verifier, lambda: (
        check_intervals(verifier, honest), check_intervals(verifier, spoof),
        check_intervals(cal_verifier, cal_honest))))


def compute_rates(honest: list[IntervalCheck], spoofed: list[IntervalCheck],
                  accepts: Callable[[IntervalCheck], bool]) -> tuple[float, float]:
    """(false-reject rate over honest intervals, false-accept rate over spoofed intervals)."""
    return (sum(not accepts(c) for c in honest) / len(honest),
            sum(accepts(c) for c in spoofed) / len(spoofed))


def compute_acceptance_rows(checks: ModeChecks, margin: float, rhos: tuple[float, ...]) -> list[dict[str, Any]]:
    """One row per check: exact roots, the calibrated tolerance, each relative tolerance.

    ``noisy_intervals`` counts the honest intervals whose re-execution was not bit-identical to the
    prover's (honest noise). How many there are depends on the machine: on some CPUs torch's native
    kernels reduce in the same order on 1 and 2 threads and there is no noise at all.
    """
    calibrated = calibrate_thresholds([c.distances for c in checks.calibration], margin)
    rules: list[tuple[str, str, Callable[[IntervalCheck], bool]]] = [
        ("exact roots", "-", lambda c: c.roots_match),
        ("tolerance", f"calibrated x{margin:g}", lambda c: is_within_tolerance(c.distances, calibrated)),
    ]
    rules += [("tolerance", f"relative rho={rho:g}",
               lambda c, rho=rho: is_within_tolerance(c.distances, compute_relative_thresholds(c.moved, rho)))
              for rho in rhos]
    noisy = sum(c.distances.linf > 0.0 for c in checks.honest)
    rows = []
    for check, thresholds, accepts in rules:
        false_rejects, false_accepts = compute_rates(checks.honest, checks.spoofed, accepts)
        rows.append({"execution": checks.mode, "check": check, "thresholds": thresholds,
                     "honest_intervals": len(checks.honest), "spoofed_intervals": len(checks.spoofed),
                     "noisy_intervals": noisy,
                     "false_reject_rate": false_rejects, "false_accept_rate": false_accepts})
    return rows


def compute_acceptance_table(spec: JobSpec, make_program: ProgramFactory, threads: tuple[int, int] = (1, 2),
                             margin: float = 10.0, rhos: tuple[float, ...] = DEFAULT_RHOS) -> list[dict[str, Any]]:
    """False accepts and false rejects of exact and tolerance checks, per execution mode.

    The prover trains on ``threads[0]`` threads and the verifier re-executes every interval on
    ``threads[1]`` (honest noise). Honest intervals come from the honest trace, spoofed ones from
    the interpolation spoof towards the honest final state (the spoofer's best case: it holds the
    real final weights). Calibrated thresholds are ``margin`` times the largest honest noise of the
    same job with seed ``spec.seed + 1``. Thread counts switch inside this process (each
    environment's work under its program's settings, ``in_environment``; checked against separate
    processes in ``tests/repro``), and are put back after each.
    """
    rows = []
    for mode in EXECUTION_MODES:
        rows += compute_acceptance_rows(measure_mode(spec, make_program, mode, threads), margin, rhos)
    return rows


def render_acceptance_table(rows: list[dict[str, Any]]) -> str:
    """The table as markdown."""
    lines = ["| execution | check | thresholds | false rejects (honest) | false accepts (spoof) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['execution']} | {r['check']} | {r['thresholds']} | "
                     f"{r['false_reject_rate']:.0%} of {r['honest_intervals']} | "
                     f"{r['false_accept_rate']:.0%} of {r['spoofed_intervals']} |")
    return "\n".join(lines)
