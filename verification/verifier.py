"""The verifier role: decide whether to check a job, check it, and open a challenge on mismatch.

Committee: a job names several verifiers (``verification.spec.get_committee``), each of which
does all of the below with a coin of its own; the lead verifier checks under the spec's policy,
the attesters by the interval policy.

Selection (docs/design.md §1.5): a verifier checks a solver's job with probability ``p``. The coin
must be one the solver cannot compute before it commits, or a cheater cheats exactly when it will
not be checked (an adaptive cheater; the spot check's deterrence assumes it cannot). Pinpoint's
coin is a *commit-reveal* of the verifier's secret, mixed with the solver's own signature:

1. When the job opens, before anyone trains, the verifier draws a secret ``s`` and publishes
   ``H(job id, verifier, s)`` (``compute_coin_commitment``; write-once).
2. Each solver signs its commitment. A BLS signature is unique (one valid signature per key and
   message), so the solver's signature ``σ`` is a value the verifier cannot choose or know before
   the solver signs.
3. The verifier reveals ``s``; the solver is checked iff ``H(job id, solver, σ, s) < p · 2^64``
   (``is_selected_for_check``), and the interval policy samples intervals from the same coin.
4. Settlement checks the reveal against the published commitment and every check against the coin
   (``compute_selection_faults``), so anyone can audit which solvers had to be checked.

The solver does not know ``s`` when it decides how to train; the verifier fixed ``s`` before it
saw ``σ``, so it cannot grind the coin to skip (or to harass) a particular solver. This is the
commit-reveal of RANDAO and of Truebit's forced-error draw, with the solver's signature in the
role of a VRF output. A verifier that withholds its reveal checks nothing: settlement refuses it.

Policies
--------
``replicate``
    re-execute the whole job honestly once and compare the trace root with each solver's: any
    divergence is caught (refereed delegation, Verde).
``interval``
    re-execute ``intervals_per_check`` random intervals ``[ik, (i+1)k]`` starting from the
    solver's *own* checkpoint ``i`` (checked against its trace root); cheaper, but a single bad
    interval is caught only if sampled: detection ``1 - C(n-1, m)/C(n, m) = m/n`` for ``m``
    sampled of ``n`` intervals.

In execution mode ``tolerance`` both policies compare states by distance, Proof-of-Learning's
rule, instead of roots (``check_tolerance``): ``replicate`` checks every interval, ``interval``
the sampled ones. A mismatch still opens the exact dispute game.

Equivocation: every signed commitment is published on the job's bulletin. A verifier that finds
two valid signatures by one solver over conflicting commitments for the job holds *equivocation
evidence* and needs no re-execution at all: the solver is slashed on the evidence (as a double
vote is in Ethereum's consensus specs, ``process_attester_slashing``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from proofs.encoding import trace_root
from proofs.hashing import DOMAIN_COIN, Hashing, hash_parts
from proofs.messages import Equivocation, Signed, is_valid_equivocation
from proofs.types import JobId, PartyId, Root, SolverId, Step
from verification.execution.checkpoints import CheckpointError, read_checkpoint
from verification.execution.program import Program
from verification.execution.state import State, StateError
from verification.solver import TrainingRun
from verification.spec import Mode, Policy
from verification.tolerance import (
    compute_distances,
    compute_relative_thresholds,
    is_within_tolerance,
)


@dataclass(frozen=True)
class SpotCheck:
    solver_id: SolverId
    checked: bool
    policy: Policy | Literal[Mode.TOLERANCE]  # the spec's policy, or tolerance mode's PoL check
    intervals: tuple[int, ...]
    mismatch: bool
    disputed_interval: int | None  # interval policy: the first mismatching interval
    steps_executed: int
    seconds: float
    equivocation: Equivocation | None = None  # two conflicting signed commitments: no re-execution
    forfeit: str | None = None  # the solver delivered no signed trace (why): nothing to check
    inconclusive: str | None = None  # exact mode, another environment: the verifier cannot judge

    def to_report(self) -> dict:
        return {"checked": self.checked, "intervals": list(self.intervals), "mismatch": self.mismatch,
                "equivocation": self.equivocation is not None, "forfeit": self.forfeit,
                "inconclusive": self.inconclusive}


def is_attestable(check: SpotCheck) -> bool:
    """Whether ``check`` is *conclusive*: the verifier judged the solver's trace by re-executing
    it (or, a false challenger, by its own accusation), so it signs an ``Attestation`` of its
    verdict. Not conclusive: a solver left unchecked, an inconclusive check, a forfeit, and
    equivocation evidence, which proves itself with no verdict of the verifier's."""
    return check.checked and check.equivocation is None and check.forfeit is None and check.inconclusive is None


SECRET_SIZE = 32  # bytes of the verifier's coin secret


@dataclass(frozen=True)
class CoinCommitment:
    """What the verifier publishes when a job opens: ``H(job id, verifier, secret)``."""

    job_id: JobId
    verifier: PartyId
    commitment: Root


@dataclass(frozen=True)
class CoinReveal:
    """The verifier's secret, revealed after every solver committed."""

    job_id: JobId
    verifier: PartyId
    secret: bytes


def compute_coin_commitment(job_id: JobId, verifier: PartyId, secret: bytes, hashing: Hashing) -> Root:
    return hash_parts(DOMAIN_COIN, b"commit", job_id.encode(), verifier.encode(), secret, hashing=hashing)


def is_valid_coin_reveal(published: CoinCommitment, reveal: CoinReveal, hashing: Hashing) -> bool:
    """Whether ``reveal`` opens ``published``: same job, same verifier, the committed secret."""
    # Rule: the coin's secret is the one committed to before any solver committed.
    return (reveal.job_id, reveal.verifier) == (published.job_id, published.verifier) and \
        len(reveal.secret) == SECRET_SIZE and \
        compute_coin_commitment(reveal.job_id, reveal.verifier, reveal.secret, hashing) == published.commitment


def compute_coin(reveal: CoinReveal, solver_id: SolverId, signature: bytes, label: bytes, index: int,
                 hashing: Hashing) -> int:
    """A 64-bit draw from the verifier's secret and the solver's signature on its commitment."""
    digest = hash_parts(DOMAIN_COIN, label, reveal.job_id.encode(), solver_id.encode(), bytes(signature),
                        reveal.secret, index.to_bytes(8, "big"), hashing=hashing)
    return int.from_bytes(digest[:8], "big")


def is_selected_for_check(reveal: CoinReveal, solver_id: SolverId, signature: bytes, p: float,
                          hashing: Hashing) -> bool:
    """Whether the solver whose commitment carries ``signature`` must be checked: its coin is
    below ``p · 2^64``."""
    return compute_coin(reveal, solver_id, signature, b"spot-check", 0, hashing) < int(p * 2**64)


def compute_check_intervals(reveal: CoinReveal, solver_id: SolverId, signature: bytes, num_intervals: int,
                            count: int, hashing: Hashing) -> tuple[int, ...]:
    """``count`` distinct intervals out of ``num_intervals``, drawn from the same coin."""
    scored = sorted(range(num_intervals),
                    key=lambda i: compute_coin(reveal, solver_id, signature, b"interval", i, hashing))
    return tuple(sorted(scored[: min(count, num_intervals)]))


def compute_selection_faults(published: CoinCommitment, reveal: CoinReveal | None, signed: dict[SolverId, Signed],
                             checks: dict[SolverId, SpotCheck], p: float, hashing: Hashing) -> list[str]:
    """What is wrong with a verifier's checks against its coin (empty: nothing). Equivocation
    evidence and forfeits need no coin; every other checked solver must be one the revealed coin
    selected. (Which intervals were sampled is in the report for anyone to recompute; a verifier
    that samples badly only lowers its own chance of a finding.)"""
    if reveal is None or not is_valid_coin_reveal(published, reveal, hashing):
        return [f"the verifier's reveal does not open its coin commitment {published.commitment.hex()} "
                f"for job {published.job_id}"]
    faults = []
    for sid, check in checks.items():
        if check.equivocation is not None or check.forfeit is not None or not check.checked:
            continue
        # Rule: a verifier checks only the solvers its coin selected.
        if sid not in signed or not is_selected_for_check(reveal, sid, signed[sid].signature, p, hashing):
            faults.append(f"solver {sid!r} was checked, but the coin did not select it")
    return faults


def check_replicate(solver_id: SolverId, claimed_trace_root: Root, replica: TrainingRun, hashing: Hashing) -> SpotCheck:
    """Compare the solver's trace root with the verifier's own honest replica."""
    start = time.perf_counter()
    mismatch = trace_root(list(replica.roots), hashing) != claimed_trace_root
    intervals = tuple(range(len(replica.roots) - 1))
    return SpotCheck(solver_id, True, Policy.REPLICATE, intervals, mismatch, None, replica.steps,
                     time.perf_counter() - start + replica.seconds)


def is_signed_trace(roots: tuple[Root, ...], claimed_trace_root: Root, num_checkpoints: int, hashing: Hashing) -> bool:
    """Whether a run's checkpoint roots are the trace the solver signed."""
    return len(roots) == num_checkpoints and trace_root(list(roots), hashing) == claimed_trace_root


def read_solver_checkpoint(program: Program, checkpoint_path: str, index: int, root: Root) -> State | None:
    """The solver's stored checkpoint ``index`` if it hashes to ``root``; ``None`` if it is missing,
    malformed or another state (the solver's store is the solver's word, not the verifier's)."""
    try:
        state = read_checkpoint(checkpoint_path, index, program.device)
    except (CheckpointError, StateError, OSError, KeyError, ValueError):
        return None
    return state if state.root(program.spec.hashing) == root else None


def check_interval(program: Program, solver_id: SolverId, roots: tuple[Root, ...], claimed_trace_root: Root,
                   checkpoint_path: str, intervals: tuple[int, ...]) -> SpotCheck:
    """Re-execute sampled intervals from the solver's own checkpoints."""
    start = time.perf_counter()
    k, hashing = program.spec.checkpoint_interval, program.spec.hashing
    disputed, executed = None, 0
    # Rule: checkpoint roots used by a check must be the ones the solver signed.
    signed = is_signed_trace(roots, claimed_trace_root, program.spec.num_checkpoints, hashing)
    for i in intervals:
        state = read_solver_checkpoint(program, checkpoint_path, i, roots[i]) if signed else None
        if state is None:
            disputed = i
            break
        with program.settings():  # the verifier re-executes under the job's settings
            state = program.run(state, Step((i + 1) * k))
        executed += k
        if state.root(hashing) != roots[i + 1]:
            disputed = i
            break
    return SpotCheck(solver_id, True, Policy.INTERVAL, intervals, disputed is not None, disputed,
                     executed, time.perf_counter() - start)


def check_tolerance(program: Program, solver_id: SolverId, roots: tuple[Root, ...], claimed_trace_root: Root,
                    checkpoint_path: str, intervals: tuple[int, ...], rho: float) -> SpotCheck:
    """Proof-of-Learning's check (execution mode ``tolerance``): re-execute each sampled interval
    from the solver's own checkpoint ``S_ik`` into ``R`` and accept iff every PoL distance between
    ``R`` and the claimed ``S_(i+1)k`` is at most ``rho`` times how far ``R`` moved from ``S_ik``
    (``verification.tolerance``; Jia et al. 2021). Not exact: fabricated traces can pass."""
    start = time.perf_counter()
    k, hashing = program.spec.checkpoint_interval, program.spec.hashing
    disputed, executed = None, 0
    # Rule: the checkpoints compared are the ones the solver signed
    signed = is_signed_trace(roots, claimed_trace_root, program.spec.num_checkpoints, hashing)
    for i in intervals:
        lo = read_solver_checkpoint(program, checkpoint_path, i, roots[i]) if signed else None
        hi = read_solver_checkpoint(program, checkpoint_path, i + 1, roots[i + 1]) if signed else None
        if lo is None or hi is None:
            disputed = i
            break
        with program.settings():
            replayed = program.run(lo, Step((i + 1) * k))
        executed += k
        # Rule (PoL): every distance within rho times the distance the re-execution moved
        thresholds = compute_relative_thresholds(compute_distances(lo, replayed), rho)
        if not is_within_tolerance(compute_distances(replayed, hi), thresholds):
            disputed = i
            break
    return SpotCheck(solver_id, True, Mode.TOLERANCE, intervals, disputed is not None, disputed,
                     executed, time.perf_counter() - start)


def find_equivocation(primary: Signed, published: list[Signed], public_key: bytes) -> Equivocation | None:
    """Evidence that the solver of ``primary`` also signed a conflicting commitment for the same job
    (any valid pair is enough: it is slashable with no re-execution)."""
    for other in published:
        evidence = Equivocation(primary, other)
        # Rule: two valid signatures by one solver over conflicting commitments of one job
        if is_valid_equivocation(evidence, public_key):
            return evidence
    return None


def check_equivocation(solver_id: SolverId, policy: Policy, evidence: Equivocation) -> SpotCheck:
    """The verdict of a verifier holding equivocation evidence: checked, nothing re-executed."""
    return SpotCheck(solver_id, True, policy, (), False, None, 0, 0.0, evidence)


def not_checked(solver_id: SolverId, policy: Policy) -> SpotCheck:
    return SpotCheck(solver_id, False, policy, (), False, None, 0, 0.0)


def forfeited(solver_id: SolverId, policy: Policy, reason: str) -> SpotCheck:
    """A solver that delivered no signed trace: nothing to check, it forfeits."""
    return SpotCheck(solver_id, False, policy, (), False, None, 0, 0.0, forfeit=reason)


def inconclusive(solver_id: SolverId, policy: Policy, solver_environment: str, verifier_environment: str) -> SpotCheck:
    """An exact-mode trace made in another environment than the verifier's: no challenge (an
    honest solver must not be slashed for its hardware); reproducible mode is the remedy."""
    reason = (f"exact mode: the solver ran in [{solver_environment}], the verifier in "
              f"[{verifier_environment}]; re-run the job in reproducible mode to verify it across environments")
    return SpotCheck(solver_id, False, policy, (), False, None, 0, 0.0, inconclusive=reason)
