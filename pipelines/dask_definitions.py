"""Wiring only: the default job's graph with each step on a Dask worker (dagster-dask).

A code location of its own, so that the default location (``pipelines.definitions``) never
imports dask, an optional engine that was 30% of its import time. Its assets are the default
job's, partitioned by job id the same way (``pipelines.partitions``), under the key prefix
``dask`` (``dask/dataset_shards`` …) in one group ``dask``: asset keys
are global in a Dagster deployment, and ``workspace.yaml`` loads both locations (one group keeps
the UI's global lineage from mixing them into the default job's groups). Run config picks the cluster:
a local one, or the address of an existing scheduler (README, "Executors").
"""

import dagster as dg
from dagster_dask import dask_executor

from pipelines.definitions import ASSET_MODULES
from pipelines.partitions import JobIOManager, jobs_of, partition_by_job
from pipelines.resources import config_from_env

KEY_PREFIX = "dask"
CONFIG = config_from_env()

defs = dg.Definitions(
    assets=dg.map_asset_specs(lambda spec: spec.replace_attributes(group_name=KEY_PREFIX),
                              partition_by_job(dg.load_assets_from_modules(ASSET_MODULES, key_prefix=KEY_PREFIX),
                                               jobs_of(CONFIG))),
    asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES, asset_key_prefix=KEY_PREFIX),
    resources={"pinpoint": CONFIG, "io_manager": JobIOManager()},
    jobs=[dg.define_asset_job("job_lifecycle_dask", selection=dg.AssetSelection.all(), executor_def=dask_executor,
                              description="The default job with each step on a Dask worker.")],
)


def lifecycle_dask_job() -> dg.JobDefinition:
    """Importable handle for ``dg.reconstructable`` (executors that start new processes need one)."""
    return defs.resolve_job_def("job_lifecycle_dask")
