"""The spot-check coin: the verifier's commit-reveal, mixed with the solver's signature.

The property that matters: a solver cannot know before it commits whether it will be checked, so
an adaptive cheater (``tests/game/adaptive_cheater.py``) is caught at the rate ``p``; and the
verifier cannot redraw its coin once the solvers committed, which settlement checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import stat

import pytest

from proofs.hashing import SHA256
from proofs.types import JobId, PartyId, SolverId
from tests.game.adaptive_cheater import build_adaptive_job, predicts_check
from verification import store
from verification.lifecycle import (
    LifecycleError,
    VerifyOutput,
    open_spot_check_coin,
    reveal_spot_check_coin,
    run_job,
    stage_commit,
    stage_settle,
)
from verification.paths import ArtifactPaths
from verification.solver import train
from verification.spec import SolverSpec, compute_job_id, get_preset
from verification.strategies import Honest
from verification.verifier import (
    SECRET_SIZE,
    CoinCommitment,
    CoinReveal,
    compute_check_intervals,
    compute_coin_commitment,
    compute_selection_faults,
    is_selected_for_check,
    is_valid_coin_reveal,
    not_checked,
)

JOB, VERIFIER, H = JobId("job-0123456789ab"), PartyId("verifier"), SHA256


def secret(i: int) -> bytes:
    return hashlib.sha256(b"test secret %d" % i).digest()


def published(s: bytes) -> CoinCommitment:
    return CoinCommitment(JOB, VERIFIER, compute_coin_commitment(JOB, VERIFIER, s, H))


def test_a_reveal_opens_only_its_own_commitment():
    s = secret(0)
    assert is_valid_coin_reveal(published(s), CoinReveal(JOB, VERIFIER, s), H)
    assert not is_valid_coin_reveal(published(s), CoinReveal(JOB, VERIFIER, secret(1)), H)
    assert not is_valid_coin_reveal(published(s), CoinReveal(JobId("job-other"), VERIFIER, s), H)
    assert not is_valid_coin_reveal(published(s), CoinReveal(JOB, PartyId("mallory"), s), H)
    short = s[:16]
    assert not is_valid_coin_reveal(CoinCommitment(JOB, VERIFIER, compute_coin_commitment(JOB, VERIFIER, short, H)),
                                    CoinReveal(JOB, VERIFIER, short), H)


def test_selection_follows_p_and_changes_with_the_secret_and_the_signature():
    """Over 4,000 secrets the selection rate is p (a binomial bound the test misses with
    probability below 1e-6), and each input moves the draw."""
    n, p = 4000, 0.3
    hits = sum(is_selected_for_check(CoinReveal(JOB, VERIFIER, secret(i)), SolverId("s"), b"sig", p, H)
               for i in range(n))
    assert abs(hits - n * p) < 5 * math.sqrt(n * p * (1 - p))
    draws = {tuple(compute_check_intervals(CoinReveal(JOB, VERIFIER, secret(i)), SolverId("s"), sig, 10, 3, H))
             for i in range(20) for sig in (b"a", b"b")}
    assert len(draws) > 20  # neither input alone fixes the intervals
    assert all(len(set(d)) == 3 and all(0 <= i < 10 for i in d) for d in draws)
    reveal = CoinReveal(JOB, VERIFIER, secret(0))
    assert is_selected_for_check(reveal, SolverId("s"), b"sig", 1.0, H)
    assert not is_selected_for_check(reveal, SolverId("s"), b"sig", 0.0, H)


def test_the_coin_is_written_once_and_kept_from_other_readers(minimal_spec, tmp_path):
    paths = ArtifactPaths(tmp_path)
    (first,) = open_spot_check_coin(minimal_spec, paths)  # one verifier: one coin
    (again,) = open_spot_check_coin(minimal_spec, paths)  # opening the job again cannot redraw the coin
    assert first == again
    path = store.coin_secret_path(paths, compute_job_id(minimal_spec), minimal_spec.verifier)
    assert len(path.read_bytes()) == SECRET_SIZE and stat.S_IMODE(path.stat().st_mode) == 0o600
    published_, reveal = reveal_spot_check_coin(minimal_spec, paths)
    assert published_ == first and is_valid_coin_reveal(first, reveal, minimal_spec.hashing)
    assert not list(path.parent.glob("*.tmp"))


def test_solvers_cannot_commit_before_the_verifier_committed_to_its_coin(minimal_spec, minimal_program, tmp_path):
    spec = dataclasses.replace(minimal_spec, solvers=minimal_spec.solvers[:1])
    paths = ArtifactPaths(tmp_path)
    job_id = compute_job_id(spec)
    run = train(minimal_program, Honest(), paths.checkpoints(job_id, "honest"), job_id, SolverId("honest"))
    with pytest.raises(LifecycleError, match=f"job {job_id} has no spot-check coin"):
        stage_commit(spec, {SolverId("honest"): run}, paths)
    assert not store.published_path(paths, job_id, "honest").exists()
    assert not store.coin_path(paths, job_id, spec.verifier).exists()


def test_settlement_refuses_checks_the_coin_did_not_select_and_a_reveal_that_does_not_open(
        minimal_spec, minimal_program, tmp_path):
    spec = dataclasses.replace(minimal_spec, solvers=minimal_spec.solvers[:1], spot_check_probability=0.0)
    paths = ArtifactPaths(tmp_path)
    job_id = compute_job_id(spec)
    run = train(minimal_program, Honest(), paths.checkpoints(job_id, "honest"), job_id, SolverId("honest"))
    open_spot_check_coin(spec, paths)
    runs = {SolverId("honest"): run}
    commitments = stage_commit(spec, runs, paths)
    coin = reveal_spot_check_coin(spec, paths)[1]
    unchecked = {SolverId("honest"): not_checked(SolverId("honest"), spec.spot_check_policy)}
    checked = {SolverId("honest"): dataclasses.replace(unchecked[SolverId("honest")], checked=True)}
    with pytest.raises(LifecycleError, match="'honest' was checked, but the coin did not select it"):
        stage_settle(spec, runs, VerifyOutput(checked, None, 0.0, coin), commitments, {}, paths)
    redrawn = dataclasses.replace(coin, secret=secret(0))
    with pytest.raises(LifecycleError, match="reveal does not open its coin commitment"):
        stage_settle(spec, runs, VerifyOutput(unchecked, None, 0.0, redrawn), commitments, {}, paths)
    with pytest.raises(LifecycleError, match="reveal does not open"):
        stage_settle(spec, runs, VerifyOutput(unchecked, None, 0.0, None), commitments, {}, paths)
    assert not paths.ledger.exists()
    assert not compute_selection_faults(store.load_coin_commitment(paths, job_id, spec.verifier), coin, commitments, unchecked,
                                        0.0, spec.hashing)


def test_the_secret_coin_is_independent_of_the_public_prediction():
    """Among solvers that the public coin says are unobserved, the secret coin still selects a
    share p (a binomial bound missed with probability below 1e-6): what the cheater can compute
    tells it nothing."""
    p, spec, unobserved = 0.5, dataclasses.replace(get_preset("minimal"), spot_check_probability=0.5), []
    job_id = compute_job_id(spec)
    for i in range(6000):
        if not predicts_check(spec, f"s{i}", p, job_id):
            unobserved.append(f"s{i}")
    reveal = CoinReveal(compute_job_id(spec), PartyId(spec.verifier), secret(3))
    n = len(unobserved)
    hits = sum(is_selected_for_check(reveal, SolverId(sid), b"sig-" + sid.encode(), p, H) for sid in unobserved)
    assert n > 2500 and abs(hits - n * p) < 5 * math.sqrt(n * p * (1 - p))


def test_an_adaptive_cheater_is_caught_exactly_when_the_secret_coin_selects_it(minimal_spec, tmp_path):
    """On the real pipeline, with a fixed verifier secret (stored before the job opens; opening
    keeps the first coin). Every cheater believed itself unobserved, so under the old public coin
    none would be checked. Under the secret coin each is slashed exactly when the coin, recomputed
    from the report's revealed secret and its signature, selects it; otherwise it goes unverified.
    (How many are selected varies by machine: the signatures bind the environment. The rate is
    ``benchmarks/test_bench_detection.py``'s measurement.)"""
    base = dataclasses.replace(minimal_spec, steps=8, checkpoint_interval=4,
                               solvers=(SolverSpec(SolverId("honest"), "honest"),))
    spec, paths = build_adaptive_job(base, 0.5, 3), ArtifactPaths(tmp_path)
    store.save_coin_secret(paths, compute_job_id(spec), spec.verifier, secret(7))
    report = run_job(spec, paths)
    coin = CoinReveal(report["job_id"], spec.verifier, bytes.fromhex(report["spot_check_coin"]["secret"]))
    assert coin.secret == secret(7)
    for s in report["solvers"]:
        if s["solver_id"] == "honest":
            assert s["outcome"] in ("paid", "unverified") and s["dispute"] is None
            continue
        assert s["injected_divergence_step"] == 1  # it cheated: it predicted no check
        selected = is_selected_for_check(coin, s["solver_id"], bytes.fromhex(s["signature"]), 0.5, spec.hashing)
        assert s["outcome"] == ("slashed" if selected else "unverified"), s["solver_id"]
        assert (s["dispute"] or {}).get("first_divergent_step") == (1 if selected else None)
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]
