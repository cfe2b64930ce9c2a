"""Liveness: whatever a party does at whichever move (raises, exits, hangs, answers garbage or out
of order), the game ends with a recorded reason and the job settles with supply conserved.

Parties here are in-process providers wrapped to fail at their ``at``-th call, on a fake clock (a
hung call waits out only the 0.5 s budget); ``tests/security`` plays the same failures with real
party processes through the whole pipeline.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verification.execution.opgraph import OpsCommitment
from verification.settlement import EconomicTerms, Ledger, SolverVerdict, settle_job
from verification.strategies import BitFlip, Honest, false_challenger

from .conftest import play

FAILURES = ("raise", "exit", "garbage", "hang", "out-of-order")
FORFEITING = {"raise", "exit", "garbage", "hang"}  # out-of-order answers may still be valid ones
GARBAGE = (None, "root", 42, (b"", None), (b"\0" * 32, "proof"), OpsCommitment(b"short", "many"), [1, 2])


class Failing:
    """Answers like ``inner`` until its ``at``-th call, then fails as ``how``."""

    def __init__(self, inner, how: str, at: int, garbage, release: threading.Event):
        self.inner, self.how, self.at, self.garbage, self.release = inner, how, at, garbage, release
        self.calls, self.failed = 0, False

    def __getattr__(self, method):
        target = getattr(self.inner, method)
        if not callable(target):
            return target

        def call(*args):
            self.calls += 1
            if self.calls != self.at:
                return target(*args)
            self.failed = True
            return self.fail(target, args)

        return call

    def fail(self, target, args):
        if self.how == "raise":
            raise KeyError("a party's own bug")
        if self.how == "exit":
            raise SystemExit(3)
        if self.how == "hang":
            self.release.wait()
        if self.how == "out-of-order":
            return target(*(a + 1 for a in args))
        return self.garbage


@pytest.fixture(scope="module")
def release():
    event = threading.Event()
    yield event
    event.set()  # hung calls return, and their worker threads end


def wrapped(how, at, garbage, release):
    def build(*args):
        from verification.providers import TraceProvider

        return Failing(TraceProvider(*args), how, at, garbage, release)

    return build


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(failing=st.sampled_from(["solver", "challenger"]), how=st.sampled_from(FAILURES),
       at=st.integers(min_value=1, max_value=40), garbage=st.sampled_from(GARBAGE),
       false_challenge=st.booleans())
def test_every_game_ends_and_settles_whatever_a_party_does(game_program, game_runs, honest_run, release,
                                                           failing, how, at, garbage, false_challenge):
    cheater = false_challenger(step=13) if false_challenge else BitFlip(step=13)
    solver = (honest_run, Honest()) if false_challenge else (game_runs(cheater), cheater)
    challenger = (game_runs(cheater), cheater) if false_challenge else (honest_run, Honest())
    builders = {p: wrapped(how, at, garbage, release) if p == failing else None for p in ("solver", "challenger")}
    providers = {f"{p}_provider": b for p, b in builders.items() if b is not None}
    game, result = play(game_program, *solver, *challenger, budget_s=0.5, **providers)

    failed = game.providers[failing].failed
    if failed and how in FORFEITING:
        # Rule under test: a party that fails to answer forfeits, with its reason recorded.
        assert result.winner != failing
        assert game.moves[-1].kind == "forfeit" and game.moves[-1].party == failing
        assert game.moves[-1].payload["reason"]
    if not failed:  # the game ended before the party's failing move: the honest side won
        assert result.winner == ("solver" if false_challenge else "challenger")
    settle_and_check_supply(result.winner)


def settle_and_check_supply(winner: str) -> None:
    ledger = Ledger(":memory:")
    try:
        verdict = SolverVerdict("s", "slashed", challenger="verifier") if winner == "challenger" else \
            SolverVerdict("s", "paid", challenger="verifier", false_challenge=True)
        result = settle_job(ledger, "job-liveness", "submitter", EconomicTerms(), [verdict], ["verifier"])
        assert result.supply_before == result.supply_after
    finally:
        ledger.close()
