"""A small synthetic pytest-benchmark JSON document with every group the report reads."""

from __future__ import annotations

import pytest

MACHINE = {"machine": "x86_64", "python_version": "3.11.7", "cpu": {"brand_raw": "Test CPU", "count": 2}}


def bench(group: str, name: str, median: float, **info) -> dict:
    """One benchmark as pytest-benchmark writes it (only the fields the report may read)."""
    return {"group": group, "name": name, "fullname": f"benchmarks/test_x.py::{name}", "params": None,
            "param": None, "extra_info": info, "options": {},
            "stats": {"min": median, "max": median, "mean": median, "stddev": 0.0, "rounds": 5,
                      "median": median, "iterations": 1}}


def synthetic_benchmarks() -> list[dict]:
    program = {"model": "mlp", "mode": "exact", "threads": 1}
    return [
        bench("train-step", "test_train_step[mlp-64]", 100e-6, width=64, params=4810, **program),
        bench("train-step", "test_train_step[mlp-128]", 200e-6, width=128, params=9610, **program),
        bench("train-step", "test_train_data_parallel[64-1]", 0.05, width=64, world_size=1, unit="job",
              train_s=0.02, step_s=0.0005, model="mlp", mode="data-parallel"),
        bench("train-step", "test_train_data_parallel[64-2]", 2.0, width=64, world_size=2, unit="job",
              train_s=0.04, step_s=0.001, model="mlp", mode="data-parallel"),
        bench("commit", "test_commit_checkpoint[mlp-64]", 50e-6, width=64, part="checkpoint", **program),
        bench("commit", "test_commit_checkpoint[mlp-128]", 80e-6, width=128, part="checkpoint", **program),
        bench("commit", "test_commit_store[mlp-64]", 1e-3, width=64, part="store", **program),
        bench("commit", "test_commit_job[25-arkworks]", 1e-3, part="job", T=1000, k=25, backend="arkworks"),
        bench("commit", "test_commit_job[25-py_ecc]", 0.1, part="job", T=1000, k=25, backend="py_ecc"),
        bench("commit", "test_commit_job[100-arkworks]", 0.5e-3, part="job", T=1000, k=100, backend="arkworks"),
        # another suite's commit benchmark: no part, so not an honest-overhead term
        bench("commit", "test_state_commitment[state_root-1]", 2e-3, method="state_root", bytes=2**20),
        bench("spot-check", "test_spot_check_interval[1]", 0.01, policy="interval", m=1, n=20,
              detection=0.05, T=200, k=10, width=64, **program),
        bench("spot-check", "test_spot_check_replicate", 0.2, policy="replicate", m=20, n=20,
              detection=1.0, T=200, k=10, width=64, **program),
        bench("dispute", "test_dispute[100-2]", 0.01, T=100, arity=2, rounds=9, width=64, **program),
        bench("dispute", "test_dispute[1000-2]", 0.02, T=1000, arity=2, rounds=14, width=64, **program),
        bench("dispute", "test_dispute[1000-40]", 0.025, T=1000, arity=40, rounds=5, width=64, **program),
        bench("dispute", "test_replication[1000]", 0.125, T=1000, width=64, role="replication", **program),
        bench("referee", "test_referee[operator]", 0.001, T=1000, part="operator", referee_ops=1),
        bench("referee", "test_referee[step]", 0.004, T=1000, part="step", referee_ops=60),
        bench("referee", "test_referee_width[256-operator]", 0.002, width=256, part="operator", referee_ops=1),
        bench("referee", "test_referee_width[256-step]", 0.016, width=256, part="step", referee_ops=60),
        bench("repro-ops", "test_op[matmul-native]", 1e-4, op="matmul", mode="native"),
        bench("repro-ops", "test_op[matmul-reproducible]", 5e-4, op="matmul", mode="reproducible"),
        bench("repro-ops", "test_op[conv-reproducible]", 9e-4, op="conv", mode="reproducible"),
        bench("sign", "test_sign[py_ecc]", 0.1, backend="py_ecc"),
        bench("sign", "test_sign[arkworks]", 0.001, backend="arkworks"),
        bench("schemes", "test_scheme_training", 0.02, scheme="training", T=200, k=10, steps_executed=200),
        bench("schemes", "test_scheme_replication", 0.2, scheme="replication", T=200, k=10,
              steps_executed=200, detection=1.0, catches_lazy=True),
        bench("schemes", "test_scheme_pol_top_q[1]", 0.1, scheme="pol-top-q", Q=1, T=200, k=10,
              steps_executed=10, catches_lazy=False),
        bench("schemes", "test_scheme_optimistic_check", 0.004, scheme="optimistic-check", m=2, p=1.0,
              T=200, k=10, detection=0.1, catches_lazy=False, steps_executed=20),
        bench("settle", "test_settle_job_file_ledger", 0.003, ledger="file"),
        {"group": "settle", "name": "test_that_errored", "extra_info": {}},
    ]


@pytest.fixture
def bench_document() -> dict:
    return {"machine_info": MACHINE, "commit_info": {"id": "0123456789abcdef", "dirty": True},
            "benchmarks": synthetic_benchmarks(), "datetime": "2026-01-01T00:00:00", "version": "5.3.1"}
