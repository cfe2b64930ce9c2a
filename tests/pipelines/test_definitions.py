"""The Dagster layer: definitions load, asset functions run, the whole graph materializes."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import CHECKS, build_assets, defs
from pipelines.partitions import JobIOManager, MissingStageError
from pipelines.resources import JOB_ID_TAG, PinpointConfig
from verification.lifecycle import ForeignInputError
from verification.spec import compute_job_id, get_preset

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


def test_every_asset_is_partitioned_by_the_one_job_its_resource_names():
    """One job = one partition key: the environment's job in the default location."""
    graph = defs.resolve_asset_graph()
    job_id = compute_job_id(defs.resources["pinpoint"].spec())
    for key in graph.get_all_asset_keys():
        assert graph.get(key).partitions_def.get_partition_keys() == [job_id], key


def materialize(config: PinpointConfig, instance, job_id: str | None = None, **kwargs):
    """The default graph of ``config``'s job, as ``make demo`` launches it: its one partition."""
    return dg.materialize([*build_assets(config), *CHECKS], partition_key=job_id or compute_job_id(config.spec()),
                          resources={"pinpoint": config, "io_manager": JobIOManager()}, instance=instance, **kwargs)


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("artifacts")
    resource = PinpointConfig(preset="minimal", artifacts_dir=str(artifacts))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(resource, instance)
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


def test_the_run_is_tagged_with_the_job_id_and_its_partition(materialized):
    result, _, instance = materialized
    run = instance.get_run_by_id(result.run_id)
    job_id = result.output_for_node("job_report")["job_id"]
    assert run.tags[JOB_ID_TAG] == job_id and run.tags["dagster/partition"] == job_id
    stored = {p.parent.name: p.name for p in (Path(instance.storage_directory())).glob("*/job-*")}
    assert stored and set(stored.values()) == {job_id}  # every stage's value is filed under its job


def test_a_run_tagged_for_another_job_is_refused_before_anything_is_written(tmp_path):
    resource = PinpointConfig(preset="minimal", artifacts_dir=str(tmp_path))
    with pytest.raises(ForeignInputError, match=r"tagged pinpoint/job_id=job-000000000000, but this step works on job job-"):
        materialize(resource, dg.DagsterInstance.ephemeral(), selection=["dataset_shards"],
                    tags={JOB_ID_TAG: "job-000000000000"})
    assert list(tmp_path.iterdir()) == []


def test_a_run_for_another_partition_than_the_resources_job_is_refused(tmp_path):
    """The UI's launchpad can pair a partition with a resource that names another job."""
    minimal = PinpointConfig(preset="minimal", artifacts_dir=str(tmp_path))
    other = compute_job_id(get_preset("default"))
    assets = [*build_assets(PinpointConfig(preset="default")), *CHECKS]
    with pytest.raises(ForeignInputError, match=rf"launched for partition '{other}', but the pinpoint resource "
                                                rf"names job {compute_job_id(minimal.spec())}"):
        dg.materialize(assets, selection=["dataset_shards"], partition_key=other,
                       resources={"pinpoint": minimal, "io_manager": JobIOManager()},
                       instance=dg.DagsterInstance.ephemeral())
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


def test_a_partial_run_for_another_job_finds_none_of_its_inputs_and_writes_nothing(materialized, tmp_path):
    """The reported case: after a job ran, settling and reporting a job whose spec differs only in
    the stake must not settle it on the first job's training, commitments and checks. Its
    partition has none of them: the run is refused naming the stage and the job, nothing written."""
    result, resource, instance = materialized
    spec_file = tmp_path / "other.yaml"
    spec_file.write_text("preset: minimal\neconomics: {solver_stake: 6000}\n")
    other = PinpointConfig(preset="minimal", spec_path=str(spec_file), artifacts_dir=resource.artifacts_dir)
    ledger_before = resource.paths().ledger.read_bytes()
    first, second = compute_job_id(get_preset("minimal")), compute_job_id(other.spec())
    with pytest.raises(MissingStageError, match=rf"of job {second} was never materialized"):
        materialize(other, instance, selection=["settlement", "job_report"])
    assert first != second
    assert not other.paths().report(second).exists() and not other.paths().job(second).exists()
    assert resource.paths().ledger.read_bytes() == ledger_before


def test_foreign_stage_values_are_refused_by_job_id_even_under_the_right_partition(materialized, tmp_path):
    """Should a stage's file be copied under another job's partition, its job id still differs."""
    import shutil

    result, resource, instance = materialized
    spec_file = tmp_path / "other.yaml"
    spec_file.write_text("preset: minimal\neconomics: {solver_stake: 6000}\n")
    other = PinpointConfig(preset="minimal", spec_path=str(spec_file), artifacts_dir=resource.artifacts_dir)
    first, second = compute_job_id(get_preset("minimal")), compute_job_id(other.spec())
    storage = Path(instance.storage_directory())
    for stage in ("dataset_shards", "training_runs", "commitments", "spot_checks", "disputes"):
        shutil.copy(storage / stage / first, storage / stage / second)
    ledger_before = resource.paths().ledger.read_bytes()
    with pytest.raises(ForeignInputError) as refused:
        materialize(other, instance, selection=["settlement", "job_report"])
    assert first in str(refused.value) and second in str(refused.value)
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


@pytest.mark.parametrize("env", [{}, {"PINPOINT_PRESET": "minimal"}, {"PINPOINT_SPEC": "job.yaml"}])
def test_the_partition_key_make_demo_launches_is_the_resources_job(env, tmp_path, monkeypatch):
    """``python -m pipelines.job_key`` (no Dagster import) names the job ``config_from_env`` does."""
    import os
    import subprocess
    import sys

    from pipelines.resources import config_from_env

    (tmp_path / "job.yaml").write_text("preset: minimal\nsteps: 24\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PINPOINT_PRESET", raising=False)
    monkeypatch.delenv("PINPOINT_SPEC", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    done = subprocess.run([sys.executable, "-m", "pipelines.job_key"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, check=True)
    assert done.stdout.strip() == compute_job_id(config_from_env().spec())


def test_a_rerun_of_the_job_reuses_its_training_commitments_and_disputes(materialized):
    """Content-addressed by the job id and checked before use: the second run of the same job
    trains, signs and plays nothing again, reports the same, and settles nothing twice."""
    first, resource, instance = materialized
    again = materialize(resource, instance)
    assert again.success

    def metadata(result):
        events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
        return {m.asset_key.to_user_string(): m.metadata for m in events}

    reran = metadata(again)
    assert all(reran[stage]["reused"].value for stage in ("training_runs", "commitments", "disputes"))
    assert not any(metadata(first)[stage]["reused"].value for stage in ("training_runs", "commitments", "disputes"))
    before, after = first.output_for_node("job_report"), again.output_for_node("job_report")
    assert [s["trace_root"] for s in after["solvers"]] == [s["trace_root"] for s in before["solvers"]]
    assert [s["outcome"] for s in after["solvers"]] == [s["outcome"] for s in before["solvers"]]
    assert after["ledger"]["already_settled"] is True


def test_stored_commitments_and_disputes_are_reused_only_when_they_still_hold(materialized, tmp_path):
    import dataclasses
    import shutil

    from pipelines.assets.commitments import get_reusable_commitments
    from pipelines.assets.verification import get_reusable_disputes
    from verification.job import resolve_job

    result, resource, _ = materialized
    job = resolve_job(resource.spec())
    runs, commits = result.output_for_node("training_runs").value, result.output_for_node("commitments")
    checks, disputes = result.output_for_node("spot_checks").value, result.output_for_node("disputes")
    assert get_reusable_commitments(commits, job, runs, resource.paths()) is commits
    assert get_reusable_disputes(disputes, job, commits.value, checks) is disputes
    # a commitment to another run, or one the bulletin never saw
    other = {**runs, "honest": dataclasses.replace(runs["honest"], roots=runs["honest"].roots[::-1])}
    assert get_reusable_commitments(commits, job, other, resource.paths()) is None
    assert get_reusable_commitments(commits, job, runs, type(resource.paths())(tmp_path)) is None
    # a transcript altered on disk, or a ruling that is not the game's
    sid, played = next(iter(disputes.value.items()))
    saved = tmp_path / "transcript.json"
    shutil.copy(played.transcript, saved)
    try:
        Path(played.transcript).write_text(Path(played.transcript).read_text().replace('"narrow"', '"narrowed"', 1))
        assert get_reusable_disputes(disputes, job, commits.value, checks) is None
    finally:
        shutil.copy(saved, played.transcript)
    lying = dataclasses.replace(played, ruling=dataclasses.replace(played.ruling, signature=bytes(96)))
    forged = dataclasses.replace(disputes, value={**disputes.value, sid: lying})
    assert get_reusable_disputes(forged, job, commits.value, checks) is None
    assert get_reusable_disputes(disputes, resolve_job(get_preset("default")), commits.value, checks) is None
