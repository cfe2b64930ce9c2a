"""The protocol of one job as a state machine: a ``JobState`` and its ``process_*`` transitions.

Terms
-----
- *committee*: the job's verifiers, in order (``verification.job.get_committee``): the lead
  verifier, then the attesters. Each commits to a spot-check coin of its own when the job opens,
  reveals it, checks the solvers its coin selects and signs its verdicts.
- *message*: what a party sends the job: a solver's signed commitment (``Signed[Commitment]``,
  ``proofs.messages``); a verifier's coin reveal (``CoinReveal``, ``verification.verifier``);
  its spot-check reports (``CheckReport``); the committee's *aggregate attestations*
  (``AggregateAttestation``, ``proofs.messages``: one verdict on one solver's trace root, signed
  by every verifier that reached it, the signatures aggregated into one and checked with
  FastAggregateVerify against the job's verifier registry: consensus-specs' aggregate
  attestations, ``process_attestation``); the challenge the first verifier that found a mismatch
  opens (``Challenge``);
  the bisection game's outcome (``DisputeOutcome``: the transcript's head, the located step and
  operator, the winner by the game's rules); the referee's signed ruling on it (``Signed[Ruling]``,
  ``proofs.messages``: content-addressed by its signing root, bound to the transcript head); the
  request to settle, with the forced-error tickets the solvers reveal (``SettleRequest``: each
  solver's signature on its draw, Truebit §4.4).
- *state*: ``JobState``, everything the protocol has accepted about the job so far.
- *transition*: ``process_<message>(job, state, message) -> state``. Pure: it returns a new state
  and never changes its input. An invalid message (another job's, an unknown party's, forged,
  out of order, a duplicate) raises a named ``ProtocolError`` and the caller's state is unchanged.
  This is consensus-specs' shape: the spec is the state-transition function, and its test
  vectors are (pre-state, message, post-state or error) triples (``tests/protocol/vectors``).
- *phase*: where the job is. Phases only move forward; ``TRANSITIONS`` (a table, as BoLD writes
  its challenge manager's) says in which phases each message is accepted and where it leads:
  ``commit`` (every verifier's coin is committed; solvers commit) → ``check`` (a coin is revealed,
  so no solver can commit any more; each verifier reveals its coin and reports one check per
  solver, and the committee attests to its conclusive checks) → ``dispute`` (a challenge per
  solver that some verifier found a mismatch in, each bisected by its game and closed by the
  referee's signed ruling) → ``settled``.

The rules are called where they live, not restated: a commitment's signature
(``proofs.messages.verify_signed``), the coin's reveal and selection
(``verification.verifier.compute_selection_faults``), an aggregate attestation
(``proofs.messages.verify_aggregate_attestation``), forced errors (``is_forced_error``,
Truebit §4.4) and the settlement's consistency (``verification.settlement.rules.check_job``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from proofs.bls import get_backend
from proofs.messages import (
    AggregateAttestation,
    Attestation,
    Commitment,
    Ruling,
    Signed,
    verify_aggregate_attestation,
    verify_signed,
)
from proofs.types import JobId, Party, PartyId, Root, SolverId, Step
from verification.dispute import DisputeResult
from verification.job import (
    REFEREE,
    Job,
    ProtocolError,
    UnknownPartyError,
    get_committee,
    get_public_key,
    get_solver,
    get_verifier_registry,
    is_verifier,
)
from verification.settlement.rules import SolverVerdict, check_job, is_forced_error
from verification.solver import is_valid_ticket
from verification.verifier import (
    CoinCommitment,
    CoinReveal,
    SpotCheck,
    compute_selection_faults,
    is_attestable,
)


class WrongJobError(ProtocolError):
    """A message names another job's id."""


class InvalidMessageError(ProtocolError):
    """A message of the wrong type, or with fields the job does not allow (``T``, ``k``, a winner)."""


class ForgedMessageError(ProtocolError):
    """A message not made by the party it claims: unregistered key, bad signature, a coin reveal
    that does not open the coin's commitment."""


class OutOfOrderError(ProtocolError):
    """A message the job's phase does not accept yet, or any more."""


class DuplicateMessageError(ProtocolError):
    """A second message of a kind a party sends once."""


class SelectionFaultError(ProtocolError):
    """A spot check of a solver the verifier's revealed coin did not select."""


class UnattestedCheckError(ProtocolError):
    """A conclusive spot check that its verifier never signed an attestation to."""


class UnfoundedChallengeError(ProtocolError):
    """A challenge of a solver whose spot check found no mismatch."""


class UnfoundedJackpotClaimError(ProtocolError):
    """A forced-error ticket, validly signed, that draws no forced error: a claim on the jackpot
    for a solver the job did not draw (Truebit §4.4: only a forced error pays from the jackpot)."""


class Phase(StrEnum):
    COMMIT = "commit"
    CHECK = "check"
    DISPUTE = "dispute"
    SETTLED = "settled"


class Kind(StrEnum):
    """The kinds of protocol message, one transition each."""

    COMMIT = "commit"
    REVEAL = "reveal"
    CHECK = "check"
    ATTEST = "attest"
    CHALLENGE = "challenge"
    DISPUTE = "dispute"
    RULE = "rule"
    SETTLE = "settle"


# kind of message: (the phases that accept it, the phase it leads to)
TRANSITIONS: dict[Kind, tuple[frozenset[Phase], Phase]] = {
    Kind.COMMIT: (frozenset({Phase.COMMIT}), Phase.COMMIT),
    Kind.REVEAL: (frozenset({Phase.COMMIT, Phase.CHECK}), Phase.CHECK),
    Kind.CHECK: (frozenset({Phase.CHECK}), Phase.CHECK),
    Kind.ATTEST: (frozenset({Phase.CHECK}), Phase.CHECK),
    Kind.CHALLENGE: (frozenset({Phase.CHECK, Phase.DISPUTE}), Phase.DISPUTE),
    Kind.DISPUTE: (frozenset({Phase.DISPUTE}), Phase.DISPUTE),
    Kind.RULE: (frozenset({Phase.DISPUTE}), Phase.DISPUTE),
    Kind.SETTLE: (frozenset({Phase.CHECK, Phase.DISPUTE}), Phase.SETTLED),
}


# -- messages ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    """A verifier's spot check of one solver."""

    job_id: JobId
    verifier: PartyId
    check: SpotCheck


@dataclass(frozen=True)
class Challenge:
    """A verifier disputes a solver's trace; bisection starts at ``disputed_interval`` (the
    interval policy's first mismatching interval) or over the whole trace (``None``)."""

    job_id: JobId
    challenger: PartyId
    solver_id: SolverId
    disputed_interval: int | None


@dataclass(frozen=True)
class DisputeOutcome:
    """How a challenge ended: the bisection's result and the referee's ruling (its winner)."""

    job_id: JobId
    solver_id: SolverId
    result: DisputeResult


@dataclass(frozen=True)
class SettleRequest:
    """Settle the job; solvers drawn for a forced error reveal their tickets (hex) now. A ticket
    that is not a solver's valid signature on a draw that hits is refused, and the request with it
    (``require_valid_ticket``)."""

    job_id: JobId
    tickets: tuple[tuple[SolverId, str], ...] = ()


WINNERS = ("solver", "challenger")


# -- the state ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobState:
    """What the protocol knows about a job at one point of its life."""

    phase: Phase = Phase.COMMIT
    coins: dict[PartyId, CoinCommitment] = field(default_factory=dict)  # each verifier's, published when the job opened
    commitments: dict[SolverId, Signed] = field(default_factory=dict)  # each solver's accepted commitment
    reveals: dict[PartyId, CoinReveal] = field(default_factory=dict)  # each verifier's revealed coin
    checks: dict[PartyId, dict[SolverId, SpotCheck]] = field(default_factory=dict)  # by verifier, by solver
    attestations: tuple[AggregateAttestation, ...] = ()  # the committee's, each verified on arrival
    challenges: dict[SolverId, Challenge] = field(default_factory=dict)  # every challenge opened
    disputes: dict[SolverId, DisputeResult] = field(default_factory=dict)  # every challenge bisected
    rulings: dict[SolverId, Signed] = field(default_factory=dict)  # the referee's signed ruling on each
    verdicts: tuple[SolverVerdict, ...] = ()  # what settlement applies, once settled


def compute_genesis_state(job: Job, coins: Sequence[CoinCommitment] = ()) -> JobState:
    """The state of a job that opened: the coin commitments its verifiers published."""
    by_verifier: dict[PartyId, CoinCommitment] = {}
    for coin in coins:
        require_job_id(job, Kind.COMMIT, coin.job_id)
        require_verifier(job, Kind.COMMIT, coin.verifier)
        # Rule: a verifier commits to one coin per job (write-once).
        if coin.verifier in by_verifier:
            raise DuplicateMessageError(f"job {job.job_id}: verifier {coin.verifier!r} committed to two coins")
        by_verifier[coin.verifier] = coin
    return JobState(coins=by_verifier)


def get_open_challenges(state: JobState) -> list[SolverId]:
    return [sid for sid in state.challenges if sid not in state.disputes]


def get_solver_checks(job: Job, checks: Mapping[PartyId, Mapping[SolverId, SpotCheck]],
                      solver_id: SolverId) -> list[tuple[PartyId, SpotCheck]]:
    """Every verifier's check of ``solver_id``, in committee order."""
    return [(v, checks[v][solver_id]) for v in get_committee(job) if solver_id in checks.get(v, {})]


def get_first_finder(job: Job, checks: Mapping[PartyId, Mapping[SolverId, SpotCheck]],
                     solver_id: SolverId) -> PartyId | None:
    """The first verifier, in committee order, whose check of ``solver_id`` found a mismatch."""
    return next((v for v, check in get_solver_checks(job, checks, solver_id) if check.mismatch), None)


def get_deciding_check(job: Job, checks: Mapping[PartyId, Mapping[SolverId, SpotCheck]],
                       solver_id: SolverId) -> tuple[PartyId, SpotCheck]:
    """The check that decides ``solver_id``'s verdict, and whose it is: the first verifier's, in
    committee order, that found a mismatch or holds equivocation evidence (it is the challenger
    or the reporter); else the first that checked the solver; else the lead verifier's (a
    forfeit, or nobody checked it)."""
    found = get_solver_checks(job, checks, solver_id)
    for predicate in (lambda c: c.mismatch or c.equivocation is not None, lambda c: c.checked, lambda c: True):
        for verifier, check in found:
            if predicate(check):
                return verifier, check
    raise OutOfOrderError(f"job {job.job_id}: no verifier reported a check of solver {solver_id!r}")


def get_attested(state: JobState) -> set[tuple[PartyId, SolverId]]:
    """(verifier, solver) of every attestation in the state's aggregates."""
    return {(v, a.solver_id) for a in state.attestations for v in a.verifier_ids}


# -- checks every transition makes -------------------------------------------------------------
def require_phase(job: Job, state: JobState, kind: Kind) -> None:
    allowed, _ = TRANSITIONS[kind]
    # Rule: a message is accepted only in the phases of the transition table.
    if state.phase not in allowed:
        raise OutOfOrderError(f"job {job.job_id}: a {kind} message in phase {state.phase!s} "
                              f"(accepted in {', '.join(sorted(allowed))})")


def require_job_id(job: Job, kind: Kind, job_id: object) -> None:
    # Rule: every message names the job it belongs to.
    if job_id != job.job_id:
        raise WrongJobError(f"a {kind} message of job {job_id!r} was sent to job {job.job_id}")


def require_verifier(job: Job, kind: Kind, party: object) -> None:
    # Rule: coins, reveals, checks and challenges are the job's designated verifiers'.
    if not is_verifier(job, party):
        raise UnknownPartyError(f"job {job.job_id}: a {kind} message from {party!r}, the job's verifiers "
                                f"are {list(get_committee(job))}")


def advance(state: JobState, kind: Kind, **changes: object) -> JobState:
    """A new state: ``changes`` applied and the phase the table leads ``kind`` to."""
    return dataclasses.replace(state, phase=TRANSITIONS[kind][1], **changes)


# -- commit ------------------------------------------------------------------------------------
def require_valid_commitment(job: Job, signed: object) -> None:
    """A commitment the job accepts: a ``Signed[Commitment]`` binding this job, one of its solvers,
    ``T`` and ``k``, signed with that solver's registered key, the signature verifying. Raises
    ``MalformedKeyError`` / ``MalformedSignatureError`` for bytes that are no BLS key or signature."""
    if not isinstance(signed, Signed) or not isinstance(signed.message, Commitment):
        raise InvalidMessageError(f"job {job.job_id}: a commit message must be a signed Commitment, "
                                  f"got {type(getattr(signed, 'message', signed)).__name__}")
    message = signed.message
    solver_id = message.solver_id
    expected = {"job_id": job.job_id, "steps": job.spec.steps, "interval": job.spec.checkpoint_interval}
    for name, value in expected.items():
        # Rule: a commitment binds this job, T and k (a commitment of another job is a replay)
        if getattr(message, name) != value:
            error = WrongJobError if name == "job_id" else InvalidMessageError
            raise error(f"job {job.job_id}: commitment of solver {solver_id!r} has "
                        f"{name}={getattr(message, name)!r}, the job has {value!r}")
    get_solver(job, solver_id)
    backend = get_backend()
    backend.decode_pubkey(signed.public_key)
    backend.decode_signature(signed.signature)
    registered = get_public_key(job, solver_id)
    # Rule: a commitment is signed with the registered key of its solver
    if signed.public_key != registered:
        raise ForgedMessageError(f"job {job.job_id}: commitment of solver {solver_id!r} is signed with key "
                                 f"{bytes(signed.public_key).hex()}, registered {registered.hex()}")
    # Rule: the signature verifies on the commitment's signing root
    if not verify_signed(signed, backend):
        raise ForgedMessageError(f"signature of solver {solver_id!r} on its commitment to job "
                                 f"{job.job_id} does not verify")


def process_commit(job: Job, state: JobState, signed: Signed) -> JobState:
    """A solver's signed commitment to its trace joins the job."""
    require_phase(job, state, Kind.COMMIT)
    require_valid_commitment(job, signed)
    solver_id = signed.message.solver_id
    # Rule: a solver commits once; a second commitment is equivocation evidence, never a replacement.
    if solver_id in state.commitments:
        raise DuplicateMessageError(f"job {job.job_id}: solver {solver_id!r} already committed")
    return advance(state, Kind.COMMIT, commitments={**state.commitments, solver_id: signed})


# -- reveal ------------------------------------------------------------------------------------
def process_reveal(job: Job, state: JobState, reveal: CoinReveal) -> JobState:
    """A verifier reveals its coin's secret: commitments close (the first reveal), its spot
    checks open."""
    require_phase(job, state, Kind.REVEAL)
    require_job_id(job, Kind.REVEAL, reveal.job_id)
    require_verifier(job, Kind.REVEAL, reveal.verifier)
    verifier = reveal.verifier
    coin = state.coins.get(verifier)
    # Rule: the coin was committed to when the job opened, before any solver committed.
    if coin is None:
        raise OutOfOrderError(f"job {job.job_id}: verifier {verifier!r} reveals a coin it never committed to")
    # Rule: a verifier reveals its coin once.
    if verifier in state.reveals:
        raise DuplicateMessageError(f"job {job.job_id}: verifier {verifier!r} already revealed its coin")
    faults = compute_selection_faults(coin, reveal, {}, {}, job.spec.spot_check_probability, job.spec.hashing)
    # Rule: the reveal opens the coin's commitment.
    if faults:
        raise ForgedMessageError(f"job {job.job_id}: verifier {verifier!r}: {'; '.join(faults)}")
    return advance(state, Kind.REVEAL, reveals={**state.reveals, verifier: reveal})


# -- check -------------------------------------------------------------------------------------
def is_checked_trace(check: SpotCheck) -> bool:
    """Whether the verifier judged a trace (re-executed it, or holds equivocation evidence)."""
    return check.checked or check.mismatch or check.equivocation is not None


def process_check(job: Job, state: JobState, report: CheckReport) -> JobState:
    """A verifier's spot check of one solver, audited against that verifier's revealed coin."""
    require_phase(job, state, Kind.CHECK)
    require_job_id(job, Kind.CHECK, report.job_id)
    require_verifier(job, Kind.CHECK, report.verifier)
    check, verifier = report.check, report.verifier
    get_solver(job, check.solver_id)
    # Rule: a verifier checks after it revealed its own coin.
    if verifier not in state.reveals:
        raise OutOfOrderError(f"job {job.job_id}: verifier {verifier!r} reports a check before it revealed its coin")
    done = state.checks.get(verifier, {})
    if check.solver_id in done:
        raise DuplicateMessageError(f"job {job.job_id}: verifier {verifier!r} already checked solver "
                                    f"{check.solver_id!r}")
    faults = compute_selection_faults(state.coins[verifier], state.reveals[verifier], state.commitments,
                                      {check.solver_id: check}, job.spec.spot_check_probability, job.spec.hashing)
    # Rule: a verifier checks only the solvers its own coin selected.
    if faults:
        raise SelectionFaultError(f"job {job.job_id}: verifier {verifier!r}: {'; '.join(faults)}")
    # Rule: only a committed trace is judged; a solver without one forfeits or is left unchecked.
    if is_checked_trace(check) and check.solver_id not in state.commitments:
        raise InvalidMessageError(f"job {job.job_id}: solver {check.solver_id!r} was checked, but it has "
                                  f"no accepted commitment")
    return advance(state, Kind.CHECK, checks={**state.checks, verifier: {**done, check.solver_id: check}})


# -- attest ------------------------------------------------------------------------------------
def compute_attestation(job: Job, verifier: PartyId, check: SpotCheck, trace_root: Root) -> Attestation:
    """What ``verifier`` signs for a conclusive check of a solver whose committed trace root is
    ``trace_root``: verdict ``True`` when its re-execution matched, ``False`` on a mismatch."""
    return Attestation(job.job_id, verifier, check.solver_id, trace_root, not check.mismatch)


def require_registered_signers(job: Job, aggregate: AggregateAttestation) -> None:
    """``ForgedMessageError`` naming the job, the solver and the verifier when a signer of the
    aggregate is not one of the job's verifiers, signs with another key than its registered one,
    or the aggregate signature does not verify (FastAggregateVerify) on the attestation's signing
    root: a tampered verdict or trace root verifies under no honest committee's keys."""
    where = f"job {job.job_id}: the aggregate attestation on solver {aggregate.solver_id!r}"
    registry = get_verifier_registry(job)
    keys = aggregate.public_keys if isinstance(aggregate.public_keys, tuple) else ()
    for verifier, key in zip(aggregate.verifier_ids, keys, strict=False):
        # Rule: only the committee attests, each with the key it registered (with its proof of possession).
        if not is_verifier(job, verifier):
            raise ForgedMessageError(f"{where} is signed by {verifier!r}, which is not a registered verifier "
                                     f"of the job {list(get_committee(job))}")
        if not registry.is_registered(verifier, key):
            raise ForgedMessageError(f"{where} carries key {bytes(key).hex()[:16]}… for verifier {verifier!r}, "
                                     f"not its registered key")
    # Rule: the aggregate signature verifies under every signer's registered key (FastAggregateVerify).
    if not verify_aggregate_attestation(aggregate, registry):
        raise ForgedMessageError(f"{where} (verdict {aggregate.verdict!r}) is not the aggregate signature of "
                                 f"verifiers {list(aggregate.verifier_ids)}")


def process_attest(job: Job, state: JobState, aggregate: AggregateAttestation) -> JobState:
    """The committee's aggregate attestation to one verdict on one solver: every signer checked
    that solver conclusively and reached that verdict (consensus-specs ``process_attestation``,
    the aggregate checked with FastAggregateVerify against the job's verifier registry)."""
    require_phase(job, state, Kind.ATTEST)
    if not isinstance(aggregate, AggregateAttestation):
        raise InvalidMessageError(f"job {job.job_id}: an attest message must be an AggregateAttestation, "
                                  f"got {type(aggregate).__name__}")
    require_job_id(job, Kind.ATTEST, aggregate.job_id)
    require_registered_signers(job, aggregate)
    sid = aggregate.solver_id
    get_solver(job, sid)
    signed = state.commitments.get(sid)
    # Rule: an attestation is to the trace root the solver committed to.
    if signed is None or signed.message.trace_root != aggregate.trace_root:
        raise InvalidMessageError(f"job {job.job_id}: the aggregate attestation on solver {sid!r} is to trace "
                                  f"root {bytes(aggregate.trace_root).hex()[:16]}…, not the solver's committed one")
    attested = get_attested(state)
    for verifier in aggregate.verifier_ids:
        check = state.checks.get(verifier, {}).get(sid)
        # Rule: a verifier attests only to a conclusive check it reported, with that check's verdict.
        if check is None or not is_attestable(check):
            raise InvalidMessageError(f"job {job.job_id}: verifier {verifier!r} attests to solver {sid!r}, "
                                      f"which it did not check conclusively")
        if aggregate.verdict != (not check.mismatch):
            raise InvalidMessageError(f"job {job.job_id}: verifier {verifier!r} attests verdict "
                                      f"{aggregate.verdict!r} on solver {sid!r}, its check found "
                                      f"{'a mismatch' if check.mismatch else 'no mismatch'}")
        # Rule: a verifier attests once per solver.
        if (verifier, sid) in attested:
            raise DuplicateMessageError(f"job {job.job_id}: verifier {verifier!r} already attested to solver {sid!r}")
    return advance(state, Kind.ATTEST, attestations=(*state.attestations, aggregate))


# -- challenge ---------------------------------------------------------------------------------
def is_every_check_in(job: Job, state: JobState) -> bool:
    """Whether every verifier of the committee reported a check of every solver."""
    return all(len(state.checks.get(v, {})) == len(job.solvers) for v in get_committee(job))


def process_challenge(job: Job, state: JobState, challenge: Challenge) -> JobState:
    """A verifier disputes the trace of a solver its own check found a mismatch in: one game per
    solver, played by the first verifier in committee order that found one."""
    require_phase(job, state, Kind.CHALLENGE)
    require_job_id(job, Kind.CHALLENGE, challenge.job_id)
    require_verifier(job, Kind.CHALLENGE, challenge.challenger)
    sid, challenger = challenge.solver_id, challenge.challenger
    if sid in state.challenges:
        raise DuplicateMessageError(f"job {job.job_id}: solver {sid!r} is already challenged")
    check = state.checks.get(challenger, {}).get(sid)
    # Rule: a challenge stands on the challenger's own spot check that found a mismatch ...
    if check is None or not check.mismatch:
        raise UnfoundedChallengeError(f"job {job.job_id}: solver {sid!r} is challenged by {challenger!r}, but no "
                                      f"spot check of it by {challenger!r} found a mismatch")
    # ... once all checks are in ...
    if not is_every_check_in(job, state):
        raise OutOfOrderError(f"job {job.job_id}: a challenge before every verifier checked every solver")
    first = get_first_finder(job, state.checks, sid)
    # ... by the first verifier, in committee order, that found it (one game per solver).
    if challenger != first:
        raise InvalidMessageError(f"job {job.job_id}: solver {sid!r} is challenged by {challenger!r}, but the "
                                  f"first verifier that found its mismatch is {first!r}")
    return advance(state, Kind.CHALLENGE, challenges={**state.challenges, sid: challenge})


# -- dispute -----------------------------------------------------------------------------------
def process_dispute(job: Job, state: JobState, outcome: DisputeOutcome) -> JobState:
    """A challenge's bisection game ended at its transcript head, the disputed step and operator
    located (the *bisect* transition); the referee's signed ruling closes it (``process_rule``)."""
    require_phase(job, state, Kind.DISPUTE)
    require_job_id(job, Kind.DISPUTE, outcome.job_id)
    sid = outcome.solver_id
    if sid in state.disputes:
        raise DuplicateMessageError(f"job {job.job_id}: the dispute of solver {sid!r} is already closed")
    # Rule: a dispute closes an open challenge.
    if sid not in state.challenges:
        raise OutOfOrderError(f"job {job.job_id}: a dispute outcome for solver {sid!r}, which was never challenged")
    # Rule: a dispute is won by one of its two parties.
    if outcome.result.winner not in WINNERS:
        raise InvalidMessageError(f"job {job.job_id}: the dispute of solver {sid!r} names winner "
                                  f"{outcome.result.winner!r}, not one of {WINNERS}")
    return advance(state, Kind.DISPUTE, disputes={**state.disputes, sid: outcome.result})


# -- settle ------------------------------------------------------------------------------------
def require_valid_ticket(job: Job, solver_id: SolverId, ticket_hex: object) -> bytes:
    """The forced-error ticket (hex) that ``solver_id`` reveals at settlement, as bytes: one of the
    job's solvers' (``UnknownPartyError``), hex (``InvalidMessageError``), the solver's signature on
    its draw (``verification.solver.is_valid_ticket``; ``ForgedMessageError``) and a draw that hits
    (``is_forced_error``; ``UnfoundedJackpotClaimError``)."""
    get_solver(job, solver_id)
    try:
        ticket = bytes.fromhex(ticket_hex)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidMessageError(f"job {job.job_id}: solver {solver_id!r} reveals a forced-error ticket "
                                  f"that is not hex: {ticket_hex!r}") from None
    # Rule: a forced error is claimed with the solver's valid signature on its draw ...
    if not is_valid_ticket(job.spec, job.job_id, solver_id, ticket):
        raise ForgedMessageError(f"job {job.job_id}: the forced-error ticket revealed for solver {solver_id!r} "
                                 f"is not its signature on its draw")
    # ... and the draw hits (Truebit §4.4): a ticket that draws no forced error claims nothing.
    if not is_forced_error(job.job_id, solver_id, job.terms, ticket):
        raise UnfoundedJackpotClaimError(f"job {job.job_id}: solver {solver_id!r} reveals its ticket, but it "
                                         f"draws no forced error (rate {job.terms.forced_error_rate_bps} bps)")
    return ticket


def get_revealed_ticket(job: Job, solver_id: SolverId, ticket_hex: str) -> bytes | None:
    """The forced-error ticket a solver revealed, if ``require_valid_ticket`` accepts it (a valid
    one that draws a forced error, ``verification.solver.get_forced_error_ticket``); ``None`` for an
    empty or an invalid one. Never raises."""
    if not ticket_hex:
        return None
    try:
        return require_valid_ticket(job, solver_id, ticket_hex)
    except ProtocolError:
        return None


def require_valid_tickets(job: Job, tickets: object) -> dict[SolverId, bytes]:
    """Every ticket of a settle request, checked (``require_valid_ticket``), by solver."""
    if not isinstance(tickets, tuple) or not all(isinstance(t, tuple) and len(t) == 2 for t in tickets):
        raise InvalidMessageError(f"job {job.job_id}: a settle request's tickets must be (solver, hex) pairs, "
                                  f"got {tickets!r}")
    valid: dict[SolverId, bytes] = {}
    for solver_id, ticket_hex in tickets:
        # Rule: a solver reveals its ticket once.
        if solver_id in valid:
            raise DuplicateMessageError(f"job {job.job_id}: solver {solver_id!r} reveals its forced-error "
                                        f"ticket twice")
        valid[solver_id] = require_valid_ticket(job, solver_id, ticket_hex)
    return valid


def compute_outcome(job: Job, verifier: PartyId, check: SpotCheck, dispute: DisputeResult | None,
                    ticket: bytes | None) -> SolverVerdict:
    """What settlement does with one solver's stake and payment, from its deciding check (made by
    ``verifier``: ``get_deciding_check``) and its dispute."""
    sid = check.solver_id
    if check.forfeit is not None:  # it delivered no signed trace: its stake is forfeited
        return SolverVerdict(sid, "slashed", forfeit=True)
    if check.equivocation is not None:
        return SolverVerdict(sid, "slashed", challenger=verifier, equivocation=True)
    if not check.checked:
        return SolverVerdict(sid, "unverified")
    if dispute is None:
        return SolverVerdict(sid, "paid")
    if dispute.winner == Party.CHALLENGER and ticket is not None and dispute.first_divergent_step == job.spec.steps:
        # Rule (Truebit §4.4): a forced error found is paid to the solver as correct work and to
        # the verifier that challenged it from the jackpot (a verifier that skipped it gets
        # nothing from the jackpot); it excuses only the last step, where it was injected.
        return SolverVerdict(sid, "paid", challenger=verifier, forced_error=True)
    if dispute.winner == Party.CHALLENGER:
        return SolverVerdict(sid, "slashed", challenger=verifier)
    return SolverVerdict(sid, "paid", challenger=verifier, false_challenge=True)


def compute_verdict(job: Job, verifier: PartyId, check: SpotCheck, dispute: DisputeResult | None,
                    ticket: bytes | None) -> SolverVerdict:
    """What settlement does with one solver (``compute_outcome``), with its revealed forced-error
    ticket, if any (a valid one that draws: ``require_valid_ticket``)."""
    verdict = compute_outcome(job, verifier, check, dispute, ticket)
    # Rule (Truebit §4.4): a solver drawn for a forced error carries its ticket, found or not, so that
    # a forced error missed (left unchecked, or checked and not challenged) is visible in its verdict.
    return verdict if ticket is None else dataclasses.replace(verdict, forced_ticket=ticket)


def compute_verdicts(job: Job, checks: Mapping[PartyId, Mapping[SolverId, SpotCheck]],
                     disputes: dict[SolverId, DisputeResult], tickets: dict[SolverId, bytes]) -> list[SolverVerdict]:
    """Every solver's verdict, in the job's order (the report's outcomes are these too), from the
    committee's checks (by verifier, by solver; ``get_deciding_check``), with the valid
    forced-error tickets the solvers revealed (``require_valid_tickets``)."""
    return [compute_verdict(job, *get_deciding_check(job, checks, s.solver_id), disputes.get(s.solver_id),
                            tickets.get(s.solver_id)) for s in job.solvers]


# -- rule --------------------------------------------------------------------------------------
def compute_ruling(job_id: JobId, result: DisputeResult) -> Ruling:
    """The ruling a dispute's result amounts to: bound to its transcript head (``dispute_id``),
    its step and operator (``forfeit`` when a party forfeited before the referee ruled), its
    winner and what each side and the referee claimed the ruled-on computation outputs."""
    zero = Root(bytes(32))

    def claimed(party: Party) -> Root:
        return Root(bytes.fromhex(result.outputs[party])) if party in result.outputs else zero

    operator = result.operator or ("step" if result.outputs else "forfeit")
    return Ruling(job_id, result.transcript_head or "", Step(result.first_divergent_step or 0), operator,
                  PartyId(result.winner), claimed(Party.SOLVER), claimed(Party.CHALLENGER), claimed(Party.REFEREE))


def process_rule(job: Job, state: JobState, signed: Signed) -> JobState:
    """The referee's signed ruling closes a bisected dispute (Truebit's judges, Arbitrum's
    one-step proof: the chain's verdict on the one disputed instruction)."""
    require_phase(job, state, Kind.RULE)
    if not isinstance(signed, Signed) or not isinstance(signed.message, Ruling):
        raise InvalidMessageError(f"job {job.job_id}: a rule message must be a signed Ruling, "
                                  f"got {type(getattr(signed, 'message', signed)).__name__}")
    ruling = signed.message
    require_job_id(job, Kind.RULE, ruling.job_id)
    # Rule: rulings are the referee's, signed with its registered key.
    if signed.signer != REFEREE:
        raise UnknownPartyError(f"job {job.job_id}: a ruling signed by {signed.signer!r}, not the referee")
    if signed.public_key != get_public_key(job, REFEREE) or not verify_signed(signed, get_backend()):
        raise ForgedMessageError(f"job {job.job_id}: the ruling on dispute {ruling.dispute_id!r} is not the "
                                 f"referee's signature")
    ruled = [sid for sid, result in state.disputes.items() if result.transcript_head == ruling.dispute_id]
    # Rule: a ruling closes a dispute whose game ended at the transcript head it names.
    if not ruled or not ruling.dispute_id:
        raise OutOfOrderError(f"job {job.job_id}: a ruling on dispute {ruling.dispute_id!r}, which no game ended at")
    sid = ruled[0]
    if sid in state.rulings:
        raise DuplicateMessageError(f"job {job.job_id}: the dispute of solver {sid!r} is already ruled on")
    # Rule: the ruling says what the game found: its step, operator, winner and claimed outputs.
    if ruling != compute_ruling(job.job_id, state.disputes[sid]):
        raise InvalidMessageError(f"job {job.job_id}: the ruling on solver {sid!r}'s dispute does not match its "
                                  f"game (winner {ruling.winner!r}, step {ruling.step}, operator {ruling.operator!r})")
    return advance(state, Kind.RULE, rulings={**state.rulings, sid: signed})


def require_settleable(job: Job, state: JobState) -> None:
    """``OutOfOrderError`` unless every verifier checked every solver and every mismatch is
    disputed to its end; ``UnattestedCheckError`` for a conclusive check nobody signed."""
    unchecked = [f"{v}: {s.solver_id}" for v in get_committee(job) for s in job.solvers
                 if s.solver_id not in state.checks.get(v, {})]
    # Rule: a job settles once every verifier has its spot check of every solver ...
    if unchecked:
        raise OutOfOrderError(f"job {job.job_id}: settled before checks [{', '.join(unchecked)}] were reported")
    attested = get_attested(state)
    unsigned = [f"{v}: {sid}" for v, by_solver in state.checks.items() for sid, c in by_solver.items()
                if is_attestable(c) and (v, sid) not in attested]
    # ... every conclusive check counts only with its verifier's signed attestation ...
    if unsigned:
        raise UnattestedCheckError(f"job {job.job_id}: checks [{', '.join(unsigned)}] carry no attestation "
                                   f"signed by their verifier")
    mismatched = {sid for by_solver in state.checks.values() for sid, c in by_solver.items() if c.mismatch}
    unresolved = sorted(sid for sid in mismatched if sid not in state.rulings)
    # ... and every mismatch its challenge, bisected by its game and ruled on by the referee.
    if unresolved:
        raise OutOfOrderError(f"job {job.job_id}: settled while the mismatches of solvers {unresolved} "
                              f"are not disputed to their end")


def process_settle(job: Job, state: JobState, request: SettleRequest) -> JobState:
    """The job's verdicts, fixed: what settlement applies to the ledger (once: ``settle_job``)."""
    require_phase(job, state, Kind.SETTLE)
    require_job_id(job, Kind.SETTLE, request.job_id)
    require_settleable(job, state)
    tickets = require_valid_tickets(job, request.tickets)
    verdicts = compute_verdicts(job, state.checks, state.disputes, tickets)
    check_job(job.job_id, job.spec.submitter, job.terms, verdicts, list(get_committee(job)))
    return advance(state, Kind.SETTLE, verdicts=tuple(verdicts))


# kind of message: its transition
PROCESS: dict[Kind, Callable[[Job, JobState, Any], JobState]] = {
    Kind.COMMIT: process_commit,
    Kind.REVEAL: process_reveal,
    Kind.CHECK: process_check,
    Kind.ATTEST: process_attest,
    Kind.CHALLENGE: process_challenge,
    Kind.DISPUTE: process_dispute,
    Kind.RULE: process_rule,
    Kind.SETTLE: process_settle,
}


def process_message(job: Job, state: JobState, kind: Kind, message: Any) -> JobState:
    """The transition of a message of ``kind`` (``PROCESS``)."""
    return PROCESS[kind](job, state, message)
