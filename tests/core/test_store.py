"""Stage records on disk: exact round trips, and a StoreError naming the file for anything else."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.types import SolverId
from verification import store
from verification.lifecycle import stage_commit
from verification.paths import ArtifactPaths
from verification.solver import train
from verification.spec import SolverSpec, compute_job_id
from verification.strategies import BitFlip


@pytest.fixture(scope="module")
def records(minimal_spec, minimal_program, tmp_path_factory):
    paths = ArtifactPaths(tmp_path_factory.mktemp("store"))
    solo = dataclasses.replace(minimal_spec, solvers=(SolverSpec(SolverId("s"), "bitflip", {"step": 21}),))
    job_id = compute_job_id(solo)
    run = train(minimal_program, BitFlip(step=21), paths.checkpoints(job_id, "s"), job_id, SolverId("s"))
    signed = stage_commit(solo, {SolverId("s"): run})[SolverId("s")]
    store.save_run(paths, run)
    store.save_commitment(paths, signed)
    return paths, job_id, run, signed


def test_records_round_trip_exactly(records, minimal_spec):
    paths, job_id, run, signed = records
    assert store.load_run(paths, job_id, "s") == run
    assert store.load_commitment(paths, job_id, "s") == signed
    assert store.load_spec_of(paths, store.save_spec(paths, minimal_spec)) == minimal_spec


def test_a_missing_record_is_a_store_error(records):
    paths, job_id, _, _ = records
    with pytest.raises(store.StoreError, match="nobody"):
        store.load_run(paths, job_id, "nobody")


def test_an_altered_spec_record_is_refused(records, minimal_spec):
    paths, _, _, _ = records
    job_id = store.save_spec(paths, minimal_spec)
    path = store.spec_path(paths, job_id)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "steps": 48}))
    with pytest.raises(store.StoreError, match="altered"):
        store.load_spec_of(paths, job_id)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["roots", "losses", "interval", "job_id", "injected_divergence_step"]),
       value=json_values)
def test_a_run_record_of_any_shape_loads_or_names_the_file(records, field, value):
    paths, job_id, run, _ = records
    path = store.run_path(paths, job_id, "s")
    original = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(original), field: value}))
        try:
            loaded = store.load_run(paths, job_id, "s")
        except store.StoreError as exc:
            assert str(path) in str(exc)
        else:
            assert isinstance(loaded.roots, tuple)
    finally:
        path.write_text(original)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=64))
def test_commitment_bytes_of_any_kind_load_or_name_the_file(records, data):
    paths, job_id, _, _ = records
    path = store.commitment_path(paths, job_id, "s")
    original = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(original), "message": data.hex()}))
        try:
            store.load_commitment(paths, job_id, "s")
        except store.StoreError as exc:
            assert str(path) in str(exc)
    finally:
        path.write_text(original)
