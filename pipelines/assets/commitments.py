"""Stage 3 — checkpoint hashing and signed commitments."""


import dagster as dg

from pipelines.resources import PinpointConfig, get_run_job
from verification.lifecycle import Timed, check_signatures, require_job, stage_commit, timed


@dg.asset(group_name="commitment", kinds={"bls"},
          description="Each solver's trace root (Merkle root of its checkpoint state roots) and final "
                      "state root, signed with BLS (IETF proof-of-possession ciphersuite).")
def commitments(context: dg.AssetExecutionContext, pinpoint: PinpointConfig,
                training_runs: Timed) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint)
    require_job(job, training_runs=training_runs)
    out = timed(stage_commit, job, training_runs.value, pinpoint.paths())
    return dg.Output(out, metadata={
        "commitments": dg.MetadataValue.table(
            [dg.TableRecord({"solver": sid, "trace_root": s.message.trace_root.hex(),
                             "final_state_root": s.message.final_state_root.hex(),
                             "signature": s.signature.hex()[:32] + "…"})
             for sid, s in out.value.items()],
            schema=dg.TableSchema([dg.TableColumn(c, "string")
                                   for c in ("solver", "trace_root", "final_state_root", "signature")]),
        ),
        "seconds": out.seconds,
    })


@dg.asset_check(asset=commitments, description="Every commitment carries a valid BLS signature "
                                               "by its solver's registered key.")
def signatures_valid(context: dg.AssetCheckExecutionContext, pinpoint: PinpointConfig,
                     commitments: Timed) -> dg.AssetCheckResult:
    job = get_run_job(context, pinpoint)
    require_job(job, commitments=commitments)
    valid = check_signatures(job, commitments.value)
    return dg.AssetCheckResult(passed=all(valid.values()), metadata={"valid": dg.MetadataValue.json(valid)})
