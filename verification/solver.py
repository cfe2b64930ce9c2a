"""The solver role: train under a strategy, checkpoint, and answer the dispute game.

A solver runs the job's program under its strategy, writes a checkpoint every ``k`` steps and
keeps the state roots of ``S_0, S_k, …, S_T`` (its *trace*). In a dispute it is reached only
through the ``Provider`` interface (``verification.providers``), backed here by ``TraceProvider``
which recomputes the steps of a disputed interval from its own checkpoint *with its own strategy*
— so a cheater's answers are consistent with what it committed to.

Resuming
--------
A run killed mid-way leaves ``<path>.partial`` (``verification.execution.checkpoints``). ``train``
resumes it from its last checkpoint when the store is the same run (job, solver, strategy, spec
id, ``k``, ``C``, hash) and every stored checkpoint hashes to its recorded root; otherwise the
store is discarded with a ``DiscardedCheckpointWarning`` and training restarts at step 0. Every
step is a pure function of the previous state (the State holds the step counter and RNG key), so a
resumed run ends at the bit-identical trace root of an uninterrupted one — provided the strategy,
like every catalog strategy, is a function of the state it is given (Proof-of-Learning's
replayability, Jia et al. 2021).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, replace

from datasets import storage
from datasets.sharding import DatasetCommitment
from proofs.bls import get_backend
from proofs.encoding import trace_root
from proofs.hashing import DOMAIN_FORCED_ERROR, Hashing, hash_parts
from proofs.keys import derive_keypair
from proofs.messages import Commitment, Signed, sign_message
from proofs.types import JobId, PartyId, Root, SolverId, Step
from verification.execution.checkpoints import (
    CheckpointError,
    CheckpointWriter,
    PartialCheckpoints,
    discard_partial,
    open_finished,
    open_partial,
    partial_path,
    read_checkpoint,
)
from verification.execution.program import Program, load_program
from verification.execution.state import State
from verification.settlement.rules import is_forced_error
from verification.spec import JobSpec, SolverSpec, compute_job_id
from verification.strategies import ForcedError, Strategy, resolve_strategy


class DiscardedCheckpointWarning(UserWarning):
    """A partial checkpoint store could not be resumed: it was deleted and training restarted."""


@dataclass(frozen=True)
class TrainingRun:
    """What one solver's training produced."""

    job_id: JobId
    solver_id: SolverId
    strategy: str
    checkpoint_path: str
    interval: int
    roots: tuple[Root, ...]  # state roots of S_0, S_k, …, S_T
    losses: tuple[float, ...]  # loss of steps 1..T (nan where a strategy skipped the work)
    injected_divergence_step: Step | None
    device: str
    seconds: float  # wall time of this call (a resumed run: since the resume)
    resumed_from: Step | None = None  # the checkpoint step an interrupted run resumed from
    environment: str = ""  # where it ran (``compute_environment``); committed with the trace
    failure: str | None = None  # why the solver delivered no trace (it forfeits); roots are empty then
    notices: tuple[str, ...] = ()  # warnings raised while training (e.g. a discarded partial store)
    forced_error_ticket: str = ""  # hex: the solver was drawn for a forced error (revealed at settlement)

    @property
    def final_root(self) -> Root:
        return self.roots[-1]

    @property
    def steps(self) -> Step:
        return Step((len(self.roots) - 1) * self.interval)


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run continues: its last stored state and the trace so far."""

    state: State
    partial: PartialCheckpoints


def compute_run_identity(spec: JobSpec, job_id: JobId, solver_id: SolverId, strategy: Strategy,
                         environment: str) -> dict[str, str]:
    """What makes two runs the same run: a partial store is resumed, and a finished one reused,
    only by its own run (same job, solver, strategy and spec, in the same execution environment:
    the environment is committed with the trace)."""
    return {"job_id": job_id, "solver_id": solver_id, "strategy": strategy.name, "spec": compute_job_id(spec),
            "environment": environment}


def check_resumable(partial: PartialCheckpoints, spec: JobSpec, run: dict[str, str]) -> None:
    """``CheckpointError`` unless ``partial`` was written by ``run`` under ``spec``'s k, C and hash."""
    found = (partial.run, partial.interval, partial.num_checkpoints, partial.hashing)
    expected = (run, spec.checkpoint_interval, spec.num_checkpoints, spec.hashing)
    # Rule: only the same run (same job, solver, strategy, spec, k, C, hash) is resumed
    if found != expected:
        raise CheckpointError(f"partial checkpoint store {str(partial.path)!r} belongs to another run: "
                              f"(run, k, C, hash) = {found}, expected {expected}")


def read_last_checkpoint(program: Program, partial: PartialCheckpoints) -> State:
    """The last stored state (``open_partial`` checked every stored checkpoint against its root
    and its step)."""
    return read_checkpoint(partial.path, partial.written - 1, program.device)


def load_resume_point(program: Program, path: storage.Location, run: dict[str, str]) -> ResumePoint | None:
    """The point an interrupted run at ``path`` resumes from; None when there is none, or when its
    partial store cannot be trusted (then it is discarded with a ``DiscardedCheckpointWarning``)."""
    if not storage.exists(partial_path(path)):
        return None
    try:
        partial = open_partial(path)
        check_resumable(partial, program.spec, run)
        state = read_last_checkpoint(program, partial)
    except CheckpointError as exc:
        warnings.warn(f"discarded {exc}; training restarts from step 0", DiscardedCheckpointWarning,
                      stacklevel=3)
        discard_partial(path)
        return None
    return ResumePoint(state, partial)


def load_finished_run(program: Program, path: storage.Location, run: dict[str, str]) -> PartialCheckpoints | None:
    """The finished store of this very run at ``path``, every checkpoint checked against its
    committed root; None when there is none, or when it belongs to another run or cannot be
    trusted (then a ``DiscardedCheckpointWarning`` says why, and training replaces it)."""
    if not storage.exists(path):
        return None
    try:
        finished = open_finished(path)
        check_resumable(finished, program.spec, run)
    except CheckpointError as exc:
        warnings.warn(f"not reused: {exc}; training again", DiscardedCheckpointWarning, stacklevel=3)
        return None
    return finished


def train(program: Program, strategy: Strategy, path: str | os.PathLike[str], job_id: JobId, solver_id: SolverId,
          *, resume: bool = True) -> TrainingRun:
    """Run the whole job under ``strategy``, checkpointing every ``k`` steps to zarr.

    With ``resume`` (the default) a finished run of the same job, solver and strategy at ``path``
    is reused (content-addressed: its checkpoints are read back and checked against its committed
    roots, nothing is trained; ``resumed_from`` is then ``T``), and an interrupted one continues
    from its last intact checkpoint; the result is the same as one uninterrupted run.
    ``path`` is a location (``datasets.storage``): a local path or an fsspec URL. The run
    executes under its program's torch settings (``Program.settings``), entered here.
    """
    with program.settings():
        return train_in_settings(program, strategy, path, job_id, solver_id, resume)


def train_in_settings(program: Program, strategy: Strategy, path: str | os.PathLike[str], job_id: JobId,
                      solver_id: SolverId, resume: bool) -> TrainingRun:
    """``train``'s run, under the settings in force (the environment it records is theirs)."""
    spec = program.spec
    k, hashing = spec.checkpoint_interval, spec.hashing
    start = time.perf_counter()
    run = compute_run_identity(spec, job_id, solver_id, strategy, program.environment())
    path = storage.as_location(path)
    point = load_resume_point(program, path, run) if resume else None  # the latest attempt first
    finished = load_finished_run(program, path, run) if resume and point is None else None
    if finished is not None:
        return TrainingRun(job_id, solver_id, strategy.name, path, k, finished.roots, finished.losses,
                           strategy.divergence_step(spec), str(program.device), time.perf_counter() - start,
                           Step(spec.steps), program.environment())
    if point is None:
        state, losses = program.init_state(), []
        arrays = state.to_arrays()
        writer = CheckpointWriter(path, arrays, k, spec.num_checkpoints, hashing, run)
    else:
        state, losses = point.state, list(point.partial.losses)
        writer = CheckpointWriter.reopen(path, point.partial)
    try:
        if point is None:
            writer.write(0, arrays, ())
        while state.step < spec.steps:
            out = strategy.run_step(program, state)
            state = out.state
            losses.append(out.loss)
            if state.step % k == 0:  # committed and stored by the writer (CheckpointWriter: inline, or a thread)
                writer.write(state.step // k, state.to_arrays(), losses[-k:])
        roots = writer.finish()
    finally:
        writer.close()
    return TrainingRun(
        job_id, solver_id, strategy.name, path, k, tuple(roots), tuple(losses),
        strategy.divergence_step(spec), str(program.device), time.perf_counter() - start,
        None if point is None else point.state.step, program.environment(),
    )


def replay(program: Program, strategy: Strategy, state: State, end: Step) -> list[State]:
    """States ``S_{start+1} … S_end`` computed from ``state`` under ``strategy``."""
    states = []
    while state.step < end:
        state = strategy.run_step(program, state).state
        states.append(state)
    return states


# -- forced errors (Truebit §4.4; ``verification.settlement.rules``) --------------------------------
def compute_ticket_message(job_id: JobId, solver_id: SolverId, hashing: Hashing) -> bytes:
    """What a solver signs to draw its forced error: ``H(job id, solver id)``."""
    return hash_parts(DOMAIN_FORCED_ERROR, job_id.encode(), solver_id.encode(), hashing=hashing)


def compute_forced_error_ticket(spec: JobSpec, job_id: JobId, solver_id: SolverId) -> bytes:
    """The solver's ticket: its BLS signature on ``compute_ticket_message``. Unique, and only the
    solver can make it, so only the solver knows its draw before it reveals the ticket."""
    sk, _ = party_keypair(spec, solver_id)
    return bytes(get_backend().sign(sk, compute_ticket_message(job_id, solver_id, spec.hashing)))


def is_valid_ticket(spec: JobSpec, job_id: JobId, solver_id: SolverId, ticket: bytes) -> bool:
    """Whether ``ticket`` is ``solver_id``'s signature on its draw, by its registered key. Never raises."""
    _, public_key = party_keypair(spec, solver_id)
    message = compute_ticket_message(job_id, solver_id, spec.hashing)
    try:
        return bool(get_backend().verify(public_key, message, ticket))
    except (ValueError, TypeError):
        return False


def get_forced_error_ticket(spec: JobSpec, job_id: JobId, solver_id: SolverId) -> bytes | None:
    """The solver's ticket when it is drawn for a forced error in this job; ``None`` otherwise (the
    verifier, which is no solver of the job, is never drawn)."""
    if solver_id not in {s.solver_id for s in spec.solvers}:
        return None
    ticket = compute_forced_error_ticket(spec, job_id, solver_id)
    return ticket if is_forced_error(job_id, solver_id, spec.economics, ticket) else None


def resolve_solver_strategy(spec: JobSpec, job_id: JobId, solver: SolverSpec) -> Strategy:
    """The strategy a party runs: its own, wrapped in a ``ForcedError`` at step ``T`` when its
    ticket draws one. Training, the dispute and data-parallel ranks all resolve it here."""
    strategy = resolve_strategy(solver.strategy, solver.params)
    if get_forced_error_ticket(spec, job_id, solver.solver_id) is None:
        return strategy
    return ForcedError(strategy, Step(spec.steps))


# -- the solver's own process (``verification.parties``) ------------------------------------------
def train_solver(spec: JobSpec, job_id: JobId, dataset: DatasetCommitment, path: storage.Location,
                 solver: SolverSpec) -> TrainingRun:
    """A solver's whole training, as its own party process runs it: the program it builds itself
    from the job and the committed dataset, under the strategy it resolves itself. A solver drawn
    for a forced error keeps its ticket in its run, to reveal at settlement."""
    program = load_program(spec, dataset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiscardedCheckpointWarning)
        run = train(program, resolve_solver_strategy(spec, job_id, solver), path, job_id, solver.solver_id)
    notices = tuple(str(w.message) for w in caught if issubclass(w.category, DiscardedCheckpointWarning))
    ticket = get_forced_error_ticket(spec, job_id, solver.solver_id)
    return replace(run, notices=notices, forced_error_ticket="" if ticket is None else ticket.hex())


def party_keypair(spec: JobSpec, party: PartyId | str) -> tuple[int, bytes]:
    """Demo keys: derived from the job seed and the party name (a real party brings its own)."""
    return derive_keypair(spec.seed.to_bytes(8, "big"), party, get_backend())


def build_commitment(spec: JobSpec, job_id: JobId, run: TrainingRun) -> Commitment:
    """What a solver signs for job ``job_id`` (``spec``'s): (job id, solver id, trace root, final
    state root, T, k, environment)."""
    return Commitment(
        job_id=job_id, solver_id=run.solver_id,
        trace_root=trace_root(list(run.roots), spec.hashing), final_state_root=run.final_root,
        steps=Step(spec.steps), interval=Step(spec.checkpoint_interval), environment=run.environment,
    )


def sign_commitments(spec: JobSpec, job_id: JobId, run: TrainingRun, solver: SolverSpec) -> list[Signed]:
    """The solver signs its commitment; a strategy that equivocates (``conflicting_commitment``)
    signs a second, conflicting one too. The first is the real one."""
    strategy = resolve_strategy(solver.strategy, solver.params)  # the solver's own code, loaded first
    sk, _ = party_keypair(spec, solver.solver_id)
    commitment, backend = build_commitment(spec, job_id, run), get_backend()
    published = [sign_message(commitment, sk, solver.solver_id, backend)]
    conflicting = getattr(strategy, "conflicting_commitment", None)
    if conflicting is not None:
        published.append(sign_message(conflicting(commitment), sk, solver.solver_id, backend))
    return published
