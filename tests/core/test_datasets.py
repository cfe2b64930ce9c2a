import numpy as np
import pytest
import zarr

from datasets.sharding import (
    DatasetIntegrityError,
    ShardingError,
    compute_shard_bounds,
    load_dataset,
    write_shards,
)
from datasets.sources import UnknownSourceError, load_source
from proofs.hashing import BLAKE3, SHA256


def test_digits_source_ships_offline():
    src = load_source("digits")
    assert src.x.shape == (1797, 64) and src.x.dtype == np.float32
    assert src.y.dtype == np.int64 and set(np.unique(src.y)) == set(range(10))
    assert 0.0 <= src.x.min() and src.x.max() <= 1.0


def test_text_source_builds_next_token_windows():
    src = load_source("text", block=16, max_bytes=4096)
    assert src.x.shape[1] == 16
    assert np.array_equal(src.x[0, 1:], src.y[0, :-1])


def test_unknown_source_is_named():
    with pytest.raises(UnknownSourceError, match="nope"):
        load_source("nope")


def test_shard_bounds_cover_everything_once():
    assert compute_shard_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ShardingError):
        compute_shard_bounds(3, 4)


def test_sharding_round_trip_and_roots(tmp_path):
    src = load_source("synthetic", num_samples=300, input_dim=8)
    a = write_shards(src, tmp_path / "a", 3, SHA256)
    b = write_shards(src, tmp_path / "b", 3, SHA256)
    assert a.root == b.root  # content-addressed, not path-addressed
    x, y = load_dataset(a)
    assert np.array_equal(x, src.x) and np.array_equal(y, src.y)
    assert write_shards(src, tmp_path / "c", 2, SHA256).root != a.root
    assert write_shards(src, tmp_path / "d", 3, BLAKE3).root != a.root


def test_tampered_shard_is_detected_and_named(tmp_path):
    src = load_source("synthetic", num_samples=200, input_dim=4)
    ds = write_shards(src, tmp_path, 2, SHA256)
    group = zarr.open_group(ds.shards[1].path, mode="r+")
    group["y"][0] = (group["y"][0] + 1) % 4
    with pytest.raises(DatasetIntegrityError, match="shard 1"):
        load_dataset(ds)


def test_missing_shard_is_detected(tmp_path):
    import shutil

    src = load_source("synthetic", num_samples=100, input_dim=4)
    ds = write_shards(src, tmp_path, 2, SHA256)
    shutil.rmtree(ds.shards[0].path)
    with pytest.raises(DatasetIntegrityError, match="shard 0"):
        load_dataset(ds)
