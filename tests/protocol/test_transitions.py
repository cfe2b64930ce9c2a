"""The transitions' contract beyond the vectors: named errors, an unchanged state, the table."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from proofs.types import SolverId
from tests.protocol import make_vectors as mv
from verification.job import LifecycleError, resolve_job
from verification.protocol import (
    TRANSITIONS,
    DuplicateMessageError,
    ForgedMessageError,
    InvalidMessageError,
    Kind,
    OutOfOrderError,
    Phase,
    ProtocolError,
    SettleRequest,
    UnattestedCheckError,
    UnfoundedJackpotClaimError,
    WrongJobError,
    get_revealed_ticket,
    process_commit,
    process_message,
    process_settle,
    require_valid_ticket,
)
from verification.settlement import JACKPOT
from verification.settlement.accounts import get_party_account
from verification.settlement.rules import compute_jackpot_tax
from verification.solver import compute_forced_error_ticket

BAD = [v for generate in mv.GENERATORS for v in generate() if v.error is not None]
GOOD = [v for generate in mv.GENERATORS for v in generate() if v.error is None]


@pytest.mark.parametrize("vector", BAD, ids=lambda v: f"{v.transition}/{v.case}")
def test_a_bad_message_raises_its_named_error_and_leaves_the_state_as_it_was(vector):
    before = copy.deepcopy(vector.pre)
    with pytest.raises(ProtocolError) as raised:
        process_message(vector.job, vector.pre, vector.transition, vector.message)
    assert type(raised.value).__name__ == vector.error
    assert vector.job.job_id in str(raised.value)  # the error names the job
    assert vector.pre == before


@pytest.mark.parametrize("vector", GOOD, ids=lambda v: f"{v.transition}/{v.case}")
def test_a_good_message_makes_a_new_state_and_moves_the_phase_by_the_table(vector):
    before = copy.deepcopy(vector.pre)
    post = process_message(vector.job, vector.pre, vector.transition, vector.message)
    allowed, after = TRANSITIONS[vector.transition]
    assert vector.pre == before and post is not vector.pre
    assert vector.pre.phase in allowed and post.phase is after


def test_protocol_errors_are_lifecycle_errors():
    assert issubclass(ProtocolError, LifecycleError)  # a stage that refuses a message fails as before


def test_phases_only_move_forward():
    order = list(Phase)
    for allowed, after in TRANSITIONS.values():
        assert all(order.index(after) >= order.index(phase) for phase in allowed)
    assert not any(Phase.SETTLED in allowed for allowed, _ in TRANSITIONS.values())


def test_the_job_id_is_resolved_once_and_kept():
    job = resolve_job(mv.SPEC)
    assert job == mv.JOB and job.terms is mv.SPEC.economics
    assert [s.solver_id for s in job.solvers] == ["honest", "bitflip"]
    assert {party for party, _ in job.public_keys} == {"honest", "bitflip", "verifier", "referee"}


def test_a_commitment_signed_for_one_job_is_refused_by_a_job_with_other_terms():
    other = resolve_job(dataclasses.replace(mv.SPEC, seed=mv.SPEC.seed + 1))
    with pytest.raises(WrongJobError):
        process_commit(other, mv.compute_genesis_state(other), mv.SIGNED["honest"])


def test_a_replaced_signature_is_forged_and_a_repeat_is_a_duplicate():
    honest = mv.SIGNED["honest"]
    swapped = dataclasses.replace(honest, signature=mv.SIGNED["bitflip"].signature)
    with pytest.raises(ForgedMessageError):
        process_commit(mv.JOB, mv.GENESIS, swapped)
    with pytest.raises(DuplicateMessageError):
        process_commit(mv.JOB, mv.ONE_COMMITTED, honest)


def test_settlement_fixes_one_verdict_per_solver_and_only_once():
    settled = process_settle(mv.JOB, mv.ATTESTED, SettleRequest(mv.JOB.job_id))
    assert [(v.solver_id, v.outcome) for v in settled.verdicts] == [("honest", "paid"), ("bitflip", "unverified")]
    with pytest.raises(OutOfOrderError):
        process_settle(mv.JOB, settled, SettleRequest(mv.JOB.job_id))
    assert Kind.SETTLE in TRANSITIONS


@pytest.mark.parametrize("field", ["solver", "verifier", "submitter"])
def test_no_party_but_the_referee_is_called_referee(field):
    """The referee's name carries its signing key: a solver named so could sign rulings."""
    from verification.spec import SolverSpec, SpecError, validate_spec

    changes = {"solver": {"solvers": (*mv.SPEC.solvers, SolverSpec("referee", "honest"))},
               "verifier": {"verifier": "referee"}, "submitter": {"submitter": "referee"}}[field]
    with pytest.raises(SpecError, match="'referee' is the referee's"):
        validate_spec(dataclasses.replace(mv.SPEC, **changes))


def forced_vector(case: str) -> mv.Vector:
    return next(v for v in mv.forced_error_vectors() if v.case == case)


def settle_forced(case: str):
    vector = forced_vector(case)
    post = process_message(vector.job, vector.pre, vector.transition, vector.message)
    return {v.solver_id: v for v in post.verdicts}, mv.settle_on_a_fresh_ledger(vector.job, post)


def test_a_forced_error_found_pays_the_solver_and_the_finding_verifier_from_the_jackpot():
    verdicts, settled = settle_forced("forced_error_found")
    honest = verdicts["honest"]
    assert honest.outcome == "paid" and honest.forced_error and honest.challenger == mv.VERIFIER
    assert honest.forced_ticket.hex() == mv.TICKETS["honest"]
    jackpot = [(t.dest, t.amount) for t in settled.transfers if t.source == JACKPOT]
    tax = compute_jackpot_tax(mv.FORCED.terms)
    assert jackpot == [(get_party_account(mv.VERIFIER), 2 * tax)]  # a fresh jackpot: this job's two taxes
    assert settled.supply_before == settled.supply_after


def test_a_forced_error_missed_is_visible_in_its_verdict_and_pays_no_jackpot():
    verdicts, settled = settle_forced("forced_error_missed")
    assert [(v.outcome, v.forced_error, v.forced_ticket.hex()) for v in verdicts.values()] == [
        ("paid", False, mv.TICKETS["honest"]), ("unverified", False, mv.TICKETS["bitflip"])]
    assert not any(t.source == JACKPOT for t in settled.transfers)


def test_a_forced_error_excuses_no_step_before_the_last():
    verdicts, settled = settle_forced("forced_error_too_early")
    assert verdicts["honest"].outcome == "slashed" and not verdicts["honest"].forced_error
    assert not any(t.source == JACKPOT for t in settled.transfers)


def test_a_ticket_the_protocol_refuses_claims_nothing_and_names_its_fault():
    assert get_revealed_ticket(mv.FORCED, SolverId("honest"), mv.TICKETS["honest"]) is not None
    for solver, ticket in [("honest", mv.TICKETS["bitflip"]), ("honest", "zz"), ("honest", ""),
                           ("mallory", mv.TICKETS["honest"])]:
        assert get_revealed_ticket(mv.FORCED, SolverId(solver), ticket) is None
    with pytest.raises(UnfoundedJackpotClaimError, match="draws no forced error"):
        require_valid_ticket(mv.JOB, SolverId("honest"), compute_forced_error_ticket(
            mv.SPEC, mv.JOB.job_id, SolverId("honest")).hex())
    with pytest.raises(InvalidMessageError, match="pairs"):
        process_settle(mv.FORCED, mv.FORCED_CHECKED, SettleRequest(mv.FORCED.job_id, ("honest",)))


# -- the verifier committee ------------------------------------------------------------------------
def test_every_verifier_of_the_committee_registers_its_key_with_a_proof_of_possession():
    from verification.job import get_committee, get_verifier_registry

    assert get_committee(mv.COMMITTEE) == ("verifier", "attester")
    assert {p for p, _ in mv.COMMITTEE.public_keys} >= {"verifier", "attester"}
    registry = get_verifier_registry(mv.COMMITTEE)
    assert set(registry.keys) == {"verifier", "attester"}  # no solver, no referee: only verifiers attest


def test_a_forced_error_found_by_an_attester_pays_it_the_jackpot_and_every_verifier_its_fee():
    """The lead verifier's coin skipped honest; the attester's selected it, found its forced error
    at step T and challenged: the jackpot pays the attester (Truebit §4.4), the lead nothing from
    it, both their fee; supply is conserved."""
    verdicts, settled = settle_forced("forced_error_found_by_attester")
    honest = verdicts["honest"]
    assert honest.outcome == "paid" and honest.forced_error and honest.challenger == mv.ATTESTER
    jackpot = [(t.dest, t.amount) for t in settled.transfers if t.source == JACKPOT]
    tax = compute_jackpot_tax(mv.COMMITTEE.terms)
    assert jackpot == [(get_party_account(mv.ATTESTER), 2 * tax)]
    fees = sorted(t.dest for t in settled.transfers if t.memo == "verifier fee")
    assert fees == sorted(get_party_account(v) for v in ("verifier", "attester"))
    assert settled.supply_before == settled.supply_after
    pre = mv.COMMITTEE_DISPUTED
    assert not pre.checks["verifier"]["honest"].checked and pre.checks["attester"]["honest"].mismatch


def test_settlement_refuses_a_conclusive_check_nobody_attested_naming_the_verifier():
    with pytest.raises(UnattestedCheckError, match=r"job .*: checks \[verifier: honest\]"):
        process_settle(mv.JOB, mv.CHECKED, SettleRequest(mv.JOB.job_id))


@pytest.mark.parametrize("case, fragment", [
    ("tampered_verdict", "is not the aggregate signature of verifiers ['verifier']"),
    ("wrong_key", "not its registered key"),
    ("unregistered_verifier", "signed by 'mallory', which is not a registered verifier"),
    ("solver_signs", "signed by 'honest', which is not a registered verifier"),
    ("aggregate_missing_signer", "is not the aggregate signature of verifiers ['verifier', 'attester']"),
])
def test_a_forged_aggregate_is_refused_naming_the_job_and_the_verifier(case, fragment):
    vector = next(v for v in mv.attest_vectors() if v.case == case)
    before = copy.deepcopy(vector.pre)
    with pytest.raises(ForgedMessageError) as raised:
        process_message(vector.job, vector.pre, vector.transition, vector.message)
    assert vector.job.job_id in str(raised.value) and fragment in str(raised.value)
    assert vector.pre == before


def test_one_dispute_per_solver_challenged_by_the_first_verifier_that_found_the_mismatch():
    """Both verifiers find honest's mismatch: only the lead (first in committee order) may challenge."""
    state = mv.apply(mv.build_committee_revealed(mv.BOTH_SECRET),
                     (Kind.CHECK, mv.report(mv.CHECK_LAST, mv.COMMITTEE)),
                     (Kind.CHECK, mv.report(mv.not_checked("bitflip", "interval"), mv.COMMITTEE)),
                     (Kind.CHECK, mv.report(mv.CHECK_LAST, mv.COMMITTEE, mv.ATTESTER)),
                     (Kind.CHECK, mv.report(mv.SKIPPED, mv.COMMITTEE, mv.ATTESTER)),
                     (Kind.ATTEST, mv.attest(mv.CHECK_LAST, mv.COMMITTEE, ("verifier", "attester"))),
                     job=mv.COMMITTEE)
    assert len(state.attestations) == 1 and state.attestations[0].verifier_ids == ("verifier", "attester")
    second = dataclasses.replace(mv.COMMITTEE_CHALLENGE, challenger=mv.ATTESTER)
    with pytest.raises(InvalidMessageError, match="first verifier that found its mismatch is 'verifier'"):
        process_message(mv.COMMITTEE, state, Kind.CHALLENGE, second)
    challenged = process_message(mv.COMMITTEE, state, Kind.CHALLENGE,
                                 dataclasses.replace(second, challenger=mv.VERIFIER))
    with pytest.raises(DuplicateMessageError):
        process_message(mv.COMMITTEE, challenged, Kind.CHALLENGE, second)
