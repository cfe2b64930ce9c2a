"""Benchmarks of verification/settlement: settle_job on a file ledger, the incentive simulator.

``settle_job`` is measured on a SQLite file in WAL mode with ``synchronous=FULL`` (one fsync per
settlement), each round a new job of four solvers with mixed verdicts, and on its no-op path (the job
is already settled: what a re-materialized Dagster asset costs). The simulator is measured per number
of simulated jobs; ``extra_info["jobs"]`` lets the report turn its time into jobs per second.
"""

from __future__ import annotations

import itertools

import pytest

from benchmarks import get_sizes
from verification.settlement import EconomicTerms, Ledger, SolverVerdict, settle_job
from verification.settlement.incentives import IncentiveParams, simulate

TERMS = EconomicTerms(forced_error_rate_bps=0, initial_balance=10**15)  # never runs dry
VERDICTS = [
    SolverVerdict("honest", "paid"),
    SolverVerdict("cheater", "slashed", challenger="verifier"),
    SolverVerdict("accused", "paid", challenger="verifier", false_challenge=True),
    SolverVerdict("lucky", "unverified"),
]


@pytest.fixture
def file_ledger(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        yield ledger


@pytest.mark.benchmark(group="settle")
def test_settle_job_file_ledger(benchmark, file_ledger):
    jobs = (f"job{i}" for i in itertools.count())

    def settle_new_job():
        return settle_job(file_ledger, next(jobs), "submitter", TERMS, VERDICTS, ["verifier"])

    benchmark.extra_info.update(ledger="file", solvers=len(VERDICTS), path="first settlement")
    result = benchmark(settle_new_job)
    assert not result.already_settled
    assert file_ledger.supply() == file_ledger.minted()


@pytest.mark.benchmark(group="settle")
def test_settle_job_already_settled(benchmark, file_ledger):
    settle_job(file_ledger, "job", "submitter", TERMS, VERDICTS, ["verifier"])
    benchmark.extra_info.update(ledger="file", solvers=len(VERDICTS), path="already settled")
    result = benchmark(settle_job, file_ledger, "job", "submitter", TERMS, VERDICTS, ["verifier"])
    assert result.already_settled


@pytest.mark.benchmark(group="settle")
@pytest.mark.parametrize("jobs", get_sizes((100_000,), (1_000_000,)))
def test_simulate_jobs(benchmark, jobs):
    benchmark.extra_info.update(jobs=jobs)
    result = benchmark(simulate, IncentiveParams(), jobs, 0)
    assert result.n_jobs == jobs
