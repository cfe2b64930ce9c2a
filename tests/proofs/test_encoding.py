import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proofs.encoding import (
    CHUNK_TARGET_BYTES,
    EncodingError,
    canonical_array,
    chunk_count,
    chunk_proof,
    chunk_rows,
    chunk_shape,
    rows_per_chunk,
    state_leaves,
    state_root,
    tensor_proof,
    tensor_root,
    trace_proof,
    trace_root,
    verify_chunk,
    verify_tensor,
    verify_trace_proof,
)
from proofs.hashing import BLAKE3, DOMAIN_TRACE, HASHINGS, SHA256
from proofs.merkle import MerkleProof, hash_leaf, verify_merkle_proof

RNG = np.random.default_rng(0)


def small_state():
    return {
        "layer.weight": RNG.standard_normal((300, 70)).astype(np.float32),
        "layer.bias": np.zeros(70, dtype=np.float32),
        "step": np.int64(12),
        "rng": np.arange(16, dtype=np.uint8),
        "empty": np.zeros((0, 3), dtype=np.float64),
    }


@pytest.mark.parametrize(
    ("shape", "dtype", "rows", "count"),
    [
        ((), "<f4", 1, 1),
        ((10,), "<f4", CHUNK_TARGET_BYTES // 4, 1),
        ((100_000,), "<f8", 8192, 13),
        ((300, 70), "<f4", 234, 2),
        ((5, 100_000), "<f4", 1, 5),
        ((0, 3), "<f8", CHUNK_TARGET_BYTES // 24, 0),
        ((4, 0), "<f8", CHUNK_TARGET_BYTES, 1),
    ],
)
def test_chunking_rule(shape, dtype, rows, count):
    dtype = np.dtype(dtype)
    assert rows_per_chunk(shape, dtype) == rows
    assert chunk_count(shape, dtype) == count
    assert chunk_shape(shape, dtype) == (() if shape == () else (rows, *shape[1:]))


def test_roots_do_not_depend_on_byte_order_layout_or_insertion_order():
    state = small_state()
    weight = state["layer.weight"]
    assert tensor_root("w", weight) == tensor_root("w", weight.astype(">f4"))
    assert tensor_root("w", weight) == tensor_root("w", np.asfortranarray(weight))
    assert tensor_root("w", weight[::2]) == tensor_root("w", weight[::2].copy())
    assert state_root(state) == state_root(dict(reversed(list(state.items()))))


def test_hashing_reads_contiguous_little_endian_arrays_in_place():
    array = np.arange(1000, dtype="<f8")
    assert np.shares_memory(canonical_array("a", array), array)
    assert canonical_array("a", array.astype(">f8")).dtype.str == "<f8"


@pytest.mark.parametrize(("dtype", "bits"), [("<f4", "<u4"), ("<f8", "<u8"), ("<f2", "<u2"), ("<c8", "<u4")])
def test_every_nan_is_committed_as_the_canonical_one(dtype, bits):
    """A NaN's sign and payload are the hardware's choice (IEEE 754), not the computation's."""
    plain = np.array([1.5, np.nan, -2.0, np.nan], dtype=dtype)
    odd = plain.copy()
    odd.view(bits)[1 if plain.dtype.kind == "f" else 2] |= 1  # a payload bit
    odd.view(bits)[3 if plain.dtype.kind == "f" else 6] |= np.array(1, bits) << (8 * np.dtype(bits).itemsize - 1)  # -nan
    assert not np.array_equal(odd.view(bits), plain.view(bits))
    assert tensor_root("t", odd) == tensor_root("t", plain)
    assert np.array_equal(canonical_array("t", odd).view(bits), canonical_array("t", plain).view(bits))
    assert tensor_root("t", odd) != tensor_root("t", np.nan_to_num(plain))
    assert np.isnan(odd).sum() == 2  # the input is not modified
    array = np.arange(8, dtype=dtype)
    assert np.shares_memory(canonical_array("t", array), array)  # no NaN: no copy
    scalar = np.array(complex(1, np.nan) if plain.dtype.kind == "c" else np.nan, dtype=dtype)  # 0-d
    flipped = np.array(complex(1, -np.nan) if plain.dtype.kind == "c" else -np.nan, dtype=dtype)
    assert tensor_root("t", scalar) == tensor_root("t", flipped)


def test_roots_bind_name_dtype_shape_and_data():
    a = np.arange(12, dtype=np.int32)
    root = tensor_root("a", a)
    assert root != tensor_root("b", a)
    assert root != tensor_root("a", a.astype(np.uint32))
    assert root != tensor_root("a", a.reshape(3, 4))
    changed = a.copy()
    changed[-1] += 1
    assert root != tensor_root("a", changed)
    assert tensor_root("a", a, SHA256) != tensor_root("a", a, BLAKE3)
    assert tensor_root("x", np.float32(0.0)) != tensor_root("x", np.float32(-0.0))
    assert tensor_root("x", np.float32(1.0)) != tensor_root("x", np.ones(1, np.float32))


@pytest.mark.parametrize(
    "array",
    [np.array(["a"]), np.array([object()]), np.zeros(2, dtype="i4,f4"), np.array([1, 2], "M8[s]")],
)
def test_non_numeric_dtypes_are_rejected_by_name(array):
    with pytest.raises(EncodingError, match="'bad'"):
        tensor_root("bad", array)


def test_bad_names_and_values_are_rejected():
    with pytest.raises(EncodingError, match="7"):
        state_root({7: np.zeros(1)})
    with pytest.raises(EncodingError, match="surrogate|UTF-8"):
        tensor_root("\ud800", np.zeros(1))
    with pytest.raises(EncodingError, match="'x'"):
        tensor_root("x", [1, 2, 3])


@pytest.mark.parametrize("hashing", HASHINGS, ids=str)
def test_state_leaves_are_sorted_and_proofs_open_tensors(hashing):
    state = small_state()
    leaves = state_leaves(state, hashing)
    assert [name for name, _ in leaves] == sorted(state)
    root = state_root(state, hashing)
    for name, array in state.items():
        proof = tensor_proof(state, name, hashing)
        assert verify_tensor(root, name, array, proof, hashing)
        assert np.size(array) == 0 or not verify_tensor(root, name, array + 1, proof, hashing)
        assert not verify_tensor(root, name + "_", array, proof, hashing)


def test_verify_tensor_never_raises():
    state = small_state()
    root, proof = state_root(state), tensor_proof(state, "rng")
    assert not verify_tensor(root, "rng", np.array(["x"]), proof)
    assert not verify_tensor(root, 3, state["rng"], proof)
    assert not verify_tensor(root, "rng", state["rng"], None)
    assert not verify_tensor(root, "rng", state["rng"], proof, "md5")
    with pytest.raises(KeyError, match="missing"):
        tensor_proof(state, "missing")


@pytest.mark.parametrize("hashing", HASHINGS, ids=str)
def test_every_chunk_verifies_alone(hashing):
    array = RNG.standard_normal((40_000,)).astype(np.float32)
    root = tensor_root("v", array, hashing)
    count = chunk_count(array.shape, array.dtype)
    assert count == 3
    for index in range(count):
        start, stop = chunk_rows(array.shape, array.dtype, index)
        proof = chunk_proof("v", array, index, hashing)
        chunk = array[start:stop]
        assert verify_chunk(root, "v", array.shape, array.dtype, index, chunk, proof, hashing)
        assert verify_chunk(root, "v", array.shape, "<f4", index, chunk.tobytes(), proof, hashing)
        assert not verify_chunk(root, "w", array.shape, "<f4", index, chunk, proof, hashing)
        assert not verify_chunk(root, "v", (40_001,), "<f4", index, chunk, proof, hashing)
        assert not verify_chunk(
            root, "v", array.shape, "<i4", index, chunk.view("<i4"), proof, hashing
        )
        assert not verify_chunk(root, "v", array.shape, "<f4", index, chunk[::-1], proof, hashing)
    other = chunk_proof("v", array, 0, hashing)
    first = array[slice(*chunk_rows(array.shape, array.dtype, 0))]
    assert not verify_chunk(root, "v", array.shape, "<f4", 1, first, other, hashing)


def test_verify_chunk_never_raises():
    array = np.arange(10, dtype=np.int16)
    root, proof = tensor_root("a", array), chunk_proof("a", array, 0)
    good = ("a", (10,), "<i2", 0, array, proof)
    assert verify_chunk(root, *good)
    for bad in [
        ("a", (10,), "nonsense", 0, array, proof),
        ("a", (-1,), "<i2", 0, array, proof),
        ("a", (10,), "<i2", 1, array, proof),
        ("a", (10,), "<i2", 0, array[:5], proof),
        ("a", (10,), "<i2", 0, array.tobytes()[:-1], proof),
        ("a", (10,), "<i2", 0, "text", proof),
        ("a", (10,), "<i2", 0, array, None),
        (None, (10,), "<i2", 0, array, proof),
        ("a", None, "<i2", 0, array, proof),
        ("a", (10,), "<i2", 0.0, array, proof),
    ]:
        assert verify_chunk(root, *bad) is False
    assert verify_chunk(b"short", *good) is False
    assert verify_chunk(root, *good, hashing="md5") is False
    with pytest.raises(IndexError, match="chunk 1"):
        chunk_proof("a", array, 1)


def test_a_zarr_chunk_is_one_leaf():
    array = RNG.standard_normal((1000, 48)).astype(np.float32)
    shape = chunk_shape(array.shape, array.dtype)
    stored = zarr.create_array(
        store=zarr.storage.MemoryStore(), shape=array.shape, chunks=shape, dtype=array.dtype
    )
    stored[:] = array
    root = tensor_root("x", array)
    assert stored.nchunks == chunk_count(array.shape, array.dtype) == 3
    for index in range(stored.nchunks):
        start, stop = chunk_rows(array.shape, array.dtype, index)
        chunk = stored[start:stop]
        proof = chunk_proof("x", array, index)
        assert verify_chunk(root, "x", stored.shape, stored.dtype, index, chunk, proof)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.one_of(
            hnp.boolean_dtypes(),
            hnp.integer_dtypes(),
            hnp.floating_dtypes(),
            hnp.complex_number_dtypes(),
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
    )
)
def test_any_numeric_array_opens_chunk_by_chunk(array):
    root = tensor_root("t", array)
    assert root == tensor_root("t", array.astype(array.dtype.newbyteorder(">")))
    for index in range(chunk_count(array.shape, array.dtype)):
        start, stop = chunk_rows(array.shape, array.dtype, index)
        chunk = array if array.ndim == 0 else array[start:stop]
        proof = chunk_proof("t", array, index)
        assert verify_chunk(root, "t", array.shape, array.dtype, index, chunk, proof)


@pytest.mark.parametrize("hashing", HASHINGS, ids=str)
def test_trace_proofs(hashing):
    states = [
        state_root({"w": np.full(3, step, np.float32)}, hashing) for step in range(0, 50, 10)
    ]
    root, size = trace_root(states, hashing), len(states)
    for index, state in enumerate(states):
        proof = trace_proof(states, index, hashing)
        assert verify_trace_proof(root, state, proof, hashing, index=index, size=size)
        assert not verify_trace_proof(root, state, proof, hashing, index=index, size=size + 1)
        assert not verify_trace_proof(root, state, proof, hashing, index=index - 1, size=size)
        other = states[(index + 1) % size]
        assert not verify_trace_proof(root, other, proof, hashing, index=index, size=size)
    proof = trace_proof(states, 0, hashing)
    assert not verify_trace_proof(root, None, proof, hashing, index=0, size=size)
    assert not verify_trace_proof(root, states[0], proof, "md5", index=0, size=size)
    assert root != trace_root(states[:-1], hashing)


def test_trace_openings_need_the_verifiers_size():
    """A malformed 5-leaf tree opens index 2 as leaf 4 when read as a 3-leaf tree."""
    states = [bytes([i]) * 32 for i in range(5)]
    root = trace_root(states)
    honest = trace_proof(states, 2)
    forged = MerkleProof(2, 3, (trace_proof(states, 4).path[0],))
    assert verify_merkle_proof(root, hash_leaf(states[4], DOMAIN_TRACE), forged, DOMAIN_TRACE)
    assert verify_trace_proof(root, states[2], honest, index=2, size=5)
    assert not verify_trace_proof(root, states[4], forged, index=2, size=5)


def test_a_cached_tensor_plan_gives_the_roots_of_a_fresh_one():
    """Plans are cached by (name, shape, dtype, hash); a cached plan must hash exactly as a fresh one,
    for every hash function and for tensors that share a name but not a shape."""
    from proofs.encoding import get_tensor_plan, tensor_root

    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape).astype("<f4") for shape in [(3, 5), (5, 3), (70_000,), ()]]
    for hashing in HASHINGS:
        get_tensor_plan.cache_clear()
        fresh = [tensor_root("w", a, hashing) for a in arrays]
        cached = [tensor_root("w", a, hashing) for a in arrays]
        assert fresh == cached and len(set(fresh)) == len(arrays)
    with pytest.raises(EncodingError):
        tensor_root(["not", "a", "str"], arrays[0])  # an unhashable name is refused, not a TypeError


state_arrays = st.dictionaries(
    st.text(min_size=1, max_size=6),
    hnp.arrays(dtype=st.one_of(hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.floating_dtypes(),
                               hnp.complex_number_dtypes()),
               shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=300)),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(state_arrays, st.sampled_from(HASHINGS))
def test_the_state_root_is_its_definition_over_tensor_roots(arrays, hashing):
    """``state_root``'s fast path (primed hashers, one-chunk tensors without a tree, one NaN check
    for all small tensors) is the tree of the module docstring: RFC 6962 over the tensor roots."""
    from proofs.hashing import DOMAIN_STATE
    from proofs.merkle.reference import merkle_root

    leaves = [hash_leaf(tensor_root(name, arrays[name], hashing), DOMAIN_STATE, hashing)
              for name in sorted(arrays)]
    assert state_root(arrays, hashing) == merkle_root(leaves, DOMAIN_STATE, hashing)
