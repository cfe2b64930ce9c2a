"""settle_job: funding, escrow, verdicts, idempotency, atomicity, the challenge window."""

from __future__ import annotations

import dataclasses
import multiprocessing

import pytest

from tests.settlement.support import dump
from verification.settlement import (
    BURN,
    JACKPOT,
    ChallengeWindowOpen,
    EconomicTerms,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidVerdictError,
    Ledger,
    SolverVerdict,
    is_forced_error,
    is_job_settled,
    lock_job,
    settle_job,
)
from verification.settlement.settle import get_job_transfers

TERMS = EconomicTerms(initial_balance=100_000, forced_error_rate_bps=0, challenger_bond=1_000)
MIXED = [
    SolverVerdict("honest", "paid"),
    SolverVerdict("cheater", "slashed", challenger="verifier"),
    SolverVerdict("accused", "paid", challenger="verifier", false_challenge=True),
    SolverVerdict("lucky", "unverified"),
]


@pytest.fixture
def ledger():
    with Ledger(":memory:") as ledger:
        yield ledger


def test_mixed_job_settles_as_the_rules_say(ledger):
    result = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    assert not result.already_settled
    assert result.supply_before == result.supply_after == ledger.supply() == 6 * 100_000
    # cheater's stake 5000: 2500 to the verifier, 1250 burned, 1250 to the submitter;
    # verifier's false-challenge bond 1000: 500 to 'accused', 250 burned, 250 to the submitter
    assert result.burned == 1_250 + 250 == ledger.burned()
    assert result.balances == {
        "accused": 100_000 + 1_000 + 500,
        "cheater": 100_000 - 5_000,
        "honest": 100_000 + 1_000,
        "lucky": 100_000 + 1_000,
        "submitter": 100_000 - 4 * 1_050 - 50 + 1_250 + 1_000 + 250,
        "verifier": 100_000 + 50 + 2_500 - 1_000,
    }
    assert ledger.balance(JACKPOT) == 4 * 50
    assert set(ledger.balances("escrow:job1:").values()) == {0}
    assert result.transfers == get_job_transfers(ledger, "job1")
    assert [tx.kind for tx in ledger.history("job1")] == ["lock", "bonds", "settle"]


def test_second_settle_is_a_no_op_returning_the_same_transfers(ledger):
    first = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    before = dump(ledger)
    again = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    assert again.already_settled
    assert dump(ledger) == before
    assert dataclasses.replace(again, already_settled=False) == first
    assert is_job_settled(ledger, "job1")


def test_the_first_settlement_is_final(ledger):
    first = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    other = settle_job(ledger, "job1", "submitter", TERMS, [SolverVerdict("honest", "unverified")])
    assert other.already_settled and other.transfers == first.transfers


def test_verdict_order_does_not_change_the_settlement(ledger):
    forward = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["b", "a"])
    with Ledger(":memory:") as other:
        backward = settle_job(other, "job1", "submitter", TERMS, MIXED[::-1], verifiers=["a", "b"])
    assert forward == backward


def test_parties_are_funded_once(ledger):
    settle_job(ledger, "job1", "submitter", TERMS, [SolverVerdict("s", "paid")])
    richer = dataclasses.replace(TERMS, initial_balance=999_999_999)
    result = settle_job(ledger, "job2", "submitter", richer, [SolverVerdict("t", "paid")])
    assert result.balances["s"] == 100_000 + 1_000
    assert result.balances["t"] == 999_999_999 + 1_000
    assert result.balances["submitter"] == 100_000 - 2 * 1_050


def test_supply_before_is_read_after_funding_new_parties(ledger):
    settle_job(ledger, "job1", "submitter", TERMS, [SolverVerdict("s", "paid")])
    result = settle_job(ledger, "job2", "submitter", TERMS, [SolverVerdict("new", "paid")])
    assert result.supply_before == result.supply_after == 3 * 100_000


def test_insufficient_funds_write_nothing_not_even_funding(ledger):
    poor = dataclasses.replace(TERMS, initial_balance=4_999)  # below the stake
    with pytest.raises(InsufficientFunds, match="party:s.*holds 4999 but must pay out 5000"):
        settle_job(ledger, "job1", "submitter", poor, [SolverVerdict("s", "paid")])
    assert ledger.history() == []
    assert ledger.supply() == 0


def test_invalid_verdicts_write_nothing(ledger):
    with pytest.raises(InvalidVerdictError):
        settle_job(ledger, "job1", "sub", TERMS, [SolverVerdict("s", "slashed")])
    assert ledger.history() == []


def count_postings(job_verdicts) -> int:
    with Ledger(":memory:") as ledger:
        settle_job(ledger, "job1", "submitter", TERMS, job_verdicts, verifiers=["verifier"])
        (n,) = ledger._conn.execute("SELECT COUNT(*) FROM postings").fetchone()
    return n


@pytest.mark.parametrize("crash_at", [1, 2, 7, 13, 20, 33, 40])
def test_crash_at_any_posting_leaves_nothing_and_a_retry_settles_fully(crash_at):
    assert crash_at < count_postings(MIXED)
    seen = []

    def crash(transaction, posting):
        seen.append(posting)
        if len(seen) == crash_at:
            raise OSError("disk unplugged")

    with Ledger(":memory:", on_posting=crash) as ledger:
        with pytest.raises(OSError, match="disk unplugged"):
            settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
        assert ledger.history() == [] and ledger.balances() == {}
        retried = settle_job(ledger, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    with Ledger(":memory:") as clean:
        expected = settle_job(clean, "job1", "submitter", TERMS, MIXED, verifiers=["verifier"])
    assert retried == expected


def test_challenge_window_is_enforced_from_the_lock(ledger):
    terms = dataclasses.replace(TERMS, challenge_window=10)
    verdicts = [SolverVerdict("s", "slashed", challenger="v")]
    lock = lock_job(ledger, "job1", "sub", terms, ["s"], now=100)
    assert lock.tick == 100
    before = dump(ledger)
    with pytest.raises(
        ChallengeWindowOpen, match="opened at tick 100 closes at tick 110.*tick 109"
    ):
        settle_job(ledger, "job1", "sub", terms, verdicts, now=109)
    assert dump(ledger) == before
    result = settle_job(ledger, "job1", "sub", terms, verdicts, now=110)
    assert not result.already_settled
    assert ledger.get_transaction("lock:job1").tick == 100


def test_settling_at_the_lock_tick_of_an_unlocked_job_is_too_early(ledger):
    terms = dataclasses.replace(TERMS, challenge_window=1)
    with pytest.raises(ChallengeWindowOpen):
        settle_job(ledger, "job1", "sub", terms, [SolverVerdict("s", "paid")], now=5)
    assert ledger.history() == []
    # without a clock, the caller vouches that the window is over
    assert not settle_job(
        ledger, "job1", "sub", terms, [SolverVerdict("s", "paid")]
    ).already_settled


def test_settlement_must_match_the_earlier_lock(ledger):
    lock_job(ledger, "job1", "sub", TERMS, ["s1", "s2"])
    with pytest.raises(IdempotencyConflict, match="'lock:job1'"):
        settle_job(ledger, "job1", "sub", TERMS, [SolverVerdict("s1", "paid")])


def test_lock_job_is_idempotent(ledger):
    first = lock_job(ledger, "job1", "sub", TERMS, ["s2", "s1"], verifiers=["v"], now=3)
    assert lock_job(ledger, "job1", "sub", TERMS, ["s1", "s2"], verifiers=["v"], now=9) == first
    assert ledger.balance("escrow:job1:stake:s1") == TERMS.solver_stake


def test_jackpot_filled_by_taxes_pays_a_later_forced_error(ledger):
    terms = dataclasses.replace(TERMS, forced_error_rate_bps=2_000, jackpot_payout_cap=120)
    for i in range(3):
        settle_job(ledger, f"fill{i}", "sub", terms, [SolverVerdict("filler", "paid")])
    assert ledger.balance(JACKPOT) == 150
    solver = next(f"s{i}" for i in range(1_000) if is_forced_error("job9", f"s{i}", terms))
    verdict = SolverVerdict(solver, "paid", challenger="v", forced_error=True)
    result = settle_job(ledger, "job9", "sub", terms, [verdict])
    payout = [t for t in result.transfers if t.source == JACKPOT]
    assert [t.amount for t in payout] == [120]
    assert ledger.balance(JACKPOT) == 150 + 50 - 120
    assert result.balances["v"] == 100_000 + 120
    assert result.balances[solver] == 100_000 + 1_000


def test_burned_is_per_job(ledger):
    settle_job(ledger, "job1", "sub", TERMS, [SolverVerdict("s", "slashed", challenger="v")])
    second = settle_job(ledger, "job2", "sub", TERMS, [SolverVerdict("s", "paid")])
    assert second.burned == 0
    assert ledger.balance(BURN) == 1_250


def _settle_all(path: str, jobs: int) -> None:
    with Ledger(path, busy_timeout_s=60) as ledger:
        for j in range(jobs):
            settle_job(ledger, f"job{j}", "sub", TERMS, MIXED, verifiers=["verifier"])


def test_processes_racing_on_the_same_jobs_settle_each_once(tmp_path):
    path = str(tmp_path / "ledger.sqlite")  # not created yet: the workers race to create it too
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_settle_all, args=(path, 6)) for _ in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [process.exitcode for process in workers] == [0, 0, 0]
    with Ledger(path) as ledger:
        assert ledger.supply() == ledger.minted() == 6 * 100_000
        assert ledger.burned() == 6 * 1_500
        assert sum(tx.kind == "settle" for tx in ledger.history()) == 6
