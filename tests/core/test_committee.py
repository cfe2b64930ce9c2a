"""A job's verifier committee: several verifiers, each with its own coin, attesting with BLS.

Each verifier commits to a spot-check coin of its own before the solvers commit and checks the
solvers its coin selects; each signs an ``Attestation`` of every conclusive check, and matching
attestations aggregate into one signature (consensus-specs' aggregate attestations, checked with
FastAggregateVerify). Settlement verifies every aggregate, pays every member its fee, and pays
the jackpot for a forced error to the verifier that challenged it (Truebit §4.4).
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from proofs.messages import message_from_json, message_to_json, verify_aggregate_attestation
from proofs.types import PartyId, SolverId
from verification import store
from verification.job import get_committee, get_verifier_registry, resolve_job
from verification.lifecycle import (
    run_job,
    stage_commit,
    stage_settle,
    stage_shard,
    stage_train,
    stage_verify,
)
from verification.paths import ArtifactPaths
from verification.protocol import ForgedMessageError
from verification.settlement import Ledger
from verification.settlement.accounts import get_party_account
from verification.settlement.rules import EconomicTerms
from verification.spec import (
    SolverSpec,
    SpecError,
    compute_job_id,
    get_preset,
    spec_from_dict,
    validate_spec,
)
from verification.verifier import CoinReveal, is_selected_for_check

ATTESTERS = (PartyId("verifier-2"), PartyId("verifier-3"))


# -- the spec ---------------------------------------------------------------------------------------
def test_a_spec_names_its_committee_and_a_job_registers_every_verifiers_key():
    spec = spec_from_dict({"preset": "minimal", "attesters": ["verifier-2", "verifier-3"]})
    assert spec.attesters == ATTESTERS and get_committee(resolve_job(spec)) == ("verifier", *ATTESTERS)
    job = resolve_job(spec)
    assert {"verifier", *ATTESTERS} <= {p for p, _ in job.public_keys}
    assert set(get_verifier_registry(job).keys) == {"verifier", *ATTESTERS}
    assert compute_job_id(spec) != compute_job_id(get_preset("minimal"))  # the committee is part of the job
    # A job without attesters keeps the id it had before committees existed (the field is optional).
    assert compute_job_id(dataclasses.replace(spec, attesters=())) == compute_job_id(get_preset("minimal"))
    assert len(get_committee(resolve_job(get_preset("default")))) == 3  # the demo job shows an aggregate


@pytest.mark.parametrize("attesters, message", [
    (("verifier-2", "verifier-2"), "verifier ids must be distinct"),
    (("verifier",), "verifier ids must be distinct"),
    (("honest",), "used both as solver and submitter/verifier"),
    (("referee",), "'referee' is the referee's"),
    (("../up",), "unsafe names attesters\\[0\\]"),
])
def test_a_committee_with_a_repeated_solver_referee_or_unsafe_id_is_refused(attesters, message):
    with pytest.raises(SpecError, match=message):
        validate_spec(dataclasses.replace(get_preset("minimal"), attesters=tuple(PartyId(a) for a in attesters)))
    with pytest.raises(SpecError, match="attesters must be a list of verifier ids"):
        spec_from_dict({"preset": "minimal", "attesters": "verifier-2"})


# -- stages ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    """A minimal job with three verifiers (every solver selected), verified stage by stage."""
    spec = dataclasses.replace(get_preset("minimal"), attesters=ATTESTERS)
    paths = ArtifactPaths(tmp_path_factory.mktemp("committee"))
    job = resolve_job(spec)
    dataset = stage_shard(job, paths)
    runs = stage_train(job, dataset, paths)
    commitments = stage_commit(job, runs, paths)
    return job, paths, runs, commitments, stage_verify(job, dataset, runs, commitments, paths)


def test_each_verifier_checks_with_its_own_coin_and_the_committee_attests_in_aggregates(verified):
    job, paths, _, commitments, out = verified
    assert [a.verifier for a in out.attesters] == list(ATTESTERS)
    for reveal in [out.coin, *(a.coin for a in out.attesters)]:
        published = store.load_coin_commitment(paths, job.job_id, reveal.verifier)
        assert published.verifier == reveal.verifier  # each its own coin, committed when the job opened
    assert len({out.coin.secret, *(a.coin.secret for a in out.attesters)}) == 3
    for attester in out.attesters:  # p = 1: an attester checks every solver, by the interval policy
        assert all(c.checked and c.policy == "interval" for c in attester.checks.values())
    registry = get_verifier_registry(job)
    assert all(verify_aggregate_attestation(a, registry) for a in out.attestations)
    honest = [a for a in out.attestations if a.solver_id == "honest"]
    assert len(honest) == 1 and honest[0].verdict and honest[0].verifier_ids == ("verifier", *ATTESTERS)
    assert honest[0].trace_root == commitments["honest"].message.trace_root
    assert [message_from_json(type(a), message_to_json(a)) for a in out.attestations] == list(out.attestations)
    assert store.load_attestations(paths, job.job_id) == out.attestations  # the job's records keep them


@pytest.mark.parametrize("forge", ["verdict", "key", "signer"])
def test_settlement_refuses_a_forged_aggregate_naming_the_job_and_the_verifier(verified, forge):
    job, paths, runs, commitments, out = verified
    honest = next(a for a in out.attestations if a.solver_id == "honest")
    forged = {"verdict": dataclasses.replace(honest, verdict=False),  # the lead's slot carries verifier-2's key:
              "key": dataclasses.replace(honest, public_keys=(honest.public_keys[1], *honest.public_keys[1:])),
              "signer": dataclasses.replace(honest, verifier_ids=("mallory", *honest.verifier_ids[1:]))}[forge]
    attestations = tuple(forged if a is honest else a for a in out.attestations)
    with pytest.raises(ForgedMessageError) as raised:
        stage_settle(job, runs, dataclasses.replace(out, attestations=attestations), commitments, {}, paths)
    text = str(raised.value)
    assert job.job_id in text and ("'verifier'" in text or "'mallory'" in text)
    assert not paths.ledger.exists()  # nothing settled


# -- end to end --------------------------------------------------------------------------------------
def test_the_default_job_settles_with_three_verifiers_attesting_and_paid(tmp_path):
    """The demo job: the lead replicates, two attesters check intervals; every member attests to
    honest in one aggregate, each is paid its fee, supply is conserved, a rerun settles nothing."""
    spec = get_preset("default")
    paths = ArtifactPaths(tmp_path)
    report = run_job(spec, paths)
    verifiers = {v["verifier"]: v for v in report["verifiers"]}
    assert list(verifiers) == ["verifier", *ATTESTERS] and verifiers["verifier"]["role"] == "lead"
    honest = [a for a in report["attestations"] if a["solver_id"] == "honest"]
    assert honest and honest[0]["verdict"] and honest[0]["signers"] == ["verifier", *ATTESTERS]
    by_solver = {s["solver_id"]: s for s in report["solvers"]}
    assert by_solver["lazy"]["outcome"] == by_solver["bitflip"]["outcome"] == "slashed"
    assert by_solver["lazy"]["challenger"] == "verifier"  # the lead replicated: it found the mismatch first
    ledger = report["ledger"]
    assert ledger["supply_before"] == ledger["supply_after"]
    fees = [m["to"] for m in ledger["movements"] if m["memo"] == "verifier fee"]
    assert sorted(fees) == sorted(get_party_account(v) for v in verifiers)
    again = run_job(spec, paths)
    assert again["ledger"]["already_settled"] and again["ledger"]["supply_after"] == ledger["supply_after"]


def find_secret(job_id, verifier, solver_id, signature, p, hashing, selected: bool) -> bytes:
    for i in range(10_000):
        secret = hashlib.sha256(b"committee" + i.to_bytes(4, "big")).digest()
        if is_selected_for_check(CoinReveal(job_id, verifier, secret), solver_id, signature, p, hashing) == selected:
            return secret
    raise AssertionError("no secret found")


def test_a_forced_error_the_lead_skipped_is_found_by_an_attester_who_is_paid_the_jackpot(tmp_path):
    """Every solver is drawn for a forced error. The lead verifier's coin skips the solver, an
    attester's selects it and checks every interval: it finds the flipped final state, challenges,
    and the jackpot pays it; the report shows the lead skipped it. (The coins' secrets are stored
    before the job opens, chosen against the solver's signature from a first run of the job.)"""
    base = dataclasses.replace(get_preset("minimal"), steps=8, checkpoint_interval=4, spot_check_probability=0.5,
                               spot_check_policy="interval", intervals_per_check=2, attesters=ATTESTERS[:1],
                               solvers=(SolverSpec(SolverId("honest"), "honest"),),
                               economics=EconomicTerms(forced_error_rate_bps=10_000))
    job_id = compute_job_id(base)
    first = run_job(base, ArtifactPaths(tmp_path / "first"))
    signature = bytes.fromhex(first["solvers"][0]["signature"])
    paths = ArtifactPaths(tmp_path / "second")
    for verifier, selected in (("verifier", False), (ATTESTERS[0], True)):
        store.save_coin_secret(paths, job_id, PartyId(verifier), find_secret(
            job_id, PartyId(verifier), SolverId("honest"), signature, 0.5, base.hashing, selected))
    report = run_job(base, paths)
    honest = report["solvers"][0]
    assert honest["signature"] == first["solvers"][0]["signature"]
    assert honest["spot_checks"] == {"verifier": "skipped", "verifier-2": "mismatch"}
    assert honest["forced_error"] == {"found": True, "paid_to": "verifier-2", "skipped_by": ["verifier"]}
    assert honest["outcome"] == "paid" and honest["challenger"] == "verifier-2"
    assert [v["skipped"] for v in report["verifiers"]] == [["honest"], []]
    assert [(a["verdict"], a["signers"]) for a in report["attestations"]] == [(False, ["verifier-2"])]
    ledger = report["ledger"]
    jackpot = [m for m in ledger["movements"] if m["from"] == "jackpot"]
    assert [m["to"] for m in jackpot] == [get_party_account(PartyId("verifier-2"))] and ledger["jackpot_out"] > 0
    assert ledger["supply_before"] == ledger["supply_after"]
    with Ledger(paths.ledger) as book:
        assert book.balance(get_party_account(PartyId("verifier-2"))) > book.balance(
            get_party_account(PartyId("verifier")))
