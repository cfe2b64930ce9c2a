"""A rerun of the same job reuses its training instead of training again, only when it can be
trusted: same job, every solver, each finished store read back against its committed roots, this
machine's environment."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.assets.training import get_reusable_training
from verification.execution.program import compute_environment, is_same_environment, load_program
from verification.job import resolve_job
from verification.lifecycle import Timed
from verification.solver import train
from verification.spec import compute_job_id
from verification.strategies import Honest


@pytest.fixture()
def previous(tiny_spec, minimal_dataset, tmp_path):
    program = load_program(tiny_spec, minimal_dataset[0])
    job_id = compute_job_id(tiny_spec)
    run = train(program, Honest(), tmp_path / "honest.zarr", job_id, "honest")
    return Timed({"honest": run}, 1.5, job_id)


def test_the_same_jobs_finished_training_is_reused(previous, tiny_spec):
    assert get_reusable_training(previous, resolve_job(tiny_spec)) is previous


def test_nothing_else_is_reused(previous, tiny_spec):
    assert get_reusable_training(None, resolve_job(tiny_spec)) is None
    assert get_reusable_training("a pickle of something else", resolve_job(tiny_spec)) is None
    other_job = dataclasses.replace(tiny_spec, seed=tiny_spec.seed + 1)
    assert get_reusable_training(previous, resolve_job(other_job)) is None  # another job id
    more_solvers = dataclasses.replace(tiny_spec, solvers=(*tiny_spec.solvers, dataclasses.replace(
        tiny_spec.solvers[0], solver_id="second")))
    assert get_reusable_training(Timed(previous.value, 1.5, compute_job_id(more_solvers)), resolve_job(more_solvers)) is None


def test_a_corrupted_store_or_another_machine_is_trained_again(previous, tiny_spec):
    run = previous.value["honest"]
    elsewhere = dataclasses.replace(run, environment=run.environment.replace("cpu=", "cpu=another-"))
    assert get_reusable_training(Timed({"honest": elsewhere}, 1.5, previous.job_id), resolve_job(tiny_spec)) is None
    row = next(p for p in sorted((__import__("pathlib").Path(run.checkpoint_path) / "rows").glob("c.*.0")))
    data = bytearray(row.read_bytes())
    data[-1] ^= 1
    row.write_bytes(bytes(data))
    assert get_reusable_training(previous, resolve_job(tiny_spec)) is None


def test_the_thread_count_is_the_solver_processs_own():
    import torch

    here = compute_environment(torch.device("cpu"))
    assert is_same_environment(here.replace(f"threads={torch.get_num_threads()}", "threads=7"), torch.device("cpu"))
    assert not is_same_environment(here.replace("torch=", "torch=0.0+"), torch.device("cpu"))
