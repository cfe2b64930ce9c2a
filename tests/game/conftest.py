"""A tiny job for the game's tests: an MLP with 4 hidden units, batches of 8, T = 24, k = 6.

``game_runs(strategy)`` trains (once per strategy) and ``play(...)`` runs one dispute game between
two trained runs; ``honest_run`` is the honest trace every adversary is played against.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest

from proofs.encoding import trace_root
from tests.clocks import FakeClock
from verification.dispute import DisputeGame
from verification.providers import TraceProvider
from verification.solver import train
from verification.spec import get_preset
from verification.strategies import Honest


@pytest.fixture(scope="session")
def game_spec():
    return dataclasses.replace(get_preset("minimal"), name="game", model_params={"hidden": 4},
                               batch_size=8, steps=24, checkpoint_interval=6)


@pytest.fixture(scope="session")
def game_program(game_spec, minimal_dataset):
    from verification.execution.program import load_program

    return load_program(game_spec, minimal_dataset[0])


@pytest.fixture(scope="session")
def game_runs(game_program, tmp_path_factory):
    """``get(strategy) -> TrainingRun``, trained once per strategy (cached by its repr)."""
    cache = {}
    root = tmp_path_factory.mktemp("game-runs")

    def get(strategy):
        key = repr(strategy)
        if key not in cache:
            cache[key] = train(game_program, strategy, root / f"run{len(cache)}.zarr", "job", strategy.name)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def honest_run(game_runs):
    return game_runs(Honest())


def play(program, solver_run, solver_strategy, challenger_run, challenger_strategy, arity=2,
         budget_s=60.0, solver_provider=TraceProvider, challenger_provider=TraceProvider, clock=None,
         reference=None):
    """One game of ``solver_run`` (under its strategy) against ``challenger_run``, on a fake clock
    (``tests.clocks``) unless ``clock`` is given: budgets never depend on the machine's speed.
    ``budget_s`` is seconds or a ``verification.clock.Budget``, re-measured on ``reference``."""
    game = DisputeGame(program, solver_provider("solver", solver_run, program, solver_strategy),
                       challenger_provider("challenger", challenger_run, program, challenger_strategy),
                       trace_root(list(solver_run.roots)), arity, budget_s, clock=clock or FakeClock(),
                       reference=reference)
    return game, game.play(program.spec.num_checkpoints - 1, program.spec.checkpoint_interval)


@pytest.fixture
def release():
    """An event a hung test party waits on; set at teardown, or after 30 s so that a game waiting
    for the hung call still ends."""
    event = threading.Event()
    valve = threading.Timer(30.0, event.set)
    valve.start()
    yield event
    event.set()
    valve.cancel()
