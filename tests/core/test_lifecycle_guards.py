"""The lifecycle refuses bad input before it does work or touches the ledger."""

import dataclasses

import pytest

from datasets.storage import exists
from proofs.types import SolverId
from verification.lifecycle import LifecycleError, run_job, stage_commit, stage_verify
from verification.paths import ArtifactPaths
from verification.solver import train
from verification.spec import SpecError, compute_job_id
from verification.strategies import Honest


def test_run_job_applies_the_spec_rules_before_any_work(minimal_spec, tmp_path):
    with pytest.raises(SpecError, match="checkpoint_interval"):
        run_job(dataclasses.replace(minimal_spec, checkpoint_interval=minimal_spec.steps * 2), ArtifactPaths(tmp_path))
    assert not any(tmp_path.iterdir())


def test_verification_refuses_a_tampered_commitment(minimal_spec, minimal_dataset, minimal_program, tmp_path):
    paths = ArtifactPaths(tmp_path)
    job_id = compute_job_id(minimal_spec)
    run = train(minimal_program, Honest(), paths.checkpoints(job_id, "honest"), job_id, SolverId("honest"))
    signed = stage_commit(minimal_spec, {SolverId("honest"): run})[SolverId("honest")]
    forged = dataclasses.replace(signed, message=dataclasses.replace(signed.message, final_state_root=bytes(32)))
    with pytest.raises(LifecycleError, match="does not verify"):
        stage_verify(minimal_spec, minimal_dataset[0], {SolverId("honest"): run}, {SolverId("honest"): forged}, paths)
    assert not paths.ledger.exists() and not exists(paths.verifier_store(job_id))


def test_a_dispute_partys_budget_is_derived_from_the_jobs_step_cost(minimal_spec):
    """A fixed 60 s budget ran out for an honest party at 1M parameters; the derived one grows with
    the interval and the measured step, and an explicit budget is kept as given."""
    from verification.lifecycle import BUDGET_FLOOR_S, get_party_time_budget

    assert minimal_spec.party_time_budget_s == 0  # derived by default
    small = get_party_time_budget(minimal_spec, 0.001)
    assert BUDGET_FLOOR_S < small < BUDGET_FLOOR_S + 1
    slow = get_party_time_budget(minimal_spec, 2.0)  # a step of a 1M-parameter reproducible job
    assert slow == BUDGET_FLOOR_S + 20 * (minimal_spec.checkpoint_interval + 10) * 2.0
    longer = dataclasses.replace(minimal_spec, checkpoint_interval=minimal_spec.checkpoint_interval * 2)
    assert get_party_time_budget(longer, 2.0) > slow
    assert get_party_time_budget(dataclasses.replace(minimal_spec, party_time_budget_s=7.5), 2.0) == 7.5
