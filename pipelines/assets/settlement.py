"""Stage 6 — staking settlement in the SQLite ledger."""


import dagster as dg

from pipelines.resources import PinpointConfig
from verification.lifecycle import Timed, stage_settle, timed


@dg.asset(group_name="settlement", compute_kind="sqlite",
          description="Stakes locked, payment escrowed; honest solvers paid, cheaters slashed (reward to "
                      "the challenger, the rest burned). Idempotent per job id.")
def settlement(pinpoint: PinpointConfig, spot_checks: Timed,
               disputes: Timed) -> dg.Output[Timed]:
    paths = pinpoint.paths()
    out = timed(stage_settle, pinpoint.spec(), spot_checks.value.checks, disputes.value, paths.ledger)
    result = out.value
    return dg.Output(out, metadata={
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
        "balances": dg.MetadataValue.json(dict(result.balances)),
        "seconds": out.seconds,
    })


@dg.asset_check(asset=settlement, description="Total token supply is conserved by settlement "
                                              "(balances + escrow + burned = minted).")
def supply_conserved(settlement: Timed) -> dg.AssetCheckResult:
    result = settlement.value
    return dg.AssetCheckResult(passed=result.supply_before == result.supply_after,
                               metadata={"supply_before": result.supply_before,
                                         "supply_after": result.supply_after})
