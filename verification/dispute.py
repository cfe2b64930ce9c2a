"""The challenge-and-bisection game between a solver and a challenger.

Terms
-----
agreed / disputed point
    A point (checkpoint index, step) where both parties' roots are equal / differ. The game keeps
    the invariant *agreed at lo, disputed at hi* and shrinks ``[lo, hi]`` until ``hi = lo + 1``.
k-ary dissection
    Each round the solver reveals its roots at ``k-1`` interior points of ``[lo, hi]`` (with Merkle
    proofs against what it committed); the challenger keeps the leftmost sub-interval whose right
    end is disputed. Arbitrum's dissection uses ``k = 40``; binary search is ``k = 2``. A level of
    ``n`` intervals takes ``ceil(log_k n)`` rounds.
levels
    1: checkpoints ``0, k, …, T`` (committed in the signed trace root); 2: the steps inside the
    disputed checkpoint interval (each party recomputes them from its checkpoint and commits to a
    Merkle root of per-step roots); 3: the operators of the single disputed step (each party
    re-executes it while recording its aten operators and commits to the Merkle root of the op
    digest chain, ``verification.execution.opgraph``); then the referee rules on one operator
    (``verification.referee``). With ``operator_level`` off the referee re-executes the step.
chess clock
    Each party has a time budget for all its answers; a party that errs, sends an invalid proof,
    or runs out of time forfeits (Arbitrum BoLD's chess clocks). A derived budget counts units of
    work (honest steps of the job), not seconds: an answer is charged its wall seconds over the
    seconds a reference step takes, and before a party is declared out of time the coordinator
    times the reference again (``verification.clock``), so a machine that slows down does not
    spend an honest party's budget; a declared ``party_time_budget_s`` is fixed seconds.
round
    One dissection: both parties reveal their values at the ``k-1`` points of the current
    interval and the challenger narrows it. Level 1 bisects ``n1 = T/k_ckpt`` intervals, level 2
    ``n2 = k_ckpt`` steps, level 3 ``n3`` = the number of operator records both traces hold
    (at most the honest step's, including ``commit_state``), so a game takes at most
    ``ceil(log_k n1) + ceil(log_k n2) + ceil(log_k n3)`` rounds (``compute_game_round_bound``;
    the additive constant is 0). When the final checkpoint is agreed (a spoofer that ends at
    the honest final state), level 1 is one round instead: the solver reveals its checkpoints in
    order until the challenger disputes one (``n1 >= 2`` then, so the bound still holds). Besides
    rounds, a game has a constant number of single exchanges (S_0, the final checkpoint, two
    commitments and two endpoint openings per party at levels 2 and 3, the disputed records, one
    opening of operands, the ruling).

deadline
    Every provider call runs in the game's one worker thread and must answer within the party's
    remaining budget (``future.result(timeout=remaining units · latest reference)``); a party that
    stops answering forfeits when its budget runs out, after at most ``MAX_REMEASURES``
    re-measurements that find the machine slower, instead of hanging the game. The abandoned call's thread may keep
    running (torch kernels included) until the call returns; nothing it returns is used, and the
    interpreter waits for it at exit.
move
    One message of ``proofs.messages.GAME_MOVES`` made by one party: a level's commitment, a
    reveal or an opening checked against one, the challenger's challenge of a round, or the final
    claim (the referee's ruling, or a forfeit). ``MOVE_KINDS`` says which messages each kind of
    move carries and which parties may make it; a move's ``payload`` is its message's JSON form
    (``proofs.messages.message_to_json``).
transcript
    The game's moves, hash-chained: move ``i`` has ``index = i``, ``previous`` = the id of move
    ``i - 1`` (``""`` for move 0) and ``move_id = H(DOMAIN_TRACE, "move", json([index, status,
    party, kind, payload, elapsed_s, previous]))`` under the job's hash (``compute_move_id``), so
    an id commits to its move and to every move before it (a tamper-evident log: Crosby and
    Wallach, "Efficient data structures for tamper-evident logging", 2009). Reading one back
    (``load_transcript``) checks every link and id, then that each move carries a valid message
    of its kind, made by a party that may make it.
head
    The id of the last move. ``DisputeResult.transcript_head`` carries it into the report, which
    anchors the transcript: a replayed, reordered, altered, dropped or appended move, or a chain
    rebuilt from scratch, no longer ends at the anchored head (``verify_transcript``,
    ``load_transcript``).

The levels are data: ``LEVELS`` is a table of level objects (``CheckpointLevel``, ``StepLevel``,
``OperatorLevel``), each with ``commit`` (the parties commit to a span), ``reveal`` (both values at
a position, each checked against its commitment), ``locate`` (the generic k-ary bisection,
``DisputeGame.bisect``, or a level's shortcut) and ``narrow`` (the located pair as the next
level's span, or the referee's case). The game is a state machine derived from the table
(``compute_transitions``; ``TRANSITIONS`` for the full game): status only moves forward. Claims
are content-addressed: every move is appended to the hash-chained transcript, saved as JSON
(schema ``pinpoint.transcript/2``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeadlineExceeded
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch

from proofs.encoding import verify_trace_proof
from proofs.hashing import (
    DOMAIN_OPS,
    DOMAIN_STEPS,
    DOMAIN_TRACE,
    HASH_NAMES,
    Hashing,
    UnknownHashError,
    get_hashing,
    hash_parts,
)
from proofs.merkle import MerkleProof, hash_leaf, verify_merkle_proof
from proofs.messages import (
    ChallengeCheckpoint,
    ChallengeInterval,
    CommitOps,
    CommitSteps,
    ForfeitGame,
    MalformedMessageError,
    OpenOp,
    OpenOperands,
    OpenState,
    RevealCheckpoint,
    RevealOp,
    RevealStep,
    RuleOnOperator,
    RuleOnStep,
    message_from_json,
    message_to_json,
)
from proofs.types import Party, Root, Step, is_root
from verification.clock import (
    MAX_REMEASURES,
    MAX_SLOWDOWN,
    REFERENCES,
    SECOND,
    Budget,
    compute_charge,
    compute_reference_s,
    compute_remaining_units,
    compute_wait_seconds,
    describe_units,
    is_out_of_time,
    is_over_budget,
)
from verification.execution.opgraph import (
    COMMIT_OP,
    Operands,
    OpRecord,
    OpsCommitment,
    compute_genesis,
    compute_op_digest,
    get_structure,
)
from verification.execution.program import Program
from verification.execution.state import State
from verification.parties import PartyError, describe_exception
from verification.providers import Provider, ProviderError
from verification.records import write_json
from verification.referee import (
    OpRuling,
    RefereeError,
    rule_on_output,
    rule_on_step,
    rule_on_structure,
)
from verification.spec import get_type_errors


class Event(StrEnum):
    """What moves the game's state machine (``compute_transitions``)."""

    NARROW = "narrow"  # a dissection round kept a sub-interval
    PINPOINT = "pinpoint"  # a level located its disputed pair and hands it on
    RULE = "rule"  # the referee ruled
    FORFEIT = "forfeit"  # a party failed to answer validly or in time


PARTIES = (Party.SOLVER, Party.CHALLENGER)  # the players, in the order they answer
TRANSCRIPT_SCHEMA = "pinpoint.transcript/2"


class Status(StrEnum):
    CHECKPOINTS = "bisect-checkpoints"
    STEPS = "bisect-steps"
    OPERATORS = "bisect-operators"
    REFEREE = "referee"
    RESOLVED = "resolved"


def compute_transitions(statuses: tuple[Status, ...]) -> dict[tuple[Status, Event], Status]:
    """The game's state machine for a table of levels whose statuses are ``statuses``, in order:
    each level ``narrow``s in place and is ``pinpoint``ed into the next level or, after the last,
    into the referee, who ``rule``s; a ``forfeit`` ends the game from anywhere before the end.
    Anything else is a protocol error (``GameError``)."""
    table = {}
    for status, following in zip(statuses, (*statuses[1:], Status.REFEREE), strict=True):
        table[(status, Event.NARROW)] = status
        table[(status, Event.PINPOINT)] = following
        table[(status, Event.FORFEIT)] = Status.RESOLVED
    table[(Status.REFEREE, Event.RULE)] = Status.RESOLVED
    table[(Status.REFEREE, Event.FORFEIT)] = Status.RESOLVED
    return table


# Allowed transitions of the full game (checkpoints, steps, operators): (status, event) -> next status.
TRANSITIONS: dict[tuple[Status, Event], Status] = compute_transitions(
    (Status.CHECKPOINTS, Status.STEPS, Status.OPERATORS))


class GameError(RuntimeError):
    """An illegal transition of the game state machine."""


class Forfeit(Exception):
    """A party failed to answer validly or in time."""

    def __init__(self, party: Party, reason: str):
        super().__init__(f"{party} forfeits: {reason}")
        self.party = party
        self.reason = reason


def compute_outputs_root(outputs: tuple[str, ...], hashing: Hashing) -> str:
    """One root (hex) for an operator's output digests, as a ruling names them."""
    return hash_parts(DOMAIN_OPS, b"outputs", *(o.encode() for o in outputs), hashing=hashing).hex()


def compute_dissection_points(lo: int, hi: int, arity: int) -> list[int]:
    """Up to ``arity - 1`` distinct points strictly inside ``(lo, hi)``, evenly spaced."""
    span = hi - lo
    return sorted({lo + (span * i) // arity for i in range(1, arity)} - {lo, hi})


def compute_narrowed(lo: int, hi: int, agreement: dict[int, bool]) -> tuple[int, int]:
    """Leftmost sub-interval ``[a, b]`` of the revealed points with ``a`` agreed and ``b`` disputed."""
    previous = lo
    for point in sorted(agreement):
        if not agreement[point]:
            return previous, point
        previous = point
    return previous, hi


def compute_round_bound(intervals: int, arity: int) -> int:
    """``ceil(log_arity(intervals))``: rounds needed to narrow ``intervals`` to one."""
    rounds, span = 0, intervals
    while span > 1:
        span = math.ceil(span / arity)
        rounds += 1
    return rounds


def compute_game_round_bound(steps: int, interval: int, ops_per_step: int, arity: int) -> int:
    """Rounds of a whole game: ``ceil(log_k(T/k_ckpt)) + ceil(log_k(k_ckpt)) + ceil(log_k(ops))``."""
    return (compute_round_bound(steps // interval, arity) + compute_round_bound(interval, arity)
            + compute_round_bound(ops_per_step, arity))


# kind of move (as a transcript names it): the message classes it carries (``proofs.messages``)
# and the parties that may make it
MOVE_KINDS: dict[str, tuple[tuple[type, ...], frozenset[Party]]] = {
    "reveal-checkpoint": ((RevealCheckpoint,), frozenset({Party.SOLVER})),
    "dispute-checkpoint": ((ChallengeCheckpoint,), frozenset({Party.CHALLENGER})),
    "narrow": ((ChallengeInterval,), frozenset({Party.CHALLENGER})),
    "commit-steps": ((CommitSteps,), frozenset(PARTIES)),
    "reveal-step": ((RevealStep,), frozenset(PARTIES)),
    "open-state": ((OpenState,), frozenset({Party.SOLVER})),
    "commit-ops": ((CommitOps,), frozenset(PARTIES)),
    "reveal-op": ((RevealOp,), frozenset(PARTIES)),
    "open-op": ((OpenOp,), frozenset(PARTIES)),
    "open-operands": ((OpenOperands,), frozenset({Party.SOLVER})),
    "rule": ((RuleOnOperator, RuleOnStep), frozenset({Party.REFEREE})),
    "forfeit": ((ForfeitGame,), frozenset(PARTIES)),
}
KIND_OF_MESSAGE: dict[type, str] = {cls: kind for kind, (classes, _) in MOVE_KINDS.items() for cls in classes}


@dataclass(frozen=True)
class Move:
    """One move of the transcript: its message (``proofs.messages``), who made it, in which status
    of the game, the seconds it took, and its link to the move before."""

    index: int
    status: Status
    party: Party
    message: Any  # one of ``proofs.messages.GAME_MOVES``
    elapsed_s: float
    previous: str
    move_id: str

    @property
    def kind(self) -> str:
        return KIND_OF_MESSAGE[type(self.message)]

    @property
    def payload(self) -> dict[str, Any]:
        """The message's JSON form, as the transcript stores and hashes it."""
        return message_to_json(self.message)

    def to_record(self) -> dict[str, Any]:
        """The move as a transcript stores it (``MOVE_TYPES``)."""
        return {"index": self.index, "status": self.status, "party": self.party, "kind": self.kind,
                "payload": self.payload, "elapsed_s": self.elapsed_s, "previous": self.previous,
                "move_id": self.move_id}


def get_move_message(kind: Any, payload: Any) -> Any:
    """The message a stored move of ``kind`` carries in ``payload``; ``MalformedMessageError``
    naming why it carries none (an unknown kind, missing or extra fields, a field of another type)."""
    if kind not in MOVE_KINDS:
        raise MalformedMessageError(f"kind {kind!r} is no move of the game (moves: {', '.join(MOVE_KINDS)})")
    classes, _ = MOVE_KINDS[kind]
    fitting = [cls for cls in classes if isinstance(payload, dict) and sorted(payload) == sorted(
        f.name for f in fields(cls))]
    return message_from_json(fitting[0] if fitting else classes[0], payload)


def compute_move_id(index: int, status: str, party: str, kind: str, payload: dict[str, Any],
                    elapsed_s: float, previous: str, hashing: Hashing) -> str:
    """The id of a move: the hash of all its other fields (``previous`` chains it to the move before).
    ``status`` and ``party`` are plain strings: the game passes its ``Status`` and ``Party`` (which
    are their names), a transcript check the names a stored move holds, valid or not."""
    body = json.dumps([index, status, party, kind, payload, elapsed_s, previous], sort_keys=True)
    return hash_parts(DOMAIN_TRACE, b"move", body.encode(), hashing=hashing).hex()


def compute_call_name(method: str, args: tuple) -> str:
    """``checkpoint_root(3)``: a provider call as named in a forfeit reason."""
    return f"{method}({', '.join(map(str, args))})"


def compute_failure_reason(call: str, exc: BaseException) -> str:
    """Why a party forfeits when its answer to ``call`` raised: its own words for a provider's or a
    party process's failure, the exception's type and message for anything else."""
    if isinstance(exc, ProviderError | PartyError):
        return str(exc)
    return f"{call} failed: {describe_exception(exc)}"


def is_proven_root(value: Any) -> bool:
    """A ``(root, MerkleProof)`` pair with integer index and size and a path of byte strings."""
    return isinstance(value, tuple) and len(value) == 2 and is_root(value[0]) and isinstance(value[1], MerkleProof) \
        and type(value[1].index) is int and type(value[1].size) is int \
        and isinstance(value[1].path, tuple) and all(isinstance(p, bytes) for p in value[1].path)


def is_record(value: Any) -> bool:
    """An ``OpRecord`` whose every field has its declared type (it is hashed into the op chain)."""
    return isinstance(value, OpRecord) and not get_type_errors(value)


# Rule: every answer has the shape of its call; anything else is the answering party's forfeit.
ANSWER_CHECKS: dict[str, Callable[[Any], bool]] = {
    "checkpoint_root": is_proven_root,
    "commit_steps": is_root,
    "step_root": is_proven_root,
    "open_state": lambda v: isinstance(v, State) and type(v.step) is int and type(v.rng) is int
    and isinstance(v.tensors, dict) and all(isinstance(t, torch.Tensor) for t in v.tensors.values()),
    "commit_ops": lambda v: isinstance(v, OpsCommitment) and is_root(v.root) and type(v.count) is int,
    "op_digest": is_proven_root,
    "open_op": is_record,
    "open_operands": lambda v: isinstance(v, Operands) and is_root(v.segment_start)
    and isinstance(v.arrays, tuple) and isinstance(v.proofs, tuple) and isinstance(v.segment, tuple)
    and all(is_record(r) for r in v.segment),
}


@dataclass
class ChessClock:
    """Per-party budgets counted in units of work, not in fixed seconds (Arbitrum BoLD's chess
    clocks, which count L1 blocks; ``verification.clock`` defines the terms and the rules). Calls
    run one at a time in a worker thread; a call that is not back within its party's remaining
    units (at the latest measurement of the reference) or that brings the party's answers past its
    budget costs the party a re-measurement of the reference first, and forfeits only if the
    machine did not slow down enough to leave it time; a party that raises anything at all
    forfeits at once.

    ``budget`` is a ``verification.clock.Budget`` (a float: that many fixed seconds).
    ``reference`` returns the wall seconds of one of its units now (``None``: never re-measured;
    a budget in seconds never is). ``now`` is the clock answers are timed on (tests inject a fake
    one, and a fake reference, so no test depends on the machine's speed). Waiting for an answer
    takes the party's remaining units times the latest reference, in real seconds, or what
    ``now.timeout_for(seconds)`` says when the clock has that method (a fake clock gives slow
    machines slack there, since its own time does not move while a party computes)."""

    budget: Budget | float
    now: Callable[[], float] = time.perf_counter
    reference: Callable[[], float] | None = None
    max_remeasures: int = MAX_REMEASURES
    max_slowdown: float = MAX_SLOWDOWN
    used: dict[Party, float] = field(default_factory=dict)  # units charged in closed epochs
    open_s: dict[Party, float] = field(default_factory=dict)  # seconds answered since the latest measurement
    remeasures: dict[Party, int] = field(default_factory=dict)  # re-measurements each party caused
    references_s: list[float] = field(default_factory=list)  # every measurement, the budget's first
    worker: ThreadPoolExecutor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.budget, Budget):
            self.budget = Budget.of_seconds(float(self.budget))
        if not self.references_s:
            self.references_s = [self.budget.reference_s]

    @property
    def reference_s(self) -> float:
        """The latest measurement of the reference: the seconds one unit takes now."""
        return self.references_s[-1]

    @property
    def used_s(self) -> dict[Party, float]:
        """Each party's charge in wall seconds at the latest reference (its seconds, for a budget in seconds)."""
        return {p: self.get_charged(p) * self.reference_s for p in (*self.used, *self.open_s)}

    def get_charged(self, party: Party) -> float:
        """Units ``party``'s answers cost: closed epochs, and the open one at the latest reference."""
        return self.used.get(party, 0.0) + self.open_s.get(party, 0.0) / self.reference_s

    def get_remaining(self, party: Party) -> float:
        """Units ``party`` has left."""
        return compute_remaining_units(self.budget.units, self.get_charged(party))

    def remeasure(self, party: Party) -> bool:
        """Measure the reference again, on ``party``'s behalf, and close the epoch (every party's
        open seconds are charged at the slower of its two references); ``False`` when the budget
        is not re-measured or ``party`` has had its ``max_remeasures``."""
        # Rule: a budget in seconds is never re-measured, and a party may cause at most
        # ``max_remeasures`` re-measurements in a game.
        if self.reference is None or self.budget.unit == SECOND or \
                self.remeasures.get(party, 0) >= self.max_remeasures:
            return False
        self.remeasures[party] = self.remeasures.get(party, 0) + 1
        measured = compute_reference_s(self.reference(), self.references_s[0], self.max_slowdown)
        for p, seconds in self.open_s.items():
            self.used[p] = self.used.get(p, 0.0) + compute_charge(seconds, self.reference_s, measured)
        self.open_s = {}
        self.references_s.append(measured)
        return True

    def describe_references(self) -> str:
        """What one unit took, for a forfeit reason (nothing for a budget in seconds)."""
        if self.budget.unit == SECOND:
            return ""
        again = ", re-measured " + ", ".join(f"{r:.4f}s" for r in self.references_s[1:]) \
            if len(self.references_s) > 1 else ", not re-measured"
        return f" (one {self.budget.unit}: {self.references_s[0]:.4f}s when the budget was set{again})"

    def get_timeout(self, seconds: float) -> float:
        """Real seconds to wait for an answer due within ``seconds`` on the clock."""
        timeout_for = getattr(self.now, "timeout_for", None)
        return timeout_for(seconds) if callable(timeout_for) else seconds

    def charge(self, party: Party, seconds: float) -> None:
        self.open_s[party] = self.open_s.get(party, 0.0) + seconds

    def call(self, party: Party, provider: Any, method: str, *args: Any) -> tuple[Any, float]:
        """``provider.method(*args)`` on ``party``'s clock: ``(answer, seconds)`` or ``Forfeit``."""
        if self.worker is None:
            self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinpoint-provider")
        remaining, call, waited_s = self.get_remaining(party), compute_call_name(method, args), 0.0
        start = self.now()
        future = self.worker.submit(lambda: getattr(provider, method)(*args))
        while True:
            wait_s = compute_wait_seconds(self.get_remaining(party), self.reference_s)
            try:
                result = future.result(timeout=self.get_timeout(wait_s))
                break
            except DeadlineExceeded:
                # Rule: an answer not back by its deadline is charged the whole wait.
                self.charge(party, wait_s)
                waited_s += wait_s
            except (Exception, SystemExit) as exc:  # noqa: BLE001 -- whatever a party raises is its forfeit
                # Rule: a party that fails to answer (raises, exits, its process dies) forfeits.
                raise Forfeit(party, compute_failure_reason(call, exc)) from None
            # Rule: a party out of time by a deadline forfeits (the call is abandoned) unless a
            # re-measurement finds the machine slower and so leaves it time to wait on.
            if not (self.remeasure(party) and not is_out_of_time(self.budget.units, self.get_charged(party))):
                self.used[party], self.open_s[party] = self.budget.units, 0.0
                abandon(provider)
                raise Forfeit(party, f"no answer to {call} within the {describe_units(remaining, self.budget.unit)} "
                                     f"left of its {self.budget.describe()} time budget{self.describe_references()}")
        elapsed = self.now() - start
        self.charge(party, max(elapsed - waited_s, 0.0))
        # Rule: a party whose answers add up to more than its budget forfeits, unless a
        # re-measurement finds the machine slow enough to bring them back within it.
        if is_over_budget(self.budget.units, self.get_charged(party)) and not (
                self.remeasure(party) and not is_over_budget(self.budget.units, self.get_charged(party))):
            raise Forfeit(party, f"time budget of {self.budget.describe()} exhausted by {call}"
                                 f"{self.describe_references()}")
        return result, elapsed

    def stop(self) -> None:
        """Release the worker without waiting for an abandoned call still running in it."""
        if self.worker is not None:
            self.worker.shutdown(wait=False, cancel_futures=True)
            self.worker = None

    def to_record(self) -> dict[str, Any]:
        """The clock as a transcript records it: the budget (its units, what a unit is, the
        reference's seconds when it was set), every measurement of the reference, and each party's
        charge in units and the re-measurements it caused."""
        return {"budget": self.budget.to_record(), "reference": REFERENCES[self.budget.unit],
                "references_s": list(self.references_s),
                "charged": {str(p): self.get_charged(p) for p in PARTIES},
                "remeasures": {str(p): self.remeasures.get(p, 0) for p in PARTIES},
                "max_remeasures": self.max_remeasures, "max_slowdown": self.max_slowdown}


def compute_opening_fault(exc: Exception) -> str:
    """Why the referee cannot use what the solver opened (a ``RefereeError`` says it itself)."""
    if isinstance(exc, RefereeError):
        return str(exc)
    return f"the referee cannot use what it opened: {describe_exception(exc)}"


def abandon(provider: Any) -> None:
    """Stop a provider whose call was abandoned, when it can be stopped (a party process is
    killed, which also ends the worker thread blocked on its answer)."""
    close = getattr(provider, "close", None)
    if callable(close):
        close()


@dataclass(frozen=True)
class DisputeResult:
    rounds: int
    first_divergent_step: Step | None
    operator: str | None
    referee_ops: int
    winner: Party
    reason: str
    levels: dict[str, int]
    transcript: str | None
    seconds: float
    operator_index: int | None = None
    transcript_head: str | None = None
    # what each of the solver, the challenger and the referee claimed the ruled-on computation
    # outputs (hex roots: ``compute_outputs_root`` of an operator's outputs, or a step's post-state
    # root); empty when the game ended in a forfeit
    outputs: dict[str, str] = field(default_factory=dict)
    ruling: Any = None  # the referee's signed ``proofs.messages.Ruling`` (``verification.referee.sign_ruling``)

    def to_report(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "first_divergent_step": self.first_divergent_step,
                "operator": self.operator, "operator_index": self.operator_index,
                "referee_ops": self.referee_ops, "winner": self.winner, "transcript": self.transcript,
                "transcript_head": self.transcript_head}


# -- the levels, as data ---------------------------------------------------------------------------
# A level is one bisection of the game: its parties ``commit`` to the values of a span, ``reveal``
# them at positions (each checked against the commitment), the game bisects the span to the first
# disputed position (``locate``; a level may have a shortcut), and the located pair ``narrow``s into
# the next level's span, or, at the last level, into the referee's case. Adding a level (inside an
# operator, or a data-parallel rank) is one more object in the table.
@dataclass(frozen=True)
class CheckpointSpan:
    """Level 1's span: checkpoints ``0 … last`` of interval ``k``, or only the disputed interval
    ``interval`` (the interval policy's: the challenger started from the solver's checkpoint)."""

    last: int
    k: int
    interval: int | None = None


@dataclass(frozen=True)
class StepSpan:
    """Level 2's span: steps ``start … end`` between the solver's checkpoints ``first`` (agreed)
    and ``last`` (disputed), whose roots it reveals when the level opens."""

    start: Step
    end: Step
    first: int
    last: int


@dataclass(frozen=True)
class OperatorSpan:
    """Level 3's span: the operators of step ``step`` from the agreed pre-state to each party's post root."""

    step: Step
    pre: Root
    posts: dict[Party, Root]


@dataclass(frozen=True)
class OperatorCase:
    """The referee's case on one operator: its index, the agreed digest before it, both records."""

    step: Step
    pre: Root
    index: int
    agreed: Root
    records: dict[Party, OpRecord | None]


class CheckpointLevel:
    """Level 1: the checkpoints of the signed trace (the trace root is the commitment)."""

    name, status = "checkpoints", Status.CHECKPOINTS

    def commit(self, game: DisputeGame, span: CheckpointSpan) -> CheckpointSpan:
        if span.interval is None:
            # Rule: S_0 is a pure function of the spec; a solver whose S_0 differs is wrong at init.
            if game._solver_checkpoint(0) != game.program.init_state().root(game.hashing):
                raise Forfeit(Party.SOLVER, "initial state does not match the job spec")
        return span

    def reveal(self, game: DisputeGame, span: CheckpointSpan, index: int) -> bool:
        return game._checkpoints_agree(index)

    def locate(self, game: DisputeGame, span: CheckpointSpan) -> tuple[int, int]:
        """Bisect ``[0, last]`` when the final checkpoint is disputed. When it is agreed (a
        divergence that training washed out, a spoof ending at the honest model), the solver
        reveals its checkpoints in order in one round; the first disputed one and its agreed
        predecessor are then already adjacent, so no bisection follows."""
        if span.interval is not None:
            return span.interval, span.interval + 1
        if not self.reveal(game, span, span.last):
            return game.bisect(self.name, 0, span.last, lambda index: self.reveal(game, span, index))
        game.rounds[self.name] += 1
        for index in range(1, span.last):
            if not self.reveal(game, span, index):
                game.record(Party.CHALLENGER, ChallengeCheckpoint(index))
                return index - 1, index
        raise Forfeit(Party.CHALLENGER, "no checkpoint of the solver differs from the challenger's")

    def narrow(self, game: DisputeGame, span: CheckpointSpan, lo: int, hi: int) -> StepSpan:
        return StepSpan(Step(lo * span.k), Step(hi * span.k), lo, hi)


@dataclass(frozen=True)
class OpenedSteps:
    span: StepSpan
    commits: dict[Party, Root]


class StepLevel:
    """Level 2: the steps of the disputed checkpoint interval, each party's Merkle root of step roots."""

    name, status = "steps", Status.STEPS

    def commit(self, game: DisputeGame, span: StepSpan) -> OpenedSteps:
        agreed, disputed = game._solver_checkpoint(span.first), game._solver_checkpoint(span.last)
        opened = OpenedSteps(span, {p: game._commit_steps(p, span.start, span.end) for p in PARTIES})
        # Rule: the step commitment must start at the agreed checkpoint and end at the solver's
        # own committed checkpoint.
        if self.reveal_one(game, opened, Party.SOLVER, span.start) != agreed:
            raise Forfeit(Party.SOLVER, f"step commitment does not start at the agreed root of step {span.start}")
        if self.reveal_one(game, opened, Party.SOLVER, span.end) != disputed:
            raise Forfeit(Party.SOLVER, f"step commitment does not end at its checkpoint root of step {span.end}")
        return opened

    def reveal_one(self, game: DisputeGame, opened: OpenedSteps, party: Party, step: int) -> Root:
        return game._step_root(party, opened.commits[party], (opened.span.start, opened.span.end), Step(step))

    def reveal(self, game: DisputeGame, opened: OpenedSteps, step: int) -> bool:
        return len({self.reveal_one(game, opened, p, step) for p in PARTIES}) == 1

    def locate(self, game: DisputeGame, opened: OpenedSteps) -> tuple[int, int]:
        return game.bisect(self.name, int(opened.span.start), int(opened.span.end),
                           lambda step: self.reveal(game, opened, step))

    def narrow(self, game: DisputeGame, opened: OpenedSteps, lo: int, hi: int) -> OperatorSpan:
        pre = self.reveal_one(game, opened, Party.SOLVER, lo)
        posts = {p: self.reveal_one(game, opened, p, hi) for p in PARTIES}
        # Rule: the challenger must dispute the solver's root at the step the bisection ends on.
        if posts[Party.SOLVER] == posts[Party.CHALLENGER]:
            raise Forfeit(Party.CHALLENGER, f"it agrees with the solver's root of step {hi}")
        return OperatorSpan(Step(hi), pre, posts)


@dataclass(frozen=True)
class OpenedOperators:
    span: OperatorSpan
    genesis: Root
    commits: dict[Party, OpsCommitment]


class OperatorLevel:
    """Level 3: the operators of the disputed step, each party's Merkle root of its op digest chain."""

    name, status = "operators", Status.OPERATORS

    def commit(self, game: DisputeGame, span: OperatorSpan) -> OpenedOperators:
        genesis = compute_genesis(span.pre, span.step, game.hashing)
        opened = OpenedOperators(span, genesis, {p: game._commit_ops(p, span.step) for p in PARTIES})
        for party in PARTIES:
            game._check_final_record(party, opened.commits[party], genesis, span.posts[party])
        return opened

    def reveal_one(self, game: DisputeGame, opened: OpenedOperators, party: Party, position: int) -> Root:
        return game._op_digest(party, opened.commits[party], opened.genesis, position)

    def reveal(self, game: DisputeGame, opened: OpenedOperators, position: int) -> bool:
        return len({self.reveal_one(game, opened, p, position) for p in PARTIES}) == 1

    def locate(self, game: DisputeGame, opened: OpenedOperators) -> tuple[int, int]:
        """The first operator record the parties disagree on. When both hold the same first
        ``shorter`` records, the longer trace goes on where the other ended: no bisection."""
        shorter = min(c.count for c in opened.commits.values())
        if self.reveal(game, opened, shorter):
            return shorter, shorter + 1
        return game.bisect(self.name, 0, shorter, lambda position: self.reveal(game, opened, position))

    def narrow(self, game: DisputeGame, opened: OpenedOperators, lo: int, hi: int) -> OperatorCase:
        agreed = self.reveal_one(game, opened, Party.SOLVER, lo)
        # A party whose trace ended at ``lo`` has no record there (its structure is "none").
        records = {p: game._open_record(p, lo, agreed, self.reveal_one(game, opened, p, lo + 1))
                   if lo < opened.commits[p].count else None for p in PARTIES}
        return OperatorCase(opened.span.step, opened.span.pre, lo, agreed, records)


LEVELS = (CheckpointLevel(), StepLevel(), OperatorLevel())  # the full game, level 1 first


class DisputeGame:
    """One dispute over one solver's commitment: the levels of ``LEVELS`` in turn, then the referee.
    Each party's answers run on ``ChessClock(budget, clock, reference)``: ``budget`` in units of
    ``reference`` (``verification.clock.Budget``; a float is fixed seconds), ``reference`` the
    function that times one unit now (``None``: never re-measured)."""

    transitions = TRANSITIONS

    def __init__(self, program: Program, solver: Provider, challenger: Provider,
                 trace_root: Root, arity: int, budget: Budget | float, operator_level: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter, reference: Callable[[], float] | None = None):
        self.program = program
        self.solver = solver
        self.challenger = challenger
        self.providers: dict[Party, Provider] = {Party.SOLVER: solver, Party.CHALLENGER: challenger}
        self.trace_root = trace_root
        self.arity = arity
        self.operator_level = program.spec.operator_level if operator_level is None else operator_level
        self.hashing = program.spec.hashing
        self.levels = LEVELS if self.operator_level else LEVELS[:2]  # without level 3 the referee gets the step
        self.transitions = compute_transitions(tuple(level.status for level in self.levels))
        self.clock = ChessClock(budget, clock, reference)
        self.num_checkpoints = program.spec.num_checkpoints
        self.status = Status.CHECKPOINTS
        self.moves: list[Move] = []
        self.rounds = {level.name: 0 for level in LEVELS}

    # -- state machine and transcript -------------------------------------------------------
    def ask(self, party: Party, method: str, *args: Any) -> tuple[Any, float]:
        """``party``'s answer to ``method(*args)`` on its clock, checked for shape."""
        answer, elapsed = self.clock.call(party, self.providers[party], method, *args)
        if not ANSWER_CHECKS[method](answer):
            raise Forfeit(party, f"answered {compute_call_name(method, args)} with a malformed "
                                 f"{type(answer).__name__}")
        return answer, elapsed

    def transition(self, event: Event) -> None:
        nxt = self.transitions.get((self.status, event))
        if nxt is None:
            raise GameError(f"illegal move {event!r} in status {self.status.value!r}")
        self.status = nxt

    def record(self, party: Party, message: Any, elapsed: float = 0.0) -> None:
        """Append ``party``'s move ``message`` (``proofs.messages.GAME_MOVES``) to the transcript."""
        kind = KIND_OF_MESSAGE[type(message)]
        # Rule: a move is made by a party that may make its kind.
        if party not in MOVE_KINDS[kind][1]:
            raise GameError(f"{party} cannot make a {kind} move")
        index, previous, elapsed_s = len(self.moves), self.get_head() or "", round(elapsed, 6)
        move_id = compute_move_id(index, self.status, party, kind, message_to_json(message), elapsed_s,
                                  previous, self.hashing)
        self.moves.append(Move(index, self.status, party, message, elapsed_s, previous, move_id))

    def get_head(self) -> str | None:
        """The transcript head: the id of the last move."""
        return self.moves[-1].move_id if self.moves else None

    def bisect(self, level: str, lo: int, hi: int, agrees: Callable[[int], bool]) -> tuple[int, int]:
        """k-ary dissection of ``[lo, hi]`` (agreed at ``lo``, disputed at ``hi``) down to ``hi = lo + 1``."""
        while hi - lo > 1:
            points = compute_dissection_points(lo, hi, self.arity)
            lo, hi = compute_narrowed(lo, hi, {p: agrees(p) for p in points})
            self.rounds[level] += 1
            self.record(Party.CHALLENGER, ChallengeInterval(level, lo, hi))
            self.transition(Event.NARROW)
        return lo, hi

    # -- level 1: checkpoints ----------------------------------------------------------------
    def _solver_checkpoint(self, index: int) -> Root:
        (root, proof), elapsed = self.ask(Party.SOLVER, "checkpoint_root", index)
        # Rule: every revealed checkpoint root must be in the signed trace root.
        if not verify_trace_proof(self.trace_root, root, proof, self.hashing,
                                  index=index, size=self.num_checkpoints):
            raise Forfeit(Party.SOLVER, f"invalid trace proof for checkpoint #{index}")
        self.record(Party.SOLVER, RevealCheckpoint(index, root), elapsed)
        return root

    def _challenger_checkpoint(self, index: int) -> Root:
        (root, _), elapsed = self.ask(Party.CHALLENGER, "checkpoint_root", index)
        return root

    def _checkpoints_agree(self, index: int) -> bool:
        return self._solver_checkpoint(index) == self._challenger_checkpoint(index)

    # -- level 2: steps ----------------------------------------------------------------------
    def _commit_steps(self, party: Party, start: Step, end: Step) -> Root:
        root, elapsed = self.ask(party, "commit_steps", start, end)
        self.record(party, CommitSteps(start, end, root), elapsed)
        return root

    def _step_root(self, party: Party, commitment: Root, span: tuple[Step, Step], step: Step) -> Root:
        (root, proof), elapsed = self.ask(party, "step_root", step)
        start, end = span
        leaf = hash_leaf(root, DOMAIN_STEPS, self.hashing)
        # Rule: a revealed step root must be in the party's step commitment, at its position,
        # in a commitment of exactly the disputed span's size.
        ok = (proof.index, proof.size) == (step - start, end - start + 1) and \
            verify_merkle_proof(commitment, leaf, proof, DOMAIN_STEPS, self.hashing)
        if not ok:
            raise Forfeit(party, f"invalid step proof for step {step}")
        self.record(party, RevealStep(step, root), elapsed)
        return root

    # -- level 3: operators of the disputed step ---------------------------------------------
    def _commit_ops(self, party: Party, step: Step) -> OpsCommitment:
        commitment, elapsed = self.ask(party, "commit_ops", step)
        # Rule: an op commitment holds at least the record that commits the post-state.
        if not isinstance(commitment, OpsCommitment) or commitment.count < 1:
            raise Forfeit(party, f"invalid operator commitment for step {step}")
        self.record(party, CommitOps(step, commitment.root, commitment.count), elapsed)
        return commitment

    def _op_digest(self, party: Party, commitment: OpsCommitment, genesis: Root, position: int) -> Root:
        """The party's digest at bisection position ``position``: ``h_{position-1}`` (genesis at 0)."""
        if position == 0:
            return genesis
        index = position - 1
        (digest, proof), elapsed = self.ask(party, "op_digest", index)
        leaf = hash_leaf(digest, DOMAIN_OPS, self.hashing)
        # Rule: a revealed op digest must be in the party's op commitment, at its index, in a
        # commitment of the size the party declared.
        ok = (proof.index, proof.size) == (index, commitment.count) and \
            verify_merkle_proof(commitment.root, leaf, proof, DOMAIN_OPS, self.hashing)
        if not ok:
            raise Forfeit(party, f"invalid op proof for operator #{index}")
        self.record(party, RevealOp(index, digest), elapsed)
        return digest

    def _open_record(self, party: Party, index: int, previous: Root, digest: Root) -> OpRecord:
        record, elapsed = self.ask(party, "open_op", index)
        # Rule: an opened record must chain from the previous digest to the party's digest at its index.
        if not isinstance(record, OpRecord) or record.index != index or \
                compute_op_digest(previous, record, self.hashing) != digest:
            raise Forfeit(party, f"operator record #{index} does not match its committed digest")
        self.record(party, OpenOp(index, record.op, tuple(record.outputs)), elapsed)
        return record

    def _check_final_record(self, party: Party, commitment: OpsCommitment, genesis: Root, post: Root) -> None:
        last = commitment.count - 1
        previous = self._op_digest(party, commitment, genesis, last)
        record = self._open_record(party, last, previous, self._op_digest(party, commitment, genesis, last + 1))
        # Rule: an operator trace ends with the commit of the post-state root the party claimed at level 2.
        if record.op != COMMIT_OP or record.outputs != (post.hex(),):
            raise Forfeit(party, f"operator trace does not end with the commit of its root {post.hex()}")

    def referee_operator(self, case: OperatorCase) -> OpRuling:
        step, pre, index, agreed = case.step, case.pre, case.index, case.agreed
        solver_record, challenger_record = case.records[Party.SOLVER], case.records[Party.CHALLENGER]
        if get_structure(solver_record) != get_structure(challenger_record):
            ruling = rule_on_structure(self.program, step, index, solver_record, challenger_record)
        else:
            operands, elapsed = self.ask(Party.SOLVER, "open_operands", index)
            self.record(Party.SOLVER, OpenOperands(index, len(operands.arrays), len(operands.segment)), elapsed)
            try:
                ruling = rule_on_output(self.program, step, pre, agreed, solver_record, operands)
            except Exception as exc:  # noqa: BLE001 -- the opened operands are the solver's to make usable
                raise Forfeit(Party.SOLVER, compute_opening_fault(exc)) from exc
        self.record(Party.REFEREE, RuleOnOperator(step, index, ruling.operator, ruling.kind, ruling.winner,
                                                  ruling.referee_ops, ruling.schedule_ops,
                                                  tuple(ruling.referee_outputs)))
        self.transition(Event.RULE)
        return ruling

    # -- referee on a whole step (level 3 disabled) ------------------------------------------
    def referee_step(self, step: Step, pre: Root, s_post: Root, c_post: Root):
        opened, elapsed = self.ask(Party.SOLVER, "open_state", Step(step - 1))
        self.record(Party.SOLVER, OpenState(step - 1, pre), elapsed)
        try:
            ruling = rule_on_step(self.program, opened, pre, step, s_post, c_post)
        except Exception as exc:  # noqa: BLE001 -- the opened state is the solver's to make usable
            raise Forfeit(Party.SOLVER, compute_opening_fault(exc)) from exc
        self.record(Party.REFEREE, RuleOnStep(step, ruling.referee_root, ruling.winner, ruling.referee_ops))
        self.transition(Event.RULE)
        return ruling

    # -- the whole game ----------------------------------------------------------------------
    def play(self, last_checkpoint: int, k: int, interval: int | None = None) -> DisputeResult:
        """Run the game to a ruling: each level of ``self.levels`` commits, is bisected and
        narrows into the next; the last one's case goes to the referee. ``interval`` (the interval
        policy's disputed interval) skips level 1's bisection: the challenger started from the
        solver's own checkpoint ``interval``. The referee re-executes under its program's torch
        settings (``Program.settings``), entered here for the whole game."""
        with self.program.settings():
            return self.play_in_settings(last_checkpoint, k, interval)

    def play_in_settings(self, last_checkpoint: int, k: int, interval: int | None) -> DisputeResult:
        """``play``'s game, under the settings in force."""
        start_time = time.perf_counter()
        step, operator, index, ops, winner, reason = None, None, None, 0, Party.CHALLENGER, "referee ruling"
        outputs: dict[str, str] = {}
        try:
            span: Any = CheckpointSpan(last_checkpoint, k, interval)
            for level in self.levels:
                opened = level.commit(self, span)
                lo, hi = level.locate(self, opened)
                span = level.narrow(self, opened, lo, hi)
                step = getattr(span, "step", step)  # the disputed step, once level 2 has found it
                self.transition(Event.PINPOINT)
            if isinstance(span, OperatorCase):
                ruling = self.referee_operator(span)
                operator, index = ruling.operator, span.index
            else:  # the steps level was the last: the referee re-executes the step
                ruling = self.referee_step(span.step, span.pre, span.posts[Party.SOLVER], span.posts[Party.CHALLENGER])
            winner, ops = ruling.winner, ruling.referee_ops
            reason = f"referee ruling on {operator} (operator #{index})" if operator else "referee ruling on the step"
        except Forfeit as exc:
            winner = Party.CHALLENGER if exc.party == Party.SOLVER else Party.SOLVER
            reason = f"forfeit: {exc}"
            self.record(exc.party, ForfeitGame(exc.reason))
            self.transition(Event.FORFEIT)
        finally:
            self.clock.stop()
        return DisputeResult(
            rounds=sum(self.rounds.values()), first_divergent_step=step, operator=operator,
            referee_ops=ops, winner=winner, reason=reason, levels=dict(self.rounds),
            transcript=None, seconds=time.perf_counter() - start_time, operator_index=index,
            transcript_head=self.get_head(), outputs={str(p): o for p, o in outputs.items()},
        )

    def transcript(self, result: DisputeResult) -> dict[str, Any]:
        return {"schema": TRANSCRIPT_SCHEMA, "hash_name": str(self.hashing), "trace_root": self.trace_root.hex(),
                "arity": self.arity, "operator_level": self.operator_level, "clock": self.clock.to_record(),
                "result": asdict(result), "moves": [m.to_record() for m in self.moves]}


def save_transcript(path: Path, transcript: dict[str, Any]) -> str:
    """Write atomically, through a temp file of its own (two writers never share one)."""
    return str(write_json(path, transcript))


class TranscriptError(ValueError):
    """A transcript file that cannot be read or whose hash chain does not hold."""


MOVE_TYPES: dict[str, tuple[type, ...]] = {
    "index": (int,), "status": (str,), "party": (str,), "kind": (str,), "payload": (dict,),
    "elapsed_s": (int, float), "previous": (str,), "move_id": (str,),
}


def get_malformed_field(move: Any) -> str | None:
    """The first field of a stored move that is missing or of the wrong type (``None`` if none)."""
    if not isinstance(move, dict):
        return f"is a JSON {type(move).__name__}, not an object"
    for name in MOVE_TYPES:
        if name not in move:
            return f"lacks field {name!r}"
        value = move[name]
        if isinstance(value, bool) or not isinstance(value, MOVE_TYPES[name]):
            return f"has {name}={value!r}, not of type {'/'.join(t.__name__ for t in MOVE_TYPES[name])}"
    return None


def compute_move_fault(position: int, move: dict[str, Any], seen: dict[str, int], hashing: Hashing) -> str | None:
    """What is wrong with the move stored at ``position``, given the ids of the moves before it
    (``seen``: id -> position); ``None`` if it extends the chain correctly."""
    problem = get_malformed_field(move)
    if problem is not None:
        return f"move at position {position} {problem}"
    move_id, previous = move["move_id"], move["previous"]
    expected_previous = next(reversed(seen)) if seen else ""
    # Rule: a move id occurs once; a second copy of a move is a replay.
    if move_id in seen:
        return f"move at position {position} replays move #{seen[move_id]} (same id {move_id})"
    # Rule: a move follows the move before it; one that follows an earlier move replays from there.
    if previous != expected_previous and previous in seen:
        return (f"move at position {position} is replayed: it follows move #{seen[previous]}, "
                f"not move #{position - 1}")
    # Rule: a move points to the id of the move before it ("" for the first).
    if previous != expected_previous:
        return (f"move at position {position} is out of order (reordered or a move before it dropped): "
                f"its previous id is {previous!r}, not {expected_previous!r}")
    # Rule: a move's index is its position in the chain.
    if move["index"] != position:
        return f"move at position {position} is out of order: it carries index {move['index']}"
    try:
        recomputed = compute_move_id(position, move["status"], move["party"], move["kind"], move["payload"],
                                     move["elapsed_s"], previous, hashing)
    except (TypeError, ValueError) as exc:
        return f"move #{position} has a payload that is not JSON: {exc}"
    # Rule: a move's id is the hash of its content; any other id means the move was altered.
    if recomputed != move_id:
        return f"move #{position} ({move['kind']}) was altered: its content hashes to {recomputed}, not to its id {move_id}"
    try:
        get_move_message(move["kind"], move["payload"])
    except MalformedMessageError as exc:
        # Rule: a move carries the message of its kind (``proofs.messages.GAME_MOVES``).
        return f"move #{position} ({move['kind']}) carries no valid move message: {exc}"
    # Rule: a move is made by a party that may make its kind.
    if move["party"] not in MOVE_KINDS[move["kind"]][1]:
        return (f"move #{position} ({move['kind']}) is made by {move['party']!r}, who cannot make it "
                f"(only {', '.join(sorted(MOVE_KINDS[move['kind']][1]))})")
    return None


def is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf


def compute_clock_fault(clock: Any) -> str | None:
    """What is wrong with a transcript's clock record (``ChessClock.to_record``); ``None`` if nothing."""
    if not isinstance(clock, dict):
        return f"is a JSON {type(clock).__name__}, not an object"
    budget, references, remeasures = clock.get("budget"), clock.get("references_s"), clock.get("remeasures")
    # Rule: a clock names its budget as positive units of a known unit, and the reference's seconds.
    if not isinstance(budget, dict) or budget.get("unit") not in REFERENCES or \
            not is_positive_number(budget.get("units")) or not is_positive_number(budget.get("reference_s")):
        return f"has budget {budget!r}, not positive units of one of {', '.join(REFERENCES)} with its reference's seconds"
    if not isinstance(references, list) or not references or not all(map(is_positive_number, references)) \
            or references[0] != budget["reference_s"]:
        return f"has measurements {references!r}, not positive seconds starting at the budget's reference"
    if not isinstance(remeasures, dict) or not all(type(n) is int and n >= 0 for n in remeasures.values()):
        return f"has re-measurements {remeasures!r}, not counts per party"
    # Rule: every measurement after the first was one party's re-measurement; a budget in seconds has none.
    if len(references) - 1 != sum(remeasures.values()) or (budget["unit"] == SECOND and len(references) > 1):
        return (f"has {len(references) - 1} re-measurements of the reference, but its parties caused "
                f"{sum(remeasures.values())} (a budget in {budget['unit']})")
    return None


def compute_winner_of_move(move: dict[str, Any]) -> str | None:
    """The party a game's last move decides for: the ruling's winner, or the other side of a forfeit."""
    if move["kind"] == "rule":
        return move["payload"].get("winner")
    if move["kind"] == "forfeit":
        return {Party.SOLVER: Party.CHALLENGER, Party.CHALLENGER: Party.SOLVER}.get(move["party"])
    return None


def compute_transcript_fault(transcript: Any, expected_head: str | None = None) -> str | None:
    """The first thing wrong with a transcript (``None`` if nothing): its shape, then each move in
    order, then its head against ``expected_head`` (the report's ``transcript_head``; without one,
    the head its own result records, which a rebuilt chain can rewrite too)."""
    if not isinstance(transcript, dict):
        return f"is a JSON {type(transcript).__name__}, not an object"
    if transcript.get("schema") != TRANSCRIPT_SCHEMA:
        return f"has schema {transcript.get('schema')!r}, expected {TRANSCRIPT_SCHEMA!r}"
    moves, result = transcript.get("moves"), transcript.get("result")
    try:
        hashing = get_hashing(transcript.get("hash_name"))
    except UnknownHashError:
        return f"names hash {transcript.get('hash_name')!r}, not one of {HASH_NAMES}"
    if not isinstance(moves, list) or not moves or not isinstance(result, dict):
        return "lacks its moves or its result"
    # Rule: a clock record, when the transcript has one (older ones do not), is consistent.
    if "clock" in transcript and (fault := compute_clock_fault(transcript["clock"])) is not None:
        return f"clock record {fault}"
    seen: dict[str, int] = {}
    for position, move in enumerate(moves):
        fault = compute_move_fault(position, move, seen, hashing)
        if fault is not None:
            return fault
        seen[move["move_id"]] = position
    head, last = moves[-1]["move_id"], len(moves) - 1
    anchor = result.get("transcript_head") if expected_head is None else expected_head
    # Rule: the chain ends at the anchored head; anything else dropped, appended or rebuilt moves.
    if head != anchor:
        found = f"moves after #{seen[anchor]} were appended" if isinstance(anchor, str) and anchor in seen else \
            "moves were dropped or the chain was rebuilt"
        return f"ends at move #{last} with head {head}, but the anchored head is {anchor!r}: {found}"
    # Rule: the result names the winner the last move decides for.
    if result.get("winner") != compute_winner_of_move(moves[-1]):
        return (f"result names winner {result.get('winner')!r}, but its last move #{last} "
                f"({moves[-1]['kind']}) decides for {compute_winner_of_move(moves[-1])!r}")
    return None


def verify_transcript(transcript: Any, expected_head: str | None = None) -> bool:
    """Whether every move id, index and link of ``transcript`` holds and it ends at the anchored
    head (``expected_head``, else the head its result records). Never raises."""
    return compute_transcript_fault(transcript, expected_head) is None


def load_transcript(path: Path | str, expected_head: str | None = None) -> dict[str, Any]:
    """A transcript saved by ``save_transcript``; ``TranscriptError`` names the file and the first
    bad move (replayed, out of order, altered) or the head that does not match ``expected_head``."""
    try:
        transcript = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TranscriptError(f"transcript {str(path)!r} cannot be read: {exc}") from exc
    fault = compute_transcript_fault(transcript, expected_head)
    if fault is not None:
        raise TranscriptError(f"transcript {str(path)!r} {fault}")
    return transcript


FULL_FIELDS = ("op", "operator", "reason")  # shown whole in the markdown; digests and roots are cut


def compute_clock_lines(clock: dict[str, Any] | None) -> list[str]:
    """The clock's budget and measurements as a markdown paragraph (none for a transcript without a clock)."""
    if not clock:
        return []
    budget, references = clock["budget"], clock["references_s"]
    measured = ", ".join(f"{r:.4f}s" for r in references)
    return ["", f"clock: {describe_units(budget['units'], budget['unit'])} each; unit: {clock['reference']}; "
            f"measured {measured}"]


def render_transcript_markdown(transcript: dict[str, Any], limit: int = 60) -> str:
    """The transcript as markdown (for the Dagster UI): the outcome, then a table of moves."""
    result = transcript["result"]
    levels = ", ".join(f"{k} {v}" for k, v in result.get("levels", {}).items())
    lines = [f"**winner: {result['winner']}** — {result['reason']}  ",
             f"step {result['first_divergent_step']}, operator {result.get('operator') or '-'}"
             f" (#{result.get('operator_index')}), rounds {result['rounds']} ({levels}), "
             f"referee ops {result['referee_ops']}, head `{str(result.get('transcript_head'))[:16]}`",
             *compute_clock_lines(transcript.get("clock")), "",
             "| # | status | party | move | details |", "|---|---|---|---|---|"]
    for move in transcript["moves"][:limit]:
        details = ", ".join(f"{k}={v if k in FULL_FIELDS else str(v)[:16]}" for k, v in move["payload"].items())
        lines.append(f"| {move['index']} | {move['status']} | {move['party']} | {move['kind']} | {details} |")
    if len(transcript["moves"]) > limit:
        lines.append(f"| … | | | | {len(transcript['moves']) - limit} more moves |")
    return "\n".join(lines)
