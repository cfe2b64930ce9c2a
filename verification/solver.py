"""The solver role: train under a strategy, checkpoint, and answer the dispute game.

A solver runs the job's program under its strategy, writes a checkpoint every ``k`` steps and
keeps the state roots of ``S_0, S_k, …, S_T`` (its *trace*). In a dispute it is reached only
through the ``Provider`` interface (``verification.providers``), backed here by ``TraceProvider``
which recomputes the steps of a disputed interval from its own checkpoint *with its own strategy*
— so a cheater's answers are consistent with what it committed to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from proofs.types import JobId, Root, SolverId, Step
from verification.execution.checkpoints import CheckpointWriter
from verification.execution.program import Program
from verification.execution.state import State
from verification.strategies import Strategy


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
    seconds: float

    @property
    def final_root(self) -> Root:
        return self.roots[-1]

    @property
    def steps(self) -> Step:
        return Step((len(self.roots) - 1) * self.interval)


def train(program: Program, strategy: Strategy, path: Path, job_id: JobId, solver_id: SolverId) -> TrainingRun:
    """Run the whole job under ``strategy``, checkpointing every ``k`` steps to zarr."""
    import time

    spec = program.spec
    k, hash_name = spec.checkpoint_interval, spec.hash_name
    start = time.perf_counter()
    state = program.init_state()
    writer = CheckpointWriter(path, state, k, spec.num_checkpoints)
    writer.write(0, state)
    roots, losses = [state.root(hash_name)], []
    while state.step < spec.steps:
        out = strategy.run_step(program, state)
        state = out.state
        losses.append(out.loss)
        if state.step % k == 0:
            writer.write(state.step // k, state)
            roots.append(state.root(hash_name))
    writer.finish(roots)
    return TrainingRun(
        job_id, solver_id, strategy.name, str(path), k, tuple(roots), tuple(losses),
        strategy.divergence_step(spec), str(program.device), time.perf_counter() - start,
    )


def replay(program: Program, strategy: Strategy, state: State, end: Step) -> list[State]:
    """States ``S_{start+1} … S_end`` computed from ``state`` under ``strategy``."""
    states = []
    while state.step < end:
        state = strategy.run_step(program, state).state
        states.append(state)
    return states


def is_finite_loss(value: float) -> bool:
    return not math.isnan(value) and not math.isinf(value)
