"""Stage 1 — dataset sharding."""


import dagster as dg

from pipelines.partitions import require_partition
from pipelines.resources import PinpointConfig, get_run_job
from verification.lifecycle import Timed, stage_shard, timed, validate_job


@dg.asset(group_name="dataset", kinds={"zarr"},
          description="The job's data source split into zarr shards, each with a Merkle root over its "
                      "chunks; the dataset root (Merkle root of shard roots) keys the batch schedule.")
def dataset_shards(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint)
    require_partition(context, job.job_id)  # the job of the run's partition, nothing else
    validate_job(job, pinpoint.paths())  # before anything is written
    out = timed(stage_shard, job, pinpoint.paths())
    ds = out.value
    return dg.Output(out, metadata={
        "dataset": ds.name,
        "dataset_root": ds.root.hex(),
        "samples": ds.num_samples,
        "shards": dg.MetadataValue.table(
            [dg.TableRecord({"shard": s.index, "samples": s.num_samples, "root": s.root.hex(), "path": s.path})
             for s in ds.shards],
            schema=dg.TableSchema([dg.TableColumn("shard", "int"), dg.TableColumn("samples", "int"),
                                   dg.TableColumn("root", "string"), dg.TableColumn("path", "string")]),
        ),
        "seconds": out.seconds,
    })
