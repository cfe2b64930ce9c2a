"""Stage 2 — training, one run per solver (CUDA when present, CPU otherwise)."""


import dagster as dg

from pipelines.resources import PinpointConfig, get_run_spec
from proofs.types import SolverId
from verification.divergence import (
    DivergenceError,
    compute_parameter_distances,
    get_reference_solver,
    render_divergence_markdown,
)
from verification.lifecycle import Timed, require_job, stage_train, timed
from verification.plots import divergence_png, loss_curves_png, png_markdown
from verification.solver import TrainingRun


@dg.asset(group_name="training", kinds={"torch"},
          description="Each solver runs the job's program under its strategy (honest or adversarial), "
                      "checkpointing the full State to zarr every k steps and keeping its state roots.")
def training_runs(context: dg.AssetExecutionContext, pinpoint: PinpointConfig,
                  dataset_shards: Timed) -> dg.Output[Timed]:
    spec = get_run_spec(context, pinpoint)
    require_job(spec, dataset_shards=dataset_shards)
    out = timed(stage_train, spec, dataset_shards.value, pinpoint.paths())
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
    })


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
