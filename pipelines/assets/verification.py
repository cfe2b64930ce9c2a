"""Stages 4 and 5 — optimistic spot checks, and the challenge-and-bisection disputes."""

import dagster as dg

from pipelines.partitions import load_stored
from pipelines.resources import PinpointConfig, get_run_job
from proofs.messages import Signed, verify_signed
from verification.dispute import (
    DisputeResult,
    TranscriptError,
    load_transcript,
    render_transcript_markdown,
)
from verification.job import REFEREE, Job, get_public_key
from verification.lifecycle import (
    Timed,
    get_committee_checks,
    get_mismatched_solvers,
    require_job,
    stage_dispute,
    stage_verify,
    timed,
)
from verification.protocol import compute_ruling
from verification.report import compute_transcript_rounds


@dg.asset(group_name="verification", kinds={"torch"},
          description="With probability p per solver (each verifier's committed secret coin, revealed now), "
                      "the lead verifier re-executes the job "
                      "(replicate) or random intervals from the solver's checkpoints (interval), each attester "
                      "random intervals, and compares roots; their verdicts are signed and aggregated (BLS); "
                      "a mismatch opens a challenge.")
def spot_checks(context: dg.AssetExecutionContext, pinpoint: PinpointConfig, dataset_shards: Timed,
                training_runs: Timed, commitments: Timed) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint, dataset_shards.value)
    require_job(job, dataset_shards=dataset_shards, training_runs=training_runs, commitments=commitments)
    out = timed(stage_verify, job, dataset_shards.value, training_runs.value, commitments.value,
                pinpoint.paths())
    return dg.Output(out, metadata={
        "policy": str(job.spec.spot_check_policy),  # a plain str: Dagster serializes no foreign enums
        "p": job.spec.spot_check_probability,
        "checks": dg.MetadataValue.json({v: {sid: c.to_report() for sid, c in checks.items()}
                                         for v, checks in get_committee_checks(job, out.value).items()}),
        "attestations": dg.MetadataValue.json([{"solver_id": a.solver_id, "verdict": a.verdict,
                                                "signers": list(a.verifier_ids)} for a in out.value.attestations]),
        "seconds": out.seconds,
    })


@dg.asset(group_name="verification", kinds={"torch"},
          description="For every mismatch: k-ary bisection over checkpoints, then over the steps of the "
                      "disputed interval, then over the aten operators of the disputed step; the referee "
                      "re-executes the single disputed operator (the whole step only when operator_level "
                      "is off) and rules.")
def disputes(context: dg.AssetExecutionContext, pinpoint: PinpointConfig, dataset_shards: Timed,
             training_runs: Timed, commitments: Timed, spot_checks: Timed) -> dg.Output[Timed]:
    job = get_run_job(context, pinpoint, dataset_shards.value)
    require_job(job, dataset_shards=dataset_shards, training_runs=training_runs,
                commitments=commitments, spot_checks=spot_checks)
    reused = get_reusable_disputes(load_stored(context), job, commitments.value, spot_checks.value)
    if reused is not None:
        context.log.info("reused: every dispute of this job, its transcript and the referee's signed ruling checked")
    out = reused or timed(stage_dispute, job, dataset_shards.value, training_runs.value,
                          commitments.value, spot_checks.value, pinpoint.paths())
    metadata = {"disputes": len(out.value), "seconds": out.seconds, "reused": reused is not None}
    for sid, result in out.value.items():
        transcript = load_transcript(result.transcript, result.transcript_head)  # refuses a tampered file
        metadata[f"{sid}_rounds"] = transcript_rounds_table(transcript)
        metadata[f"{sid}_result"] = dg.MetadataValue.json(result.to_report())
        metadata[f"{sid}_transcript"] = dg.MetadataValue.md(render_transcript_markdown(transcript))
    return dg.Output(out, metadata=metadata)


ROUND_COLUMNS = ("level", "answers", "outcome")


def transcript_rounds_table(transcript: dict) -> dg.MetadataValue:
    """The dispute round by round: who answered what, and what the round settled."""
    return dg.MetadataValue.table(
        [dg.TableRecord({"round": r.round, **{c: getattr(r, c) for c in ROUND_COLUMNS}})
         for r in compute_transcript_rounds(transcript)],
        schema=dg.TableSchema([dg.TableColumn("round", "int"), *(dg.TableColumn(c, "string") for c in ROUND_COLUMNS)]),
    )


def get_reusable_disputes(previous: object, job: Job, commitments: dict, verified: object) -> Timed | None:
    """The job's disputes as a previous run of it stored them, when a rerun may reuse them instead
    of playing the games again: the same job id, a game for exactly the solvers whose check found a
    mismatch, each game's transcript on disk intact up to its head and over the solver's committed
    trace root, each closed by the referee's signed ruling on what it found. Settlement replays
    every one through ``process_dispute`` and ``process_rule`` anyway. None otherwise."""
    if not isinstance(previous, Timed) or previous.job_id != job.job_id or not isinstance(previous.value, dict):
        return None
    if not hasattr(verified, "attesters") or set(previous.value) != get_mismatched_solvers(job, verified):
        return None
    for sid, result in previous.value.items():
        signed = commitments.get(sid)
        if not isinstance(result, DisputeResult) or not isinstance(result.ruling, Signed) or signed is None:
            return None
        try:
            transcript = load_transcript(result.transcript, result.transcript_head)
        except (TranscriptError, OSError, TypeError, ValueError):
            return None
        if transcript.get("trace_root") != signed.message.trace_root.hex():
            return None
        if result.ruling.message != compute_ruling(job.job_id, result) or \
                result.ruling.public_key != get_public_key(job, REFEREE) or not verify_signed(result.ruling):
            return None
    return previous
