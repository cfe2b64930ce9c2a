"""Resources: where the job spec and the artifacts come from.

``PinpointConfig`` picks the job: a preset name (``default``, ``minimal``, ``gpt``) or a YAML/JSON spec
file, the artifacts directory, and where the zarr stores go (``store``: empty for under the
artifacts directory, or an fsspec URL such as ``s3://bucket/pinpoint``; ``verification.paths``).
Its defaults come from the environment at load time (``PINPOINT_PRESET``, ``PINPOINT_SPEC``,
``PINPOINT_ARTIFACTS``, ``PINPOINT_STORE``) so the CLI materializes the embedded default job with
no run config; run config can still override every field.

Every run that materializes a job's assets is tagged ``pinpoint/job_id=<job id>`` by its assets
themselves (``tag_run``), whatever launched it: the UI, a sensor, or ``dagster asset materialize``
(which takes no run tags in Dagster 1.13). The runs page filters by that tag.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from datasets.sharding import DatasetCommitment
from proofs.types import JobId
from verification.job import Job, resolve_job
from verification.lifecycle import ForeignInputError
from verification.paths import ArtifactPaths, default_artifacts_dir, default_store
from verification.spec import JobSpec, get_preset, load_spec

JOB_ID_TAG = "pinpoint/job_id"


class PinpointConfig(dg.ConfigurableResource):
    """The job to run and where its artifacts go."""

    preset: str = "default"
    spec_path: str = ""
    artifacts_dir: str = ""
    store: str = ""

    def spec(self) -> JobSpec:
        return load_spec(self.spec_path) if self.spec_path else get_preset(self.preset)

    def paths(self) -> ArtifactPaths:
        root = Path(self.artifacts_dir).resolve() if self.artifacts_dir else default_artifacts_dir()
        return ArtifactPaths(root, self.store)


def tag_run(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, job_id: JobId) -> None:
    """Tag the running run with the job its assets belong to (``pinpoint/job_id``)."""
    run_id = context.run.run_id
    tagged = context.instance.get_run_by_id(run_id).tags.get(JOB_ID_TAG)
    # Rule: a run belongs to one job (design contract "one job per run").
    if tagged not in (None, job_id):
        raise ForeignInputError(f"run {run_id} is tagged {JOB_ID_TAG}={tagged}, but this step works on job {job_id}")
    if tagged is None:
        context.instance.add_run_tags(run_id, {JOB_ID_TAG: job_id})


def get_run_job(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
                pinpoint: PinpointConfig, dataset: DatasetCommitment | None = None) -> Job:
    """The job this step works on, resolved once for the step (``verification.job.resolve_job``)
    on its committed ``dataset`` when the step has it; its run is tagged with its id (``tag_run``)."""
    job = resolve_job(pinpoint.spec(), dataset)
    tag_run(context, job.job_id)
    return job


def get_run_spec(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
                 pinpoint: PinpointConfig) -> JobSpec:
    """The job spec this step works on; its run is tagged with its job id (``get_run_job``)."""
    return get_run_job(context, pinpoint).spec


def config_from_env() -> PinpointConfig:
    return PinpointConfig(
        preset=os.environ.get("PINPOINT_PRESET", "default"),
        spec_path=os.environ.get("PINPOINT_SPEC", ""),
        artifacts_dir=os.environ.get("PINPOINT_ARTIFACTS", ""),
        store=default_store(),
    )


def default_executor() -> dg.ExecutorDefinition:
    """Multiprocess, at most ``PINPOINT_MAX_CONCURRENT`` (default 2) steps of a run at once:
    training is CPU-bound and pinned to one thread per step, so two fill this 2-core machine."""
    return dg.multiprocess_executor.configured(
        {"max_concurrent": int(os.environ.get("PINPOINT_MAX_CONCURRENT", "2"))})
