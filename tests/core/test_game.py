"""The dispute game on real training runs: every cheater caught at its step, honest parties safe."""

import pytest

from proofs.encoding import trace_root
from verification.dispute import DisputeGame
from verification.providers import ProviderError, TraceProvider
from verification.solver import train
from verification.strategies import BitFlip, Honest, Lazy


@pytest.fixture(scope="module")
def runs(minimal_program, tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    strategies = {"honest": Honest(), "lazy": Lazy(start=9, length=8), "bitflip": BitFlip(step=21),
                  "late": BitFlip(step=40)}
    return {name: (train(minimal_program, s, d / f"{name}.zarr", "job", name), s)
            for name, s in strategies.items()}


def play(program, solver, challenger, arity=2, operator_level=None):
    (s_run, s_strategy), (c_run, c_strategy) = solver, challenger
    game = DisputeGame(program, TraceProvider("solver", s_run, program, s_strategy),
                       TraceProvider("challenger", c_run, program, c_strategy),
                       trace_root(list(s_run.roots)), arity, 60.0, operator_level)
    return game, game.play(program.spec.num_checkpoints - 1, program.spec.checkpoint_interval)


@pytest.mark.parametrize("cheater", ["lazy", "bitflip", "late"])
@pytest.mark.parametrize("arity", [2, 3, 40])
def test_cheater_loses_at_its_divergence_step(minimal_program, runs, cheater, arity):
    game, result = play(minimal_program, runs[cheater], runs["honest"], arity)
    assert result.winner == "challenger"
    assert result.first_divergent_step == runs[cheater][0].injected_divergence_step
    # Level 3: the referee rules on one operator, never on the whole step.
    assert result.operator is not None and result.referee_ops <= 1
    assert [m.kind for m in game.moves][-1] == "rule"


@pytest.mark.parametrize("cheater", ["lazy", "bitflip", "late"])
def test_without_level_3_the_referee_reexecutes_the_step(minimal_program, runs, cheater):
    game, result = play(minimal_program, runs[cheater], runs["honest"], operator_level=False)
    assert result.winner == "challenger"
    assert result.first_divergent_step == runs[cheater][0].injected_divergence_step
    assert result.operator is None and result.referee_ops > 1
    assert [m.kind for m in game.moves][-1] == "rule"


@pytest.mark.parametrize("false_challenger", ["lazy", "bitflip"])
def test_honest_solver_beats_a_false_challenger(minimal_program, runs, false_challenger):
    _, result = play(minimal_program, runs["honest"], runs[false_challenger])
    assert result.winner == "solver"


def test_transcript_is_hash_chained(minimal_program, runs):
    game, result = play(minimal_program, runs["bitflip"], runs["honest"])
    transcript = game.transcript(result)
    moves = transcript["moves"]
    assert all(b["previous"] == a["move_id"] for a, b in zip(moves, moves[1:], strict=False))
    assert len({m["move_id"] for m in moves}) == len(moves)


class Silent(TraceProvider):
    def commit_steps(self, start, end):
        raise ProviderError("no answer")


def test_a_party_that_stops_answering_forfeits(minimal_program, runs):
    run, strategy = runs["bitflip"]
    honest_run, _ = runs["honest"]
    game = DisputeGame(minimal_program, Silent("solver", run, minimal_program, strategy),
                       TraceProvider("challenger", honest_run, minimal_program, Honest()),
                       trace_root(list(run.roots)), 2, 60.0)
    result = game.play(minimal_program.spec.num_checkpoints - 1, minimal_program.spec.checkpoint_interval)
    assert result.winner == "challenger" and result.reason.startswith("forfeit")


def test_a_forged_checkpoint_root_forfeits(minimal_program, runs):
    run, strategy = runs["bitflip"]

    class Forger(TraceProvider):
        def checkpoint_root(self, index):
            root, proof = super().checkpoint_root(index)
            return bytes(32), proof

    game = DisputeGame(minimal_program, Forger("solver", run, minimal_program, strategy),
                       TraceProvider("challenger", runs["honest"][0], minimal_program, Honest()),
                       trace_root(list(run.roots)), 2, 60.0)
    result = game.play(minimal_program.spec.num_checkpoints - 1, minimal_program.spec.checkpoint_interval)
    assert result.winner == "challenger" and "invalid trace proof" in result.reason
