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
    disputed checkpoint interval (the solver recomputes them from its checkpoint and commits to a
    Merkle root of per-step roots); then the referee re-executes the single disputed step.
chess clock
    Each party has a time budget for all its answers; a party that errs, sends an invalid proof,
    or runs out of time forfeits (Arbitrum BoLD's chess clocks).

The game is a state machine (``TRANSITIONS``): status only moves forward. Every move is appended
to a hash-chained transcript (each move's id covers the previous id), saved as JSON.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from proofs.encoding import verify_trace_proof
from proofs.hashing import DOMAIN_STEPS, DOMAIN_TRACE, hash_parts
from proofs.merkle import hash_leaf, verify_merkle_proof
from proofs.types import Root, Step
from verification.execution.program import Program
from verification.providers import Provider, ProviderError
from verification.referee import RefereeError, rule_on_step


class Status(str, Enum):
    CHECKPOINTS = "bisect-checkpoints"
    STEPS = "bisect-steps"
    REFEREE = "referee"
    RESOLVED = "resolved"


# Allowed transitions: (status, event) -> next status. Anything else is a protocol error.
TRANSITIONS: dict[tuple[Status, str], Status] = {
    (Status.CHECKPOINTS, "narrow"): Status.CHECKPOINTS,
    (Status.CHECKPOINTS, "pinpoint"): Status.STEPS,
    (Status.STEPS, "narrow"): Status.STEPS,
    (Status.STEPS, "pinpoint"): Status.REFEREE,
    (Status.REFEREE, "rule"): Status.RESOLVED,
    (Status.CHECKPOINTS, "forfeit"): Status.RESOLVED,
    (Status.STEPS, "forfeit"): Status.RESOLVED,
    (Status.REFEREE, "forfeit"): Status.RESOLVED,
}


class GameError(RuntimeError):
    """An illegal transition of the game state machine."""


class Forfeit(Exception):
    """A party failed to answer validly or in time."""

    def __init__(self, party: str, reason: str):
        super().__init__(f"{party} forfeits: {reason}")
        self.party = party
        self.reason = reason


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


@dataclass(frozen=True)
class Move:
    index: int
    status: str
    party: str
    kind: str
    payload: dict[str, Any]
    elapsed_s: float
    previous: str
    move_id: str


@dataclass
class ChessClock:
    """Per-party time budgets; answering past one's budget forfeits."""

    budget_s: float
    used_s: dict[str, float] = field(default_factory=dict)

    def call(self, party: str, fn, *args):
        start = time.perf_counter()
        try:
            result = fn(*args)
        except ProviderError as exc:
            raise Forfeit(party, str(exc)) from exc
        elapsed = time.perf_counter() - start
        self.used_s[party] = self.used_s.get(party, 0.0) + elapsed
        if self.used_s[party] > self.budget_s:
            raise Forfeit(party, f"time budget of {self.budget_s:.1f}s exhausted")
        return result, elapsed


@dataclass(frozen=True)
class DisputeResult:
    rounds: int
    first_divergent_step: Step | None
    operator: str | None
    referee_ops: int
    winner: str
    reason: str
    levels: dict[str, int]
    transcript: str | None
    seconds: float

    def to_report(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "first_divergent_step": self.first_divergent_step,
                "operator": self.operator, "referee_ops": self.referee_ops,
                "winner": self.winner, "transcript": self.transcript}


class DisputeGame:
    """One dispute over one solver's commitment."""

    def __init__(self, program: Program, solver: Provider, challenger: Provider,
                 trace_root: Root, arity: int, budget_s: float):
        self.program = program
        self.solver = solver
        self.challenger = challenger
        self.trace_root = trace_root
        self.arity = arity
        self.hash_name = program.spec.hash_name
        self.clock = ChessClock(budget_s)
        self.num_checkpoints = program.spec.num_checkpoints
        self.status = Status.CHECKPOINTS
        self.moves: list[Move] = []
        self.rounds = {"checkpoints": 0, "steps": 0}

    # -- state machine and transcript -------------------------------------------------------
    def transition(self, event: str) -> None:
        nxt = TRANSITIONS.get((self.status, event))
        if nxt is None:
            raise GameError(f"illegal move {event!r} in status {self.status.value!r}")
        self.status = nxt

    def record(self, party: str, kind: str, payload: dict[str, Any], elapsed: float = 0.0) -> None:
        previous = self.moves[-1].move_id if self.moves else ""
        body = json.dumps([len(self.moves), self.status.value, party, kind, payload, previous], sort_keys=True)
        move_id = hash_parts(DOMAIN_TRACE, b"move", body.encode(), hash_name=self.hash_name).hex()
        self.moves.append(Move(len(self.moves), self.status.value, party, kind, payload,
                               round(elapsed, 6), previous, move_id))

    # -- level 1: checkpoints ----------------------------------------------------------------
    def _solver_checkpoint(self, index: int) -> Root:
        (root, proof), elapsed = self.clock.call("solver", self.solver.checkpoint_root, index)
        # Rule: every revealed checkpoint root must be in the signed trace root.
        if not verify_trace_proof(self.trace_root, root, proof, self.hash_name,
                                  index=index, size=self.num_checkpoints):
            raise Forfeit("solver", f"invalid trace proof for checkpoint #{index}")
        self.record("solver", "reveal-checkpoint", {"index": index, "root": root.hex()}, elapsed)
        return root

    def _challenger_checkpoint(self, index: int) -> Root:
        (root, _), elapsed = self.clock.call("challenger", self.challenger.checkpoint_root, index)
        return root

    def bisect_checkpoints(self, lo: int, hi: int) -> tuple[int, int]:
        while hi - lo > 1:
            points = compute_dissection_points(lo, hi, self.arity)
            agreement = {p: self._solver_checkpoint(p) == self._challenger_checkpoint(p) for p in points}
            lo, hi = compute_narrowed(lo, hi, agreement)
            self.rounds["checkpoints"] += 1
            self.record("challenger", "narrow", {"lo": lo, "hi": hi})
            self.transition("narrow")
        self.transition("pinpoint")
        return lo, hi

    # -- level 2: steps ----------------------------------------------------------------------
    def _commit_steps(self, party: str, provider: Provider, start: Step, end: Step) -> Root:
        root, elapsed = self.clock.call(party, provider.commit_steps, start, end)
        self.record(party, "commit-steps", {"start": start, "end": end, "root": root.hex()}, elapsed)
        return root

    def _step_root(self, party: str, provider: Provider, commitment: Root, span: tuple[Step, Step],
                   step: Step) -> Root:
        (root, proof), elapsed = self.clock.call(party, provider.step_root, step)
        start, end = span
        leaf = hash_leaf(root, DOMAIN_STEPS, self.hash_name)
        # Rule: a revealed step root must be in the party's step commitment, at its position,
        # in a commitment of exactly the disputed span's size.
        ok = (proof.index, proof.size) == (step - start, end - start + 1) and \
            verify_merkle_proof(commitment, leaf, proof, DOMAIN_STEPS, self.hash_name)
        if not ok:
            raise Forfeit(party, f"invalid step proof for step {step}")
        if party == "solver":
            self.record(party, "reveal-step", {"step": step, "root": root.hex()}, elapsed)
        return root

    def bisect_steps(self, start: Step, end: Step, agreed: Root, disputed: Root) -> tuple[Step, Root, Root, Root]:
        span = (start, end)
        s_commit = self._commit_steps("solver", self.solver, start, end)
        c_commit = self._commit_steps("challenger", self.challenger, start, end)
        # Rule: the step commitment must start at the agreed checkpoint and end at the solver's
        # own committed checkpoint.
        if self._step_root("solver", self.solver, s_commit, span, start) != agreed:
            raise Forfeit("solver", f"step commitment does not start at the agreed root of step {start}")
        if self._step_root("solver", self.solver, s_commit, span, end) != disputed:
            raise Forfeit("solver", f"step commitment does not end at its checkpoint root of step {end}")
        lo, hi = int(start), int(end)
        while hi - lo > 1:
            points = compute_dissection_points(lo, hi, self.arity)
            agreement = {
                p: self._step_root("solver", self.solver, s_commit, span, Step(p))
                == self._step_root("challenger", self.challenger, c_commit, span, Step(p))
                for p in points
            }
            lo, hi = compute_narrowed(lo, hi, agreement)
            self.rounds["steps"] += 1
            self.record("challenger", "narrow", {"lo": lo, "hi": hi})
            self.transition("narrow")
        self.transition("pinpoint")
        pre = self._step_root("solver", self.solver, s_commit, span, Step(lo))
        s_post = self._step_root("solver", self.solver, s_commit, span, Step(hi))
        c_post = self._step_root("challenger", self.challenger, c_commit, span, Step(hi))
        return Step(hi), pre, s_post, c_post

    # -- referee -----------------------------------------------------------------------------
    def referee_step(self, step: Step, pre: Root, s_post: Root, c_post: Root):
        opened, elapsed = self.clock.call("solver", self.solver.open_state, Step(step - 1))
        self.record("solver", "open-state", {"step": step - 1, "root": pre.hex()}, elapsed)
        try:
            ruling = rule_on_step(self.program, opened, pre, step, s_post, c_post)
        except RefereeError as exc:
            raise Forfeit("solver", str(exc)) from exc
        self.record("referee", "rule", {"step": step, "referee_root": ruling.referee_root.hex(),
                                        "winner": ruling.winner, "ops": ruling.referee_ops})
        self.transition("rule")
        return ruling

    # -- the whole game ----------------------------------------------------------------------
    def find_disputed_checkpoint(self, last: int) -> int:
        """Right end of level 1: the final checkpoint if disputed, else the first disputed one."""
        if self._solver_checkpoint(last) != self._challenger_checkpoint(last):
            return last
        for index in range(1, last):
            if self._solver_checkpoint(index) != self._challenger_checkpoint(index):
                return index
        raise Forfeit("challenger", "no checkpoint of the solver differs from the challenger's")

    def play(self, last_checkpoint: int, k: int, interval: int | None = None) -> DisputeResult:
        """Run the game to a ruling. ``interval`` (the interval policy's disputed interval) skips
        level 1: the challenger started from the solver's own checkpoint ``interval``."""
        start_time = time.perf_counter()
        step, ops, winner, reason = None, 0, "challenger", "referee ruling"
        try:
            if interval is None:
                # Rule: S_0 is a pure function of the spec; a solver whose S_0 differs is wrong at init.
                if self._solver_checkpoint(0) != self.program.init_state().root(self.hash_name):
                    raise Forfeit("solver", "initial state does not match the job spec")
                lo, hi = self.bisect_checkpoints(0, self.find_disputed_checkpoint(last_checkpoint))
            else:
                lo, hi = interval, interval + 1
                self.transition("pinpoint")
            agreed, disputed = self._solver_checkpoint(lo), self._solver_checkpoint(hi)
            step, pre, s_post, c_post = self.bisect_steps(Step(lo * k), Step(hi * k), agreed, disputed)
            ruling = self.referee_step(step, pre, s_post, c_post)
            winner, ops = ruling.winner, ruling.referee_ops
        except Forfeit as exc:
            winner = "challenger" if exc.party == "solver" else "solver"
            reason = f"forfeit: {exc}"
            self.record(exc.party, "forfeit", {"reason": exc.reason})
            self.status = Status.RESOLVED
        return DisputeResult(
            rounds=sum(self.rounds.values()), first_divergent_step=step, operator=None,
            referee_ops=ops, winner=winner, reason=reason, levels=dict(self.rounds),
            transcript=None, seconds=time.perf_counter() - start_time,
        )

    def transcript(self, result: DisputeResult) -> dict[str, Any]:
        return {"schema": "pinpoint.transcript/1", "trace_root": self.trace_root.hex(),
                "arity": self.arity, "result": asdict(result), "moves": [asdict(m) for m in self.moves]}


def save_transcript(path: Path, transcript: dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(transcript, indent=1))
    tmp.replace(path)
    return str(path)


def render_transcript_markdown(transcript: dict[str, Any], limit: int = 60) -> str:
    """The transcript as a markdown table (for the Dagster UI)."""
    lines = ["| # | status | party | move | details |", "|---|---|---|---|---|"]
    for move in transcript["moves"][:limit]:
        details = ", ".join(f"{k}={str(v)[:16]}" for k, v in move["payload"].items())
        lines.append(f"| {move['index']} | {move['status']} | {move['party']} | {move['kind']} | {details} |")
    if len(transcript["moves"]) > limit:
        lines.append(f"| … | | | | {len(transcript['moves']) - limit} more moves |")
    return "\n".join(lines)
