"""Decoders fuzzed with hypothesis: arbitrary input gives the decoder's named error or a value that
is exactly right — never another exception, never a silently wrong value.

Complements ``tests/proofs`` (canonical messages, BLS keys and signatures, Merkle proof dicts): here
the job spec, the report, Merkle proofs of any JSON shape, dataset shards and checkpoint stores
under random corruption, and the progress record of a partial checkpoint store."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datasets.sharding import DatasetIntegrityError, read_shard, write_shards
from datasets.sources import load_source
from proofs.hashing import SHA256
from proofs.merkle import MalformedProofError, MerkleProof
from verification.execution.checkpoints import (
    CheckpointError,
    open_partial,
    partial_path,
    read_checkpoint,
)
from verification.report import ReportError, read_report
from verification.settlement import EconomicTerms
from verification.solver import train
from verification.spec import (
    JobSpec,
    SolverSpec,
    SpecError,
    get_type_errors,
    spec_from_dict,
)
from verification.strategies import Honest

FUZZ = settings(max_examples=100, deadline=None, report_multiple_bugs=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.none() | st.booleans() | st.integers(-(2**66), 2**66) | st.floats() | st.text(max_size=6)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


# -- the job spec ------------------------------------------------------------------------------
def is_well_typed(obj: object) -> bool:
    return not get_type_errors(obj)


spec_fields = [f.name for f in dataclasses.fields(JobSpec)] + ["preset"]
economics = st.dictionaries(st.sampled_from([f.name for f in dataclasses.fields(EconomicTerms)] + ["x"]),
                            json_values, max_size=3)
solvers = st.lists(json_values | st.fixed_dictionaries(
    {"solver_id": json_values}, optional={"strategy": json_values, "params": json_values}), max_size=3)
spec_dicts = json_values | st.dictionaries(
    st.sampled_from(spec_fields), json_values | economics | solvers, max_size=4)


@FUZZ
@example({"steps": "x"})
@example({"model_params": 3})
@given(spec_dicts)
def test_spec_from_dict_gives_a_well_typed_spec_or_a_spec_error(data):
    try:
        spec = spec_from_dict(data)
    except SpecError:
        return
    assert is_well_typed(spec), spec


def test_the_type_predicate_rejects_what_it_must():
    assert is_well_typed(JobSpec())
    assert not is_well_typed(dataclasses.replace(JobSpec(), steps="x"))
    assert not is_well_typed(dataclasses.replace(JobSpec(), lr=True))
    assert not is_well_typed(dataclasses.replace(JobSpec(), solvers=(SolverSpec("a", 3),)))


# -- the report --------------------------------------------------------------------------------
@FUZZ
@example(b"[1]")
@example(b"\xff")
@given(st.binary(max_size=40) | json_values.map(lambda v: json.dumps(v).encode())
       | st.dictionaries(st.sampled_from(["schema", "job_id", "solvers", "ledger"]), json_values).map(
           lambda d: json.dumps({**d, "schema": "pinpoint.report/1"}).encode()))
def test_read_report_gives_a_report_or_a_report_error(tmp_path, data):
    path = tmp_path / "report.json"
    path.write_bytes(data)
    try:
        report = read_report(path)
    except ReportError as exc:
        assert str(path) in str(exc)
        return
    assert {"schema", "job_id", "spec", "dataset", "solvers", "ledger", "timings_s"} <= set(report)


# -- Merkle proofs of any JSON shape -----------------------------------------------------------
@FUZZ
@given(json_values | st.fixed_dictionaries({"index": json_values, "size": json_values, "path": json_values}))
def test_merkle_proof_from_any_json_value(data):
    try:
        proof = MerkleProof.from_dict(data)
    except MalformedProofError:
        return
    assert MerkleProof.from_dict(proof.to_dict()) == proof


# -- stores under random corruption ------------------------------------------------------------
def files_of(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob("*") if p.is_file())


corruptions = st.tuples(st.integers(0, 10**6), st.floats(0, 1, exclude_max=True), st.integers(0, 255))


@contextmanager
def corrupted(store: Path, choice: tuple[int, float, int]) -> Iterator[None]:
    """Flip bits of one byte of one file of ``store`` (``mask`` 0: delete the file); undone after."""
    pick, where, mask = choice
    files = sorted(p for p in store.rglob("*") if p.is_file())
    path = files[pick % len(files)]
    original = path.read_bytes()
    data = bytearray(original)
    try:
        if mask == 0:
            path.unlink()
        elif data:
            data[int(where * len(data))] ^= mask
            path.write_bytes(bytes(data))
        yield
    finally:
        path.write_bytes(original)


def copy_once(source: str | Path, copy: Path) -> Path:
    """``copy`` of ``source``, made at the first example (hypothesis reuses the test's tmp_path)."""
    if not copy.exists():
        shutil.copytree(source, copy)
    return copy


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    source = load_source("synthetic", num_samples=300, input_dim=6)
    return write_shards(source, tmp_path_factory.mktemp("shards"), 2, SHA256)


@settings(FUZZ, max_examples=100)
@given(corruptions)
def test_a_corrupted_shard_is_named_or_reads_exactly(dataset, tmp_path, choice):
    info = dataset.shards[1]
    expected = read_shard(info, SHA256)
    copy = copy_once(info.path, tmp_path / "shard")
    with corrupted(copy, choice):
        try:
            x, y = read_shard(dataclasses.replace(info, path=str(copy)), SHA256)
        except DatasetIntegrityError as exc:
            assert f"shard 1 at {str(copy)!r}" in str(exc)
            return
    assert np.array_equal(x, expected[0]) and np.array_equal(y, expected[1])


@pytest.fixture(scope="module")
def finished(tiny_spec, minimal_dataset, tmp_path_factory):
    from verification.execution.program import load_program

    program = load_program(tiny_spec, minimal_dataset[0])
    return train(program, Honest(), tmp_path_factory.mktemp("store") / "c.zarr", "job", "s")


# a corrupted group's metadata hides its arrays from zarr (with this warning): the root check catches it
@pytest.mark.filterwarnings("ignore:Object at .* is not recognized:UserWarning")
@settings(FUZZ, max_examples=60)
@given(corruptions)
def test_a_corrupted_checkpoint_store_is_named_or_reads_exactly(finished, tmp_path, choice):
    copy = copy_once(finished.checkpoint_path, tmp_path / "c.zarr")
    with corrupted(copy, choice):
        for index, root in enumerate(finished.roots):
            try:
                state = read_checkpoint(copy, index)
            except CheckpointError as exc:
                assert str(copy) in str(exc)
                continue
            assert state.root() == root and state.step == index * finished.interval


PROGRESS = ("interval", "num_checkpoints", "hash_name", "run", "layout")


@FUZZ
@given(st.dictionaries(st.sampled_from(PROGRESS), json_values, min_size=1, max_size=3))
def test_a_partial_stores_progress_record_decodes_or_is_named(finished, tmp_path, attrs):
    store = tmp_path / "c.zarr"
    metadata = copy_once(finished.checkpoint_path, Path(partial_path(store))) / "zarr.json"
    original = metadata.read_bytes()
    zarr.open_group(str(partial_path(store)), mode="r+").attrs.update(attrs)
    try:
        partial = open_partial(store)
    except CheckpointError as exc:
        assert str(partial_path(store)) in str(exc)
        return
    finally:
        metadata.write_bytes(original)
    assert 1 <= partial.written == len(partial.roots) <= partial.num_checkpoints
    assert len(partial.losses) == (partial.written - 1) * partial.interval
