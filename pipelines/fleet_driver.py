"""Drive the fleet without the Dagster daemon: tick the inbox sensor, launch what it asks for.

This is what the daemon does for ``dagster dev``, written out so that tests and the load run
(`python -m pipelines.load_run`) can drive a stream of jobs deterministically: evaluate
``job_inbox_sensor``, apply its dynamic-partition requests, execute each new run request (by
``run_key``, never twice) on a pool of worker processes, repeat until the sensor asks for nothing.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import dagster as dg

from pipelines.assets import fleet
from pipelines.resources import PinpointConfig


@dataclass
class DriveStats:
    ticks: int = 0
    runs: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def execute_request(instance_ref, config: dict, partition_key: str, selection: list) -> bool:
    """One run request, in the calling process (resources rebuilt from their plain config)."""
    instance = dg.DagsterInstance.from_ref(instance_ref)
    resources = {"pinpoint": PinpointConfig(**config["pinpoint"]), "inbox": fleet.JobInbox(**config["inbox"])}
    result = dg.materialize(fleet_assets(), partition_key=partition_key, selection=selection,
                            resources=resources, instance=instance, raise_on_error=False,
                            tags={"pinpoint/driver": "fleet_driver"})
    return result.success


def fleet_assets() -> list:
    return [fleet.fleet_dataset, fleet.fleet_training, fleet.fleet_commitment, fleet.fleet_outcome]


def drive(instance: dg.DagsterInstance, pinpoint: PinpointConfig, inbox: fleet.JobInbox,
          workers: int = 2, max_ticks: int = 50) -> DriveStats:
    """Tick the sensor until every registered job is concluded (or ``max_ticks``)."""
    stats, cursor, launched = DriveStats(), None, set()
    resources = {"pinpoint": pinpoint, "inbox": inbox}
    config = {"pinpoint": {"preset": pinpoint.preset, "spec_path": pinpoint.spec_path,
                           "artifacts_dir": pinpoint.artifacts_dir, "store": pinpoint.store},
              "inbox": {"path": inbox.path}}
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        while stats.ticks < max_ticks:
            stats.ticks += 1
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            result = fleet.job_inbox_sensor(context)
            cursor = result.cursor
            for request in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            todo = [r for r in result.run_requests if r.run_key not in launched]
            if not todo:
                break
            futures = {r.run_key: pool.submit(execute_request, instance.get_ref(), config,
                                              r.partition_key, [k.to_user_string() for k in r.asset_selection])
                       for r in todo}
            for run_key, future in futures.items():
                launched.add(run_key)
                stats.runs += 1
                if not future.result():
                    stats.failed.append(run_key)
    stats.seconds = time.perf_counter() - start
    return stats
