"""Equivocation: two valid signatures by one solver over conflicting commitments of one job are
slashed on the evidence alone, with no spot check, re-execution or dispute."""

import dataclasses
import json

from datasets.storage import exists
from proofs.types import SolverId
from verification import store
from verification.lifecycle import open_spot_check_coin, party_keypair, run_job, stage_commit
from verification.paths import ArtifactPaths
from verification.solver import train
from verification.spec import compute_job_id, spec_from_dict
from verification.strategies import Honest
from verification.verifier import find_equivocation

SPEC = {"preset": "minimal", "spot_check_probability": 0.0,
        "solvers": ["honest", {"solver_id": "two-faced", "strategy": "equivocate"}]}


def test_an_equivocator_is_slashed_without_any_re_execution(tmp_path):
    spec = spec_from_dict(SPEC)
    paths = ArtifactPaths(tmp_path)
    report = run_job(spec, paths)
    solvers = {s["solver_id"]: s for s in report["solvers"]}
    assert solvers["honest"]["outcome"] == "unverified"  # p = 0: nobody re-executes anything
    assert solvers["two-faced"]["outcome"] == "slashed"
    assert solvers["two-faced"]["spot_check"]["equivocation"] and solvers["two-faced"]["dispute"] is None
    assert not exists(paths.verifier_store(compute_job_id(spec)))
    assert report["ledger"]["burned"] > 0
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]


def test_a_forged_second_signature_is_no_evidence(minimal_spec, minimal_program, tmp_path):
    spec = dataclasses.replace(minimal_spec, solvers=minimal_spec.solvers[:1])
    paths = ArtifactPaths(tmp_path)
    job_id = compute_job_id(spec)
    run = train(minimal_program, Honest(), paths.checkpoints(job_id, "honest"), job_id, SolverId("honest"))
    open_spot_check_coin(spec, paths)
    signed = stage_commit(spec, {SolverId("honest"): run}, paths)[SolverId("honest")]
    _, pk = party_keypair(spec, "honest")
    assert find_equivocation(signed, store.read_bulletin(paths, job_id), pk) is None  # its own copy only
    other = dataclasses.replace(signed, message=dataclasses.replace(signed.message, trace_root=bytes(32)))
    assert find_equivocation(signed, [other], pk) is None  # the signature does not cover this message
    path = store.published_path(paths, job_id, "honest")
    path.write_text(path.read_text() + json.dumps(store.commitment_record(other)) + "\n")
    assert find_equivocation(signed, store.read_bulletin(paths, job_id), pk) is None
