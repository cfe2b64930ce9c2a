"""More portable functions for the operator-level mode: tanh, erfc, the normal CDF, cosine.

Same rules as ``elementwise``: float64 in and out, each step its own correctly rounded IEEE
kernel (add, sub, mul, div, sqrt) or exact data movement, constants from literals or correctly
rounded host arithmetic. Accuracy is float64-level (relative error below 1e-12 on the tested
ranges, see ``tests/repro/test_mode.py``), far inside the float32 result each caller rounds to.

tanh
    ``sign(x) (1 - e) / (1 + e)`` with ``e = exp(-2|x|)`` for ``|x| >= 1/8``; the odd Taylor
    series to ``x**15`` below (no cancellation near 0).
erfc
    ``|z| <= 2``: ``1 - erf(z)`` with erf's Maclaurin series to ``z**67`` (its largest term is
    ``e**4``, so the absolute error stays near 1e-15 and ``erfc(2) = 4.7e-3`` keeps 12 digits);
    ``z > 2``: Laplace's continued fraction ``exp(-z**2) / sqrt(pi) / (z + 1/2 / (z + 1 / (z + ...)))``
    evaluated bottom-up over a fixed 80 levels; ``z < -2``: ``2 - erfc(-z)``.
normal CDF
    ``Phi(x) = erfc(-x / sqrt 2) / 2`` (the exact GELU is ``x Phi(x)``, Hendrycks & Gimpel 2016).
cos(2 pi u)
    for parameter initialisation (Box–Muller): exact reduction of ``u`` to a quarter period, then
    Taylor series of cos or sin of an argument at most ``pi/4``.
"""

from __future__ import annotations

import math

import torch

from verification.execution.repro.elementwise import compute_horner, portable_exp

TANH_SMALL = 0.125
TANH_COEFFS = (1.0, -1.0 / 3, 2.0 / 15, -17.0 / 315, 62.0 / 2835, -1382.0 / 155925,
               21844.0 / 6081075, -929569.0 / 638512875)  # tanh(x)/x in powers of x**2
ERF_SERIES_LIMIT = 2.0
ERF_TERMS = 34
ERF_COEFFS = tuple((-1.0) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(ERF_TERMS))  # in z**2
ERFC_LEVELS = 80
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
TWO_PI = 2.0 * math.pi
COS_COEFFS = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(10))  # in t**2
SIN_COEFFS = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(10))  # sin(t)/t in t**2


def portable_tanh(x: torch.Tensor) -> torch.Tensor:
    a = x.abs()
    e = portable_exp(a * -2.0)
    large = (1.0 - e) / (1.0 + e)
    large = torch.where(x < 0.0, -large, large)
    small = compute_horner(x * x, TANH_COEFFS) * x
    return torch.where(a < TANH_SMALL, small, large)


def compute_erf_series(z: torch.Tensor) -> torch.Tensor:
    """erf by its Maclaurin series ``2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1))``."""
    return compute_horner(z * z, ERF_COEFFS) * z * TWO_OVER_SQRT_PI


def compute_erfc_fraction(z: torch.Tensor) -> torch.Tensor:
    """erfc for ``z > 2`` by Laplace's continued fraction (fixed depth)."""
    tail = z.clone()
    for level in range(ERFC_LEVELS, 0, -1):
        tail = z + (level * 0.5) / tail
    return portable_exp(-(z * z)) * INV_SQRT_PI / tail


def portable_erfc(z: torch.Tensor) -> torch.Tensor:
    a = z.abs()
    series = 1.0 - compute_erf_series(z.clamp(-ERF_SERIES_LIMIT, ERF_SERIES_LIMIT))
    fraction = compute_erfc_fraction(a.clamp_min(ERF_SERIES_LIMIT))
    fraction = torch.where(z < 0.0, 2.0 - fraction, fraction)
    result = torch.where(a <= ERF_SERIES_LIMIT, series, fraction)
    return torch.where(z.isnan(), z, result)


def portable_erf(z: torch.Tensor) -> torch.Tensor:
    a = z.abs()
    series = compute_erf_series(z.clamp(-ERF_SERIES_LIMIT, ERF_SERIES_LIMIT))
    tail = 1.0 - compute_erfc_fraction(a.clamp_min(ERF_SERIES_LIMIT))
    tail = torch.where(z < 0.0, -tail, tail)
    return torch.where(a <= ERF_SERIES_LIMIT, series, tail)


def portable_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """``Phi(x)``, relative accuracy kept in both tails."""
    return portable_erfc(x * -INV_SQRT2) * 0.5


def portable_normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return portable_exp(x * x * -0.5) * INV_SQRT_2PI


def portable_cos_2pi(u: torch.Tensor) -> torch.Tensor:
    """``cos(2 pi u)`` for float64 ``u`` that are multiples of ``2**-53`` (exact reductions)."""
    v = (u - torch.round(u)).abs()  # [0, 1/2]
    flip = v > 0.25
    b = torch.where(flip, 0.5 - v, v)  # [0, 1/4]; cos(2 pi v) = -cos(2 pi b) when flipped
    use_sin = b > 0.125
    t = torch.where(use_sin, 0.25 - b, b) * TWO_PI  # [0, pi/4]
    t2 = t * t
    value = torch.where(use_sin, compute_horner(t2, SIN_COEFFS) * t, compute_horner(t2, COS_COEFFS))
    return torch.where(flip, -value, value)
