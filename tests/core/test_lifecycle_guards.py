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
