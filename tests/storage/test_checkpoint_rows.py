"""The checkpoint store's rows: one object per checkpoint, written directly, read back by zarr."""

from __future__ import annotations

import struct
import uuid

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from datasets import storage
from proofs.encoding import buffer_state_root, state_root
from proofs.types import Root
from verification.execution.checkpoints import (
    BACKGROUND_ROW_BYTES,
    CHUNK_KEYS,
    CheckpointError,
    CheckpointWriter,
    compute_layout,
    count_stored,
    is_background,
    pack_row,
    partial_path,
    read_checkpoint,
    unpack_row,
    write_chunk,
)
from verification.execution.state import RNG_KEY, STEP_KEY


def make_arrays(step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(step)
    return {STEP_KEY: np.asarray(step, np.int64), RNG_KEY: np.asarray(7, np.uint64),
            "param/w": rng.standard_normal((5, 3)).astype(np.float32),
            "param/b": rng.standard_normal(4).astype(np.float16)}


@pytest.fixture(params=["local", "memory"])
def location(request, tmp_path):
    if request.param == "local":
        yield storage.as_location(tmp_path / "c.zarr")
        return
    prefix = f"memory://pinpoint-test-{uuid.uuid4().hex}"
    yield storage.join(prefix, "c.zarr")
    storage.remove(prefix)


@pytest.fixture(params=[True, False], ids=["thread", "inline"])
def background(request):
    """Whether the writer under test commits and stores on a thread or on the caller's."""
    return request.param


def test_a_small_state_is_written_inline_and_a_large_one_on_a_thread(tmp_path):
    assert not is_background(BACKGROUND_ROW_BYTES - 1) and is_background(BACKGROUND_ROW_BYTES)
    small = CheckpointWriter(tmp_path / "small.zarr", make_arrays(0), 2, 3)
    large = CheckpointWriter(tmp_path / "large.zarr", {"param/w": np.zeros(BACKGROUND_ROW_BYTES // 4, np.float32)}, 2, 3)
    try:
        assert small.rows_metadata is not None and not hasattr(small.worker, "_threads")  # created at once, here
        assert large.worker._max_workers == 1
    finally:
        small.close()
        large.close()


def test_a_thread_and_the_caller_store_the_same_objects(tmp_path):
    stored = []
    for background in (True, False):
        writer = CheckpointWriter(tmp_path / f"{background}.zarr", make_arrays(0), 2, 3, background=background)
        for index in range(3):
            writer.write(index, make_arrays(2 * index), (float(index),) * (2 if index else 0))
        roots = writer.finish()
        fs, base = storage.get_fs(storage.as_location(tmp_path / f"{background}.zarr" / "rows"))
        stored.append((roots, [fs.cat_file(f"{base}/c.{i}.0") for i in range(3)]))
    assert stored[0] == stored[1]


def test_the_metadata_documents_are_the_ones_zarr_writes_itself(tmp_path):
    """The writer stores zarr's documents without zarr's event loop; zarr, making the same group
    and array in place, writes the same bytes."""
    arrays = make_arrays(0)
    writer = CheckpointWriter(tmp_path / "c.zarr", arrays, 2, 3, run={"job": "j"})
    writer.write(0, arrays, ())
    writer.close()
    attributes = storage.open_group(writer.tmp, mode="r").attrs.asdict()
    group = zarr.open_group(tmp_path / "zarr.zarr", mode="w", attributes=attributes)
    group.create_array("rows", shape=(3, writer.layout.row_bytes), chunks=(1, writer.layout.row_bytes), dtype="u1",
                       fill_value=0, compressors=None, chunk_key_encoding=CHUNK_KEYS)
    for document in ("zarr.json", "rows/zarr.json"):
        assert (tmp_path / 'c.zarr.partial' / document).read_bytes() == (tmp_path / "zarr.zarr" / document).read_bytes()


def test_a_directly_written_row_is_the_object_zarr_writes_and_reads(location):
    arrays = make_arrays(0)
    writer = CheckpointWriter(location, arrays, 2, 3)
    row = pack_row(writer.layout, arrays, state_root(arrays), (0.5, -0.0))
    write_chunk(writer.tmp, writer.rows_metadata, 1, row)
    on_store = storage.open_group(writer.tmp, mode="r+")["rows"]
    on_store[2] = row  # zarr's own write of the same row
    fs, base = storage.get_fs(storage.join(writer.tmp, "rows"))
    assert fs.cat_file(f"{base}/c.1.0") == fs.cat_file(f"{base}/c.2.0") == row.tobytes()
    assert np.array_equal(np.asarray(on_store[1]), row)
    writer.close()


def test_rows_keep_every_bit_of_the_losses_and_tensors():
    arrays = make_arrays(3)
    layout = compute_layout(arrays, 4)
    nan_with_payload = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_1234))[0]
    losses = (1.25, -0.0, float("inf"), nan_with_payload)
    root, back_losses, back = unpack_row(layout, pack_row(layout, arrays, state_root(arrays), losses))
    assert root == state_root(arrays) and list(back) == list(arrays)
    assert [struct.pack("<d", v) for v in back_losses] == [struct.pack("<d", v) for v in losses]
    assert all(np.array_equal(back[name], arrays[name]) and back[name].dtype == arrays[name].dtype for name in arrays)


def test_a_state_that_does_not_fit_the_layout_is_refused_by_name():
    layout = compute_layout(make_arrays(0), 2)
    other = {**make_arrays(0), "param/w": np.zeros((3, 5), np.float32)}
    with pytest.raises(CheckpointError, match="does not fit the store's layout"):
        pack_row(layout, other, bytes(32), ())
    with pytest.raises(CheckpointError, match="3 losses for one checkpoint interval of 2 steps"):
        pack_row(layout, make_arrays(0), bytes(32), (1.0, 2.0, 3.0))


def test_the_progress_record_does_not_grow_with_the_number_of_steps(tmp_path, background):
    """Storing checkpoints leaves the group metadata as it was: no count, no list of losses or roots."""
    arrays, sizes = make_arrays(0), []
    writer = CheckpointWriter(tmp_path / "c.zarr", arrays, 50, 6, background=background)
    for index in range(6):
        step_arrays = {**make_arrays(index), STEP_KEY: np.asarray(index * 50, np.int64)}
        writer.write(index, step_arrays, (float(index),) * (50 if index else 0))
        writer.wait()
        sizes.append((tmp_path / "c.zarr.partial" / "zarr.json").stat().st_size)
    writer.close()
    assert len(set(sizes)) == 1
    assert read_checkpoint(tmp_path / "c.zarr.partial", 5).step == 250


def test_a_store_that_cannot_be_created_fails_the_first_write_and_the_writer_still_closes(tmp_path, background):
    """The store is created by the writer's worker; its error is the first ``write``'s."""
    (tmp_path / "file").write_text("not a directory")
    writer = CheckpointWriter(tmp_path / "file" / "c.zarr", make_arrays(0), 2, 3, background=background)
    with pytest.raises(OSError) as raised:
        writer.write(0, make_arrays(0), ())
        writer.roots()
    assert "file" in str(raised.value)
    writer.close()  # no hang, no second error
    threads = getattr(writer.worker, "_threads", ())
    assert not any(t.is_alive() for t in threads)


def test_count_stored_follows_a_run_from_nothing_to_published(location, background):
    assert count_stored(location) == 0
    writer = CheckpointWriter(location, make_arrays(0), 2, 3, background=background)
    for index in range(2):
        writer.write(index, make_arrays(2 * index), (0.0,) * (2 if index else 0))
        writer.wait()
        assert count_stored(location) == index + 1
    writer.write(2, make_arrays(4), (0.0, 0.0))
    writer.finish()
    assert count_stored(location) == 3 and not storage.exists(partial_path(location))


def test_a_store_is_zarrs_own_with_every_checkpoint_one_object_beside_the_others(location, background):
    writer = CheckpointWriter(location, make_arrays(0), 2, 3, background=background)
    for index in range(3):
        writer.write(index, make_arrays(2 * index), (0.0,) * (2 if index else 0))
    roots = writer.finish()
    fs, base = storage.get_fs(storage.join(location, "rows"))
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(base, detail=False)) == ["c.0.0", "c.1.0", "c.2.0", "zarr.json"]
    group = storage.open_group(location, mode="r")  # zarr reads what was stored without it
    assert group.attrs["num_checkpoints"] == 3 and len(group.attrs["roots"]) == 3
    assert [read_checkpoint(location, i).step for i in range(3)] == [0, 2, 4] and len(roots) == 3


def test_count_stored_reads_a_store_of_nested_chunk_keys(tmp_path):
    """Stores written before the flat keys keep theirs (``rows/c/<index>/0``); progress counts them."""
    group = storage.open_group(storage.as_location(tmp_path / "old.zarr"), mode="w")
    rows = group.create_array("rows", shape=(3, 8), chunks=(1, 8), dtype="u1", fill_value=0, compressors=None)
    rows[0], rows[1] = np.ones(8, np.uint8), np.ones(8, np.uint8)
    assert (tmp_path / "old.zarr" / "rows" / "c" / "1" / "0").exists()
    assert count_stored(tmp_path / "old.zarr") == 2


DTYPES = ["<f4", "<f8", "<f2", "<i8", "<u8", "|b1", "<c8", "|u1"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(0, 5), max_size=3), st.booleans()),
                min_size=1, max_size=6),
       st.integers(0, 2**32 - 1))
def test_the_row_root_is_the_state_root_of_its_tensors(specs, seed):
    """``buffer_state_root`` over a packed row = ``state_root`` over the same arrays: any dtypes,
    0-d and empty tensors, NaNs (canonicalised) and multi-chunk tensors."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (dtype, shape, nan) in enumerate(specs):
        values = rng.standard_normal(tuple(shape)) * 100
        array = np.asarray(values).astype(np.dtype(dtype))
        if nan and array.dtype.kind in "fc" and array.size:
            array.reshape(-1)[rng.integers(array.size)] = np.nan
        arrays[f"t{i:02d}/{dtype}"] = array
    arrays["big"] = rng.standard_normal(3 * (1 << 16) + 7).astype(np.float32)  # several chunks
    arrays = dict(sorted(arrays.items()))
    layout = compute_layout(arrays, 2)
    row = pack_row(layout, arrays, Root(bytes(32)), (0.0, 1.0))
    assert buffer_state_root(row, layout.root_entries) == state_root(arrays)
