"""Sharding a source into zarr arrays, and the dataset commitment.

Terms
-----
shard
    A contiguous slice of the source's samples, stored as a zarr group with arrays ``x`` and ``y``.
    Zarr chunks follow the canonical chunking of ``proofs.encoding`` so that one stored chunk is
    one Merkle leaf: a verifier can check a single chunk against the shard root.
shard root
    Merkle root (``DOMAIN_SHARD``) over the leaves of ``tensor_root("x", x)`` and
    ``tensor_root("y", y)`` (each tensor root is itself a Merkle root over its zarr chunks).
dataset root
    Merkle root (``DOMAIN_DATASET``) of the shard roots in shard order. It is what a job commits
    to; the batch schedule (``datasets.schedule``) is keyed on it.

Shards and ``dataset.json`` (the commitment, shard locations included) live at a *location*
(``datasets.storage``): a local directory or an fsspec URL such as ``s3://bucket/…``. Each shard is
written to ``<shard>.tmp`` and published under its final name (``datasets.storage.publish``: a
rename locally, marker-last copy on an object store), so a crash never leaves a half-written shard
that reads as complete; ``read_shard`` checks every shard against its committed root anyway.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from datasets import storage
from datasets.sources import Source
from proofs.encoding import chunk_shape, tensor_root
from proofs.hashing import DOMAIN_DATASET, DOMAIN_SHARD, Hashing
from proofs.merkle import hash_leaf, merkle_root
from proofs.types import Root

SHARD_ARRAYS = ("x", "y")


class ShardingError(ValueError):
    """A source cannot be split as asked."""


class DatasetIntegrityError(ValueError):
    """Stored shards do not match the committed roots (corrupted, missing or tampered)."""


@dataclass(frozen=True)
class ShardInfo:
    index: int
    path: str  # its location: a local path or an fsspec URL (``datasets.storage``)
    num_samples: int
    root: Root


@dataclass(frozen=True)
class DatasetCommitment:
    """What every party of a job agrees on about the data."""

    name: str
    root: Root
    shards: tuple[ShardInfo, ...]
    num_samples: int
    hashing: Hashing
    meta: dict

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "root": self.root.hex(),
            "num_samples": self.num_samples,
            "hash_name": str(self.hashing),
            "meta": self.meta,
            "shards": [
                {"index": s.index, "path": s.path, "num_samples": s.num_samples, "root": s.root.hex()}
                for s in self.shards
            ],
        }


def compute_shard_bounds(num_samples: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` ranges, sizes differing by at most one."""
    if not 1 <= num_shards <= num_samples:
        raise ShardingError(f"cannot split {num_samples} samples into {num_shards} shards")
    base, extra = divmod(num_samples, num_shards)
    bounds, start = [], 0
    for i in range(num_shards):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def compute_shard_root(x: np.ndarray, y: np.ndarray, hashing: Hashing) -> Root:
    leaves = [hash_leaf(tensor_root(name, a, hashing), DOMAIN_SHARD, hashing) for name, a in (("x", x), ("y", y))]
    return merkle_root(leaves, DOMAIN_SHARD, hashing)


def compute_dataset_root(shard_roots: list[Root], hashing: Hashing) -> Root:
    leaves = [hash_leaf(root, DOMAIN_DATASET, hashing) for root in shard_roots]
    return merkle_root(leaves, DOMAIN_DATASET, hashing)


def compute_arrays_root(x: np.ndarray, y: np.ndarray, num_shards: int, hashing: Hashing) -> Root:
    """The dataset root ``write_shards`` commits ``(x, y)`` to in ``num_shards`` shards, without
    writing them (what a verifier computes over data it is shown)."""
    bounds = compute_shard_bounds(int(x.shape[0]), num_shards)
    return compute_dataset_root([compute_shard_root(x[a:b], y[a:b], hashing) for a, b in bounds], hashing)


def _write_shard(location: storage.Location, x: np.ndarray, y: np.ndarray, root: Root) -> None:
    tmp = storage.compute_staging(location, ".tmp")
    storage.remove(tmp)
    group = storage.open_group(tmp, mode="w")
    for name, array in (("x", x), ("y", y)):
        chunks = chunk_shape(array.shape, array.dtype)
        group.create_array(name, data=np.ascontiguousarray(array), chunks=chunks)
    group.attrs["root"] = root.hex()
    storage.publish(tmp, location)


def write_shards(source: Source, out_dir: str | os.PathLike[str], num_shards: int,
                 hashing: Hashing) -> DatasetCommitment:
    """Split ``source`` into ``num_shards`` zarr shards at the location ``out_dir`` (a directory
    or an fsspec URL) and commit to them; the commitment is written there as ``dataset.json``."""
    shards = []
    for index, (start, end) in enumerate(compute_shard_bounds(source.num_samples, num_shards)):
        x, y = source.x[start:end], source.y[start:end]
        root = compute_shard_root(x, y, hashing)
        location = storage.join(out_dir, f"shard_{index:03d}.zarr")
        _write_shard(location, x, y, root)
        shards.append(ShardInfo(index, location, end - start, root))
    root = compute_dataset_root([s.root for s in shards], hashing)
    commitment = DatasetCommitment(
        source.name, root, tuple(shards), source.num_samples, hashing, dict(source.meta)
    )
    storage.write_bytes(storage.join(out_dir, "dataset.json"), json.dumps(commitment.to_dict(), indent=2).encode())
    return commitment


def read_shard(info: ShardInfo, hashing: Hashing) -> tuple[np.ndarray, np.ndarray]:
    """Read one shard and check it against its committed root."""
    try:
        group = storage.open_group(info.path, mode="r")
        x, y = group["x"][:], group["y"][:]
    except Exception as exc:  # zarr raises several types for missing/corrupt stores and chunks
        raise DatasetIntegrityError(f"shard {info.index} at {info.path!r} is unreadable: {exc}") from exc
    if x.shape[0] != info.num_samples or y.shape[0] != info.num_samples:
        raise DatasetIntegrityError(
            f"shard {info.index} at {info.path!r} holds {x.shape[0]} samples, committed {info.num_samples}"
        )
    actual = compute_shard_root(x, y, hashing)
    if actual != info.root:
        raise DatasetIntegrityError(
            f"shard {info.index} at {info.path!r} has root {actual.hex()}, committed {info.root.hex()}"
        )
    return x, y


def load_dataset(commitment: DatasetCommitment) -> tuple[np.ndarray, np.ndarray]:
    """All samples of a committed dataset, every shard verified against its root."""
    parts = [read_shard(info, commitment.hashing) for info in commitment.shards]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return x, y
