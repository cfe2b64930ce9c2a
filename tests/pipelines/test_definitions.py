"""The Dagster layer: definitions load, asset functions run, the whole graph materializes."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from pipelines.definitions import ASSETS, CHECKS, defs
from pipelines.resources import PinpointConfig

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
    result = dg.materialize([*ASSETS, *CHECKS],
                            resources={"pinpoint": resource}, instance=dg.DagsterInstance.ephemeral())
    return result, resource


def test_in_process_materialize_of_the_whole_graph(materialized):
    result, resource = materialized
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


def test_materializations_carry_useful_metadata(materialized):
    result, _ = materialized
    events = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    metadata = {m.asset_key.to_user_string(): m.metadata for m in events}
    assert "dataset_root" in metadata["dataset_shards"] and "shards" in metadata["dataset_shards"]
    assert "data:image/png;base64," in metadata["training_runs"]["loss_curve"].value
    assert any(k.endswith("_transcript") for k in metadata["disputes"])
    assert metadata["settlement"]["movements"].value.records
    assert "| solver |" in metadata["job_report"]["summary"].value
    assert {r.data["kind"] for r in metadata["settlement"]["history"].value.records} >= {"lock", "settle"}
    study = metadata["incentive_study"]
    assert 0 < study["break_even_p"].value < 1 and "data:image/png" in study["cheating_region"].value


def test_every_code_location_of_the_workspace_loads():
    import importlib

    import yaml

    from pipelines.resources import PinpointConfig

    with open("workspace.yaml") as fh:
        modules = [entry["python_module"]["module_name"] for entry in yaml.safe_load(fh)["load_from"]]
    assert modules == ["pipelines.definitions", "pipelines.fleet_definitions", "pipelines.bench_definitions"]
    for name in modules:
        location = importlib.import_module(name).defs
        assert location.resolve_asset_graph().get_all_asset_keys()
        assert isinstance(location.resources["pinpoint"], PinpointConfig)
