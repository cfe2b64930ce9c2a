"""The rules of level 3 and of the clock: a party that answers wrongly, late or not at all loses."""

import dataclasses
import functools
import json
import threading

import numpy as np
import pytest

from tests.clocks import FakeClock
from verification.dispute import (
    TRANSITIONS,
    Status,
    compute_transitions,
    render_transcript_markdown,
    save_transcript,
)
from verification.execution.opgraph import (
    COMMIT_OP,
    OpRecord,
    OpsCommitment,
    build_trace,
    derive_schedule,
    record_step,
)
from verification.providers import ProviderError, TraceProvider
from verification.strategies import BitFlip, Honest, OpCorrupt, false_challenger

from .conftest import play

CHEATER = OpCorrupt(step=10, op=7)


@pytest.fixture(scope="module")
def cheater_run(game_runs):
    return game_runs(CHEATER)


def solver_plays(game_program, cheater_run, honest_run, provider, **kwargs):
    return play(game_program, cheater_run, CHEATER, honest_run, Honest(), solver_provider=provider, **kwargs)


class ForgedDigest(TraceProvider):
    def op_digest(self, index):
        digest, proof = super().op_digest(index)
        return bytes(32), proof


class WrongCount(TraceProvider):
    def commit_ops(self, step):
        commitment = super().commit_ops(step)
        return OpsCommitment(commitment.root, commitment.count + 1)


class ForgedRecord(TraceProvider):
    def open_op(self, index):
        return dataclasses.replace(super().open_op(index), outputs=("33" * 32,))


class ForgedOperands(TraceProvider):
    def open_operands(self, index):
        operands = super().open_operands(index)
        return dataclasses.replace(operands, arrays=tuple(None if a is None else np.zeros_like(a)
                                                          for a in operands.arrays))


class Silent(TraceProvider):
    def commit_ops(self, step):
        raise ProviderError("no answer")


SLOW_CLOCK = FakeClock()


class Slow(TraceProvider):
    """Its operator commitment takes 0.3 s on the game's (fake) clock."""

    def commit_ops(self, step):
        SLOW_CLOCK.advance(0.3)
        return super().commit_ops(step)


@pytest.mark.parametrize(("provider", "reason"), [
    (ForgedDigest, "invalid op proof"),
    (WrongCount, "invalid op proof"),
    (ForgedRecord, "does not match its committed digest"),
    (ForgedOperands, "does not match its agreed hash"),
    (Silent, "no answer"),
])
def test_a_solver_that_answers_level_3_wrongly_forfeits(game_program, cheater_run, honest_run, provider, reason):
    _, result = solver_plays(game_program, cheater_run, honest_run, provider)
    assert result.winner == "challenger" and result.reason.startswith("forfeit: solver")
    assert reason in result.reason
    assert result.first_divergent_step == 10


class HonestPrefix(TraceProvider):
    """Claims the honest operator trace, then one more commit record: its own (wrong) root."""

    def commit_ops(self, step):
        pre, h = self._states[step - 1], self.program.spec.hashing
        honest = record_step(self.program, Honest(), pre, h)
        extra = OpRecord(len(honest.records), COMMIT_OP, honest.records[-1].args, honest.records[-1].inputs,
                         (self._states[step].root(h).hex(),))
        self._trace = build_trace([*honest.records, extra], honest.outputs, honest.constants,
                                  pre.root(h), step, h)
        return self._trace.commitment()


def test_a_trace_that_goes_on_after_the_honest_one_ends_loses(game_program, game_runs, honest_run):
    cheater = BitFlip(step=13)
    _, result = play(game_program, game_runs(cheater), cheater, honest_run, Honest(), solver_provider=HonestPrefix)
    assert (result.winner, result.first_divergent_step, result.levels["operators"]) == ("challenger", 13, 0), result.reason
    # The honest trace ends at index N - 1; the cheater's record N has no counterpart in the schedule.
    assert (result.operator, result.operator_index) == (COMMIT_OP, len(derive_schedule(game_program, 13)))


def test_a_party_past_its_time_budget_loses(game_program, cheater_run, honest_run):
    _, result = solver_plays(game_program, cheater_run, honest_run, Slow, budget_s=0.25, clock=SLOW_CLOCK)
    assert result.winner == "challenger" and "time budget" in result.reason


class Hung(TraceProvider):
    """Stops answering (below) until ``release`` is set: by the test's teardown, so that the
    abandoned call returns and the test process can exit."""

    def __init__(self, release: threading.Event, *args):
        super().__init__(*args)
        self.release = release


class HungAtOps(Hung):
    def commit_ops(self, step):
        self.release.wait()
        return super().commit_ops(step)


class HungAtCheckpoints(Hung):
    def checkpoint_root(self, index):
        self.release.wait()
        return super().checkpoint_root(index)


def test_a_solver_that_stops_answering_forfeits_when_its_budget_runs_out(game_program, cheater_run, honest_run,
                                                                         release):
    game, result = solver_plays(game_program, cheater_run, honest_run,
                                functools.partial(HungAtOps, release), budget_s=0.5)
    # The game ended while the solver's call was still blocked: it did not wait for the answer.
    assert not release.is_set()
    assert result.winner == "challenger" and result.first_divergent_step == 10
    assert result.reason.startswith("forfeit: solver forfeits: no answer to commit_ops(10) within the ")
    assert result.reason.endswith("left of its 0.50s time budget")
    assert game.moves[-1].kind == "forfeit" and game.clock.used_s["solver"] == 0.5
    assert game.clock.worker is None


def test_a_challenger_that_stops_answering_at_level_1_forfeits(game_program, cheater_run, honest_run, release):
    game, result = play(game_program, cheater_run, CHEATER, honest_run, Honest(), budget_s=0.5,
                        challenger_provider=functools.partial(HungAtCheckpoints, release))
    assert not release.is_set()
    assert result.winner == "solver" and result.first_divergent_step is None, result.reason
    assert "challenger forfeits: no answer to checkpoint_root(" in result.reason and "0.50s time budget" in result.reason


class Broken(TraceProvider):
    def commit_steps(self, start, end):
        raise OSError(f"{self.party}: disk on fire")


def test_any_error_a_party_raises_is_its_forfeit_with_the_error_named(game_program, cheater_run, honest_run):
    game, result = solver_plays(game_program, cheater_run, honest_run, Broken)
    assert result.winner == "challenger" and game.moves[-1].kind == "forfeit"
    assert "commit_steps(" in result.reason and "OSError: solver: disk on fire" in result.reason


def test_a_false_challenger_that_stops_answering_loses(game_program, game_runs, honest_run):
    liar = false_challenger(step=15)
    _, result = play(game_program, honest_run, Honest(), game_runs(liar), liar, challenger_provider=Silent)
    assert result.winner == "solver" and result.reason.startswith("forfeit: challenger")


def test_a_challenger_that_agrees_at_the_end_of_the_interval_forfeits(game_program, honest_run):
    """The interval policy names an interval; if the challenger's replay agrees there, it loses."""
    from proofs.encoding import trace_root
    from verification.dispute import DisputeGame

    game = DisputeGame(game_program, TraceProvider("solver", honest_run, game_program, Honest()),
                       TraceProvider("challenger", honest_run, game_program, Honest()),
                       trace_root(list(honest_run.roots)), 2, 60.0)
    result = game.play(game_program.spec.num_checkpoints - 1, game_program.spec.checkpoint_interval, interval=1)
    assert result.winner == "solver" and "agrees with the solver's root" in result.reason


def test_level_3_sits_between_steps_and_the_referee():
    order = list(Status)
    assert order.index(Status.STEPS) < order.index(Status.OPERATORS) < order.index(Status.REFEREE)
    assert TRANSITIONS[(Status.STEPS, "pinpoint")] == Status.OPERATORS
    without = compute_transitions((Status.CHECKPOINTS, Status.STEPS))  # the operator level off
    assert without[(Status.STEPS, "pinpoint")] == Status.REFEREE and (Status.OPERATORS, "narrow") not in without


def test_the_transcript_records_every_level_and_renders_as_markdown(game_program, cheater_run, honest_run,
                                                                    tmp_path):
    game, result = solver_plays(game_program, cheater_run, honest_run, TraceProvider)
    transcript = json.loads(open(save_transcript(tmp_path / "t.json", game.transcript(result))).read())
    statuses = {m["status"] for m in transcript["moves"]}
    assert {"bisect-checkpoints", "bisect-steps", "bisect-operators", "referee"} <= statuses
    rule = transcript["moves"][-1]
    assert (rule["kind"], rule["payload"]["kind"], rule["payload"]["index"]) == ("rule", "output", 7)
    markdown = render_transcript_markdown(transcript)
    assert result.operator in markdown and "| bisect-operators |" in markdown
