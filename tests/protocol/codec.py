"""JSON for the protocol's test vectors: a job, a ``JobState`` and each kind of message.

Bytes are hex; signed commitments are ``verification.store``'s records (the encoded message, the
signer, its key and its signature), so a vector holds exactly the bytes a verifier checks. A job
is stored whole (spec, id, keys): replaying a vector re-derives nothing, so a vector does not
change with the torch release that the job id also binds (``verification.spec``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from proofs.messages import (
    AggregateAttestation,
    Equivocation,
    Ruling,
    Signed,
    message_from_json,
    message_to_json,
)
from proofs.types import JobId, PartyId, Root, SolverId
from verification.dispute import DisputeResult
from verification.job import Job, compute_challenger
from verification.protocol import (
    Challenge,
    CheckReport,
    DisputeOutcome,
    JobState,
    Kind,
    Phase,
    SettleRequest,
)
from verification.settlement import JACKPOT, SettlementResult, SolverVerdict
from verification.spec import JobSpec, spec_from_dict, spec_to_dict
from verification.store import commitment_record, parse_coin_commitment, parse_commitment
from verification.verifier import CoinCommitment, CoinReveal, SpotCheck


# -- the job -------------------------------------------------------------------------------------
def encode_job(job: Job) -> dict[str, Any]:
    return {"spec": spec_to_dict(job.spec), "job_id": job.job_id,
            "public_keys": {party: key.hex() for party, key in job.public_keys},
            "proofs_of_possession": {party: proof.hex() for party, proof in job.proofs}}


def decode_job(data: dict[str, Any]) -> Job:
    spec = spec_from_dict(data["spec"], base=JobSpec())
    keys = tuple((PartyId(p), bytes.fromhex(k)) for p, k in data["public_keys"].items())
    proofs = tuple((PartyId(p), bytes.fromhex(k)) for p, k in data["proofs_of_possession"].items())
    return Job(spec, JobId(data["job_id"]), None, tuple(spec.solvers), compute_challenger(spec), keys,
               spec.economics, proofs)


# -- pieces of the state -------------------------------------------------------------------------
def encode_coin(coin: CoinCommitment | None) -> dict | None:
    return None if coin is None else {"job_id": coin.job_id, "verifier": coin.verifier,
                                      "commitment": coin.commitment.hex()}


def encode_reveal(reveal: CoinReveal | None) -> dict | None:
    return None if reveal is None else {"job_id": reveal.job_id, "verifier": reveal.verifier,
                                        "secret": reveal.secret.hex()}


def decode_reveal(data: dict | None) -> CoinReveal | None:
    return None if data is None else CoinReveal(JobId(data["job_id"]), PartyId(data["verifier"]),
                                                bytes.fromhex(data["secret"]))


def encode_check(check: SpotCheck) -> dict[str, Any]:
    data = dataclasses.asdict(dataclasses.replace(check, equivocation=None))
    data["intervals"] = list(check.intervals)
    data["equivocation"] = None if check.equivocation is None else {
        "first": commitment_record(check.equivocation.first), "second": commitment_record(check.equivocation.second)}
    return data


def decode_check(data: dict[str, Any]) -> SpotCheck:
    evidence = data["equivocation"]
    return SpotCheck(**{**data, "solver_id": SolverId(data["solver_id"]), "intervals": tuple(data["intervals"]),
                        "equivocation": None if evidence is None else Equivocation(
                            parse_commitment(evidence["first"]), parse_commitment(evidence["second"]))})


def encode_verdict(verdict: SolverVerdict) -> dict[str, Any]:
    return {**dataclasses.asdict(verdict), "forced_ticket": verdict.forced_ticket.hex()}


def decode_verdict(data: dict[str, Any]) -> SolverVerdict:
    return SolverVerdict(**{**data, "forced_ticket": bytes.fromhex(data["forced_ticket"])})


def encode_result(result: DisputeResult) -> dict[str, Any]:
    data = dataclasses.asdict(dataclasses.replace(result, ruling=None))
    data["ruling"] = None if result.ruling is None else commitment_record(result.ruling)
    return data


def decode_result(data: dict[str, Any]) -> DisputeResult:
    ruling = data.get("ruling")
    return DisputeResult(**{**data, "ruling": None if ruling is None else parse_commitment(ruling)})


def encode_state(state: JobState) -> dict[str, Any]:
    return {
        "phase": str(state.phase),
        "coins": {v: encode_coin(c) for v, c in state.coins.items()},
        "commitments": {sid: commitment_record(s) for sid, s in state.commitments.items()},
        "reveals": {v: encode_reveal(r) for v, r in state.reveals.items()},
        "checks": {v: {sid: encode_check(c) for sid, c in by_solver.items()} for v, by_solver in state.checks.items()},
        "attestations": [message_to_json(a) for a in state.attestations],
        "challenges": {sid: dataclasses.asdict(c) for sid, c in state.challenges.items()},
        "disputes": {sid: encode_result(d) for sid, d in state.disputes.items()},
        "rulings": {sid: commitment_record(r) for sid, r in state.rulings.items()},
        "verdicts": [encode_verdict(v) for v in state.verdicts],
    }


def decode_state(data: dict[str, Any]) -> JobState:
    return JobState(
        phase=Phase(data["phase"]),
        coins={PartyId(v): parse_coin_commitment(c) for v, c in data["coins"].items()},
        commitments={SolverId(sid): parse_commitment(r) for sid, r in data["commitments"].items()},
        reveals={PartyId(v): decode_reveal(r) for v, r in data["reveals"].items()},
        checks={PartyId(v): {SolverId(sid): decode_check(c) for sid, c in by_solver.items()}
                for v, by_solver in data["checks"].items()},
        attestations=tuple(message_from_json(AggregateAttestation, a) for a in data["attestations"]),
        challenges={SolverId(sid): Challenge(**c) for sid, c in data["challenges"].items()},
        disputes={SolverId(sid): decode_result(d) for sid, d in data["disputes"].items()},
        rulings={SolverId(sid): parse_commitment(r) for sid, r in data["rulings"].items()},
        verdicts=tuple(decode_verdict(v) for v in data["verdicts"]),
    )


# -- what a settled state moves on the ledger ---------------------------------------------------
def encode_settlement(result: SettlementResult) -> dict[str, Any]:
    """A settlement's transfers (source, destination, amount, memo), the supply around it and
    what went into and out of the jackpot."""
    return {"transfers": [[t.source, t.dest, int(t.amount), t.memo] for t in result.transfers],
            "supply_before": result.supply_before, "supply_after": result.supply_after,
            "jackpot_in": sum(int(t.amount) for t in result.transfers if t.dest == JACKPOT),
            "jackpot_out": sum(int(t.amount) for t in result.transfers if t.source == JACKPOT)}


# -- messages ------------------------------------------------------------------------------------
def encode_message(kind: Kind, message: Any) -> dict[str, Any]:
    if kind is Kind.COMMIT:
        return commitment_record(message)
    if kind is Kind.REVEAL:
        return encode_reveal(message)
    if kind is Kind.CHECK:
        return {"job_id": message.job_id, "verifier": message.verifier, "check": encode_check(message.check)}
    if kind is Kind.ATTEST:
        return message_to_json(message)
    if kind is Kind.DISPUTE:
        return {"job_id": message.job_id, "solver_id": message.solver_id, "result": encode_result(message.result)}
    if kind is Kind.RULE:
        if isinstance(message, Signed):
            return commitment_record(message)
        return {"unsigned": {k: v.hex() if isinstance(v, bytes) else v for k, v in dataclasses.asdict(message).items()}}
    if kind is Kind.SETTLE:
        return {"job_id": message.job_id, "tickets": [list(t) for t in message.tickets]}
    return dataclasses.asdict(message)  # a challenge: plain fields


def decode_message(kind: Kind, data: dict[str, Any]) -> Any:
    if kind is Kind.COMMIT:
        return parse_commitment(data)
    if kind is Kind.REVEAL:
        return decode_reveal(data)
    if kind is Kind.CHECK:
        return CheckReport(JobId(data["job_id"]), PartyId(data["verifier"]), decode_check(data["check"]))
    if kind is Kind.ATTEST:
        return message_from_json(AggregateAttestation, data)
    if kind is Kind.DISPUTE:
        return DisputeOutcome(JobId(data["job_id"]), SolverId(data["solver_id"]), decode_result(data["result"]))
    if kind is Kind.RULE:
        if "unsigned" in data:
            fields = data["unsigned"]
            roots = ("solver_output_root", "challenger_output_root", "referee_output_root")
            return Ruling(**{**fields, **{k: Root(bytes.fromhex(fields[k])) for k in roots}})
        return parse_commitment(data)
    if kind is Kind.SETTLE:
        return SettleRequest(JobId(data["job_id"]), tuple((SolverId(s), t) for s, t in data["tickets"]))
    return Challenge(**data)
