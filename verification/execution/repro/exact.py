"""Accumulation whose result does not depend on the device, the thread count or the kernel.

Both reductions are made of exact integer sums (whose value cannot depend on the order of the
terms) and a fixed sequence of IEEE operations (each correctly rounded, so the same bits on every
device); neither relies on a library's summation order.

Products: two-slice fixed point
-------------------------------
block
    The values of one operand that meet in one dot product: a row of ``A`` or a column of ``B``
    in ``A @ B``.
block exponent ``e``
    The smallest integer with ``|v| < 2**e`` for every ``v`` of a block, read from the
    IEEE bits of the block's largest magnitude (``max`` is exact).
two-slice fixed point with ``b`` bits
    ``v * 2**(b - e) = q0 + q1 * 2**-b + r`` with ``q0 = round(v * 2**(b - e))`` and
    ``q1 = round((v * 2**(b - e) - q0) * 2**b)``: integers of magnitude at most ``2**b``, every step
    exact in float64 (scaling by powers of two, rounding, and the difference of a number and its
    rounding), so ``q0`` and ``q1`` are the same on every device.

Why the order stops mattering: the three products ``Q0_A Q0_B``, ``Q0_A Q1_B`` and ``Q1_A Q0_B``
have integer operands whose dot products stay below ``2**52`` in magnitude, so every partial sum in
*any* order is an integer below ``2**53``, exactly representable: float64 BLAS (MKL, OpenBLAS,
cuBLAS, any blocking, FMA or not) returns the same integers everywhere. The result is
``(P00 + (P01 + P10) * 2**-b) * 2**(e_A + e_B - 2b)``, one float64 rounding, then one rounding to
float32. This is the error-free transformation of Ozaki et al. ("Error-free transformations of
matrix multiplication by using fast routines of matrix multiplication and its applications",
Numer. Algorithms 2012) with two slices per operand; Demmel & Nguyen's ReproBLAS and Gensyn's
RepOps reach the same goal with fixed-order kernels instead.

*Bound.* With ``b = floor((52 - ceil(log2 2K)) / 2)`` (20 bits for ``K = 1024``), for every output
``|ĉ - c| <= K * 2**(3 - 2b) * 2**(e_A(m) + e_B(n))`` before the final rounding to float32: about
``2**-28`` of the product of the two blocks' largest magnitudes for ``K = 1024``, so an outlier
feature 10**4 above the rest costs nothing visible in float32. The bound is relative to the blocks'
maxima, not to each term: a term more than ``2b`` bits below its block's maximum is rounded on the
grid (``[2**60, 1] @ [0, 1]`` loses the 1). Balancing the inner dimension by powers of two, tried,
fixed that case and made a row with one huge entry per column worse; covering every term exactly
needs a number of slices that depends on the data, which the fixed operator schedule of the
dispute game (``verification.execution.opgraph``) cannot have.

Sums: three-slice fixed point
-----------------------------
``exact_sum`` splits each block (the values reduced into one output) the same way into three
slices of ``b = 52 - ceil(log2 n)`` bits for ``n`` terms, sums each slice exactly and combines the
three sums with two float64 roundings. *Bound:* ``|ŝ - s| <= n * 2**(e - 3b) + 2**-52 |s|``:
for ``n = 4096``, 120 bits below the block's largest term (float32's own sum can lose
``n * 2**-24`` of ``sum(|x|)``), so 1 next to ``±1e30`` (100 bits apart) is kept up to
``n = 2**16``. ``exact_cumsum`` gives every running sum of a row the same bound.
"""

from __future__ import annotations

import math
import threading

import torch

FLOAT64_EXACT_BITS = 52  # integers below 2**53 are exact; one bit of headroom for rounding up
MIN_SLICE_BITS = 12  # two slices then hold a float32 significand (24 bits) of the block maximum
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


def compute_slice_bits(k: int) -> int:
    """The fixed-point width of both slices of both operands in a dot product of length ``k``."""
    bits = (FLOAT64_EXACT_BITS - ceil_log2(2 * k)) // 2
    if bits < MIN_SLICE_BITS:
        raise ReproError(f"exact matmul: inner dimension K={k} leaves {bits} bits per operand slice; "
                         f"at most {2 ** (FLOAT64_EXACT_BITS - 2 * MIN_SLICE_BITS - 1)} is supported")
    return bits


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


def exact_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (float32, ``(..., M, K) @ (..., K, N)``), the same bits on every device.

    Two-slice fixed point (module docstring): three float64 products of integers, each exact,
    combined with one rounding in float64 and one to float32.
    """
    bits = compute_slice_bits(a.shape[-1])
    ext = fused_kernels(a, b)
    if ext is not None and a.dtype == b.dtype == torch.float32 and a.dim() == b.dim() in (2, 3) \
            and a.shape[:-2] == b.shape[:-2] and a.shape[-1] == b.shape[-2]:
        return fused_matmul(ext, a, b, bits)
    to_a, from_a = compute_block_scales(a, -1, bits)  # (..., M, 1)
    to_b, from_b = compute_block_scales(b, -2, bits)  # (..., 1, N)
    qa0, qa1 = split_slices(a, to_a, bits)
    qb0, qb1 = split_slices(b, to_b, bits)
    high = torch.matmul(qa0, qb0)  # exact
    cross = drop_nonfinite(torch.matmul(qa0, qb1).add_(torch.matmul(qa1, qb0)))  # exact: below 2**52
    return high.add_(cross.mul_(2.0 ** -bits)).mul_(from_a).mul_(from_b).to(torch.float32)


def fused_kernels(*tensors: torch.Tensor):
    from verification.execution.repro import fused  # imports this module's users lazily

    return fused.kernels_for(*tensors)


_WORKSPACE = threading.local()


WORKSPACE_LIMIT = 1 << 23  # float64 elements (64 MiB) a reused buffer may hold; larger ones are fresh


def get_workspace(name: str, numel: int) -> torch.Tensor | None:
    """A float64 CPU buffer of at least ``numel`` elements, kept per thread and reused (a fresh
    multi-megabyte tensor per matmul costs a page fault per 4 KiB, as much as filling it), or
    None above ``WORKSPACE_LIMIT``."""
    if numel > WORKSPACE_LIMIT:
        return None
    buffers = getattr(_WORKSPACE, "buffers", None)
    if buffers is None:
        buffers = _WORKSPACE.buffers = {}
    buf = buffers.get(name)
    if buf is None or buf.numel() < numel:
        buf = buffers[name] = torch.empty(max(numel, 1), dtype=torch.float64)
    return buf


def split_fused(ext, x: torch.Tensor, rows: bool, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two slices of a (B, R, C) float32 operand in one pass: ``A``'s ``[Q0 | Q1]`` (B, M, 2K)
    (``rows``: blocks are rows) or ``B``'s ``[Q1 ; Q0]`` (B, 2K, N) (blocks are columns), as views
    of whichever layout the kernel wrote (BLAS takes either), and the scales ``2**(e - b)``."""
    blocks = x if rows else x.transpose(1, 2)  # (B, blocks, K)
    (n, k), (s1, s2) = blocks.shape[1:], blocks.stride()[1:]
    packed = (k == 1 or s2 == 1) and (n == 1 or s1 == k)  # each block contiguous
    adjacent = not packed and s1 == 1 and s2 == n  # block p's element i at i n + p
    if not (packed or adjacent):
        blocks = blocks.contiguous()
    cat, scale = ext.split_operand(blocks, adjacent, not rows, bits,
                                   get_workspace("a" if rows else "b", 2 * blocks.numel()))
    if adjacent:
        cat = cat.transpose(1, 2)  # (B, blocks, 2K)
    return (cat, scale.unsqueeze(2)) if rows else (cat.transpose(1, 2), scale.unsqueeze(1))


def fused_matmul(ext, a: torch.Tensor, b: torch.Tensor, bits: int) -> torch.Tensor:
    """``exact_matmul`` through the fused kernels: one pass per operand gives ``[Q0_A | Q1_A]`` and
    ``[Q1_B ; Q0_B]`` with their scales, so ``Q0_A Q1_B + Q1_A Q0_B`` is one float64 GEMM over
    ``2K`` (every partial sum an integer below ``2**52``: the slice width is chosen for ``2K``
    terms, so the integer is the one the two GEMMs and their exact sum give) and ``Q0_A Q0_B``
    another over views of the same buffers; one pass combines them. Same bits as the torch path."""
    flat = a.dim() == 2
    a3, b3 = (a.unsqueeze(0), b.unsqueeze(0)) if flat else (a, b)
    k = a3.shape[-1]
    qa, from_a = split_fused(ext, a3, True, bits)  # (B, M, 2K), (B, M, 1)
    qb, from_b = split_fused(ext, b3, False, bits)  # (B, 2K, N), (B, 1, N)
    shape = (qa.shape[0], qa.shape[1], qb.shape[2])
    high, cross = (torch.empty(shape, dtype=torch.float64) if buf is None else buf[: math.prod(shape)].view(shape)
                   for buf in (get_workspace(name, math.prod(shape)) for name in ("high", "cross")))
    if flat:
        torch.mm(qa[0, :, :k], qb[0, k:], out=high[0])
        torch.mm(qa[0], qb[0], out=cross[0])
    else:
        torch.bmm(qa[:, :, :k], qb[:, k:], out=high)
        torch.bmm(qa, qb, out=cross)
    out = ext.combine_products(high, cross, from_a, from_b, bits)
    return out[0] if flat else out


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
