"""Reproducible execution: torch's operators giving the same bits on every device, thread count
and CPU generation.

docs/design.md §3, mode ``reproducible``. torch's kernels reduce in an order that depends on the
thread count, the SIMD width, the BLAS blocking and the device (measured here: one SGD step of an
MLP already differs between 1 and 2 CPU threads, and a plain module's initialisation between AVX2
and the scalar kernels), and its transcendental functions come from different libraries on CPU and
CUDA. ``reproducible()`` (``mode``) intercepts every aten operator of a program below autograd —
forward, backward and the optimizer's update — and removes each source of difference:

reductions (matmul, convolution, sums, means, softmax denominators, layer-norm statistics,
broadcast and embedding gradients)
    exact accumulation of fixed-point slices (``exact``): operands become integers that float64
    adds without rounding in any order, so native float64 BLAS and ``torch.sum`` are used as they
    are, and the slices' exact sums are combined in a fixed order of IEEE operations.
elementwise and transcendental functions
    fixed sequences of correctly rounded IEEE operations in float64 (``elementwise``,
    ``special``); no SLEEF, no libdevice, no fused multiply-add a compiler may or may not form;
    compound updates (``addcmul``, ``addcdiv``, ``lerp``, ``add(alpha=)``) split into one
    rounding per operation.
randomness
    a keyed counter-based generator in exact integer arithmetic (``rng``) for initialisation
    (``uniform_``, ``normal_``) and dropout.
everything else
    refused by name (``UncoveredOperatorError``), before training when the program is checked
    on fake tensors (``check_coverage``).

On CPU the compositions above run as fused C++ loops (``fused``, ``fused.cpp``: the same IEEE
operations in the same order, one correctly rounded operation at a time, compiled without FMA
contraction or reassociation), which ``tests/repro/test_fused.py`` holds to the pure-torch path
bit for bit; the torch path runs on CUDA, for fake tensors, when ``PINPOINT_REPRO_NATIVE_EXT=0``,
and when the extension cannot be built (with a ``FusedKernelWarning``). Build it ahead of time
with ``python -m verification.execution.repro.build``.

Where a tensor feeds several operators, autograd adds the gradient contributions with IEEE adds
in the engine's order, which is fixed by the graph (the same on every device).

Supported: float32 (float16/bfloat16 widened exactly and rounded back once); matmuls of any
inner dimension in one fixed order of fused multiply-adds (``products``); stride-1 convolutions; non-overlapping max pooling. NaN payload bits are
not canonicalised (a run that reaches NaN is reproducibly NaN, not necessarily bit-identical). The
fixed-order products follow Gensyn's RepOps (Arun et al. 2025, "Verde") and RepDL; the exact sums
follow Ozaki et al. 2012's error-free splitting.
"""

from verification.execution.repro.exact import ReproError
from verification.execution.repro.mode import UncoveredOperatorError, check_coverage, reproducible
from verification.execution.repro.rng import StepRng

__all__ = ["ReproError", "StepRng", "UncoveredOperatorError", "check_coverage", "reproducible"]
