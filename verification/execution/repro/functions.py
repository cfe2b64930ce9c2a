"""The reproducible operators as ``torch.autograd.Function``s with explicit backward passes.

Every forward and backward below is built only from

* exact accumulation (``exact_matmul``, ``exact_sum``; ``verification.execution.repro.exact``),
* the portable elementwise functions (``verification.execution.repro.elementwise``),
* single IEEE-754 operations that every device rounds the same way (add, sub, mul, div, sqrt,
  round, casts), each its own kernel — never a fused form such as ``addcmul``, ``lerp`` or
  ``add(..., alpha=c)`` with ``c != ±1``, which a compiler may or may not contract into one
  fused multiply-add — and scalars only in float64 arithmetic or as exact powers of two (CUDA
  divides by a host scalar through its reciprocal, CPU does not, so nothing divides by a scalar),
* exact data movement (views, ``unfold``, gathers, ``where``, ``amax``, comparisons).

Intermediate arithmetic is float64 where it helps accuracy; each operator rounds its float32
output once. Gradients flow only through these functions and through views, so torch's own
backward formulas (which reduce with order-dependent sums) never run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from verification.execution.repro.elementwise import (
    compute_gelu_gates,
    portable_exp,
    portable_gelu,
    portable_gelu_grad,
    portable_log,
)
from verification.execution.repro.exact import (
    ReproError,
    exact_matmul,
    exact_sum,
    exact_sum_to_shape,
)


class Matmul(torch.autograd.Function):
    """``a @ b`` for ``(..., M, K) @ (..., K, N)`` with equal batch dimensions."""

    @staticmethod
    def forward(ctx, a, b):
        if a.shape[:-2] != b.shape[:-2]:
            raise ReproError(f"matmul: batch dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)}")
        ctx.save_for_backward(a, b)
        return exact_matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = exact_matmul(g, b.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        grad_b = exact_matmul(a.transpose(-1, -2), g) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


class Add(torch.autograd.Function):
    """``a + b`` with broadcasting; the gradient of a broadcast operand is an exact sum."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, g):
        shape_a, shape_b = ctx.shapes
        return (exact_sum_to_shape(g, shape_a) if ctx.needs_input_grad[0] else None,
                exact_sum_to_shape(g, shape_b) if ctx.needs_input_grad[1] else None)


class Scale(torch.autograd.Function):
    """``x * c`` for a Python float ``c``: float64 product, one rounding."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return (x.double() * c).to(torch.float32)

    @staticmethod
    def backward(ctx, g):
        return (g.double() * ctx.c).to(torch.float32), None


class Relu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        positive = x > 0
        ctx.save_for_backward(positive)
        return torch.where(positive, x, 0.0)

    @staticmethod
    def backward(ctx, g):
        (positive,) = ctx.saved_tensors
        return torch.where(positive, g, 0.0)


class Gelu(torch.autograd.Function):
    """GELU, tanh approximation (``portable_gelu``)."""

    @staticmethod
    def forward(ctx, x):
        x64 = x.double()
        s, s_bar = compute_gelu_gates(x64)
        ctx.save_for_backward(x64, s, s_bar)
        return portable_gelu(x64, s).to(torch.float32)

    @staticmethod
    def backward(ctx, g):
        x64, s, s_bar = ctx.saved_tensors
        return (g.double() * portable_gelu_grad(x64, s, s_bar)).to(torch.float32)


def compute_softmax_parts(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 ``(z, exp(z), sum exp(z))`` with ``z = x - max`` along ``dim`` (exact sum, >= 1)."""
    z = x.double() - x.amax(dim=dim, keepdim=True).double()
    e = portable_exp(z)  # in (0, 1]: the maximum contributes exp(0) = 1
    return z, e, exact_sum(e, dim, keepdim=True, bound=1)


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim):
        _, e, total = compute_softmax_parts(x, dim)
        y = (e / total).to(torch.float32)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        y64 = y.double()
        dot = exact_sum(g.double() * y64, ctx.dim, keepdim=True)  # float32 products are exact
        return (y64 * (g.double() - dot)).to(torch.float32), None


class CrossEntropy(torch.autograd.Function):
    """Mean over rows of ``-log_softmax(logits)[i, y_i]`` (``logits`` (N, V), ``y`` (N,)).

    Backward: ``(softmax - onehot(y)) * g / N``.
    """

    @staticmethod
    def forward(ctx, logits, targets):
        n = logits.shape[0]
        z, e, total = compute_softmax_parts(logits, 1)
        picked = z.gather(1, targets.unsqueeze(1)) - portable_log(total)  # (N, 1) log-probabilities
        ctx.save_for_backward(e, total, targets)
        return (exact_sum(picked, 0) * (-1.0 / n)).to(torch.float32).reshape(())

    @staticmethod
    def backward(ctx, g):
        e, total, targets = ctx.saved_tensors
        index = targets.unsqueeze(1)
        p = e / total  # (N, V) softmax
        p = p.scatter(1, index, p.gather(1, index) - 1.0)
        return (p * (g.double() * (1.0 / e.shape[0]))).to(torch.float32), None


class LayerNorm(torch.autograd.Function):
    """Normalise the last dimension, then ``* weight + bias`` (float64 inside, one rounding)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        c = x.shape[-1]
        x64 = x.double()
        xc = x64 - exact_sum(x64, -1, keepdim=True) * (1.0 / c)
        var = exact_sum(xc * xc, -1, keepdim=True) * (1.0 / c)
        rstd = 1.0 / torch.sqrt(var + eps)
        xhat = xc * rstd
        ctx.save_for_backward(xhat, rstd, weight)
        return (xhat * weight.double() + bias.double()).to(torch.float32)

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved_tensors
        c = xhat.shape[-1]
        g64 = g.double()
        dxhat = g64 * weight.double()
        mean_d = exact_sum(dxhat, -1, keepdim=True) * (1.0 / c)
        mean_dx = exact_sum(dxhat * xhat, -1, keepdim=True) * (1.0 / c)
        dx = (dxhat - mean_d - xhat * mean_dx) * rstd
        rows_g = g64.reshape(-1, c)
        dw = exact_sum(rows_g * xhat.reshape(-1, c), 0).to(torch.float32)
        db = exact_sum(rows_g, 0).to(torch.float32)
        return dx.to(torch.float32), dw, db, None


class Embedding(torch.autograd.Function):
    """``table[idx]``; the table's gradient is ``onehot(idx)^T @ g``, an exact matmul."""

    @staticmethod
    def forward(ctx, idx, table):
        ctx.save_for_backward(idx)
        ctx.rows = table.shape[0]
        return table.index_select(0, idx.reshape(-1)).reshape(*idx.shape, table.shape[1])

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        onehot = (idx.reshape(-1, 1) == torch.arange(ctx.rows, device=idx.device)).to(torch.float32)  # (N, V)
        return None, exact_matmul(onehot.t(), g.reshape(-1, g.shape[-1]))


def conv2d_forward(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """Stride-1 convolution without bias via im2col: ``(B*L, C k k) @ (C k k, O)``."""
    b, o, k = x.shape[0], weight.shape[0], weight.shape[-1]
    h_out = x.shape[2] + 2 * padding - k + 1
    w_out = x.shape[3] + 2 * padding - k + 1
    cols = F.unfold(x, k, padding=padding)  # (B, C k k, L)
    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # (B*L, C k k)
    out = exact_matmul(rows, weight.reshape(o, -1).t())  # (B*L, O)
    return out.reshape(b, h_out, w_out, o).permute(0, 3, 1, 2)  # (B, O, H', W')


class Conv2d(torch.autograd.Function):
    """Stride-1 2-D convolution (no bias; add it with ``Add``).

    Backward: the weight gradient is ``g^T @ im2col(x)``; the input gradient is the stride-1
    convolution of ``g`` padded by ``k - 1 - padding`` with the flipped, transposed kernel — again
    an exact matmul, where ``col2im`` would have summed overlapping patches in a device-specific
    order.
    """

    @staticmethod
    def forward(ctx, x, weight, padding):
        k = weight.shape[-1]
        if weight.shape[-2] != k or not 0 <= padding <= k - 1:
            raise ReproError(f"conv2d: needs a square kernel and 0 <= padding <= k-1, got kernel "
                             f"{tuple(weight.shape[-2:])} and padding {padding}")
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return conv2d_forward(x, weight, padding)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        o, k = weight.shape[0], weight.shape[-1]
        cols = F.unfold(x, k, padding=ctx.padding)  # (B, C k k, L)
        rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # (B*L, C k k)
        g_rows = g.permute(0, 2, 3, 1).reshape(-1, o)  # (B*L, O)
        grad_w = exact_matmul(g_rows.t(), rows).reshape(weight.shape)
        if not ctx.needs_input_grad[0]:  # the first layer's input is data
            return None, grad_w, None
        flipped = weight.flip(-1, -2).transpose(0, 1)  # (C, O, k, k)
        return conv2d_forward(g.contiguous(), flipped, k - 1 - ctx.padding), grad_w, None


class MaxPool2d(torch.autograd.Function):
    """Non-overlapping ``k x k`` max pooling; ties go to the first element of the window."""

    @staticmethod
    def forward(ctx, x, k):
        b, c, h, w = x.shape
        if h % k or w % k:
            raise ReproError(f"max_pool2d: input {h}x{w} is not a multiple of the window {k}")
        windows = x.reshape(b, c, h // k, k, w // k, k).permute(0, 1, 2, 4, 3, 5).reshape(
            b, c, h // k, w // k, k * k)
        best, first = windows.max(-1)  # documented: the index of the first maximal value
        ctx.save_for_backward(first)
        ctx.k = k
        return best

    @staticmethod
    def backward(ctx, g):
        (first,) = ctx.saved_tensors
        k = ctx.k
        b, c, hk, wk = g.shape
        # A comparison, not F.one_hot: one_hot validates indices with value-dependent .item()
        # reads that a fake-tensor replay of the step (the referee's schedule) does not make.
        onehot = (first.unsqueeze(-1) == torch.arange(k * k, device=first.device)).to(g.dtype)
        routed = onehot * g.unsqueeze(-1)  # (B, C, H/k, W/k, k k)
        grad = routed.reshape(b, c, hk, wk, k, k).permute(0, 1, 2, 4, 3, 5)
        return grad.reshape(b, c, hk * k, wk * k), None
