"""The fleet: jobs from an inbox as dynamic partitions, solvers as a second dimension."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import yaml

from pipelines.assets.fleet import JobInbox, compute_next_stage
from pipelines.fleet_driver import drive
from pipelines.load_run import audit
from pipelines.resources import JOB_ID_TAG, PinpointConfig
from verification.settlement import Ledger
from verification.spec import compute_job_id, load_spec

pytestmark = pytest.mark.slow


def test_next_stage_moves_a_job_forward_one_step_at_a_time():
    done = {"dataset": set(), "commitment": set(), "outcome": set()}
    assert compute_next_stage("j", ["a", "b"], done) == [("dataset", "j")]
    done["dataset"].add("j")
    assert compute_next_stage("j", ["a", "b"], done) == [("solver", "j|a"), ("solver", "j|b")]
    done["commitment"] |= {"j|a", "j|b"}
    assert compute_next_stage("j", ["a", "b"], done) == [("outcome", "j")]
    done["outcome"].add("j")
    assert compute_next_stage("j", ["a", "b"], done) == []


def write_job(inbox, name: str, seed: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / f"{name}.yaml").write_text(yaml.safe_dump({
        "preset": "minimal", "seed": seed, "steps": 16, "checkpoint_interval": 4,
        "solvers": ["honest", {"solver_id": "lazy", "strategy": "lazy", "params": {"start": 5, "length": 4}},
                    {"solver_id": "bitflip", "strategy": "bitflip", "params": {"step": 9}}]}))


def test_inbox_jobs_run_to_settlement_once_each(tmp_path):
    inbox = tmp_path / "inbox"
    for i in range(2):
        write_job(inbox, f"job{i}", seed=i)
    (inbox / "broken.yaml").write_text("steps: -3\n")
    pinpoint = PinpointConfig(artifacts_dir=str(tmp_path / "artifacts"))
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "home"))
    stats = drive(instance, pinpoint, JobInbox(path=str(inbox)), workers=2)
    assert not stats.failed
    assert stats.runs == 2 * (1 + 3 + 1)  # dataset, one run per solver, outcome
    job_ids = sorted(compute_job_id(load_spec(inbox / f"job{i}.yaml")) for i in range(2))
    assert sorted(instance.get_dynamic_partitions("jobs")) == job_ids
    for job_id in job_ids:
        report = json.loads(pinpoint.paths().report(job_id).read_text())
        assert {s["solver_id"]: s["outcome"] for s in report["solvers"]} == {
            "honest": "paid", "lazy": "slashed", "bitflip": "slashed"}
    checked = audit(instance, pinpoint, job_ids)
    assert checked["problems"] == [] and checked["supply_conserved"]
    assert checked["materializations"] == 2 * (1 + 3 + 3 + 1)
    with Ledger(pinpoint.paths().ledger) as ledger:
        settles = [tx for tx in ledger.history() if tx.kind == "settle"]
        assert sorted(tx.job_id for tx in settles) == job_ids
    # Every run carries its job's id: the sensor's run requests are tagged with it.
    runs = instance.get_runs()
    assert len(runs) == stats.runs
    assert all(r.tags[JOB_ID_TAG] == r.tags["dagster/partition"].split("|")[0] for r in runs)
    assert {r.tags[JOB_ID_TAG] for r in runs} == set(job_ids)
    # Ticking again launches nothing: every run key was used, every job is concluded.
    assert drive(instance, pinpoint, JobInbox(path=str(inbox)), workers=1).runs == 0
