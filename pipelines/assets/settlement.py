"""Stage 6 — staking settlement in the SQLite ledger."""


import dagster as dg

from pipelines.resources import PinpointConfig, get_run_job
from verification.lifecycle import Timed, require_job, stage_settle, timed
from verification.report import compute_net_movements
from verification.settlement import Ledger


@dg.asset(group_name="settlement", kinds={"sqlite"},
          description="The verifier's checks audited against its revealed coin; stakes locked, payment escrowed; honest solvers paid, cheaters slashed (reward to "
                      "the challenger, the rest burned). Idempotent per job id.")
def settlement(context: dg.AssetExecutionContext, pinpoint: PinpointConfig, training_runs: Timed,
               commitments: Timed, spot_checks: Timed, disputes: Timed) -> dg.Output[Timed]:
    job, paths = get_run_job(context, pinpoint), pinpoint.paths()
    require_job(job, training_runs=training_runs, commitments=commitments, spot_checks=spot_checks,
                disputes=disputes)
    out = timed(stage_settle, job, training_runs.value, spot_checks.value, commitments.value,
                disputes.value, paths)
    result = out.value
    net = compute_net_movements([{"from": t.source, "to": t.dest, "amount": int(t.amount)} for t in result.transfers])
    return dg.Output(out, metadata={
        "net_by_account": dg.MetadataValue.table(
            [dg.TableRecord({"account": account, "net": amount}) for account, amount in net.items()],
            schema=dg.TableSchema([dg.TableColumn("account", "string"), dg.TableColumn("net", "int")]),
        ),
        "already_settled": result.already_settled,
        "supply_before": result.supply_before,
        "supply_after": result.supply_after,
        "burned": result.burned,
        "ledger": str(paths.ledger),
        "movements": dg.MetadataValue.table(
            [dg.TableRecord({"from": t.source, "to": t.dest, "amount": int(t.amount), "memo": t.memo})
             for t in result.transfers],
            schema=dg.TableSchema([dg.TableColumn("from", "string"), dg.TableColumn("to", "string"),
                                   dg.TableColumn("amount", "int"), dg.TableColumn("memo", "string")]),
        ),
        "balances": dg.MetadataValue.table(
            [dg.TableRecord({"account": k, "balance": int(v)}) for k, v in sorted(result.balances.items())],
            schema=dg.TableSchema([dg.TableColumn("account", "string"), dg.TableColumn("balance", "int")]),
        ),
        "history": ledger_history_table(paths.ledger, job.job_id),
        "seconds": out.seconds,
    })


def ledger_history_table(path, job_id) -> dg.MetadataValue:
    """Every ledger transaction of the job (genesis funding, locks, settlement), one row per transfer."""
    with Ledger(path) as ledger:
        history = ledger.history(job_id)
    return dg.MetadataValue.table(
        [dg.TableRecord({"transaction": tx.key, "kind": tx.kind, "from": t.source, "to": t.dest,
                         "amount": int(t.amount)}) for tx in history for t in tx.transfers],
        schema=dg.TableSchema([dg.TableColumn("transaction", "string"), dg.TableColumn("kind", "string"),
                               dg.TableColumn("from", "string"), dg.TableColumn("to", "string"),
                               dg.TableColumn("amount", "int")]),
    )


@dg.asset_check(asset=settlement, description="Total token supply is conserved by settlement "
                                              "(balances + escrow + burned = minted).")
def supply_conserved(settlement: Timed) -> dg.AssetCheckResult:
    result = settlement.value
    return dg.AssetCheckResult(passed=result.supply_before == result.supply_after,
                               metadata={"supply_before": result.supply_before,
                                         "supply_after": result.supply_after})
