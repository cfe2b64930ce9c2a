"""Sums whose result does not depend on the device, the thread count or the kernel.

They are made of exact integer sums (whose value cannot depend on the order of the
terms) and a fixed sequence of IEEE operations (each correctly rounded, so the same bits on every
device); neither relies on a library's summation order.

Products
--------
Matrix products are not here: they run in one fixed order of fused multiply-adds
(:mod:`verification.execution.repro.products`), the error of a float32 dot product at the cost of
one. The two-slice exact products of the previous version (Ozaki et al., "Error-free
transformations of matrix multiplication by using fast routines of matrix multiplication and its
applications", Numer. Algorithms 2012) cost three float64 GEMMs per product: 6-7x a float32 one
on this CPU, against 1.2x for the fixed order.

Sums: three-slice fixed point
-----------------------------
block
    The values reduced into one output.
block exponent ``e``
    The smallest integer with ``|v| < 2**e`` for every ``v`` of a block, read from the IEEE bits
    of the block's largest magnitude (``max`` is exact).
three-slice fixed point with ``b`` bits
    ``v * 2**(b - e) = q0 + q1 2**-b + q2 2**-2b + r``, each ``q`` an integer of magnitude at most
    ``2**b`` got by rounding and subtracting, every step exact in float64, so the same on every
    device.

``exact_sum`` splits each block into three slices of ``b = 52 - ceil(log2 n)`` bits for ``n`` terms, sums each slice exactly and combines the
three sums with two float64 roundings. *Bound:* ``|ŝ - s| <= n * 2**(e - 3b) + 2**-52 |s|``:
for ``n = 4096``, 120 bits below the block's largest term (float32's own sum can lose
``n * 2**-24`` of ``sum(|x|)``), so 1 next to ``±1e30`` (100 bits apart) is kept up to
``n = 2**16``. ``exact_cumsum`` gives every running sum of a row the same bound.
"""

from __future__ import annotations

import math

import torch

FLOAT64_EXACT_BITS = 52  # integers below 2**53 are exact; one bit of headroom for rounding up
MIN_SLICE_BITS = 12  # the narrowest slice a sum may use (a block of 2**40 terms)
SUM_SLICES = 3  # a sum keeps 3b bits below its largest term: 1 next to 1e30 for n up to 2**16


class ReproError(ValueError):
    """A reproducible operator was asked for something it cannot do exactly (names the value)."""


def ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def compute_pow2(n: torch.Tensor) -> torch.Tensor:
    """``2.0**n`` in float64, built from its IEEE bits (exact; ``n`` in -1022..1023)."""
    return ((n + 1023) << 52).view(torch.float64)


def compute_block_scales(x: torch.Tensor, dim: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 ``(2**(bits - e), 2**(e - bits))`` per block of ``x`` (float32 or float64) along
    ``dim`` (kept as size 1), assembled directly as IEEE bit patterns.

    ``e`` is read from the biased exponent ``be`` of the block's largest magnitude: ``e = be - 126``
    for float32 (zero and subnormal blocks get ``-126``), ``e = be - 1022`` for float64, where
    blocks below ``2**(bits - 1022)`` are given that exponent so both scales stay normal floats. A
    NaN or infinite block gets finite scales, and its values stay NaN or infinite.
    """
    amax = x.abs().amax(dim=dim, keepdim=True)
    if amax.dtype == torch.float32:
        be = (amax.view(torch.int32) >> 23).to(torch.int64)
        to_field, from_field = (bits + 1023 + 126) - be, be + (1023 - 126 - bits)
    elif amax.dtype == torch.float64:
        be = (amax.view(torch.int64) >> 52).clamp_min(bits)
        to_field, from_field = (bits + 1023 + 1022) - be, be + (1023 - 1022 - bits)
    else:
        raise ReproError(f"exact accumulation takes float32 or float64, got {amax.dtype}")
    return (to_field << 52).view(torch.float64), (from_field << 52).view(torch.float64)


def split_slices(x: torch.Tensor, to_grid: torch.Tensor, bits: int, count: int = 2) -> list[torch.Tensor]:
    """``[q0, q1, ...]``: the ``count``-slice fixed point of ``x`` (float32 or float64).

    A later slice of an infinite or NaN value is NaN (``inf - inf``); the callers keep it from
    deciding a result that the first slice already makes infinite or NaN.
    """
    rest = torch.mul(x, to_grid)  # float64, exact
    slices = []
    for _ in range(count - 1):
        q = rest.round()
        slices.append(q)
        rest = rest.sub_(q).mul_(2.0 ** bits)
    return [*slices, rest.round_()]


def drop_nonfinite(low: torch.Tensor) -> torch.Tensor:
    """A lower-slice result with its inf and NaN entries zeroed (in place). Where the first slice's
    result is finite, every term was finite and so is the lower one: this changes only entries that
    the first slice has made infinite or NaN, which stay so."""
    return low.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


def fused_kernels(*tensors: torch.Tensor):
    from verification.execution.repro import fused  # imports this module's users lazily

    return fused.kernels_for(*tensors)


def reduce_slices(x: torch.Tensor, dim: int, reduce: str) -> torch.Tensor:
    """``reduce`` (``"sum"`` with the dim kept, or ``"cumsum"``) of the three-slice fixed point of
    ``x`` along ``dim`` as float64: each slice reduced exactly, the three combined in float64."""
    bits = FLOAT64_EXACT_BITS - ceil_log2(x.shape[dim])
    if bits < MIN_SLICE_BITS:
        raise ReproError(f"exact {reduce}: {x.shape[dim]} terms leave only {bits} bits per slice")
    ext = fused_kernels(x) if reduce == "sum" and x.numel() > 0 else None  # empty: the torch path's errors
    if ext is not None:  # the same slices and sums in one C++ loop per block
        dim = dim % x.dim()
        outer, inner = math.prod(x.shape[:dim]), math.prod(x.shape[dim + 1:])
        total = ext.exact_sum3(x.contiguous(), outer, x.shape[dim], inner, bits)
        return total.reshape(*x.shape[:dim], 1, *x.shape[dim + 1:])
    to_grid, from_grid = compute_block_scales(x, dim, bits)
    kwargs = {"keepdim": True} if reduce == "sum" else {}
    q0, q1, q2 = (getattr(q, reduce)(dim=dim, **kwargs)  # exact
                  for q in split_slices(x, to_grid, bits, SUM_SLICES))
    low = drop_nonfinite(q1.add_(q2.mul_(2.0 ** -bits)))
    return q0.add_(low.mul_(2.0 ** -bits)).mul_(from_grid)


def exact_sum(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """The sum of ``x`` (float32 or float64) along ``dim`` as float64, by the three-slice fixed
    point of each block (module docstring): exact integer sums, combined in float64.

    The caller rounds (``.float()``) once, after any further float64 arithmetic (e.g. a mean).
    """
    result = reduce_slices(x, dim, "sum")
    return result if keepdim else result.squeeze(dim)


def exact_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The running sums of ``x`` (float32 or float64) along ``dim`` as float64, each with the
    bound of ``exact_sum`` for its block (the whole row along ``dim``): prefix sums of integer
    slices are exact in any scan order, so a parallel scan on a GPU and a sequential one on a CPU
    agree."""
    return reduce_slices(x, dim, "cumsum")
