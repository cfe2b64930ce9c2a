"""The fleet: a stream of jobs, each a dynamic partition, with solvers as a second dimension.

A *job inbox* (a folder of job-spec YAML/JSON files) is watched by ``job_inbox_sensor``. Each new
valid spec is registered — its spec stored under its content-addressed job id, the job id added to
the ``jobs`` partitions and its solver ids to ``solvers`` — and the sensor then drives every job
through its stages, one run per step of progress:

``fleet_dataset[job]`` -> ``fleet_training, fleet_commitment[job|solver]`` (one run per solver, so
solvers train in parallel) -> ``fleet_outcome[job]`` (spot checks, disputes, settlement, report).

Stages exchange records on disk (``verification.store``) rather than through the IO manager: the
``job x solver`` grid is a cross product, and a per-job stage must read only its own solvers.
Runs carry a ``run_key`` per (stage, partition), so a tick never launches the same work twice, and
the tag ``pinpoint/job_id`` (which a run launched by hand gets from its assets: ``tag_run``).
"""

import dataclasses
import json
import warnings
from pathlib import Path

import dagster as dg

from pipelines.resources import JOB_ID_TAG, PinpointConfig, tag_run
from verification import store
from verification.lifecycle import (
    LifecycleError,
    conclude_from_store,
    stage_commit,
    stage_shard,
    stage_train,
    validate_job,
)
from verification.plots import loss_curves_png, png_markdown
from verification.report import render_markdown
from verification.spec import SpecError, load_spec
from verification.strategies import StrategyError

jobs_partitions = dg.DynamicPartitionsDefinition(name="jobs")
solvers_partitions = dg.DynamicPartitionsDefinition(name="solvers")
job_solver_partitions = dg.MultiPartitionsDefinition({"job": jobs_partitions, "solver": solvers_partitions})
with warnings.catch_warnings():  # beta in Dagster 1.13; stable behaviour is all we use
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_JOB = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="job")
GROUP = "fleet"


def job_and_solver(context: dg.AssetExecutionContext) -> tuple[str, str]:
    key = context.partition_key.keys_by_dimension
    return key["job"], key["solver"]


@dg.asset(group_name=GROUP, partitions_def=jobs_partitions, kinds={"zarr"},
          description="A fleet job's dataset shards and commitment (partition = job id).")
def fleet_dataset(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    paths = pinpoint.paths()
    tag_run(context, context.partition_key)
    dataset = stage_shard(store.load_spec_of(paths, context.partition_key), paths)
    return dg.MaterializeResult(metadata={"dataset_root": dataset.root.hex(), "shards": len(dataset.shards)})


@dg.asset(group_name=GROUP, partitions_def=job_solver_partitions, kinds={"torch"},
          deps=[dg.AssetDep(fleet_dataset, partition_mapping=BY_JOB)],
          description="One solver's training run of a fleet job (partition = job x solver).")
def fleet_training(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    job_id, solver_id = job_and_solver(context)
    paths = pinpoint.paths()
    tag_run(context, job_id)
    spec = store.load_spec_of(paths, job_id)
    runs = stage_train(spec, store.load_dataset_commitment(paths, job_id), paths, [solver_id])
    if solver_id not in runs:
        raise dg.Failure(f"solver {solver_id!r} is not part of job {job_id}")
    run = runs[solver_id]
    store.save_run(paths, run)
    return dg.MaterializeResult(metadata={
        "final_state_root": run.final_root.hex() if run.failure is None else "",
        "forfeit": run.failure or "", "seconds": run.seconds,
        "loss_curve": dg.MetadataValue.md(png_markdown(loss_curves_png({solver_id: run.losses}), "loss")),
    })


@dg.asset(group_name=GROUP, partitions_def=job_solver_partitions, kinds={"bls"},
          deps=[fleet_training], description="One solver's signed commitment (partition = job x solver).")
def fleet_commitment(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    job_id, solver_id = job_and_solver(context)
    paths = pinpoint.paths()
    tag_run(context, job_id)
    run = store.load_run(paths, job_id, solver_id)
    signed = stage_commit(store.load_spec_of(paths, job_id), {solver_id: run}, paths).get(solver_id)
    if signed is None:  # no trace, or no valid signature on its own run: the solver forfeits
        failed = dataclasses.replace(run, roots=(), failure=run.failure or "no valid signed commitment to its run")
        store.save_run(paths, failed)
        return dg.MaterializeResult(metadata={"trace_root": "", "forfeit": failed.failure})
    store.save_commitment(paths, signed)
    return dg.MaterializeResult(metadata={"trace_root": signed.message.trace_root.hex()})


@dg.asset(group_name=GROUP, partitions_def=jobs_partitions, kinds={"sqlite"},
          deps=[dg.AssetDep(fleet_commitment, partition_mapping=BY_JOB)],
          description="Spot checks, disputes, settlement and report of a fleet job (partition = job id).")
def fleet_outcome(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    paths = pinpoint.paths()
    tag_run(context, context.partition_key)
    report = conclude_from_store(store.load_spec_of(paths, context.partition_key), paths)
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(render_markdown(report)),
        "outcomes": dg.MetadataValue.json({s["solver_id"]: s["outcome"] for s in report["solvers"]}),
        "already_settled": report["ledger"]["already_settled"],
    })


class JobInbox(dg.ConfigurableResource):
    """A folder of job-spec files (YAML or JSON); default ``<artifacts>/inbox``."""

    path: str = ""

    def folder(self, pinpoint: PinpointConfig) -> Path:
        return Path(self.path).resolve() if self.path else pinpoint.paths().root / "inbox"

    def spec_files(self, pinpoint: PinpointConfig) -> list[Path]:
        folder = self.folder(pinpoint)
        return sorted(p for p in folder.glob("*") if p.suffix in (".yaml", ".yml", ".json")) if folder.is_dir() else []


def compute_next_stage(job_id: str, solvers: list[str], done: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The runs that move one job forward: ``(stage, partition key)`` pairs, given what is done."""
    if job_id not in done["dataset"]:
        return [("dataset", job_id)]
    keys = [str(dg.MultiPartitionKey({"job": job_id, "solver": s})) for s in solvers]
    missing = [k for k in keys if k not in done["commitment"]]
    if missing:
        return [("solver", k) for k in missing]
    if job_id not in done["outcome"]:
        return [("outcome", job_id)]
    return []


STAGE_ASSETS = {
    "dataset": [fleet_dataset.key],
    "solver": [fleet_training.key, fleet_commitment.key],
    "outcome": [fleet_outcome.key],
}
# One asset job per stage: a job's assets must share one partitions definition (the dataset and
# the outcome are partitioned by job, training and commitment by job x solver), so the sensor
# cannot target all four assets as one implicit job. Each job's partitioning is its assets'.
STAGE_JOBS = {
    stage: dg.define_asset_job(f"fleet_{stage}_job", selection=keys, tags={"pinpoint/stage": stage})
    for stage, keys in STAGE_ASSETS.items()
}


def register_inbox(context, inbox: JobInbox, pinpoint: PinpointConfig, seen: dict) -> list[str]:
    """Validate and store new spec files; return the new job ids. Bad files are logged once."""
    paths, new = pinpoint.paths(), []
    for path in inbox.spec_files(pinpoint):
        stamp = f"{path.name}:{path.stat().st_mtime_ns}"
        if stamp in seen:
            continue
        try:  # safe identifiers (no '|', the partition key separator) are checked by the spec rules
            spec = load_spec(path)
            validate_job(spec, paths)
        except (SpecError, LifecycleError, StrategyError) as exc:
            context.log.warning(f"job inbox: rejected {path.name}: {exc}")
            seen[stamp] = None
            continue
        job_id = store.save_spec(paths, spec)
        seen[stamp] = job_id
        new.append(job_id)
    return new


@dg.sensor(minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
           jobs=list(STAGE_JOBS.values()),
           description="Registers each new job spec dropped in the inbox and drives every job "
                       "through dataset -> per-solver training and commitment -> outcome.")
def job_inbox_sensor(context: dg.SensorEvaluationContext, inbox: JobInbox,
                     pinpoint: PinpointConfig) -> dg.SensorResult:
    seen = json.loads(context.cursor) if context.cursor else {}
    new_jobs = register_inbox(context, inbox, pinpoint, seen)
    instance = context.instance
    known = set(instance.get_dynamic_partitions("jobs"))
    jobs = sorted(known | set(new_jobs))
    specs = {job_id: store.load_spec_of(pinpoint.paths(), job_id) for job_id in jobs}
    solver_ids = sorted({s.solver_id for spec in specs.values() for s in spec.solvers})
    new_solvers = [s for s in solver_ids if not instance.has_dynamic_partition("solvers", s)]
    done = {
        "dataset": instance.get_materialized_partitions(fleet_dataset.key),
        "commitment": instance.get_materialized_partitions(fleet_commitment.key),
        "outcome": instance.get_materialized_partitions(fleet_outcome.key),
    }
    requests = [
        dg.RunRequest(run_key=f"{stage}:{key}", partition_key=key, job_name=STAGE_JOBS[stage].name,
                      asset_selection=STAGE_ASSETS[stage], tags={JOB_ID_TAG: job_id})
        for job_id in jobs
        for stage, key in compute_next_stage(job_id, [s.solver_id for s in specs[job_id].solvers], done)
    ]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[r for r in (
            jobs_partitions.build_add_request(sorted(set(new_jobs) - known)) if set(new_jobs) - known else None,
            solvers_partitions.build_add_request(new_solvers) if new_solvers else None) if r],
        cursor=json.dumps(seen),
    )
