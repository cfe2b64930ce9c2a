"""Data-parallel training on 2 processes (gloo, 127.0.0.1) is verified by the one-process game.

The 2-process trace equals a 1-process ``train`` of the same spec bit for bit; a data-parallel
cheater is caught by a 1-process honest challenger and referee at its injected step; bad
configurations and drifting replicas fail with errors that name the values.
"""

import dataclasses
import socket

import pytest
import torch.distributed as dist

from proofs.encoding import trace_root
from verification.dispute import DisputeGame
from verification.execution.checkpoints import read_checkpoint, read_roots
from verification.execution.distributed import LOOPBACK, DataParallelError, train_data_parallel
from verification.execution.program import load_program
from verification.providers import TraceProvider
from verification.solver import train
from verification.spec import SolverSpec, SpecError, get_preset
from verification.strategies import BitFlip, Honest

pytestmark = [
    pytest.mark.slow,  # spawns 2-process jobs: ~20 s on 2 cores
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                       reason="torch.distributed with gloo is not available"),
]

WORLD_SIZE = 2
FLIP_STEP = 6  # inside the second checkpoint interval (steps 5..8)


@pytest.fixture(scope="module")
def dp_spec():
    return dataclasses.replace(get_preset("minimal"), name="dp", micro_batches=WORLD_SIZE, steps=16,
                               checkpoint_interval=4, device="cpu",
                               solvers=(SolverSpec("honest", "honest"),))


@pytest.fixture(scope="module")
def dataset(minimal_dataset):
    return minimal_dataset[0]


@pytest.fixture(scope="module")
def program(dp_spec, dataset):
    return load_program(dp_spec, dataset)


@pytest.fixture(scope="module")
def one_process(program, tmp_path_factory):
    """1-process runs of the same spec (``micro_batches = 2``): honest and a bitflip cheater."""
    d = tmp_path_factory.mktemp("one")
    return {"honest": train(program, Honest(), d / "honest.zarr", "job", "honest"),
            "bitflip": train(program, BitFlip(FLIP_STEP), d / "bitflip.zarr", "job", "bitflip")}


@pytest.fixture(scope="module")
def two_process(dp_spec, dataset, tmp_path_factory):
    d = tmp_path_factory.mktemp("dp")
    return {name: train_data_parallel(dp_spec, dataset, name, params, d / f"{name}.zarr", "job", name,
                                      world_size=WORLD_SIZE)
            for name, params in (("honest", {}), ("bitflip", {"step": FLIP_STEP}))}


def test_two_process_trace_equals_one_process_bit_for_bit(program, one_process, two_process):
    dp, single = two_process["honest"], one_process["honest"]
    assert dp.roots == single.roots
    assert dp.losses == single.losses
    assert read_roots(dp.checkpoint_path) == list(dp.roots)
    last = read_checkpoint(dp.checkpoint_path, len(dp.roots) - 1)
    assert last.step == dp.steps == 16
    assert last.root(program.spec.hash_name) == single.final_root


def test_cheater_trace_is_the_one_process_cheater_trace(one_process, two_process):
    assert two_process["bitflip"].roots == one_process["bitflip"].roots
    assert two_process["bitflip"].roots != two_process["honest"].roots


def play(program, solver_run, solver_strategy, challenger_run, challenger_strategy):
    """The one-process game: both parties replay on ``program``, the referee re-executes there."""
    game = DisputeGame(program, TraceProvider("solver", solver_run, program, solver_strategy),
                       TraceProvider("challenger", challenger_run, program, challenger_strategy),
                       trace_root(list(solver_run.roots)), program.spec.dissection_arity, 60.0)
    return game.play(program.spec.num_checkpoints - 1, program.spec.checkpoint_interval)


def test_one_process_game_catches_a_data_parallel_cheater_at_its_step(program, one_process, two_process):
    cheater = two_process["bitflip"]
    result = play(program, cheater, BitFlip(FLIP_STEP), one_process["honest"], Honest())
    assert result.winner == "challenger"
    assert result.first_divergent_step == cheater.injected_divergence_step == FLIP_STEP
    assert result.referee_ops > 0


def test_data_parallel_honest_solver_beats_a_one_process_false_challenger(program, one_process, two_process):
    result = play(program, two_process["honest"], Honest(), one_process["bitflip"], BitFlip(FLIP_STEP))
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
