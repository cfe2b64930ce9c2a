"""Proof-of-Learning as published (Jia et al. 2021), Zhang et al.'s crafted-batch spoof (2022),
and Pinpoint's exact check beside them (``verification.pol``)."""

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from datasets.sharding import compute_arrays_root
from datasets.sources import load_source
from proofs.types import Step
from verification.execution.state import State
from verification.pol import (
    PAPER,
    CraftingBudget,
    DataReference,
    PolData,
    PolError,
    Reason,
    compute_ks_p_value,
    compute_pol_table,
    compute_update_magnitudes,
    craft_spoof,
    get_default_init_bounds,
    get_job_data,
    get_study_spec,
    make_program,
    make_proof,
    render_pol_table,
    select_top_q,
    verify_exact,
    verify_pol,
)
from verification.tolerance import (
    Distances,
    compute_honest_trace,
    is_within_tolerance,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def table():
    return {(r["trace"], r["verifier"]): r for r in compute_pol_table(get_study_spec())}


@pytest.fixture(scope="module")
def job():
    """The study job's program, its source and its honest proof."""
    source = load_source("digits")
    program = make_program(get_study_spec(), source)
    with program.settings():
        proof = make_proof(program, compute_honest_trace(program), get_job_data(program, source))
    return program, source, proof


def verdict(table, trace, verifier):
    return table[(trace, verifier)]["verdict"]


def test_the_crafted_spoof_passes_pol_at_the_paper_thresholds_and_fails_exact_roots(table):
    spoof = "Zhang et al. crafted batches"
    pol = verdict(table, spoof, "PoL, paper thresholds")
    assert pol.accepted and pol.checked and all(is_within_tolerance(d, PAPER.thresholds) for d in pol.distances)
    exact = verdict(table, spoof, "Pinpoint, exact roots")
    assert not exact.accepted and exact.reason is Reason.STATE_ROOT and exact.checked == (0,)


def test_the_crafted_spoof_fails_calibrated_thresholds_and_the_job_data_root(table):
    spoof = "Zhang et al. crafted batches"
    assert verdict(table, spoof, "PoL, calibrated x10").reason is Reason.DISTANCE
    job_root = verdict(table, spoof, "PoL, paper thresholds, job's data root")
    assert job_root.reason is Reason.DATA_HASH and job_root.steps_reexecuted == 0


def test_interpolation_alone_fails_the_paper_cosine_threshold(table):
    pol = verdict(table, "interpolation only", "PoL, paper thresholds")
    assert pol.reason is Reason.DISTANCE
    assert max(d.cosine for d in pol.distances) > PAPER.thresholds.cosine
    assert not verdict(table, "interpolation only", "Pinpoint, exact roots").accepted


def test_honest_work_is_accepted_by_every_verifier(table):
    honest = [r["verdict"] for (trace, _), r in table.items() if trace == "honest"]
    assert len(honest) == 4 and all(v.accepted for v in honest)


def test_the_readme_table_is_the_one_the_code_renders(table):
    assert render_pol_table(list(table.values())) in README.read_text()


def test_the_spoofers_work_is_counted_per_objective_evaluation(job):
    program, _, _ = job
    spec = dataclasses.replace(program.spec, steps=16)
    budget = CraftingBudget(evaluations=3)
    short = make_program(spec, load_source("digits"))
    with short.settings():
        target = short.run(short.init_state(), Step(16))
        spoof = craft_spoof(short, target, budget)
    assert spoof.gradient_evaluations == 2 * 3 * spec.checkpoint_interval  # intervals x evaluations x k
    assert len(spoof.proof.data.sequence) == 16 and spoof.perturbation_rms > 0
    claimed = spoof.proof.checkpoints[-1].params()
    assert all(torch.equal(claimed[n], p) for n, p in target.params().items())  # it claims the model it holds


def test_the_data_hash_rejects_another_dataset(job):
    program, source, proof = job
    x = source.x.copy()
    x[0, 0] += 1.0 / 16  # one pixel of one sample
    other = PolData(torch.from_numpy(x), proof.data.y, proof.data.sequence)
    forged = make_proof(program, list(proof.checkpoints), other)  # a consistent proof on other data
    assert verify_pol(program, forged, PAPER, DataReference.JOB).reason is Reason.DATA_HASH
    assert verify_pol(program, forged, PAPER, DataReference.DECLARED).accepted  # its own hash matches
    swapped = dataclasses.replace(proof, data=other)  # data changed after the hash was recorded
    assert verify_pol(program, swapped, PAPER, DataReference.DECLARED).reason is Reason.DATA_HASH


@pytest.mark.parametrize("scale", [0.0, 0.5], ids=["zeros", "half-scale"])
def test_the_initialisation_check_rejects_a_non_random_init(job, scale):
    program, _, proof = job
    start = proof.checkpoints[0]
    tensors = {n: t * scale if n.startswith("param/") else t for n, t in start.tensors.items()}
    forged = dataclasses.replace(proof, checkpoints=(State(start.step, tensors, start.rng), *proof.checkpoints[1:]))
    result = verify_pol(program, forged)
    assert result.reason is Reason.INITIALISATION and result.init_p_value < PAPER.init_p_value
    assert result.steps_reexecuted == 0
    assert verify_exact(program, forged.checkpoints).reason is Reason.INITIALISATION


def test_the_honest_proof_is_accepted_and_costs_the_top_q_intervals(job):
    program, _, proof = job
    result = verify_pol(program, proof)
    assert result.accepted and result.init_p_value >= PAPER.init_p_value
    assert result.checked == select_top_q(compute_update_magnitudes(proof.checkpoints), PAPER.q)
    assert result.steps_reexecuted == len(result.checked) * program.spec.checkpoint_interval
    assert all(d == Distances(0.0, 0.0, 0.0, 0.0) for d in result.distances)  # same environment
    assert verify_exact(program, proof.checkpoints).accepted


def test_top_q_takes_the_largest_updates_per_metric_united():
    magnitudes = [Distances(1, 1, 1, 9e-3), Distances(5, 5, 1, 1e-3), Distances(4, 2, 7, 2e-3), Distances(3, 3, 6, 0)]
    assert select_top_q(magnitudes, 1) == (0, 1, 2)  # cosine: 0; l1, l2: 1; linf: 2
    assert select_top_q(magnitudes, 2) == (0, 1, 2, 3)
    # updates equal to 3 significant digits tie, and the earlier interval wins
    assert select_top_q([Distances(1.0, 1, 1, 0), Distances(1.0 + 1e-9, 1, 1, 0)], 1) == (0,)


def test_the_cosine_metric_is_one_minus_cosine_similarity():
    parallel_enough = Distances(0.0, 0.0, 0.0, 1 - 0.9995)
    assert is_within_tolerance(parallel_enough, PAPER.thresholds)
    assert not is_within_tolerance(dataclasses.replace(parallel_enough, cosine=1 - 0.998), PAPER.thresholds)


def test_the_ks_p_value_matches_kolmogorovs_critical_values():
    n = 10**6
    assert compute_ks_p_value(1.358 / n**0.5, n) == pytest.approx(0.05, abs=1e-3)
    assert compute_ks_p_value(1.628 / n**0.5, n) == pytest.approx(0.01, abs=1e-3)
    assert compute_ks_p_value(0.0, 10) == 1.0


def test_the_data_root_is_the_one_write_shards_commits(minimal_spec, minimal_dataset):
    commitment, _ = minimal_dataset
    source = load_source(minimal_spec.dataset, **minimal_spec.dataset_params)
    assert compute_arrays_root(source.x, source.y, minimal_spec.num_shards, minimal_spec.hashing) == commitment.root


def test_models_and_optimizers_outside_the_studied_ones_are_refused_by_name(job):
    program, _, _ = job
    renamed = copy.copy(program)
    renamed.spec = dataclasses.replace(program.spec, model="transformer")
    with pytest.raises(PolError, match="transformer"):
        get_default_init_bounds(renamed)
    renamed.spec = dataclasses.replace(program.spec, optimizer="adam")
    with pytest.raises(PolError, match="adam"):
        craft_spoof(renamed, program.init_state())
