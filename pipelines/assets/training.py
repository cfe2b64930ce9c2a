"""Stage 2 — training, one run per solver (CUDA when present, CPU otherwise)."""


import dagster as dg

from pipelines.resources import PinpointConfig, get_run_spec
from verification.lifecycle import Timed, require_job, stage_train, timed
from verification.plots import loss_curves_png, png_markdown


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
        "loss_curve": dg.MetadataValue.md(png_markdown(png, "loss per solver")),
        "final_state_roots": dg.MetadataValue.json({sid: r.final_root.hex() if r.failure is None else None
                                                    for sid, r in runs.items()}),
        "forfeits": dg.MetadataValue.json({sid: r.failure for sid, r in runs.items() if r.failure is not None}),
        "device": next(iter(runs.values())).device,
        "steps": spec.steps,
        "checkpoint_interval": spec.checkpoint_interval,
        "seconds": out.seconds,
    })
