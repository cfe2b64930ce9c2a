"""Checkpoints in zarr: one array per state tensor, with a leading checkpoint axis.

Layout of ``checkpoints.zarr``: for every canonical state array ``name`` (``param/fc0.weight``,
``momentum/…``, ``meta/step``, ``meta/rng``) an array of shape ``(C, *shape)`` where ``C`` is the
number of checkpoints (steps ``0, k, …, T``); chunks are ``(1, rows, *rest)`` with ``rows`` from
the canonical chunking of ``proofs.encoding``, so one stored chunk is one Merkle leaf of the
committed state root. Group attributes hold ``interval`` and the hex state ``roots``.

Writes go to ``<path>.partial`` and are renamed into place by ``finish``: a crash never leaves a
store that claims to be complete. A partial store keeps the checkpoints written so far
(``written`` attribute), so training can resume from the last one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr

from proofs.encoding import chunk_shape
from proofs.types import Root, Step
from verification.execution.state import State, state_from_arrays


class CheckpointError(ValueError):
    """A checkpoint store is missing, incomplete or corrupted."""


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class CheckpointWriter:
    """Streams the checkpoints of one training run into a zarr store."""

    def __init__(self, path: Path, template: State, interval: int, num_checkpoints: int):
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.group = zarr.open_group(str(self.tmp), mode="w")
        self.interval = interval
        for name, array in template.to_arrays().items():
            chunks = (1, *chunk_shape(array.shape, array.dtype))
            self.group.create_array(name, shape=(num_checkpoints, *array.shape),
                                    chunks=chunks, dtype=array.dtype, fill_value=0)
        self.group.attrs.update({"interval": interval, "num_checkpoints": num_checkpoints, "written": 0})

    def write(self, index: int, state: State) -> None:
        for name, array in state.to_arrays().items():
            self.group[name][index] = array
        self.group.attrs["written"] = index + 1

    def finish(self, roots: list[Root]) -> Path:
        self.group.attrs["roots"] = [r.hex() for r in roots]
        shutil.rmtree(self.path, ignore_errors=True)
        self.tmp.rename(self.path)
        return self.path


def open_store(path: str | Path) -> zarr.Group:
    try:
        return zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a missing or unreadable store
        raise CheckpointError(f"checkpoint store {str(path)!r} cannot be opened: {exc}") from exc


def read_checkpoint(path: str | Path, index: int, device="cpu") -> State:
    """The state stored at checkpoint ``index`` (step ``index * interval``)."""
    group = open_store(path)
    count = int(group.attrs.get("written", 0))
    if not 0 <= index < count:
        raise CheckpointError(f"checkpoint store {str(path)!r} has {count} checkpoints, asked for #{index}")
    try:
        arrays = {name: np.asarray(arr[index]) for name, arr in group.arrays()}
        for name, sub in group.groups():
            arrays.update({f"{name}/{n}": np.asarray(a[index]) for n, a in sub.arrays()})
    except Exception as exc:
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} is unreadable: {exc}") from exc
    return state_from_arrays(arrays, device)


def read_roots(path: str | Path) -> list[Root]:
    group = open_store(path)
    roots = group.attrs.get("roots")
    if roots is None:
        raise CheckpointError(f"checkpoint store {str(path)!r} is incomplete: no committed roots")
    return [Root(bytes.fromhex(r)) for r in roots]


def checkpoint_step(index: int, interval: int) -> Step:
    return Step(index * interval)
