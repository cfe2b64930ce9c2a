"""The fleet as a user runs it: a real ``dagster dev`` (webserver and daemon), a job spec dropped in
the inbox while it runs, and the job settled by the sensor's runs, with nothing called in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipelines.test_cli import BIN, REPO, free_port, graphql
from verification.spec import compute_job_id, load_spec

pytestmark = pytest.mark.slow
JOB = {"preset": "minimal", "name": "inbox-live", "steps": 8, "checkpoint_interval": 4,
       "solvers": ["honest", {"solver_id": "flipper", "strategy": "bitflip", "params": {"step": 5}}]}
DEADLINE_S = 900  # generous: the daemon, four runs each in a fresh process, on a loaded 2-core machine


def wait_until(check, what: str, proc: subprocess.Popen, log: Path, deadline_s: float):
    """``check()`` until it returns something truthy; fails naming ``what`` (and the log's tail)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        assert proc.poll() is None, f"dagster dev exited early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not happen in time:\n{log.read_text()[-3000:]}"
        time.sleep(2)


def test_a_spec_dropped_in_the_inbox_of_a_running_dagster_dev_settles(tmp_path):
    home, artifacts, inbox = tmp_path / "home", tmp_path / "artifacts", tmp_path / "inbox"
    home.mkdir()
    inbox.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    workspace = tmp_path / "workspace.yaml"  # the fleet location only, from the repository
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "pipelines.fleet_definitions", "working_directory": str(REPO),
        "location_name": "pinpoint-fleet"}}]}))
    env = {**os.environ, "DAGSTER_HOME": str(home), "PINPOINT_ARTIFACTS": str(artifacts),
           "PINPOINT_INBOX": str(inbox), "PYTHONPATH": str(REPO)}
    port, log = free_port(), tmp_path / "dagster-dev.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.launch", str(BIN / "dagster"), "dev", "-h",
                                 "127.0.0.1", "-p", str(port), "-w", str(workspace)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def serves_the_sensor():
            try:
                data = graphql(port, "{ repositoriesOrError { ... on RepositoryConnection { nodes { "
                                     "sensors { name } } } } }")
            except OSError:
                return None
            nodes = data.get("data", {}).get("repositoriesOrError", {}).get("nodes", [])
            return any(s["name"] == "job_inbox_sensor" for n in nodes for s in n["sensors"])

        wait_until(serves_the_sensor, "the fleet location loading", proc, log, DEADLINE_S)
        spec_file = inbox / "live.yaml"
        spec_file.write_text(yaml.safe_dump(JOB))  # dropped while dagster dev runs
        report_path = artifacts / "runs" / compute_job_id(load_spec(spec_file)) / "report.json"
        wait_until(report_path.exists, "the job's report", proc, log, DEADLINE_S)
        report = json.loads(report_path.read_text())
        assert {s["solver_id"]: s["outcome"] for s in report["solvers"]} == {"honest": "paid", "flipper": "slashed"}
        assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # only the process group this test started
        proc.wait(timeout=60)
