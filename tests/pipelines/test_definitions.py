"""The Dagster layer: definitions load, asset functions run, the whole graph materializes."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from pipelines.definitions import ASSETS, CHECKS, defs
from pipelines.resources import JOB_ID_TAG, PinpointConfig

STAGES = ["dataset_shards", "training_runs", "commitments", "spot_checks", "disputes", "settlement",
          "job_report", "incentive_study"]


def test_definitions_load_with_groups_descriptions_and_checks():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(STAGES) <= keys
    for name in STAGES:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name != "default" and node.description
    checks = {key.name for key in graph.asset_check_keys}
    assert {"signatures_valid", "supply_conserved"} <= checks
    assert defs.resolve_job_def("job_lifecycle") is not None


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")
    resource = PinpointConfig(preset="minimal", artifacts_dir=str(artifacts))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*ASSETS, *CHECKS], resources={"pinpoint": resource}, instance=instance)
    return result, resource, instance


def test_in_process_materialize_of_the_whole_graph(materialized):
    result, resource, _ = materialized
    assert result.success
    report = result.output_for_node("job_report")
    path = resource.paths().report(report["job_id"])
    assert json.loads(path.read_text()) == report
    outcomes = {s["solver_id"]: s["outcome"] for s in report["solvers"]}
    assert outcomes == {"honest": "paid", "lazy": "slashed", "bitflip": "slashed"}
    for s in report["solvers"]:
        if s["dispute"]:
            assert s["dispute"]["first_divergent_step"] == s["injected_divergence_step"]
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_the_run_is_tagged_with_the_job_id(materialized):
    result, _, instance = materialized
    run = instance.get_run_by_id(result.run_id)
    assert run.tags[JOB_ID_TAG] == result.output_for_node("job_report")["job_id"]


def test_a_run_tagged_for_another_job_is_refused_before_anything_is_written(tmp_path):
    from verification.lifecycle import ForeignInputError

    resource = PinpointConfig(preset="minimal", artifacts_dir=str(tmp_path))
    with pytest.raises(ForeignInputError, match=r"tagged pinpoint/job_id=job-000000000000, but this step works on job job-"):
        dg.materialize([*ASSETS, *CHECKS], selection=["dataset_shards"], resources={"pinpoint": resource},
                       instance=dg.DagsterInstance.ephemeral(), tags={JOB_ID_TAG: "job-000000000000"})
    assert list(tmp_path.iterdir()) == []


def test_materializations_carry_useful_metadata(materialized):
    result, _, _ = materialized
    events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    metadata = {m.asset_key.to_user_string(): m.metadata for m in events}
    assert "dataset_root" in metadata["dataset_shards"] and "shards" in metadata["dataset_shards"]
    assert "data:image/png;base64," in metadata["training_runs"]["loss_curve"].value
    training = metadata["training_runs"]
    assert list(training)[:2] == ["divergence", "distance_to_honest"]
    assert "data:image/png;base64," in training["distance_to_honest"].value
    # minimal: k = 8, lazy skips from step 9, bitflip flips at step 21; short enough to show inline
    assert "| lazy | 9–16 |" in training["divergence"].value and "| bitflip | 17–24 |" in training["divergence"].value
    assert len(training["divergence"].value) < 1000
    assert any(k.endswith("_transcript") for k in metadata["disputes"])
    rounds = metadata["disputes"]["bitflip_rounds"].value.records
    assert [k for k in metadata["disputes"] if k.startswith("bitflip_")] == [
        "bitflip_rounds", "bitflip_result", "bitflip_transcript"]  # the readable table first
    assert rounds[0].data["level"] == "checkpoints" and rounds[-1].data["level"] == "referee"
    assert rounds[-1].data["outcome"].startswith("challenger wins: pinpoint.commit_state (op ")
    assert rounds[-1].data["outcome"].endswith(") at step 21")
    assert metadata["settlement"]["movements"].value.records
    assert list(metadata["settlement"])[0] == "net_by_account"
    assert {r.data["account"]: r.data["net"] for r in metadata["settlement"]["net_by_account"].value.records}[
        "party:honest"] == 1000
    assert "| solver |" in metadata["job_report"]["summary"].value
    report = metadata["job_report"]
    assert list(report)[:2] == ["verdicts", "report_json"]  # the verdicts first, then the file
    assert report["report_json"].value.endswith("report.json")
    assert "| bitflip | slashed | 21 → 21 | pinpoint.commit_state | -5000 |" in report["verdicts"].value
    assert "| party:honest | +1000 |" in report["net_by_account"].value
    assert {r.data["kind"] for r in metadata["settlement"]["history"].value.records} >= {"lock", "settle"}
    study = metadata["incentive_study"]
    assert 0 < study["break_even_p"].value < 1 and "data:image/png" in study["cheating_region"].value


def test_every_code_location_of_the_workspace_loads():
    import importlib

    import yaml

    from pipelines.resources import PinpointConfig

    with open("workspace.yaml") as fh:
        modules = [entry["python_module"]["module_name"] for entry in yaml.safe_load(fh)["load_from"]]
    assert modules == ["pipelines.definitions", "pipelines.fleet_definitions", "pipelines.bench_definitions",
                       "pipelines.dask_definitions"]
    for name in modules:
        location = importlib.import_module(name).defs
        assert location.resolve_asset_graph().get_all_asset_keys()
        assert isinstance(location.resources["pinpoint"], PinpointConfig)


def test_a_partial_run_for_another_job_refuses_the_stored_inputs_and_writes_nothing(materialized, tmp_path):
    """The reported case: after a job ran, settling and reporting a job whose spec differs only in
    the stake must not settle it on the first job's training, commitments and checks."""
    from verification.lifecycle import ForeignInputError
    from verification.spec import compute_job_id, get_preset

    result, resource, instance = materialized
    spec_file = tmp_path / "other.yaml"
    spec_file.write_text("preset: minimal\neconomics: {solver_stake: 6000}\n")
    other = PinpointConfig(preset="minimal", spec_path=str(spec_file), artifacts_dir=resource.artifacts_dir)
    ledger_before = resource.paths().ledger.read_bytes()
    with pytest.raises(ForeignInputError) as refused:
        dg.materialize([*ASSETS, *CHECKS], selection=["settlement", "job_report"], resources={"pinpoint": other},
                       instance=instance)
    first, second = compute_job_id(get_preset("minimal")), compute_job_id(other.spec())
    assert first != second and first in str(refused.value) and second in str(refused.value)
    assert not other.paths().report(second).exists() and not other.paths().job(second).exists()
    assert resource.paths().ledger.read_bytes() == ledger_before


@pytest.mark.slow
def test_the_workspace_validates_with_dagsters_own_cli(tmp_path):
    """Every code location of workspace.yaml loads in Dagster's own code servers (the fleet's used
    not to: its sensor targeted assets of two partitions definitions as one job)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": os.getcwd()}
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for location in ("pinpoint", "pinpoint-fleet", "pinpoint-bench", "pinpoint-dask"):
        assert f"Validation successful for code location {location}." in done.stderr + done.stdout


@pytest.mark.slow
def test_dg_checks_the_default_location_as_its_project(tmp_path):
    """``dg`` (Dagster 1.13's recommended CLI, what ``make demo`` launches with) finds the project
    from pyproject.toml's ``[tool.dg]`` and loads its definitions."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": os.getcwd()}
    done = subprocess.run([str(Path(sys.executable).parent / "dg"), "check", "defs"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All definitions loaded successfully." in done.stdout + done.stderr
    assert "does not match the virtual environment" not in done.stdout + done.stderr
