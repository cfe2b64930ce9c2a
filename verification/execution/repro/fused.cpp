// Fused CPU kernels of reproducible mode (verification.execution.repro.fused).
//
// Each kernel is one loop over its data that performs *the same sequence of IEEE operations* as
// the pure-torch path it replaces (elementwise.py, exact.py), one correctly rounded operation at a
// time: built with -O2 -ffp-contract=off -fno-fast-math and no -march, so the compiler may neither
// contract a * b + c into a fused multiply-add nor reassociate. The hot loops are compiled for
// several instruction sets (target_clones: baseline x86-64, AVX2 without FMA, AVX-512) and picked
// at load time; vector lanes do the same correctly rounded add/sub/mul/div as scalar code, so
// every clone gives the same bits. Constants (the exp table, polynomial coefficients) come from
// Python, so both paths use the very same doubles. Results are per element or per block, so
// at::parallel_for's split of the work cannot change them, and the exact integer sums
// (|partial sums| < 2**53) are order-free: any grouping returns the bits torch.sum returns.
// The one kernel with fused multiply-adds, the fixed-order product (fixed_mm, products.py), writes
// each fma out (intrinsics or std::fma): an fma is itself a single correctly rounded IEEE operation.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define FIXED_X86 1
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTI __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define MULTI
#endif

namespace {

constexpr int64_t GRAIN = 16384;
constexpr int LANES = 8;  // independent accumulators of an exact sum (any grouping is exact)

inline double bits_to_double(uint64_t b) { double d; std::memcpy(&d, &b, 8); return d; }
inline uint64_t double_to_bits(double d) { uint64_t b; std::memcpy(&b, &d, 8); return b; }
inline uint32_t float_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// torch.round (round half to even, as std::nearbyint in the default rounding mode) without a libm
// call: below 2**52, (|v| + 2**52) - 2**52 is |v| rounded to an integer by the addition's own
// round-to-nearest-even, and the sign is put back (-0.3 gives -0.0); larger values, inf and NaN
// are integers already or pass through. Branch-free, so loops vectorise.
inline double round_even(double v) {
  const double big = 4503599627370496.0;  // 2**52
  const double a = std::fabs(v);
  const double r = std::copysign((a + big) - big, v);  // IEEE semantics: never simplified away
  return a < big ? r : v;
}

// torch's clamp: NaN propagates, otherwise min(max(x, lo), hi)
inline double clamp(double x, double lo, double hi) {
  const double c = x < lo ? lo : (x > hi ? hi : x);
  return x != x ? x : c;
}

// torch's int64 shift left: defined through the unsigned type (wraps)
inline int64_t shl(int64_t a, int64_t s) { return static_cast<int64_t>(static_cast<uint64_t>(a) << s); }

// 2.0**n from its IEEE bits, as compute_pow2: ((n + 1023) << 52) viewed as float64
inline double pow2_bits(int64_t n) { return bits_to_double(static_cast<uint64_t>(shl(n + 1023, 52))); }

// An integer-valued double (|v| < 2**62, or NaN) -> int64 as torch's .to(torch.int64) gives it:
// NaN becomes the x86 "integer indefinite" INT64_MIN.
inline int64_t to_int64(double v) {
  return v != v ? std::numeric_limits<int64_t>::min() : static_cast<int64_t>(v);
}

inline double nan_to_zero(double v) { return std::isfinite(v) ? v : 0.0; }

// float64 -> float32 as torch's .to(torch.float32): one round-to-nearest-even conversion
MULTI void narrow_row(const double* __restrict__ v, float* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(v[i]);
}


struct ExpConsts {
  const double* table;  // 2**(j/256), j = 0..255
  double clamp, inv_ln2_256, ln2_256_hi, ln2_256_lo, c0, c1, c2;
};

ExpConsts exp_consts(const at::Tensor& table, const std::vector<double>& c) {
  TORCH_CHECK(table.dtype() == at::kDouble && table.is_contiguous() && table.numel() == 256, "exp table");
  TORCH_CHECK(c.size() == 7, "exp constants");
  return {table.data_ptr<double>(), c[0], c[1], c[2], c[3], c[4], c[5], c[6]};
}

// compute_horner(z, coeffs): acc = z * c[-1]; acc = (acc + c[i]) * z for i = n-2 .. 1; acc + c[0]
inline double horner(double z, const double* c, int64_t n) {
  double acc = z * c[n - 1];
  for (int64_t i = n - 2; i > 0; --i) {
    acc = acc + c[i];
    acc = acc * z;
  }
  return acc + c[0];
}

// compute_exp_parts: (p, scale) with exp(x) = scale * (1 + p)
inline void exp_parts(double x, const ExpConsts& k, double& p, double& scale) {
  x = clamp(x, -k.clamp, k.clamp);
  const double n = round_even(x * k.inv_ln2_256);
  double r = x - n * k.ln2_256_hi;
  r = r - n * k.ln2_256_lo;
  double acc = r * k.c2;  // compute_horner(r, (c0, c1, c2)) * r
  acc = acc + k.c1;
  acc = acc * r;
  acc = acc + k.c0;
  p = acc * r;
  const int64_t ki = to_int64(n);
  scale = k.table[ki & 255] * pow2_bits(ki >> 8);
}

constexpr int64_t CHUNK = 256;  // elements whose exp is evaluated in two vectorisable phases

// exp (variant 0) or expm1 (variant 1) of n <= CHUNK values: compute_exp_parts in a first loop
// (arithmetic, vectorised), the table lookup and the combination in a second (a gather). The
// operations per element are exactly those of exp_parts.
MULTI void exp_chunk(const double* __restrict__ in, double* __restrict__ out, int64_t n, const ExpConsts* kp,
                     int64_t variant) {
  const ExpConsts k = *kp;
  double p[CHUNK];
  int64_t idx[CHUNK];
  for (int64_t i = 0; i < n; ++i) {
    const double x = clamp(in[i], -k.clamp, k.clamp);
    const double m = round_even(x * k.inv_ln2_256);
    double r = x - m * k.ln2_256_hi;
    r = r - m * k.ln2_256_lo;
    double acc = r * k.c2;  // compute_horner(r, (c0, c1, c2)) * r
    acc = acc + k.c1;
    acc = acc * r;
    acc = acc + k.c0;
    p[i] = acc * r;
    idx[i] = to_int64(m);
  }
  const double* table = k.table;
  if (variant == 0) {
    for (int64_t i = 0; i < n; ++i) {
      const double s = table[idx[i] & 255] * pow2_bits(idx[i] >> 8);
      out[i] = p[i] * s + s;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const double s = table[idx[i] & 255] * pow2_bits(idx[i] >> 8);
      out[i] = p[i] * s + (s - 1.0);
    }
  }
}

void exp_loop(const double* in, double* out, int64_t n, const ExpConsts* k, int64_t variant) {
  for (int64_t b = 0; b < n; b += CHUNK) exp_chunk(in + b, out + b, std::min(CHUNK, n - b), k, variant);
}

MULTI void log_loop(const double* __restrict__ in, double* __restrict__ out, int64_t n, const double* __restrict__ cf, int64_t nc, double sqrt2, double ln2) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = in[i];
    const bool tiny = v > 0.0 && v < 2.2250738585072014e-308;  // subnormal: scaled by 2^54 first (exact)
    const int64_t b = static_cast<int64_t>(double_to_bits(tiny ? v * 18014398509481984.0 : v));
    int64_t e = ((b >> 52) & 0x7FF) - 1023 - (tiny ? 54 : 0);
    double m = bits_to_double(static_cast<uint64_t>((b & ((int64_t(1) << 52) - 1)) | (int64_t(1023) << 52)));
    const bool big = m > sqrt2;
    m = big ? m * 0.5 : m;
    e = e + (big ? 1 : 0);
    const double s = (m - 1.0) / (m + 1.0);
    const double series = horner(s * s, cf, nc) * s;
    double result = static_cast<double>(e) * ln2 + series * 2.0;
    result = v == std::numeric_limits<double>::infinity() ? v : result;
    result = v == 0.0 ? -std::numeric_limits<double>::infinity() : result;
    out[i] = v < 0.0 ? std::numeric_limits<double>::quiet_NaN() : result;
  }
}

// tanh-approximate GELU, as compute_gelu_gates, portable_gelu_grad and do_gelu_backward:
// c = [k1, -2 k0, 3 k1, k0]; s = 1 / (1 + e), 1 - s = e / (1 + e), e = exp(-2u).
MULTI void gelu_prologue(const double* __restrict__ in, double* __restrict__ u, int64_t n, double k1, double m2k0) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = in[i];
    double cube = v * v;
    cube = cube * v;
    u[i] = (v + cube * k1) * m2k0;
  }
}

MULTI void gelu_forward(const double* __restrict__ in, const double* __restrict__ e, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double denom = e[i] + 1.0;
    out[i] = in[i] * (1.0 / denom);
  }
}

MULTI void gelu_backward(const double* __restrict__ in, const double* __restrict__ e, const double* __restrict__ g,
                         double* __restrict__ out, int64_t n, double k1x3, double k0) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = in[i];
    const double denom = e[i] + 1.0;
    const double s = 1.0 / denom;
    const double s_bar = e[i] / denom;
    double dinner = v * v;
    dinner = dinner * k1x3;
    dinner = dinner + 1.0;
    dinner = dinner * k0;
    double t = v * 2.0;
    t = t * s;
    t = t * s_bar;
    t = t * dinner;
    out[i] = g[i] * (s + t);
  }
}

void gelu_loop(const double* in, const double* g, double* out, int64_t n, const ExpConsts* k, const double* c) {
  double u[CHUNK], e[CHUNK];
  for (int64_t b = 0; b < n; b += CHUNK) {
    const int64_t m = std::min(CHUNK, n - b);
    gelu_prologue(in + b, u, m, c[0], c[1]);
    exp_chunk(u, e, m, k, 0);
    if (g == nullptr) {
      gelu_forward(in + b, e, out + b, m);
    } else {
      gelu_backward(in + b, e, g + b, out + b, m, c[2], c[3]);
    }
  }
}

// The exact (erf) GELU, as special.portable_erfc / portable_normal_cdf / portable_normal_pdf and
// mode.do_gelu / do_gelu_backward. c = [inv_sqrt2, two_over_sqrt_pi, inv_sqrt_pi, inv_sqrt_2pi,
// series limit, continued-fraction levels, erf series coefficients...]. The torch path evaluates
// both of erfc's branches everywhere and selects; here each element's selected branch is
// evaluated by the same operations (the other one never reaches the result), the series over the
// whole chunk, the continued fraction over the chunk's |z| > limit only.
struct ErfConsts {
  double inv_sqrt2, two_over_sqrt_pi, inv_sqrt_pi, inv_sqrt_2pi, limit;
  int64_t levels;
  const double* coeffs;
  int64_t ncoeffs;
};

// 1 - compute_erf_series(clamp(z, -limit, limit)) of n <= CHUNK values: horner's operations, one
// coefficient at a time across the chunk (so the loops vectorise across elements)
MULTI void erfc_series(const double* __restrict__ z, double* __restrict__ out, int64_t n, const double* __restrict__ c,
                       int64_t nc, double two_over_sqrt_pi, double limit) {
  double zc[CHUNK], z2[CHUNK], acc[CHUNK];
  for (int64_t i = 0; i < n; ++i) {
    zc[i] = clamp(z[i], -limit, limit);
    z2[i] = zc[i] * zc[i];
    acc[i] = z2[i] * c[nc - 1];
  }
  for (int64_t j = nc - 2; j > 0; --j) {
    const double cj = c[j];
    for (int64_t i = 0; i < n; ++i) {
      const double a = acc[i] + cj;
      acc[i] = a * z2[i];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    double s = acc[i] + c[0];
    s = s * zc[i];
    s = s * two_over_sqrt_pi;
    out[i] = 1.0 - s;
  }
}

// compute_erfc_fraction's continued fraction, bottom-up over `levels` levels, of n <= CHUNK values
// a > limit (one level at a time across them), and the argument -(a a) of its exp
MULTI void erfc_tails(const double* __restrict__ a, double* __restrict__ tail, double* __restrict__ arg, int64_t n,
                      int64_t levels) {
  for (int64_t i = 0; i < n; ++i) {
    tail[i] = a[i];
    const double sq = a[i] * a[i];
    arg[i] = -sq;
  }
  for (int64_t level = levels; level > 0; --level) {
    const double h = static_cast<double>(level) * 0.5;
    for (int64_t i = 0; i < n; ++i) {
      const double q = h / tail[i];
      tail[i] = a[i] + q;
    }
  }
}

// portable_erfc of n <= CHUNK values
void erfc_chunk(const double* z, double* out, int64_t n, const ExpConsts* k, const ErfConsts& q) {
  erfc_series(z, out, n, q.coeffs, q.ncoeffs, q.two_over_sqrt_pi, q.limit);
  double a[CHUNK], tail[CHUNK], arg[CHUNK], e[CHUNK];
  int64_t where[CHUNK];
  int64_t m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::fabs(z[i]);
    if (v > q.limit) {  // NaN is neither: the series' lane, replaced below
      a[m] = v;
      where[m++] = i;
    }
  }
  if (m > 0) {
    erfc_tails(a, tail, arg, m, q.levels);
    exp_chunk(arg, e, m, k, 0);
    for (int64_t j = 0; j < m; ++j) {
      double f = e[j] * q.inv_sqrt_pi;
      f = f / tail[j];
      const int64_t i = where[j];
      out[i] = z[i] < 0.0 ? 2.0 - f : f;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    if (z[i] != z[i]) out[i] = z[i];
}

MULTI void scale_by(const double* __restrict__ x, double c, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * c;
}

MULTI void gelu_erf_forward(const double* __restrict__ x, const double* __restrict__ erfc, double* __restrict__ out,
                            int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double gate = erfc[i] * 0.5;
    out[i] = x[i] * gate;
  }
}

MULTI void gelu_erf_pdf_arg(const double* __restrict__ x, double* __restrict__ arg, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double sq = x[i] * x[i];
    arg[i] = sq * -0.5;
  }
}

MULTI void gelu_erf_backward(const double* __restrict__ x, const double* __restrict__ erfc, const double* __restrict__ e,
                             const double* __restrict__ g, double* __restrict__ out, int64_t n, double inv_sqrt_2pi) {
  for (int64_t i = 0; i < n; ++i) {
    const double cdf = erfc[i] * 0.5;
    const double pdf = e[i] * inv_sqrt_2pi;
    const double slope = cdf + x[i] * pdf;
    out[i] = g[i] * slope;
  }
}

void gelu_erf_loop(const double* in, const double* g, double* out, int64_t n, const ExpConsts* k, const ErfConsts& q) {
  double z[CHUNK], erfc[CHUNK], arg[CHUNK], e[CHUNK];
  for (int64_t b = 0; b < n; b += CHUNK) {
    const int64_t m = std::min(CHUNK, n - b);
    scale_by(in + b, -q.inv_sqrt2, z, m);
    erfc_chunk(z, erfc, m, k, q);
    if (g == nullptr) {
      gelu_erf_forward(in + b, erfc, out + b, m);
    } else {
      gelu_erf_pdf_arg(in + b, arg, m);
      exp_chunk(arg, e, m, k, 0);
      gelu_erf_backward(in + b, erfc, e, g + b, out + b, m, q.inv_sqrt_2pi);
    }
  }
}

// compute_block_scales' rule for a block whose largest biased exponent field is be
inline void block_scales(int64_t be, bool is_float, int64_t bits, double& to_grid, double& from_grid) {
  int64_t to_field, from_field;
  if (is_float) {
    to_field = (bits + 1023 + 126) - be;
    from_field = be + (1023 - 126 - bits);
  } else {
    be = std::max(be, bits);
    to_field = (bits + 1023 + 1022) - be;
    from_field = be + (1023 - 1022 - bits);
  }
  to_grid = bits_to_double(static_cast<uint64_t>(shl(to_field, 52)));
  from_grid = bits_to_double(static_cast<uint64_t>(shl(from_field, 52)));
}

// The biased exponent field of |v|; the block's amax has the largest (NaN and inf: all ones).
inline int32_t exp_field(float v) { return static_cast<int32_t>((float_to_bits(v) & 0x7FFFFFFFu) >> 23); }
inline int32_t exp_field(double v) { return static_cast<int32_t>((double_to_bits(v) & 0x7FFFFFFFFFFFFFFFull) >> 52); }

template <typename T>
MULTI int32_t max_field(const T* __restrict__ v, int64_t n) {
  int32_t be = 0;
  for (int64_t i = 0; i < n; ++i) be = std::max(be, exp_field(v[i]));
  return be;
}

template <typename T>
MULTI void max_field_rows(const T* __restrict__ v, int64_t n, int64_t stride, int64_t w, int32_t* __restrict__ be) {
  for (int64_t p = 0; p < w; ++p) be[p] = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* row = v + i * stride;
    for (int64_t p = 0; p < w; ++p) be[p] = std::max(be[p], exp_field(row[p]));
  }
}

// The three slice sums of one contiguous block, in LANES interleaved exact partial sums.
template <typename T>
MULTI void slice_sums(const T* __restrict__ v, int64_t n, double to, double up, double* __restrict__ s) {
  double s0[LANES] = {0.0}, s1[LANES] = {0.0}, s2[LANES] = {0.0};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int l = 0; l < LANES; ++l) {
      double rest = static_cast<double>(v[i + l]) * to;
      const double q0 = round_even(rest);
      rest = (rest - q0) * up;
      const double q1 = round_even(rest);
      rest = (rest - q1) * up;
      const double q2 = round_even(rest);
      s0[l] = s0[l] + q0;
      s1[l] = s1[l] + q1;
      s2[l] = s2[l] + q2;
    }
  for (; i < n; ++i) {
    double rest = static_cast<double>(v[i]) * to;
    const double q0 = round_even(rest);
    rest = (rest - q0) * up;
    const double q1 = round_even(rest);
    rest = (rest - q1) * up;
    const double q2 = round_even(rest);
    s0[0] = s0[0] + q0;
    s1[0] = s1[0] + q1;
    s2[0] = s2[0] + q2;
  }
  double t0 = 0.0, t1 = 0.0, t2 = 0.0;
  for (int l = 0; l < LANES; ++l) t0 = t0 + s0[l], t1 = t1 + s1[l], t2 = t2 + s2[l];
  s[0] = t0, s[1] = t1, s[2] = t2;
}

// The slice sums of w adjacent blocks whose element i lies at v[i * stride + p]: swept by rows.
template <typename T>
MULTI void slice_sums_rows(const T* __restrict__ v, int64_t n, int64_t stride, int64_t w, const double* __restrict__ to, double up,
                           double* __restrict__ s0, double* __restrict__ s1, double* __restrict__ s2) {
  for (int64_t p = 0; p < w; ++p) s0[p] = 0.0, s1[p] = 0.0, s2[p] = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const T* row = v + i * stride;
    for (int64_t p = 0; p < w; ++p) {
      double rest = static_cast<double>(row[p]) * to[p];
      const double q0 = round_even(rest);
      rest = (rest - q0) * up;
      const double q1 = round_even(rest);
      rest = (rest - q1) * up;
      const double q2 = round_even(rest);
      s0[p] = s0[p] + q0;
      s1[p] = s1[p] + q1;
      s2[p] = s2[p] + q2;
    }
  }
}

// reduce_slices' combination: (s0 + nan_to_num(s1 + s2 2**-b) 2**-b) from
inline double combine_sums(double s0, double s1, double s2, double down, double from) {
  const double low = nan_to_zero(s1 + s2 * down);
  return (s0 + low * down) * from;
}

constexpr int64_t COLUMNS = 512;  // adjacent blocks swept together (their accumulators stay in L1)

// exact_sum over the middle dim of a contiguous (outer, n, inner) tensor -> (outer, inner)
template <typename T>
void sum_blocks(const T* in, double* out, int64_t outer, int64_t n, int64_t inner, int64_t bits) {
  const bool is_float = std::is_same<T, float>::value;
  const double up = std::ldexp(1.0, static_cast<int>(bits));
  const double down = std::ldexp(1.0, -static_cast<int>(bits));
  if (inner == 1) {
    at::parallel_for(0, outer, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* v = in + o * n;
        double to, from, s[3];
        block_scales(max_field(v, n), is_float, bits, to, from);
        slice_sums(v, n, to, up, s);
        out[o] = combine_sums(s[0], s[1], s[2], down, from);
      }
    });
    return;
  }
  const int64_t per = (inner + COLUMNS - 1) / COLUMNS;
  at::parallel_for(0, outer * per, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n * COLUMNS, 1)), [&](int64_t b, int64_t e) {
    int32_t be[COLUMNS];
    double to[COLUMNS], from[COLUMNS], s0[COLUMNS], s1[COLUMNS], s2[COLUMNS];
    for (int64_t t = b; t < e; ++t) {
      const int64_t o = t / per, p0 = (t % per) * COLUMNS, w = std::min(COLUMNS, inner - p0);
      const T* v = in + o * n * inner + p0;
      max_field_rows(v, n, inner, w, be);
      for (int64_t p = 0; p < w; ++p) block_scales(be[p], is_float, bits, to[p], from[p]);
      slice_sums_rows(v, n, inner, w, to, up, s0, s1, s2);
      for (int64_t p = 0; p < w; ++p) out[o * inner + p0 + p] = combine_sums(s0[p], s1[p], s2[p], down, from[p]);
    }
  });
}

at::Tensor prepare(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "fused kernels take contiguous CPU tensors");
  return at::empty(x.sizes(), x.options().dtype(at::kDouble));
}

template <typename F>
void chunks(int64_t n, F f) {
  at::parallel_for(0, n, GRAIN, [&](int64_t b, int64_t e) { f(b, e - b); });
}

}  // namespace

// portable_exp (variant 0) and portable_expm1 (variant 1) of float64 x
at::Tensor exp64(const at::Tensor& x, const at::Tensor& table, const std::vector<double>& c, int64_t variant) {
  TORCH_CHECK(x.scalar_type() == at::kDouble, "exp64: float64");
  const ExpConsts k = exp_consts(table, c);
  auto out = prepare(x);
  const double* in = x.data_ptr<double>();
  double* o = out.data_ptr<double>();
  chunks(x.numel(), [&](int64_t b, int64_t n) { exp_loop(in + b, o + b, n, &k, variant); });
  return out;
}

// portable_log of float64 x: c = [sqrt2, ln2, atanh coefficients...]
at::Tensor log64(const at::Tensor& x, const std::vector<double>& c) {
  TORCH_CHECK(x.scalar_type() == at::kDouble && c.size() >= 3, "log64: float64");
  auto out = prepare(x);
  const double* in = x.data_ptr<double>();
  double* o = out.data_ptr<double>();
  const double* cf = c.data() + 2;
  const int64_t nc = static_cast<int64_t>(c.size()) - 2;
  chunks(x.numel(), [&](int64_t b, int64_t n) { log_loop(in + b, o + b, n, cf, nc, c[0], c[1]); });
  return out;
}

namespace {

// An elementwise float64 kernel `loop(in, g, out, n)` over contiguous x (and g, when given), its
// result float64, or rounded once to float32 in the loop (as .to(torch.float32) rounds).
template <typename Loop>
at::Tensor run_elementwise(const at::Tensor& x, const c10::optional<at::Tensor>& g, bool to_float, const char* name,
                           Loop loop) {
  TORCH_CHECK(x.scalar_type() == at::kDouble && x.is_contiguous(), name, ": contiguous float64");
  const double* in = x.data_ptr<double>();
  const double* gp = nullptr;
  if (g.has_value()) {
    TORCH_CHECK(g->is_contiguous() && g->scalar_type() == at::kDouble && g->numel() == x.numel(), name, ": float64 g");
    gp = g->data_ptr<double>();
  }
  if (!to_float) {
    auto out = prepare(x);
    double* o = out.data_ptr<double>();
    chunks(x.numel(), [&](int64_t b, int64_t n) { loop(in + b, gp ? gp + b : nullptr, o + b, n); });
    return out;
  }
  auto narrowed = at::empty(x.sizes(), x.options().dtype(at::kFloat));
  float* of = narrowed.data_ptr<float>();
  chunks(x.numel(), [&](int64_t b, int64_t n) {
    double buf[CHUNK];
    for (int64_t i = 0; i < n; i += CHUNK) {
      const int64_t m = std::min(CHUNK, n - i);
      loop(in + b + i, gp ? gp + b + i : nullptr, buf, m);
      narrow_row(buf, of + b + i, m);
    }
  });
  return narrowed;
}

}  // namespace

// tanh-GELU of float64 x (x s), or with g its backward g * slope
at::Tensor gelu_tanh64(const at::Tensor& x, const c10::optional<at::Tensor>& g, const at::Tensor& table,
                       const std::vector<double>& ce, const std::vector<double>& c, bool to_float) {
  TORCH_CHECK(c.size() == 4, "gelu_tanh64: 4 constants");
  const ExpConsts k = exp_consts(table, ce);
  return run_elementwise(x, g, to_float, "gelu_tanh64", [&](const double* in, const double* gp, double* o, int64_t n) {
    gelu_loop(in, gp, o, n, &k, c.data());
  });
}

// erf-GELU of float64 x (x Phi(x)), or with g its backward g * (Phi(x) + x phi(x)); c as ErfConsts
at::Tensor gelu_erf64(const at::Tensor& x, const c10::optional<at::Tensor>& g, const at::Tensor& table,
                      const std::vector<double>& ce, const std::vector<double>& c, bool to_float) {
  TORCH_CHECK(c.size() > 6, "gelu_erf64: constants");
  const ExpConsts k = exp_consts(table, ce);
  const ErfConsts q{c[0], c[1], c[2], c[3], c[4], static_cast<int64_t>(c[5]), c.data() + 6,
                    static_cast<int64_t>(c.size()) - 6};
  return run_elementwise(x, g, to_float, "gelu_erf64", [&](const double* in, const double* gp, double* o, int64_t n) {
    gelu_erf_loop(in, gp, o, n, &k, q);
  });
}

// exact_sum of a contiguous (outer, n, inner) tensor over its middle dimension -> (outer, inner)
at::Tensor exact_sum3(const at::Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t bits) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.numel() == outer * n * inner, "exact_sum3: layout");
  auto out = at::empty({outer, inner}, x.options().dtype(at::kDouble));
  if (x.scalar_type() == at::kFloat) {
    sum_blocks(x.data_ptr<float>(), out.data_ptr<double>(), outer, n, inner, bits);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kDouble, "exact_sum3: float32 or float64");
    sum_blocks(x.data_ptr<double>(), out.data_ptr<double>(), outer, n, inner, bits);
  }
  return out;
}

namespace {

// An exact sum of n float64 values (exact_sum of a float64 block), as one block.
double exact_sum64(const double* v, int64_t n, int64_t bits) {
  const double up = std::ldexp(1.0, static_cast<int>(bits));
  const double down = std::ldexp(1.0, -static_cast<int>(bits));
  double to, from, s[3];
  block_scales(max_field(v, n), false, bits, to, from);
  slice_sums(v, n, to, up, s);
  return combine_sums(s[0], s[1], s[2], down, from);
}

MULTI void sub_scalar(const double* __restrict__ x, double c, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - c;
}

MULTI void div_scalar(const double* __restrict__ x, double c, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] / c;
}

MULTI void mul_rows(const double* __restrict__ a, const double* __restrict__ b, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

MULTI void softmax_grad(const double* __restrict__ y, const double* __restrict__ g, double dot, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = y[i] * (g[i] - dot);
}

MULTI void log_softmax_grad(const double* __restrict__ ey, const double* __restrict__ g, double total,
                            double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] - ey[i] * total;
}

template <typename T>
MULTI void widen_row(const T* __restrict__ v, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(v[i]);
}

// torch's amax of a row: NaN if any value is NaN (the first one), else the largest (the float32
// max widens exactly); branch-free, so it vectorises.
MULTI double row_max(const double* __restrict__ v, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  int nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    nan |= v[i] != v[i];
    m = v[i] > m ? v[i] : m;
  }
  if (nan)
    for (int64_t i = 0; i < n; ++i)
      if (v[i] != v[i]) return v[i];
  return m;
}

}  // namespace

// The softmax family over the last dim of contiguous (R, n) rows, float64 out, as mode.py's
// softmax_parts / do_softmax (variant 0), do_log_softmax (1), do_softmax_backward (2: x = y)
// and do_log_softmax_backward (3: x = y). lc = portable_log's constants.
// With to_float the result is rounded once to float32 (what the caller's .to(float32) would do).
at::Tensor softmax_rows(const at::Tensor& x, const c10::optional<at::Tensor>& g, int64_t variant, int64_t bits,
                        const at::Tensor& table, const std::vector<double>& ce, const std::vector<double>& lc,
                        bool to_float) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2, "softmax_rows: contiguous (R, n)");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "softmax_rows: float32/float64");
  TORCH_CHECK((variant >= 2) == g.has_value(), "softmax_rows: g for the backward variants");
  if (g.has_value())
    TORCH_CHECK(g->is_contiguous() && g->sizes() == x.sizes() && g->scalar_type() == x.scalar_type(), "softmax_rows: g");
  const ExpConsts k = exp_consts(table, ce);
  const int64_t rows = x.size(0), n = x.size(1);
  auto out = at::empty({rows, n}, x.options().dtype(to_float ? at::kFloat : at::kDouble));
  double* o = to_float ? nullptr : out.data_ptr<double>();
  float* of = to_float ? out.data_ptr<float>() : nullptr;
  const bool is_float = x.scalar_type() == at::kFloat;
  const char* xb = static_cast<const char*>(x.data_ptr());
  const char* gb = g.has_value() ? static_cast<const char*>(g->data_ptr()) : nullptr;
  const int64_t esize = is_float ? 4 : 8;
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    std::vector<double> xr(n), gr(n), z(n), ex(n), res(to_float ? n : 0);
    for (int64_t r = b; r < e; ++r) {
      const void* xrow = xb + r * n * esize;
      if (is_float) widen_row(static_cast<const float*>(xrow), xr.data(), n);
      else std::memcpy(xr.data(), xrow, n * 8);
      double* orow = to_float ? res.data() : o + r * n;
      if (variant <= 1) {
        sub_scalar(xr.data(), row_max(xr.data(), n), z.data(), n);  // z = x - amax
        exp_loop(z.data(), ex.data(), n, &k, 0);
        const double total = exact_sum64(ex.data(), n, bits);
        if (variant == 0) {
          div_scalar(ex.data(), total, orow, n);
        } else {
          double lt;
          log_loop(&total, &lt, 1, lc.data() + 2, static_cast<int64_t>(lc.size()) - 2, lc[0], lc[1]);
          sub_scalar(z.data(), lt, orow, n);
        }
        if (to_float) narrow_row(orow, of + r * n, n);
        continue;
      }
      const void* grow = gb + r * n * esize;
      if (is_float) widen_row(static_cast<const float*>(grow), gr.data(), n);
      else std::memcpy(gr.data(), grow, n * 8);
      if (variant == 2) {
        mul_rows(gr.data(), xr.data(), z.data(), n);  // g * y
        softmax_grad(xr.data(), gr.data(), exact_sum64(z.data(), n, bits), orow, n);
      } else {
        exp_loop(xr.data(), ex.data(), n, &k, 0);
        log_softmax_grad(ex.data(), gr.data(), exact_sum64(gr.data(), n, bits), orow, n);
      }
      if (to_float) narrow_row(orow, of + r * n, n);
    }
  });
  return out;
}

namespace {

template <typename T>
void widen_to(const void* base, int64_t offset, double* out, int64_t n) {
  const T* v = static_cast<const T*>(base) + offset;
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(v[i]);
}

void widen_any(const at::Tensor& t, int64_t offset, double* out, int64_t n) {
  if (t.scalar_type() == at::kFloat) widen_to<float>(t.data_ptr(), offset, out, n);
  else widen_to<double>(t.data_ptr(), offset, out, n);
}

MULTI void center_square(const double* __restrict__ x, double mean, double* __restrict__ c, double* __restrict__ sq, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    c[i] = x[i] - mean;
    sq[i] = c[i] * c[i];
  }
}

MULTI void scale_affine(const double* __restrict__ c, double rstd, const double* __restrict__ w, const double* __restrict__ b,
                        double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v = c[i] * rstd;
    if (w != nullptr) v = v * w[i];
    if (b != nullptr) v = v + b[i];
    out[i] = v;
  }
}

MULTI void ln_backward_prep(const double* __restrict__ x, double mean, double rstd, const double* __restrict__ g,
                            const double* __restrict__ w, double* __restrict__ xhat, double* __restrict__ dxhat,
                            double* __restrict__ prod, double* __restrict__ gx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    xhat[i] = (x[i] - mean) * rstd;
    dxhat[i] = w != nullptr ? g[i] * w[i] : g[i];
    prod[i] = dxhat[i] * xhat[i];
    gx[i] = g[i] * xhat[i];
  }
}

MULTI void ln_grad_x(const double* __restrict__ dxhat, const double* __restrict__ xhat, double mean_d, double mean_dx,
                     double rstd, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = ((dxhat[i] - mean_d) - xhat[i] * mean_dx) * rstd;
}

}  // namespace

// mode.py's do_layer_norm over contiguous (R, n) rows:
// layer_norm_stats gives the float64 mean and variance per row, layer_norm_rstd
// rstd = 1 / sqrt(var + eps), layer_norm_apply the output.
std::vector<at::Tensor> layer_norm_stats(const at::Tensor& x, int64_t bits) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2, "layer_norm_stats: contiguous (R, n)");
  const int64_t rows = x.size(0), n = x.size(1);
  auto opts = x.options().dtype(at::kDouble);
  auto mean = at::empty({rows, 1}, opts), var = at::empty({rows, 1}, opts);
  double* mp = mean.data_ptr<double>();
  double* vp = var.data_ptr<double>();
  const double inv_n = 1.0 / static_cast<double>(n);
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<double> xr(n), c(n), sq(n);
    for (int64_t r = lo; r < hi; ++r) {
      widen_any(x, r * n, xr.data(), n);
      const double m = exact_sum64(xr.data(), n, bits) * inv_n;
      center_square(xr.data(), m, c.data(), sq.data(), n);
      mp[r] = m;
      vp[r] = exact_sum64(sq.data(), n, bits) * inv_n;
    }
  });
  return {mean, var};
}

// 1 / sqrt(v + eps) of float64 v, as mode.py's 1.0 / portable_sqrt(var + eps): IEEE's square root
// is correctly rounded (sqrtsd / vsqrtpd; std::sqrt without errno), which portable_sqrt is too.
MULTI void rstd_loop(const double* __restrict__ v, double eps, double* __restrict__ out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double s = std::sqrt(v[i] + eps);
    out[i] = 1.0 / s;
  }
}

at::Tensor layer_norm_rstd(const at::Tensor& var, double eps) {
  TORCH_CHECK(var.device().is_cpu() && var.is_contiguous() && var.scalar_type() == at::kDouble, "layer_norm_rstd: float64");
  auto out = at::empty(var.sizes(), var.options());
  rstd_loop(var.data_ptr<double>(), eps, out.data_ptr<double>(), var.numel());
  return out;
}

at::Tensor layer_norm_apply(const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
                            const c10::optional<at::Tensor>& w, const c10::optional<at::Tensor>& b) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2 && mean.is_contiguous() && rstd.is_contiguous() &&
              mean.scalar_type() == at::kDouble && rstd.scalar_type() == at::kDouble, "layer_norm_apply: layout");
  const int64_t rows = x.size(0), n = x.size(1);
  std::vector<double> wv, bv;
  if (w.has_value()) { TORCH_CHECK(w->is_contiguous() && w->numel() == n, "weight"); wv.resize(n); widen_any(*w, 0, wv.data(), n); }
  if (b.has_value()) { TORCH_CHECK(b->is_contiguous() && b->numel() == n, "bias"); bv.resize(n); widen_any(*b, 0, bv.data(), n); }
  auto out = at::empty({rows, n}, x.options().dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  const double* mp = mean.data_ptr<double>();
  const double* rp = rstd.data_ptr<double>();
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<double> xr(n), c(n), sq(n);
    for (int64_t r = lo; r < hi; ++r) {
      widen_any(x, r * n, xr.data(), n);
      center_square(xr.data(), mp[r], c.data(), sq.data(), n);
      scale_affine(c.data(), rp[r], w.has_value() ? wv.data() : nullptr, b.has_value() ? bv.data() : nullptr, o + r * n, n);
    }
  });
  return out;
}

// mode.py's do_layer_norm_backward over (R, n) rows: (grad_x, g * xhat), float64 (R, n);
// the weight and bias gradients are the exact column sums of g * xhat and g, left to the caller.
std::vector<at::Tensor> layer_norm_backward_rows(const at::Tensor& g, const at::Tensor& x, const at::Tensor& mean,
                                                 const at::Tensor& rstd, const c10::optional<at::Tensor>& w, int64_t bits) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2 && g.is_contiguous() && g.sizes() == x.sizes() &&
              mean.is_contiguous() && rstd.is_contiguous() && mean.scalar_type() == at::kDouble &&
              rstd.scalar_type() == at::kDouble, "layer_norm_backward_rows: layout");
  const int64_t rows = x.size(0), n = x.size(1);
  std::vector<double> wv;
  if (w.has_value()) { TORCH_CHECK(w->is_contiguous() && w->numel() == n, "weight"); wv.resize(n); widen_any(*w, 0, wv.data(), n); }
  auto opts = x.options().dtype(at::kDouble);
  auto gx_out = at::empty({rows, n}, opts), gxhat = at::empty({rows, n}, opts);
  double* o = gx_out.data_ptr<double>();
  double* gp = gxhat.data_ptr<double>();
  const double* mp = mean.data_ptr<double>();
  const double* rp = rstd.data_ptr<double>();
  const double inv_n = 1.0 / static_cast<double>(n);
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<double> xr(n), gr(n), xhat(n), dxhat(n), prod(n);
    for (int64_t r = lo; r < hi; ++r) {
      widen_any(x, r * n, xr.data(), n);
      widen_any(g, r * n, gr.data(), n);
      ln_backward_prep(xr.data(), mp[r], rp[r], gr.data(), w.has_value() ? wv.data() : nullptr, xhat.data(),
                       dxhat.data(), prod.data(), gp + r * n, n);
      const double mean_d = exact_sum64(dxhat.data(), n, bits) * inv_n;
      const double mean_dx = exact_sum64(prod.data(), n, bits) * inv_n;
      ln_grad_x(dxhat.data(), xhat.data(), mean_d, mean_dx, rp[r], o + r * n, n);
    }
  });
  return {gx_out, gxhat};
}

namespace {

// v rounded once into t's dtype (float32 or float64) at `offset`: the rounding of torch's .to()
void narrow_any(const double* v, at::Tensor& t, int64_t offset, int64_t n) {
  if (t.scalar_type() == at::kFloat) narrow_row(v, t.data_ptr<float>() + offset, n);
  else std::memcpy(t.data_ptr<double>() + offset, v, n * 8);
}

void check_ln_rows(const at::Tensor& x, const c10::optional<at::Tensor>& t, const char* what) {
  TORCH_CHECK(!t.has_value() || (t->is_contiguous() && t->numel() == x.size(1) && t->scalar_type() == x.scalar_type()),
              what, ": of x's dtype, one per column");
}

}  // namespace

// mode.py's do_layer_norm, whole, over contiguous (R, n) rows of float32 or float64 x (weight and
// bias of x's dtype): (out, mean, rstd) in x's dtype, shaped (R, n), (R, 1), (R, 1). Per row the
// operations of layer_norm_stats, layer_norm_rstd and layer_norm_apply, then one rounding each:
// the same bits as those three and torch's .to(), in one call instead of a dozen.
std::vector<at::Tensor> layer_norm_forward(const at::Tensor& x, const c10::optional<at::Tensor>& w,
                                           const c10::optional<at::Tensor>& b, double eps, int64_t bits) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2 &&
              (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble), "layer_norm_forward: contiguous (R, n)");
  check_ln_rows(x, w, "layer_norm_forward: weight");
  check_ln_rows(x, b, "layer_norm_forward: bias");
  const int64_t rows = x.size(0), n = x.size(1);
  std::vector<double> wv, bv;
  if (w.has_value()) { wv.resize(n); widen_any(*w, 0, wv.data(), n); }
  if (b.has_value()) { bv.resize(n); widen_any(*b, 0, bv.data(), n); }
  auto out = at::empty({rows, n}, x.options()), mean = at::empty({rows, 1}, x.options()),
       rstd = at::empty({rows, 1}, x.options());
  const double inv_n = 1.0 / static_cast<double>(n);
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<double> xr(n), c(n), sq(n), o(n);
    for (int64_t r = lo; r < hi; ++r) {
      widen_any(x, r * n, xr.data(), n);
      const double m = exact_sum64(xr.data(), n, bits) * inv_n;
      center_square(xr.data(), m, c.data(), sq.data(), n);
      const double var = exact_sum64(sq.data(), n, bits) * inv_n;
      double rs;
      rstd_loop(&var, eps, &rs, 1);
      scale_affine(c.data(), rs, w.has_value() ? wv.data() : nullptr, b.has_value() ? bv.data() : nullptr, o.data(), n);
      narrow_any(o.data(), out, r * n, n);
      narrow_any(&m, mean, r, 1);
      narrow_any(&rs, rstd, r, 1);
    }
  });
  return {out, mean, rstd};
}

// mode.py's do_layer_norm_backward, whole, over contiguous (R, n) rows of float32 or float64 g and
// x (mean, rstd and weight of that dtype): (grad_x, grad_w, grad_b) in x's dtype, shaped (R, n),
// (n), (n). Per row the operations of layer_norm_backward_rows; grad_w and grad_b are the exact
// column sums (exact_sum3's, with `col_bits` slices) of g * xhat and of g, as float64, then one
// rounding each.
std::vector<at::Tensor> layer_norm_backward(const at::Tensor& g, const at::Tensor& x, const at::Tensor& mean,
                                            const at::Tensor& rstd, const c10::optional<at::Tensor>& w, int64_t bits,
                                            int64_t col_bits) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2 && g.is_contiguous() && g.sizes() == x.sizes() &&
              g.scalar_type() == x.scalar_type() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
              mean.is_contiguous() && rstd.is_contiguous() && mean.numel() == x.size(0) && rstd.numel() == x.size(0) &&
              mean.scalar_type() == x.scalar_type() && rstd.scalar_type() == x.scalar_type(),
              "layer_norm_backward: layout");
  check_ln_rows(x, w, "layer_norm_backward: weight");
  const int64_t rows = x.size(0), n = x.size(1);
  std::vector<double> wv;
  if (w.has_value()) { wv.resize(n); widen_any(*w, 0, wv.data(), n); }
  auto opts64 = x.options().dtype(at::kDouble);
  auto grad_x = at::empty({rows, n}, x.options()), gxhat = at::empty({rows, n}, opts64), g64 = at::empty({rows, n}, opts64);
  double* gp = gxhat.data_ptr<double>();
  double* g64p = g64.data_ptr<double>();
  const double inv_n = 1.0 / static_cast<double>(n);
  at::parallel_for(0, rows, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<double> xr(n), xhat(n), dxhat(n), prod(n), o(n);
    double mr, rr;
    for (int64_t r = lo; r < hi; ++r) {
      widen_any(x, r * n, xr.data(), n);
      widen_any(g, r * n, g64p + r * n, n);
      widen_any(mean, r, &mr, 1);
      widen_any(rstd, r, &rr, 1);
      ln_backward_prep(xr.data(), mr, rr, g64p + r * n, w.has_value() ? wv.data() : nullptr, xhat.data(),
                       dxhat.data(), prod.data(), gp + r * n, n);
      const double mean_d = exact_sum64(dxhat.data(), n, bits) * inv_n;
      const double mean_dx = exact_sum64(prod.data(), n, bits) * inv_n;
      ln_grad_x(dxhat.data(), xhat.data(), mean_d, mean_dx, rr, o.data(), n);
      narrow_any(o.data(), grad_x, r * n, n);
    }
  });
  std::vector<double> sums(n);
  auto grad_w = at::empty({n}, x.options()), grad_b = at::empty({n}, x.options());
  sum_blocks(gp, sums.data(), 1, rows, n, col_bits);
  narrow_any(sums.data(), grad_w, 0, n);
  sum_blocks(g64p, sums.data(), 1, rows, n, col_bits);
  narrow_any(sums.data(), grad_b, 0, n);
  return {grad_x, grad_w, grad_b};
}

// -- fixed-order float32 products (verification.execution.repro.products) ------------------------
// C = A B with every output accumulated in one order, whatever the instruction set, the tiling or
// the thread count: the inner dimension is cut into blocks of FIXED_KC; within a block the partial
// starts at +0 and takes one fused multiply-add per term in k order (fma is a single correctly
// rounded IEEE operation: the same bits from AVX-512, AVX2, scalar std::fma or a GPU's fmaf); the
// block partials are added to the output in block order, one rounding each. Vector lanes run
// across the output's columns, never across k, so a lane's chain is the scalar chain. Tiles,
// packing and threads change which outputs are computed together, never an output's operations.
// Full tiles read a row- or column-major A and (short products) a row-major B in place (a tile's
// loads of one k are then the values a packed panel holds); other layouts, edge tiles and unfolded
// inputs are packed first.
// The same output may be computed as C = A B or as its transpose C^T = B^T A^T: fma(a, b, c) is
// commutative in a and b, so both give every output the same chain; the kernel takes whichever
// wastes fewer lanes on a tile's padding. Convolutions (stride 1) are such products whose operand
// is the unfolded input (im2col), read in place while packing instead of written out first.
namespace {

constexpr int64_t FIXED_KC = 256;  // products.BLOCK: part of the order, not a tuning knob
constexpr int64_t MC_ROWS = 96;    // rows of A packed at once (a multiple of every MR below)
constexpr int64_t NC_COLS = 1024;  // columns of B packed at once

// A float32 matrix view: element (r, c) at p[row(r) + c * cs], where the rows may be cut every
// `split` rows into groups `outer` apart (the (b, l) rows of a batch of images: g[b, o, l]).
struct Matrix {
  const float* p;
  int64_t rs, cs;
  int64_t split = std::numeric_limits<int64_t>::max();
  int64_t outer = 0;
  int64_t row(int64_t r) const { return outer == 0 ? r * rs : (r / split) * outer + (r % split) * rs; }  // no division unless split
  Matrix t() const { return {p, cs, rs}; }  // only for unsplit views
  // A-role rows a tile reads in place (element (i, k) at p[i rs + k cs]) rather than packed: an
  // unsplit row- or column-major matrix (one stride 1: each tile's loads stay on few cache lines)
  bool is_readable() const { return outer == 0 && (cs == 1 || rs == 1); }
  // B-role columns a tile reads in place: an unsplit row-major matrix
  bool is_row_major() const { return outer == 0 && cs == 1; }
  const float* at(int64_t r, int64_t c) const { return p + r * rs + c * cs; }
  // A-role panel: rows [r0, r0+mr) x inner [k0, k0+kc) -> dst[k * MR + i], rows zero-padded to MR
  void pack_rows(int64_t r0, int64_t mr, int64_t k0, int64_t kc, float* dst, int MR) const {
    const float* src[32];  // MR <= 32
    for (int64_t i = 0; i < mr; ++i) src[i] = p + row(r0 + i) + k0 * cs;
    for (int64_t k = 0; k < kc; ++k) {
      int64_t i = 0;
      for (; i < mr; ++i) dst[k * MR + i] = src[i][k * cs];
      for (; i < MR; ++i) dst[k * MR + i] = 0.0f;
    }
  }
  // B-role panels: inner [pc, pc+kc) x columns [jc, jc+nc) as NR-column panels, k-major
  template <int NR>
  void pack_block(int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* dst) const {
    for (int64_t jr = 0; jr < nc; jr += NR)
      for (int64_t k = 0; k < kc; ++k) pack_cols(pc + k, jc + jr, std::min<int64_t>(NR, nc - jr), dst + jr * kc + k * NR, NR);
  }
  // B-role row: inner index k, columns [c0, c0+nr) -> dst[0, NR), zero-padded
  void pack_cols(int64_t k, int64_t c0, int64_t nr, float* dst, int NR) const {
    const float* src = p + row(k) + c0 * cs;
    int64_t j = 0;
    if (cs == 1) {
      std::memcpy(dst, src, sizeof(float) * nr);
      j = nr;
    }
    for (; j < nr; ++j) dst[j] = src[j * cs];
    for (; j < NR; ++j) dst[j] = 0.0f;
  }
};

// dst[t] = base[off[t]]: a vector gather per 8 or 16 values where the CPU has one.
MULTI void gather_run(const float* __restrict__ base, const int32_t* __restrict__ off, int64_t n, float* __restrict__ dst) {
  for (int64_t t = 0; t < n; ++t) dst[t] = base[off[t]];
}

// The unfolded input of a stride-1 convolution, never materialised: element (k, l) with
// k = (c, i, j) over C x kh x kw and l = (b, y, x) over B x Ho x Wo is x[b, c, y + i - ph, x + j - pw],
// 0 in the padding (torch's im2col: row k of the (C kh kw, Ho Wo) matrix of image b). `batch`
// picks one image (its columns are l = (y, x)) or -1 for all (columns l = (b, y, x), also as
// the inner index of pack_rows). It reads a zero-padded copy of x, in which (y + i, x + j)'s offset
// is the same for every image and channel: one table of offsets per (i, j, y, x) replaces the
// bounds checks and index arithmetic of each element (a 4x4 image's rows are runs of 4), and a
// run of them is one vector gather.
struct Unfolded {
  const float* x;          // the input, zero-padded: (B, C, H + 2 ph, W + 2 pw), contiguous
  int64_t sb, sc;          // its batch and channel strides
  int64_t kk, l;           // kh kw and Ho Wo
  const int32_t* offsets;  // [(i kw + j) l + (y Wo + x)]: (y + i, x + j)'s offset in a padded plane
  int64_t batch;
  // never read in place (Matrix::is_readable): the members gemm_rows names for that path
  static constexpr bool is_readable() { return false; }
  static constexpr bool is_row_major() { return false; }
  static constexpr int64_t rs = 0, cs = 0;
  const float* at(int64_t, int64_t) const { return nullptr; }
  // n values (c, i, j) = k at columns (b, pos), (b, pos + 1), ..., image after image, every step-th of dst
  void gather(int64_t k, int64_t b, int64_t pos, int64_t n, float* dst, int64_t step) const {
    gather_from(offsets + (k % kk) * l, x + b * sb + (k / kk) * sc, pos, n, dst, step);
  }
  // the same from row k's offsets and its image b's plane
  void gather_from(const int32_t* off, const float* base, int64_t pos, int64_t n, float* dst, int64_t step) const {
    for (int64_t t = 0; t < n;) {
      const int64_t run = std::min(n - t, l - pos);  // within one image
      if (step == 1) {
        gather_run(base, off + pos, run, dst + t);
      } else {
        for (int64_t u = 0; u < run; ++u) dst[(t + u) * step] = base[off[pos + u]];
      }
      t += run, pos = 0, base += sb;
    }
  }
  // B-role panels (forward: K = (c, i, j), columns (y, x) of one image or (b, y, x) of all): inner
  // [pc, pc+kc) x columns [jc, jc+nc) as NR-column panels, k-major, zero-padded columns
  template <int NR>
  void pack_block(int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* dst) const {
    const int64_t b = batch < 0 ? jc / l : batch, pos = batch < 0 ? jc % l : jc;
    const int64_t full = nc / NR * NR;
    float tail[NR];
    for (int64_t k = 0; k < kc; ++k) {
      const int32_t* off = offsets + ((pc + k) % kk) * l;
      const float* base = x + b * sb + ((pc + k) / kk) * sc;
      int64_t pp = pos;
      for (int64_t jr = 0; jr < full; jr += NR) {  // one panel row: NR consecutive columns
        gather_from(off, base, pp, NR, dst + jr * kc + k * NR, 1);
        pp += NR;
        while (pp >= l) pp -= l, base += sb;
      }
      if (full < nc) {
        for (int t = 0; t < NR; ++t) tail[t] = 0.0f;
        gather_from(off, base, pp, nc - full, tail, 1);
        std::memcpy(dst + full * kc + k * NR, tail, sizeof(tail));
      }
    }
  }
  // A-role panel (weight gradient: rows k = (c, i, j), inner index (b, y, x) of the whole batch)
  void pack_rows(int64_t r0, int64_t mr, int64_t k0, int64_t kc, float* dst, int MR) const {
    for (int64_t i = 0; i < MR; ++i) {
      if (i >= mr) {
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = 0.0f;
        continue;
      }
      gather(r0 + i, k0 / l, k0 % l, kc, dst + i, MR);
    }
  }
};

// The offsets table of Unfolded for a padded plane Wp wide.
std::vector<int32_t> compute_offsets(int64_t wp, int64_t kh, int64_t kw, int64_t ho, int64_t wo) {
  std::vector<int32_t> off(static_cast<size_t>(kh * kw * ho * wo));
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j)
      for (int64_t y = 0; y < ho; ++y)
        for (int64_t xx = 0; xx < wo; ++xx) off[((i * kw + j) * ho + y) * wo + xx] = static_cast<int32_t>((y + i) * wp + xx + j);
  return off;
}

// Where output (r, c) goes: p[r * rs + (c / split) * outer + (c % split) * cs]. A tile never
// crosses a split (callers split only at multiples of NC_COLS's and every NR's divisor: see
// fixed_conv2d), so inside a tile the columns are cs apart.
struct Out {
  float* p;
  int64_t rs, cs;
  int64_t split = std::numeric_limits<int64_t>::max();
  int64_t outer = 0;
  float* at(int64_t r, int64_t c) const { return p + r * rs + (outer == 0 ? c * cs : (c / split) * outer + (c % split) * cs); }
};

// Stores a tile's block partials: C = partial (first block) or C = C + partial (one IEEE add).
template <int MR, int NR>
inline void store_tile(const float* tile, const Out& c, int mr, int nr, bool first) {
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      float& o = c.p[i * c.rs + j * c.cs];
      o = first ? tile[i * NR + j] : o + tile[i * NR + j];
    }
}

// Every tile's operands: A's element (i, k) at a[i is + k ks], a packed panel (is = 1, ks = MR) or
// the rows of a row- or column-major matrix read in place (its strides); B's element (k, j) at
// b[k bks + j], a packed panel (bks = NR) or the columns of a row-major matrix read in place (bks
// its row stride). The same values either way, so the same bits.
//
// The scalar tile: std::fma per term (a libm call where the CPU has no FMA instruction).
template <int MR, int NR>
void tile_scalar(int64_t kc, const float* a, int64_t is, int64_t ks, const float* b, int64_t bks, float* cp,
                 int64_t rs, int64_t cs, int mr, int nr, bool first) {
  float acc[MR * NR];
  for (int t = 0; t < MR * NR; ++t) acc[t] = 0.0f;
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] = std::fma(a[i * is + k * ks], b[k * bks + j], acc[i * NR + j]);
  store_tile<MR, NR>(acc, Out{cp, rs, cs}, mr, nr, first);
}

#ifdef FIXED_X86

__attribute__((target("avx2,fma"), optimize("O3")))
void tile_avx2(int64_t kc, const float* a, int64_t is, int64_t ks, const float* b, int64_t bks, float* cp,
               int64_t rs, int64_t cs, int mr, int nr, bool first) {
  constexpr int MR = 6, NR = 16;
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * bks), b1 = _mm256_loadu_ps(b + k * bks + 8);
    const float* ak = a + k * ks;
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(ak + i * is);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  alignas(32) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile + i * NR, acc[i][0]);
    _mm256_store_ps(tile + i * NR + 8, acc[i][1]);
  }
  store_tile<MR, NR>(tile, Out{cp, rs, cs}, mr, nr, first);
}

// The first n (clamped to 0..16) of 16 lanes.
inline __mmask16 lane_mask(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1);
}

// Stores the lanes of v that m selects at p, as store_tile does: C = v (first block) or C = C + v
// (one IEEE add per element); the other lanes of p are neither read nor written.
__attribute__((target("avx512f"), always_inline)) inline void store_lanes(float* p, __m512 v, __mmask16 m, bool first) {
  if (m == 0) return;
  _mm512_mask_storeu_ps(p, m, first ? v : _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), v));
}

__attribute__((target("avx512f,fma"), optimize("O3")))
void tile_avx512(int64_t kc, const float* a, int64_t is, int64_t ks, const float* b, int64_t bks, float* cp,
                 int64_t rs, int64_t cs, int mr, int nr, bool first) {
  constexpr int MR = 12, NR = 32;
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * bks), b1 = _mm512_loadu_ps(b + k * bks + 16);
    const float* ak = a + k * ks;
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(ak[i * is]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  if (cs == 1) {  // rows of contiguous outputs: masked vector stores, edge tiles included
    const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
    for (int i = 0; i < mr; ++i) {
      store_lanes(cp + i * rs, acc[i][0], m0, first);
      store_lanes(cp + i * rs + 16, acc[i][1], m1, first);
    }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(tile + i * NR, acc[i][0]);
    _mm512_store_ps(tile + i * NR + 16, acc[i][1]);
  }
  store_tile<MR, NR>(tile, Out{cp, rs, cs}, mr, nr, first);
}

// The narrow AVX-512 tile, 24 x 16: for products whose outputs are at most 16 columns wide (a
// 12 x 32 tile would compute half its lanes on padding).
__attribute__((target("avx512f,fma"), optimize("O3")))
void tile_avx512_narrow(int64_t kc, const float* a, int64_t is, int64_t ks, const float* b, int64_t bks,
                        float* cp, int64_t rs, int64_t cs, int mr, int nr, bool first) {
  constexpr int MR = 24, NR = 16;
  __m512 acc[MR];
  for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * bks);
    const float* ak = a + k * ks;
#pragma GCC unroll 24
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(ak[i * is]), b0, acc[i]);
  }
  if (cs == 1) {
    const __mmask16 m0 = lane_mask(nr);
    for (int i = 0; i < mr; ++i) store_lanes(cp + i * rs, acc[i], m0, first);
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; ++i) _mm512_store_ps(tile + i * NR, acc[i]);
  store_tile<MR, NR>(tile, Out{cp, rs, cs}, mr, nr, first);
}
#endif

using TileFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, int64_t, int,
                        int, bool);

// The B operand of one inner block [pc, pc+kc) and columns [jc, jc+nc): its NR-column panels packed
// at `packed` (panel jr at packed + jr kc), or, where `rows` is set, the full panels read in place
// (panel jr at rows + jr, rows `stride` apart) and only a narrower last panel packed.
struct BPanels {
  const float* packed;
  const float* rows;
  int64_t stride;
  template <int NR>
  const float* at(int64_t jr, int64_t nc, int64_t kc, int64_t& bks) const {
    const bool in_place = rows != nullptr && jr + NR <= nc;
    bks = in_place ? stride : NR;
    return in_place ? rows + jr : packed + jr * kc;
  }
};

// Per-thread packing space, kept between calls and grown as needed: a 1 MB buffer freshly
// allocated per product is mapped afresh (page faults) whenever the allocator has just returned
// its memory, which cost a large product several per cent. Slots: 0 and 1 a worker's A and B
// panels, 2 the A panels of a worker helping with one product's row blocks.
// Each starts on a cache line: a panel row is one or two 64-byte vector loads, and a load that
// straddles two lines costs a product up to a fifth of its time.
float* get_scratch(int slot, int64_t floats) {
  constexpr int64_t LINE = 16;  // floats per 64-byte cache line
  thread_local std::vector<float> space[3];
  std::vector<float>& s = space[slot];
  if (static_cast<int64_t>(s.size()) < floats + LINE) s.resize(static_cast<size_t>(floats + LINE));
  const auto address = reinterpret_cast<std::uintptr_t>(s.data());
  return s.data() + ((LINE - static_cast<int64_t>((address / sizeof(float)) % LINE)) % LINE);
}

// Packing buffers of one worker.
struct Buffers {
  float* a;
  float* b;
  template <int MR, int NR>
  static Buffers make(int64_t n) {
    const int64_t cols = std::min(NC_COLS, ((n + NR - 1) / NR) * NR);
    return {get_scratch(0, MC_ROWS * FIXED_KC), get_scratch(1, FIXED_KC * cols)};
  }
};

// The row blocks [lo, hi) of MC_ROWS rows of one (m, k) x (k, n) product into c, with an MR x NR
// tile, for the packed columns [jc, jc+nc) and inner block [pc, pc+kc).
template <int MR, int NR, class A>
void gemm_rows(const A& a, const BPanels& bp, const Out& c, int64_t m, int64_t jc, int64_t nc, int64_t pc,
               int64_t kc, int64_t lo, int64_t hi, float* apack, TileFn tile) {
  const bool readable = a.is_readable();  // full tiles read A in place (tile_scalar's is, ks)
  for (int64_t blk = lo; blk < hi; ++blk) {
    const int64_t ic = blk * MC_ROWS, mc = std::min(MC_ROWS, m - ic);
    for (int64_t ir = 0; ir < mc; ir += MR)
      if (!readable || ir + MR > mc) a.pack_rows(ic + ir, std::min<int64_t>(MR, mc - ir), pc, kc, apack + ir * kc, MR);
    for (int64_t jr = 0; jr < nc; jr += NR) {
      int64_t bks = NR;
      const float* bj = bp.at<NR>(jr, nc, kc, bks);
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const bool in_place = readable && ir + MR <= mc;
        tile(kc, in_place ? a.at(ic + ir, pc) : apack + ir * kc, in_place ? a.rs : 1, in_place ? a.cs : MR, bj, bks,
             c.at(ic + ir, jc + jr), c.rs, c.cs, static_cast<int>(std::min<int64_t>(MR, mc - ir)),
             static_cast<int>(std::min<int64_t>(NR, nc - jr)), pc == 0);
      }
    }
  }
}

// B's panels for the inner block [pc, pc+kc) and columns [jc, jc+nc) of a product of m rows:
// packed into dst, except the full panels of a row-major B in a product of at most
// B_IN_PLACE_ROWS rows, which tiles read in place. (A panel is read once per MR rows: for a tall
// product a packed, contiguous panel pays for its copy, rows far apart do not; 1024^3 ran 8 %
// slower with every B read in place.)
constexpr int64_t B_IN_PLACE_ROWS = 48;

template <int NR, class B>
BPanels pack_b(const B& b, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float* dst, int64_t m) {
  if (!b.is_row_major() || m > B_IN_PLACE_ROWS) {
    b.template pack_block<NR>(pc, kc, jc, nc, dst);
    return {dst, nullptr, 0};
  }
  const int64_t full = nc / NR * NR;
  if (full < nc) b.template pack_block<NR>(pc, kc, jc + full, nc - full, dst + full * kc);
  return {dst, b.at(pc, jc), b.rs};
}

// One (m, k) x (k, n) product into c. With `parallel`, threads take row blocks (one worker's
// rows never change another's operations); otherwise the caller's thread does it all.
template <int MR, int NR, class A, class B>
void fixed_gemm(const A& a, const B& b, const Out& c, int64_t m, int64_t n, int64_t k, TileFn tile,
                Buffers& buf, bool parallel) {
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c.p[i * c.rs + j * c.cs] = 0.0f;
    return;
  }
  for (int64_t jc = 0; jc < n; jc += NC_COLS) {
    const int64_t nc = std::min(NC_COLS, n - jc);
    for (int64_t pc = 0; pc < k; pc += FIXED_KC) {
      const int64_t kc = std::min(FIXED_KC, k - pc);
      const BPanels bp = pack_b<NR>(b, pc, kc, jc, nc, buf.b, m);
      const int64_t blocks = (m + MC_ROWS - 1) / MC_ROWS;
      if (!parallel || blocks == 1) {
        gemm_rows<MR, NR>(a, bp, c, m, jc, nc, pc, kc, 0, blocks, buf.a, tile);
        continue;
      }
      at::parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
        gemm_rows<MR, NR>(a, bp, c, m, jc, nc, pc, kc, lo, hi, get_scratch(2, MC_ROWS * FIXED_KC), tile);
      });
    }
  }
}

// Lanes a tiling of (m, n) computes, padding included.
inline int64_t tiled_area(int64_t m, int64_t n, int mr, int nr) {
  return ((m + mr - 1) / mr) * mr * (((n + nr - 1) / nr) * nr);
}

// `batches` products of n columns, product i computed by run(i, parallel, buffers): in parallel over the
// batch when there are several, over row blocks when there is one.
template <int MR, int NR, class Run>
void run_batches(int64_t batches, int64_t n, Run run) {
  if (batches == 1) {
    Buffers buf = Buffers::make<MR, NR>(n);
    run(0, true, buf);
    return;
  }
  at::parallel_for(0, batches, 1, [&](int64_t lo, int64_t hi) {
    Buffers buf = Buffers::make<MR, NR>(n);  // one worker's, for all its products
    for (int64_t i = lo; i < hi; ++i) run(i, false, buf);
  });
}

template <int V>
using Int = std::integral_constant<int, V>;

// The instruction set's tile for an (m, n) output, or the scalar one: f(Int<MR>, Int<NR>, tile).
// On AVX-512 the narrow tile where it computes fewer lanes (the same bits from either).
template <class F>
void with_tile(const std::string& isa, int64_t m, int64_t n, F f) {
#ifdef FIXED_X86
  if (isa == "avx512" && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
    if (tiled_area(m, n, 24, 16) < tiled_area(m, n, 12, 32)) {
      f(Int<24>{}, Int<16>{}, tile_avx512_narrow);
      return;
    }
    f(Int<12>{}, Int<32>{}, tile_avx512);
    return;
  }
  if (isa == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    f(Int<6>{}, Int<16>{}, tile_avx2);
    return;
  }
#endif
  f(Int<4>{}, Int<8>{}, tile_scalar<4, 8>);
}

// The output orientation of an (m, n) product: C^T = B^T A^T where that saves a quarter of the
// lanes or more on the instruction set's best tile (its packing and stores are strided, so a small
// saving does not pay).
inline bool is_swapped(const std::string& isa, int64_t m, int64_t n) {
  int64_t straight = 0, swapped = 0;
  with_tile(isa, m, n, [&](auto mr_, auto nr_, TileFn) { straight = tiled_area(m, n, decltype(mr_)::value, decltype(nr_)::value); });
  with_tile(isa, n, m, [&](auto mr_, auto nr_, TileFn) { swapped = tiled_area(n, m, decltype(mr_)::value, decltype(nr_)::value); });
  return 4 * swapped <= 3 * straight;
}

// NaN outputs get the canonical quiet NaN (a NaN's payload depends on which operand the hardware
// propagated).
void canonical_nans(float* c, int64_t count) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < count; ++i) c[i] = c[i] != c[i] ? nan : c[i];
}

void check_float_cpu(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat, what, ": float32 CPU tensors");
}

}  // namespace

// fixed_mm(a, b, isa): (M, K) @ (K, N) or (B, M, K) @ (B, K, N), float32 CPU, any strides, in the
// fixed order above; isa = "avx512" | "avx2" | "scalar" (the same bits from each).
at::Tensor fixed_mm(const at::Tensor& a, const at::Tensor& b, const std::string& isa) {
  check_float_cpu(a, "fixed_mm");
  check_float_cpu(b, "fixed_mm");
  TORCH_CHECK((a.dim() == 2 || a.dim() == 3) && a.dim() == b.dim() && a.size(-1) == b.size(-2) &&
              (a.dim() == 2 || a.size(0) == b.size(0)), "fixed_mm: (M, K) @ (K, N) or (B, M, K) @ (B, K, N)");
  const bool flat = a.dim() == 2;
  const at::Tensor a3 = flat ? a.unsqueeze(0) : a, b3 = flat ? b.unsqueeze(0) : b;
  const int64_t nb = a3.size(0), m = a3.size(1), k = a3.size(2), n = b3.size(2);
  auto out = at::empty({nb, m, n}, a.options());
  const float* ap = a3.data_ptr<float>();
  const float* bp = b3.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const bool swap = is_swapped(isa, m, n);
  with_tile(isa, swap ? n : m, swap ? m : n, [&](auto mr_, auto nr_, TileFn tile) {
    constexpr int MR = decltype(mr_)::value, NR = decltype(nr_)::value;
    run_batches<MR, NR>(nb, swap ? m : n, [&](int64_t i, bool parallel, Buffers& buf) {
      const Matrix ai{ap + i * a3.stride(0), a3.stride(1), a3.stride(2)};
      const Matrix bi{bp + i * b3.stride(0), b3.stride(1), b3.stride(2)};
      float* ci = op + i * m * n;
      if (swap) {
        fixed_gemm<MR, NR>(bi.t(), ai.t(), Out{ci, 1, n}, n, m, k, tile, buf, parallel);
      } else {
        fixed_gemm<MR, NR>(ai, bi, Out{ci, n, 1}, m, n, k, tile, buf, parallel);
      }
    });
  });
  canonical_nans(op, nb * m * n);
  return flat ? out.squeeze(0) : out;
}

namespace {

// The unfolded input of x for a kh x kw kernel and padding (ph, pw); `padded` and `offsets` hold
// its storage (the padded copy is one pass over x; the unfolded matrix would be kh kw of them).
Unfolded unfold(const at::Tensor& x, int64_t kh, int64_t kw, int64_t ph, int64_t pw, int64_t batch, at::Tensor& padded,
                std::vector<int32_t>& offsets) {
  padded = at::constant_pad_nd(x, {pw, pw, ph, ph}, 0).contiguous();
  const int64_t hp = padded.size(2), wp = padded.size(3);
  TORCH_CHECK(hp * wp < (int64_t(1) << 31), "fixed convolution: an input plane of ", hp, " x ", wp, " is too large");
  offsets = compute_offsets(wp, kh, kw, hp - kh + 1, wp - kw + 1);
  return {padded.data_ptr<float>(), padded.stride(0), padded.stride(1), kh * kw, (hp - kh + 1) * (wp - kw + 1),
          offsets.data(), batch};
}

}  // namespace

// fixed_conv2d(x, weight, ph, pw, isa): the stride-1 convolution (B, C, H, W) * (O, C, kh, kw) ->
// (B, O, Ho, Wo) as the fixed-order product out[b] = weight (O, C kh kw) @ im2col(x[b]) (C kh kw, Ho Wo).
at::Tensor fixed_conv2d(const at::Tensor& x, const at::Tensor& weight, int64_t ph, int64_t pw, const std::string& isa) {
  check_float_cpu(x, "fixed_conv2d");
  check_float_cpu(weight, "fixed_conv2d");
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4 && x.size(1) == weight.size(1), "fixed_conv2d: (B, C, H, W) and (O, C, kh, kw)");
  const int64_t nb = x.size(0), o = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  const int64_t ho = x.size(2) + 2 * ph - kh + 1, wo = x.size(3) + 2 * pw - kw + 1;
  TORCH_CHECK(ph >= 0 && pw >= 0 && ho > 0 && wo > 0, "fixed_conv2d: kernel larger than the padded input");
  const at::Tensor wc = weight.contiguous();
  const int64_t k = wc.numel() / std::max<int64_t>(o, 1), l = ho * wo;
  auto out = at::empty({nb, o, ho, wo}, x.options());
  float* op = out.data_ptr<float>();
  const Matrix wm{wc.data_ptr<float>(), k, 1};
  at::Tensor padded;
  std::vector<int32_t> offsets;
  const Unfolded all = unfold(x, kh, kw, ph, pw, -1, padded, offsets);
  with_tile(isa, o, l, [&](auto mr_, auto nr_, TileFn tile) {
    constexpr int MR = decltype(mr_)::value, NR = decltype(nr_)::value;
    if (l % NR == 0) {  // one product over the whole batch: columns (b, y, x), the weight packed once
      Buffers buf = Buffers::make<MR, NR>(nb * l);
      fixed_gemm<MR, NR>(wm, all, Out{op, l, 1, l, o * l}, o, nb * l, k, tile, buf, true);
      return;
    }
    run_batches<MR, NR>(nb, l, [&](int64_t b, bool parallel, Buffers& buf) {
      Unfolded image = all;
      image.batch = b;
      fixed_gemm<MR, NR>(wm, image, Out{op + b * o * l, l, 1}, o, l, k, tile, buf, parallel);
    });
  });
  canonical_nans(op, out.numel());
  return out;
}

// fixed_conv2d_weight(g, x, kh, kw, ph, pw, isa): the weight gradient (O, C, kh, kw) of that
// convolution, grad[o, (c, i, j)] = sum over (b, y, x) in that order of g[b, o, y, x] *
// im2col(x)[(c, i, j), (b, y, x)]: the fixed-order product (O, B Ho Wo) @ (B Ho Wo, C kh kw).
at::Tensor fixed_conv2d_weight(const at::Tensor& g, const at::Tensor& x, int64_t kh, int64_t kw, int64_t ph,
                               int64_t pw, const std::string& isa) {
  check_float_cpu(g, "fixed_conv2d_weight");
  check_float_cpu(x, "fixed_conv2d_weight");
  TORCH_CHECK(g.dim() == 4 && x.dim() == 4 && g.size(0) == x.size(0), "fixed_conv2d_weight: (B, O, Ho, Wo) and (B, C, H, W)");
  TORCH_CHECK(ph >= 0 && pw >= 0 && g.size(2) == x.size(2) + 2 * ph - kh + 1 && g.size(3) == x.size(3) + 2 * pw - kw + 1,
              "fixed_conv2d_weight: g's size");
  at::Tensor padded;
  std::vector<int32_t> offsets;
  const Unfolded cols = unfold(x, kh, kw, ph, pw, -1, padded, offsets);
  const at::Tensor gc = g.contiguous();
  const int64_t nb = x.size(0), o = g.size(1), c = x.size(1), l = cols.l;
  const int64_t rows = c * kh * kw, k = nb * l;
  auto out = at::empty({o, c, kh, kw}, x.options());
  float* op = out.data_ptr<float>();
  // C^T (C kh kw, O) = im2col(x) (C kh kw, B L) @ g^T (B L, O), g^T's rows (b, l) at g[b, :, l]
  const Matrix gt{gc.data_ptr<float>(), 1, l, l, o * l};
  with_tile(isa, rows, o, [&](auto mr_, auto nr_, TileFn tile) {
    constexpr int MR = decltype(mr_)::value, NR = decltype(nr_)::value;
    Buffers buf = Buffers::make<MR, NR>(o);
    fixed_gemm<MR, NR>(cols, gt, Out{op, 1, rows}, rows, o, k, tile, buf, true);
  });
  canonical_nans(op, out.numel());
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fixed_mm", &fixed_mm, "fixed-order float32 product (products.py)");
  m.def("fixed_conv2d", &fixed_conv2d, "stride-1 convolution as a fixed-order product (products.py)");
  m.def("fixed_conv2d_weight", &fixed_conv2d_weight, "its weight gradient (products.py)");
  m.def("exp64", &exp64, "portable exp / expm1 (float64 out)");
  m.def("log64", &log64, "portable log (float64 out)");
  m.def("gelu_tanh64", &gelu_tanh64, "tanh GELU forward / backward (float64)");
  m.def("gelu_erf64", &gelu_erf64, "exact (erf) GELU forward / backward (float64)");
  m.def("exact_sum3", &exact_sum3, "three-slice exact sum over the middle dim (float64 out)");
  m.def("softmax_rows", &softmax_rows, "softmax / log_softmax and their backward over rows (float64 out)");
  m.def("layer_norm_stats", &layer_norm_stats, "layer norm mean and variance over rows (float64)");
  m.def("layer_norm_rstd", &layer_norm_rstd, "layer norm 1 / sqrt(var + eps) (float64)");
  m.def("layer_norm_apply", &layer_norm_apply, "layer norm output over rows (float64)");
  m.def("layer_norm_backward_rows", &layer_norm_backward_rows, "layer norm backward over rows (float64 out)");
  m.def("layer_norm_forward", &layer_norm_forward, "layer norm, whole: output, mean, rstd in x's dtype");
  m.def("layer_norm_backward", &layer_norm_backward, "layer norm backward, whole: grad_x, grad_w, grad_b in x's dtype");
}
