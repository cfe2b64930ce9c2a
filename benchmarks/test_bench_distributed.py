"""Data-parallel training (``verification.data_parallel``) next to one process.

Group ``train-step``, ``extra_info["mode"] = "data-parallel"``. One benchmark round is one whole
job of ``T = DP_STEPS`` steps (``extra_info["unit"] = "job"``) on the MLP with ``micro_batches = 2``:

``world_size = 2``
    ``train_data_parallel`` on 2 spawned processes (gloo on 127.0.0.1, one thread each): start-up
    (spawn, imports, rendezvous, loading the data) plus the training loop;
``world_size = 1``
    ``solver.train`` on this process on the same spec: the reference the 2-process trace must equal
    bit for bit (asserted here too).

``extra_info["train_s"]`` is the training loop alone (rank 0's ``TrainingRun.seconds``, fastest
round) and ``step_s = train_s / T``: the per-step cost of the all-gather next to the step itself.
Skips at once when this machine cannot spawn processes or listen on 127.0.0.1.
"""

from __future__ import annotations

import multiprocessing
import os
import socket

import pytest
import torch.distributed as dist

from benchmarks import get_sizes
from benchmarks.conftest import DEFAULT_WIDTH, describe_program
from proofs.types import SolverId
from verification.data_parallel import LOOPBACK, train_data_parallel
from verification.solver import TrainingRun, train
from verification.spec import SolverSpec, compute_job_id
from verification.strategies import Honest

DP_STEPS, DP_INTERVAL = 40, 8
WIDTHS = get_sizes((DEFAULT_WIDTH,), (512, 2048))
ROUNDS = 3
SPAWN_PROBE_TIMEOUT_S = 10.0
HONEST = SolverSpec(SolverId("honest"), "honest")


def get_spawn_obstacle() -> str | None:
    """Why 2-process training cannot run here (no gloo, no loopback socket, no spawn), or None."""
    if not (dist.is_available() and dist.is_gloo_available()):
        return "torch.distributed with gloo is not available"
    try:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, 0))
        probe = multiprocessing.get_context("spawn").Process(target=os.getpid)
        probe.start()
        probe.join(SPAWN_PROBE_TIMEOUT_S)
    except OSError as exc:
        return f"cannot listen on {LOOPBACK} or spawn a process: {exc}"
    if probe.is_alive():
        probe.kill()
        probe.join()
        return f"a spawned process did not finish within {SPAWN_PROBE_TIMEOUT_S} s"
    return None if probe.exitcode == 0 else f"a spawned process exited with code {probe.exitcode}"


@pytest.fixture(scope="module")
def can_spawn():
    obstacle = get_spawn_obstacle()
    if obstacle:
        pytest.skip(obstacle)


def dp_info(program, world_size: int, runs: list[TrainingRun]) -> dict:
    train_s = min(run.seconds for run in runs)
    return {**describe_program(program), "mode": "data-parallel", "world_size": world_size,
            "unit": "job", "T": DP_STEPS, "k": DP_INTERVAL, "micro_batches": program.spec.micro_batches,
            "train_s": train_s, "step_s": train_s / DP_STEPS}


@pytest.mark.benchmark(group="train-step")
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("world_size", [1, 2])
def test_train_data_parallel(benchmark, can_spawn, bench_program, bench_dataset, bench_run,
                             tmp_path, world_size, width):
    program = bench_program("mlp", width, micro_batches=2, steps=DP_STEPS,
                            checkpoint_interval=DP_INTERVAL, device="cpu")
    spec, job_id, path = program.spec, compute_job_id(program.spec), tmp_path / "checkpoints.zarr"
    runs: list[TrainingRun] = []

    def run_job() -> TrainingRun:
        if world_size == 1:
            run = train(program, Honest(), path, job_id, HONEST.solver_id)
        else:
            run = train_data_parallel(spec, bench_dataset(spec), HONEST.strategy, HONEST.params, path,
                                      job_id, HONEST.solver_id, world_size=world_size)
        runs.append(run)
        return run

    run = benchmark.pedantic(run_job, rounds=ROUNDS, iterations=1)
    benchmark.extra_info.update(dp_info(program, world_size, runs))
    assert run.roots == bench_run(program, HONEST).roots
