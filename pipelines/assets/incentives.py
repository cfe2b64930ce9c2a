"""Incentives — does the job's economics make cheating unprofitable? (Truebit's question.)"""

import dagster as dg

from pipelines.partitions import require_partition
from pipelines.resources import PinpointConfig, get_run_job
from verification.lifecycle import stage_incentives
from verification.plots import png_markdown


@dg.asset(group_name="incentives", kinds={"numpy"},
          description="Monte Carlo of expected profit of cheating vs honest work and of verifying, at the "
                      "job's own stake, payment and spot-check probability p, next to the analytic "
                      "break-even p* = saving / (q (stake + payment)); plus a map of where cheating pays.")
def incentive_study(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    job = get_run_job(context, pinpoint)
    require_partition(context, job.job_id)
    spec = job.spec
    study = stage_incentives(spec, pinpoint.paths().incentives(job.job_id))
    sim = study.simulation
    rows = [("honest", sim.honest_profit), ("cheating", sim.cheating_profit),
            ("cheating advantage", sim.cheating_advantage), ("verifying", sim.verifying_profit)]
    with open(study.plot, "rb") as fh:
        image = png_markdown(fh.read(), "where cheating pays")
    return dg.MaterializeResult(metadata={
        "p": spec.spot_check_probability,
        "break_even_p": dg.MetadataValue.float(sim.break_even_p),
        "cheating_pays_at_this_p": sim.cheating_advantage.low > 0,
        "analytic_cheating_advantage": dg.MetadataValue.float(sim.analytic_cheating_advantage),
        "expected_profit": dg.MetadataValue.table(
            [dg.TableRecord({"who": who, "mean": e.mean, "ci95_low": e.low, "ci95_high": e.high})
             for who, e in rows],
            schema=dg.TableSchema([dg.TableColumn("who", "string"), dg.TableColumn("mean", "float"),
                                   dg.TableColumn("ci95_low", "float"), dg.TableColumn("ci95_high", "float")]),
        ),
        "cheating_region": dg.MetadataValue.md(image),
        "plot": dg.MetadataValue.path(study.plot),
    })
