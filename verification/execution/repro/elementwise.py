"""Portable transcendental functions: exp, log and GELU from +, -, *, / and exact bit operations.

torch's ``exp``/``log``/``tanh`` call SLEEF or glibc on CPU and libdevice on CUDA; they agree to
an ulp or so but not bit for bit. Here every function is a fixed sequence of float64 operations
that IEEE 754 rounds correctly on every device (add, sub, mul, div, round) plus exact integer and
bit manipulation, each its own torch kernel so that no compiler can contract ``a * b + c`` into a
fused multiply-add on one device and not on another. Inputs are float64 (float32 values widen
exactly) and so are outputs: callers round to float32 once, at the end. Every constant is a
literal or comes from exact/correctly rounded host arithmetic (``decimal``, IEEE division), never
from the host's libm, so two machines build the same constants.

exp
    Table-driven range reduction (Tang, "Table-driven implementation of the exponential function
    in IEEE floating-point arithmetic", ACM TOMS 1989): ``x = (256 m + j) ln2 / 256 + r`` with
    ``|r| <= ln2 / 512``, ``ln2 / 256`` split Cody–Waite style into a high part with trailing
    zeros (so ``n * LN2_256_HI`` is exact) and a low part; then
    ``exp(x) = 2**m * T[j] * (1 + p(r))`` with ``T[j] = 2**(j/256)`` and ``p`` the Taylor
    polynomial of ``expm1`` to degree 3 (truncation below 2e-13, far under float32's 6e-8).
    ``2**m`` is built from its IEEE bits. Arguments are clamped to ``[-EXP_CLAMP, EXP_CLAMP]``,
    far outside float32's range, so ``2**m`` stays a normal float64.
log
    ``x = 2**e m`` with ``m`` in ``[sqrt(2)/2, sqrt(2))`` read from the bits,
    ``log m = 2 atanh(s)``, ``s = (m - 1)/(m + 1)``, odd series to ``s**17``.
GELU
    The tanh approximation (Hendrycks & Gimpel 2016; nanoGPT's ``new_gelu``, torch's
    ``approximate="tanh"``) ``0.5 x (1 + tanh u)``, ``u = k0 (x + k1 x**3)``, evaluated through the
    identity ``0.5 (1 + tanh u) = 1 / (1 + exp(-2u))`` so that large negative inputs do not cancel.

The structure follows fdlibm (Sun Microsystems, 1993), which CORE-MATH and RepDL also build on.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import torch

from verification.execution.repro import fused
from verification.execution.repro.exact import compute_pow2

EXP_TABLE_BITS = 8  # T[j] = 2**(j / 256)
EXP_TABLE_SIZE = 1 << EXP_TABLE_BITS
INV_LN2_256 = float.fromhex("0x1.71547652b82fep+8")  # 256 / ln 2
LN2_256_HI = float.fromhex("0x1.62e42feep-9")  # fdlibm's ln2_hi / 256: 32 significant bits
LN2_256_LO = float.fromhex("0x1.a39ef35793c76p-41")  # ln 2 / 256 - LN2_256_HI
LN2 = float.fromhex("0x1.62e42fefa39efp-1")
SQRT2 = math.sqrt(2.0)  # IEEE sqrt is correctly rounded
EXP_CLAMP = 150.0  # exp(150) overflows float32, exp(-150) underflows it; 2**217 is a normal float64
EXPM1_COEFFS = (1.0, 0.5, 1.0 / 6.0)  # expm1(r) / r to degree 2
ATANH_COEFFS = tuple(1.0 / (2 * k + 1) for k in range(9))  # 1, 1/3, 1/5, ..., 1/17
GELU_K0 = math.sqrt(2.0 / math.pi)
GELU_K1 = 0.044715
MANTISSA_MASK = (1 << 52) - 1


def compute_exp_table() -> tuple[float, ...]:
    """``2**(j/256)`` for j = 0..255 in 50-digit decimal arithmetic, rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = 50
        return tuple(float(Decimal(2) ** (Decimal(j) / EXP_TABLE_SIZE)) for j in range(EXP_TABLE_SIZE))


EXP_TABLE = compute_exp_table()


def compute_horner(z: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    """``c0 + z (c1 + z (c2 + ...))``: one multiply and one add kernel per coefficient."""
    acc = z * coeffs[-1]
    for i in range(len(coeffs) - 2, 0, -1):
        acc.add_(coeffs[i]).mul_(z)
    return acc.add_(coeffs[0])


def portable_exp(x: torch.Tensor) -> torch.Tensor:
    """``exp`` of float64 ``x`` (see the module docstring)."""
    ext = fused.kernels_for(x)
    if ext is not None and x.dtype == torch.float64:  # the same operations in one C++ loop (``fused``)
        return fused.fused_exp(ext, x)
    p, scale = compute_exp_parts(x)
    return p.mul_(scale).add_(scale)


def portable_expm1(x: torch.Tensor) -> torch.Tensor:
    """``exp(x) - 1`` of float64 ``x`` without cancellation near 0: ``scale * p + (scale - 1)``,
    which is ``p`` itself (no subtraction) where ``|x| < ln 2 / 512`` and ``scale`` is 1; relative
    error below 1e-9 (``p``'s polynomial is exp's, of degree 3), far below float32's 6e-8."""
    ext = fused.kernels_for(x)
    if ext is not None and x.dtype == torch.float64:
        return fused.fused_exp(ext, x, 1)
    p, scale = compute_exp_parts(x)
    return p.mul_(scale).add_(scale - 1.0)


def compute_exp_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p, scale)`` with ``exp(x) = scale * (1 + p)``: ``scale = 2**(n / 256)`` from the table
    and a power of two, ``p = expm1(r)`` of the reduced argument ``r = x - n ln 2 / 256``."""
    x = x.clamp(-EXP_CLAMP, EXP_CLAMP)
    n = torch.round(x * INV_LN2_256)
    r = x - n * LN2_256_HI
    r.sub_(n * LN2_256_LO)
    p = compute_horner(r, EXPM1_COEFFS).mul_(r)  # expm1(r)
    k = n.to(torch.int64)
    table = torch.tensor(EXP_TABLE, dtype=torch.float64, device=x.device)
    scale = table.index_select(0, (k & (EXP_TABLE_SIZE - 1)).reshape(-1)).reshape(k.shape)
    scale.mul_(compute_pow2(k >> EXP_TABLE_BITS))  # exact: a power of two
    return p, scale


FLOAT64_TINY = 2.0**-1022  # the smallest normal float64


def portable_log(x: torch.Tensor) -> torch.Tensor:
    """Natural log of float64 ``x``: ``-inf`` at 0, NaN below 0, ``inf`` at ``inf``. A subnormal
    is scaled by ``2**54`` (exact) before its exponent and significand are read."""
    ext = fused.kernels_for(x)
    if ext is not None and x.dtype == torch.float64:
        return fused.fused_log(ext, x)
    tiny = (x > 0.0) & (x < FLOAT64_TINY)
    bits = torch.where(tiny, x * 2.0**54, x).view(torch.int64)
    e = ((bits >> 52) & 0x7FF) - 1023 - tiny.to(torch.int64) * 54
    m = ((bits & MANTISSA_MASK) | (1023 << 52)).view(torch.float64)  # [1, 2)
    big = m > SQRT2
    m = torch.where(big, m * 0.5, m)
    e = e + big.to(torch.int64)
    s = (m - 1.0) / (m + 1.0)
    series = compute_horner(s * s, ATANH_COEFFS).mul_(s)
    result = e.to(torch.float64) * LN2 + series * 2.0
    result = torch.where(x == math.inf, x, result)
    result = torch.where(x == 0.0, -math.inf, result)
    return torch.where(x < 0.0, math.nan, result)


def compute_gelu_gates(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, 1 - s)`` with ``s = 0.5 (1 + tanh u) = 1 / (1 + exp(-2u))``, without cancellation."""
    cube = x * x * x
    u = (x + cube * GELU_K1) * (-2.0 * GELU_K0)  # -2u
    e = portable_exp(u)
    denom = e + 1.0
    return 1.0 / denom, e.div_(denom)


def portable_gelu(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """GELU of float64 ``x`` given its gate ``s`` (``compute_gelu_gates``): ``x s``."""
    return x * s


def portable_gelu_grad(x: torch.Tensor, s: torch.Tensor, s_bar: torch.Tensor) -> torch.Tensor:
    """``d gelu / dx = s + 2 x s (1 - s) k0 (1 + 3 k1 x**2)``."""
    dinner = (x * x * (3.0 * GELU_K1) + 1.0) * GELU_K0
    return s + x * 2.0 * s * s_bar * dinner


VELTKAMP = 134217729.0  # 2^27 + 1: splits a float64 into two 26-bit halves


def portable_sqrt(x: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root of float64 ``x``, on any device.

    torch's CPU ``sqrt`` is not IEEE's here: measured on this machine (AVX-512 and
    ``ATEN_CPU_CAPABILITY=default`` alike), it is off by one ulp on 19 % of float32 and 1.4 % of
    float64 inputs (a vector math library's), while CUDA's is correctly rounded. So torch's result
    ``y`` (within one ulp) is corrected with the exact residual ``x - y²`` (Dekker's product through
    Veltkamp's split: no FMA): ``sqrt(x)`` lies above ``y + u/2`` iff ``x - y² > y·u + u²/4``, below
    ``y - u/2`` iff ``x - y² < -y·u + u²/4`` (``u`` the spacing of floats above / below ``y``), and
    never on a midpoint. A float32 square root taken from this float64 one is correctly rounded too
    (53 ≥ 2·24 + 2 bits: the double rounding is innocuous). The correction is exact for ``x`` in
    ``[2^-960, 2^996]``; an ``x`` outside it is first scaled into it by ``2^±1000`` and its root
    back by ``2^∓500`` (both exact), so every finite ``x ≥ 0`` gets IEEE's ``sqrt`` (``±0``, ``inf``
    and NaN as IEEE's; a negative ``x`` gives NaN).
    """
    tiny, huge = x < SQRT_LOW, x > SQRT_HIGH
    scaled = torch.where(tiny, x * SQRT_UP, torch.where(huge, x * SQRT_DOWN, x))
    y = correct_sqrt(scaled)
    return torch.where(tiny, y * ROOT_DOWN, torch.where(huge, y * ROOT_UP, y))


SQRT_LOW, SQRT_HIGH = 2.0 ** -960, 2.0 ** 996  # where correct_sqrt's residual is exact
SQRT_UP, SQRT_DOWN, ROOT_UP, ROOT_DOWN = 2.0 ** 1000, 2.0 ** -1000, 2.0 ** 500, 2.0 ** -500


def correct_sqrt(x: torch.Tensor) -> torch.Tensor:
    """torch's ``sqrt`` of ``x`` corrected to the correctly rounded one (``portable_sqrt``), for
    ``x`` in ``[2^-960, 2^996]`` (and 0, inf, NaN, negatives, which IEEE's ``sqrt`` fixes)."""
    y = torch.sqrt(x)
    c = y * VELTKAMP
    hi = c - (c - y)
    lo = y - hi
    p = y * y
    e = ((hi * hi - p) + hi * lo + lo * hi) + lo * lo  # y² = p + e exactly
    r = (x - p) - e  # x - y²: x - p is exact (Sterbenz), e is tiny
    above, below = torch.nextafter(y, y.new_tensor(math.inf)), torch.nextafter(y, y.new_tensor(0.0))
    u_up, u_down = above - y, y - below
    up = r > y * u_up + u_up * u_up * 0.25
    down = r < -(y * u_down) + u_down * u_down * 0.25
    return torch.where(up, above, torch.where(down, below, y))
