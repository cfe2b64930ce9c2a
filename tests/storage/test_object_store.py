"""Artifacts on an fsspec filesystem (``datasets.storage``): the zarr stores of a job live at a URL
(``memory://`` here, ``s3://`` in production) and the job gives the same roots and verdicts as on
the local disk; a store that is only partly written or partly published is never read as complete."""

from __future__ import annotations

import uuid

import pytest

from datasets import storage
from datasets.sharding import (
    DatasetIntegrityError,
    ShardInfo,
    compute_shard_root,
    read_shard,
    write_shards,
)
from datasets.sources import load_source
from proofs.hashing import SHA256
from tests.reliability.test_resume import Crash, CrashAt
from verification.execution.checkpoints import (
    CheckpointError,
    open_partial,
    partial_path,
    read_checkpoint,
    read_roots,
)
from verification.lifecycle import LifecycleError, run_job
from verification.paths import ArtifactPaths
from verification.solver import train
from verification.spec import compute_job_id
from verification.strategies import Honest

VERDICT_FIELDS = ("solver_id", "strategy", "trace_root", "final_state_root", "signature_valid", "outcome")
# where a transcript was written, and its head: the hash chain covers the moves' wall-clock times
RUN_SPECIFIC = ("transcript", "transcript_head")


@pytest.fixture
def memory_store():
    """A fresh ``memory://`` prefix, emptied afterwards (the memory filesystem is process-wide)."""
    location = f"memory://pinpoint-test-{uuid.uuid4().hex}"
    yield location
    storage.remove(location)


@pytest.fixture(scope="module")
def local_report(minimal_spec, tmp_path_factory):
    return run_job(minimal_spec, ArtifactPaths(tmp_path_factory.mktemp("local")))


@pytest.fixture(scope="module")
def program(tiny_spec, minimal_dataset):
    from verification.execution.program import load_program

    return load_program(tiny_spec, minimal_dataset[0])


@pytest.fixture(scope="module")
def uninterrupted(program, tmp_path_factory):
    return train(program, Honest(), tmp_path_factory.mktemp("tiny") / "c.zarr", "job", "s")


def get_verdicts(report: dict) -> list[dict]:
    verdicts = []
    for solver in report["solvers"]:
        dispute = solver["dispute"] and {k: v for k, v in solver["dispute"].items() if k not in RUN_SPECIFIC}
        verdicts.append({**{k: solver[k] for k in VERDICT_FIELDS}, "spot_check": solver["spot_check"],
                         "dispute": dispute})
    return verdicts


def assert_same_job(report: dict, expected: dict) -> None:
    assert report["dataset"] == expected["dataset"]
    assert get_verdicts(report) == get_verdicts(expected)
    assert report["ledger"] == expected["ledger"]


def test_a_job_with_its_stores_in_memory_is_refused_before_any_work(minimal_spec, memory_store, tmp_path):
    """Parties train and answer in their own processes: one process's memory cannot be their store."""
    paths = ArtifactPaths(tmp_path, store=memory_store)
    with pytest.raises(LifecycleError, match="lives in this process's memory"):
        run_job(minimal_spec, paths)
    assert not any(tmp_path.iterdir()) and not storage.exists(storage.join(memory_store, "runs"))


def test_a_file_url_store_matches_the_local_run(minimal_spec, local_report, tmp_path):
    paths = ArtifactPaths(tmp_path / "records", store=f"file://{tmp_path}/zarr")
    assert_same_job(run_job(minimal_spec, paths), local_report)
    job_id = compute_job_id(minimal_spec)
    assert (tmp_path / "zarr" / "runs" / job_id / "dataset" / "shard_000.zarr" / "zarr.json").is_file()
    assert not list((tmp_path / "records").rglob("*.zarr"))


def test_a_partial_store_in_memory_is_not_complete_and_resumes(program, uninterrupted, memory_store):
    location = storage.join(memory_store, "c.zarr")
    with pytest.raises(Crash):
        train(program, CrashAt(Honest(), 10), location, "job", "s")  # checkpoints #0..#2 stored
    assert storage.exists(partial_path(location)) and not storage.exists(location)
    with pytest.raises(CheckpointError, match="cannot be opened"):
        read_roots(location)
    with pytest.raises(CheckpointError, match="incomplete: no committed roots"):
        read_roots(partial_path(location))
    assert open_partial(location).written == 3
    resumed = train(program, Honest(), location, "job", "s")
    assert resumed.resumed_from == 8
    assert resumed.roots == uninterrupted.roots and resumed.losses == uninterrupted.losses
    assert read_roots(location) == list(uninterrupted.roots)
    assert not storage.exists(partial_path(location))


@pytest.fixture
def publish_dies_before_the_marker(monkeypatch):
    """Object-store publication killed after the body of a store is copied, before its root ``zarr.json``."""
    fs, _ = storage.get_fs("memory://")
    real_copy = type(fs).copy

    def copy(self, path1, path2, *args, **kwargs):
        if isinstance(path1, str) and path1.endswith("/" + storage.COMPLETION_MARKER):
            raise Crash(f"killed before copying {path1}")
        return real_copy(self, path1, path2, *args, **kwargs)

    monkeypatch.setattr(type(fs), "copy", copy)
    return monkeypatch


def test_a_half_published_checkpoint_store_is_refused_and_publication_resumes(
        program, uninterrupted, memory_store, publish_dies_before_the_marker):
    location = storage.join(memory_store, "c.zarr")
    with pytest.raises(Crash):
        train(program, Honest(), location, "job", "s")
    publish_dies_before_the_marker.undo()
    assert storage.exists(storage.join(location, "rows"))  # the body arrived, the marker did not
    with pytest.raises(CheckpointError, match="cannot be opened"):
        read_roots(location)
    with pytest.raises(CheckpointError, match="cannot be opened"):
        read_checkpoint(location, 0)
    resumed = train(program, Honest(), location, "job", "s")
    assert resumed.resumed_from == 16 and resumed.roots == uninterrupted.roots
    assert read_roots(location) == list(uninterrupted.roots)


def test_a_half_published_shard_is_refused(memory_store, publish_dies_before_the_marker):
    source = load_source("synthetic", num_samples=40, input_dim=3)
    location = storage.join(memory_store, "torn", "shard_000.zarr")
    with pytest.raises(Crash):
        write_shards(source, storage.join(memory_store, "torn"), 1, SHA256)
    assert storage.exists(storage.join(location, "x", storage.COMPLETION_MARKER))
    info = ShardInfo(0, location, source.num_samples, compute_shard_root(source.x, source.y, SHA256))
    with pytest.raises(DatasetIntegrityError, match="unreadable"):
        read_shard(info, SHA256)
    publish_dies_before_the_marker.undo()
    write_shards(source, storage.join(memory_store, "torn"), 1, SHA256)
    assert [a.shape for a in read_shard(info, SHA256)] == [source.x.shape, source.y.shape]


def test_publish_replaces_the_old_store_and_refuses_an_unfinished_one(memory_store):
    import zarr

    final, staged = storage.join(memory_store, "s.zarr"), storage.join(memory_store, "s.zarr.tmp")
    storage.open_group(final, mode="w").create_array("stale", shape=(2,), dtype="int8")
    storage.open_group(staged, mode="w").create_array("fresh", shape=(2,), dtype="int8")
    assert storage.publish(staged, final) == final
    assert [name for name, _ in zarr.open_group(final, mode="r").arrays()] == ["fresh"]
    assert not storage.exists(staged)
    with pytest.raises(storage.StorageError, match="no zarr.json"):
        storage.publish(storage.join(memory_store, "never-written"), final)


def test_publish_refuses_to_cross_filesystems(memory_store, tmp_path):
    staged = storage.join(memory_store, "s.zarr.tmp")
    storage.open_group(staged, mode="w")
    with pytest.raises(storage.StorageError, match="different filesystems"):
        storage.publish(staged, tmp_path / "s.zarr")
    assert storage.exists(staged)


def test_locations_are_absolute_paths_or_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.as_location("artifacts/x") == str(tmp_path / "artifacts" / "x")
    assert storage.as_location("s3://bucket/pinpoint/") == "s3://bucket/pinpoint"
    assert storage.join("s3://bucket/pinpoint", "runs", "j") == "s3://bucket/pinpoint/runs/j"
    paths = ArtifactPaths(tmp_path, store="s3://bucket/pinpoint/")
    assert paths.checkpoints("j", "s") == "s3://bucket/pinpoint/runs/j/solvers/s/checkpoints.zarr"
    assert paths.solver("j", "s") == tmp_path / "runs" / "j" / "solvers" / "s"
    assert ArtifactPaths(tmp_path).replica("j", "7-ab") == str(tmp_path / "runs" / "j" / "verifier" / "replica-7-ab.zarr")


@pytest.mark.parametrize("where", ["local", "file-url", "memory"])
def test_write_bytes_makes_parents_only_when_asked_and_reads_back(where, tmp_path, memory_store):
    base = {"local": str(tmp_path), "file-url": f"file://{tmp_path}", "memory": memory_store}[where]
    nested = storage.join(base, "rows", "c", "3", "0")
    if where != "memory":  # an object store has no directories to lack
        with pytest.raises(FileNotFoundError):
            storage.write_bytes(nested, b"x")
    storage.write_bytes(nested, memoryview(b"row bytes"), make_parents=True)
    assert storage.read_bytes(nested) == b"row bytes"
    storage.write_bytes(nested, b"again")  # the directory exists now; the object is replaced
    assert storage.read_bytes(nested) == b"again"
