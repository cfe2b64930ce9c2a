"""The fused C++ kernels (``verification.execution.repro.fused``) give the bits of the pure-torch
path they replace, on adversarial inputs, and a failed build falls back with a warning.

Every comparison is of IEEE bit patterns (``view`` as integers), NaN payloads included, except
where a reduction meets NaN: which NaN payload a sum of several NaNs keeps depends on the order of
its terms in torch's own kernels too (``repro`` documents NaN payloads as not canonicalised), so
there the NaN positions must agree and every other bit.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from tests.repro.roots import compute_root
from verification.execution.repro import elementwise, exact, fused, mode, products

SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, -math.nan, 5e-324, -5e-324, 1e-310, 1e-40, -1e-45,
            1.1754943508222875e-38, 1e30, -1e30, 3.4e38, -3.4e38, 1e300, -1e300, 149.9, 150.0, 150.1, -150.1,
            88.7, -103.9, 709.0, -745.0, 1.0, -1.0, 0.5, 2.0, 1e-8, -1e-8, 0.125, -0.125, 1.4142135623730951]


@pytest.fixture(scope="module")
def kernels():
    ext = fused.get_kernels()
    if ext is None:
        pytest.skip("the fused kernels could not be built here (see the FusedKernelWarning)")
    return ext


@pytest.fixture
def torch_path(monkeypatch):
    """``run(f, *args)``: ``f`` on the pure-torch fallback (``PINPOINT_REPRO_NATIVE_EXT=0``)."""
    def run(f, *args, **kwargs):
        with monkeypatch.context() as patch:
            patch.setenv(fused.ENV_SWITCH, "0")
            return f(*args, **kwargs)
    return run


def adversarial(n: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """The special values, then magnitudes over ~30 decades, then ordinary values."""
    g = torch.Generator().manual_seed(seed)
    body = torch.randn(n, generator=g, dtype=torch.float64) * torch.exp(torch.randn(n, generator=g, dtype=torch.float64) * 4)
    plain = torch.randn(n, generator=g, dtype=torch.float64) * 3
    return torch.cat([torch.tensor(SPECIALS, dtype=torch.float64), body, plain]).to(dtype)


def spread(shape, seed: int, dtype=torch.float32, specials: bool = True) -> torch.Tensor:
    """Values of mixed magnitudes in ``shape``, every 7th element a special value."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * torch.exp(torch.randn(*shape, generator=g, dtype=torch.float64) * 3)
    x = x.to(dtype)
    if specials:
        flat = x.view(-1)
        picks = flat[::7]
        values = torch.tensor([0.0, -0.0, 1e-45, -1e-40, 3e38, -3e38, 1e-30, 1e30], dtype=dtype)
        flat[::7] = values.repeat(picks.numel() // values.numel() + 1)[: picks.numel()]
    return x


def bits(t: torch.Tensor) -> torch.Tensor:
    t = t.contiguous()
    return t.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[t.element_size()])


def assert_same_bits(got: torch.Tensor, want: torch.Tensor, nan_payloads: bool = True) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    if nan_payloads:
        differ = bits(got) != bits(want)
    else:
        assert torch.equal(got.isnan(), want.isnan())
        differ = (bits(got) != bits(want)) & ~(got.isnan() & want.isnan())
    assert not differ.any(), f"{int(differ.sum())} of {got.numel()} elements differ, e.g. {got[differ][:4]} vs {want[differ][:4]}"


@pytest.mark.parametrize("n", [1, 7, 255, 256, 257, 4099])
@pytest.mark.parametrize("name", ["exp", "expm1", "log", "log_abs"])
def test_elementwise_functions_match_the_torch_path_bit_for_bit(kernels, torch_path, name, n):
    x = adversarial(n, seed=n)
    if name == "log_abs":
        x = x.abs()
    f = {"exp": elementwise.portable_exp, "expm1": elementwise.portable_expm1,
         "log": elementwise.portable_log, "log_abs": elementwise.portable_log}[name]
    assert_same_bits(f(x), torch_path(f, x))
    strided = x[::3]  # a strided view is read where it lies
    assert_same_bits(f(strided), torch_path(f, strided))


@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gelu_and_its_backward_match_the_torch_path(kernels, torch_path, dtype, approximate):
    """Both GELUs; the exact one's erfc takes its series for |x| <= 2 sqrt 2 and its continued
    fraction beyond, so the inputs cross the boundary and reach both tails."""
    x = adversarial(1001, seed=1).clamp(-1e4, 1e4).to(dtype)
    g = adversarial(1001, seed=2).to(dtype)
    x[5], x[7], x[9] = math.nan, math.inf, -math.inf  # not clamped: the specials themselves
    edge = 2.0 * math.sqrt(2.0)
    x[11:17] = torch.tensor([edge, -edge, math.nextafter(edge, 9), -math.nextafter(edge, 9), 30.0, -40.0], dtype=dtype)
    for args in [(x,), (x[::2],)]:
        assert_same_bits(mode.do_gelu(*args, approximate=approximate),
                         torch_path(mode.do_gelu, *args, approximate=approximate))
    assert_same_bits(mode.do_gelu_backward(g, x, approximate=approximate),
                     torch_path(mode.do_gelu_backward, g, x, approximate=approximate))


@pytest.mark.parametrize("shape", [(1,), (5, 7), (3, 1), (64, 33), (17, 1000), (2, 3, 5), (4, 129, 7), (2, 4097)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_sums_match_the_torch_path_along_every_dim(kernels, torch_path, shape, dtype):
    x = spread(shape, seed=sum(shape), dtype=dtype)
    for dim in range(len(shape)):
        assert_same_bits(exact.exact_sum(x, dim, keepdim=True), torch_path(exact.exact_sum, x, dim, True))
    if len(shape) > 1:
        view = x.transpose(0, -1)
        assert_same_bits(exact.exact_sum(view, 0), torch_path(exact.exact_sum, view, 0))
    tiny = torch.full(shape, -1e-45, dtype=torch.float32).to(dtype)  # every slice -0.0: the sign of zero
    assert_same_bits(exact.exact_sum(tiny, -1), torch_path(exact.exact_sum, tiny, -1))
    x.view(-1)[-1] = math.inf
    x.view(-1)[0] = -math.inf if x.numel() > 1 else math.inf
    assert_same_bits(exact.exact_sum(x, -1), torch_path(exact.exact_sum, x, -1), nan_payloads=False)


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 5, 2), (1, 7, 1), (64, 64, 64), (33, 1000, 17), (7, 4097, 3),
                                     (128, 512, 96)])
def test_matmul_matches_the_torch_path_for_every_layout(kernels, torch_path, m, k, n):
    a, b = spread((m, k), seed=m), spread((k, n), seed=n, specials=False)
    a[0, 0] = 1e30  # the outlier of its row
    b[-1, -1] = -1e-40
    for left, right in [(a, b), (a, b.t().contiguous().t()), (a.t().contiguous().t(), b),
                        (a.t().contiguous().t(), b.t().contiguous().t())]:
        assert_same_bits(products.fixed_matmul(left, right), torch_path(products.fixed_matmul, left, right))
    if k > 2:
        sliced_a, sliced_b = a[:, ::2], b[::2]  # neither row- nor column-contiguous
        assert_same_bits(products.fixed_matmul(sliced_a, sliced_b), torch_path(products.fixed_matmul, sliced_a, sliced_b))
    a[0, 0], b[0, 0] = math.inf, math.nan
    assert_same_bits(products.fixed_matmul(a, b), torch_path(products.fixed_matmul, a, b), nan_payloads=False)


@pytest.mark.parametrize("isa", ["avx512", "avx2", "scalar"])
def test_every_instruction_set_gives_the_torch_paths_bits(kernels, torch_path, isa):
    """The AVX-512, AVX2 and scalar kernels (tiles of 12x32 or 24x16, 6x16 and 4x8 outputs, either
    orientation) perform each output's one chain of fused multiply-adds: the float64 emulation's
    bits, for sizes that cut tiles and the 256-term blocks anywhere, narrow and transposed
    outputs included, whether a tile reads ``a``'s rows and ``b``'s columns in place or packed (a kernel the CPU
    lacks falls back to the scalar one)."""
    for m, k, n, seed in [(1, 1, 1, 0), (13, 257, 33, 1), (25, 513, 70, 2), (96, 300, 31, 3),
                          (100, 300, 16, 4), (48, 20, 12, 5), (32, 20, 8, 6)]:
        a, b = spread((m, k), seed=seed), spread((k, n), seed=seed + 7, specials=False)
        b[0, 0] = -1e-40  # products in float32's subnormal range
        assert_same_bits(kernels.fixed_mm(a, b, isa), torch_path(products.fixed_matmul, a, b))
        assert_same_bits(kernels.fixed_mm(a, b.t().contiguous().t(), isa), kernels.fixed_mm(a, b, "scalar"))
        # a's rows and b's columns read in place with row strides wider than k and n, and a
        # column-major a read in place
        wide = torch.cat([a, spread((m, 5), seed=seed + 3)], dim=1)[:, :k]
        wide_b = torch.cat([b, spread((k, 3), seed=seed + 5, specials=False)], dim=1)[:, :n]
        assert_same_bits(kernels.fixed_mm(wide, wide_b, isa), torch_path(products.fixed_matmul, a, b))
        assert_same_bits(kernels.fixed_mm(a.t().contiguous().t(), b, isa), torch_path(products.fixed_matmul, a, b))


CONV_CASES = [  # (B, C, H, W, O, kh, kw, ph, pw): images whose Ho Wo is a multiple of every tile
    # width (one product over the batch) and ones that are not (a product per image), padding 0 to
    # k - 1, non-square kernels, and a weight gradient whose B Ho Wo terms cut the 256-term blocks
    (2, 3, 7, 9, 5, 3, 3, 1, 1), (4, 1, 16, 16, 16, 3, 3, 1, 1), (3, 5, 8, 8, 13, 3, 3, 0, 1),
    (1, 2, 5, 5, 3, 5, 3, 4, 0), (2, 4, 6, 6, 40, 1, 1, 0, 0), (5, 3, 9, 4, 7, 3, 2, 2, 1),
]


@pytest.mark.parametrize("isa", ["avx512", "avx2", "scalar"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_convolutions_match_the_torch_path_on_every_instruction_set(kernels, torch_path, isa, case):
    """The convolution kernels read the unfolded input in place; the torch path unfolds it
    (im2col) and runs the emulated product: the same chain of fmas per output, the same bits,
    also for a strided input (the backward pass's flipped, transposed kernel is one)."""
    b, c, h, w, o, kh, kw, ph, pw = case
    x, weight = spread((b, c, h, w), seed=b + c), spread((o, c, kh, kw), seed=o, specials=False)
    g = spread((b, o, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1), seed=7, specials=False)
    want = torch_path(products.fixed_conv2d, x, weight, [ph, pw])
    assert_same_bits(kernels.fixed_conv2d(x, weight, ph, pw, isa), want, nan_payloads=False)
    assert_same_bits(kernels.fixed_conv2d(x.transpose(2, 3).contiguous().transpose(2, 3), weight, ph, pw, isa),
                     want, nan_payloads=False)
    assert_same_bits(kernels.fixed_conv2d_weight(g, x, kh, kw, ph, pw, isa),
                     torch_path(products.fixed_conv2d_weight, g, x, [kh, kw], [ph, pw]), nan_payloads=False)


def test_batched_matmul_matches_the_torch_path(kernels, torch_path):
    a, b = spread((4, 9, 16), seed=1), spread((4, 16, 5), seed=2)
    for right in [b, b.transpose(1, 2).contiguous().transpose(1, 2)]:
        assert_same_bits(products.fixed_matmul(a, right), torch_path(products.fixed_matmul, a, right))


@pytest.mark.parametrize("shape", [(5, 7), (3, 1), (64, 33), (4, 3, 257), (2, 1000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_family_matches_the_torch_path(kernels, torch_path, shape, dtype):
    x, g = spread(shape, seed=3, dtype=dtype).clamp(-1e4, 1e4), spread(shape, seed=4, dtype=dtype)
    x.view(-1)[::5] = -math.inf  # masked positions
    if shape[0] > 2:
        x[1] = -math.inf  # a fully masked row
        x[2, ..., 0] = math.nan
    y, log_y = mode.do_softmax(x, -1, False), mode.do_log_softmax(x, -1, False)
    cases = [(mode.do_softmax, (x, -1, False)), (mode.do_log_softmax, (x, -1, False)),
             (mode.do_softmax_backward, (g, y, -1, dtype)), (mode.do_log_softmax_backward, (g, log_y, -1, dtype))]
    for f, args in cases:
        assert_same_bits(f(*args), torch_path(f, *args), nan_payloads=False)


@pytest.mark.parametrize("model", ["cnn", "transformer"])
def test_training_gives_the_same_root_with_and_without_the_kernels(kernels, torch_path, model):
    assert compute_root(model, "reproducible", torch.get_num_threads()) == \
        torch_path(compute_root, model, "reproducible", torch.get_num_threads())


def test_the_switch_turns_the_kernels_off(monkeypatch):
    x = torch.ones(3)
    monkeypatch.setenv(fused.ENV_SWITCH, "0")
    assert fused.kernels_for(x) is None


def test_tensors_autograd_records_and_subclasses_take_the_torch_path(kernels):
    leaf = torch.ones(3, requires_grad=True)
    assert fused.kernels_for(leaf) is None
    with torch.no_grad():
        assert fused.kernels_for(leaf) is kernels
    with fused.below_autograd():  # inside the dispatch mode autograd has already recorded
        assert fused.kernels_for(leaf) is kernels
    assert fused.kernels_for(torch.ones(3, dtype=torch.int64)) is None
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        assert fused.kernels_for(torch.ones(3)) is None


def test_a_failed_build_falls_back_with_a_warning_naming_why(monkeypatch, tmp_path):
    broken = tmp_path / "fused.cpp"
    broken.write_text("#include <torch/extension.h>\nthis is not C++;\n")
    monkeypatch.setattr(fused, "SOURCE", broken)
    monkeypatch.setenv(fused.ENV_DIR, str(tmp_path / "build"))
    monkeypatch.setattr(fused, "_STATE", {})
    with pytest.warns(fused.FusedKernelWarning, match=r"fused C\+\+ kernels unavailable \(.*Error.*\)"):
        assert fused.get_kernels() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then silent
        assert fused.kernels_for(torch.ones(3, dtype=torch.float64)) is None
        x = adversarial(100, seed=5)
        assert torch.equal(elementwise.portable_exp(x).isnan(), x.isnan())  # the torch path runs


def test_the_build_key_follows_the_source_and_the_flags():
    assert fused.compute_build_key("a") != fused.compute_build_key("b")
    assert "-ffp-contract=off" in fused.CFLAGS and not any(f.startswith("-march") for f in fused.CFLAGS)


@pytest.mark.parametrize("shape, normalized", [((5, 7), (7,)), ((3, 1), (1,)), ((64, 33), (33,)), ((4, 3, 257), (257,)),
                                               ((2, 6, 5), (6, 5))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_and_its_backward_match_the_torch_path(kernels, torch_path, shape, normalized, dtype, affine):
    """Including the variance's ``1 / sqrt``, which stays torch's (its float64 sqrt is not always
    the correctly rounded one: ``sqrt(132784.38821448633)`` is one ulp off on this CPU)."""
    x, g = spread(shape, seed=5, dtype=dtype), spread(shape, seed=6, dtype=dtype, specials=False)
    weight = spread(normalized, seed=7, dtype=dtype, specials=False) if affine else None
    bias = spread(normalized, seed=8, dtype=dtype, specials=False) if affine else None
    if shape[0] > 2:
        x[1] = 3.0  # a constant row: variance 0
        x[2].view(-1)[0] = math.nan
    forward = (x, list(normalized), weight, bias, 1e-5)
    got, want = mode.do_layer_norm(*forward), torch_path(mode.do_layer_norm, *forward)
    for a, b in zip(got, want, strict=True):
        assert_same_bits(a, b, nan_payloads=False)
    backward = (g, x, list(normalized), want[1], want[2], weight, bias, [True, True, True])
    for a, b in zip(mode.do_layer_norm_backward(*backward), torch_path(mode.do_layer_norm_backward, *backward), strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert_same_bits(a, b, nan_payloads=False)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_results_are_rounded_once_as_on_the_torch_path(kernels, torch_path, dtype):
    """float16/bfloat16 outputs come from float64 in one rounding, not through float32."""
    x = (torch.randn(64, 40, generator=torch.Generator().manual_seed(9)) * 4).to(dtype)
    g = torch.randn(64, 40, generator=torch.Generator().manual_seed(10)).to(dtype)
    y = mode.do_softmax(x, -1, False)
    cases = [(mode.do_softmax, (x, -1, False)), (mode.do_softmax, (x, -1, True)), (mode.do_log_softmax, (x, -1, False)),
             (mode.do_softmax_backward, (g, y, -1, dtype)), (mode.do_gelu, (x,)), (mode.do_gelu_backward, (g, x))]
    for f, args in cases:
        for kwargs in [{"approximate": "tanh"}, {}] if f in (mode.do_gelu, mode.do_gelu_backward) else [{}]:
            assert_same_bits(f(*args, **kwargs), torch_path(f, *args, **kwargs))


class OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    """Another dispatch mode watching the operators (as a recorder or an op-corrupting cheater does)."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.skipif(fused.get_kernels() is None, reason="the fused kernels could not be built here")
def test_a_watched_step_runs_the_torch_path_operator_by_operator(monkeypatch):
    """Under another dispatch mode (an operator recording) the fused loops stay off, so the
    operators everyone records, derives on fake tensors and re-executes are the torch path's."""
    calls = []
    real = fused.get_kernels
    monkeypatch.setattr(fused, "get_kernels", lambda: calls.append(1) or real())
    x = torch.linspace(-3, 3, 257)
    with mode.reproducible():
        plain = torch.exp(x)
    used_plain = len(calls)
    with OpLog() as log, mode.reproducible():
        watched = torch.exp(x)
    with fused.suspended(), mode.reproducible():
        suspended = torch.exp(x)
    assert used_plain > 0 and len(calls) == used_plain  # fused alone, torch path when watched or suspended
    assert torch.equal(plain, watched) and torch.equal(plain, suspended)  # the same bits either way
    assert len(log.ops) > 3  # the torch path's single roundings, each an operator
