"""Reproducible execution: operators whose results are the same bits on every device and thread count.

docs/design.md §3, mode ``reproducible``. torch's kernels reduce in an order that depends on the thread
count, the SIMD width, the BLAS blocking and the device (measured here: one SGD step of an MLP
already differs between 1 and 2 CPU threads), and its transcendental functions come from
different libraries on CPU and CUDA. Pinpoint's operators remove each source of difference:

reductions (matmul, convolution, sums, means, softmax denominators, layer-norm statistics,
broadcast gradients, embedding gradients)
    exact accumulation in block floating point (``exact``): operands become integers that float64
    adds without rounding in any order, so native float64 BLAS and ``torch.sum`` are used as they
    are, at their full speed, and each output is rounded to float32 once.
elementwise and transcendental functions
    fixed sequences of correctly rounded IEEE operations in float64 (``elementwise``); no SLEEF,
    no libdevice, no fused multiply-add a compiler may or may not form.
randomness
    a keyed counter-based generator in exact integer arithmetic (``rng``) for dropout; parameter
    initialisation already draws from a CPU ``torch.Generator`` and is moved to the device.
gradients
    every operator is a ``torch.autograd.Function`` with an explicit backward made of the same
    pieces (``functions``), so the backward pass is reproducible too. Where a tensor feeds two
    operators, autograd adds the two gradient contributions with one IEEE add, which is
    commutative; the models keep to at most two readers per tensor (the residual stream feeds its
    LayerNorm and its residual add), since three contributions would be summed in engine order.

The optimizer update of ``Program.step`` (``buf = mu * buf + g``; ``p = p - lr * buf``) is already
reproducible with torch's own kernels: each ``*``, ``+`` and ``-`` is a separate elementwise
kernel that rounds once (IEEE 754), a Python float scalar is rounded to float32 first on CPU and
CUDA alike, and no two operations share a kernel that could fuse them into an FMA. It must stay
that way: ``torch.addcmul``, ``lerp``, ``add(..., alpha=lr)`` or a ``torch.compile``-fused update
would allow FMA contraction on one device and not on another.

Supported: float32 tensors; matmul inner dimensions up to 2**20; stride-1 square convolutions;
non-overlapping max pooling. NaN payload bits are not canonicalised (a run that reaches NaN is
reproducibly NaN, not necessarily bit-identical). The Ozaki-style splitting follows Ozaki et al.
2012 and the goal follows Gensyn's RepOps (Arun et al. 2025, "Verde") and RepDL.
"""

from verification.execution.repro.exact import ReproError
from verification.execution.repro.ops import ReproOps
from verification.execution.repro.rng import StepRng

__all__ = ["ReproError", "ReproOps", "StepRng"]
