"""The lifecycle's stages decide through the transitions: settlement refuses what
``process_settle`` refuses, before the ledger is touched, and applies the verdicts it fixes.

No training is needed: the commitments are signed with the job's demo keys over made-up roots,
the coin is opened and revealed by the lifecycle itself.
"""

from __future__ import annotations

import dataclasses

import pytest

from proofs.messages import sign_message
from tests.protocol import make_vectors as mv
from verification.job import resolve_job
from verification.lifecycle import (
    VerifyOutput,
    attest_checks,
    open_spot_check_coin,
    reveal_spot_check_coin,
    sign_ruling,
    stage_settle,
)
from verification.paths import ArtifactPaths
from verification.protocol import InvalidMessageError, OutOfOrderError, SelectionFaultError
from verification.settlement import Ledger
from verification.solver import party_keypair

JOB = resolve_job(dataclasses.replace(mv.SPEC, spot_check_probability=1.0))  # the coin selects every solver


def commit(solver_id: str):
    message = dataclasses.replace(mv.build_commitment(solver_id), job_id=JOB.job_id)
    return sign_message(message, party_keypair(JOB.spec, solver_id)[0], solver_id)


@pytest.fixture
def opened(tmp_path):
    paths = ArtifactPaths(tmp_path)
    open_spot_check_coin(JOB, paths)
    coin = reveal_spot_check_coin(JOB, paths)[1]
    commitments = {sid: commit(sid) for sid in ("honest", "bitflip")}
    checks = {"honest": mv.CHECK_OK, "bitflip": dataclasses.replace(mv.CHECK_MISMATCH, solver_id="bitflip")}
    attestations = attest_checks(JOB, {JOB.spec.verifier: checks}, commitments)
    return paths, commitments, VerifyOutput(checks, None, 0.0, coin, attestations=attestations)


def test_a_mismatch_is_not_settled_before_its_dispute_ends(opened):
    paths, commitments, verified = opened
    with pytest.raises(OutOfOrderError, match="not disputed to their end"):
        stage_settle(JOB, {}, verified, commitments, {}, paths)
    assert not paths.ledger.exists()


def test_the_verdicts_the_transitions_fix_are_the_ones_the_ledger_applies(opened):
    paths, commitments, verified = opened
    result = dataclasses.replace(mv.RESULT, winner="challenger")
    result = dataclasses.replace(result, ruling=sign_ruling(JOB, result))
    settled = stage_settle(JOB, {}, verified, commitments, {"bitflip": result}, paths)
    assert settled.supply_before == settled.supply_after
    with Ledger(paths.ledger) as ledger:
        memos = [t.memo for tx in ledger.history(JOB.job_id) for t in tx.transfers]
    assert any("bitflip" in memo and "slash" in memo for memo in memos), memos


def test_a_dispute_counts_only_with_the_referees_signed_ruling(opened):
    """Settlement replays every dispute through ``process_rule``: no ruling, or one that says
    another winner than the game found, and nothing reaches the ledger."""
    paths, commitments, verified = opened
    result = dataclasses.replace(mv.RESULT, winner="challenger")
    with pytest.raises(InvalidMessageError, match="must be a signed Ruling"):
        stage_settle(JOB, {}, verified, commitments, {"bitflip": result}, paths)
    other = dataclasses.replace(result, winner="solver")
    lying = dataclasses.replace(result, ruling=sign_ruling(JOB, other))  # signed, but not this game's winner
    with pytest.raises(InvalidMessageError, match="does not match its game"):
        stage_settle(JOB, {}, verified, commitments, {"bitflip": lying}, paths)
    assert not paths.ledger.exists()


def test_a_check_the_coin_did_not_select_is_refused_by_settlement(opened):
    paths, commitments, verified = opened
    job = resolve_job(dataclasses.replace(JOB.spec, spot_check_probability=0.0))
    open_spot_check_coin(job, paths)
    coin = reveal_spot_check_coin(job, paths)[1]
    commitments = {sid: sign_message(dataclasses.replace(s.message, job_id=job.job_id),
                                     party_keypair(job.spec, sid)[0], sid) for sid, s in commitments.items()}
    attestations = attest_checks(job, {job.spec.verifier: verified.checks}, commitments)
    with pytest.raises(SelectionFaultError, match="'honest' was checked, but the coin did not select it"):
        stage_settle(job, {}, dataclasses.replace(verified, coin=coin, attestations=attestations), commitments, {},
                     paths)
