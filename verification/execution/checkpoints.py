"""Checkpoints in zarr: one stored object per checkpoint.

Layout of ``checkpoints.zarr``: one uint8 array ``rows`` of shape ``(C, row bytes)`` with chunks
``(1, row bytes)``, uncompressed, where ``C`` is the number of checkpoints (steps ``0, k, …, T``).
Storing checkpoint ``i`` is one chunk write — one file locally, one object on an object store —
whatever the number of tensors (a store per tensor cost a zarr round-trip per tensor: 15 ms for
the default MLP's 10 tensors, against 2 ms now).

Terms
-----
row
    ``root (32 bytes) || losses (k × float64, little-endian) || tensor bytes``. ``root`` is the
    state root of the checkpoint; ``losses`` are the losses of steps ``(i-1)·k+1 … i·k`` (the
    interval that ends at this checkpoint; zeros in row 0), bit for bit, so NaN and ``-0.0``
    survive; the tensor bytes are every array of ``State.to_arrays`` in the order of ``layout``,
    each as its C-order bytes (the canonical arrays, which are little-endian).
layout
    The group attribute ``[[name, dtype string, shape], …]``: what the tensor bytes of every row
    hold, fixed when the store is created (a state's names, dtypes and shapes do not change while
    training).

Group attributes
----------------
``interval``, ``num_checkpoints``, ``hash_name``, ``layout``
    ``k``, ``C``, the hash function of the state roots, and the layout above.
(no progress count)
    How many checkpoints a partial store holds is not recorded: it is the number of leading rows
    that are stored and hash to the root they record (``open_partial``). So storing a checkpoint
    is one object write and nothing else — a count in the group metadata cost a second zarr
    round-trip per checkpoint (1.3-1.8 ms here) — and a row torn by a crash simply ends the run's
    progress at the row before it.
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
checkpoint is checked against the root its row records (and, in a finished store, the committed
one), so a corrupted or missing chunk is a ``CheckpointError`` naming the store and the
checkpoint, never a silently wrong state.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.group import GroupMetadata
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.storage import MemoryStore

from datasets import storage
from proofs.encoding import buffer_state_root
from proofs.hashing import SHA256, Hashing, UnknownHashError, get_hashing
from proofs.types import Root, decode_root
from verification.execution.state import STEP_KEY, State, state_from_arrays

ROWS = "rows"
# A row's chunk is the object ``rows/c.<index>.0``: every checkpoint a file beside the others, not a
# directory of its own (which cost a directory creation per checkpoint).
CHUNK_KEYS = {"name": "default", "configuration": {"separator": "."}}
ROOT_BYTES = 32
LOSS_DTYPE = np.dtype("<f8")


class CheckpointError(ValueError):
    """A checkpoint store is missing, incomplete or corrupted."""


def partial_path(location: str | os.PathLike[str]) -> storage.Location:
    """The staging location of the store at ``location``."""
    return storage.compute_staging(location, ".partial")


def encode_roots(roots: Sequence[Root]) -> list[str]:
    return [bytes(r).hex() for r in roots]


@dataclass(frozen=True)
class RowLayout:
    """Where each part of a checkpoint row lies (see *row* and *layout* above)."""

    interval: int
    tensors: tuple[tuple[str, np.dtype, tuple[int, ...]], ...]

    @property
    def header_bytes(self) -> int:
        """Bytes before the tensors: the root and the interval's losses."""
        return ROOT_BYTES + self.interval * LOSS_DTYPE.itemsize

    @cached_property
    def bounds(self) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` of every tensor's bytes in the row."""
        out, start = [], self.header_bytes
        for _, dtype, shape in self.tensors:
            stop = start + dtype.itemsize * int(np.prod(shape, dtype=np.int64))
            out.append((start, stop))
            start = stop
        return tuple(out)

    @cached_property
    def root_entries(self) -> tuple[tuple[str, tuple[int, ...], np.dtype, int], ...]:
        """``(name, shape, dtype, start byte)`` of every tensor: what ``buffer_state_root`` hashes."""
        return tuple((name, shape, dtype, start) for (name, dtype, shape), (start, _) in zip(self.tensors, self.bounds,
                                                                                          strict=True))

    @property
    def row_bytes(self) -> int:
        return self.bounds[-1][1] if self.bounds else self.header_bytes

    def to_attr(self) -> list[list[Any]]:
        return [[name, dtype.str, list(shape)] for name, dtype, shape in self.tensors]


def compute_layout(arrays: Mapping[str, np.ndarray], interval: int) -> RowLayout:
    """The layout of a state's arrays, in their (sorted) order."""
    return RowLayout(interval, tuple((name, a.dtype, tuple(a.shape)) for name, a in arrays.items()))


def decode_layout(value: object, interval: int, where: str) -> RowLayout:
    """A layout attribute read back; ``CheckpointError`` naming the store when it is not one."""
    try:
        tensors = tuple((str(name), np.dtype(dtype), tuple(int(d) for d in shape)) for name, dtype, shape in value)
        # Rule: a layout names numeric tensors of non-negative sizes, each once.
        ok = all(dt.kind in "biufc" and min(shape, default=0) >= 0 for _, dt, shape in tensors) \
            and len({name for name, _, _ in tensors}) == len(tensors)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise CheckpointError(f"{where}: layout {value!r} is not a list of [name, dtype, shape]")
    return RowLayout(interval, tensors)


def pack_row(layout: RowLayout, arrays: Mapping[str, np.ndarray], root: Root, losses: Sequence[float]) -> np.ndarray:
    """One checkpoint's row (a copy: the state may be reused after it is handed to the writer)."""
    if compute_layout(arrays, layout.interval).tensors != layout.tensors:
        raise CheckpointError(f"a state of {sorted(arrays)} does not fit the store's layout "
                              f"{[name for name, _, _ in layout.tensors]} (names, dtypes and shapes are fixed)")
    if len(losses) > layout.interval:
        raise CheckpointError(f"{len(losses)} losses for one checkpoint interval of {layout.interval} steps")
    row = np.zeros(layout.row_bytes, np.uint8)
    row[:ROOT_BYTES] = np.frombuffer(root, np.uint8)
    row[ROOT_BYTES:ROOT_BYTES + len(losses) * LOSS_DTYPE.itemsize] = np.asarray(losses, LOSS_DTYPE).view(np.uint8)
    for (start, stop), array in zip(layout.bounds, arrays.values(), strict=True):
        row[start:stop] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return row


def unpack_row(layout: RowLayout, row: np.ndarray) -> tuple[Root, tuple[float, ...], dict[str, np.ndarray]]:
    """``(root, losses, arrays)`` of one row (the arrays are views of ``row``)."""
    losses = row[ROOT_BYTES:layout.header_bytes].view(LOSS_DTYPE)
    arrays = {name: row[start:stop].view(dtype).reshape(shape)
              for (name, dtype, shape), (start, stop) in zip(layout.tensors, layout.bounds, strict=True)}
    return Root(row[:ROOT_BYTES].tobytes()), tuple(float(v) for v in losses), arrays


class CheckpointWriter:
    """Streams the checkpoints of one training run into a zarr store, and commits to them.

    ``write`` packs the state into its row (one copy, so training may go on with the state) and
    hands the row to the writer's *worker*, which computes the state root from the row's own
    bytes, writes it into the row and stores the row. At most one checkpoint is in flight; a
    failure to store it is raised by the next ``write``, by ``roots`` or by ``finish``.

    The worker is one background thread for a large state (``is_background``): commitment and
    storage then overlap the next steps (hashlib releases the GIL on large buffers, torch inside
    its kernels, and on a GPU the host is otherwise idle). A small state is committed and stored on
    the training thread, at once: a thread's handoffs cost more than the work it would hide (the
    default job, 38 KB rows: wall +7.5 % inline against +21 % threaded over its plain loop, load
    0.0; CNN, transformer and the 1.6 MB ``gpt`` preset: inline as fast or faster). Either way
    the same bytes are stored and an error surfaces at the same call."""

    def __init__(self, path: str | os.PathLike[str], template: Mapping[str, np.ndarray], interval: int,
                 num_checkpoints: int, hashing: Hashing = SHA256, run: dict[str, str] | None = None,
                 background: bool | None = None):
        """``background``: the worker is a thread (``True``) or the caller (``False``); by default
        ``is_background`` of the row's size."""
        self.path = storage.as_location(path)
        self.tmp = partial_path(self.path)
        self.layout = compute_layout(template, interval)
        attributes = {"interval": interval, "num_checkpoints": num_checkpoints, "hash_name": str(hashing),
                      "run": dict(run or {}), "layout": self.layout.to_attr()}
        self.start_worker(hashing, {}, is_background(self.layout.row_bytes) if background is None else background)
        # The store is created by the worker too, on a thread while the first steps run (its
        # error, if any, is raised by the first ``wait``, like a checkpoint's).
        self.store = self.worker.submit(self.create, num_checkpoints, attributes)

    def create(self, num_checkpoints: int, attributes: dict) -> tuple[dict, ArrayV3Metadata]:
        """A new partial store: its group's document (with ``attributes``) and its rows array's, each
        stored as the one object zarr reads; returns the attributes and the rows' metadata."""
        storage.remove(self.tmp)
        rows = get_rows_metadata(num_checkpoints, self.layout.row_bytes)
        self.save_group(attributes)
        storage.write_bytes(storage.join(self.tmp, ROWS, storage.COMPLETION_MARKER), get_rows_document(*rows.shape),
                            make_parents=True)
        return attributes, rows

    def save_group(self, attributes: dict) -> None:
        """Store the group's metadata document with ``attributes``, made by zarr's own
        ``GroupMetadata`` (no round trip to zarr's event loop: through it, the store's creation
        and publication cost the default job 12 ms a run in situ, a twentieth of its training)."""
        storage.write_bytes(storage.join(self.tmp, storage.COMPLETION_MARKER),
                            get_document(GroupMetadata(attributes=attributes)), make_parents=True)

    @property
    def attributes(self) -> dict:
        """The group's attributes, as created or reopened (no ``roots`` yet)."""
        return self.store.result()[0]

    @property
    def rows_metadata(self) -> ArrayV3Metadata:
        """zarr's metadata of the store's ``rows`` array (its shape and chunk keys)."""
        return self.store.result()[1]

    @classmethod
    def reopen(cls, path: str | os.PathLike[str], partial: PartialCheckpoints) -> CheckpointWriter:
        """A writer that continues the partial store ``partial`` of ``path`` after its last checkpoint."""
        writer = cls.__new__(cls)
        writer.path, writer.tmp = storage.as_location(path), partial.path
        group = storage.open_group(partial.path, mode="r")
        writer.layout, writer.store = partial.layout, Future()
        writer.store.set_result((group.attrs.asdict(), group[ROWS].metadata))
        writer.start_worker(partial.hashing, dict(enumerate(partial.roots)), is_background(writer.layout.row_bytes))
        return writer

    def start_worker(self, hashing: Hashing, roots: dict[int, Root], background: bool) -> None:
        """The worker that creates the store and commits to and stores checkpoints (a thread, or
        the caller: ``InlineExecutor``), none in flight yet."""
        self.hashing, self.committed = hashing, roots
        self.worker: Executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="pinpoint-checkpoints")
                                 if background else InlineExecutor())
        self.pending: tuple[int, Future[Root]] | None = None

    def write(self, index: int, arrays: Mapping[str, np.ndarray], losses: Sequence[float]) -> None:
        """Commit to and store checkpoint ``index`` (in the background): the state's ``arrays``
        (``State.to_arrays``) and the ``losses`` of the interval that ends at it."""
        row = pack_row(self.layout, arrays, Root(bytes(ROOT_BYTES)), losses)  # the root comes in ``commit``
        self.wait()
        self.pending = index, self.worker.submit(self.commit, index, row)

    def commit(self, index: int, row: np.ndarray) -> Root:
        """The state root of a packed row, written into it; then the row, stored as its chunk
        object (``write_chunk``; zarr reads it back)."""
        rows = self.rows_metadata  # the store was created before, by this worker (or its error, raised here)
        root = buffer_state_root(row, self.layout.root_entries, self.hashing)  # = state_root of the state
        row[:ROOT_BYTES] = np.frombuffer(root, np.uint8)
        write_chunk(self.tmp, rows, index, row)
        return root

    def wait(self) -> None:
        """Until the checkpoint in flight is stored (its error, if any, is raised here)."""
        pending, self.pending = self.pending, None
        self.store.result()
        if pending is not None:
            index, future = pending
            self.committed[index] = future.result()

    def roots(self) -> list[Root]:
        """The state roots of every checkpoint written so far, in index order (waits for the one
        in flight)."""
        self.wait()
        return [self.committed[index] for index in sorted(self.committed)]

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

    def finish(self) -> list[Root]:
        """Record the committed roots (the completion marker), publish the store, and return them."""
        try:
            roots = self.roots()
        finally:
            self.worker.shutdown(wait=True)
        self.save_group({**self.attributes, "roots": encode_roots(roots)})
        storage.publish(self.tmp, self.path)
        return roots


@functools.lru_cache(maxsize=64)
def get_rows_metadata(num_checkpoints: int, row_bytes: int) -> ArrayV3Metadata:
    """zarr's metadata of a store's ``rows`` array: ``num_checkpoints`` raw chunks of ``row_bytes``
    bytes each (``require_raw_chunks``). Made by zarr in memory, once per shape: each of zarr's
    calls is a round trip to its event loop."""
    rows = zarr.create_array(MemoryStore(), name=ROWS, shape=(num_checkpoints, row_bytes), chunks=(1, row_bytes),
                             dtype="u1", fill_value=0, compressors=None, chunk_key_encoding=CHUNK_KEYS)
    require_raw_chunks(rows, f"rows of {num_checkpoints} x {row_bytes} bytes")
    return rows.metadata


@functools.lru_cache(maxsize=64)
def get_rows_document(num_checkpoints: int, row_bytes: int) -> bytes:
    """``get_document`` of ``get_rows_metadata``, made once per shape."""
    return get_document(get_rows_metadata(num_checkpoints, row_bytes))


def get_document(metadata: ArrayV3Metadata | GroupMetadata) -> bytes:
    """The ``zarr.json`` document of an array's or a group's metadata, as zarr writes it."""
    return metadata.to_buffer_dict(default_buffer_prototype())[storage.COMPLETION_MARKER].to_bytes()


# Rows from this size on are committed and stored by a background thread (``CheckpointWriter``):
# hashing them takes milliseconds (SHA-256 at 1-2 GB/s), which the thread overlaps with training.
BACKGROUND_ROW_BYTES = 4 * 2**20


def is_background(row_bytes: int) -> bool:
    """Whether a writer of rows of ``row_bytes`` bytes commits to and stores them on a thread."""
    return row_bytes >= BACKGROUND_ROW_BYTES


class InlineExecutor(Executor):
    """An executor that runs each call at once, on the caller's thread: the call's result or its
    error is in the future it returns, to be raised where a thread's would be."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 -- held by the future, raised by its ``result``
            future.set_exception(exc)
        return future


def require_raw_chunks(rows: zarr.Array, where: str) -> None:
    """``CheckpointError`` unless a chunk of ``rows`` is stored as its bytes, unchanged: one
    serializer (``bytes``), no filters, no compressor — what ``write_chunk`` relies on."""
    codecs = rows.metadata.codecs
    if len(codecs) != 1 or type(codecs[0]).__name__ != "BytesCodec" or rows.dtype != np.uint8:
        raise CheckpointError(f"checkpoint store {where!r}: rows are stored through {codecs}, not as raw bytes")


def write_chunk(location: storage.Location, rows: ArrayV3Metadata, index: int, row: np.ndarray) -> None:
    """Store row ``index`` as the chunk object zarr reads for it, given the ``rows`` array's
    metadata (key ``rows/c.<index>.0``; a store written before ``CHUNK_KEYS`` has
    ``rows/c/<index>/0``, and its own metadata says so).

    With raw chunks (``require_raw_chunks``) the object is the row's bytes, so one write of them is
    what ``rows[index] = row`` stores; zarr's own write goes through its event loop and a worker
    thread and cost 1.6 ms per checkpoint here, this one 0.1 ms."""
    key = storage.join(location, ROWS, rows.encode_chunk_key((index, 0)))
    storage.write_bytes(key, memoryview(row), make_parents=True)


def count_stored(path: str | os.PathLike[str]) -> int:
    """How many checkpoints the run at ``path`` has stored so far: the chunk objects of its
    partial store while it trains, of its finished store afterwards; 0 when there is neither.
    For progress reports only (one listing, nothing read or checked)."""
    for location in (partial_path(path), storage.as_location(path)):
        fs, rows = storage.get_fs(storage.join(location, ROWS))
        try:
            names = [name.rsplit("/", 1)[-1] for name in fs.ls(rows, detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            continue
        if "c" in names:  # a store of nested chunk keys (``c/<index>/0``)
            return len(fs.ls(f"{rows}/c", detail=False))
        return sum(name.startswith("c.") for name in names)
    return 0


def discard_partial(path: str | os.PathLike[str]) -> None:
    """Remove the partial store of ``path``, if any."""
    storage.remove(partial_path(path))


def open_store(path: str | os.PathLike[str]) -> zarr.Group:
    try:
        return storage.open_group(path, mode="r")
    except Exception as exc:  # zarr raises several types for a missing or unreadable store
        raise CheckpointError(f"checkpoint store {str(path)!r} cannot be opened: {exc}") from exc


def _require(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise CheckpointError(f"{where}: {problem}")


def get_store_hashing(attrs: Mapping[str, Any], where: str) -> Hashing:
    """The hash context of the ``hash_name`` a store records, resolved once as the store is read."""
    try:
        return get_hashing(attrs.get("hash_name"))
    except UnknownHashError:
        raise CheckpointError(f"{where}: records unknown hash_name {attrs.get('hash_name')!r}") from None


def is_count(value: object) -> bool:
    return type(value) is int and value >= 1


def get_layout(group: zarr.Group, where: str) -> RowLayout:
    """The store's layout, checked against its rows array."""
    interval = group.attrs.get("interval")
    _require(is_count(interval), where, f"bad interval {interval!r}")
    layout = decode_layout(group.attrs.get("layout"), interval, where)
    try:
        rows = group[ROWS]
    except Exception as exc:  # zarr raises several types for missing or corrupt array metadata
        raise CheckpointError(f"{where}: its rows cannot be opened: {exc}") from exc
    # Rule: every row holds exactly the bytes the layout names.
    _require(isinstance(rows, zarr.Array) and rows.ndim == 2 and rows.shape[1] == layout.row_bytes, where,
             f"rows {getattr(rows, 'shape', rows)!r} do not hold rows of {layout.row_bytes} bytes")
    return layout


def read_row(path: str | os.PathLike[str], group: zarr.Group, index: int) -> np.ndarray:
    """The bytes of row ``index``."""
    try:
        return np.asarray(group[ROWS][index])
    except Exception as exc:  # zarr/numcodecs raise several types for corrupt chunks and metadata
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} is unreadable: {exc}") from exc


def get_committed_root(path: str | os.PathLike[str], group: zarr.Group, index: int) -> Root | None:
    """The root ``finish`` committed for checkpoint ``index``; None in a partial store."""
    roots = group.attrs.get("roots")
    if roots is None:
        return None
    _require(isinstance(roots, list) and index < len(roots), f"checkpoint store {str(path)!r}",
             f"records roots {roots!r}, none for checkpoint #{index}")
    return decode_store_root(roots[index], f"checkpoint store {str(path)!r}")


def read_checkpoint(path: str | os.PathLike[str], index: int, device="cpu") -> State:
    """The state stored at checkpoint ``index`` (step ``index * interval``), checked against the
    root its row records and, in a finished store, the committed one."""
    group, where = open_store(path), f"checkpoint store {str(path)!r}"
    roots, total = group.attrs.get("roots"), group.attrs.get("num_checkpoints")
    count = len(roots) if isinstance(roots, list) else total
    if type(count) is not int or not 0 <= index < count:
        held = f"{count!r} of {total!r}" if count != total else f"{count!r}"
        raise CheckpointError(f"{where} holds {held} checkpoints, asked for #{index}")
    arrays = read_verified_row(path, group, get_layout(group, where), index, get_store_hashing(group.attrs, where))[2]
    try:
        return state_from_arrays(arrays, device)
    except Exception as exc:  # a layout whose names are not a State's
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} is not a state: {exc}") from exc


def read_verified_row(path: str | os.PathLike[str], group: zarr.Group, layout: RowLayout, index: int,
                      hashing: Hashing) -> tuple[Root, tuple[float, ...], dict[str, np.ndarray]]:
    """Row ``index`` unpacked, after checking its tensors against the root it records (and, in a
    finished store, against the committed root)."""
    row = read_row(path, group, index)
    recorded, losses, arrays = unpack_row(layout, row)
    committed = get_committed_root(path, group, index)
    # Rule: a row that was never stored reads as zeros (zarr's fill value): it holds no checkpoint
    if recorded == bytes(ROOT_BYTES):
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} is not stored"
                              + (f" (committed root {committed.hex()})" if committed else ""))
    root = buffer_state_root(row, layout.root_entries, hashing)  # = state_root(arrays)
    # Rule: a checkpoint is used only if it hashes to the root recorded when it was written
    if root != recorded or committed not in (None, recorded):
        raise CheckpointError(f"checkpoint #{index} in {str(path)!r} has root {root.hex()}, "
                              f"recorded {(committed or recorded).hex()}: the store is corrupted")
    return recorded, losses, arrays


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


@dataclass(frozen=True)
class PartialCheckpoints:
    """What an interrupted run left in ``<path>.partial``: checkpoints ``0 … written-1``, their
    recorded roots, and the losses of steps ``1 … (written-1)·interval``."""

    path: storage.Location
    interval: int
    num_checkpoints: int
    hashing: Hashing
    run: dict[str, str]
    layout: RowLayout
    roots: tuple[Root, ...]
    losses: tuple[float, ...]

    @property
    def written(self) -> int:
        return len(self.roots)


def open_partial(path: str | os.PathLike[str]) -> PartialCheckpoints:
    """The progress of the partial store of ``path``: its leading rows that are stored, hash to
    the root they record and hold step ``i·k`` (see *no progress count*), with their roots and
    losses; ``CheckpointError`` naming the store and the problem when it is not a store of
    checkpoints or holds not even ``S_0``."""
    tmp = partial_path(path)
    return read_progress(tmp, f"partial checkpoint store {str(tmp)!r}")


def open_finished(path: str | os.PathLike[str]) -> PartialCheckpoints:
    """A finished (published) store read like a partial one, all of it: every checkpoint stored,
    hashing to its committed root and holding its step; ``CheckpointError`` otherwise. What a
    rerun of the same run reuses instead of training again."""
    location = storage.as_location(path)
    where = f"checkpoint store {str(location)!r}"
    committed = read_roots(location)
    progress = read_progress(location, where)
    # Rule: a finished store is reused only whole: every committed checkpoint read back and checked
    if list(progress.roots) != committed:
        first_bad = progress.written
        try:  # the first checkpoint that is not intact names its own problem
            read_verified_row(location, open_store(location), progress.layout, first_bad, progress.hashing)
        except CheckpointError as exc:
            raise CheckpointError(f"{where} holds {first_bad} intact checkpoints of the {len(committed)} "
                                  f"it committed: {exc}") from None
        raise CheckpointError(f"{where}: checkpoint #{first_bad} does not hold step {first_bad * progress.interval}")
    return progress


def read_progress(location: storage.Location, where: str) -> PartialCheckpoints:
    group = open_store(location)
    attrs = dict(group.attrs)
    total, run = attrs.get("num_checkpoints"), attrs.get("run")
    _require(is_count(total), where, f"bad num_checkpoints {total!r}")
    hashing = get_store_hashing(attrs, where)
    _require(isinstance(run, dict), where, f"run identity {run!r} is not a mapping")
    layout = get_layout(group, where)
    rows, problem = [], ""
    while len(rows) < total and not problem:
        try:
            rows.append(read_verified_row(location, group, layout, len(rows), hashing))
        except CheckpointError as exc:
            problem = str(exc)
    # Rule: checkpoint #i holds S_{i·k}; progress ends at the first row that does not
    steps = [int(arrays.get(STEP_KEY, -1)) for _, _, arrays in rows]
    count = next((i for i, step in enumerate(steps) if step != i * layout.interval), len(rows))
    # Rule: a partial store is resumed only from S_0 on
    _require(count >= 1, where, f"holds no usable checkpoint #0 ({problem or 'it is not S_0'})")
    kept = rows[:count]
    return PartialCheckpoints(location, layout.interval, total, hashing, dict(run), layout,
                              tuple(root for root, _, _ in kept),
                              tuple(loss for _, losses, _ in kept[1:] for loss in losses))
