"""One job = one partition key: the default job's assets are partitioned by job id.

Every asset of the default code location (and of its Dask twin) carries the partitions
definition ``jobs_of(config)``: one static partition, the id of the job the ``pinpoint`` resource
names (``PINPOINT_PRESET`` / ``PINPOINT_SPEC``), so the CLI and the UI select it by default and
every run of the graph is that job's by construction (its run carries Dagster's
``dagster/partition`` tag next to Pinpoint's ``pinpoint/job_id``). Stages hand each other their
values through ``JobIOManager``: Dagster's pickles, one file per asset *and job*
(``<storage>/<asset>/<job id>``), so a run of one job can never read another job's stage; a stage
that was never materialized for the job is refused by name.

Rules:

- ``require_partition``: the job a run works on is the partition it was launched for (the
  resource's spec could name another job; the root asset checks, and every later asset checks its
  inputs' job ids, ``verification.lifecycle.require_job``).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from pipelines.resources import PinpointConfig
from verification.job import resolve_job
from verification.lifecycle import ForeignInputError, LifecycleError


def jobs_of(config: PinpointConfig) -> dg.StaticPartitionsDefinition:
    """The partitions of the default location: the one job ``config`` names."""
    return dg.StaticPartitionsDefinition([resolve_job(config.spec()).job_id])


def partition_by_job(assets: Sequence[dg.AssetsDefinition], jobs: dg.PartitionsDefinition) -> list:
    """``assets`` with every asset partitioned by ``jobs``."""
    return dg.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=jobs), list(assets))


def require_partition(context: dg.AssetExecutionContext, job_id: str) -> None:
    """``ForeignInputError`` naming both ids unless the run was launched for ``job_id``'s partition."""
    # Rule: one job = one partition key: a run works on the job of its partition, nothing else
    partition = context.partition_key if context.has_partition_key else None
    if partition != job_id:
        raise ForeignInputError(f"this run was launched for partition {partition!r}, but the pinpoint "
                                f"resource names job {job_id}: launch it for partition {job_id}")


class MissingStageError(LifecycleError):
    """An asset's input was never materialized for the asset's job."""


class JobPickles(PickledObjectFilesystemIOManager):
    def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
        if not path.exists():
            upstream = context.upstream_output
            name = upstream.asset_key.to_user_string() if upstream is not None and upstream.has_asset_key else "input"
            job = context.asset_partition_key if context.has_asset_partitions else "?"
            raise MissingStageError(f"{name} of job {job} was never materialized (no {path}): materialize "
                                    f"the job's upstream assets for partition {job} first")
        return super().load_from_path(context, path)


class JobIOManager(dg.ConfigurableIOManagerFactory):
    """Dagster's pickled filesystem IO manager, one file per asset and job (see the module) under
    the instance's storage directory, that names the missing stage and job instead of a bare
    ``FileNotFoundError``."""

    def create_io_manager(self, context: dg.InitResourceContext) -> JobPickles:
        return JobPickles(base_dir=context.instance.storage_directory())



def load_stored(context: dg.AssetExecutionContext) -> Any | None:
    """The value ``JobIOManager`` last stored for the running asset under this run's job (its
    partition), or None: what a rerun of the same job may reuse (content-addressed by the job id).
    The path is ``JobIOManager``'s: ``<instance storage>/<asset key>/<job id>``."""
    if not context.has_partition_key:
        return None
    path = Path(context.instance.storage_directory()).joinpath(*context.asset_key.path, context.partition_key)
    try:
        with path.open("rb") as stored:
            return pickle.load(stored)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None  # none, or written by other code: recomputed
