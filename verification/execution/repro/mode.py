"""``reproducible()``: torch's own operators, made to give the same bits on every device.

Inside ``with reproducible(...):`` any PyTorch program — an ordinary ``nn.Module``, ``F.*`` calls,
autograd's backward, ``torch.optim``'s update — runs through a ``TorchDispatchMode`` that sees
every aten operator *below* autograd (so forward and backward alike) and does one of three things:

exact as it is
    data movement (views, ``cat``, ``gather``, ``where``, copies, casts), comparisons, ``max``, and
    the single IEEE-754 operations every device rounds the same way (``add``, ``sub``, ``mul``,
    ``div``, ``neg``, ``relu``) run on torch's own kernels; ``sqrt`` is corrected to IEEE's correctly
    rounded value (``portable_sqrt``: torch's CPU kernel is off by one ulp on a fifth of float32
    inputs here, CUDA's is not). A division by a host scalar
    gets its divisor as a device tensor first: CUDA divides by a host scalar through its
    reciprocal, which rounds twice.
rewritten
    operators whose kernels reduce in a device-, thread- or ISA-dependent order, call a libm
    (SLEEF, glibc, libdevice), or may fuse a multiply and an add into one FMA: matmuls and
    convolutions become fixed-order float32 products (``products``: one order of fused
    multiply-adds on every device, one operator ``pinpoint.fixed_mm`` or ``pinpoint.fixed_conv2d``
    in the op trace), sums and
    means exact sums of three slices,
    softmax / log-softmax / cross-entropy / layer norm and their backward passes are recomposed
    from exact sums and the portable functions (``elementwise``, ``special``), and compound
    updates (``add(alpha=)``, ``addcmul``, ``addcdiv``, ``lerp`` — what ``torch.optim``'s SGD, Adam
    and AdamW run) are split into one rounding per operation. Random draws (``uniform_``,
    ``normal_``, ``bernoulli_``: initialisation and dropout) come from the counter-based integer
    generator (``rng``), keyed by the mode's seed and a per-draw counter.
refused
    every other operator raises ``UncoveredOperatorError`` naming it (``aten.cumprod.default``);
    nothing runs silently native. ``check_coverage`` runs a program on fake tensors to find such
    an operator before any work is done.

Accuracy: a matmul has the error of a float32 dot product relative to its terms (``products``'
bound); a sum keeps 3b bits below the largest magnitude of each block it reduces (``exact``'s
bound); elementwise functions are float64 evaluations rounded once to the output dtype.
float16 and bfloat16 inputs are widened to float32 (exactly) and rounded back once.

The rules are those of RepOps (Arun et al. 2025, "Verde", §5) and of the batch-invariant kernels
work (He et al., Thinking Machines 2025, which overrides aten operators through ``torch.library``);
a dispatch mode reaches the same operators without registering kernels process-wide.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from numbers import Number
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode

from verification.execution.repro import fused
from verification.execution.repro.elementwise import (
    compute_gelu_gates,
    portable_exp,
    portable_expm1,
    portable_gelu_grad,
    portable_log,
    portable_sqrt,
)
from verification.execution.repro.exact import (
    FLOAT64_EXACT_BITS,
    MIN_SLICE_BITS,
    ReproError,
    ceil_log2,
    exact_cumsum,
    exact_sum,
)
from verification.execution.repro.products import fixed_conv2d, fixed_conv2d_weight, fixed_matmul
from verification.execution.repro.rng import MAX_DRAW, StepRng, random_words
from verification.execution.repro.special import (
    portable_cos_2pi,
    portable_erf,
    portable_normal_cdf,
    portable_normal_pdf,
    portable_tanh,
)

aten = torch.ops.aten
LOW_PRECISION = (torch.float16, torch.bfloat16)


class UncoveredOperatorError(ReproError):
    """An operator without a reproducible implementation was called inside ``reproducible()``."""


# -- operators that are exact on every device as they are ------------------------------------------
EXACT_PACKETS = {
    # data movement and metadata
    "view", "_unsafe_view", "reshape", "_reshape_alias", "expand", "permute", "transpose", "t",
    "squeeze", "unsqueeze", "slice", "select", "split", "split_with_sizes", "unbind", "chunk",
    "narrow", "diagonal", "as_strided", "alias", "detach", "lift_fresh", "lift_fresh_copy", "clone",
    "contiguous", "_to_copy", "copy_", "fill_", "zero_", "zeros", "zeros_like", "ones", "ones_like",
    "empty", "empty_like", "empty_strided", "new_zeros", "new_ones", "new_empty",
    "new_empty_strided", "new_full", "full", "full_like", "scalar_tensor", "arange", "eye", "tril", "triu",
    "flip", "roll", "repeat", "constant_pad_nd", "unfold", "im2col", "cat", "stack", "index_select",
    "gather", "index", "_unsafe_index", "masked_fill", "masked_fill_", "where", "slice_scatter",
    "select_scatter", "slice_backward", "select_backward", "as_strided_scatter", "embedding",
    "one_hot", "t_", "transpose_", "squeeze_", "unsqueeze_", "detach_", "resize_", "set_",
    "_local_scalar_dense", "sort", "topk", "argsort", "nonzero", "masked_select",
    # comparisons, selections and exact arithmetic
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
    "bitwise_right_shift", "__and__", "__or__", "__xor__", "__lshift__", "__rshift__", "isnan",
    "isinf", "isfinite", "equal", "allclose", "max", "min", "amax", "amin", "aminmax", "argmax", "argmin", "maximum", "minimum",
    "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "abs", "abs_", "neg",
    "neg_", "sign", "sgn", "floor", "ceil", "round", "trunc", "relu", "relu_", "threshold_backward",
    "max_pool2d_with_indices", "mul", "mul_", "reciprocal", "reciprocal_",
    "remainder", "floor_divide", "hardtanh", "hardtanh_", "hardtanh_backward", "leaky_relu",
    "leaky_relu_", "leaky_relu_backward",
}


# Overloads that are exact where others of the same name are not: scattering one value writes the
# same bits whichever duplicate index lands last (F.one_hot); scattering a tensor of values does not.
EXACT_OVERLOADS = {("scatter", "value"), ("scatter_", "value")}


def is_exact_packet(func: torch._ops.OpOverload) -> bool:
    return (func.namespace in ("prim", "profiler") or func._opname in EXACT_PACKETS
            or (func._opname, func._overloadname) in EXACT_OVERLOADS)


# -- helpers ----------------------------------------------------------------------------------------
def compute_dims(x: torch.Tensor, dims: Any) -> list[int]:
    if dims is None or (isinstance(dims, list | tuple) and len(dims) == 0):
        return list(range(x.dim()))
    dims = [dims] if isinstance(dims, int) else list(dims)
    return sorted({d % max(x.dim(), 1) for d in dims})


def reduce_exact(x: torch.Tensor, dims: Any, keepdim: bool) -> torch.Tensor:
    """float64 exact sum of ``x`` over ``dims`` (all when empty), keeping dims of size 1 if asked."""
    x = widen(x)
    if x.dim() == 0:
        return x.double()
    reduced = compute_dims(x, dims)
    kept = [d for d in range(x.dim()) if d not in reduced]
    if reduced == list(range(reduced[0], reduced[-1] + 1)) and x.numel() > 0:
        # One run of dims: the sum over the middle of (outer, n, inner), with no transposed copy
        # (the blocks, and so the bits, are the same either way; a copy cost as much as the sum).
        first, last = reduced[0], reduced[-1] + 1
        middle = x.reshape(math.prod(x.shape[:first]), math.prod(x.shape[first:last]), -1)
        total = exact_sum(middle, 1).reshape([x.shape[d] for d in kept])
    else:
        moved = x.permute(kept + reduced).reshape(*[x.shape[d] for d in kept], -1)
        if moved.shape[-1] == 0:
            total = torch.zeros(moved.shape[:-1], dtype=torch.float64, device=x.device)
        else:
            total = exact_sum(moved, -1)
    if keepdim:
        total = total.reshape([1 if d in reduced else x.shape[d] for d in range(x.dim())])
    return total


def count(x: torch.Tensor, dims: Any) -> int:
    return math.prod(x.shape[d] for d in compute_dims(x, dims)) if x.dim() else 1


def widen(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 to float32 (exact); anything else unchanged."""
    return x.float() if x.dtype in LOW_PRECISION else x


def device_scalar(value: Any, like: torch.Tensor) -> Any:
    """A host scalar as a 0-d tensor on ``like``'s device, rounded to ``like``'s dtype first —
    what CPU kernels do with a scalar operand, and what CUDA does except when dividing."""
    if isinstance(value, torch.Tensor) and (value.dim() or value.device == like.device):
        return value
    if isinstance(value, torch.Tensor):
        value = value.item()
    dtype = like.dtype if like.is_floating_point() else torch.result_type(like, value)
    return torch.tensor(value, dtype=dtype, device=like.device)


def inplace(self: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return self.copy_(value)


# -- rewritten operators ----------------------------------------------------------------------------
def do_sum(x, dims=None, keepdim=False, *, dtype=None):
    if not x.is_floating_point():
        return aten.sum.dim_IntList(x, compute_dims(x, dims), keepdim, dtype=dtype)
    return reduce_exact(x, dims, keepdim).to(dtype or x.dtype)


def do_cumsum(x, dim, *, dtype=None):
    if not x.is_floating_point() or x.dim() == 0:
        return aten.cumsum.default(x, dim, dtype=dtype)
    return exact_cumsum(widen(x), dim).to(dtype or x.dtype)


def do_mean(x, dims=None, keepdim=False, *, dtype=None):
    return (reduce_exact(x, dims, keepdim) * (1.0 / count(x, dims))).to(dtype or x.dtype)


def do_var(x, dims=None, *, correction=None, keepdim=False):
    correction = 1 if correction is None else correction
    n = count(x, dims)
    x64 = widen(x).double()
    centered = x64 - reduce_exact(x, dims, True) * (1.0 / n)
    return (reduce_exact(centered * centered, dims, keepdim) * (1.0 / max(n - correction, 0))).to(x.dtype)


def do_norm(x, ord=2, dims=None, keepdim=False, *, dtype=None):
    if ord != 2:
        raise UncoveredOperatorError(f"reproducible mode covers aten.linalg_vector_norm with ord=2 only, got {ord}")
    x64 = widen(x).double()
    return portable_sqrt(reduce_exact(x64 * x64, dims, keepdim)).to(dtype or x.dtype)


def matmul_dtype(*tensors: torch.Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    if dtype not in (torch.float32, *LOW_PRECISION):
        raise UncoveredOperatorError(f"reproducible matmul takes float32, float16 or bfloat16, got {dtype}")
    return dtype


def do_mm(a, b):
    if not a.is_floating_point():
        return aten.mm.default(a, b)
    return fixed_matmul(widen(a), widen(b)).to(matmul_dtype(a, b))


def do_bmm(a, b):
    return fixed_matmul(widen(a), widen(b)).to(matmul_dtype(a, b))


def add_scaled_product(bias, product, beta, alpha):
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return product + (bias if beta == 1 else bias * beta)


def do_addmm(bias, a, b, *, beta=1, alpha=1):
    return add_scaled_product(bias, do_mm(a, b), beta, alpha)


def do_baddbmm(bias, a, b, *, beta=1, alpha=1):
    return add_scaled_product(bias, do_bmm(a, b), beta, alpha)


def do_dot(a, b):
    return do_mm(a.reshape(1, -1), b.reshape(-1, 1)).reshape(())


def do_mv(a, v):
    return do_mm(a, v.reshape(-1, 1)).reshape(-1)


def check_convolution(weight, stride, padding, dilation, transposed, output_padding, groups):
    if (transposed or groups != 1 or any(s != 1 for s in stride) or any(d != 1 for d in dilation)
            or weight.dim() != 4 or any(p > k - 1 for p, k in zip(padding, weight.shape[-2:], strict=True))):
        raise UncoveredOperatorError(
            "reproducible mode covers aten.convolution for 2-D, stride 1, dilation 1, groups 1, "
            f"padding <= kernel - 1; got weight {tuple(weight.shape)}, stride {list(stride)}, "
            f"padding {list(padding)}, dilation {list(dilation)}, groups {groups}, transposed {transposed}")


def do_convolution(x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    check_convolution(weight, stride, padding, dilation, transposed, output_padding, groups)
    dtype = matmul_dtype(x, weight)
    out = fixed_conv2d(widen(x), widen(weight), list(padding))
    if bias is not None:
        out = out + widen(bias).reshape(1, -1, 1, 1)
    return out.to(dtype)


def do_convolution_backward(g, x, weight, bias_sizes, stride, padding, dilation, transposed,
                            output_padding, groups, output_mask):
    check_convolution(weight, stride, padding, dilation, transposed, output_padding, groups)
    dtype = matmul_dtype(x, weight)
    g, x, weight = widen(g), widen(x), widen(weight)
    kh, kw = weight.shape[-2:]
    grad_x = grad_w = grad_b = None
    if output_mask[0]:  # the full convolution of g with the flipped, transposed kernel
        flipped = weight.flip(-1, -2).transpose(0, 1)  # (C, O, kh, kw)
        grad_x = fixed_conv2d(g, flipped, [kh - 1 - padding[0], kw - 1 - padding[1]]).to(dtype)
    if output_mask[1]:
        grad_w = fixed_conv2d_weight(g, x, [kh, kw], list(padding)).to(dtype)
    if output_mask[2]:
        grad_b = reduce_exact(g, [0, 2, 3], False).to(dtype)
    return grad_x, grad_w, grad_b


def do_max_pool_backward(g, x, kernel, stride, padding, dilation, ceil_mode, indices):
    stride = stride or kernel
    if list(stride) != list(kernel) or any(padding) or any(d != 1 for d in dilation):
        raise UncoveredOperatorError("reproducible mode covers aten.max_pool2d_with_indices_backward for "
                                     f"non-overlapping windows only; got kernel {list(kernel)}, stride {list(stride)}")
    return aten.max_pool2d_with_indices_backward.default(g, x, kernel, stride, padding, dilation, ceil_mode, indices)


def softmax_parts(x, dim):
    """float64 ``(z, exp(z), sum exp(z))`` with ``z = x - max`` along ``dim`` (exact sum, >= 1)."""
    x = widen(x)
    z = x.double() - x.amax(dim=dim, keepdim=True).double()
    e = portable_exp(z)
    return z, e, exact_sum(e, dim, keepdim=True)


def fused_softmax(x, dim, variant, dtype, g=None):
    """The softmax family through one fused pass per row, in ``dtype``, or None (the torch path)."""
    x = widen(x)
    g = None if g is None else widen(g)
    ext = fused.kernels_for(x) if g is None else fused.kernels_for(x, g)
    return None if ext is None else fused.fused_softmax(ext, x, dim, variant, g, dtype)


def do_softmax(x, dim, half_to_float):
    out = fused_softmax(x, dim, 0, torch.float32 if half_to_float else x.dtype)
    if out is not None:
        return out
    _, e, total = softmax_parts(x, dim)
    return (e / total).to(torch.float32 if half_to_float else x.dtype)


def do_safe_softmax(x, dim, dtype=None):
    """Softmax whose fully masked rows (all ``-inf``) are 0, not NaN (``F.scaled_dot_product_attention``)."""
    out = do_softmax(x, dim, False)
    masked = (x == -math.inf).all(dim=dim, keepdim=True)
    return torch.where(masked, 0.0, out).to(dtype or x.dtype)


def do_logsumexp(x, dims, keepdim=False):
    x64 = widen(x).double()
    peak = x64.amax(dim=dims, keepdim=True)
    peak = torch.where(peak.isinf(), 0.0, peak)
    total = reduce_exact(portable_exp(x64 - peak), dims, True)
    out = portable_log(total) + peak
    return (out if keepdim else out.squeeze(compute_dims(x, dims))).to(x.dtype)


def log1p_exp64(z):
    """``log(1 + exp(z))`` for float64 ``z <= 0`` (``1 + exp(z)`` rounds once, relative 1e-16)."""
    return portable_log(portable_exp(z) + 1.0)


def do_elu(x, alpha=1.0, scale=1.0, input_scale=1.0):
    """``scale * x`` above 0, ``alpha * scale * expm1(input_scale * x)`` at or below (ELU, and
    SELU and CELU, which torch writes as ELU with other coefficients)."""
    x64 = widen(x).double()
    negative = portable_expm1(x64 * float(input_scale)).mul_(float(alpha) * float(scale))
    return torch.where(x64 > 0, x64 * float(scale), negative).to(x.dtype)


def do_celu(x, alpha=1.0):
    return do_elu(x, alpha, 1.0, 1.0 / float(alpha))


def do_elu_backward(g, alpha, scale, input_scale, is_result, self_or_result):
    """torch's ``elu_backward``: the slope from the input, or from the output when ``is_result``."""
    v = widen(self_or_result).double()
    negcoef, poscoef, negiptcoef = float(alpha) * float(scale), float(scale), float(input_scale)
    if is_result:
        slope_negative = (v + negcoef) * negiptcoef
    else:
        slope_negative = portable_exp(v * negiptcoef).mul_(negiptcoef * negcoef)
    slope = torch.where(v > 0, poscoef, slope_negative)
    return (widen(g).double() * slope).to(g.dtype)


def do_softplus(x, beta=1, threshold=20):
    x64 = widen(x).double() * float(beta)
    soft = (log1p_exp64(-x64.abs()) + x64.clamp_min(0.0)) * (1.0 / float(beta))
    return torch.where(x64 > threshold, widen(x).double(), soft).to(x.dtype)


def do_softplus_backward(g, x, beta=1, threshold=20):
    x64 = widen(x).double() * float(beta)
    slope = torch.where(x64 > threshold, 1.0, sigmoid64(x64))
    return (widen(g).double() * slope).to(g.dtype)


def do_bce_with_logits(x, y, weight=None, pos_weight=None, reduction=1):
    """``(1 - y) x + log(1 + exp(-x))`` in a form that does not overflow, as torch computes it."""
    x64, y64 = widen(x).double(), widen(y).double()
    log_sig_neg = log1p_exp64(-x64.abs()) + (-x64).clamp_min(0.0)  # log(1 + exp(-x))
    if pos_weight is not None:
        scale = (widen(pos_weight).double() - 1.0) * y64 + 1.0
        loss = (1.0 - y64) * x64 + scale * log_sig_neg
    else:
        loss = (1.0 - y64) * x64 + log_sig_neg
    if weight is not None:
        loss = loss * widen(weight).double()
    if reduction == 0:
        return loss.to(x.dtype)
    total = exact_sum(loss.reshape(-1), 0)
    return (total * (1.0 / x.numel()) if reduction == 1 else total).to(x.dtype)


def do_log_softmax(x, dim, half_to_float):
    out = fused_softmax(x, dim, 1, torch.float32 if half_to_float else x.dtype)
    if out is not None:
        return out
    z, _, total = softmax_parts(x, dim)
    return (z - portable_log(total)).to(torch.float32 if half_to_float else x.dtype)


def do_softmax_backward(g, y, dim, input_dtype):
    out = fused_softmax(y, dim, 2, input_dtype, g)
    if out is not None:
        return out
    g64, y64 = widen(g).double(), widen(y).double()
    dot = exact_sum(g64 * y64, dim, keepdim=True)
    return (y64 * (g64 - dot)).to(input_dtype)


def do_log_softmax_backward(g, y, dim, input_dtype):
    out = fused_softmax(y, dim, 3, input_dtype, g)
    if out is not None:
        return out
    g64 = widen(g).double()
    return (g64 - portable_exp(widen(y).double()) * exact_sum(g64, dim, keepdim=True)).to(input_dtype)


def check_nll(weight, x):
    if weight is not None:
        raise UncoveredOperatorError("reproducible mode covers aten.nll_loss without class weights")
    if x.dim() != 2:
        raise UncoveredOperatorError(f"reproducible mode covers aten.nll_loss on (N, C) inputs, got {tuple(x.shape)}")


def do_nll_loss(x, target, weight, reduction, ignore_index):
    check_nll(weight, x)
    valid = target != ignore_index
    picked = x.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
    picked = torch.where(valid, -widen(picked).double(), 0.0)
    total_weight = valid.sum().to(x.dtype)
    if reduction == 0:
        return picked.to(x.dtype), total_weight
    total = exact_sum(picked, 0)
    if reduction == 1:
        total = total / total_weight.double()
    return total.to(x.dtype), total_weight


def do_nll_loss_backward(g, x, target, weight, reduction, ignore_index, total_weight):
    check_nll(weight, x)
    valid = target != ignore_index
    value = -widen(g).double()
    if reduction == 1:
        value = value / total_weight.double()
    value = torch.where(valid, value.expand(target.shape), 0.0).to(x.dtype)
    grad = torch.zeros_like(x)
    return grad.scatter_(1, torch.where(valid, target, 0).unsqueeze(1), value.unsqueeze(1))


def flatten_spatial(x, target):
    """``(N, C, *S)`` scores and ``(N, *S)`` targets as ``(N * S, C)`` and ``(N * S,)``."""
    return x.movedim(1, -1).reshape(-1, x.shape[1]), target.reshape(-1)


def do_nll_loss2d(x, target, weight, reduction, ignore_index):
    """The per-pixel loss (``F.cross_entropy`` on images): ``nll_loss`` over every position."""
    out, total_weight = do_nll_loss(*flatten_spatial(x, target), weight, reduction, ignore_index)
    return (out.reshape(target.shape) if reduction == 0 else out), total_weight


def do_nll_loss2d_backward(g, x, target, weight, reduction, ignore_index, total_weight):
    flat_x, flat_target = flatten_spatial(x, target)
    grad = do_nll_loss_backward(g.reshape(-1) if reduction == 0 else g, flat_x, flat_target, weight,
                                reduction, ignore_index, total_weight)
    return grad.reshape(x.shape[0], *x.shape[2:], x.shape[1]).movedim(-1, 1).contiguous()


def layer_norm_rows(x, normalized_shape):
    n = math.prod(normalized_shape)
    lead = x.shape[: x.dim() - len(normalized_shape)]
    return widen(x).reshape(*lead, n).double(), n, lead


def fused_layer_norm_kernels(x, n, *tensors):
    """The fused kernels and the slice width of an ``n``-term row sum, or ``(None, 0)``."""
    bits = FLOAT64_EXACT_BITS - ceil_log2(n)
    if n == 0 or bits < MIN_SLICE_BITS:
        return None, 0
    return fused.kernels_for(widen(x), *(widen(t) for t in tensors if t is not None)), bits


def is_whole_layer(x, *tensors) -> bool:
    """Whether the whole-layer kernels (``layer_norm_forward``/``_backward``) take these: non-empty
    float32 or float64 ``x``, and every other tensor (or None) of its dtype."""
    return (x.numel() > 0 and x.dtype in (torch.float32, torch.float64)
            and all(t is None or t.dtype == x.dtype for t in tensors))


def do_layer_norm(x, normalized_shape, weight, bias, eps):
    n = math.prod(normalized_shape)
    ext, bits = fused_layer_norm_kernels(x, n, weight, bias)
    lead = x.shape[: x.dim() - len(normalized_shape)]
    if ext is not None and is_whole_layer(x, weight, bias):  # all of it in one call
        flat = [None if t is None else t.reshape(-1).contiguous() for t in (weight, bias)]
        out, mean, rstd = ext.layer_norm_forward(x.reshape(-1, n).contiguous(), *flat, float(eps), bits)
        stat_shape = [*lead] + [1] * len(normalized_shape)
        return out.reshape(x.shape), mean.reshape(stat_shape), rstd.reshape(stat_shape)
    if ext is not None:  # the same operations in one pass per row
        flat = [None if t is None else widen(t).reshape(-1).contiguous() for t in (weight, bias)]
        rows = widen(x).reshape(-1, n).contiguous()
        mean, var = ext.layer_norm_stats(rows, bits)
        rstd = ext.layer_norm_rstd(var, float(eps))  # IEEE's sqrt: portable_sqrt's value, as below
        out = ext.layer_norm_apply(rows, mean, rstd, *flat)
        stat_shape = [*lead] + [1] * len(normalized_shape)
        stat_dtype = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
        return (out.reshape(x.shape).to(x.dtype), mean.to(stat_dtype).reshape(stat_shape),
                rstd.to(stat_dtype).reshape(stat_shape))
    rows, n, lead = layer_norm_rows(x, normalized_shape)
    mean = exact_sum(rows, -1, keepdim=True) * (1.0 / n)
    centered = rows - mean
    var = exact_sum(centered * centered, -1, keepdim=True) * (1.0 / n)
    rstd = 1.0 / portable_sqrt(var + eps)
    out = centered * rstd
    if weight is not None:
        out = out * widen(weight).reshape(-1).double()
    if bias is not None:
        out = out + widen(bias).reshape(-1).double()
    stat_shape = [*lead] + [1] * len(normalized_shape)
    stat_dtype = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
    return (out.reshape(x.shape).to(x.dtype), mean.to(stat_dtype).reshape(stat_shape),
            rstd.to(stat_dtype).reshape(stat_shape))


def do_layer_norm_backward(g, x, normalized_shape, mean, rstd, weight, bias, output_mask):
    n = math.prod(normalized_shape)
    ext, bits = fused_layer_norm_kernels(x, n, g, weight)
    col_bits = FLOAT64_EXACT_BITS - ceil_log2(x.numel() // n) if n else 0
    if ext is not None and is_whole_layer(x, g, mean, rstd, weight, bias) and col_bits >= MIN_SLICE_BITS:
        grads = ext.layer_norm_backward(g.reshape(-1, n).contiguous(), x.reshape(-1, n).contiguous(),
                                        mean.reshape(-1).contiguous(), rstd.reshape(-1).contiguous(),
                                        None if weight is None else weight.reshape(-1).contiguous(), bits, col_bits)
        wanted = (output_mask[0], output_mask[1] and weight is not None, output_mask[2] and bias is not None)
        shapes = (x.shape, None if weight is None else weight.shape, None if bias is None else bias.shape)
        return tuple(grad.reshape(shape) if want else None for grad, shape, want in zip(grads, shapes, wanted, strict=True))
    if ext is not None and widen(g).dtype == widen(x).dtype:
        w = None if weight is None else widen(weight).reshape(-1).contiguous()
        grad_rows, g_xhat = ext.layer_norm_backward_rows(
            widen(g).reshape(-1, n).contiguous(), widen(x).reshape(-1, n).contiguous(),
            mean.reshape(-1).double().contiguous(), rstd.reshape(-1).double().contiguous(), w, bits)
        grad_x = grad_rows.reshape(x.shape).to(x.dtype) if output_mask[0] else None
        grad_w = grad_b = None
        if output_mask[1] and weight is not None:
            grad_w = exact_sum(g_xhat, 0).reshape(weight.shape).to(weight.dtype)
        if output_mask[2] and bias is not None:
            grad_b = exact_sum(widen(g).reshape(-1, n).double(), 0).reshape(bias.shape).to(bias.dtype)
        return grad_x, grad_w, grad_b
    rows, n, lead = layer_norm_rows(x, normalized_shape)
    mean64, rstd64 = mean.reshape(*lead, 1).double(), rstd.reshape(*lead, 1).double()
    xhat = (rows - mean64) * rstd64
    g64 = widen(g).reshape(*lead, n).double()
    dxhat = g64 * widen(weight).reshape(-1).double() if weight is not None else g64
    grad_x = grad_w = grad_b = None
    if output_mask[0]:
        mean_d = exact_sum(dxhat, -1, keepdim=True) * (1.0 / n)
        mean_dx = exact_sum(dxhat * xhat, -1, keepdim=True) * (1.0 / n)
        grad_x = ((dxhat - mean_d - xhat * mean_dx) * rstd64).reshape(x.shape).to(x.dtype)
    if output_mask[1] and weight is not None:
        grad_w = exact_sum((g64 * xhat).reshape(-1, n), 0).reshape(weight.shape).to(weight.dtype)
    if output_mask[2] and bias is not None:
        grad_b = exact_sum(g64.reshape(-1, n), 0).reshape(bias.shape).to(bias.dtype)
    return grad_x, grad_w, grad_b


def do_embedding_backward(g, indices, num_weights, padding_idx, scale_grad_by_freq):
    if scale_grad_by_freq:
        raise UncoveredOperatorError("reproducible mode covers aten.embedding_dense_backward without scale_grad_by_freq")
    flat = indices.reshape(-1)
    onehot = (flat.unsqueeze(0) == torch.arange(num_weights, device=g.device).unsqueeze(1))
    if padding_idx >= 0:
        onehot[padding_idx] = False
    rows = widen(g).reshape(-1, g.shape[-1])
    return fixed_matmul(onehot.to(rows.dtype), rows).to(g.dtype)


def unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    def run(x, *args, **kwargs):
        return fn(widen(x).double()).to(x.dtype)
    return run


def do_gelu(x, *, approximate="none"):
    x64 = widen(x).double()
    ext = fused.kernels_for(x64)
    if ext is not None:  # the gate and the product in one C++ loop
        fn = fused.fused_gelu_tanh if approximate == "tanh" else fused.fused_gelu_erf
        return fn(ext, x64, dtype=x.dtype)
    if approximate == "tanh":
        gate, _ = compute_gelu_gates(x64)
    else:
        gate = portable_normal_cdf(x64)
    return (x64 * gate).to(x.dtype)


def do_gelu_backward(g, x, *, approximate="none"):
    x64 = widen(x).double()
    ext = fused.kernels_for(x64)
    if ext is not None:
        fn = fused.fused_gelu_tanh if approximate == "tanh" else fused.fused_gelu_erf
        return fn(ext, x64, widen(g).double(), dtype=g.dtype)
    if approximate == "tanh":
        gate, rest = compute_gelu_gates(x64)
        slope = portable_gelu_grad(x64, gate, rest)
    else:
        slope = portable_normal_cdf(x64) + x64 * portable_normal_pdf(x64)
    return (widen(g).double() * slope).to(g.dtype)


def sigmoid64(x64):
    return 1.0 / (portable_exp(-x64) + 1.0)


def do_silu_backward(g, x):
    x64 = widen(x).double()
    s = sigmoid64(x64)
    return (widen(g).double() * s * (x64 * (1.0 - s) + 1.0)).to(g.dtype)


def do_tanh_backward(g, y):
    y64 = widen(y).double()
    return (widen(g).double() * (1.0 - y64 * y64)).to(g.dtype)


def do_sigmoid_backward(g, y):
    y64 = widen(y).double()
    return (widen(g).double() * ((1.0 - y64) * y64)).to(g.dtype)


def do_pow(x, exponent):
    if isinstance(exponent, torch.Tensor):
        raise UncoveredOperatorError("reproducible mode covers aten.pow with a scalar exponent only")
    if exponent == 1:
        return x.clone()
    if exponent == 2:
        return x * x
    if exponent == 3:
        return x * x * x
    if exponent == 0.5:
        return portable_sqrt(widen(x).double()).to(x.dtype)
    if exponent == -0.5:
        return (1.0 / portable_sqrt(widen(x).double())).to(x.dtype)
    if exponent == -1:
        return 1.0 / x
    x64 = widen(x).double()
    return portable_exp(portable_log(x64) * float(exponent)).to(x.dtype)  # x > 0 only: log's domain


def do_add(x, other, *, alpha=1):
    if alpha != 1:
        other = other * alpha
    return aten.add.Tensor(x, device_scalar(other, x) if isinstance(other, Number) else other)


def do_sub(x, other, *, alpha=1):
    if alpha != 1:
        other = other * alpha
    return aten.sub.Tensor(x, device_scalar(other, x) if isinstance(other, Number) else other)


def do_rsub(x, other, *, alpha=1):
    return do_sub(device_scalar(other, x) if isinstance(other, Number) else other, x, alpha=alpha)


def do_div(x, other, *, rounding_mode=None):
    other = device_scalar(other, x)
    if rounding_mode is None:
        return aten.div.Tensor(x, other)
    return aten.div.Tensor_mode(x, other, rounding_mode=rounding_mode)


def do_addcmul(x, t1, t2, *, value=1):
    product = t1 * t2
    return x + (product * value if value != 1 else product)


def do_addcdiv(x, t1, t2, *, value=1):
    quotient = aten.div.Tensor(t1, t2)
    return x + (quotient * value if value != 1 else quotient)


def do_lerp(start, end, weight):
    """``start + weight (end - start)``, one rounding per operation."""
    return start + (end - start) * weight


def do_mse_loss(x, target, reduction=1):
    d = widen(x).double() - widen(target).double()
    squared = d * d
    if reduction == 0:
        return squared.to(x.dtype)
    total = exact_sum(squared.reshape(-1), 0)
    return (total * (1.0 / x.numel()) if reduction == 1 else total).to(x.dtype)


def do_mse_loss_backward(g, x, target, reduction=1):
    d = widen(x).double() - widen(target).double()
    scale = 2.0 / x.numel() if reduction == 1 else 2.0
    return (d * (widen(g).double() * scale)).to(x.dtype)


# -- the table ---------------------------------------------------------------------------------------
FUNCTIONAL: dict[str, Callable] = {
    "sum": do_sum, "cumsum": do_cumsum, "mean": do_mean, "var": do_var, "linalg_vector_norm": do_norm,
    "mm": do_mm, "bmm": do_bmm, "addmm": do_addmm, "baddbmm": do_baddbmm, "dot": do_dot, "mv": do_mv,
    "convolution": do_convolution, "convolution_backward": do_convolution_backward,
    "max_pool2d_with_indices_backward": do_max_pool_backward,
    "_softmax": do_softmax, "_log_softmax": do_log_softmax, "_safe_softmax": do_safe_softmax,
    "logsumexp": do_logsumexp, "softplus": do_softplus, "softplus_backward": do_softplus_backward,
    "elu": do_elu, "celu": do_celu, "elu_backward": do_elu_backward,
    "binary_cross_entropy_with_logits": do_bce_with_logits,
    "_softmax_backward_data": do_softmax_backward, "_log_softmax_backward_data": do_log_softmax_backward,
    "nll_loss_forward": do_nll_loss, "nll_loss_backward": do_nll_loss_backward,
    "nll_loss2d_forward": do_nll_loss2d, "nll_loss2d_backward": do_nll_loss2d_backward,
    "native_layer_norm": do_layer_norm, "native_layer_norm_backward": do_layer_norm_backward,
    "embedding_dense_backward": do_embedding_backward,
    "exp": unary(portable_exp), "log": unary(portable_log), "tanh": unary(portable_tanh),
    "erf": unary(portable_erf), "sigmoid": unary(sigmoid64),
    "silu": unary(lambda x: x * sigmoid64(x)), "rsqrt": unary(lambda x: 1.0 / portable_sqrt(x)),
    "sqrt": unary(portable_sqrt),
    "gelu": do_gelu, "gelu_backward": do_gelu_backward, "silu_backward": do_silu_backward,
    "tanh_backward": do_tanh_backward, "sigmoid_backward": do_sigmoid_backward,
    "pow": do_pow, "add": do_add, "sub": do_sub, "rsub": do_rsub, "div": do_div,
    "addcmul": do_addcmul, "addcdiv": do_addcdiv, "lerp": do_lerp,
    "mse_loss": do_mse_loss, "mse_loss_backward": do_mse_loss_backward,
}
INPLACE = {f"{name}_" for name in ("exp", "log", "tanh", "sigmoid", "pow", "add", "sub", "div",
                                   "addcmul", "addcdiv", "lerp", "erf", "rsqrt", "sqrt", "elu", "celu")}


class ReproducibleMode(TorchDispatchMode):
    """The dispatch mode behind ``reproducible()`` (module docstring)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._disable_dynamo unless this says no: a
        # wrapper that costs a Python frame per operator (about 1 us of a dispatch's 7), for
        # torch.compile inside the handler, which never happens here.
        return False

    def __init__(self, seed: int = 0, rng: StepRng | None = None):
        super().__init__()
        self.seed = seed
        self.rng = rng
        self.draws = 0

    def draw_words(self, numel: int, device: torch.device) -> torch.Tensor:
        """Uniform 32-bit words of the next draw: the step's RNG when there is one (dropout),
        else the mode's seed (initialisation)."""
        call, self.draws = self.draws, self.draws + 1
        key = (self.rng or StepRng(self.seed, 0)).draw_key(call)
        return random_words(numel, key, device)

    def uniform(self, shape, device) -> torch.Tensor:
        """float64 uniform in [0, 1) on a 2**-32 grid (exact)."""
        return self.draw_words(math.prod(shape), device).to(torch.float64).mul_(1.0 / MAX_DRAW).reshape(shape)

    def fill_random(self, func, x: torch.Tensor, args, kwargs) -> torch.Tensor:
        name = func._opname
        if name == "uniform_":
            low, high = (list(args) + [0.0, 1.0][len(args):])[:2]
            low, high = kwargs.get("from", low), kwargs.get("to", high)
            value = self.uniform(x.shape, x.device) * (high - low) + low
        elif name == "normal_":
            mean, std = (list(args) + [0.0, 1.0][len(args):])[:2]
            mean, std = kwargs.get("mean", mean), kwargs.get("std", std)
            u1 = 1.0 - self.uniform(x.shape, x.device)  # (0, 1]
            u2 = self.uniform(x.shape, x.device)
            radius = portable_sqrt(portable_log(u1) * -2.0)
            value = radius * portable_cos_2pi(u2) * std + mean  # Box–Muller
        else:  # bernoulli_ with a float probability
            p = args[0] if args else kwargs.get("p", 0.5)
            if isinstance(p, torch.Tensor):
                raise UncoveredOperatorError("reproducible mode covers aten.bernoulli_ with a float probability only")
            threshold = round(float(p) * MAX_DRAW)
            value = (self.draw_words(x.numel(), x.device) < threshold).reshape(x.shape)
        return x.copy_(value.to(x.dtype))

    def dropout(self, x: torch.Tensor, p: float, train: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``aten.native_dropout`` (CUDA's dropout): inverted dropout with a counter-based mask."""
        if not train or p == 0.0:
            return x.clone(), torch.ones_like(x, dtype=torch.bool)
        keep = self.draw_words(x.numel(), x.device).reshape(x.shape) >= round(p * MAX_DRAW)
        return (x * keep.to(x.dtype)) * (1.0 / (1.0 - p)), keep

    def draw_tensor(self, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
        """``torch.rand``/``randn`` (and ``*_like``) from the portable generator."""
        like = args[0] if name.endswith("_like") else None
        shape = like.shape if like is not None else args[0]
        dtype = kwargs.get("dtype") or (like.dtype if like is not None else torch.get_default_dtype())
        device = kwargs.get("device") or (like.device if like is not None else torch.device("cpu"))
        out = torch.empty(shape, dtype=dtype, device=device)
        fill = aten.uniform_.default if name.startswith("rand_") or name == "rand" else aten.normal_.default
        return self.fill_random(fill, out, (), {})

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._opname
        if name in ("uniform_", "normal_", "bernoulli_"):
            return self.fill_random(func, args[0], args[1:], kwargs)
        if name in ("rand", "randn", "rand_like", "randn_like"):
            return self.draw_tensor(name, args, kwargs)
        if name == "native_dropout":
            return self.dropout(*args, **kwargs)
        if is_exact_packet(func):
            return func(*args, **kwargs)
        if name in INPLACE:
            with fused.below_autograd():
                out = FUNCTIONAL[name[:-1]](*args, **kwargs)
            return inplace(args[0], out)
        handler = FUNCTIONAL.get(name)
        if handler is None or "out" in kwargs:
            raise UncoveredOperatorError(
                f"reproducible mode has no implementation of {func}; write the model with covered "
                "operators (verification.execution.repro.mode) or run it in 'exact' mode")
        with fused.below_autograd():
            return handler(*args, **kwargs)


@contextlib.contextmanager
def reproducible(seed: int = 0, rng: StepRng | None = None) -> Iterator[ReproducibleMode]:
    """Run torch code on reproducible operators (module docstring).

    ``seed`` keys random draws outside a training step (parameter initialisation); ``rng`` keys
    those inside one (dropout), so a step's masks are a function of the state's RNG key and the
    step only.
    """
    mode = ReproducibleMode(seed, rng)
    # Attention through its math backend: matmuls and a softmax, which the mode covers, instead
    # of a fused kernel whose reduction order is the device's.
    with sdpa_kernel([SDPBackend.MATH]), mode:
        yield mode


def check_coverage(fn: Callable[[], Any]) -> None:
    """Run ``fn`` on fake tensors under ``reproducible()``: raises ``UncoveredOperatorError``
    naming the first operator without a reproducible implementation, at zero FLOPs."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True), reproducible():
        fn()
