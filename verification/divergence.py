"""Where each solver's trace left the honest one: parameter distance per checkpoint.

Terms
-----
reference
    The trace the others are measured against: the first solver of the job whose strategy is
    ``honest`` and that delivered a trace. (Honest solvers agree bit for bit in a shared
    environment, so any honest one would do.)
distance
    At checkpoint ``i`` (step ``i·k``), the L2 norm of the difference of all parameters
    (``param/<name>``, as float64) between a solver's stored state and the reference's. Zero
    until a solver diverges; a bit flip or skipped work shows as a jump of many orders of magnitude,
    which is why it is plotted on a log scale (``verification.plots.divergence_png``).
first divergent step
    The step of the first checkpoint at a non-zero distance: the trace root differs from there on,
    which is where bisection starts to narrow (``docs/design.md`` §1.6). The dispute then finds the
    exact step inside the interval that ends there.

States are read with the checkpoint reader (``verification.execution.checkpoints``), which checks
every row against its recorded root, so a distance is never computed on a corrupted store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from proofs.types import SolverId, Step
from verification.execution.checkpoints import CheckpointError, read_checkpoint
from verification.execution.state import State
from verification.solver import TrainingRun

HONEST = "honest"


class DivergenceError(ValueError):
    """Two traces cannot be compared (a checkpoint unreadable, or other parameters)."""


@dataclass(frozen=True)
class ParameterDistances:
    """One solver's distance to the reference trace, checkpoint by checkpoint."""

    solver_id: SolverId
    steps: tuple[Step, ...]
    distances: tuple[float, ...]

    @property
    def first_divergent_step(self) -> Step | None:
        return next((s for s, d in zip(self.steps, self.distances, strict=True) if d != 0.0), None)

    @property
    def divergent_steps(self) -> tuple[Step, Step] | None:
        """The steps where the solver left the reference: after its last equal checkpoint, up to
        its first divergent one (``None`` if it never did)."""
        first = self.first_divergent_step
        if first is None:
            return None
        return Step(max((s for s in self.steps if s < first), default=-1) + 1), first


def get_reference_solver(runs: Mapping[SolverId, TrainingRun]) -> SolverId | None:
    """The first honest solver with a trace; None when the job has none."""
    return next((sid for sid, run in runs.items() if run.strategy == HONEST and run.failure is None), None)


def compute_parameter_distance(state: State, reference: State) -> float:
    """L2 norm of the difference of all parameters of two states (NaN when either holds NaN)."""
    params, ref = state.params(), reference.params()
    # Rule: only states of one program, with the same parameters, are compared.
    if params.keys() != ref.keys() or any(params[n].shape != ref[n].shape for n in ref):
        raise DivergenceError(f"states at step {state.step} hold other parameters: "
                              f"{sorted((n, tuple(t.shape)) for n, t in params.items())} vs "
                              f"{sorted((n, tuple(t.shape)) for n, t in ref.items())}")
    total = sum(float(((params[n].double() - ref[n].double()) ** 2).sum()) for n in sorted(ref))
    return math.sqrt(total)


def read_states(run: TrainingRun) -> list[State]:
    """Every checkpoint of a run, checked against its recorded roots."""
    try:
        return [read_checkpoint(run.checkpoint_path, i) for i in range(len(run.roots))]
    except CheckpointError as exc:
        raise DivergenceError(f"solver {run.solver_id!r}: {exc}") from None


def compute_parameter_distances(runs: Mapping[SolverId, TrainingRun],
                                reference: SolverId) -> dict[SolverId, ParameterDistances]:
    """Each other solver's distance to ``reference`` at every checkpoint both traces hold."""
    if reference not in runs or runs[reference].failure is not None:
        raise DivergenceError(f"reference solver {reference!r} has no trace among {sorted(runs)}")
    with torch.no_grad():
        ref_states = read_states(runs[reference])
        result = {}
        for sid, run in runs.items():
            if sid == reference or run.failure is not None:
                continue
            pairs = list(zip(read_states(run), ref_states, strict=False))
            result[sid] = ParameterDistances(sid, tuple(Step(r.step) for _, r in pairs),
                                             tuple(compute_parameter_distance(s, r) for s, r in pairs))
    return result


def render_divergence_markdown(distances: Mapping[SolverId, ParameterDistances], reference: SolverId) -> str:
    """A short table (the Dagster UI shows markdown under 1,000 characters inline): per solver,
    the steps where it left ``reference``'s trace and its distance at the last checkpoint."""
    lines = [f"| solver | left {reference}'s trace in steps | distance at the end |", "|---|---|---|"]
    for sid, d in distances.items():
        steps = d.divergent_steps
        where = "never (identical)" if steps is None else f"{steps[0]}–{steps[1]}"
        lines.append(f"| {sid} | {where} | {d.distances[-1]:.3g} |" if d.distances else f"| {sid} | no checkpoints | - |")
    return "\n".join(lines)
