"""Stage 3 — checkpoint hashing and signed commitments."""


import dagster as dg

from pipelines.partitions import load_stored
from pipelines.resources import PinpointConfig, get_run_job
from proofs.messages import Signed
from verification import store
from verification.job import Job
from verification.lifecycle import Timed, check_signatures, require_job, stage_commit, timed
from verification.solver import TrainingRun, build_commitment


@dg.asset(group_name="commitment", kinds={"bls"},
          description="Each solver's trace root (Merkle root of its checkpoint state roots) and final "
                      "state root, signed with BLS (IETF proof-of-possession ciphersuite).")
def commitments(context: dg.AssetExecutionContext, pinpoint: PinpointConfig,
                training_runs: Timed) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint)
    require_job(job, training_runs=training_runs)
    reused = get_reusable_commitments(load_stored(context), job, training_runs.value, pinpoint.paths())
    if reused is not None:
        context.log.info("reused: every solver's signed commitment to this job's runs, published and valid")
    out = reused or timed(stage_commit, job, training_runs.value, pinpoint.paths())
    return dg.Output(out, metadata={
        "reused": reused is not None,
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


def get_reusable_commitments(previous: object, job: Job, runs: dict[str, TrainingRun], paths) -> Timed | None:
    """The job's commitments as a previous run of it stored them, when a rerun may reuse them
    instead of asking every solver to sign again: the same job id, a commitment from exactly the
    solvers that delivered a run, each the commitment to that very run with a valid signature by its
    solver's registered key, and each on the job's bulletin (where verifiers look for
    equivocation). None otherwise."""
    if not isinstance(previous, Timed) or previous.job_id != job.job_id or not isinstance(previous.value, dict):
        return None
    delivered = {sid for sid, run in runs.items() if run.failure is None}
    if set(previous.value) != delivered:
        return None
    bulletin = store.read_bulletin(paths, job.job_id) if delivered else []
    for sid, signed in previous.value.items():
        if not isinstance(signed, Signed) or signed.message != build_commitment(job.spec, job.job_id, runs[sid]):
            return None
        if signed not in bulletin:
            return None
    if not all(check_signatures(job, previous.value).values()):
        return None
    return previous
