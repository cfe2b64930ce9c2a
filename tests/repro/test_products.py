"""The fixed-order product (``verification.execution.repro.products``): its float64 FMA emulation
is correctly rounded, and a product is one operator the referee can name and re-run."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from verification.execution.opgraph import resolve_operator
from verification.execution.repro import products, reproducible

FLOATS = st.floats(width=32, allow_nan=False, allow_infinity=False)


def round_to_float32(x: Fraction) -> float:
    """The float32 nearest to ``x`` (ties to even), by exact comparison with its two neighbours."""
    guess = np.float32(float(x))  # within one float32 ulp of x (float(x) is correctly rounded)
    best = guess
    for candidate in (np.nextafter(guess, np.float32(-np.inf)), np.nextafter(guess, np.float32(np.inf))):
        if not np.isfinite(candidate):
            continue
        d_best, d_new = abs(Fraction(float(best)) - x), abs(Fraction(float(candidate)) - x)
        is_even = int(np.float32(candidate).view(np.uint32)) % 2 == 0
        if d_new < d_best or (d_new == d_best and is_even):
            best = candidate
    return float(best)


def fma32(a: float, b: float, c: float) -> float:
    return float(products.emulate_fma(torch.tensor(a), torch.tensor(b), torch.tensor(c)))


@settings(max_examples=400, deadline=None)
@example(a=3.0, b=-5825726389420032.0, c=1.0)  # a TwoSum with its operands swapped got this wrong
@given(a=FLOATS, b=FLOATS, c=FLOATS)
def test_emulated_fma_is_correctly_rounded(a, b, c):
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if abs(exact) >= Fraction(float(np.finfo(np.float32).max)):
        return  # overflow: IEEE's infinity, checked below
    assert fma32(a, b, c) == round_to_float32(exact)


def test_emulated_fma_on_double_rounding_cases():
    """Sums whose float64 rounding lands on a float32 midpoint: rounding the float64 sum to nearest
    would round twice and be wrong; round to odd is not."""
    half_ulp = 2.0**-24  # half a float32 ulp of 1
    for c in (2.0**-60, -(2.0**-60), 2.0**-80):

        got = float(products.emulate_fma(torch.tensor(1.0), torch.tensor(half_ulp), torch.tensor(1.0))
                    + 0.0)
        assert got == round_to_float32(Fraction(1) + Fraction(half_ulp))  # a tie: to even, 1.0
        a, b = torch.tensor(1.0 + 2.0**-23), torch.tensor(half_ulp)
        assert float(products.emulate_fma(a, b, torch.tensor(c))) == round_to_float32(
            Fraction(float(a)) * Fraction(float(b)) + Fraction(c))


def test_emulated_fma_propagates_infinities_and_nan():
    inf, nan = float("inf"), float("nan")
    assert fma32(3.4e38, 10.0, 0.0) == inf and fma32(-3.4e38, 10.0, 0.0) == -inf
    assert np.isnan(fma32(inf, 0.0, 1.0)) and np.isnan(fma32(1.0, 1.0, nan)) and np.isnan(fma32(inf, 1.0, -inf))
    assert fma32(-1.0, 0.0, 0.0) == 0.0 and np.signbit(fma32(-1.0, 0.0, -0.0))  # IEEE signed zeros
    assert np.signbit(fma32(-(2.0**-100), 2.0**-100, 0.0))  # an underflow keeps its sign


def test_the_torch_path_follows_the_documented_order():
    """Block partials from +0, one fma per term, added in block order: written out by hand."""
    gen = torch.Generator().manual_seed(0)
    k = products.BLOCK + 3
    a, b = torch.randn(1, k, generator=gen), torch.randn(k, 1, generator=gen)
    blocks = []
    for start in range(0, k, products.BLOCK):
        part = 0.0
        for i in range(start, min(k, start + products.BLOCK)):
            part = fma32(float(a[0, i]), float(b[i, 0]), part)
        blocks.append(np.float32(part))
    assert float(products.torch_fixed_mm(a, b)) == float(blocks[0] + blocks[1])
    assert torch.equal(products.torch_fixed_mm(a, b), products.fixed_matmul(a, b))


def test_a_product_is_one_operator_that_the_referee_can_name():
    seen = []

    class Log(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(str(func))
            return func(*args, **(kwargs or {}))

    a, b = torch.randn(4, 5), torch.randn(5, 3)
    with Log(), reproducible():
        out = a @ b
    assert seen.count("pinpoint.fixed_mm.default") == 1 and not any("aten.mm" in s for s in seen)
    op = resolve_operator("pinpoint.fixed_mm.default")
    assert torch.equal(op(a, b), out)
    with pytest.raises(Exception, match="not an overload"):
        resolve_operator("os.system.default")


def test_fake_tensors_get_the_products_shape():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = products.fixed_matmul(torch.empty(2, 7, 5), torch.empty(2, 5, 3))
    assert tuple(out.shape) == (2, 7, 3)


def test_a_convolution_and_its_backward_are_one_operator_each():
    """Forward, input gradient and weight gradient are each one named operator of the trace, with
    nothing unfolded around them, and the referee's re-run of each gives the recorded output."""
    calls = []

    class Log(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            calls.append((str(func), args, out))
            return out

    x = torch.randn(2, 3, 6, 5, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, requires_grad=True)
    with Log(), reproducible():
        torch.nn.functional.conv2d(x, weight, padding=1).square().sum().backward()
    names = [name for name, _, _ in calls]
    assert names.count("pinpoint.fixed_conv2d.default") == 2  # the output and the input gradient
    assert names.count("pinpoint.fixed_conv2d_weight.default") == 1
    assert not any(n.startswith(("aten.im2col", "pinpoint.fixed_mm")) for n in names)
    for name, args, out in calls:
        if name.startswith("pinpoint.fixed_conv2d"):
            assert torch.equal(resolve_operator(name)(*args), out)
    assert torch.equal(x.grad, products.fixed_conv2d(  # the input gradient: the flipped kernel's convolution
        2 * products.fixed_conv2d(x.detach(), weight.detach(), [1, 1]),
        weight.detach().flip(-1, -2).transpose(0, 1), [1, 1]))


def test_fake_tensors_get_the_convolutions_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = products.fixed_conv2d(torch.empty(2, 3, 7, 9), torch.empty(5, 3, 3, 2), [1, 0])
        grad = products.fixed_conv2d_weight(torch.empty(2, 5, 7, 8), torch.empty(2, 3, 7, 9), [3, 2], [1, 0])
    assert tuple(out.shape) == (2, 5, 7, 8) and tuple(grad.shape) == (5, 3, 3, 2)


@pytest.mark.parametrize("x, weight, padding, match", [
    (torch.empty(2, 3, 4, 4), torch.empty(5, 2, 3, 3), [1, 1], "expected float32 .B, C, H, W. and .O, C, kh, kw."),
    (torch.empty(2, 3, 4, 4, dtype=torch.float64), torch.empty(5, 3, 3, 3), [1, 1], "float64 input"),
    (torch.empty(2, 3, 2, 2), torch.empty(5, 3, 5, 5), [1, 1], r"kernel \(5, 5\) does not fit the input \(2, 2\)"),
])
def test_a_convolution_it_cannot_compute_is_refused_by_name(x, weight, padding, match):
    with pytest.raises(products.ProductError, match=match):
        products.fixed_conv2d(x, weight, padding)
