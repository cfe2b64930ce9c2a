"""The default job on a local Dask cluster (dagster-dask): the tested scale-out executor, in a code
location of its own so that the default one never imports dask."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from verification.spec import compute_job_id, get_preset


def test_the_default_location_imports_no_dask():
    done = subprocess.run([sys.executable, "-c", "import sys, pipelines.definitions; "
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'dagster_dask')))"],
                          capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "[]"


def test_the_dask_location_holds_the_default_graph_under_its_own_keys():
    from pipelines import dask_definitions, definitions

    default = {k.to_user_string() for k in definitions.defs.resolve_asset_graph().get_all_asset_keys()}
    dask = {k.to_user_string() for k in dask_definitions.defs.resolve_asset_graph().get_all_asset_keys()}
    assert dask == {f"dask/{key}" for key in default}  # asset keys are global in a deployment
    graph = dask_definitions.defs.resolve_asset_graph()
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"dask"}
    assert dask_definitions.lifecycle_dask_job().executor_def.name == "dask"


@pytest.mark.slow
def test_default_job_runs_on_a_local_dask_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("PINPOINT_PRESET", "minimal")
    monkeypatch.setenv("PINPOINT_ARTIFACTS", str(tmp_path / "artifacts"))
    from pipelines.dask_definitions import lifecycle_dask_job

    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    run_config = {"execution": {"config": {"cluster": {"local": {
        "n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
        "host": "127.0.0.1"}}}}}
    with dg.execute_job(dg.reconstructable(lifecycle_dask_job), instance=instance, run_config=run_config,
                        tags={"dagster/partition": compute_job_id(get_preset("minimal"))}) as result:
        assert result.success
    report = json.loads((tmp_path / "artifacts" / "runs" / compute_job_id(get_preset("minimal"))
                         / "report.json").read_text())
    assert {s["solver_id"]: s["outcome"] for s in report["solvers"]} == {
        "honest": "paid", "lazy": "slashed", "bitflip": "slashed"}
