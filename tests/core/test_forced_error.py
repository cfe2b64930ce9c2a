"""Forced errors and the jackpot on the product path (Truebit §4.1, §4.4).

A solver whose ticket (its BLS signature on the draw) draws a forced error flips one bit of its
final state on purpose. A verifier that checks it and wins the dispute is paid from the jackpot; the
solver is paid as for correct work; a verifier that did not check is visible in the report.
"""

from __future__ import annotations

import dataclasses

import pytest

from proofs.types import SolverId
from verification.lifecycle import get_revealed_ticket, get_tickets, run_job
from verification.paths import ArtifactPaths
from verification.settlement import EconomicTerms
from verification.solver import (
    compute_forced_error_ticket,
    get_forced_error_ticket,
    is_valid_ticket,
)
from verification.spec import SolverSpec, compute_job_id

ALWAYS = EconomicTerms(forced_error_rate_bps=10_000)  # every solver is drawn


def job(minimal_spec, *solvers: SolverSpec, p: float = 1.0, terms: EconomicTerms = ALWAYS):
    return dataclasses.replace(minimal_spec, steps=8, checkpoint_interval=4, economics=terms,
                               spot_check_probability=p, spot_check_policy="replicate",
                               solvers=solvers or (SolverSpec(SolverId("honest"), "honest"),))


def by_id(report: dict) -> dict:
    return {s["solver_id"]: s for s in report["solvers"]}


def test_a_forced_error_found_pays_the_verifier_from_the_jackpot_and_a_rerun_changes_nothing(minimal_spec, tmp_path):
    spec, paths = job(minimal_spec), ArtifactPaths(tmp_path)
    report = run_job(spec, paths)
    honest = by_id(report)["honest"]
    assert honest["injected_divergence_step"] == 8  # its final state, flipped on purpose
    assert honest["dispute"]["first_divergent_step"] == 8 and honest["dispute"]["winner"] == "challenger"
    assert honest["outcome"] == "paid" and honest["forced_error"] == {"found": True, "paid_to": "verifier", "skipped_by": []}
    ledger = report["ledger"]
    tax = spec.economics.payment_per_solver * spec.economics.jackpot_bps // 10_000
    assert ledger["jackpot_in"] == tax and ledger["jackpot_out"] == tax  # a fresh jackpot: this job's tax
    paid = [m for m in ledger["movements"] if m["memo"] == "jackpot: forced error of honest found"]
    assert [(m["from"], m["to"], m["amount"]) for m in paid] == [("jackpot", "party:verifier", tax)]
    assert ledger["supply_before"] == ledger["supply_after"]
    again = run_job(spec, paths)
    assert again["ledger"]["already_settled"] and again["ledger"]["balances"] == ledger["balances"]


def test_a_forced_error_nobody_checked_is_visible_and_pays_nothing(minimal_spec, tmp_path):
    report = run_job(job(minimal_spec, p=0.0), ArtifactPaths(tmp_path))
    honest = by_id(report)["honest"]
    assert honest["outcome"] == "unverified" and honest["forced_error"] == {"found": False, "paid_to": None, "skipped_by": ["verifier"]}
    assert report["ledger"]["jackpot_out"] == 0 and report["ledger"]["jackpot_in"] > 0


def test_a_forced_error_excuses_nothing_before_the_last_step(minimal_spec, tmp_path):
    """A cheater drawn for a forced error is slashed for its own earlier error, and no jackpot pays."""
    spec = job(minimal_spec, SolverSpec(SolverId("bitflip"), "bitflip", {"step": 3}))
    report = run_job(spec, ArtifactPaths(tmp_path))
    cheater = by_id(report)["bitflip"]
    assert cheater["dispute"]["first_divergent_step"] == 3
    assert cheater["outcome"] == "slashed" and cheater["forced_error"]["found"] is False
    assert report["ledger"]["jackpot_out"] == 0


def test_only_the_solvers_own_valid_ticket_draws_a_forced_error(minimal_spec):
    spec = job(minimal_spec, SolverSpec(SolverId("a"), "honest"), SolverSpec(SolverId("b"), "honest"))
    job_id = compute_job_id(spec)
    ticket_a = compute_forced_error_ticket(spec, job_id, SolverId("a"))
    assert is_valid_ticket(spec, job_id, SolverId("a"), ticket_a)
    assert not is_valid_ticket(spec, job_id, SolverId("b"), ticket_a)  # another solver's signature
    assert not is_valid_ticket(spec, compute_job_id(dataclasses.replace(spec, seed=spec.seed + 1)), SolverId("a"),
                               ticket_a)  # another job's draw
    assert not is_valid_ticket(spec, job_id, SolverId("a"), b"\x00" * 96)
    assert not is_valid_ticket(spec, job_id, SolverId("a"), b"")
    assert get_forced_error_ticket(spec, job_id, SolverId("a")) == ticket_a  # drawn: the rate is 100 %
    assert get_forced_error_ticket(spec, job_id, SolverId(spec.verifier)) is None  # the verifier is no solver
    never = dataclasses.replace(spec, economics=EconomicTerms(forced_error_rate_bps=0))
    assert get_forced_error_ticket(never, compute_job_id(never), SolverId("a")) is None


@pytest.mark.parametrize("ticket", ["", "zz", "00" * 96])
def test_a_forged_or_missing_ticket_claims_nothing(minimal_spec, ticket):
    from verification.solver import TrainingRun

    spec = job(minimal_spec)
    run = TrainingRun(compute_job_id(spec), SolverId("honest"), "honest", "", 4, (), (), None, "", 0.0,
                      forced_error_ticket=ticket)
    assert get_revealed_ticket(spec, run) is None


def test_the_coordinator_sends_only_the_tickets_the_protocol_accepts(minimal_spec):
    """A run's forged ticket claims nothing and does not block settlement: it is not sent."""
    from verification.solver import TrainingRun

    spec = job(minimal_spec, SolverSpec(SolverId("a"), "honest"), SolverSpec(SolverId("b"), "honest"))
    job_id = compute_job_id(spec)
    ticket_a = compute_forced_error_ticket(spec, job_id, SolverId("a")).hex()
    runs = {sid: TrainingRun(job_id, sid, "honest", "", 4, (), (), None, "", 0.0, forced_error_ticket=ticket_a)
            for sid in (SolverId("a"), SolverId("b"))}  # b reveals a's signature as its own
    assert get_tickets(spec, runs) == ((SolverId("a"), ticket_a),)
