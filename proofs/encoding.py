"""Canonical encoding of training state, and the roots and proofs built on it.

A *state* is a mapping from tensor names to numpy arrays (parameters, optimizer buffers, step
counter, RNG state). Its commitment is a two-level Merkle tree (RFC 6962 trees, see
:mod:`proofs.merkle`) whose leaves are fixed-size chunks of tensor data, so that a verifier can check
one chunk, or one tensor, against a signed root without the rest of the state.

Terms
-----
canonical array
    The array as little-endian, C-order bytes, every NaN written as the positive quiet NaN with a
    zero payload (``0x7fc00000`` in float32; IEEE 754 leaves a NaN's sign and payload to the
    hardware, so two honest devices that both reach NaN may differ only there). Only numeric dtypes
    (numpy kinds ``b i u f c``: bool, signed and unsigned integers, floats, complex) are accepted;
    anything else, and any name that is not a ``str``, raises :class:`EncodingError` naming the
    tensor.
dtype string
    numpy's ``dtype.str`` of the little-endian dtype, e.g. ``<f4``, ``<i8``; one-byte types have no
    byte order and read ``|u1``, ``|b1``.
header
    ``u32(len(name)) || name (UTF-8) || u8(len(dtype string)) || dtype string || u8(ndim) ||
    u64(shape[0]) || ... || u64(shape[ndim-1])``, all integers big-endian.
    *Header leaf* = ``hash_leaf(header, DOMAIN_TENSOR)``.
chunking rule
    A chunk is ``rows_per_chunk(shape, dtype)`` consecutive rows along axis 0, where
    ``rows_per_chunk = max(1, CHUNK_TARGET_BYTES // row_bytes)``, ``row_bytes = itemsize *
    prod(shape[1:])`` (taken as 1 when 0) and ``CHUNK_TARGET_BYTES = 65536``: a chunk holds about
    64 KiB and never splits a row. The zarr chunk shape ``chunk_shape(shape, dtype) = (rows, *shape[1:])``
    gives the same chunks, so one zarr chunk is one leaf. The last chunk holds the rows that remain
    (not padded, unlike zarr's stored edge chunk). A 0-d tensor is one chunk of one "row"; a tensor with
    ``shape[0] == 0`` has none.
chunk leaf
    ``H(0x00 || dom(DOMAIN_CHUNK) || header leaf || u64(chunk index) || chunk bytes)``: the
    header leaf and index inside every chunk leaf bind a lone chunk to its tensor's name, dtype,
    shape and position, so :func:`verify_chunk` needs nothing but the chunk and its path.
tensor root
    Merkle root (domain ``DOMAIN_TENSOR``) over ``[header leaf, chunk leaf 0, chunk leaf 1, ...]``.
state root
    Merkle root (domain ``DOMAIN_STATE``) over ``hash_leaf(tensor root, DOMAIN_STATE)`` of every
    tensor, sorted by name (Python string order, which is the order of the UTF-8 bytes).
trace root
    Merkle root (domain ``DOMAIN_TRACE``) over ``hash_leaf(state root, DOMAIN_TRACE)`` of the
    checkpoints at steps ``0, k, 2k, ..., T`` (leaf ``i`` is step ``i * k``), the value a solver
    signs in its commitment (docs/design.md, section 1.4).

Hashing reads array memory in place (a ``memoryview`` of the contiguous little-endian array; a copy
is made only for big-endian or non-contiguous input), so committing to a state costs about one pass
of the hash function over its bytes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from proofs import native
from proofs.hashing import (
    DOMAIN_CHUNK,
    DOMAIN_STATE,
    DOMAIN_TENSOR,
    DOMAIN_TRACE,
    SHA256,
    Hasher,
    Hashing,
)
from proofs.merkle import MerkleProof, hash_leaf, merkle_proof, merkle_root, verify_merkle_proof
from proofs.merkle.core import leaf_prefix, node_prefix
from proofs.types import Root

CHUNK_TARGET_BYTES = 64 * 1024
NUMERIC_KINDS = "biufc"


class EncodingError(ValueError):
    """A tensor that has no canonical encoding (bad name or non-numeric dtype)."""


def canonical_dtype(name: str, dtype: np.dtype) -> np.dtype:
    """The little-endian form of a numeric dtype; :class:`EncodingError` otherwise."""
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise EncodingError(f"tensor {name!r} has non-numeric dtype {dtype!r}")
    return dtype.newbyteorder("<")


def canonical_array(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous little-endian array with canonical NaNs (no copy when it
    already is one)."""
    array = canonical_layout(name, array)
    return canonical_nans(array) if has_nan(array) else array


def canonical_layout(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous little-endian array (NaNs not yet canonical)."""
    if type(array) is np.ndarray and array.dtype in CANONICAL_DTYPES and array.flags.c_contiguous:
        return array  # the common case, decided without building a dtype
    if not isinstance(array, np.ndarray | np.generic):
        raise EncodingError(f"tensor {name!r} is a {type(array).__name__}, not a numpy array")
    array = np.asarray(array)
    dtype = canonical_dtype(name, array.dtype)
    if array.dtype != dtype or not array.flags.c_contiguous:  # else it already is: no call, no copy
        array = array.astype(dtype, order="C", copy=False)
    return array


CANONICAL_DTYPES = frozenset(np.dtype(code).newbyteorder("<") for code in "?bBhHiIlLqQefdgFDG")


def has_nan(array: np.ndarray) -> bool:
    """Whether a float or complex array holds a NaN (``min`` propagates NaN: one pass, no copy)."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return False
    if array.dtype.kind == "c":
        return bool(np.isnan(array).any())
    least = array.min()
    return bool(least != least)  # NaN is the one value unequal to itself


def canonical_nans(array: np.ndarray) -> np.ndarray:
    """A copy of ``array`` whose NaNs are all the canonical quiet NaN (numpy's ``nan``, cast)."""
    out = array.copy()
    if out.dtype.kind == "c":
        parts = out.reshape(-1).view(out.real.dtype)  # (re, im) interleaved; a view of the copy, 0-d too
        parts[np.isnan(parts)] = np.nan
    else:
        out[np.isnan(out)] = np.nan
    return out


def array_bytes(array: np.ndarray) -> memoryview:
    """The flat byte view of a canonical (C-contiguous) array, without a copy."""
    return array.data.cast("B") if array.size else memoryview(b"")  # memoryview cannot cast a 0-size shape


def row_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes in one row along axis 0 (the whole tensor for a 0-d one)."""
    return dtype.itemsize * math.prod(shape[1:])


def rows_per_chunk(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Rows along axis 0 in one chunk: about :data:`CHUNK_TARGET_BYTES`, at least one row.

    A 0-d tensor counts as one row.
    """
    if len(shape) == 0:
        return 1
    return max(1, CHUNK_TARGET_BYTES // max(row_bytes(shape, dtype), 1))


def chunk_shape(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...]:
    """The zarr chunk shape ``(rows_per_chunk, *shape[1:])`` (``()`` for a 0-d tensor)."""
    if len(shape) == 0:
        return ()
    return (rows_per_chunk(shape, dtype), *shape[1:])


def chunk_count(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Number of chunks of a tensor: 1 when 0-d, else ``ceil(shape[0] / rows_per_chunk)``."""
    if len(shape) == 0:
        return 1
    return -(-shape[0] // rows_per_chunk(shape, dtype))


def chunk_rows(shape: tuple[int, ...], dtype: np.dtype, chunk_index: int) -> tuple[int, int]:
    """The half-open row range ``[start, stop)`` of one chunk (``(0, 1)`` for a 0-d tensor)."""
    if len(shape) == 0:
        return 0, 1
    rows = rows_per_chunk(shape, dtype)
    return chunk_index * rows, min((chunk_index + 1) * rows, shape[0])


def encode_name(name: str) -> bytes:
    """The UTF-8 bytes of a tensor name; :class:`EncodingError` if it is not a valid ``str``."""
    if not isinstance(name, str):
        raise EncodingError(f"tensor name {name!r} is not a str")
    try:
        return name.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodingError(f"tensor name {name!r} is not valid UTF-8") from None


def encode_header(name: str, shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The header bytes of a tensor (name, little-endian dtype string, shape)."""
    name_bytes = encode_name(name)
    dtype_bytes = canonical_dtype(name, dtype).str.encode("ascii")
    return b"".join(
        [
            len(name_bytes).to_bytes(4, "big"),
            name_bytes,
            len(dtype_bytes).to_bytes(1, "big"),
            dtype_bytes,
            len(shape).to_bytes(1, "big"),
            *(dim.to_bytes(8, "big") for dim in shape),
        ]
    )


def chunk_hasher(header_leaf: bytes, hashing: Hashing) -> Hasher:
    """A hash object primed with the chunk leaf prefix ``0x00 || dom || header leaf``."""
    return hashing.new(leaf_prefix(DOMAIN_CHUNK) + header_leaf)


def hash_chunk(base: Hasher, chunk_index: int, data: bytes | memoryview) -> bytes:
    """Chunk leaf of one chunk, from a :func:`chunk_hasher`."""
    hasher = base.copy()
    hasher.update(chunk_index.to_bytes(8, "big"))
    hasher.update(data)
    return hasher.digest()


@dataclass(frozen=True)
class TensorPlan:
    """What hashing a tensor needs besides its bytes, a function of (name, shape, dtype, hash)
    only: the header leaf, and for each chunk ``(hasher, start byte, stop byte)`` where the hasher
    is primed with the chunk leaf's prefix ``0x00 || dom || header leaf || u64(index)``.
    Checkpoints of one job hash the same tensors again and again, so the plan is computed once
    (``get_tensor_plan``), not per checkpoint; every hash is then one ``copy`` of a primed object,
    one ``update`` with the data and one ``digest``."""

    header_leaf: bytes
    chunks: tuple[tuple[Hasher, int, int], ...]
    node: Hasher  # primed with ``0x01 || dom(DOMAIN_TENSOR) || header leaf``: a one-chunk tensor's root
    state_leaf: Hasher  # primed with ``0x00 || dom(DOMAIN_STATE)``: the tensor's leaf in the state tree


@functools.lru_cache(maxsize=4096)
def get_tensor_plan(name: str, shape: tuple[int, ...], dtype: np.dtype, hashing: Hashing) -> TensorPlan:
    """The (cached) plan of a canonical tensor; ``dtype`` is already little-endian."""
    header_leaf = hash_leaf(encode_header(name, shape, dtype), DOMAIN_TENSOR, hashing)
    base, width, chunks = chunk_hasher(header_leaf, hashing), row_bytes(shape, dtype), []
    for index in range(chunk_count(shape, dtype)):
        start, stop = chunk_rows(shape, dtype, index)
        primed = base.copy()
        primed.update(index.to_bytes(8, "big"))
        chunks.append((primed, start * width, stop * width))
    new = hashing.new
    return TensorPlan(header_leaf, tuple(chunks), new(node_prefix(DOMAIN_TENSOR) + header_leaf),
                      new(leaf_prefix(DOMAIN_STATE)))


def compute_digest(primed: Hasher, data: bytes | memoryview) -> bytes:
    """``H(prefix || data)`` from a hash object primed with ``prefix`` (left untouched)."""
    hasher = primed.copy()
    hasher.update(data)
    return hasher.digest()


def tensor_leaves(name: str, array: np.ndarray, hashing: Hashing = SHA256) -> list[bytes]:
    """``[header leaf, chunk leaf 0, ...]`` of one tensor."""
    array = canonical_array(name, array)
    encode_name(name)  # a plan is cached by name: a bad one must still raise, every time
    plan = get_tensor_plan(name, array.shape, array.dtype, hashing)
    return [plan.header_leaf, *compute_chunk_leaves(plan, array_bytes(array))]


def compute_chunk_leaves(plan: TensorPlan, data: memoryview) -> list[bytes]:
    """The chunk leaves of a canonical tensor's bytes."""
    return [compute_digest(primed, data[start:stop]) for primed, start, stop in plan.chunks]


def compute_state_leaf(plan: TensorPlan, array: np.ndarray, hashing: Hashing) -> bytes:
    """``hash_leaf(tensor root, DOMAIN_STATE)`` of a canonical tensor. A tensor of one chunk (most
    tensors of a small state) has the root ``node(header leaf, chunk leaf)``: three digests from
    the plan's primed objects, no tree."""
    if len(plan.chunks) == 1:
        leaf = plan.chunks[0][0].copy()
        leaf.update(array_bytes(array))
        node = plan.node.copy()
        node.update(leaf.digest())
        root = node.digest()
    else:
        root = merkle_root([plan.header_leaf, *compute_chunk_leaves(plan, array_bytes(array))],
                           DOMAIN_TENSOR, hashing)
    out = plan.state_leaf.copy()
    out.update(root)
    return out.digest()


def tensor_root(name: str, array: np.ndarray, hashing: Hashing = SHA256) -> Root:
    """Tensor root of one named array."""
    return merkle_root(tensor_leaves(name, array, hashing), DOMAIN_TENSOR, hashing)


def state_leaves(
    arrays: Mapping[str, np.ndarray], hashing: Hashing = SHA256
) -> list[tuple[str, Root]]:
    """``(name, tensor root)`` of every tensor of a state, sorted by name."""
    for name in arrays:
        encode_name(name)
    return [(name, tensor_root(name, arrays[name], hashing)) for name in sorted(arrays)]


def state_leaf_hashes(leaves: Sequence[tuple[str, Root]], hashing: Hashing) -> list[bytes]:
    """The Merkle leaf hashes of a state tree from its sorted ``(name, tensor root)`` pairs."""
    return [hash_leaf(root, DOMAIN_STATE, hashing) for _, root in leaves]


def state_root(arrays: Mapping[str, np.ndarray], hashing: Hashing = SHA256) -> Root:
    """State root of a mapping name -> array (the same value as hashing the leaves of
    :func:`state_leaves`, computed from the state's cached plan: :func:`get_state_plan`).

    With SHA-256 and :mod:`proofs.native` built, a state of the same names, shapes and dtypes as
    the last one hashed under those names (every checkpoint of a job) is checked and hashed in one
    C call; anything else, or a NaN, takes the general path below (which the C one must agree with).
    """
    names = sorted(arrays)
    if hashing is SHA256 and (fast := _FAST_PLANS.get(tuple(names))) is not None \
            and (module := native.get_module()) is not None:
        root = module.state_root_arrays([arrays[name] for name in names], *fast)
        if root is not None:
            return Root(root)
    canonical = [canonical_layout(name, arrays[name]) for name in names]
    plan = get_state_plan(tuple((name, a.shape, a.dtype) for name, a in zip(names, canonical, strict=True)),
                          hashing)
    if plan.native is not None and (module := native.get_module()) is not None:
        if len(_FAST_PLANS) >= 256:
            _FAST_PLANS.clear()
        _FAST_PLANS[tuple(names)] = (compute_expected_arrays(canonical), plan.native)
        root = module.state_root(canonical, plan.native, True)  # None: a NaN, to make canonical first
        if root is not None:
            return Root(root)
        canonicalize_nans(canonical, plan)
        return Root(module.state_root(canonical, plan.native, False))
    canonicalize_nans(canonical, plan)
    leaves = [compute_state_leaf(tensor, array, hashing) for tensor, array in zip(plan.tensors, canonical, strict=True)]
    return merkle_root(leaves, DOMAIN_STATE, hashing)


_FAST_PLANS: dict[tuple[str, ...], tuple[tuple, tuple[bytes, ...]]] = {}  # sorted names -> (expected, plan)


def compute_expected_arrays(canonical: Sequence[np.ndarray]) -> tuple:
    """What :mod:`proofs.native`'s ``state_root_arrays`` checks each array against: exactly
    ``np.ndarray``, each one's ndim and shape (int64) and its buffer format (e.g. ``b"<f"`` or
    ``b"f"``, as numpy exports it for these canonical arrays)."""
    ndims = np.asarray([a.ndim for a in canonical], np.int64).tobytes()
    shapes = np.asarray([d for a in canonical for d in a.shape], np.int64).tobytes()
    return (np.ndarray, ndims, shapes, tuple(memoryview(a).format.encode() for a in canonical))


SMALL_TENSOR_BYTES = 1 << 16  # below this, a tensor's NaN check is mostly call overhead


@dataclass(frozen=True)
class StatePlan:
    """The plans of a state's tensors in root order, and which of them need a NaN check: the small
    float tensors are checked together (one ``min`` of their concatenation, at most 64 KiB copied
    each), the others one by one. A job's checkpoints share one layout, so one plan."""

    tensors: tuple[TensorPlan, ...]
    small_floats: tuple[int, ...]
    other_floats: tuple[int, ...]
    native: tuple[bytes, ...] | None  # the C state root's plan (``compute_native_plan``), SHA-256 only


@functools.lru_cache(maxsize=256)
def get_state_plan(layout: tuple[tuple[str, tuple[int, ...], np.dtype], ...], hashing: Hashing) -> StatePlan:
    """The (cached) plan of a state of canonical tensors, ``layout`` = sorted ``(name, shape, dtype)``.
    Names are checked here (:func:`encode_name`); an invalid one raises and is never cached."""
    small, other = [], []
    for index, (name, shape, dtype) in enumerate(layout):
        encode_name(name)
        if dtype.kind in "fc":
            is_small = dtype.kind == "f" and dtype.itemsize * math.prod(shape) <= SMALL_TENSOR_BYTES
            (small if is_small else other).append(index)
    tensors = tuple(get_tensor_plan(name, shape, dtype, hashing) for name, shape, dtype in layout)
    return StatePlan(tensors, tuple(small), tuple(other),
                     compute_native_plan([(shape, dtype) for _, shape, dtype in layout], tensors, hashing))


def compute_native_plan(layout: Sequence[tuple[tuple[int, ...], np.dtype]], tensors: Sequence[TensorPlan],
                        hashing: Hashing) -> tuple[bytes, ...] | None:
    """What :mod:`proofs.native`'s C state root needs besides the tensors' bytes, for a state of
    canonical tensors (``layout`` = ``(shape, dtype)`` in root order): the header leaves, each
    tensor's chunk count, bytes per chunk, byte length and the size of its IEEE float components
    for the NaN check (0: not float; int64 each), and the four domain prefixes. None for another
    hash than SHA-256, an empty state, or a float type other than IEEE binary16/32/64 and their
    complex pairs (the Python path hashes those)."""
    if hashing is not SHA256 or not layout:
        return None
    counts = [chunk_count(shape, dtype) for shape, dtype in layout]
    per_chunk = [rows_per_chunk(shape, dtype) * row_bytes(shape, dtype) for shape, dtype in layout]
    lengths = [dtype.itemsize * math.prod(shape) for shape, dtype in layout]
    floats = [0 if dtype.kind not in "fc" else dtype.itemsize // (2 if dtype.kind == "c" else 1) for _, dtype in layout]
    if any(dtype.kind in "fc" and dtype.str[1:] not in ("f2", "f4", "f8", "c8", "c16") for _, dtype in layout):
        return None
    return (b"".join(t.header_leaf for t in tensors),
            *(np.asarray(v, np.int64).tobytes() for v in (counts, per_chunk, lengths, floats)),
            leaf_prefix(DOMAIN_CHUNK), node_prefix(DOMAIN_TENSOR), leaf_prefix(DOMAIN_STATE), node_prefix(DOMAIN_STATE))


def canonicalize_nans(arrays: list[np.ndarray], plan: StatePlan) -> None:
    """Replace, in ``arrays``, every tensor holding a NaN by its :func:`canonical_nans` copy. Only
    when the small tensors' joint check finds a NaN are they checked one by one."""
    check = plan.other_floats
    if plan.small_floats and has_nan(np.concatenate([arrays[i] for i in plan.small_floats], axis=None)):
        check = check + plan.small_floats
    for i in check:
        if has_nan(arrays[i]):
            arrays[i] = canonical_nans(arrays[i])


def tensor_proof(
    arrays: Mapping[str, np.ndarray], name: str, hashing: Hashing = SHA256
) -> MerkleProof:
    """Inclusion proof of tensor ``name``'s root in the state root of ``arrays``."""
    if name not in arrays:
        raise KeyError(f"tensor {name!r} is not in the state")
    leaves = state_leaves(arrays, hashing)
    index = [leaf_name for leaf_name, _ in leaves].index(name)
    return merkle_proof(state_leaf_hashes(leaves, hashing), index, DOMAIN_STATE, hashing)


def verify_tensor(
    state_root: bytes, name: str, array: np.ndarray, proof: MerkleProof, hashing: Hashing = SHA256
) -> bool:
    """Whether ``array`` is the tensor ``name`` of the state committed to by ``state_root``.

    The tensor root binds the name (through the header), so the proof's index is not checked.
    Never raises.
    """
    if not isinstance(hashing, Hashing):
        return False
    try:
        root = tensor_root(name, array, hashing)
    except (ValueError, TypeError):
        return False
    leaf = hash_leaf(root, DOMAIN_STATE, hashing)
    return verify_merkle_proof(state_root, leaf, proof, DOMAIN_STATE, hashing)


def chunk_proof(
    name: str, array: np.ndarray, chunk_index: int, hashing: Hashing = SHA256
) -> MerkleProof:
    """Inclusion proof of chunk ``chunk_index`` of a tensor in its tensor root."""
    leaves = tensor_leaves(name, array, hashing)
    if not 0 <= chunk_index < len(leaves) - 1:
        raise IndexError(f"tensor {name!r} has no chunk {chunk_index} (it has {len(leaves) - 1})")
    return merkle_proof(leaves, chunk_index + 1, DOMAIN_TENSOR, hashing)


def chunk_data(
    name: str, shape: tuple[int, ...], dtype: np.dtype, chunk_index: int, chunk: object
) -> memoryview:
    """The canonical bytes of chunk ``chunk_index``, given as bytes or as an array.

    Raises :class:`EncodingError` when they cannot be that chunk: an array of another dtype or
    shape, or bytes of another length.
    """
    start, stop = chunk_rows(shape, dtype, chunk_index)
    rows_shape = shape if len(shape) == 0 else (stop - start, *shape[1:])
    if isinstance(chunk, bytes | memoryview):
        data = memoryview(chunk).cast("B")
    else:
        array = canonical_array(name, chunk)
        # Rule: an array chunk has the tensor's dtype and the chunk's shape.
        if array.dtype != canonical_dtype(name, dtype) or array.shape != rows_shape:
            raise EncodingError(
                f"chunk {chunk_index} of tensor {name!r} is {array.dtype}{array.shape}, "
                f"expected {dtype}{rows_shape}"
            )
        data = array_bytes(array)
    # Rule: the chunk has exactly the bytes of its rows.
    if len(data) != (stop - start) * row_bytes(shape, dtype):
        raise EncodingError(
            f"chunk {chunk_index} of tensor {name!r} has {len(data)} bytes, "
            f"expected {(stop - start) * row_bytes(shape, dtype)}"
        )
    return data


def verify_chunk(
    tensor_root: bytes,
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype | str,
    chunk_index: int,
    chunk: bytes | memoryview | np.ndarray,
    proof: MerkleProof,
    hashing: Hashing = SHA256,
) -> bool:
    """Whether ``chunk`` is chunk ``chunk_index`` of tensor ``name`` (``shape``, ``dtype``).

    ``chunk`` is the chunk's canonical bytes or its array (rows ``chunk_rows(...)`` of the tensor).
    Never raises.
    """
    if not isinstance(hashing, Hashing) or not isinstance(proof, MerkleProof):
        return False
    try:
        shape, dtype = tuple(int(dim) for dim in shape), np.dtype(dtype)
        header = encode_header(name, shape, dtype)
        count = chunk_count(shape, dtype)
        # Rule: the chunk is in range and the proof is for its position in a tree of this shape.
        if type(chunk_index) is not int or not 0 <= chunk_index < count:
            return False
        if (proof.index, proof.size) != (chunk_index + 1, count + 1):
            return False
        data = chunk_data(name, shape, dtype, chunk_index, chunk)
    except (ValueError, TypeError, OverflowError):
        return False
    header_leaf = hash_leaf(header, DOMAIN_TENSOR, hashing)
    leaf = hash_chunk(chunk_hasher(header_leaf, hashing), chunk_index, data)
    return verify_merkle_proof(tensor_root, leaf, proof, DOMAIN_TENSOR, hashing)


def trace_leaf_hashes(state_roots: Sequence[bytes], hashing: Hashing) -> list[bytes]:
    """Merkle leaf hashes of a trace tree."""
    return [hash_leaf(root, DOMAIN_TRACE, hashing) for root in state_roots]


def trace_root(state_roots: Sequence[Root], hashing: Hashing = SHA256) -> Root:
    """Trace root over the state roots at steps ``0, k, 2k, ..., T``."""
    return merkle_root(trace_leaf_hashes(state_roots, hashing), DOMAIN_TRACE, hashing)


def trace_proof(state_roots: Sequence[Root], index: int, hashing: Hashing = SHA256) -> MerkleProof:
    """Inclusion proof of checkpoint ``index`` (step ``index * k``) in the trace root."""
    return merkle_proof(trace_leaf_hashes(state_roots, hashing), index, DOMAIN_TRACE, hashing)


def verify_trace_proof(
    trace_root: bytes,
    state_root: bytes,
    proof: MerkleProof,
    hashing: Hashing = SHA256,
    *,
    index: int,
    size: int,
) -> bool:
    """Whether ``state_root`` is checkpoint ``index`` of a trace of ``size`` checkpoints.

    ``index`` and ``size`` are required and come from the verifier (``size = T // k + 1`` from
    the signed commitment), never from the proof: a Merkle root does not commit to its size, so a
    solver who built a malformed tree could otherwise open one index with two different state
    roots under two claimed sizes. Never raises.
    """
    # Rule: the proof is for the position, in a trace of the size, that the verifier asks about.
    if not isinstance(proof, MerkleProof) or (proof.index, proof.size) != (index, size):
        return False
    if not isinstance(state_root, bytes) or not isinstance(hashing, Hashing):
        return False
    leaf = hash_leaf(state_root, DOMAIN_TRACE, hashing)
    return verify_merkle_proof(trace_root, leaf, proof, DOMAIN_TRACE, hashing)


# -- a state laid out in one buffer (a checkpoint's stored row) -------------------------------------
@dataclass(frozen=True)
class BufferPlan:
    """How to hash a state whose tensors lie at fixed byte ranges of one buffer, in root order:
    each tensor's ``(start, stop, TensorPlan)``, and the float byte runs to check for NaN (adjacent
    tensors of one dtype checked together). A job's checkpoints share one layout, so one plan."""

    tensors: tuple[tuple[int, int, TensorPlan], ...]
    float_runs: tuple[tuple[int, int, np.dtype], ...]
    native: tuple[bytes, tuple[bytes, ...]] | None  # int64 starts and the C state root's plan


@functools.lru_cache(maxsize=256)
def get_buffer_plan(entries: tuple[tuple[str, tuple[int, ...], np.dtype, int], ...], hashing: Hashing) -> BufferPlan | None:
    """The plan of ``entries`` = ``(name, shape, dtype, start byte)`` per tensor (any order), or
    None when a dtype is not canonical (not little-endian): such a state takes ``state_root``."""
    runs: list[list] = []
    tensors = []
    for _, shape, dtype, start in sorted(entries, key=lambda e: e[3]):
        if dtype not in CANONICAL_DTYPES:
            return None
        stop = start + dtype.itemsize * math.prod(shape)
        if dtype.kind in "fc" and stop > start:
            if runs and runs[-1][2] == dtype and runs[-1][1] == start:
                runs[-1][1] = stop
            else:
                runs.append([start, stop, dtype])
    ordered = sorted(entries, key=lambda e: e[0])
    for name, shape, dtype, start in ordered:
        encode_name(name)
        stop = start + dtype.itemsize * math.prod(shape)
        tensors.append((start, stop, get_tensor_plan(name, shape, dtype, hashing)))
    native_plan = compute_native_plan([(shape, dtype) for _, shape, dtype, _ in ordered], [t for _, _, t in tensors],
                                      hashing)
    starts = np.asarray([start for start, _, _ in tensors], np.int64).tobytes()
    return BufferPlan(tuple(tensors), tuple((a, b, d) for a, b, d in runs),
                      None if native_plan is None else (starts, native_plan))


def buffer_state_root(buffer: np.ndarray, entries: tuple[tuple[str, tuple[int, ...], np.dtype, int], ...],
                      hashing: Hashing = SHA256) -> Root:
    """The state root of tensors laid out in ``buffer`` (a flat ``uint8`` array) at the byte
    offsets of ``entries``: the value of :func:`state_root` on the same tensors, hashed straight
    from the buffer's bytes (one NaN check per run of float tensors, no per-tensor array). A state
    holding a NaN, or a non-canonical dtype, takes :func:`state_root` on views of the buffer."""
    plan = get_buffer_plan(entries, hashing)
    if plan is not None and plan.native is not None and (module := native.get_module()) is not None:
        root = module.buffer_state_root(buffer.data.cast("B") if buffer.size else memoryview(b""), *plan.native, True)
        if root is not None:
            return Root(root)
    if plan is None or any(has_nan(buffer[a:b].view(d)) for a, b, d in plan.float_runs):
        return state_root({name: buffer[start:start + dtype.itemsize * math.prod(shape)].view(dtype).reshape(shape)
                           for name, shape, dtype, start in entries}, hashing)
    data = buffer.data.cast("B") if buffer.size else memoryview(b"")
    leaves = []
    for start, stop, tensor in plan.tensors:
        if len(tensor.chunks) == 1:
            leaf = tensor.chunks[0][0].copy()
            leaf.update(data[start:stop])
            node = tensor.node.copy()
            node.update(leaf.digest())
            root = node.digest()
        else:
            root = merkle_root([tensor.header_leaf, *compute_chunk_leaves(tensor, data[start:stop])],
                               DOMAIN_TENSOR, hashing)
        out = tensor.state_leaf.copy()
        out.update(root)
        leaves.append(out.digest())
    return merkle_root(leaves, DOMAIN_STATE, hashing)
