"""Data-parallel training on 2 processes (gloo, 127.0.0.1) is verified by the one-process game.

The 2-process (and 4-process) trace equals a 1-process ``train`` of the same spec bit for bit; a
data-parallel cheater is caught by a 1-process honest challenger and referee at its injected step;
bad configurations and drifting replicas fail with errors that name the values.
"""

import dataclasses
import multiprocessing
import socket

import pytest
import torch.distributed as dist

from proofs.encoding import trace_root
from verification.data_parallel import LOOPBACK, DataParallelError, train_data_parallel
from verification.dispute import DisputeGame
from verification.execution.checkpoints import read_checkpoint, read_roots
from verification.execution.program import load_program
from verification.providers import TraceProvider
from verification.solver import train
from verification.spec import SolverSpec, SpecError, get_preset
from verification.strategies import BitFlip, Honest

pytestmark = [
    pytest.mark.slow,  # spawns 2- and 4-process jobs: ~25 s on 2 cores
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                       reason="torch.distributed with gloo is not available"),
]

WORLD_SIZE = 2
FLIP_STEP = 6  # inside the second checkpoint interval (steps 5..8)
STRATEGIES = {"honest": ({}, Honest()), "bitflip": ({"step": FLIP_STEP}, BitFlip(FLIP_STEP))}


def make_spec(world_size: int):
    return dataclasses.replace(get_preset("minimal"), name="dp", micro_batches=world_size, steps=16,
                               checkpoint_interval=4, device="cpu",
                               solvers=(SolverSpec("honest", "honest"),))


@pytest.fixture(scope="module")
def dp_spec():
    return make_spec(WORLD_SIZE)


@pytest.fixture(scope="module")
def dataset(minimal_dataset):
    return minimal_dataset[0]


@pytest.fixture(scope="module")
def program(dp_spec, dataset):
    return load_program(dp_spec, dataset)


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """``get(world_size, strategy, processes)``: a run of the job with ``micro_batches = world_size``
    on ``world_size`` processes (data-parallel) or on this one (``solver.train``), made once."""
    cache = {}

    def get(world_size: int, name: str, processes: int):
        key = (world_size, name, processes)
        if key not in cache:
            spec, (params, strategy) = make_spec(world_size), STRATEGIES[name]
            path = tmp_path_factory.mktemp("run") / "checkpoints.zarr"
            if processes == 1:
                cache[key] = train(load_program(spec, dataset), strategy, path, "job", name)
            else:
                cache[key] = train_data_parallel(spec, dataset, name, params, path, "job", name,
                                                 world_size=world_size)
        return cache[key]

    return get


# With 4 ranks the all-gather order matters: summing the micro-batches as 0,2,1,3 instead of
# 0,1,2,3 already changes the bits of this job (2 terms commute; 3 or more do not associate).
@pytest.mark.parametrize("world_size", [WORLD_SIZE, 4])
def test_data_parallel_trace_equals_one_process_bit_for_bit(runs, world_size):
    dp, single = runs(world_size, "honest", world_size), runs(world_size, "honest", 1)
    assert dp.roots == single.roots
    assert dp.losses == single.losses
    assert read_roots(dp.checkpoint_path) == list(dp.roots)
    last = read_checkpoint(dp.checkpoint_path, len(dp.roots) - 1)
    assert last.step == dp.steps == 16
    assert last.root(make_spec(world_size).hashing) == single.final_root


def test_cheater_trace_is_the_one_process_cheater_trace(runs):
    assert runs(WORLD_SIZE, "bitflip", WORLD_SIZE).roots == runs(WORLD_SIZE, "bitflip", 1).roots
    assert runs(WORLD_SIZE, "bitflip", WORLD_SIZE).roots != runs(WORLD_SIZE, "honest", WORLD_SIZE).roots


def play(program, solver_run, solver_strategy, challenger_run, challenger_strategy):
    """The one-process game: both parties replay on ``program``, the referee re-executes there."""
    game = DisputeGame(program, TraceProvider("solver", solver_run, program, solver_strategy),
                       TraceProvider("challenger", challenger_run, program, challenger_strategy),
                       trace_root(list(solver_run.roots)), program.spec.dissection_arity, 60.0)
    return game.play(program.spec.num_checkpoints - 1, program.spec.checkpoint_interval)


def test_one_process_game_catches_a_data_parallel_cheater_at_its_step(program, runs):
    cheater = runs(WORLD_SIZE, "bitflip", WORLD_SIZE)
    result = play(program, cheater, BitFlip(FLIP_STEP), runs(WORLD_SIZE, "honest", 1), Honest())
    assert result.winner == "challenger"
    assert result.first_divergent_step == cheater.injected_divergence_step == FLIP_STEP


def test_data_parallel_honest_solver_beats_a_one_process_false_challenger(program, runs):
    result = play(program, runs(WORLD_SIZE, "honest", WORLD_SIZE), Honest(),
                  runs(WORLD_SIZE, "bitflip", 1), BitFlip(FLIP_STEP))
    assert result.winner == "solver"


def test_micro_batches_must_equal_world_size(dp_spec, dataset, tmp_path):
    spec = dataclasses.replace(dp_spec, micro_batches=1)
    with pytest.raises(SpecError, match=r"micro_batches=1 and world_size=2"):
        train_data_parallel(spec, dataset, "honest", {}, tmp_path / "c.zarr", "job", "s", world_size=2)
    assert not (tmp_path / "c.zarr").exists()


def test_a_busy_master_port_is_named(dp_spec, dataset, tmp_path):
    with socket.socket() as busy:
        busy.bind((LOOPBACK, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DataParallelError, match=f"{LOOPBACK}:{port}"):
            train_data_parallel(dp_spec, dataset, "honest", {}, tmp_path / "c.zarr", "job", "s",
                                master_port=port)


def test_replicas_that_drift_apart_fail_the_run(dp_spec, dataset, tmp_path):
    with pytest.raises(DataParallelError, match=r"(?s)rank 0 failed.*rank\(s\) \[1\]"):
        train_data_parallel(dp_spec, dataset, "tests.distributed.strategies:FlipOnRank",
                            {"rank": 1, "step": FLIP_STEP}, tmp_path / "c.zarr", "job", "s")
    assert not (tmp_path / "c.zarr").exists()


def test_a_crashed_worker_stops_the_others_and_is_named(dp_spec, dataset, tmp_path):
    before = set(multiprocessing.active_children())  # another test's processes in this pytest worker
    with pytest.raises(DataParallelError, match=r"(?s)rank 1 failed.*WorkerCrash: rank 1 crashes at step 3"):
        train_data_parallel(dp_spec, dataset, "tests.distributed.strategies:CrashOnRank",
                            {"rank": 1, "step": 3}, tmp_path / "c.zarr", "job", "s")
    assert set(multiprocessing.active_children()) <= before  # no rank of this run is left
    assert not (tmp_path / "c.zarr").exists()


def test_the_root_cause_is_the_rank_that_did_not_merely_lose_a_peer():
    from verification.data_parallel import compute_root_cause

    lost = "Traceback ...\nverification.execution.distributed.PeerLost: a peer left the all-gather"
    crash = "Traceback ...\nWorkerCrash: rank 1 crashes at step 3"
    assert compute_root_cause(0, lost, {1: crash}) == (1, crash)
    assert compute_root_cause(1, crash, {0: lost}) == (1, crash)
    assert compute_root_cause(0, lost, {}) == (0, lost)  # nothing better known
