"""Settlement rules: pure functions from a job's terms and verdicts to ledger transfers.

Nothing here reads or writes the ledger; `verification.settlement.settle` records what these rules
compute. Every amount is an integer number of token units and every share is in basis points (bps,
1/10000), rounded down, the remainder going to a named party so that nothing is lost to rounding.

Terms
-----
Submitter
    The party that pays for a job (Truebit's "task giver"). It escrows, per solver, the payment and
    the jackpot tax, and per designated verifier the verifier fee.
Stake
    What a solver escrows when it commits to its checkpoints (Truebit §4.3 "Deposits"); returned
    when it is paid, forfeit when it is slashed.
Bond
    What a challenger escrows for each dispute it opens; returned when it wins, forfeit when it loses.
    A bond makes frivolous challenges (delaying an honest solver) cost something (Arbitrum BoLD,
    Alvarez et al. 2024: every claim in a dispute is backed by a bond; the losers' bonds are
    confiscated).
Forfeit split
    How a forfeit deposit (a cheater's stake, a false challenger's bond) is divided:
    ``slash_reward_bps`` to the winner of the dispute, ``slash_burn_bps`` burned, and the rest, with the
    rounding remainder, refunded to the submitter (compensation for the wrong result or the delay).
    Only part goes to the winner: if the whole deposit did, a solver could challenge itself through a
    Sybil identity and lose nothing. Truebit limits what challengers collect for this reason (its
    Sybil defenses; Koch & Reitwießner 2018 rework the reward for it), and BoLD sends confiscated
    stakes to the DAO treasury rather than to the honest party. The shares are terms, not constants:
    ``slash_burn_bps = 10000 - slash_reward_bps`` burns all that the winner does not get.
Outcomes of a solver
    ``paid``: checked and found correct, or a challenge against it failed: stake back plus payment.
    ``unverified``: nobody checked it; paid optimistically, exactly like ``paid``.
    ``slashed``: a dispute (or equivocation evidence) showed it wrong: the stake is split as above and
    its payment goes back to the submitter. As in Verde's refereed delegation (Arun et al., Gensyn
    2025) the referee's ruling on one operator decides the whole job.
Equivocation
    Two valid signatures by one solver on conflicting commitments for the same job. The evidence is
    self-verifying, so the solver is slashed without re-execution and the reporter posts no bond: the
    slashing condition of Ethereum's consensus (consensus-specs ``process_proposer_slashing``).
Forced errors and the jackpot
    A verifier that always finds correct results earns nothing from checking and stops checking — the
    Verifier's Dilemma (Truebit §3.1). Truebit's answer (§4.1, §4.4): with probability
    ``forced_error_rate_bps`` a solver must submit a wrong result on purpose; it is not punished for it,
    and whoever challenges it is paid from the ``jackpot``, which a tax on every job fills (§4.2,
    ``jackpot_bps`` of the payment). A payout is capped by ``jackpot_payout_cap`` and by what the
    jackpot holds. Which solvers are forced is drawn from the solver's *ticket* (`is_forced_error`):
    its BLS signature on ``(job id, solver id)``. A BLS signature is unique and only its signer can
    make it, so the solver knows its draw and no verifier does until the solver reveals the ticket
    at settlement, where anyone can check it against the solver's key; Truebit likewise draws from
    randomness the solver commits to.
Challenge window
    The number of ticks after the stakes are locked during which challenges may still arrive; a job
    cannot be settled before it closes (the optimistic rollup challenge period of Arbitrum).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal, get_args

from proofs.types import JobId, PartyId, SolverId
from verification.settlement.accounts import (
    BURN,
    JACKPOT,
    MINT,
    AccountId,
    TokenAmount,
    Transfer,
    check_identifier,
    get_bond_escrow,
    get_party_account,
    get_payment_escrow,
    get_stake_escrow,
)

BPS = 10_000
FORCED_ERROR_DOMAIN = b"pinpoint/settlement/forced-error/v1"

Outcome = Literal["paid", "slashed", "unverified"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


class InvalidTermsError(ValueError):
    """Economic terms that cannot be applied (negative amount, share above 100 %, non-integer)."""


class InvalidJobError(ValueError):
    """A job's participants break a rule (no solver, a solver twice, the submitter as a solver)."""


class InvalidVerdictError(InvalidJobError):
    """A verdict that contradicts the rules (e.g. a false challenge on a slashed solver)."""


class ChallengeWindowOpen(Exception):
    """A job was settled before its challenge window closed."""


@dataclass(frozen=True)
class EconomicTerms:
    """Economic parameters of a job, in integer token units and basis points.

    ``payment_per_solver``: what the submitter pays each correct solver. ``solver_stake``: what each
    solver escrows. ``challenger_bond``: what a challenger escrows per dispute. ``verifier_fee``: what
    the submitter pays each designated verifier, checked or not. ``slash_reward_bps`` /
    ``slash_burn_bps``: the winner's and the burned shares of a forfeit deposit (the rest is refunded
    to the submitter). ``jackpot_bps``: jackpot tax, a share of each solver's payment paid on top by
    the submitter. ``forced_error_rate_bps``: probability that a solver is drawn for a forced error.
    ``jackpot_payout_cap``: most a single forced-error finding pays. ``challenge_window``: ticks from
    the lock to the earliest settlement. ``initial_balance``: what a party is minted when first seen.

    This is the one economic schedule: a job spec's ``economics`` is an ``EconomicTerms``, and the
    ledger, the lifecycle and the incentive study all read it from there.
    """

    payment_per_solver: TokenAmount = TokenAmount(1_000)
    solver_stake: TokenAmount = TokenAmount(5_000)
    challenger_bond: TokenAmount = TokenAmount(500)
    verifier_fee: TokenAmount = TokenAmount(50)
    slash_reward_bps: int = 5_000
    slash_burn_bps: int = 2_500
    jackpot_bps: int = 500
    forced_error_rate_bps: int = 100
    jackpot_payout_cap: TokenAmount = TokenAmount(10_000)
    challenge_window: int = 0
    initial_balance: TokenAmount = TokenAmount(100_000)

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # Rule: every term is a non-negative integer (amounts are never floats)
            if type(value) is not int or value < 0:
                raise InvalidTermsError(
                    f"economic term {field.name} must be a non-negative int, got {value!r}"
                )
            # Rule: a share in basis points is at most 100 %
            if field.name.endswith("_bps") and value > BPS:
                raise InvalidTermsError(f"economic term {field.name} = {value} exceeds {BPS} bps")
        # Rule: the winner's and the burned shares of a forfeit deposit leave a non-negative refund
        if self.slash_reward_bps + self.slash_burn_bps > BPS:
            raise InvalidTermsError(
                f"slash_reward_bps + slash_burn_bps = {self.slash_reward_bps} + "
                f"{self.slash_burn_bps} exceeds {BPS} bps"
            )


@dataclass(frozen=True)
class SolverVerdict:
    """What verification decided about one solver of a job.

    ``challenger`` is the party that disputed it (or reported its equivocation): it gets the slash
    reward, or loses its bond when ``false_challenge`` (it disputed an honest solver and lost).
    ``equivocation``: slashed on equivocation evidence, without re-execution. ``forfeit``: slashed
    for delivering no signed trace at all (its training failed or missed its deadline, or it did
    not sign its own run): nobody challenged it, so the reward share is burned. ``forced_error``: the
    solver was drawn for a forced error and ``challenger`` found it; the solver is paid and the
    challenger is paid from the jackpot. ``forced_ticket``: the valid ticket a solver drawn for a
    forced error revealed, found or not (with ``forced_error`` false, a forced error missed).
    """

    solver_id: SolverId
    outcome: Outcome
    challenger: PartyId | None = None
    false_challenge: bool = False
    equivocation: bool = False
    forfeit: bool = False
    forced_error: bool = False
    forced_ticket: bytes = b""  # the solver's revealed forced-error ticket (its signature on the draw)


@dataclass(frozen=True)
class ForfeitSplit:
    """Division of a forfeit deposit: to the dispute's winner, to ``burn``, back to the submitter."""

    reward: TokenAmount
    burn: TokenAmount
    refund: TokenAmount


def compute_movement(source: AccountId, dest: AccountId, amount: int, memo: str) -> list[Transfer]:
    """A one-transfer list, or an empty one when ``amount`` is zero (nothing moves)."""
    return [Transfer(source, dest, TokenAmount(amount), memo)] if amount else []


def compute_share(amount: int, bps: int) -> TokenAmount:
    """``bps`` basis points of ``amount``, rounded down."""
    return TokenAmount(amount * bps // BPS)


def compute_forfeit_split(amount: TokenAmount, terms: EconomicTerms) -> ForfeitSplit:
    """Split a forfeit deposit into reward, burn and refund; the rounding remainder is refunded."""
    reward = compute_share(amount, terms.slash_reward_bps)
    burn = compute_share(amount, terms.slash_burn_bps)
    return ForfeitSplit(reward, burn, TokenAmount(amount - reward - burn))


def compute_jackpot_tax(terms: EconomicTerms) -> TokenAmount:
    """Jackpot tax per solver, paid by the submitter on top of the payment (Truebit §4.2)."""
    return compute_share(terms.payment_per_solver, terms.jackpot_bps)


def compute_job_escrow(terms: EconomicTerms, n_solvers: int, n_verifiers: int) -> TokenAmount:
    """What the submitter escrows for a job: payments and taxes per solver, fees per verifier."""
    per_solver = terms.payment_per_solver + compute_jackpot_tax(terms)
    return TokenAmount(n_solvers * per_solver + n_verifiers * terms.verifier_fee)


def is_forced_error(job_id: JobId, solver_id: SolverId, terms: EconomicTerms, ticket: bytes = b"") -> bool:
    """Whether ``solver_id`` is drawn to submit a forced error in ``job_id`` (Truebit §4.4).

    The first 8 bytes of a domain-separated BLAKE2b hash of the ids and the solver's ``ticket``
    (its signature on the draw, see above), modulo 10000, below ``forced_error_rate_bps``.
    Whether the ticket is a valid signature is checked where keys are known (the lifecycle).
    """
    parts = (FORCED_ERROR_DOMAIN, job_id.encode(), solver_id.encode(), *((ticket,) if ticket else ()))
    digest = hashlib.blake2b(b"\x00".join(parts), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BPS < terms.forced_error_rate_bps


def is_disputed(verdict: SolverVerdict) -> bool:
    """Whether a challenger opened a dispute (and so posted a bond) against this solver.

    Equivocation reports need no dispute, hence no bond: the evidence proves itself.
    """
    return verdict.challenger is not None and not verdict.equivocation


def is_challenge_window_open(terms: EconomicTerms, locked_at: int | None, now: int | None) -> bool:
    """Whether challenges may still arrive at tick ``now`` for stakes locked at ``locked_at``.

    Without both ticks (a caller with no clock) there is no window to enforce.
    """
    if locked_at is None or now is None:
        return False
    return now < locked_at + terms.challenge_window


def check_verdict(job_id: JobId, terms: EconomicTerms, v: SolverVerdict) -> None:
    """Raise `InvalidVerdictError` naming the job, the solver and the offending fields."""
    where = f"job {job_id!r}, solver {v.solver_id!r}"
    # Rule: the outcome is one of paid, slashed, unverified
    if v.outcome not in OUTCOMES:
        raise InvalidVerdictError(f"{where}: outcome {v.outcome!r} is not one of {OUTCOMES}")
    # Rule: a solver does not challenge itself
    if v.challenger == v.solver_id:
        raise InvalidVerdictError(f"{where}: the challenger is the solver itself")
    # Rule: nobody checked an unverified solver, so nobody challenged it
    if v.outcome == "unverified" and v.challenger is not None:
        raise InvalidVerdictError(f"{where}: unverified but challenger={v.challenger!r}")
    # Rule: equivocation evidence slashes the solver
    if v.equivocation and v.outcome != "slashed":
        raise InvalidVerdictError(f"{where}: equivocation but outcome={v.outcome!r}")
    # Rule: a solver that delivered no signed trace forfeits its stake; nobody challenged it
    if v.forfeit and (v.outcome != "slashed" or v.challenger is not None):
        raise InvalidVerdictError(f"{where}: forfeit but outcome={v.outcome!r}, challenger={v.challenger!r}")
    # Rule: a dispute that slashed the solver was won by a challenger
    if v.outcome == "slashed" and not v.equivocation and not v.forfeit and v.challenger is None:
        raise InvalidVerdictError(f"{where}: slashed by a dispute but no challenger")
    # Rule: a challenged solver that was paid either beat a false challenge or had a forced error
    if (
        v.outcome == "paid"
        and v.challenger is not None
        and not (v.false_challenge ^ v.forced_error)
    ):
        raise InvalidVerdictError(
            f"{where}: paid with challenger={v.challenger!r} needs exactly one of "
            f"false_challenge={v.false_challenge}, forced_error={v.forced_error}"
        )
    # Rule: a false challenge or a forced-error finding concerns a paid solver with a challenger
    if (v.false_challenge or v.forced_error) and (v.outcome != "paid" or v.challenger is None):
        raise InvalidVerdictError(
            f"{where}: false_challenge={v.false_challenge}, forced_error={v.forced_error} need "
            f"outcome 'paid' and a challenger, got outcome={v.outcome!r}, challenger={v.challenger!r}"
        )
    # Rule: only a solver drawn for a forced error can be claimed against the jackpot
    if v.forced_error and not is_forced_error(job_id, v.solver_id, terms, v.forced_ticket):
        raise InvalidVerdictError(
            f"{where}: jackpot claimed but the solver was not drawn for a forced error"
        )


def check_participants(
    job_id: JobId,
    submitter: PartyId,
    solvers: Sequence[SolverId],
    verifiers: Sequence[PartyId],
) -> None:
    """Validate who takes part in a job; raise `InvalidJobError` or `InvalidIdentifierError`."""
    for kind, identifier in (("job", job_id), ("submitter", submitter)):
        check_identifier(kind, identifier)
    for identifier in (*solvers, *verifiers):
        check_identifier("party", identifier)
    # Rule: a job has at least one solver
    if not solvers:
        raise InvalidJobError(f"job {job_id!r}: no solvers")
    # Rule: each solver stakes once per job
    if len(set(solvers)) != len(solvers):
        raise InvalidJobError(f"job {job_id!r}: duplicate solvers in {list(solvers)}")
    # Rule: a submitter does not solve its own job
    if submitter in solvers:
        raise InvalidJobError(f"job {job_id!r}: submitter {submitter!r} is also a solver")
    # Rule: a verifier is paid one fee per job
    if len(set(verifiers)) != len(verifiers):
        raise InvalidJobError(f"job {job_id!r}: duplicate verifiers in {list(verifiers)}")


def check_job(
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    verdicts: Sequence[SolverVerdict],
    verifiers: Sequence[PartyId],
) -> None:
    """Validate a job's participants and verdicts; raise `InvalidJobError` (or a subclass)."""
    check_participants(job_id, submitter, [v.solver_id for v in verdicts], verifiers)
    for verdict in verdicts:
        check_verdict(job_id, terms, verdict)


def compute_genesis(balances: Mapping[PartyId, TokenAmount]) -> list[Transfer]:
    """Mint the initial balance of each party (a transfer out of the issuer account ``mint``)."""
    transfers: list[Transfer] = []
    for party, amount in sorted(balances.items()):
        transfers += compute_movement(MINT, get_party_account(party), amount, "genesis mint")
    return transfers


def compute_locks(
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    solvers: Sequence[SolverId],
    verifiers: Sequence[PartyId],
) -> list[Transfer]:
    """Escrow the submitter's payment and each solver's stake when the solvers commit.

    Truebit §4.3: the task giver deposits the reward and the solver a deposit before any work is
    judged; both stay locked until the challenge period ends.
    """
    check_participants(job_id, submitter, solvers, verifiers)
    escrow = compute_job_escrow(terms, len(solvers), len(verifiers))
    transfers = compute_movement(
        get_party_account(submitter), get_payment_escrow(job_id), escrow, "escrow payment"
    )
    for solver in solvers:
        transfers += compute_movement(
            get_party_account(solver), get_stake_escrow(job_id, solver), terms.solver_stake, "stake"
        )
    return transfers


def compute_bond_locks(
    job_id: JobId, terms: EconomicTerms, verdicts: Sequence[SolverVerdict]
) -> list[Transfer]:
    """Escrow one bond per dispute from its challenger (BoLD: each challenge is backed by a bond)."""
    transfers: list[Transfer] = []
    for verdict in verdicts:
        if is_disputed(verdict) and verdict.challenger is not None:
            transfers += compute_movement(
                get_party_account(verdict.challenger),
                get_bond_escrow(job_id, verdict.challenger),
                terms.challenger_bond,
                f"bond: dispute of {verdict.solver_id}",
            )
    return transfers


def compute_payout(job_id: JobId, terms: EconomicTerms, solver: SolverId) -> list[Transfer]:
    """Pay a correct (or unchecked) solver: its stake back and its payment (Truebit §4.6)."""
    account = get_party_account(solver)
    return compute_movement(
        get_stake_escrow(job_id, solver), account, terms.solver_stake, "stake refund"
    ) + compute_movement(get_payment_escrow(job_id), account, terms.payment_per_solver, "payment")


def compute_forfeit(
    source: AccountId,
    amount: TokenAmount,
    winner: PartyId | None,
    submitter: PartyId,
    terms: EconomicTerms,
    memo: str,
) -> list[Transfer]:
    """Divide a forfeit deposit by `compute_forfeit_split`; with no winner its reward is burned."""
    split = compute_forfeit_split(amount, terms)
    reward_dest = BURN if winner is None else get_party_account(winner)
    return (
        compute_movement(source, reward_dest, split.reward, f"{memo}: reward")
        + compute_movement(source, BURN, split.burn, f"{memo}: burn")
        + compute_movement(source, get_party_account(submitter), split.refund, f"{memo}: refund")
    )


def compute_slash(
    job_id: JobId, submitter: PartyId, terms: EconomicTerms, verdict: SolverVerdict
) -> list[Transfer]:
    """Slash a cheating solver: split its stake, give its payment back to the submitter.

    Truebit §4.3 (a solver whose result is shown wrong loses its deposit) and Verde (the provider the
    referee rules against is penalized); an equivocating solver is slashed the same way.
    """
    reason = "equivocation" if verdict.equivocation else "forfeit" if verdict.forfeit else "slash"
    return compute_forfeit(
        get_stake_escrow(job_id, verdict.solver_id),
        terms.solver_stake,
        verdict.challenger,
        submitter,
        terms,
        f"{reason} of {verdict.solver_id}",
    ) + compute_movement(
        get_payment_escrow(job_id),
        get_party_account(submitter),
        terms.payment_per_solver,
        f"payment refund: {verdict.solver_id} slashed",
    )


def compute_bond_resolution(
    job_id: JobId, submitter: PartyId, terms: EconomicTerms, verdict: SolverVerdict
) -> list[Transfer]:
    """Return a winning challenger's bond; split a false challenger's bond, the solver winning.

    A false challenger wrongly accused ``verdict.solver_id``, which gets the reward share of the bond
    (BoLD: the loser's bond is confiscated; Truebit §4.3: a challenger's deposit is at risk).
    """
    challenger = verdict.challenger
    if challenger is None:
        return []
    bond = get_bond_escrow(job_id, challenger)
    if verdict.false_challenge:
        return compute_forfeit(
            bond,
            terms.challenger_bond,
            PartyId(verdict.solver_id),
            submitter,
            terms,
            f"false challenge of {verdict.solver_id} by {challenger}",
        )
    return compute_movement(
        bond,
        get_party_account(challenger),
        terms.challenger_bond,
        f"bond refund: {verdict.solver_id}",
    )


def compute_jackpot_payout(terms: EconomicTerms, jackpot_balance: int) -> TokenAmount:
    """What one forced-error finding draws from a jackpot holding ``jackpot_balance`` (Truebit §4.1)."""
    return TokenAmount(min(terms.jackpot_payout_cap, jackpot_balance))


def compute_verdict_transfers(
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    verdict: SolverVerdict,
    jackpot_balance: int,
) -> list[Transfer]:
    """Transfers settling one solver: payout or slash, its dispute's bond, a jackpot payout."""
    if verdict.outcome == "slashed":
        transfers = compute_slash(job_id, submitter, terms, verdict)
    else:
        transfers = compute_payout(job_id, terms, verdict.solver_id)
    if is_disputed(verdict):
        transfers += compute_bond_resolution(job_id, submitter, terms, verdict)
    if verdict.forced_error and verdict.challenger is not None:
        transfers += compute_movement(
            JACKPOT,
            get_party_account(verdict.challenger),
            compute_jackpot_payout(terms, jackpot_balance),
            f"jackpot: forced error of {verdict.solver_id} found",
        )
    return transfers


def compute_settlement(
    job_id: JobId,
    submitter: PartyId,
    terms: EconomicTerms,
    verdicts: Sequence[SolverVerdict],
    verifiers: Sequence[PartyId],
    jackpot_balance: int,
) -> list[Transfer]:
    """All transfers that settle a job whose stakes, payment and bonds are escrowed.

    In order: the jackpot tax of each solver (Truebit §4.2), the fee of each designated verifier, then
    each solver's verdict. ``jackpot_balance`` is what the jackpot held before this job; payouts draw
    on it plus this job's tax, one after the other. Callers pass verdicts and verifiers in a canonical
    order (`settle_job` sorts them) so that a retry computes identical transfers.
    """
    check_job(job_id, submitter, terms, verdicts, verifiers)
    escrow = get_payment_escrow(job_id)
    tax = compute_jackpot_tax(terms)
    transfers: list[Transfer] = []
    for verdict in verdicts:
        transfers += compute_movement(escrow, JACKPOT, tax, f"jackpot tax: {verdict.solver_id}")
    for verifier in verifiers:
        transfers += compute_movement(
            escrow, get_party_account(verifier), terms.verifier_fee, "verifier fee"
        )
    jackpot = jackpot_balance + tax * len(verdicts)
    for verdict in verdicts:
        settled = compute_verdict_transfers(job_id, submitter, terms, verdict, jackpot)
        jackpot -= sum(t.amount for t in settled if t.source == JACKPOT)
        transfers += settled
    return transfers
