"""The protocol of one job as a state machine: a ``JobState`` and its ``process_*`` transitions.

Terms
-----
- *message*: what a party sends the job: a solver's signed commitment (``Signed[Commitment]``,
  ``proofs.messages``); the verifier's coin reveal (``CoinReveal``, ``verification.verifier``);
  its spot-check reports (``CheckReport``); the challenge it opens on a mismatch (``Challenge``);
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
  ``commit`` (the verifier's coin is committed; solvers commit) → ``check`` (the coin is revealed,
  so no solver can commit any more; the verifier reports one check per solver) → ``dispute`` (a
  challenge per mismatch, each bisected by its game and closed by the referee's signed ruling) →
  ``settled``.

The rules are called where they live, not restated: a commitment's signature
(``proofs.messages.verify_signed``), the coin's reveal and selection
(``verification.verifier.compute_selection_faults``), forced errors (``is_forced_error``,
Truebit §4.4) and the settlement's consistency (``verification.settlement.rules.check_job``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from proofs.bls import get_backend
from proofs.messages import Commitment, Ruling, Signed, verify_signed
from proofs.types import JobId, Party, PartyId, Root, SolverId, Step
from verification.dispute import DisputeResult
from verification.job import (
    REFEREE,
    Job,
    ProtocolError,
    UnknownPartyError,
    get_public_key,
    get_solver,
)
from verification.settlement.rules import SolverVerdict, check_job, is_forced_error
from verification.solver import is_valid_ticket
from verification.verifier import CoinCommitment, CoinReveal, SpotCheck, compute_selection_faults


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
    CHALLENGE = "challenge"
    DISPUTE = "dispute"
    RULE = "rule"
    SETTLE = "settle"


# kind of message: (the phases that accept it, the phase it leads to)
TRANSITIONS: dict[Kind, tuple[frozenset[Phase], Phase]] = {
    Kind.COMMIT: (frozenset({Phase.COMMIT}), Phase.COMMIT),
    Kind.REVEAL: (frozenset({Phase.COMMIT}), Phase.CHECK),
    Kind.CHECK: (frozenset({Phase.CHECK}), Phase.CHECK),
    Kind.CHALLENGE: (frozenset({Phase.CHECK, Phase.DISPUTE}), Phase.DISPUTE),
    Kind.DISPUTE: (frozenset({Phase.DISPUTE}), Phase.DISPUTE),
    Kind.RULE: (frozenset({Phase.DISPUTE}), Phase.DISPUTE),
    Kind.SETTLE: (frozenset({Phase.CHECK, Phase.DISPUTE}), Phase.SETTLED),
}


# -- messages ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    """The verifier's spot check of one solver."""

    job_id: JobId
    verifier: PartyId
    check: SpotCheck


@dataclass(frozen=True)
class Challenge:
    """The verifier disputes a solver's trace; bisection starts at ``disputed_interval`` (the
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
    coin: CoinCommitment | None = None  # the verifier's coin commitment, published when the job opened
    commitments: dict[SolverId, Signed] = field(default_factory=dict)  # each solver's accepted commitment
    reveal: CoinReveal | None = None
    checks: dict[SolverId, SpotCheck] = field(default_factory=dict)
    challenges: dict[SolverId, Challenge] = field(default_factory=dict)  # every challenge opened
    disputes: dict[SolverId, DisputeResult] = field(default_factory=dict)  # every challenge bisected
    rulings: dict[SolverId, Signed] = field(default_factory=dict)  # the referee's signed ruling on each
    verdicts: tuple[SolverVerdict, ...] = ()  # what settlement applies, once settled


def compute_genesis_state(job: Job, coin: CoinCommitment | None) -> JobState:
    """The state of a job that opened: its verifier's coin commitment, when it published one."""
    if coin is not None:
        require_job_id(job, Kind.COMMIT, coin.job_id)
    return JobState(coin=coin)


def get_open_challenges(state: JobState) -> list[SolverId]:
    return [sid for sid in state.challenges if sid not in state.disputes]


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
    # Rule: reveals, checks and challenges are the job's designated verifier's.
    if party != job.spec.verifier:
        raise UnknownPartyError(f"job {job.job_id}: a {kind} message from {party!r}, the job's verifier "
                                f"is {job.spec.verifier!r}")


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
    """The verifier reveals its coin's secret: commitments close, spot checks open."""
    require_phase(job, state, Kind.REVEAL)
    require_job_id(job, Kind.REVEAL, reveal.job_id)
    require_verifier(job, Kind.REVEAL, reveal.verifier)
    # Rule: the coin was committed to when the job opened, before any solver committed.
    if state.coin is None:
        raise OutOfOrderError(f"job {job.job_id}: the coin is revealed, but it was never committed to")
    faults = compute_selection_faults(state.coin, reveal, {}, {}, job.spec.spot_check_probability,
                                      job.spec.hashing)
    # Rule: the reveal opens the coin's commitment.
    if faults:
        raise ForgedMessageError(f"job {job.job_id}: {'; '.join(faults)}")
    return advance(state, Kind.REVEAL, reveal=reveal)


# -- check -------------------------------------------------------------------------------------
def is_checked_trace(check: SpotCheck) -> bool:
    """Whether the verifier judged a trace (re-executed it, or holds equivocation evidence)."""
    return check.checked or check.mismatch or check.equivocation is not None


def process_check(job: Job, state: JobState, report: CheckReport) -> JobState:
    """The verifier's spot check of one solver, audited against its revealed coin."""
    require_phase(job, state, Kind.CHECK)
    require_job_id(job, Kind.CHECK, report.job_id)
    require_verifier(job, Kind.CHECK, report.verifier)
    check = report.check
    get_solver(job, check.solver_id)
    if check.solver_id in state.checks:
        raise DuplicateMessageError(f"job {job.job_id}: solver {check.solver_id!r} was already checked")
    faults = compute_selection_faults(state.coin, state.reveal, state.commitments, {check.solver_id: check},
                                      job.spec.spot_check_probability, job.spec.hashing)
    # Rule: a verifier checks only the solvers its coin selected.
    if faults:
        raise SelectionFaultError(f"job {job.job_id}: {'; '.join(faults)}")
    # Rule: only a committed trace is judged; a solver without one forfeits or is left unchecked.
    if is_checked_trace(check) and check.solver_id not in state.commitments:
        raise InvalidMessageError(f"job {job.job_id}: solver {check.solver_id!r} was checked, but it has "
                                  f"no accepted commitment")
    return advance(state, Kind.CHECK, checks={**state.checks, check.solver_id: check})


# -- challenge ---------------------------------------------------------------------------------
def process_challenge(job: Job, state: JobState, challenge: Challenge) -> JobState:
    """The verifier disputes the trace of a solver whose check found a mismatch."""
    require_phase(job, state, Kind.CHALLENGE)
    require_job_id(job, Kind.CHALLENGE, challenge.job_id)
    require_verifier(job, Kind.CHALLENGE, challenge.challenger)
    sid = challenge.solver_id
    if sid in state.challenges:
        raise DuplicateMessageError(f"job {job.job_id}: solver {sid!r} is already challenged")
    check = state.checks.get(sid)
    # Rule: a challenge stands on a spot check that found a mismatch (all checks are in by now).
    if check is None or not check.mismatch:
        raise UnfoundedChallengeError(f"job {job.job_id}: solver {sid!r} is challenged, but no spot check "
                                      f"of it found a mismatch")
    if len(state.checks) != len(job.solvers):
        raise OutOfOrderError(f"job {job.job_id}: a challenge before every solver was checked")
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


def compute_outcome(job: Job, check: SpotCheck, dispute: DisputeResult | None, ticket: bytes | None) -> SolverVerdict:
    """What settlement does with one solver's stake and payment, from its check and its dispute."""
    sid, verifier = check.solver_id, job.spec.verifier
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
        # the challenger from the jackpot; it excuses only the last step, where it was injected.
        return SolverVerdict(sid, "paid", challenger=verifier, forced_error=True)
    if dispute.winner == Party.CHALLENGER:
        return SolverVerdict(sid, "slashed", challenger=verifier)
    return SolverVerdict(sid, "paid", challenger=verifier, false_challenge=True)


def compute_verdict(job: Job, check: SpotCheck, dispute: DisputeResult | None, ticket: bytes | None) -> SolverVerdict:
    """What settlement does with one solver (``compute_outcome``), with its revealed forced-error
    ticket, if any (a valid one that draws: ``require_valid_ticket``)."""
    verdict = compute_outcome(job, check, dispute, ticket)
    # Rule (Truebit §4.4): a solver drawn for a forced error carries its ticket, found or not, so that
    # a forced error missed (left unchecked, or checked and not challenged) is visible in its verdict.
    return verdict if ticket is None else dataclasses.replace(verdict, forced_ticket=ticket)


def compute_verdicts(job: Job, checks: dict[SolverId, SpotCheck], disputes: dict[SolverId, DisputeResult],
                     tickets: dict[SolverId, bytes]) -> list[SolverVerdict]:
    """Every solver's verdict, in the job's order (the report's outcomes are these too), with the
    valid forced-error tickets the solvers revealed (``require_valid_tickets``)."""
    return [compute_verdict(job, checks[s.solver_id], disputes.get(s.solver_id), tickets.get(s.solver_id))
            for s in job.solvers]


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
    """``OutOfOrderError`` unless every solver is checked and every mismatch disputed to its end."""
    unchecked = [s.solver_id for s in job.solvers if s.solver_id not in state.checks]
    # Rule: a job settles once every solver has its spot check ...
    if unchecked:
        raise OutOfOrderError(f"job {job.job_id}: settled before solvers {unchecked} were checked")
    unresolved = [sid for sid, c in state.checks.items() if c.mismatch and sid not in state.rulings]
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
    check_job(job.job_id, job.spec.submitter, job.terms, verdicts, [job.spec.verifier])
    return advance(state, Kind.SETTLE, verdicts=tuple(verdicts))


# kind of message: its transition
PROCESS: dict[Kind, Callable[[Job, JobState, Any], JobState]] = {
    Kind.COMMIT: process_commit,
    Kind.REVEAL: process_reveal,
    Kind.CHECK: process_check,
    Kind.CHALLENGE: process_challenge,
    Kind.DISPUTE: process_dispute,
    Kind.RULE: process_rule,
    Kind.SETTLE: process_settle,
}


def process_message(job: Job, state: JobState, kind: Kind, message: Any) -> JobState:
    """The transition of a message of ``kind`` (``PROCESS``)."""
    return PROCESS[kind](job, state, message)
