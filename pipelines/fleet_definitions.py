"""Wiring only: the fleet code location — a stream of jobs from the inbox (see assets/fleet.py)."""

import os

import dagster as dg

from pipelines.assets import fleet
from pipelines.resources import config_from_env, default_executor

FLEET_ASSETS = dg.load_assets_from_modules([fleet])

defs = dg.Definitions(
    assets=FLEET_ASSETS,
    sensors=[fleet.job_inbox_sensor],
    jobs=list(fleet.STAGE_JOBS.values()),
    resources={"pinpoint": config_from_env(), "inbox": fleet.JobInbox(path=os.environ.get("PINPOINT_INBOX", ""))},
    executor=default_executor(),
)
