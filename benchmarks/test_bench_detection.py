"""How often an adaptive cheater is caught, measured on the real pipeline (issue 14).

Group ``detection``. An adaptive cheater (``tests/game/adaptive_cheater.py``) predicts its own
selection from everything public before it trains, and skips the work of every step when it
predicts no check. Each job here has ``CHEATERS`` of them, all predicting "not checked" (so all
cheat), at spot-check probability ``P`` under the replicate policy; every job runs the whole
lifecycle (``run_job``: shard, train and sign in party processes, the verifier's secret coin,
replication, disputes, settlement) in an artifacts directory of its own, with the verifier's secret
drawn by the pipeline. ``extra_info`` has the draws, the catches, the measured rate with its
Wilson 95 % interval, and the analytic rate ``P`` that the incentive study assumes.

Against the public coin this rate was 0: the cheater was never checked. Smoke runs (``make test``)
run one job; ``make bench`` 12 jobs (48 draws); ``PINPOINT_BENCH_FULL=1`` 50 jobs (200 draws).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmarks import get_sizes, get_smoke
from tests.game.adaptive_cheater import build_adaptive_job
from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import get_preset

P = 0.5
CHEATERS = 4
JOBS = get_smoke(get_sizes((12,), (50,))[-1], 1)
Z95, Z_CHECK = 1.96, 4.89  # two-sided 95 %, and 1e-6 for the assertion


def compute_wilson_interval(caught: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate ``caught / n`` (Wilson 1927)."""
    if n == 0:
        return 0.0, 1.0
    rate, z2 = caught / n, z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def count_catches(report: dict) -> tuple[int, int]:
    """(cheaters that cheated, of them slashed) in one job's report."""
    cheated = [s for s in report["solvers"] if s["injected_divergence_step"] is not None]
    return len(cheated), sum(s["outcome"] == "slashed" for s in cheated)


@pytest.mark.benchmark(group="detection")
def test_adaptive_cheater_detection(benchmark, tmp_path):
    base = dataclasses.replace(get_preset("minimal"), steps=8, checkpoint_interval=4, solvers=())

    def study() -> tuple[int, int]:
        draws = caught = 0
        seed = 0
        for job in range(JOBS):
            spec = build_adaptive_job(base, P, CHEATERS, seed)
            seed = spec.seed + 1
            n, k = count_catches(run_job(spec, ArtifactPaths(tmp_path / f"job-{job}")))
            draws, caught = draws + n, caught + k
        return draws, caught

    draws, caught = benchmark.pedantic(study, rounds=1, iterations=1)
    low, high = compute_wilson_interval(caught, draws, Z95)
    benchmark.extra_info.update({"jobs": JOBS, "cheaters_per_job": CHEATERS, "p": P, "draws": draws,
                                 "caught": caught, "rate": caught / draws, "ci95_low": low, "ci95_high": high})
    assert draws == JOBS * CHEATERS  # every adaptive cheater cheated: each predicted no check
    check_low, check_high = compute_wilson_interval(caught, draws, Z_CHECK)
    assert check_low <= P <= check_high, (caught, draws)
