"""End to end through the real command-line tools: Dagster CLI materialization and the webserver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from verification.spec import compute_job_id, get_preset, spec_from_dict

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture()
def cli_env(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "PINPOINT_PRESET": "minimal",
           "PINPOINT_ARTIFACTS": str(tmp_path / "artifacts"), "PYTHONPATH": str(REPO)}
    return env, tmp_path / "artifacts"


def test_cli_materializes_the_whole_graph_and_a_rerun_is_deterministic(cli_env):
    env, artifacts = cli_env
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "pipelines.definitions", "--select", "*",
           "--partition", compute_job_id(get_preset("minimal"))]  # one job = one partition key
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report_path = artifacts / "runs" / compute_job_id(get_preset("minimal")) / "report.json"
    first = json.loads(report_path.read_text())
    assert {s["solver_id"]: s["outcome"] for s in first["solvers"]} == {
        "honest": "paid", "lazy": "slashed", "bitflip": "slashed"}
    assert first["ledger"]["supply_before"] == first["ledger"]["supply_after"]
    # A second run of the same job (another process) reproduces every root and settles nothing.
    again = subprocess.run([sys.executable, "-m", "verification", "run", "--preset", "minimal"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(report_path.read_text())
    assert [s["trace_root"] for s in second["solvers"]] == [s["trace_root"] for s in first["solvers"]]
    assert second["ledger"]["already_settled"] is True
    assert second["ledger"]["balances"] == first["ledger"]["balances"]
    assert "already settled" in again.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_webserver_serves_the_asset_graph_and_checks(cli_env):
    env, _ = cli_env
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.launch", str(BIN / "dagster-webserver"), "-h", "127.0.0.1",
         "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                data = graphql(port, "{ assetNodes { assetKey { path } groupName description "
                                     "assetChecksOrError { ... on AssetChecks { checks { name } } } } }")
                if data.get("data", {}).get("assetNodes"):
                    break
            except OSError:
                pass
            assert proc.poll() is None, "webserver exited early"
            assert time.monotonic() < deadline, "webserver did not serve the asset graph in time"
            time.sleep(1)
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["data"]["assetNodes"]}
        assert {"dataset_shards", "training_runs", "commitments", "spot_checks", "disputes",
                "settlement", "job_report"} <= set(nodes)
        assert all(n["groupName"] and n["description"] for n in nodes.values())
        checks = {c["name"] for n in nodes.values() for c in n["assetChecksOrError"].get("checks", [])}
        assert {"signatures_valid", "supply_conserved"} <= checks
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # only the process group we started
        proc.wait(timeout=30)
    assert proc.returncode is not None


PLUGIN_JOB = {
    "preset": "minimal", "name": "plugin-program", "steps": 16, "checkpoint_interval": 4,
    "dataset": "tests.programs.layernorm_mlp:data", "model": "tests.programs.layernorm_mlp:model",
    "loss": "tests.programs.layernorm_mlp:loss", "optimizer": "adamw", "lr": 0.003,
    "schedule": "cosine", "schedule_params": {"warmup_steps": 2},
    "solvers": ["honest", {"solver_id": "mallet", "strategy": "bitflip", "params": {"step": 6, "tensor": "param/inp.weight"}}],
}


def test_cli_materializes_a_users_own_program(cli_env, tmp_path):
    """A plug-in model, loss and dataset with AdamW through Dagster's CLI: the same job, ids and
    outcome as through the Python API."""
    env, artifacts = cli_env
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump(PLUGIN_JOB))
    env = {**env, "PINPOINT_SPEC": str(spec_path)}
    job_id = subprocess.run([sys.executable, "-m", "pipelines.job_key"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300, check=True).stdout.strip()
    assert job_id == compute_job_id(spec_from_dict(PLUGIN_JOB))
    cmd = [str(BIN / "dagster"), "asset", "materialize", "-m", "pipelines.definitions", "--select", "*",
           "--partition", job_id]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((artifacts / "runs" / compute_job_id(spec_from_dict(PLUGIN_JOB)) / "report.json").read_text())
    solvers = {s["solver_id"]: s for s in report["solvers"]}
    assert (solvers["honest"]["outcome"], solvers["mallet"]["outcome"]) == ("paid", "slashed"), \
        json.dumps({k: v for k, v in solvers["mallet"].items() if k not in ("trace_root", "final_state_root")}) + \
        (open(solvers["mallet"]["dispute"]["transcript"]).read()[-6000:] if solvers["mallet"].get("dispute") else "")
    assert solvers["mallet"]["dispute"]["first_divergent_step"] == 6
    assert report["spec"]["optimizer"] == "adamw" and report["spec"]["model"] == PLUGIN_JOB["model"]
