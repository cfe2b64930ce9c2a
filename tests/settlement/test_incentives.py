"""Incentive simulator: closed forms on hand-computed cases, convergence, the plot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from matplotlib.image import imread

from verification.settlement import EconomicTerms, Ledger, SolverVerdict, settle_job
from verification.settlement.incentives import (
    IncentiveParams,
    InvalidIncentiveParamsError,
    break_even_cheat_rate,
    break_even_p,
    compute_cheating_advantage,
    compute_region,
    compute_slash_reward,
    compute_verifying_profit,
    plot_cheating_region,
    simulate,
    sweep,
)

TERMS = EconomicTerms(
    payment_per_solver=1_000,
    solver_stake=5_000,
    slash_reward_bps=5_000,
    slash_burn_bps=2_500,
    forced_error_rate_bps=0,
    jackpot_payout_cap=10_000,
)
# S = 5000, P = 1000, C = 800, s = 400, R = 2500, v = 100
PARAMS = IncentiveParams(
    terms=TERMS,
    check_probability=0.05,
    detection_probability=1.0,
    compute_cost=800,
    saving_fraction=0.5,
    verifier_cost=100,
    cheat_rate=0.1,
)


def within(estimate, value, widen: float = 1.0) -> bool:
    """Whether ``value`` lies in the CI of ``estimate``, its half-width multiplied by ``widen``."""
    half_width = (estimate.high - estimate.low) / 2
    return abs(estimate.mean - value) <= widen * half_width


def test_break_even_p_by_hand():
    assert break_even_p(PARAMS) == pytest.approx(400 / 6_000)
    half_detection = dataclasses.replace(PARAMS, detection_probability=0.5)
    assert break_even_p(half_detection) == pytest.approx(400 / 3_000)
    assert break_even_p(dataclasses.replace(PARAMS, saving_fraction=0.0)) == 0.0
    nothing_at_risk = dataclasses.replace(
        PARAMS, terms=dataclasses.replace(TERMS, solver_stake=0, payment_per_solver=0)
    )
    assert break_even_p(nothing_at_risk) == math.inf


def test_cheating_advantage_changes_sign_at_break_even():
    at = dataclasses.replace(PARAMS, check_probability=break_even_p(PARAMS))
    assert compute_cheating_advantage(at) == pytest.approx(0.0, abs=1e-9)
    # s - p q (S + P) = 400 - 0.05 * 6000 = 100 > 0: at p = 5 % cheating still pays
    assert compute_cheating_advantage(PARAMS) == pytest.approx(100.0)
    deterred = dataclasses.replace(PARAMS, check_probability=0.1)
    assert compute_cheating_advantage(deterred) == pytest.approx(-200.0)


def test_verifiers_dilemma_and_forced_errors_by_hand():
    assert compute_slash_reward(PARAMS) == 2_500
    # no forced errors: c q R - v = 0.1 * 2500 - 100 = 150; checking stops paying below c = 4 %
    assert compute_verifying_profit(PARAMS) == pytest.approx(150.0)
    assert break_even_cheat_rate(PARAMS) == pytest.approx(100 / 2_500)
    honest_world = dataclasses.replace(PARAMS, cheat_rate=0.0)
    assert compute_verifying_profit(honest_world) == pytest.approx(-100.0)
    # forced errors at 0.5 %: phi q J = 50 covers half of v, the break-even cheat rate halves
    half = dataclasses.replace(TERMS, forced_error_rate_bps=50)
    assert break_even_cheat_rate(dataclasses.replace(PARAMS, terms=half)) == pytest.approx(0.02)
    # at 1 %: phi q J = 100 = v, checking pays even when nobody cheats
    full = dataclasses.replace(
        honest_world, terms=dataclasses.replace(TERMS, forced_error_rate_bps=100)
    )
    assert break_even_cheat_rate(full) == 0.0
    assert compute_verifying_profit(full) == pytest.approx(0.0)
    no_reward = dataclasses.replace(PARAMS, terms=dataclasses.replace(TERMS, slash_reward_bps=0))
    assert break_even_cheat_rate(no_reward) == math.inf


def test_simulation_converges_to_the_closed_forms():
    params = dataclasses.replace(
        PARAMS,
        detection_probability=0.7,
        terms=dataclasses.replace(TERMS, forced_error_rate_bps=200),
    )
    result = simulate(params, n_jobs=200_000, seed=7)
    assert result.honest_profit.mean == result.honest_profit.low == 1_000 - 800
    # A 95 % CI misses the truth one seed in twenty (calibration is tested below); twice its
    # half-width (3.9 standard errors) misses once in ten thousand, so this test is not seed-picked.
    assert within(result.cheating_advantage, result.analytic_cheating_advantage, widen=2)
    assert within(result.cheating_profit, 200 + result.analytic_cheating_advantage, widen=2)
    assert within(result.verifying_profit, result.analytic_verifying_profit, widen=2)
    # and the error shrinks like 1 / sqrt(n): the interval is 10x narrower than with 2000 jobs
    small = simulate(params, n_jobs=2_000, seed=7).cheating_advantage
    ratio = (small.high - small.low) / (
        result.cheating_advantage.high - result.cheating_advantage.low
    )
    assert 8 < ratio < 12
    assert result.break_even_p == pytest.approx(400 / (0.7 * 6_000))


def test_confidence_intervals_cover_the_truth_about_95_percent_of_the_time():
    covered = [
        within(simulate(PARAMS, n_jobs=2_000, seed=seed).cheating_advantage, 100.0)
        for seed in range(300)
    ]
    assert 0.91 <= np.mean(covered) <= 0.99


def test_simulation_is_deterministic_in_its_seed():
    assert simulate(PARAMS, 1_000, seed=3) == simulate(PARAMS, 1_000, seed=3)
    assert simulate(PARAMS, 1_000, seed=3) != simulate(PARAMS, 1_000, seed=4)


def test_simulated_payoffs_are_what_the_ledger_moves():
    """The simulator's P, S and R are the amounts settle_job pays, slashes and rewards."""
    with Ledger(":memory:") as ledger:
        result = settle_job(
            ledger,
            "job",
            "sub",
            TERMS,
            [SolverVerdict("honest", "paid"), SolverVerdict("cheat", "slashed", challenger="v")],
        )
    start = TERMS.initial_balance
    assert result.balances["honest"] - start == TERMS.payment_per_solver
    assert result.balances["cheat"] - start == -TERMS.solver_stake
    assert result.balances["v"] - start == compute_slash_reward(PARAMS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("check_probability", 1.5), ("cheat_rate", -0.1), ("compute_cost", 0), ("verifier_cost", 2.5)],
)
def test_invalid_params_are_rejected(field, value):
    with pytest.raises(InvalidIncentiveParamsError, match=field):
        dataclasses.replace(PARAMS, **{field: value})


def test_simulation_needs_a_job():
    with pytest.raises(InvalidIncentiveParamsError, match="n_jobs"):
        simulate(PARAMS, n_jobs=0, seed=0)


@pytest.fixture(scope="module")
def grid():
    return sweep(PARAMS, np.linspace(0, 0.3, 13), np.linspace(0, 1, 11), n_jobs=20_000, seed=1)


def test_sweep_agrees_with_the_analytic_boundary(grid):
    assert grid.advantage.shape == grid.analytic.shape == (11, 13)
    region = compute_region(grid)
    clear = np.abs(grid.analytic) > 2 * (grid.high - grid.low)
    assert clear.sum() > 100
    assert np.array_equal(region[clear], np.sign(grid.analytic[clear]).astype(int))
    # more checking never makes cheating more attractive (common random numbers: monotone rows)
    assert np.all(np.diff(grid.advantage, axis=1) <= 1e-9)


def test_plot_writes_a_png(grid, tmp_path):
    path = plot_cheating_region(grid, tmp_path / "region.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _channels = imread(path).shape
    assert height > 100 and width > 100
