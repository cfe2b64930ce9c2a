"""The default job on a local Dask cluster (dagster-dask): the tested scale-out executor."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from verification.spec import compute_job_id, get_preset

pytestmark = pytest.mark.slow


def test_default_job_runs_on_a_local_dask_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("PINPOINT_PRESET", "minimal")
    monkeypatch.setenv("PINPOINT_ARTIFACTS", str(tmp_path / "artifacts"))
    from pipelines.definitions import lifecycle_dask_job

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    run_config = {"execution": {"config": {"cluster": {"local": {
        "n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
        "host": "127.0.0.1"}}}}}
    with dg.execute_job(dg.reconstructable(lifecycle_dask_job), instance=instance,
                        run_config=run_config) as result:
        assert result.success
    report = json.loads((tmp_path / "artifacts" / "runs" / compute_job_id(get_preset("minimal"))
                         / "report.json").read_text())
    assert {s["solver_id"]: s["outcome"] for s in report["solvers"]} == {
        "honest": "paid", "lazy": "slashed", "bitflip": "slashed"}
