"""Incentive simulator: when does cheating pay a solver, and checking pay a verifier?

Monte Carlo over many independent jobs (numpy, vectorised, seeded), next to the closed forms below.
Amounts are integer token units taken from `EconomicTerms`; probabilities and ratios are floats.

Terms
-----
p
    Spot-check probability: the chance that a job is checked at all.
q
    Detection probability given a check (1 for whole-job replication; lower for interval spot checks
    that may miss the one bad interval).
C, s
    The honest compute cost of a job, and what a cheater saves by not doing (all of) it:
    ``s = round(saving_fraction * C)``.
P, S, R
    The payment per solver, the solver stake, and the challenger's reward share of a slashed stake
    (``compute_forfeit_split(S).reward``): the amounts the ledger moves (`verification.settlement.rules`).
v, c
    A verifier's cost of one check, and the fraction of solvers that cheat.
phi, J
    Forced-error rate (``forced_error_rate_bps / 10000``) and jackpot payout per finding
    (``jackpot_payout_cap``; the jackpot is assumed to hold at least that much).

Analytic break-even (derived from the settlement rules)
-------------------------------------------------------
An honest solver earns ``P - C``. A cheater spends ``C - s``; it is caught with probability ``p*q``,
and then loses its stake and is not paid (its payment goes back to the submitter)::

    E[cheat] = (1 - pq)(P - C + s) + pq(-S - C + s) = P - C + s - pq(S + P)
    E[cheat] - E[honest] = s - pq(S + P)

so cheating pays iff ``s > p q (S + P)``, i.e. iff ``p < p* = s / (q (S + P))`` (`break_even_p`); with
``p* >= 1`` no spot-check rate deters it. A verifier that checks a job earns::

    E[check] = c q R + phi q J - v

Without forced errors (``phi = 0``) checking pays only while ``c > v / (q R)``. But when checking
deters cheating, ``c`` falls to 0, checking stops paying, verifiers stop checking, ``p`` falls and
cheating pays again: there is no equilibrium with both honest solvers and diligent verifiers. This is
the Verifier's Dilemma (Teutsch & Reitwießner 2017, Truebit §3.1; Luu et al. 2015). Forced errors
(Truebit §4.1, §4.4) add ``phi q J``, independent of ``c``: with ``phi q J >= v`` checking pays even
when nobody cheats (`break_even_cheat_rate` is then 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from verification.settlement.accounts import TokenAmount
from verification.settlement.rules import BPS, EconomicTerms, compute_forfeit_split

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal
N_DRAWS = 5  # uniforms per job: check, detect cheat, is cheater, is forced error, detect forced


class InvalidIncentiveParamsError(ValueError):
    """Simulation parameters out of range (a probability outside [0, 1], a negative amount)."""


@dataclass(frozen=True)
class IncentiveParams:
    """One market: the job's economic terms plus the quantities the ledger does not hold.

    ``check_probability`` (p), ``detection_probability`` (q), ``cheat_rate`` (c) and
    ``saving_fraction`` are in [0, 1]; ``compute_cost`` (C) and ``verifier_cost`` (v) are token amounts.
    """

    terms: EconomicTerms = field(default_factory=EconomicTerms)
    check_probability: float = 0.1
    detection_probability: float = 1.0
    compute_cost: TokenAmount = TokenAmount(800)
    saving_fraction: float = 0.5
    verifier_cost: TokenAmount = TokenAmount(100)
    cheat_rate: float = 0.1

    def __post_init__(self) -> None:
        for name in ("check_probability", "detection_probability", "saving_fraction", "cheat_rate"):
            value = getattr(self, name)
            # Rule: probabilities and fractions lie in [0, 1]
            if not 0.0 <= value <= 1.0:
                raise InvalidIncentiveParamsError(f"{name} must lie in [0, 1], got {value!r}")
        for name in ("compute_cost", "verifier_cost"):
            value = getattr(self, name)
            # Rule: costs are non-negative integer token amounts
            if type(value) is not int or value < 0:
                raise InvalidIncentiveParamsError(
                    f"{name} must be a non-negative int, got {value!r}"
                )
        # Rule: a job costs something to compute (the saving is a fraction of it)
        if self.compute_cost == 0:
            raise InvalidIncentiveParamsError("compute_cost must be positive, got 0")


@dataclass(frozen=True)
class Estimate:
    """A sample mean with its 95 % confidence interval ``[low, high]`` (normal approximation)."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class SimulationResult:
    """Per-job profits estimated over ``n_jobs`` simulated jobs, next to their closed forms.

    ``cheating_advantage`` is the paired difference cheating minus honest on the same jobs;
    ``verifying_profit`` is the profit of checking one job (not checking earns 0).
    """

    params: IncentiveParams
    n_jobs: int
    seed: int
    honest_profit: Estimate
    cheating_profit: Estimate
    cheating_advantage: Estimate
    verifying_profit: Estimate
    analytic_cheating_advantage: float
    analytic_verifying_profit: float
    break_even_p: float
    break_even_cheat_rate: float


@dataclass(frozen=True, eq=False)
class SweepGrid:
    """Cheating advantage over a grid of spot-check probabilities × saving fractions.

    Arrays ``advantage`` (simulated mean), ``low``/``high`` (its 95 % CI) and ``analytic`` have shape
    ``(len(savings), len(p_values))``. Every cell reuses the same random draws (common random numbers),
    so differences between cells come from the parameters, not from noise.
    """

    params: IncentiveParams
    p_values: np.ndarray
    savings: np.ndarray
    advantage: np.ndarray
    low: np.ndarray
    high: np.ndarray
    analytic: np.ndarray
    n_jobs: int
    seed: int


@dataclass(frozen=True)
class ProfitSamples:
    """Per-job profit of an honest solver, a cheater, and a verifier that checks (int64 arrays)."""

    honest: np.ndarray
    cheating: np.ndarray
    verifying: np.ndarray


def compute_saving(params: IncentiveParams) -> TokenAmount:
    """What a cheater saves: ``round(saving_fraction * compute_cost)`` token units."""
    return TokenAmount(round(params.saving_fraction * params.compute_cost))


def compute_slash_reward(params: IncentiveParams) -> TokenAmount:
    """What a challenger earns from catching a cheater: the reward share of its stake."""
    return compute_forfeit_split(params.terms.solver_stake, params.terms).reward


def compute_forced_error_rate(params: IncentiveParams) -> float:
    """Forced-error probability per job, from the terms' basis points."""
    return params.terms.forced_error_rate_bps / BPS


def compute_cheating_advantage(params: IncentiveParams) -> float:
    """Closed form of E[cheat] - E[honest] = s - p q (S + P)."""
    at_risk = params.terms.solver_stake + params.terms.payment_per_solver
    caught = params.check_probability * params.detection_probability
    return compute_saving(params) - caught * at_risk


def compute_verifying_profit(params: IncentiveParams) -> float:
    """Closed form of E[profit of one check] = c q R + phi q J - v."""
    q = params.detection_probability
    from_cheaters = params.cheat_rate * q * compute_slash_reward(params)
    from_jackpot = compute_forced_error_rate(params) * q * params.terms.jackpot_payout_cap
    return from_cheaters + from_jackpot - params.verifier_cost


def break_even_p(params: IncentiveParams) -> float:
    """Spot-check probability below which cheating pays: ``p* = s / (q (S + P))``.

    A value of 1 or more means no spot-check rate deters cheating; ``inf`` when nothing is at risk.
    """
    at_risk = params.detection_probability * (
        params.terms.solver_stake + params.terms.payment_per_solver
    )
    saving = compute_saving(params)
    if at_risk == 0:
        return math.inf if saving > 0 else 0.0
    return saving / at_risk


def break_even_cheat_rate(params: IncentiveParams) -> float:
    """Cheat rate above which checking pays a verifier: ``c* = (v - phi q J) / (q R)``, at least 0.

    0 means forced errors alone pay for checking (the Verifier's Dilemma is solved); ``inf`` means
    checking never pays.
    """
    q = params.detection_probability
    shortfall = params.verifier_cost - compute_forced_error_rate(params) * q * (
        params.terms.jackpot_payout_cap
    )
    per_cheater = q * compute_slash_reward(params)
    if shortfall <= 0:
        return 0.0
    return shortfall / per_cheater if per_cheater > 0 else math.inf


def draw_uniforms(n_jobs: int, seed: int) -> np.ndarray:
    """The ``(N_DRAWS, n_jobs)`` uniform draws behind a simulation, from a seeded PCG64."""
    # Rule: at least one job, so that a mean exists
    if n_jobs < 1:
        raise InvalidIncentiveParamsError(f"n_jobs must be at least 1, got {n_jobs}")
    return np.random.default_rng(seed).random((N_DRAWS, n_jobs))


def compute_profit_samples(params: IncentiveParams, uniforms: np.ndarray) -> ProfitSamples:
    """Per-job profits for one parameter set, from pre-drawn uniforms (see `draw_uniforms`)."""
    u_check, u_detect, u_cheater, u_forced, u_detect_forced = uniforms
    terms = params.terms
    q = params.detection_probability
    caught = (u_check < params.check_probability) & (u_detect < q)
    cheat_cost = params.compute_cost - compute_saving(params)
    paid = terms.payment_per_solver - cheat_cost
    slashed = -terms.solver_stake - cheat_cost
    cheating = np.where(caught, slashed, paid).astype(np.int64)
    honest = np.full(uniforms.shape[1], terms.payment_per_solver - params.compute_cost, np.int64)
    found_cheater = (u_cheater < params.cheat_rate) & (u_detect < q)
    found_forced = (u_forced < compute_forced_error_rate(params)) & (u_detect_forced < q)
    verifying = (
        found_cheater * np.int64(compute_slash_reward(params))
        + found_forced * np.int64(terms.jackpot_payout_cap)
        - np.int64(params.verifier_cost)
    )
    return ProfitSamples(honest, cheating, verifying)


def compute_estimate(samples: np.ndarray) -> Estimate:
    """Mean of ``samples`` with a 95 % normal confidence interval."""
    mean = float(samples.mean())
    half_width = (
        Z_95 * float(samples.std(ddof=1)) / math.sqrt(samples.size) if samples.size > 1 else 0
    )
    return Estimate(mean, mean - half_width, mean + half_width)


def simulate(params: IncentiveParams, n_jobs: int, seed: int) -> SimulationResult:
    """Simulate ``n_jobs`` independent jobs under ``params``; deterministic in ``seed``."""
    samples = compute_profit_samples(params, draw_uniforms(n_jobs, seed))
    return SimulationResult(
        params=params,
        n_jobs=n_jobs,
        seed=seed,
        honest_profit=compute_estimate(samples.honest),
        cheating_profit=compute_estimate(samples.cheating),
        cheating_advantage=compute_estimate(samples.cheating - samples.honest),
        verifying_profit=compute_estimate(samples.verifying),
        analytic_cheating_advantage=compute_cheating_advantage(params),
        analytic_verifying_profit=compute_verifying_profit(params),
        break_even_p=break_even_p(params),
        break_even_cheat_rate=break_even_cheat_rate(params),
    )


def sweep(
    params: IncentiveParams,
    p_values: Sequence[float],
    savings: Sequence[float],
    n_jobs: int = 20_000,
    seed: int = 0,
) -> SweepGrid:
    """Cheating advantage for every (saving fraction, spot-check probability) pair."""
    uniforms = draw_uniforms(n_jobs, seed)
    shape = (len(savings), len(p_values))
    advantage, low, high, analytic = (np.empty(shape) for _ in range(4))
    for i, saving in enumerate(savings):
        for j, p in enumerate(p_values):
            cell = replace(params, check_probability=float(p), saving_fraction=float(saving))
            samples = compute_profit_samples(cell, uniforms)
            estimate = compute_estimate(samples.cheating - samples.honest)
            advantage[i, j], low[i, j], high[i, j] = estimate.mean, estimate.low, estimate.high
            analytic[i, j] = compute_cheating_advantage(cell)
    return SweepGrid(
        params=params,
        p_values=np.asarray(p_values, dtype=float),
        savings=np.asarray(savings, dtype=float),
        advantage=advantage,
        low=low,
        high=high,
        analytic=analytic,
        n_jobs=n_jobs,
        seed=seed,
    )


def compute_region(grid: SweepGrid) -> np.ndarray:
    """Per cell: 1 where cheating pays (CI above 0), -1 where it loses (CI below 0), 0 undecided."""
    return np.where(grid.low > 0, 1, np.where(grid.high < 0, -1, 0))


def compute_boundary_saving(params: IncentiveParams, p_values: np.ndarray) -> np.ndarray:
    """Analytic boundary as a saving fraction: ``s / C = p q (S + P) / C`` at each ``p``."""
    at_risk = params.detection_probability * (
        params.terms.solver_stake + params.terms.payment_per_solver
    )
    return p_values * at_risk / params.compute_cost


def plot_cheating_region(grid: SweepGrid, path: str | os.PathLike[str]) -> Path:
    """Write a PNG of where cheating pays (simulated, with CI) with the analytic boundary overlaid."""
    figure = Figure(figsize=(7, 5), dpi=110)
    axes = figure.add_subplot()
    colors = ListedColormap(["#4c9a2a", "#d9d9d9", "#c0392b"])  # loses, undecided, pays
    axes.pcolormesh(
        grid.p_values,
        grid.savings,
        compute_region(grid),
        cmap=colors,
        vmin=-1,
        vmax=1,
        shading="nearest",
    )
    p_line = np.linspace(grid.p_values.min(), grid.p_values.max(), 200)
    axes.plot(
        p_line,
        compute_boundary_saving(grid.params, p_line),
        "k-",
        lw=2,
        label="analytic break-even",
    )
    axes.set_ylim(grid.savings.min(), grid.savings.max())
    axes.set_xlabel("spot-check probability p")
    axes.set_ylabel("cheater's saving (fraction of compute cost)")
    terms = grid.params.terms
    axes.set_title(
        f"Where cheating pays: S={terms.solver_stake}, P={terms.payment_per_solver}, "
        f"C={grid.params.compute_cost}, q={grid.params.detection_probability:g}",
        fontsize=9,
    )
    handles = [
        Patch(color="#c0392b", label="cheating pays (95 % CI > 0)"),
        Patch(color="#d9d9d9", label="undecided (CI contains 0)"),
        Patch(color="#4c9a2a", label="honesty pays (95 % CI < 0)"),
        *axes.get_legend_handles_labels()[0],
    ]
    axes.legend(handles=handles, loc="lower right", fontsize=8)
    out = Path(path)
    figure.savefig(out, format="png")
    return out


__all__ = [
    "Estimate",
    "IncentiveParams",
    "InvalidIncentiveParamsError",
    "SimulationResult",
    "SweepGrid",
    "break_even_cheat_rate",
    "break_even_p",
    "compute_cheating_advantage",
    "compute_verifying_profit",
    "plot_cheating_region",
    "simulate",
    "sweep",
]
