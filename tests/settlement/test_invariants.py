"""Ledger invariants under random sequences of jobs, verdict mixes, repeated settles and crashes.

Invariants checked after every step:
- supply is conserved: the sum of every non-mint balance equals what was ever minted;
- no account but ``mint`` is negative; stored balances equal the sums of postings; every
  transaction's postings sum to zero;
- the escrow accounts of a settled job are all zero;
- settling a job twice changes nothing (no double payment);
- a solver that was paid ends its job with at least what it started with (unless it also lost a
  false challenge of its own in that job);
- a failed or crashed settlement leaves the database exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.settlement.support import dump
from verification.settlement import (
    MINT,
    EconomicTerms,
    InsufficientFunds,
    Ledger,
    SolverVerdict,
    TokenAmount,
    is_forced_error,
    settle_job,
)
from verification.settlement.accounts import get_job_escrow_prefix, get_party_account
from verification.settlement.ledger import compute_net_changes
from verification.settlement.rules import compute_bond_locks, compute_locks, compute_settlement
from verification.settlement.settle import get_genesis_key

SOLVERS = [f"s{i}" for i in range(5)]
SUBMITTERS = ["sub0", "sub1"]
VERIFIERS = ["v0", "v1", "v2"]
OUTSIDERS = ["c0"]


class InjectedCrash(Exception):
    """Raised by the posting hook to simulate a crash between two postings."""


@dataclass(frozen=True)
class JobArgs:
    job_id: str
    submitter: str
    terms: EconomicTerms
    verdicts: tuple[SolverVerdict, ...]
    verifiers: tuple[str, ...]


@st.composite
def economic_terms(draw) -> EconomicTerms:
    reward_bps = draw(st.integers(0, 10_000))
    amount = st.integers(0, 3_000)
    return EconomicTerms(
        payment_per_solver=TokenAmount(draw(amount)),
        solver_stake=TokenAmount(draw(st.integers(0, 8_000))),
        challenger_bond=TokenAmount(draw(amount)),
        verifier_fee=TokenAmount(draw(st.integers(0, 200))),
        slash_reward_bps=reward_bps,
        slash_burn_bps=draw(st.integers(0, 10_000 - reward_bps)),
        jackpot_bps=draw(st.integers(0, 10_000)),
        forced_error_rate_bps=draw(st.sampled_from([0, 3_000, 10_000])),
        jackpot_payout_cap=TokenAmount(draw(st.integers(0, 5_000))),
        initial_balance=TokenAmount(draw(st.integers(0, 30_000))),
    )


@st.composite
def verdict_for(draw, job_id: str, solver: str, terms: EconomicTerms) -> SolverVerdict:
    challenger = st.sampled_from([p for p in VERIFIERS + OUTSIDERS + SOLVERS if p != solver])
    kinds = ["paid", "unverified", "slashed", "false", "equivocation"]
    if is_forced_error(job_id, solver, terms):
        kinds.append("forced")
    kind = draw(st.sampled_from(kinds))
    if kind in ("paid", "unverified"):
        return SolverVerdict(solver, kind)
    if kind == "slashed":
        return SolverVerdict(solver, "slashed", challenger=draw(challenger))
    if kind == "false":
        return SolverVerdict(solver, "paid", challenger=draw(challenger), false_challenge=True)
    if kind == "forced":
        return SolverVerdict(solver, "paid", challenger=draw(challenger), forced_error=True)
    reporter = draw(st.none() | challenger)
    return SolverVerdict(solver, "slashed", challenger=reporter, equivocation=True)


@st.composite
def job_args(draw, job_id: str) -> JobArgs:
    terms = draw(economic_terms())
    solvers = draw(st.lists(st.sampled_from(SOLVERS), min_size=1, max_size=4, unique=True))
    verdicts = tuple(draw(verdict_for(job_id, solver, terms)) for solver in solvers)
    verifiers = tuple(draw(st.lists(st.sampled_from(VERIFIERS), max_size=3, unique=True)))
    return JobArgs(job_id, draw(st.sampled_from(SUBMITTERS)), terms, verdicts, verifiers)


def settle(ledger: Ledger, job: JobArgs):
    return settle_job(ledger, job.job_id, job.submitter, job.terms, job.verdicts, job.verifiers)


def get_start_balance(ledger: Ledger, party: str, terms: EconomicTerms) -> int:
    """What ``party`` holds when the job starts: its balance, or its funding if it is new."""
    if ledger.has_transaction(get_genesis_key(party)):
        return ledger.balance(get_party_account(party))
    return terms.initial_balance


def is_false_challenger(party: str, job: JobArgs) -> bool:
    return any(v.false_challenge and v.challenger == party for v in job.verdicts)


class SettlementMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.crash_after: int | None = None
        self.postings_seen = 0
        self.ledger = Ledger(":memory:", on_posting=self.maybe_crash)
        self.settled: list[JobArgs] = []
        self.next_job = 0

    def maybe_crash(self, transaction, posting) -> None:
        self.postings_seen += 1
        if self.crash_after is not None and self.postings_seen == self.crash_after:
            raise InjectedCrash(f"crash after posting {self.postings_seen}")

    def new_job_id(self) -> str:
        self.next_job += 1
        return f"job{self.next_job}"

    def settle_checked(self, job: JobArgs) -> None:
        """Settle a new job; on refusal the database must be untouched."""
        before = dump(self.ledger)
        solvers = [v.solver_id for v in job.verdicts if v.outcome != "slashed"]
        start = {s: get_start_balance(self.ledger, s, job.terms) for s in solvers}
        try:
            result = settle(self.ledger, job)
        except (InsufficientFunds, InjectedCrash) as refused:
            event(f"refused: {type(refused).__name__}")
            # only a party can be short of funds: escrow and the jackpot are covered by the rules
            assert not isinstance(refused, InsufficientFunds) or refused.account.startswith(
                "party:"
            )
            assert dump(self.ledger) == before
            return
        event("settled")
        assert not result.already_settled
        assert result.supply_before == result.supply_after
        for solver, balance in start.items():
            # Rule checked: an honest solver never ends a job with less than it started with
            if not is_false_challenger(solver, job):
                assert result.balances.get(solver, 0) >= balance, (solver, balance, result)
        self.settled.append(job)

    @rule(data=st.data())
    def settle_new_job(self, data) -> None:
        self.settle_checked(data.draw(job_args(self.new_job_id())))

    @rule(data=st.data(), crash_after=st.integers(1, 60))
    def settle_with_crash(self, data, crash_after: int) -> None:
        job = data.draw(job_args(self.new_job_id()))
        self.postings_seen, self.crash_after = 0, crash_after
        try:
            self.settle_checked(job)
        finally:
            self.crash_after = None

    @precondition(lambda self: self.settled)
    @rule(data=st.data())
    def settle_again(self, data) -> None:
        job = data.draw(st.sampled_from(self.settled))
        before = dump(self.ledger)
        first = [tx for tx in self.ledger.history(job.job_id)]
        result = settle(self.ledger, job)
        assert result.already_settled
        assert dump(self.ledger) == before
        assert result.transfers == tuple(t for tx in first for t in tx.transfers)

    @invariant()
    def supply_is_conserved(self) -> None:
        assert self.ledger.supply() == self.ledger.minted()

    @invariant()
    def no_negative_balance_but_mint(self) -> None:
        balances = self.ledger.balances()
        assert all(amount >= 0 for account, amount in balances.items() if account != MINT)

    @invariant()
    def balances_are_sums_of_postings(self) -> None:
        conn = self.ledger._conn
        sums = dict(conn.execute("SELECT account, SUM(amount) FROM postings GROUP BY account"))
        assert sums == dict(self.ledger.balances())
        unbalanced = conn.execute(
            "SELECT tx_id FROM postings GROUP BY tx_id HAVING SUM(amount) != 0"
        ).fetchall()
        assert unbalanced == []

    @invariant()
    def settled_escrow_is_empty(self) -> None:
        for job in self.settled:
            escrow = self.ledger.balances(get_job_escrow_prefix(job.job_id))
            assert set(escrow.values()) <= {0}

    def teardown(self) -> None:
        self.ledger.close()


TestSettlementMachine = SettlementMachine.TestCase
TestSettlementMachine.settings = settings(
    max_examples=100,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_rules_alone_conserve_tokens_and_empty_escrow(data) -> None:
    job = data.draw(job_args("job"))
    solvers = sorted(v.solver_id for v in job.verdicts)
    jackpot = data.draw(st.integers(0, 10_000))
    transfers = (
        compute_locks(job.job_id, job.submitter, job.terms, solvers, job.verifiers)
        + compute_bond_locks(job.job_id, job.terms, job.verdicts)
        + compute_settlement(
            job.job_id, job.submitter, job.terms, job.verdicts, job.verifiers, jackpot
        )
    )
    changes = compute_net_changes(transfers)
    assert sum(changes.values()) == 0
    assert MINT not in changes
    assert all(change == 0 for account, change in changes.items() if account.startswith("escrow:"))
    # the jackpot pays out at most what it held plus this job's tax
    assert changes.get("jackpot", 0) >= -jackpot
