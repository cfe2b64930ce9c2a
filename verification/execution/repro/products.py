"""Matrix products whose bits do not depend on the device, the instruction set or the thread count.

The fixed order
---------------
block
    The inner dimension ``K`` of ``A @ B`` is cut into blocks of ``BLOCK`` (256) consecutive terms,
    the last one shorter. ``BLOCK`` is part of the order, as the Merkle formats are part of a root:
    it is not tuned per machine.
fixed-order product
    Every output ``c[m, n]`` is computed as
    ``p_b = fma(a[m, k], b[k, n], p_b)`` for ``k`` in block ``b`` in increasing order, from
    ``p_b = +0``; then ``c = p_0``, ``c = c + p_1``, ... in block order, each a float32 operation.
    ``fma`` is IEEE 754's fusedMultiplyAdd: one correctly rounded operation, so AVX-512, AVX2, a
    scalar ``std::fma``, a GPU's ``fmaf`` and the float64 emulation below all give its one result.

Vector lanes of the CPU kernels (``fused.cpp``: ``fixed_mm``) run across output columns, never
across ``k``, so a lane performs the scalar chain; tiling, packing and threads change which outputs
are computed together, never the operations of one. NaN outputs are the canonical quiet NaN.
This is the approach of Gensyn's RepOps (Arun et al. 2025, "Verde", §5): one fixed reduction
order on every device, instead of exact accumulation.

*Bound* (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §3.1): with
``u = 2**-24``, ``L = min(K, BLOCK)`` and ``n_b = ceil(K / BLOCK)`` blocks,
``|ĉ - c| <= γ(L + n_b - 1) · Σ_k |a_k b_k|`` where ``γ(j) = j u / (1 - j u)``: the error of a
float32 dot product, relative to the terms themselves (an outlier 10**4 above the rest costs what
float32 costs it; ``[1e30, 1] · [0, 1]`` is exactly 1). Products below float32's subnormal range
round as float32 arithmetic does, and a
partial beyond float32's range is infinite, as in any float32 dot product (the bound holds where
``Σ_k |a_k b_k|`` is finite in float32).

Where the C++ kernel is not available (other devices, a failed build, tensor subclasses), the same
order runs in torch: each ``fma`` emulated in float64 (``emulate_fma``), ``BLOCK`` + ``n_b`` vector
operations per output, slow but the same bits (``tests/repro/test_products.py``).

In reproducible mode's operator trace a product is one operator, ``pinpoint.fixed_mm.default``
(a convolution ``pinpoint.fixed_conv2d.default``, its weight gradient
``pinpoint.fixed_conv2d_weight.default``: below), which the referee re-executes
(``verification.execution.opgraph.resolve_operator``).
"""

from __future__ import annotations

import functools

import torch

BLOCK = 256  # terms per block of the fixed order
ISAS = {"AVX512": "avx512", "AVX2": "avx2"}  # torch's CPU capability -> the kernel that runs


@functools.cache
def get_isa() -> str:
    """The CPU kernel to run: torch's own capability (``ATEN_CPU_CAPABILITY`` lowers it, as on an
    older machine), else the scalar one. Every kernel gives the same bits."""
    return ISAS.get(torch.backends.cpu.get_cpu_capability(), "scalar")


def emulate_fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """float32 ``fma(a, b, c)`` (broadcasting) from float64 operations, correctly rounded.

    ``a b`` is exact in float64 (24 + 24 bits). ``s = a b + c`` is rounded to *odd* (Boldo and
    Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to
    odd", IEEE Trans. Computers 2008): the nearest sum ``s`` and its exact error ``e`` (Knuth's
    TwoSum), and where ``e != 0`` and ``s`` is even, the neighbour of ``s`` towards ``e``. A value
    rounded to odd with 53 >= 2·24 + 2 bits rounds to float32 as the exact sum does, subnormals and
    overflow included. Infinities and NaN pass through the plain sum.
    """
    p = a.double() * b.double()
    c64 = c.double()
    s = p + c64
    bp = s - c64  # Knuth's TwoSum with (c, a b): e = c + a b - s exactly
    e = (c64 - (s - bp)) + (p - bp)
    bits = s.view(torch.int64)
    step = torch.where((e > 0) == (s > 0), 1, -1)
    fix = (e != 0) & ((bits & 1) == 0) & torch.isfinite(s)
    return torch.where(fix, bits + step, bits).view(torch.float64).to(torch.float32)


def torch_fixed_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The fixed-order product in torch operations on any device: ``(..., M, K) @ (..., K, N)``."""
    k = a.shape[-1]
    shape = (*a.shape[:-1], b.shape[-1])
    out = torch.zeros(shape, dtype=torch.float32, device=a.device)
    for start in range(0, k, BLOCK):
        part = torch.zeros(shape, dtype=torch.float32, device=a.device)
        for i in range(start, min(k, start + BLOCK)):
            part = emulate_fma(a[..., :, i:i + 1], b[..., i:i + 1, :], part)
        out = part if start == 0 else out + part
    return torch.where(out.isnan(), torch.tensor(float("nan"), device=a.device), out)


def get_cpu_kernels(*tensors: torch.Tensor):
    """The C++ kernels for plain float32 CPU tensors, or None (another device, a subclass, the
    kernels switched off or not built): the caller runs the torch path, which gives the same bits."""
    from verification.execution.repro import fused

    if not all(type(t) is torch.Tensor and t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors):
        return None
    return fused.get_kernels()


def run_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """The product by the C++ kernel, or None where there is none (``get_cpu_kernels``)."""
    ext = get_cpu_kernels(a, b)
    return None if ext is None else ext.fixed_mm(a, b, get_isa())


@torch.library.custom_op("pinpoint::fixed_mm", mutates_args=())
def fixed_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The fixed-order product of float32 ``(M, K) @ (K, N)`` or ``(B, M, K) @ (B, K, N)``."""
    out = run_kernel(a, b)
    return torch_fixed_mm(a, b) if out is None else out


@fixed_mm.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty((*a.shape[:-1], b.shape[-1]))


class ProductError(ValueError):
    """A product reproducible mode does not cover (names the shapes or dtype)."""


def is_unwatched() -> bool:
    """No dispatch mode watches the operators (an op recorder, a cheater, a test's log): a product
    may then call its kernel directly, without its operator's dispatch (14 of a small product's 17 us)."""
    return torch._C._len_torch_dispatch_stack() == 0


def fixed_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for float32 ``(M, K) @ (K, N)`` or ``(B, M, K) @ (B, K, N)`` in the fixed order."""
    if a.dtype != torch.float32 or b.dtype != torch.float32:
        raise ProductError(f"fixed-order product takes float32 operands, got {a.dtype} and {b.dtype}")
    if not (a.dim() == b.dim() in (2, 3) and a.shape[-1] == b.shape[-2] and a.shape[:-2] == b.shape[:-2]):
        raise ProductError(f"fixed-order product of shapes {tuple(a.shape)} and {tuple(b.shape)}: "
                           "expected (M, K) @ (K, N) or (B, M, K) @ (B, K, N)")
    if is_unwatched() and (out := run_kernel(a, b)) is not None:
        return out
    return torch.ops.pinpoint.fixed_mm(a, b)


# -- convolutions -----------------------------------------------------------------------------------
# A stride-1 2-D convolution is a product whose second operand is the unfolded input
# (``im2col``: row ``k = (c, i, j)``, column ``l = (y, x)``), so it gets the fixed order too:
#
#   out[b, o, l]           = Σ_k  weight[o, k] · cols_b[k, l]              (K = C kh kw)
#   grad_weight[o, k]      = Σ_(b, l)  g[b, o, l] · cols_b[k, l]           (K = B Ho Wo, b-major)
#
# each output one chain of fmas in that order of k, in blocks of BLOCK. The C++ kernels read the
# input in place while packing (the unfolded matrix, C kh kw times the input, is never written);
# the torch path below unfolds it and runs ``torch_fixed_mm``: the same bits. Each is one operator
# of the op trace, ``pinpoint.fixed_conv2d`` and ``pinpoint.fixed_conv2d_weight``.
def compute_conv_size(x_shape: tuple[int, ...], kernel: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    """``(Ho, Wo)`` of a stride-1 convolution of an ``(B, C, H, W)`` input."""
    return x_shape[2] + 2 * padding[0] - kernel[0] + 1, x_shape[3] + 2 * padding[1] - kernel[1] + 1


def unfold_rows(x: torch.Tensor, kernel: list[int], padding: list[int]) -> torch.Tensor:
    """The unfolded input as ``(B Ho Wo, C kh kw)`` rows: row ``(b, l)`` holds ``cols_b[:, l]``."""
    cols = torch.ops.aten.im2col.default(x, list(kernel), [1, 1], list(padding), [1, 1])  # (B, C kh kw, L)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def torch_fixed_conv2d(x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor:
    o, (ho, wo) = weight.shape[0], compute_conv_size(tuple(x.shape), tuple(weight.shape[-2:]), tuple(padding))
    out = torch_fixed_mm(unfold_rows(x, list(weight.shape[-2:]), padding), weight.reshape(o, -1).t())  # (B L, O)
    return out.reshape(x.shape[0], ho, wo, o).permute(0, 3, 1, 2).contiguous()


def torch_fixed_conv2d_weight(g: torch.Tensor, x: torch.Tensor, kernel: list[int], padding: list[int]) -> torch.Tensor:
    o = g.shape[1]
    g_rows = g.permute(0, 2, 3, 1).reshape(-1, o)  # (B L, O)
    return torch_fixed_mm(g_rows.t().contiguous(), unfold_rows(x, kernel, padding)).reshape(o, x.shape[1], *kernel)


def run_conv2d_kernel(x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor | None:
    """The convolution by the C++ kernel, or None where there is none (``get_cpu_kernels``)."""
    ext = get_cpu_kernels(x, weight)
    return None if ext is None else ext.fixed_conv2d(x, weight, padding[0], padding[1], get_isa())


def run_conv2d_weight_kernel(g: torch.Tensor, x: torch.Tensor, kernel: list[int],
                             padding: list[int]) -> torch.Tensor | None:
    """The weight gradient by the C++ kernel, or None where there is none (``get_cpu_kernels``)."""
    ext = get_cpu_kernels(g, x)
    return None if ext is None else ext.fixed_conv2d_weight(g, x, kernel[0], kernel[1], padding[0], padding[1],
                                                            get_isa())


@torch.library.custom_op("pinpoint::fixed_conv2d", mutates_args=())
def fixed_conv2d_op(x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor:
    """The stride-1 convolution ``(B, C, H, W) * (O, C, kh, kw) -> (B, O, Ho, Wo)``, no bias, in the fixed order."""
    out = run_conv2d_kernel(x, weight, padding)
    return torch_fixed_conv2d(x, weight, padding) if out is None else out


@fixed_conv2d_op.register_fake
def _(x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor:
    return x.new_empty((x.shape[0], weight.shape[0],
                        *compute_conv_size(tuple(x.shape), tuple(weight.shape[-2:]), tuple(padding))))


@torch.library.custom_op("pinpoint::fixed_conv2d_weight", mutates_args=())
def fixed_conv2d_weight_op(g: torch.Tensor, x: torch.Tensor, kernel: list[int], padding: list[int]) -> torch.Tensor:
    """The weight gradient ``(O, C, kh, kw)`` of that convolution for the output gradient ``g``."""
    out = run_conv2d_weight_kernel(g, x, kernel, padding)
    return torch_fixed_conv2d_weight(g, x, kernel, padding) if out is None else out


@fixed_conv2d_weight_op.register_fake
def _(g: torch.Tensor, x: torch.Tensor, kernel: list[int], padding: list[int]) -> torch.Tensor:
    return x.new_empty((g.shape[1], x.shape[1], *kernel))


def check_conv(x: torch.Tensor, weight_shape: tuple[int, ...], padding: list[int]) -> None:
    if x.dtype != torch.float32 or x.dim() != 4 or len(weight_shape) != 4 or x.shape[1] != weight_shape[1]:
        raise ProductError(f"fixed-order convolution of a {x.dtype} input {tuple(x.shape)} with a weight "
                           f"{tuple(weight_shape)}: expected float32 (B, C, H, W) and (O, C, kh, kw)")
    if min(padding) < 0 or min(compute_conv_size(tuple(x.shape), tuple(weight_shape[-2:]), tuple(padding))) < 1:
        raise ProductError(f"fixed-order convolution: kernel {tuple(weight_shape[-2:])} does not fit the input "
                           f"{tuple(x.shape[-2:])} padded by {list(padding)}")


def fixed_conv2d(x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding)`` (stride 1, no bias) in the fixed order."""
    check_conv(x, tuple(weight.shape), padding)
    if weight.dtype != torch.float32:
        raise ProductError(f"fixed-order convolution takes a float32 weight, got {weight.dtype}")
    padding = [int(p) for p in padding]
    if is_unwatched() and (out := run_conv2d_kernel(x, weight, padding)) is not None:
        return out
    return torch.ops.pinpoint.fixed_conv2d(x, weight, padding)


def fixed_conv2d_weight(g: torch.Tensor, x: torch.Tensor, kernel: list[int], padding: list[int]) -> torch.Tensor:
    """The weight gradient of ``fixed_conv2d(x, weight, padding)`` for its output gradient ``g``."""
    weight_shape = (g.shape[1], x.shape[1], *kernel)
    check_conv(x, weight_shape, padding)
    if g.dtype != torch.float32 or tuple(g.shape) != (x.shape[0], g.shape[1], *compute_conv_size(
            tuple(x.shape), tuple(kernel), tuple(padding))):
        raise ProductError(f"fixed-order convolution weight gradient: g {g.dtype} {tuple(g.shape)} does not "
                           f"match the input {tuple(x.shape)}, kernel {list(kernel)} and padding {list(padding)}")
    kernel, padding = [int(k) for k in kernel], [int(p) for p in padding]
    if is_unwatched() and (out := run_conv2d_weight_kernel(g, x, kernel, padding)) is not None:
        return out
    return torch.ops.pinpoint.fixed_conv2d_weight(g, x, kernel, padding)
