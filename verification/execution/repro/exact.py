"""Exact accumulation: matmul and sums whose result does not depend on the summation order.

Terms
-----
block
    The values that meet in one accumulation: a row of ``A`` or a column of ``B`` in ``A @ B``, or
    the slice of ``x`` along the reduced dimension of a sum.
block exponent ``e``
    The smallest integer with ``|v| < 2**e`` for every ``v`` of a block, read from the IEEE bits of
    the block's largest magnitude (``max`` is exact, so any reduction order finds the same one).
fixed point with ``b`` bits
    ``q = round(v * 2**(b - e))``: an integer with ``|q| <= 2**b``, stored in float64. Scaling by a
    power of two is exact and ``round`` (half to even) is exact, so ``q`` is the same on every
    device. Values far below the block maximum keep fewer significant bits (block floating point).

Why the order stops mattering: if every operand is an integer and the sum of all magnitudes stays
below ``2**53``, every partial sum in *any* order is an integer below ``2**53``, hence exactly
representable in float64, hence every addition (and every fused multiply-add) is exact. So
float64 BLAS (MKL, OpenBLAS, cuBLAS, any blocking, any thread count, FMA or not) and ``torch.sum``
return the same integer everywhere. The budget follows: a dot product of length ``K`` leaves
``52 - ceil(log2 K)`` bits to share between the two operands (one bit of headroom for the rounding
to ``2**b``). The exact integer result is scaled back by a power of two (exact) and rounded to
float32 once. This is the error-free transformation of Ozaki et al. ("Error-free transformations
of matrix multiplication by using fast routines of matrix multiplication and its applications",
Numer. Algorithms 2012) with a single slice per operand; Demmel & Nguyen's ReproBLAS and Gensyn's
RepOps reach the same goal with fixed-order kernels instead.
"""

from __future__ import annotations

import torch

FLOAT64_EXACT_BITS = 52  # integers below 2**53 are exact; one bit of headroom for rounding up
MIN_OPERAND_BITS = 16  # below this a matmul operand would lose more than float16's precision


class ReproError(ValueError):
    """A reproducible operator was asked for something it cannot do exactly (names the value)."""


def ceil_log2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def compute_pow2(n: torch.Tensor) -> torch.Tensor:
    """``2.0**n`` in float64, built from its IEEE bits (exact; ``n`` in -1022..1023)."""
    return ((n + 1023) << 52).view(torch.float64)


def compute_block_scales(x: torch.Tensor, dim: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 ``(2**(bits - e), 2**(e - bits))`` per block along ``dim`` (kept as size 1).

    ``e`` is read from the biased exponent ``be`` of the block's largest magnitude: ``e = be - 126``
    for float32 (zero and subnormal blocks get ``-126``), ``e = be - 1022`` for float64, where
    blocks below ``2**(bits - 1022)`` are given that exponent so both scales stay normal floats.
    Both scales are assembled directly as IEEE bit patterns. NaN and inf propagate.
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


def to_fixed_point(x: torch.Tensor, to_grid: torch.Tensor) -> torch.Tensor:
    """``round(x * 2**(bits - e))`` as float64 integers of magnitude at most ``2**bits``."""
    return x.to(torch.float64, copy=True).mul_(to_grid).round_()


def compute_operand_bits(k: int) -> tuple[int, int]:
    """The fixed-point widths of ``A`` and ``B`` in a dot product of length ``k``."""
    budget = FLOAT64_EXACT_BITS - ceil_log2(k)
    if budget // 2 < MIN_OPERAND_BITS:
        raise ReproError(f"exact matmul: inner dimension K={k} leaves {budget} bits for both "
                         f"operands; at most {2 ** (FLOAT64_EXACT_BITS - 2 * MIN_OPERAND_BITS)} is supported")
    return (budget + 1) // 2, budget // 2


def exact_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (float32, ``(..., M, K) @ (..., K, N)``) with one rounding of an exact sum.

    The result is ``round_f32(sum_k qa[m, k] * qb[k, n] * 2**(ea[m] - bits_a) * 2**(eb[n] - bits_b))``:
    the exact dot product of the fixed-point operands, the same bits on every device and thread
    count. Both scalings are exact: the integer product is below ``2**53`` in magnitude and the exponents
    stay within float64's normal range.
    """
    bits_a, bits_b = compute_operand_bits(a.shape[-1])
    to_a, from_a = compute_block_scales(a, -1, bits_a)  # (..., M, 1)
    to_b, from_b = compute_block_scales(b, -2, bits_b)  # (..., 1, N)
    product = torch.matmul(to_fixed_point(a, to_a), to_fixed_point(b, to_b))  # exact
    return product.mul_(from_a).mul_(from_b).to(torch.float32)


def exact_sum(x: torch.Tensor, dim: int, keepdim: bool = False, bound: int | None = None) -> torch.Tensor:
    """The sum of ``x`` (float32 or float64) along ``dim`` as float64, exact after fixed point.

    ``bound``: a caller's guarantee that every ``|v| < 2**bound`` (e.g. softmax numerators, at
    most 1), used as every block's exponent instead of measuring it. The caller rounds
    (``.float()``) once, after any further float64 arithmetic (e.g. a mean).
    """
    bits = FLOAT64_EXACT_BITS - ceil_log2(x.shape[dim])
    if bits < MIN_OPERAND_BITS:
        raise ReproError(f"exact sum: {x.shape[dim]} terms leave only {bits} bits per term")
    if bound is not None:
        fixed = x.to(torch.float64, copy=True).mul_(2.0 ** (bits - bound)).round_()
        total = fixed.sum(dim=dim, keepdim=True)  # exact
        result = total * 2.0 ** (bound - bits)
    else:
        to_grid, from_grid = compute_block_scales(x, dim, bits)
        result = to_fixed_point(x, to_grid).sum(dim=dim, keepdim=True).mul_(from_grid)  # exact sum
    return result if keepdim else result.squeeze(dim)


def exact_sum_to_shape(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``g`` (float32) summed over the dimensions that broadcasting expanded from ``shape``.

    The gradient of a broadcast: every reduced element meets in one exact sum (float32 result).
    """
    lead = g.dim() - len(shape)
    dims = list(range(lead)) + [lead + i for i, size in enumerate(shape)
                                if size == 1 and g.shape[lead + i] != 1]
    if not dims:
        return g
    kept = [d for d in range(g.dim()) if d not in dims]
    flat = g.permute(dims + kept).reshape(-1, *[g.shape[d] for d in kept])
    return exact_sum(flat, 0).to(torch.float32).reshape(shape)
