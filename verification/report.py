"""The job report: ``artifacts/runs/<job_id>/report.json`` (schema ``pinpoint.report/1``,
docs/design.md §4) and its human summaries (terminal table, markdown for the Dagster UI)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proofs.messages import AggregateAttestation, Signed, message_id
from proofs.types import PartyId, SolverId
from verification.dispute import DisputeResult
from verification.job import Job, get_committee
from verification.lifecycle import VerifyOutput, get_committee_checks, get_committee_reveals
from verification.protocol import get_deciding_check
from verification.records import write_json
from verification.settlement import JACKPOT, SettlementResult, SolverVerdict
from verification.solver import TrainingRun
from verification.spec import spec_to_dict
from verification.verifier import SpotCheck, is_attestable

SCHEMA = "pinpoint.report/1"
STAGES = ("shard", "train", "commit", "verify", "dispute", "settle")


class ReportError(ValueError):
    """A report file is missing or does not follow the schema."""


def build_report(job: Job, runs: dict[SolverId, TrainingRun],
                 commitments: dict[SolverId, Signed], signatures: dict[SolverId, bool],
                 verified: VerifyOutput, disputes: dict[SolverId, DisputeResult],
                 verdicts: list[SolverVerdict], settlement: SettlementResult, timings: dict[str, float]) -> dict[str, Any]:
    """The report. Each solver's ``outcome`` is its settlement verdict's, its ``spot_check`` the
    committee's deciding check (``verification.protocol.get_deciding_check``), ``spot_checks``
    every verifier's and ``challenger`` the verifier that disputed it. ``verifiers``: each member
    of the committee, the solvers it checked, skipped (its coin did not select them) or found a
    mismatch in, and its revealed coin secret (``spot_check_coins``), with which anyone recomputes
    which solvers it had to check (``verification.verifier.is_selected_for_check``).
    ``attestations``: the committee's aggregate attestations (verdict, signers, signature).
    ``forced_error``: the solver revealed a valid ticket drawing a forced error, whether it was
    found, by whom (paid the jackpot) and which verifiers skipped it. ``job`` carries its dataset
    commitment (``verification.job.with_dataset``)."""
    solvers, by_solver, dataset = [], {v.solver_id: v for v in verdicts}, job.dataset
    if dataset is None:
        raise ReportError(f"job {job.job_id} has no dataset commitment to report")
    committee = get_committee_checks(job, verified)
    for solver in job.solvers:
        sid = solver.solver_id
        run, signed, dispute, verdict = runs[sid], commitments.get(sid), disputes.get(sid), by_solver[sid]
        _, check = get_deciding_check(job, committee, sid)
        solvers.append({
            "solver_id": sid,
            "strategy": solver.strategy,
            "trace_root": "" if signed is None else signed.message.trace_root.hex(),
            "final_state_root": "" if signed is None else signed.message.final_state_root.hex(),
            "environment": "" if signed is None else signed.message.environment,
            "signature": "" if signed is None else bytes(signed.signature).hex(),
            "signature_valid": bool(signatures.get(sid, False)),
            "forfeit": check.forfeit,
            "spot_check": check.to_report(),
            "spot_checks": {v: compute_check_label(c[sid].to_report()) for v, c in committee.items() if sid in c},
            "challenger": verdict.challenger,
            "dispute": None if dispute is None else dispute.to_report(),
            "outcome": verdict.outcome,
            "forced_error": None if not verdict.forced_ticket else {
                "found": verdict.forced_error, "paid_to": verdict.challenger if verdict.forced_error else None,
                "skipped_by": [v for v, c in committee.items() if sid in c and not c[sid].checked]},
            "injected_divergence_step": run.injected_divergence_step,
        })
    return {
        "schema": SCHEMA,
        "job_id": job.job_id,
        "spec": spec_to_dict(job.spec),
        "dataset": {"name": dataset.name, "shards": len(dataset.shards), "root": dataset.root.hex()},
        "solvers": solvers,
        "spot_check_coin": None if verified.coin is None else {"verifier": verified.coin.verifier,
                                                                "secret": verified.coin.secret.hex()},
        "spot_check_coins": [{"verifier": v, "secret": coin.secret.hex()}
                             for v, coin in get_committee_reveals(job, verified).items() if coin is not None],
        "verifiers": [compute_verifier_report(job, v, committee.get(v, {})) for v in get_committee(job)],
        "attestations": [compute_attestation_report(a) for a in verified.attestations],
        "ledger": {
            "supply_before": settlement.supply_before, "supply_after": settlement.supply_after,
            "burned": settlement.burned, "balances": dict(settlement.balances),
            "jackpot_in": sum(int(t.amount) for t in settlement.transfers if t.dest == JACKPOT),
            "jackpot_out": sum(int(t.amount) for t in settlement.transfers if t.source == JACKPOT),
            "already_settled": settlement.already_settled,
            "movements": [{"from": t.source, "to": t.dest, "amount": int(t.amount), "memo": t.memo}
                          for t in settlement.transfers],
        },
        "timings_s": {stage: round(float(timings.get(stage, 0.0)), 4) for stage in STAGES},
    }


def compute_verifier_report(job: Job, verifier: PartyId, checks: dict[SolverId, SpotCheck]) -> dict[str, Any]:
    """One committee member: its role, the solvers it checked (and of those, attested to and found
    a mismatch in) and the ones it skipped, in the job's solver order."""
    order = [s.solver_id for s in job.solvers if s.solver_id in checks]
    return {"verifier": verifier, "role": "lead" if verifier == job.spec.verifier else "attester",
            "checked": [sid for sid in order if checks[sid].checked],
            "skipped": [sid for sid in order if not checks[sid].checked],
            "mismatch": [sid for sid in order if checks[sid].mismatch],
            "attested": [sid for sid in order if is_attestable(checks[sid])]}


def compute_attestation_report(aggregate: AggregateAttestation) -> dict[str, Any]:
    """An aggregate attestation as the report shows it: its content address, verdict and signers."""
    return {"id": message_id(aggregate).hex(), "solver_id": aggregate.solver_id,
            "trace_root": bytes(aggregate.trace_root).hex(), "verdict": aggregate.verdict,
            "signers": list(aggregate.verifier_ids), "signature": bytes(aggregate.signature).hex()}


def write_report(path: Path, report: dict[str, Any]) -> Path:
    """Write atomically (a temp file of its own + rename)."""
    return write_json(path, report)


REQUIRED_KEYS = ("schema", "job_id", "spec", "dataset", "solvers", "ledger", "timings_s")


def read_report(path: Path) -> dict[str, Any]:
    """A report written by ``write_report``; ``ReportError`` names the file and what is wrong."""
    try:
        report = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"report {str(path)!r} cannot be read: {exc}") from exc
    if not isinstance(report, dict):
        raise ReportError(f"report {str(path)!r} holds a JSON {type(report).__name__}, not an object")
    if report.get("schema") != SCHEMA:
        raise ReportError(f"report {str(path)!r} has schema {report.get('schema')!r}, expected {SCHEMA!r}")
    missing = [key for key in REQUIRED_KEYS if key not in report]
    if missing:
        raise ReportError(f"report {str(path)!r} lacks {missing}")
    return report


def compute_check_label(check: dict[str, Any]) -> str:
    """The spot-check column: forfeit, inconclusive, mismatch, ok or skipped."""
    if check.get("forfeit"):
        return "forfeit"
    if check.get("inconclusive"):
        return "inconclusive"
    return "mismatch" if check["mismatch"] else ("ok" if check["checked"] else "skipped")


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in report["solvers"]:
        d = s["dispute"] or {}
        rows.append([
            s["solver_id"], s["strategy"], s["trace_root"][:12], "yes" if s["signature_valid"] else "NO",
            compute_check_label(s["spot_check"]),
            str(s["injected_divergence_step"] if s["injected_divergence_step"] is not None else "-"),
            str(d.get("first_divergent_step") or "-"), str(d.get("operator") or "-"),
            str(d.get("rounds", "-")), s["outcome"],
        ])
    return rows


HEADERS = ["solver", "strategy", "trace root", "sig", "spot check", "injected", "found step",
           "operator", "rounds", "outcome"]


def render_table(report: dict[str, Any]) -> str:
    """A plain-text summary table for the terminal."""
    rows = [HEADERS, *_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*rows[0]), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in rows[1:]]
    ledger, t = report["ledger"], report["timings_s"]
    lines.append("")
    lines.append(f"job {report['job_id']}  dataset {report['dataset']['name']} "
                 f"({report['dataset']['shards']} shards, root {report['dataset']['root'][:12]})")
    lines += render_committee_lines(report)
    lines.append(f"ledger: supply {ledger['supply_before']} -> {ledger['supply_after']} "
                 f"(conserved: {ledger['supply_before'] == ledger['supply_after']}), burned {ledger['burned']}, "
                 f"jackpot in {ledger.get('jackpot_in', 0)} out {ledger.get('jackpot_out', 0)}"
                 + ("  [already settled: no-op]" if ledger.get("already_settled") else ""))
    lines.append("timings: " + "  ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    return "\n".join(lines)


def render_committee_lines(report: dict[str, Any]) -> list[str]:
    """One line per verifier (what it checked and skipped), one per aggregate attestation."""
    lines = []
    for v in report.get("verifiers", []):
        lines.append(f"verifier {v['verifier']} ({v['role']}): checked {', '.join(v['checked']) or '-'}; "
                     f"skipped {', '.join(v['skipped']) or '-'}; mismatch {', '.join(v['mismatch']) or '-'}")
    for a in report.get("attestations", []):
        lines.append(f"attestation {a['id'][:12]}: {a['solver_id']} {'ok' if a['verdict'] else 'MISMATCH'} "
                     f"signed by {', '.join(a['signers'])} (one aggregate signature)")
    for s in report["solvers"]:
        forced = s.get("forced_error")
        if forced:
            lines.append(f"forced error of {s['solver_id']}: found {forced['found']}, jackpot paid to "
                         f"{forced.get('paid_to') or 'nobody'}; skipped by {', '.join(forced.get('skipped_by') or []) or '-'}")
    return lines


def compute_net_movements(movements: list[dict[str, Any]]) -> dict[str, int]:
    """What a job's movements (``{"from", "to", "amount"}``) moved into (positive) or out of
    (negative) each account; accounts that net to zero are left out."""
    net: dict[str, int] = {}
    for move in movements:
        net[move["from"]] = net.get(move["from"], 0) - move["amount"]
        net[move["to"]] = net.get(move["to"], 0) + move["amount"]
    return {account: amount for account, amount in sorted(net.items()) if amount}


def render_verdicts_markdown(report: dict[str, Any]) -> str:
    """Who cheated, where, and what it cost, in one table narrow enough for the UI: per solver its
    outcome, the step it diverged at and the step the game found, the operator the referee ruled
    on, and the net tokens its account moved in this job's settlement."""
    net = compute_net_movements(report["ledger"]["movements"])
    lines = ["| solver | outcome | injected → found | operator | tokens |", "|---|---|---|---|---|"]
    for s in report["solvers"]:
        d = s["dispute"] or {}
        steps = f"{s['injected_divergence_step'] or '-'} → {d.get('first_divergent_step') or '-'}"
        outcome = s["outcome"] + (" (forced error found)" if (s.get("forced_error") or {}).get("found") else "")
        lines.append(f"| {s['solver_id']} | {outcome} | {steps} | {d.get('operator') or '-'} | "
                     f"{net.get('party:' + s['solver_id'], 0):+d} |")
    return "\n".join(lines)


def render_net_markdown(report: dict[str, Any]) -> str:
    """The job's settlement as its net effect on each party (escrow accounts net to zero or to
    the burn; the jackpot's line is what this job added to it)."""
    lines = ["| account | net |", "|---|---|"]
    lines += [f"| {account} | {amount:+d} |"
              for account, amount in compute_net_movements(report["ledger"]["movements"]).items()]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    """The summary as a markdown table (Dagster metadata), then the committee and the jackpot."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(report)]
    return "\n".join([*lines, "", render_committee_markdown(report)])


def render_committee_markdown(report: dict[str, Any]) -> str:
    """Each verifier (checked, skipped, mismatch), the aggregate attestations (verdict, signers)
    and what this job put into and took out of the jackpot."""
    lines = ["| verifier | role | checked | skipped | mismatch |", "|---|---|---|---|---|"]
    lines += [f"| {v['verifier']} | {v['role']} | {', '.join(v['checked']) or '-'} | {', '.join(v['skipped']) or '-'} "
              f"| {', '.join(v['mismatch']) or '-'} |" for v in report.get("verifiers", [])]
    lines += ["", "| attestation | solver | verdict | signers |", "|---|---|---|---|"]
    lines += [f"| {a['id'][:12]} | {a['solver_id']} | {'ok' if a['verdict'] else 'mismatch'} | {', '.join(a['signers'])} |"
              for a in report.get("attestations", [])]
    ledger = report["ledger"]
    lines += ["", f"jackpot: in {ledger.get('jackpot_in', 0)}, out {ledger.get('jackpot_out', 0)}"]
    return "\n".join(lines)


# The transcript, round by round (for the Dagster UI). A *round* is every move up to and including
# the challenger's ``narrow`` (the interval it keeps: agreed at ``lo``, differing at ``hi``), or the
# referee's ``rule`` or a ``forfeit`` that ends the game. Revealing moves name a position and an
# answer: (what the position is, its payload key, the answer's payload key).
REVEALS = {"reveal-checkpoint": ("checkpoint", "index", "root"), "reveal-step": ("step", "step", "root"),
           "reveal-op": ("op", "index", "digest")}
POSITION_ORDER = ("checkpoint", "step", "op")
LEVEL_UNITS = {"checkpoints": "checkpoint", "steps": "step", "operators": "op"}
ANSWER_CHARS = 8


@dataclass(frozen=True)
class TranscriptRound:
    """One round of a dispute: each party's answers, and what the round settled."""

    round: int
    level: str  # checkpoints | steps | operators | referee | forfeit
    answers: str  # "step 20 both 8518f341 · step 22 solver e03a26ef ≠ challenger 053587fd"
    outcome: str  # "agree at step 20, differ at step 22" | "challenger wins: …"


def compute_transcript_rounds(transcript: dict[str, Any]) -> list[TranscriptRound]:
    """The rounds of a loaded transcript (``verification.dispute.load_transcript``). An answer
    already shown in an earlier round (a level re-reveals the ends of its interval) is not repeated."""
    rounds, answers, shown = [], {}, set()
    for move in transcript["moves"]:
        kind, payload = move["kind"], move["payload"]
        if kind in REVEALS:
            label, position_key, answer_key = REVEALS[kind]
            answers.setdefault((label, payload.get(position_key)), {})[move["party"]] = str(payload.get(answer_key))
        elif kind in ("narrow", "rule", "forfeit"):
            level, outcome = compute_round_outcome(move)
            fresh = {p: a for p, a in answers.items() if (p, tuple(sorted(a.items()))) not in shown}
            shown |= {(p, tuple(sorted(a.items()))) for p, a in answers.items()}
            rounds.append(TranscriptRound(len(rounds) + 1, level, render_answers(fresh), outcome))
            answers = {}
    return rounds


def compute_round_outcome(move: dict[str, Any]) -> tuple[str, str]:
    """(level, outcome) of the move that closes a round."""
    payload = move["payload"]
    if move["kind"] == "narrow":
        return str(payload.get("level")), render_narrowed(payload.get("level"), payload.get("lo"), payload.get("hi"))
    if move["kind"] == "forfeit":
        return "forfeit", f"{move['party']} forfeits: {payload.get('reason')}"
    where = (f"{payload['operator']} (op {payload.get('index')}) at step {payload.get('step')}"
             if payload.get("operator") else f"step {payload.get('step')} re-executed")
    return "referee", f"{payload.get('winner')} wins: {where}"


def render_narrowed(level: Any, lo: Any, hi: Any) -> str:
    """The interval a ``narrow`` keeps: agreed at ``lo``, differing at ``hi``. Operator positions
    count digests: position ``p`` is the chain after op ``p - 1`` (``verification.dispute``)."""
    if level == "operators" and isinstance(lo, int) and isinstance(hi, int):
        start = f"after op {lo - 1}" if lo > 0 else "before op 0"
        return f"agree {start}, differ after op {hi - 1}"
    unit = LEVEL_UNITS.get(level, "position")
    return f"agree at {unit} {lo}, differ at {unit} {hi}"


def sort_positions(answers: dict[tuple[str, Any], dict[str, str]]) -> list[tuple[str, Any]]:
    return sorted(answers, key=lambda p: (POSITION_ORDER.index(p[0]), str(p[1]).zfill(12)))


def render_answers(answers: dict[tuple[str, Any], dict[str, str]]) -> str:
    """Each position's answers: ``both <root>`` when the parties agree, ``solver a ≠ challenger b``."""
    parts = []
    for label, position in sort_positions(answers):
        by_party = {party: value[:ANSWER_CHARS] for party, value in answers[(label, position)].items()}
        if len(by_party) > 1 and len(set(by_party.values())) == 1:
            said = f"both {next(iter(by_party.values()))}"
        else:
            said = " ≠ ".join(f"{party} {value}" for party, value in sorted(by_party.items(), key=lambda kv: kv[0] != "solver"))
        parts.append(f"{label} {position} {said}")
    return " · ".join(parts) or "-"
