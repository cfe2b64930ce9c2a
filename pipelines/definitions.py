"""Wiring only: the assets, checks and resources of Pinpoint's job lifecycle."""

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
    jobs=[dg.define_asset_job("job_lifecycle", selection=dg.AssetSelection.all(),
                              description="One job from dataset to settlement and report.")],
)
