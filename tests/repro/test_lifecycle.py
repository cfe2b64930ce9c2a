"""Reproducible jobs run end to end: shard, train, commit, spot-check, dispute, settle."""

from __future__ import annotations

import dataclasses

import pytest

from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import SolverSpec, get_preset

JOBS = {
    "cnn": {"model": "cnn", "model_params": {"channels": 2}, "dataset": "digits"},
    "transformer": {"model": "transformer", "model_params": {"n_layer": 1, "n_head": 2, "n_embd": 16},
                    "dataset": "text", "dataset_params": {"block": 8, "max_bytes": 8_192}, "batch_size": 8},
}
FLIPPED = {"cnn": "param/conv1.weight", "transformer": "param/wte.weight"}


@pytest.mark.parametrize("model", sorted(JOBS))
def test_reproducible_job_runs_end_to_end(model, tmp_path):
    spec = dataclasses.replace(
        get_preset("minimal"), name=f"repro-{model}", mode="reproducible", device="cpu", steps=8,
        checkpoint_interval=4, spot_check_policy="replicate", **JOBS[model],
        solvers=(SolverSpec("honest", "honest"), SolverSpec("bitflip", "bitflip", {"step": 6, "tensor": FLIPPED[model]})))
    report = run_job(spec, ArtifactPaths(tmp_path))
    solvers = {s["solver_id"]: s for s in report["solvers"]}
    assert report["spec"]["mode"] == "reproducible" and report["spec"]["model"] == model
    assert solvers["honest"]["outcome"] == "paid" and not solvers["honest"]["spot_check"]["mismatch"]
    assert solvers["bitflip"]["outcome"] == "slashed"
    assert solvers["bitflip"]["dispute"]["first_divergent_step"] == 6
