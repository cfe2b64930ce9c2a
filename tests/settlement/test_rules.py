"""Settlement rules on hand-computed cases: each rule's transfers, the terms and verdict checks."""

from __future__ import annotations

import dataclasses

import pytest

from verification.settlement.accounts import (
    BURN,
    JACKPOT,
    MINT,
    AccountId,
    TokenAmount,
    Transfer,
)
from verification.settlement.ledger import compute_net_changes
from verification.settlement.rules import (
    EconomicTerms,
    ForfeitSplit,
    InvalidJobError,
    InvalidTermsError,
    InvalidVerdictError,
    SolverVerdict,
    check_job,
    compute_bond_locks,
    compute_forfeit_split,
    compute_genesis,
    compute_jackpot_payout,
    compute_jackpot_tax,
    compute_job_escrow,
    compute_locks,
    compute_payout,
    compute_settlement,
    compute_slash,
    is_challenge_window_open,
    is_forced_error,
)

TERMS = EconomicTerms(
    payment_per_solver=TokenAmount(1_000),
    solver_stake=TokenAmount(5_000),
    challenger_bond=TokenAmount(1_000),
    verifier_fee=TokenAmount(50),
    slash_reward_bps=5_000,
    slash_burn_bps=2_500,
    jackpot_bps=500,
    forced_error_rate_bps=100,
    jackpot_payout_cap=TokenAmount(10_000),
)
ESCROW = AccountId("escrow:j:payment")
STAKE_S = AccountId("escrow:j:stake:s")


def t(source: str, dest: str, amount: int, memo: str) -> Transfer:
    return Transfer(AccountId(source), AccountId(dest), TokenAmount(amount), memo)


def net(transfers) -> dict[str, int]:
    return {account: change for account, change in compute_net_changes(transfers).items() if change}


def forced_solver(job: str, terms: EconomicTerms) -> str:
    return next(f"s{i}" for i in range(100_000) if is_forced_error(job, f"s{i}", terms))


def unforced_solver(job: str, terms: EconomicTerms) -> str:
    return next(f"s{i}" for i in range(100_000) if not is_forced_error(job, f"s{i}", terms))


# -- terms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("solver_stake", -1, "solver_stake must be a non-negative int"),
        ("payment_per_solver", 10.0, "payment_per_solver must be a non-negative int, got 10.0"),
        ("challenge_window", True, "challenge_window must be a non-negative int"),
        ("slash_reward_bps", 10_001, "slash_reward_bps = 10001 exceeds 10000"),
        ("jackpot_bps", 20_000, "jackpot_bps = 20000 exceeds"),
        ("slash_burn_bps", 5_001, "slash_reward_bps \\+ slash_burn_bps = 5000 \\+ 5001"),
    ],
)
def test_invalid_terms_are_rejected_naming_field_and_value(field, value, message):
    with pytest.raises(InvalidTermsError, match=message):
        dataclasses.replace(TERMS, **{field: value})


def test_defaults_are_valid():
    assert EconomicTerms().slash_reward_bps + EconomicTerms().slash_burn_bps <= 10_000


# -- amounts ----------------------------------------------------------------------------------


def test_forfeit_split_by_hand():
    assert compute_forfeit_split(TokenAmount(5_000), TERMS) == ForfeitSplit(2_500, 1_250, 1_250)


def test_forfeit_split_rounding_remainder_goes_to_the_refund():
    terms = dataclasses.replace(TERMS, slash_reward_bps=3_333, slash_burn_bps=3_333)
    # 101 * 0.3333 = 33.66 -> 33 each; the refund takes 101 - 66 = 35
    assert compute_forfeit_split(TokenAmount(101), terms) == ForfeitSplit(33, 33, 35)


def test_job_escrow_and_jackpot_tax():
    assert compute_jackpot_tax(TERMS) == 50  # 5 % of 1000
    # 3 solvers * (1000 payment + 50 tax) + 2 verifiers * 50 fee
    assert compute_job_escrow(TERMS, 3, 2) == 3_250


def test_jackpot_payout_is_capped_by_cap_and_balance():
    assert compute_jackpot_payout(TERMS, 25_000) == 10_000
    assert compute_jackpot_payout(TERMS, 700) == 700
    assert compute_jackpot_payout(TERMS, 0) == 0


# -- rules ------------------------------------------------------------------------------------


def test_genesis_mints_each_party_skipping_zero():
    assert compute_genesis({"bob": 7, "alice": 5, "carol": 0}) == [
        t("mint", "party:alice", 5, "genesis mint"),
        t("mint", "party:bob", 7, "genesis mint"),
    ]


def test_locks_escrow_payment_and_stakes():
    assert compute_locks("j", "sub", TERMS, ["s1", "s2"], ["v"]) == [
        t("party:sub", "escrow:j:payment", 2_150, "escrow payment"),
        t("party:s1", "escrow:j:stake:s1", 5_000, "stake"),
        t("party:s2", "escrow:j:stake:s2", 5_000, "stake"),
    ]


def test_bonds_are_locked_per_dispute_not_for_equivocation():
    verdicts = [
        SolverVerdict("s1", "slashed", challenger="v"),
        SolverVerdict("s2", "paid", challenger="v", false_challenge=True),
        SolverVerdict("s3", "slashed", challenger="w", equivocation=True),
        SolverVerdict("s4", "paid"),
    ]
    assert compute_bond_locks("j", TERMS, verdicts) == [
        t("party:v", "escrow:j:bond:v", 1_000, "bond: dispute of s1"),
        t("party:v", "escrow:j:bond:v", 1_000, "bond: dispute of s2"),
    ]


def test_honest_solver_gets_stake_back_and_payment():
    assert compute_payout("j", TERMS, "s") == [
        t("escrow:j:stake:s", "party:s", 5_000, "stake refund"),
        t("escrow:j:payment", "party:s", 1_000, "payment"),
    ]


def test_cheater_is_slashed_and_its_payment_refunded():
    transfers = compute_slash("j", "sub", TERMS, SolverVerdict("s", "slashed", challenger="v"))
    assert transfers == [
        t("escrow:j:stake:s", "party:v", 2_500, "slash of s: reward"),
        t("escrow:j:stake:s", "burn", 1_250, "slash of s: burn"),
        t("escrow:j:stake:s", "party:sub", 1_250, "slash of s: refund"),
        t("escrow:j:payment", "party:sub", 1_000, "payment refund: s slashed"),
    ]


def test_equivocation_without_reporter_burns_the_reward_share():
    transfers = compute_slash("j", "sub", TERMS, SolverVerdict("s", "slashed", equivocation=True))
    assert net(transfers) == {
        STAKE_S: -5_000,
        BURN: 3_750,
        "party:sub": 2_250,
        ESCROW: -1_000,
    }
    assert all(x.memo.startswith(("equivocation of s", "payment refund")) for x in transfers)


def settle(verdicts, verifiers=(), jackpot=0, terms=TERMS, job="j"):
    return compute_settlement(job, "sub", terms, verdicts, verifiers, jackpot)


def test_settlement_of_a_paid_solver_with_a_verifier():
    transfers = settle([SolverVerdict("s", "paid")], verifiers=["v"])
    assert net(transfers) == {
        ESCROW: -1_100,
        JACKPOT: 50,
        "party:v": 50,
        STAKE_S: -5_000,
        "party:s": 6_000,
    }


def test_unverified_solver_is_paid_like_a_checked_one():
    paid = settle([SolverVerdict("s", "paid")])
    unverified = settle([SolverVerdict("s", "unverified")])
    assert paid == unverified


def test_slashed_solver_settlement_refunds_the_challengers_bond():
    transfers = settle([SolverVerdict("s", "slashed", challenger="v")])
    assert net(transfers) == {
        ESCROW: -1_050,
        JACKPOT: 50,
        STAKE_S: -5_000,
        "party:v": 2_500 + 1_000,
        BURN: 1_250,
        "party:sub": 1_250 + 1_000,
        "escrow:j:bond:v": -1_000,
    }


def test_false_challenger_loses_its_bond_to_the_accused_solver():
    transfers = settle([SolverVerdict("s", "paid", challenger="v", false_challenge=True)])
    assert net(transfers) == {
        ESCROW: -1_050,
        JACKPOT: 50,
        STAKE_S: -5_000,
        "party:s": 6_000 + 500,
        BURN: 250,
        "party:sub": 250,
        "escrow:j:bond:v": -1_000,
    }


def test_equivocation_slashes_with_reward_to_the_reporter_and_no_bond():
    transfers = settle([SolverVerdict("s", "slashed", challenger="w", equivocation=True)])
    assert net(transfers)["party:w"] == 2_500
    assert not any("bond" in x.source for x in transfers)


def test_forced_error_found_pays_the_finder_from_the_jackpot_up_to_the_cap():
    terms = dataclasses.replace(TERMS, forced_error_rate_bps=5_000)
    solver = forced_solver("j", terms)
    verdict = SolverVerdict(solver, "paid", challenger="v", forced_error=True)
    rich = net(settle([verdict], jackpot=1_000_000, terms=terms))
    assert rich[JACKPOT] == 50 - 10_000  # tax in, capped payout out
    assert rich["party:v"] == 10_000 + 1_000  # the payout, and its bond back: it was right
    assert rich["escrow:j:bond:v"] == -1_000
    assert rich[AccountId(f"party:{solver}")] == 6_000  # the forced solver is not punished
    poor = net(settle([verdict], jackpot=30, terms=terms))
    assert poor.get(JACKPOT, 0) == -30  # pays out the 30 held plus this job's tax of 50
    assert poor["party:v"] == 80 + 1_000


def test_two_forced_errors_draw_on_a_shrinking_jackpot():
    terms = dataclasses.replace(TERMS, forced_error_rate_bps=10_000, jackpot_payout_cap=70)
    verdicts = [SolverVerdict(s, "paid", challenger="v", forced_error=True) for s in ("a", "b")]
    payouts = [x.amount for x in settle(verdicts, jackpot=0, terms=terms) if x.source == JACKPOT]
    assert payouts == [70, 30]  # the jackpot holds 2 * 50 of tax: 70 (the cap), then the 30 left


def test_forced_error_claim_for_a_solver_not_drawn_is_rejected():
    solver = unforced_solver("j", TERMS)
    with pytest.raises(InvalidVerdictError, match="not drawn for a forced error"):
        settle([SolverVerdict(solver, "paid", challenger="v", forced_error=True)])


def test_forced_error_draw_follows_the_rate():
    terms = dataclasses.replace(TERMS, forced_error_rate_bps=1_000)
    drawn = sum(is_forced_error("job", f"s{i}", terms) for i in range(20_000))
    assert 1_800 < drawn < 2_200  # 10 % of 20000, within 5 standard deviations
    never = dataclasses.replace(TERMS, forced_error_rate_bps=0)
    assert not any(is_forced_error("job", f"s{i}", never) for i in range(1_000))


def test_settlement_empties_every_escrow_and_conserves_tokens():
    verdicts = [
        SolverVerdict("a", "paid"),
        SolverVerdict("b", "slashed", challenger="v"),
        SolverVerdict("c", "paid", challenger="w", false_challenge=True),
        SolverVerdict("d", "unverified"),
        SolverVerdict("e", "slashed", challenger="v", equivocation=True),
    ]
    locks = compute_locks("j", "sub", TERMS, [v.solver_id for v in verdicts], ["v", "w"])
    bonds = compute_bond_locks("j", TERMS, verdicts)
    changes = net(locks + bonds + settle(verdicts, verifiers=["v", "w"]))
    assert not any(account.startswith("escrow:") for account in changes)
    assert sum(changes.values()) == 0
    assert MINT not in changes


# -- verdict checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "message"),
    [
        (SolverVerdict("s", "won"), "outcome 'won' is not one of"),
        (SolverVerdict("s", "slashed", challenger="s"), "challenger is the solver itself"),
        (SolverVerdict("s", "unverified", challenger="v"), "unverified but challenger='v'"),
        (SolverVerdict("s", "paid", equivocation=True), "equivocation but outcome='paid'"),
        (SolverVerdict("s", "slashed"), "slashed by a dispute but no challenger"),
        (SolverVerdict("s", "paid", challenger="v"), "needs exactly one of"),
        (
            SolverVerdict("s", "slashed", challenger="v", false_challenge=True),
            "need outcome 'paid'",
        ),
        (SolverVerdict("s", "paid", false_challenge=True), "need outcome 'paid' and a challenger"),
        (
            SolverVerdict("s", "paid", challenger="v", false_challenge=True, forced_error=True),
            "needs exactly one of",
        ),
    ],
)
def test_inconsistent_verdicts_are_rejected(verdict, message):
    with pytest.raises(InvalidVerdictError, match=message):
        check_job("j", "sub", TERMS, [verdict], [])


@pytest.mark.parametrize(
    ("verdicts", "verifiers", "message"),
    [
        ([], [], "no solvers"),
        ([SolverVerdict("s", "paid"), SolverVerdict("s", "paid")], [], "duplicate solvers"),
        ([SolverVerdict("sub", "paid")], [], "submitter 'sub' is also a solver"),
        ([SolverVerdict("s", "paid")], ["v", "v"], "duplicate verifiers"),
    ],
)
def test_inconsistent_jobs_are_rejected(verdicts, verifiers, message):
    with pytest.raises(InvalidJobError, match=message):
        check_job("j", "sub", TERMS, verdicts, verifiers)


def test_challenge_window():
    terms = dataclasses.replace(TERMS, challenge_window=10)
    assert is_challenge_window_open(terms, locked_at=100, now=109)
    assert not is_challenge_window_open(terms, locked_at=100, now=110)
    assert not is_challenge_window_open(terms, locked_at=None, now=5)
    assert not is_challenge_window_open(terms, locked_at=100, now=None)
