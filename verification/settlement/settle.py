"""Settlement of a job on the ledger: the entry point the rest of Pinpoint calls.

A job is settled in ledger transactions, each under its own idempotency key, written together in
one SQL transaction (`Ledger.atomic`), so a crash leaves all of them or none:

``genesis:<party>``
    The first time a party is seen it is minted ``terms.initial_balance`` (one key per party, so a
    party is funded once whatever the number of jobs).
``lock:<job>``
    The submitter's payment and the solvers' stakes go to escrow (`compute_locks`). `lock_job` records
    it when the solvers commit, with the tick that opens the challenge window; otherwise `settle_job`
    records it.
``bonds:<job>``
    The challengers' bonds, one per dispute (`compute_bond_locks`).
``settle:<job>``
    The verdicts: payouts, slashes, bond resolutions, verifier fees, jackpot tax and payouts
    (`compute_settlement`). Once this key is stored the job is settled: a later `settle_job` call is
    a no-op that reads the job's transfers back (a re-materialized Dagster asset never pays twice).
    The first settlement is final; a later call with other verdicts does not change it.

Supply is conserved by construction: every transfer moves tokens between accounts, burning included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proofs.types import JobId, PartyId, SolverId
from verification.settlement.accounts import (
    BURN,
    JACKPOT,
    PARTY_PREFIX,
    Transfer,
    check_identifier,
    get_party_account,
    get_party_of_account,
)
from verification.settlement.ledger import Ledger, Transaction
from verification.settlement.rules import (
    ChallengeWindowOpen,
    EconomicTerms,
    SolverVerdict,
    check_job,
    compute_bond_locks,
    compute_genesis,
    compute_job_escrow,
    compute_locks,
    compute_settlement,
    is_challenge_window_open,
)


@dataclass(frozen=True)
class SettlementResult:
    """What settling a job did.

    ``already_settled``: this call found the job settled and wrote nothing. ``transfers``: every
    movement of the job (lock, bonds, settlement; party funding excluded), also when read back.
    ``supply_before`` / ``supply_after``: total supply around the job's own transactions (equal:
    funding new parties is minted before ``supply_before`` is read). ``burned``: burned by this job.
    ``balances``: the balance of every party in the ledger afterwards, by party id.
    """

    job_id: JobId
    already_settled: bool
    transfers: tuple[Transfer, ...]
    supply_before: int
    supply_after: int
    burned: int
    balances: dict[str, int]


def get_genesis_key(party: PartyId) -> str:
    """Idempotency key of a party's funding."""
    return f"genesis:{party}"


def get_lock_key(job_id: JobId) -> str:
    """Idempotency key of a job's payment and stake escrow."""
    return f"lock:{job_id}"


def get_bonds_key(job_id: JobId) -> str:
    """Idempotency key of a job's challenger bonds."""
    return f"bonds:{job_id}"


def get_settle_key(job_id: JobId) -> str:
    """Idempotency key of a job's settlement; once stored, the job is settled."""
    return f"settle:{job_id}"


def get_job_parties(
    submitter: PartyId, verdicts: Sequence[SolverVerdict], verifiers: Sequence[PartyId]
) -> list[PartyId]:
    """Every party a job names, sorted: submitter, solvers, challengers, verifiers."""
    parties = {submitter, *verifiers}
    for verdict in verdicts:
        parties.add(PartyId(verdict.solver_id))
        if verdict.challenger is not None:
            parties.add(verdict.challenger)
    return sorted(parties)


def is_job_settled(ledger: Ledger, job_id: JobId) -> bool:
    """Whether ``job_id`` has been settled on ``ledger``."""
    return ledger.has_transaction(get_settle_key(job_id))


def process_funding(ledger: Ledger, parties: Iterable[PartyId], terms: EconomicTerms) -> None:
    """Mint ``terms.initial_balance`` to each party never funded before."""
    for party in parties:
        key = get_genesis_key(check_identifier("party", party))
        # Rule: a party is funded once, by the terms in force when it is first seen
        if not ledger.has_transaction(key):
            transfers = compute_genesis({party: terms.initial_balance})
            ledger.post(Transaction(key, "genesis", tuple(transfers)))


def lock_job(
    ledger: Ledger,
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    solvers: Sequence[SolverId],
    verifiers: Sequence[PartyId] = (),
    now: int | None = None,
) -> Transaction:
    """Escrow a job's payment and stakes when its solvers commit; ``now`` opens the challenge window.

    Idempotent: a second call returns the stored lock (with its original tick). `settle_job` later
    finds it and checks that it escrowed the same solvers and verifiers.
    """
    parties = sorted({submitter, *verifiers, *(PartyId(s) for s in solvers)})
    with ledger.atomic():
        process_funding(ledger, parties, terms)
        transfers = compute_locks(job_id, submitter, terms, sorted(solvers), sorted(verifiers))
        return ledger.post(Transaction(get_lock_key(job_id), "lock", tuple(transfers), job_id, now))


def compute_job_requirements(
    submitter: PartyId, terms: EconomicTerms, solvers: Sequence[SolverId], verifiers: Sequence[PartyId]
) -> dict[PartyId, int]:
    """What each party must hold for a job to be locked and every challenge bonded: the
    submitter's escrow, each solver's stake, each verifier's challenge bond (Truebit §4.3)."""
    needs = {PartyId(s): terms.solver_stake for s in solvers}
    needs.update({v: terms.challenger_bond for v in verifiers})
    needs[submitter] = compute_job_escrow(terms, len(solvers), len(verifiers))
    return needs


def get_funds(ledger: Ledger, party: PartyId, terms: EconomicTerms) -> int:
    """A party's spendable balance: its account, or what it is funded with when first seen."""
    funded = ledger.has_transaction(get_genesis_key(party))
    return int(ledger.balance(get_party_account(party))) if funded else terms.initial_balance


def get_shortfalls(ledger: Ledger | None, needs: dict[PartyId, int], terms: EconomicTerms) -> list[str]:
    """``party needs N, holds M`` for every party that cannot cover its part of a job (``ledger``
    ``None``: no ledger yet, every party would be funded with ``terms.initial_balance``)."""
    holds = {p: terms.initial_balance if ledger is None else get_funds(ledger, p, terms) for p in needs}
    return [f"{p} needs {needs[p]}, holds {holds[p]}" for p in sorted(needs) if holds[p] < needs[p]]


def get_job_transfers(ledger: Ledger, job_id: JobId) -> tuple[Transfer, ...]:
    """Every transfer recorded for ``job_id``, in order."""
    return tuple(t for tx in ledger.history(job_id) for t in tx.transfers)


def get_party_balances(ledger: Ledger) -> dict[str, int]:
    """Balance of every party account, keyed by party id."""
    return {
        str(get_party_of_account(account)): int(balance)
        for account, balance in ledger.balances(PARTY_PREFIX).items()
    }


def get_settlement_result(
    ledger: Ledger, job_id: JobId, already_settled: bool, supply_before: int
) -> SettlementResult:
    """Read a settled job's result back from the ledger."""
    transfers = get_job_transfers(ledger, job_id)
    return SettlementResult(
        job_id=job_id,
        already_settled=already_settled,
        transfers=transfers,
        supply_before=supply_before,
        supply_after=int(ledger.supply()),
        burned=sum(t.amount for t in transfers if t.dest == BURN),
        balances=get_party_balances(ledger),
    )


def settle_job(
    ledger: Ledger,
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    verdicts: Sequence[SolverVerdict],
    verifiers: Sequence[PartyId] = (),
    now: int | None = None,
) -> SettlementResult:
    """Fund, lock, and settle ``job_id`` by ``verdicts``, in one SQL transaction; idempotent.

    ``verifiers`` are the designated verifiers paid a fee. ``now`` is the current tick; when the lock
    was recorded with a tick (`lock_job`), settling before ``lock tick + terms.challenge_window``
    raises `ChallengeWindowOpen`. Raises `InvalidJobError` for inconsistent verdicts,
    `InsufficientFunds` when a party cannot cover its escrow; nothing is written then.
    """
    with ledger.atomic():
        # Rule: a settled job is never settled again
        if is_job_settled(ledger, job_id):
            return get_settlement_result(ledger, job_id, True, int(ledger.supply()))
        ordered = sorted(verdicts, key=lambda verdict: verdict.solver_id)
        ordered_verifiers = sorted(verifiers)
        check_job(job_id, submitter, terms, ordered, ordered_verifiers)
        process_funding(ledger, get_job_parties(submitter, ordered, ordered_verifiers), terms)
        supply_before = int(ledger.supply())
        solvers = [verdict.solver_id for verdict in ordered]
        lock = lock_job(ledger, job_id, submitter, terms, solvers, ordered_verifiers, now)
        # Rule: no settlement while the challenge window is open
        if is_challenge_window_open(terms, lock.tick, now):
            raise ChallengeWindowOpen(
                f"job {job_id!r}: challenge window opened at tick {lock.tick} closes at tick "
                f"{lock.tick + terms.challenge_window}; cannot settle at tick {now}"
            )
        bonds = compute_bond_locks(job_id, terms, ordered)
        ledger.post(Transaction(get_bonds_key(job_id), "bonds", tuple(bonds), job_id, now))
        transfers = compute_settlement(
            job_id, submitter, terms, ordered, ordered_verifiers, ledger.balance(JACKPOT)
        )
        ledger.post(Transaction(get_settle_key(job_id), "settle", tuple(transfers), job_id, now))
        return get_settlement_result(ledger, job_id, False, supply_before)
