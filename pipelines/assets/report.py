"""Stage 7 — the job report (report.json + summary)."""


import dagster as dg

from pipelines.resources import PinpointConfig, get_run_job
from verification.lifecycle import Timed, check_signatures, compute_verdicts, require_job
from verification.report import (
    build_report,
    render_committee_markdown,
    render_markdown,
    render_net_markdown,
    render_verdicts_markdown,
    write_report,
)


@dg.asset(group_name="report", kinds={"json"},
          description="artifacts/runs/<job_id>/report.json (schema pinpoint.report/1) and a summary.")
def job_report(context: dg.AssetExecutionContext, pinpoint: PinpointConfig, dataset_shards: Timed,
               training_runs: Timed, commitments: Timed, spot_checks: Timed, disputes: Timed,
               settlement: Timed) -> dg.Output[dict]:
    job = get_run_job(context, pinpoint, dataset_shards.value)
    require_job(job, dataset_shards=dataset_shards, training_runs=training_runs, commitments=commitments,
                spot_checks=spot_checks, disputes=disputes, settlement=settlement)
    timings = {"shard": dataset_shards.seconds, "train": training_runs.seconds,
               "commit": commitments.seconds, "verify": spot_checks.seconds,
               "dispute": disputes.seconds, "settle": settlement.seconds}
    verdicts = compute_verdicts(job, training_runs.value, spot_checks.value, disputes.value)
    report = build_report(job, training_runs.value, commitments.value,
                          check_signatures(job, commitments.value), spot_checks.value,
                          disputes.value, verdicts, settlement.value, timings)
    path = write_report(pinpoint.paths().report(job.job_id), report)
    # The verdicts first: who cheated, where, and what it cost. ("path" would be overwritten by the
    # IO manager's pickle path, hence "report_json".)
    return dg.Output(report, metadata={"verdicts": dg.MetadataValue.md(render_verdicts_markdown(report)),
                                       "report_json": dg.MetadataValue.path(str(path)),
                                       "job_id": report["job_id"],
                                       "net_by_account": dg.MetadataValue.md(render_net_markdown(report)),
                                       "committee": dg.MetadataValue.md(render_committee_markdown(report)),
                                       "jackpot_in": report["ledger"]["jackpot_in"],
                                       "jackpot_out": report["ledger"]["jackpot_out"],
                                       "summary": dg.MetadataValue.md(render_markdown(report))})
