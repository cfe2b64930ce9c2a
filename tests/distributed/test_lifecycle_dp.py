"""A data-parallel job through the whole lifecycle: same job id, same roots, same verdicts."""

import dataclasses

import pytest

from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import SolverSpec, SpecError, compute_job_id, get_preset, validate_spec

pytestmark = pytest.mark.slow


def test_data_parallel_job_matches_the_one_process_job(tmp_path):
    one = dataclasses.replace(get_preset("minimal"), micro_batches=2, steps=16, checkpoint_interval=4,
                              solvers=(SolverSpec("honest"), SolverSpec("cheat", "bitflip", {"step": 6})))
    two = dataclasses.replace(one, data_parallel=True)
    assert compute_job_id(one) == compute_job_id(two)
    a = run_job(one, ArtifactPaths(tmp_path / "one"))
    b = run_job(two, ArtifactPaths(tmp_path / "two"))
    assert [s["trace_root"] for s in a["solvers"]] == [s["trace_root"] for s in b["solvers"]]
    cheat = {s["solver_id"]: s for s in b["solvers"]}["cheat"]
    assert cheat["outcome"] == "slashed" and cheat["dispute"]["first_divergent_step"] == 6


def test_data_parallel_needs_more_than_one_micro_batch():
    with pytest.raises(SpecError, match="micro_batches >= 2"):
        validate_spec(dataclasses.replace(get_preset("minimal"), data_parallel=True))
