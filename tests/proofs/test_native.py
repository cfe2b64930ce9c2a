"""The C state root (``proofs.native``) against the Python path it must agree with, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import encoding, native
from proofs.encoding import EncodingError, buffer_state_root, state_root
from proofs.hashing import SHA256
from tests.proofs.test_encoding import state_arrays

needs_native = pytest.mark.skipif(native.get_module() is None, reason="the C state root could not be built here")


def python_root(arrays, hashing=SHA256):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(native.ENV_SWITCH, "0")
        return state_root(arrays, hashing)


@needs_native
@settings(max_examples=80, deadline=None)
@given(state_arrays, state_arrays)
def test_the_c_root_is_the_python_root(first, second):
    """Every numeric state (both byte orders, NaNs, 0-d, empty, multi-chunk), hashed twice, and a
    second state under the same names (the C fast path's cache then holds the first layout)."""
    for arrays in (first, first, {name: second.get(name, np.flip(array)) for name, array in first.items()}):
        assert state_root(arrays) == python_root(arrays)


@needs_native
@pytest.mark.parametrize("make", [
    lambda a: a.astype(">f4"),  # another byte order
    lambda a: np.asfortranarray(a),  # not C-contiguous
    lambda a: a[:, ::2].repeat(2, axis=1),  # same shape, a copy
    lambda a: a.view(type("Sub", (np.ndarray,), {})),  # a subclass
    lambda a: np.where(a > 0, np.nan, a).astype(np.float32),  # NaNs with payloads made canonical
    lambda a: np.concatenate([a, a]),  # another shape
    lambda a: a.astype(np.float64),  # another dtype
])
def test_the_fast_path_hands_anything_unexpected_to_the_python_path(make):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((64, 64)).astype(np.float32)
    base = {"w": weight, "step": np.int64(3)}
    state_root(base)  # caches the layout of ("step", "w")
    changed = {"w": make(weight), "step": np.int64(3)}
    assert state_root(changed) == python_root(changed)


@needs_native
def test_the_fast_path_still_refuses_what_the_format_refuses():
    state_root({"w": np.arange(8, dtype=np.uint8)})
    with pytest.raises(EncodingError, match="'w' is a bytes"):
        state_root({"w": bytes(range(8))})  # same bytes and buffer shape as the cached uint8 array
    with pytest.raises(EncodingError, match="non-numeric"):
        state_root({"w": np.array(["a"] * 8)})


@needs_native
@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([(5,), (300, 70), (), (0, 3), (70_000,)]), min_size=1, max_size=5),
       st.booleans())
def test_the_c_buffer_root_is_the_python_buffer_root(shapes, nan):
    rng = np.random.default_rng(len(shapes))
    arrays = {f"t{i}": rng.standard_normal(shape).astype(np.float32) for i, shape in enumerate(shapes)}
    if nan:
        arrays["t0"] = np.full(shapes[0], np.float32(np.nan).view(np.uint32) | 5).view(np.float32)
    arrays["step"] = np.int64(7)
    entries, start, parts = [], 0, []
    for name, array in arrays.items():
        entries.append((name, array.shape, array.dtype.newbyteorder("<"), start))
        parts.append(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
        start += array.nbytes
    buffer = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    expected = python_root(arrays)
    assert buffer_state_root(buffer, tuple(entries)) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(native.ENV_SWITCH, "0")
        assert buffer_state_root(buffer, tuple(entries)) == expected


@needs_native
def test_the_c_module_refuses_an_inconsistent_plan():
    module = native.get_module()
    arrays = [np.zeros(4, np.float32)]
    plan = encoding.get_state_plan((("w", (4,), np.dtype("<f4")),), SHA256).native
    with pytest.raises(TypeError, match="plan must be 9 byte strings"):
        module.state_root(arrays, plan[:4], True)
    with pytest.raises(ValueError, match="1 tensors, got 2 buffers"):
        module.state_root(arrays * 2, plan, True)
    with pytest.raises(ValueError, match="tensor 0 has 8 bytes"):
        module.state_root([np.zeros(2, np.float32)], plan, True)
    with pytest.raises(ValueError, match="bytes 8..24 of a 16-byte buffer"):
        module.buffer_state_root(memoryview(bytes(16)), np.asarray([8], np.int64).tobytes(), plan, True)


def test_a_failed_build_warns_and_the_python_path_gives_the_same_roots(monkeypatch, tmp_path):
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": np.int64(1)}
    expected = python_root(arrays)
    monkeypatch.setenv(native.ENV_DIR, str(tmp_path))
    monkeypatch.setattr(native, "get_compiler", lambda: ["false"])
    monkeypatch.setattr(encoding, "_FAST_PLANS", {})
    native.reset()
    try:
        with pytest.warns(native.NativeHashWarning, match="NativeBuildError: false exited 1"):
            assert native.get_module() is None
        assert state_root(arrays) == expected
        assert native.main([]) == 0 and native.main(["--strict"]) == 1
    finally:
        native.reset()
    assert not list(tmp_path.rglob("*.so")), "a failed build leaves no module behind"


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv(native.ENV_SWITCH, "0")
    assert native.get_module() is None
