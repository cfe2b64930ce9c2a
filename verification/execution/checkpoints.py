"""Checkpoints in zarr: one array per state tensor, with a leading checkpoint axis.

Layout of ``checkpoints.zarr``: for every canonical state array ``name`` (``param/fc0.weight``,
``optim/…``, ``meta/step``, ``meta/rng``) an array of shape ``(C, *shape)`` where ``C`` is the
number of checkpoints (steps ``0, k, …, T``); chunks are ``(1, rows, *rest)`` with ``rows`` from
the canonical chunking of ``proofs.encoding`` (clipped to the tensor), so one stored chunk is one
Merkle leaf of the committed state root. Arrays are stored uncompressed.

Group attributes
----------------
``interval``, ``num_checkpoints``, ``hash_name``
    ``k``, ``C`` and the hash function of the state roots.
``written``, ``written_roots``, ``losses``
    the *progress*: how many checkpoints are stored, their state roots, and the loss of every step
    up to the last one (``float.hex`` strings, so NaN and every bit survive JSON). They are
    updated together, in one atomic write of the group metadata, after a checkpoint's arrays are
    stored — so a crash at any point leaves a progress record that describes only complete
    checkpoints.
``run``
    who wrote the store (job, solver, strategy, spec id): a resumed run must be the same run.
``roots``
    the committed state roots, set by ``finish``; a store without them is incomplete.

A store lives at a *location* (``datasets.storage``): a local path or an fsspec URL, so checkpoints
can live on an object store (``s3://…``). Writes go to ``<location>.partial`` and are published
under ``<location>`` by ``finish`` (``datasets.storage.publish``: a rename locally; on an object
store a copy whose root ``zarr.json`` — holding ``roots`` — comes last): a crash never leaves a
store that claims to be complete. A partial store keeps the checkpoints written so far, so training
can resume from the last one (``open_partial``; ``verification.solver.train``). Every read of a
checkpoint whose root the store records is checked against that root, so a corrupted or missing
chunk is a ``CheckpointError`` naming the store and the checkpoint, never a silently wrong state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from datasets import storage
from proofs.encoding import chunk_shape
from proofs.hashing import HASH_NAMES
from proofs.types import Root, decode_root
from verification.execution.state import State, state_from_arrays


class CheckpointError(ValueError):
    """A checkpoint store is missing, incomplete or corrupted."""


def partial_path(location: str | os.PathLike[str]) -> storage.Location:
    """The staging location of the store at ``location``."""
    return storage.compute_staging(location, ".partial")


def encode_losses(losses: Sequence[float]) -> list[str]:
    """Losses as ``float.hex`` strings: exact, and NaN/inf survive JSON."""
    return [float(loss).hex() for loss in losses]


def encode_roots(roots: Sequence[Root]) -> list[str]:
    return [bytes(r).hex() for r in roots]


def compute_store_chunks(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...]:
    """The zarr chunks of a state array with a leading checkpoint axis: one checkpoint, and the
    canonical leaf chunking of ``proofs.encoding`` clipped to the tensor (a 64-row weight is
    stored as a 64-row chunk, not padded to the leaf's 256 rows; its leaf is the same)."""
    return (1, *(max(1, min(c, n)) for c, n in zip(chunk_shape(shape, dtype), shape, strict=True)))


class CheckpointWriter:
    """Streams the checkpoints of one training run into a zarr store.

    Storage overlaps training: ``write`` snapshots the state to host arrays and hands them to one
    background thread, which stores every array (through handles opened once) and then the
    progress record; at most one checkpoint is in flight, and a failure to store it is raised by
    the next ``write`` or by ``finish``. Float tensors are stored uncompressed (zstd saved little on
    them and cost more than the write)."""

    def __init__(self, path: str | os.PathLike[str], template: State, interval: int, num_checkpoints: int,
                 hash_name: str = "sha256", run: dict[str, str] | None = None):
        self.path = storage.as_location(path)
        self.tmp = partial_path(self.path)
        storage.remove(self.tmp)
        self.group = storage.open_group(self.tmp, mode="w")
        self.interval = interval
        self.roots: list[Root] = []
        self.arrays = {name: self.group.create_array(name, shape=(num_checkpoints, *array.shape),
                                                     chunks=compute_store_chunks(array.shape, array.dtype),
                                                     dtype=array.dtype, fill_value=0, compressors=None)
                       for name, array in template.to_arrays().items()}
        self.group.attrs.update({"interval": interval, "num_checkpoints": num_checkpoints,
                                 "hash_name": hash_name, "run": dict(run or {}), "written": 0,
                                 "written_roots": [], "losses": []})
        self.start_worker()

    @classmethod
    def reopen(cls, path: str | os.PathLike[str], partial: PartialCheckpoints) -> CheckpointWriter:
        """A writer that continues the partial store ``partial`` of ``path`` after its last checkpoint."""
        writer = cls.__new__(cls)
        writer.path, writer.tmp = storage.as_location(path), partial.path
        writer.group = storage.open_group(partial.path, mode="r+")
        writer.interval = partial.interval
        writer.roots = list(partial.roots)
        writer.arrays = {}
        writer.start_worker()
        return writer

    def start_worker(self) -> None:
        """The one background thread that stores checkpoints, and no checkpoint in flight yet."""
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinpoint-checkpoints")
        self.pending: Future | None = None

    def write(self, index: int, state: State, root: Root | None = None,
              losses: Sequence[float] | None = None) -> None:
        """Store checkpoint ``index`` (in the background). With its state ``root`` and the
        ``losses`` of steps ``1 … index·k`` the progress record names it, so a crashed run can
        resume from it."""
        arrays = {name: np.array(a, copy=True) for name, a in state.to_arrays().items()}
        progress: dict[str, Any] = {"written": index + 1}
        if root is not None:
            self.roots = [*self.roots[:index], root]
            progress["written_roots"] = encode_roots(self.roots)
            progress["losses"] = encode_losses(losses or [])
        self.wait()
        self.pending = self.worker.submit(self.store, index, arrays, progress)

    def store(self, index: int, arrays: dict[str, np.ndarray], progress: dict[str, Any]) -> None:
        """Every array of checkpoint ``index``, then (so that it names only stored checkpoints)
        the progress record, in one write of the group metadata."""
        for name, array in arrays.items():
            if name not in self.arrays:
                self.arrays[name] = self.group[name]
            self.arrays[name][index] = array
        self.group.attrs.update(progress)

    def wait(self) -> None:
        """Until the checkpoint in flight is stored (its error, if any, is raised here)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Let the checkpoint in flight land and stop the thread, whatever happens around it: a
        run that stops with an error leaves a partial store whose progress names only stored
        checkpoints (the in-flight one's own error is dropped: the run's error is the one raised)."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 -- see above
            pass
        finally:
            self.worker.shutdown(wait=True)

    def finish(self, roots: list[Root]) -> storage.Location:
        """Record the committed ``roots`` (the completion marker) and publish the store."""
        try:
            self.wait()
        finally:
            self.worker.shutdown(wait=True)
        self.group.attrs["roots"] = encode_roots(roots)
        return storage.publish(self.tmp, self.path)


def discard_partial(path: str | os.PathLike[str]) -> None:
    """Remove the partial store of ``path``, if any."""
    storage.remove(partial_path(path))


def open_store(path: str | os.PathLike[str]) -> zarr.Group:
    try:
        return storage.open_group(path, mode="r")
    except Exception as exc:  # zarr raises several types for a missing or unreadable store
        raise CheckpointError(f"checkpoint store {str(path)!r} cannot be opened: {exc}") from exc


def get_stored_root(path: str | os.PathLike[str], group: zarr.Group, index: int) -> tuple[Root, str] | None:
    """The root a store records for checkpoint ``index`` and its hash function; None for a store
    that records no roots (written without them) or a partial store not yet naming ``index``."""
    attrs, where = group.attrs, f"checkpoint store {str(path)!r}"
    if "hash_name" not in attrs:
        return None
    hash_name, roots = attrs["hash_name"], attrs.get("roots", attrs.get("written_roots"))
    if hash_name not in HASH_NAMES:
        raise CheckpointError(f"{where} records unknown hash_name {hash_name!r}")
    if not isinstance(roots, list):
        raise CheckpointError(f"{where} records roots {roots!r}, not a list")
    if index >= len(roots):
        if "roots" in attrs:
            raise CheckpointError(f"{where} records {len(roots)} roots, none for checkpoint #{index}")
        return None
    return decode_store_root(roots[index], where), hash_name


def walk_arrays(group: zarr.Group, prefix: str = "") -> list[tuple[str, zarr.Array]]:
    """Every array under ``group`` by its path (``param/fc0.weight``, ``optim/fc0.weight/step``)."""
    found = [(prefix + name, arr) for name, arr in group.arrays()]
    for name, sub in group.groups():
        found.extend(walk_arrays(sub, f"{prefix}{name}/"))
    return found


def read_checkpoint(path: str | os.PathLike[str], index: int, device="cpu") -> State:
    """The state stored at checkpoint ``index`` (step ``index * interval``), checked against the
    root the store records for it."""
    group = open_store(path)
    count, total = group.attrs.get("written", 0), group.attrs.get("num_checkpoints")
    if type(count) is not int or not 0 <= index < count:
        held = f"{count!r} of {total!r}" if count != total else f"{count!r}"
        raise CheckpointError(f"checkpoint store {str(path)!r} holds {held} checkpoints, asked for #{index}")
    try:
        state = state_from_arrays({name: np.asarray(arr[index]) for name, arr in walk_arrays(group)}, device)
    except Exception as exc:  # zarr/numcodecs raise several types for corrupt chunks and metadata
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} is unreadable: {exc}") from exc
    stored = get_stored_root(path, group, index)
    # Rule: a checkpoint is used only if it hashes to the root recorded when it was written
    if stored is not None and state.root(stored[1]) != stored[0]:
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} has root {state.root(stored[1]).hex()}, "
                              f"recorded {stored[0].hex()}: the store is corrupted")
    return state


def read_roots(path: str | os.PathLike[str]) -> list[Root]:
    """The committed state roots of a complete store."""
    group = open_store(path)
    roots, total = group.attrs.get("roots"), group.attrs.get("num_checkpoints")
    if roots is None:
        raise CheckpointError(f"checkpoint store {str(path)!r} is incomplete: no committed roots")
    if not isinstance(roots, list) or len(roots) != total:
        count = len(roots) if isinstance(roots, list) else roots
        raise CheckpointError(f"checkpoint store {str(path)!r} is truncated: {count!r} roots of {total!r} checkpoints")
    return [decode_store_root(r, f"checkpoint store {str(path)!r}") for r in roots]


def decode_store_root(value: object, where: str) -> Root:
    try:
        return decode_root(value)
    except ValueError as error:
        raise CheckpointError(f"{where}: root {error}") from None


def decode_loss(value: object, where: str) -> float:
    try:
        return float.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise CheckpointError(f"{where}: loss {value!r} is not a float.hex string") from None


@dataclass(frozen=True)
class PartialCheckpoints:
    """What an interrupted run left in ``<path>.partial``: checkpoints ``0 … written-1``, their
    recorded roots, and the losses of steps ``1 … (written-1)·interval``."""

    path: storage.Location
    interval: int
    num_checkpoints: int
    hash_name: str
    run: dict[str, str]
    roots: tuple[Root, ...]
    losses: tuple[float, ...]

    @property
    def written(self) -> int:
        return len(self.roots)


def _require(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise CheckpointError(f"{where}: {problem}")


def is_count(value: object) -> bool:
    return type(value) is int and value >= 1


def open_partial(path: str | os.PathLike[str]) -> PartialCheckpoints:
    """The progress record of the partial store of ``path``; ``CheckpointError`` naming the
    store and the problem when it is missing or inconsistent. The checkpoints themselves are
    checked against their roots when read (``read_checkpoint``)."""
    tmp = partial_path(path)
    where = f"partial checkpoint store {str(tmp)!r}"
    attrs = dict(open_store(tmp).attrs)
    interval, total, written = attrs.get("interval"), attrs.get("num_checkpoints"), attrs.get("written")
    roots, losses, hash_name, run = (attrs.get(k) for k in ("written_roots", "losses", "hash_name", "run"))
    _require(is_count(interval) and is_count(total), where, f"bad interval/num_checkpoints {interval!r}/{total!r}")
    _require(hash_name in HASH_NAMES, where, f"unknown hash_name {hash_name!r}")
    _require(isinstance(run, dict), where, f"run identity {run!r} is not a mapping")
    # Rule: progress names only complete checkpoints: at least S_0, at most C, one root each
    _require(is_count(written) and written <= total, where, f"written={written!r} is not in 1..{total}")
    _require(isinstance(roots, list) and len(roots) == written, where,
             f"{written} checkpoints written but {len(roots) if isinstance(roots, list) else roots!r} roots recorded")
    # Rule: one loss per step up to the last checkpoint
    _require(isinstance(losses, list) and len(losses) == (written - 1) * interval, where,
             f"{len(losses) if isinstance(losses, list) else losses!r} losses recorded for "
             f"{(written - 1) * interval} steps")
    return PartialCheckpoints(tmp, interval, total, hash_name, dict(run),
                              tuple(decode_store_root(r, where) for r in roots),
                              tuple(decode_loss(v, where) for v in losses))
