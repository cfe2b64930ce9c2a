"""Stage 2 — training, one run per solver (CUDA when present, CPU otherwise)."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import dagster as dg
import torch

from pipelines.partitions import load_stored
from pipelines.resources import PinpointConfig, get_run_job
from proofs.types import SolverId
from verification.divergence import (
    DivergenceError,
    compute_parameter_distances,
    get_reference_solver,
    render_divergence_markdown,
)
from verification.execution.checkpoints import CheckpointError, count_stored, open_finished
from verification.execution.program import is_same_environment
from verification.job import Job
from verification.lifecycle import Timed, require_job, stage_train, timed
from verification.paths import ArtifactPaths
from verification.plots import divergence_png, loss_curves_png, png_markdown
from verification.solver import TrainingRun

PROGRESS_POLL_S = 0.25  # how often the checkpoint stores are looked at while solvers train


def format_progress(solver_id: str, stored: int, total: int) -> str:
    """The log line of one solver's progress; ``pipelines.progress`` draws it as a bar."""
    return f"progress: {solver_id} {stored}/{total} checkpoints"


def watch_training(job: Job, paths: ArtifactPaths, train: Callable[[], Timed],
                   report: Callable[[str], None], poll_s: float = PROGRESS_POLL_S) -> Timed:
    """``train()`` (the training stage) on a thread of its own while this one reports, solver by
    solver, each new count of stored checkpoints (``count_stored``: the solvers are processes of
    their own, and their stores are where their progress is visible)."""
    total = job.spec.num_checkpoints
    stores = {s.solver_id: paths.checkpoints(job.job_id, s.solver_id) for s in job.solvers}
    seen: dict[str, int] = {}

    def look() -> None:
        for solver_id, store in stores.items():
            stored = count_stored(store)
            if seen.get(solver_id) != stored:
                seen[solver_id] = stored
                report(format_progress(solver_id, stored, total))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinpoint-training") as pool:
        future = pool.submit(train)
        while True:
            look()
            try:
                out = future.result(timeout=poll_s)
            except FutureTimeout:
                continue
            look()
            return out


@dg.asset(group_name="training", kinds={"torch"},
          description="Each solver runs the job's program under its strategy (honest or adversarial), "
                      "checkpointing the full State to zarr every k steps and keeping its state roots.")
def training_runs(context: dg.AssetExecutionContext, pinpoint: PinpointConfig,
                  dataset_shards: Timed) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint, dataset_shards.value)
    require_job(job, dataset_shards=dataset_shards)
    spec, paths = job.spec, pinpoint.paths()
    reused = get_reusable_training(load_stored(context), job)
    if reused is not None:
        context.log.info("reused: every solver's run of this job, its finished store checked against its roots")
        out = reused
    else:
        out = watch_training(job, paths, lambda: timed(stage_train, job, dataset_shards.value, paths),
                             context.log.info)
    runs = out.value
    png = loss_curves_png({sid: run.losses for sid, run in runs.items()})
    return dg.Output(out, metadata={
        **divergence_metadata(runs),
        "loss_curve": dg.MetadataValue.md(png_markdown(png, "loss per solver")),
        "final_state_roots": dg.MetadataValue.json({sid: r.final_root.hex() if r.failure is None else None
                                                    for sid, r in runs.items()}),
        "forfeits": dg.MetadataValue.json({sid: r.failure for sid, r in runs.items() if r.failure is not None}),
        "device": next(iter(runs.values())).device,
        "steps": spec.steps,
        "checkpoint_interval": spec.checkpoint_interval,
        "seconds": out.seconds,
        "reused": reused is not None,
    })


def get_reusable_training(previous: object, job: Job) -> Timed | None:
    """The job's training as a previous run of it stored it, when a rerun may reuse it instead of
    training again: the same job id, every solver of the spec, each delivered run's finished
    checkpoint store read back and checked against the roots the run committed to (``open_finished``),
    on this machine's environment. None otherwise (then the solvers train)."""
    if not isinstance(previous, Timed) or previous.job_id != job.job_id:
        return None
    runs = previous.value
    if not isinstance(runs, dict) or set(runs) != {s.solver_id for s in job.solvers}:
        return None
    for run in runs.values():
        if not isinstance(run, TrainingRun):
            return None
        if run.failure is None:
            if not is_same_environment(run.environment, torch.device(run.device)):
                return None
            try:
                if open_finished(run.checkpoint_path).roots != run.roots:
                    return None
            except CheckpointError:
                return None
    return previous


def divergence_metadata(runs: dict[SolverId, TrainingRun]) -> dict[str, dg.MetadataValue]:
    """Where each solver left the honest trace: a short table (shown inline) and a log-scale figure."""
    reference = get_reference_solver(runs)
    if reference is None:
        return {"divergence": dg.MetadataValue.md("No honest solver delivered a trace to measure against.")}
    try:
        distances = compute_parameter_distances(runs, reference)
    except DivergenceError as exc:  # a solver's own store: shown, and left to the spot checks
        return {"divergence": dg.MetadataValue.md(f"Not measured: {exc}")}
    png = divergence_png(distances, reference)
    return {
        "divergence": dg.MetadataValue.md(render_divergence_markdown(distances, reference)),
        "distance_to_honest": dg.MetadataValue.md(png_markdown(png, f"parameter distance to {reference}")),
    }
