"""Wiring only: the default job's assets, checks, resources and executor.

This code location is the default job: one unpartitioned graph that ``make demo`` materializes with
no run config. Its steps run in one process (``in_process_executor``): the stages of one job run
one after another anyway, and the parties already run in processes of their own
(``verification.parties``), so a process per step would only re-import torch and Pinpoint for
every stage. The fleet keeps the multiprocess executor: there, jobs run side by side. The stream of
jobs (partitioned by job and by job x solver) is the second code location,
``pipelines.fleet_definitions``; the same graph on Dask is a third, ``pipelines.dask_definitions``
(so that this one never imports an optional engine); ``workspace.yaml`` loads them all for the UI.
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
from pipelines.resources import config_from_env

ASSET_MODULES = [dataset, training, commitments, verification, settlement, report, incentives]
ASSETS = dg.load_assets_from_modules(ASSET_MODULES)
CHECKS = dg.load_asset_checks_from_modules(ASSET_MODULES)

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    resources={"pinpoint": config_from_env()},
    executor=dg.in_process_executor,
    jobs=[dg.define_asset_job("job_lifecycle", selection=dg.AssetSelection.all(),
                              description="One job from dataset to settlement and report.")],
)
