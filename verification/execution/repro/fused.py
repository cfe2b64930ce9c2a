"""Fused C++ kernels for reproducible mode's CPU path, with the pure-torch path as the fallback.

The pure-torch functions of ``elementwise``, ``special`` and ``exact`` run each IEEE operation as
its own torch kernel, so that no kernel can contract ``a * b + c`` into a fused multiply-add. That
costs a memory pass per operation (portable exp is about 20 float64 kernels, an exact sum 8-10).
``fused.cpp`` performs the *same sequence of IEEE operations* in one loop, compiled with
``-O2 -ffp-contract=off -fno-fast-math`` and no ``-march`` (so no FMA can be formed and nothing is
reassociated): the same bits as the torch path, which ``tests/repro/test_fused.py`` checks on
adversarial inputs.

Used for CPU tensors only (CUDA keeps the torch path), never for tensor subclasses (fake tensors of
``check_coverage``) nor for inputs that autograd records. ``PINPOINT_REPRO_NATIVE_EXT=0`` turns it
off. The extension is built once per source, torch version and compiler flags into
``$PINPOINT_REPRO_EXT_DIR`` (default ``~/.cache/pinpoint/repro-ext``), behind a file lock so that
parallel test workers build it once; ``python -m verification.execution.repro.build`` builds it
ahead of time. When the build fails, a ``FusedKernelWarning`` says why and the torch path runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from proofs.native import get_cache_dir, is_switched_on, locked

ENV_SWITCH = "PINPOINT_REPRO_NATIVE_EXT"
ENV_DIR = "PINPOINT_REPRO_EXT_DIR"
SOURCE = Path(__file__).with_name("fused.cpp")
CFLAGS = ("-O2", "-ffp-contract=off", "-fno-fast-math", "-fno-unsafe-math-optimizations", "-fno-trapping-math", "-fno-math-errno", "-fvect-cost-model=dynamic")
FLOAT_TYPES = (torch.float32, torch.float64)


class FusedKernelWarning(UserWarning):
    """The fused kernels could not be built or loaded; the pure-torch path runs (same bits)."""


def is_enabled() -> bool:
    return is_switched_on(ENV_SWITCH)


def get_build_root() -> Path:
    return get_cache_dir(ENV_DIR, "repro-ext")


def compute_build_key(source: str) -> str:
    """What the built library depends on: the source, torch's version and ABI, the flags, Python."""
    parts = [source, torch.__version__, " ".join(CFLAGS), sys.version, str(torch._C._GLIBCXX_USE_CXX11_ABI)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def build_extension(source: str | None = None, root: Path | None = None, verbose: bool = False) -> ModuleType:
    """Compile (or load the already compiled) extension; raises on failure."""
    from torch.utils import cpp_extension

    source = SOURCE.read_text() if source is None else source
    key = compute_build_key(source)
    build_dir = (root or get_build_root()) / key
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / "fused.cpp"
    with locked(build_dir.with_suffix(".lock")):
        if not src.exists() or src.read_text() != source:
            src.write_text(source)
        # torch's own build baton: stale if a builder was killed; we hold the lock, nobody builds
        (build_dir / "lock").unlink(missing_ok=True)
        return cpp_extension.load(name=f"pinpoint_repro_fused_{key}", sources=[str(src)],
                                  extra_cflags=list(CFLAGS), build_directory=str(build_dir),
                                  verbose=verbose)


_STATE: dict[str, Any] = {}
_BUILDING = threading.Lock()


def get_kernels() -> ModuleType | None:
    """The loaded extension, or None (switched off, or its build failed: warned once)."""
    if not is_enabled():
        return None
    if "module" in _STATE:
        return _STATE["module"]
    with _BUILDING:
        if "module" in _STATE:
            return _STATE["module"]
        try:
            _STATE["module"] = build_extension()
        except Exception as exc:  # noqa: BLE001 - any failure means: use the torch path
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            warnings.warn(f"reproducible mode: fused C++ kernels unavailable ({reason}); using the "
                          "pure-torch path (same bits, slower)", FusedKernelWarning, stacklevel=2)
            _STATE["module"] = None
        return _STATE["module"]


def reset() -> None:
    """Forget the loaded extension (tests)."""
    _STATE.clear()


_LOCAL = threading.local()


@contextlib.contextmanager
def below_autograd():
    """Marks code run by ``ReproducibleMode.__torch_dispatch__``: there autograd has already
    recorded the operator, so the kernels may take tensors that require grad."""
    depth = getattr(_LOCAL, "depth", 0)
    _LOCAL.depth = depth + 1
    try:
        yield
    finally:
        _LOCAL.depth = depth


_SUSPENDED = [0]  # open ``suspended()`` blocks, process-wide
_SUSPENDED_LOCK = threading.Lock()


@contextlib.contextmanager
def suspended():
    """The torch path everywhere inside the block, for code that needs reproducible mode's
    operators one by one without a dispatch mode of its own watching them (a watching mode already
    gets the torch path: ``kernels_for``). The bits are the same either way; only the operator
    trace differs."""
    with _SUSPENDED_LOCK:
        _SUSPENDED[0] += 1
    try:
        yield
    finally:
        with _SUSPENDED_LOCK:
            _SUSPENDED[0] -= 1


def kernels_for(*tensors: torch.Tensor) -> ModuleType | None:
    """The extension when every tensor is a plain float32/float64 CPU tensor that autograd does not
    record and no operator recording is open (``suspended``); otherwise None (the caller runs the
    torch path)."""
    # Rule: no other dispatch mode may be watching: an operator recorder, a cheater that corrupts
    # the i-th operator, a test's op log all count the torch path's operators (inside the
    # reproducible mode's handler the stack holds only the modes beneath it).
    if not is_enabled() or _SUSPENDED[0] or torch._C._len_torch_dispatch_stack() > 0:
        return None
    grad = torch.is_grad_enabled() and not getattr(_LOCAL, "depth", 0)
    for t in tensors:
        if (type(t) is not torch.Tensor or t.device.type != "cpu" or t.dtype not in FLOAT_TYPES
                or (grad and t.requires_grad)):
            return None
    return get_kernels()


_CONSTS: dict[str, Any] = {}


def exp_consts() -> tuple[torch.Tensor, list[float]]:
    """The exp table and constants of ``elementwise``, as the C++ kernels take them."""
    if "exp" not in _CONSTS:
        from verification.execution.repro import elementwise as ew

        table = torch.tensor(ew.EXP_TABLE, dtype=torch.float64)
        consts = [ew.EXP_CLAMP, ew.INV_LN2_256, ew.LN2_256_HI, ew.LN2_256_LO, *ew.EXPM1_COEFFS]
        _CONSTS["exp"] = (table, consts)
    return _CONSTS["exp"]


def fused_exp(ext: ModuleType, x: torch.Tensor, variant: int = 0) -> torch.Tensor:
    table, consts = exp_consts()
    return ext.exp64(x.contiguous(), table, consts, variant)


def fused_log(ext: ModuleType, x: torch.Tensor) -> torch.Tensor:
    from verification.execution.repro import elementwise as ew

    return ext.log64(x.contiguous(), [ew.SQRT2, ew.LN2, *ew.ATANH_COEFFS])


def fused_gelu_tanh(ext: ModuleType, x: torch.Tensor, g: torch.Tensor | None = None,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """tanh-GELU of float64 ``x`` (``x s``), or with ``g`` its backward ``g * slope``, rounded
    once to ``dtype`` (in the loop for float32, as ``.to(torch.float32)`` rounds)."""
    from verification.execution.repro import elementwise as ew

    table, consts = exp_consts()
    out = ext.gelu_tanh64(x.contiguous(), None if g is None else g.contiguous(), table, consts,
                          [ew.GELU_K1, -2.0 * ew.GELU_K0, 3.0 * ew.GELU_K1, ew.GELU_K0], dtype == torch.float32)
    return out.to(dtype)


def fused_gelu_erf(ext: ModuleType, x: torch.Tensor, g: torch.Tensor | None = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The exact GELU of float64 ``x`` (``x Phi(x)``, ``special.portable_normal_cdf``), or with
    ``g`` its backward ``g (Phi(x) + x phi(x))``, rounded once to ``dtype``."""
    from verification.execution.repro import special as sp

    if "erf" not in _CONSTS:
        _CONSTS["erf"] = [sp.INV_SQRT2, sp.TWO_OVER_SQRT_PI, sp.INV_SQRT_PI, sp.INV_SQRT_2PI, sp.ERF_SERIES_LIMIT,
                          float(sp.ERFC_LEVELS), *sp.ERF_COEFFS]
    table, consts = exp_consts()
    out = ext.gelu_erf64(x.contiguous(), None if g is None else g.contiguous(), table, consts, _CONSTS["erf"],
                         dtype == torch.float32)
    return out.to(dtype)


def fused_softmax(ext: ModuleType, x: torch.Tensor, dim: int, variant: int,
                  g: torch.Tensor | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor | None:
    """mode.py's softmax (0), log_softmax (1) and their backward passes (2, 3: ``x`` is the
    output ``y``) over ``dim`` in one C++ pass per row, rounded once to ``dtype``; None where the
    kernel does not apply (``dim`` not the last, empty rows), for the torch path to run."""
    from verification.execution.repro import elementwise as ew
    from verification.execution.repro.exact import FLOAT64_EXACT_BITS, MIN_SLICE_BITS, ceil_log2

    if x.dim() == 0 or dim % x.dim() != x.dim() - 1 or x.shape[-1] == 0 or (g is not None and g.dtype != x.dtype):
        return None
    n = x.shape[-1]
    bits = FLOAT64_EXACT_BITS - ceil_log2(n)
    if bits < MIN_SLICE_BITS:
        return None  # the torch path raises the named error
    table, consts = exp_consts()
    rows = x.reshape(-1, n).contiguous()
    grads = None if g is None else g.reshape(-1, n).contiguous()
    out = ext.softmax_rows(rows, grads, variant, bits, table, consts, [ew.SQRT2, ew.LN2, *ew.ATANH_COEFFS],
                           dtype == torch.float32)
    return out.reshape(x.shape).to(dtype)
