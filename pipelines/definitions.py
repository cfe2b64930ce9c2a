"""Wiring only: the default job's assets, checks, resources and executor.

This code location is the default job: its graph partitioned by job id (``pipelines.partitions``:
one partition, the job the ``pinpoint`` resource names), materialized by ``make demo`` with no run
config. Its steps run in one process (``in_process_executor``): the stages of one job run one after
another anyway, and the parties already run in processes of their own (``verification.parties``),
so a process per step would only re-import torch and Pinpoint for every stage. The fleet keeps the
multiprocess executor: there, jobs run side by side. The stream of jobs (partitioned by job and by
job x solver) is the second code location, ``pipelines.fleet_definitions``; the same graph on Dask
is a third, ``pipelines.dask_definitions`` (so that this one never imports an optional engine);
``workspace.yaml`` loads them all for the UI.
"""

import dagster as dg

from pipelines.assets import (
    commitments,
    dataset,
    incentives,
    report,
    settlement,
    training,
    verification,
)
from pipelines.partitions import JobIOManager, jobs_of, partition_by_job
from pipelines.resources import PinpointConfig, config_from_env

ASSET_MODULES = [dataset, training, commitments, verification, settlement, report, incentives]
CHECKS = dg.load_asset_checks_from_modules(ASSET_MODULES)


def build_assets(config: PinpointConfig) -> list:
    """The default graph's assets, partitioned by the one job ``config`` names (what tests and
    ``dg.materialize`` use for a job other than the environment's)."""
    return partition_by_job(dg.load_assets_from_modules(ASSET_MODULES), jobs_of(config))


def build_definitions(config: PinpointConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=build_assets(config),
        asset_checks=CHECKS,
        resources={"pinpoint": config, "io_manager": JobIOManager()},
        executor=dg.in_process_executor,
        jobs=[dg.define_asset_job("job_lifecycle", selection=dg.AssetSelection.all(),
                                  description="One job from dataset to settlement and report.")],
    )


CONFIG = config_from_env()
defs = build_definitions(CONFIG)
ASSETS = build_assets(CONFIG)
