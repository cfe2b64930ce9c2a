// Fused CPU kernels of reproducible mode (verification.execution.repro.fused).
//
// Each kernel is one loop over its data that performs *the same sequence of IEEE operations* as
// the pure-torch path it replaces (elementwise.py, special.py, exact.py), one correctly rounded
// operation at a time: built with -O2 -ffp-contract=off -fno-fast-math and no -march, so the
// compiler may neither contract a * b + c into a fused multiply-add nor reassociate. Constants
// (the exp table, polynomial coefficients) are passed in from Python, so both paths use the very
// same doubles. Results are per element or per block, so at::parallel_for's split of the work
// cannot change them. Exact integer sums (|partial sums| < 2**53) are order-free, so a sequential
// loop returns the bits torch.sum returns.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

constexpr int64_t GRAIN = 16384;

inline double bits_to_double(uint64_t b) { double d; std::memcpy(&d, &b, 8); return d; }
inline uint64_t double_to_bits(double d) { uint64_t b; std::memcpy(&b, &d, 8); return b; }
inline uint32_t float_to_bits(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }

// torch's clamp: NaN propagates, otherwise min(max(x, lo), hi)
inline double clamp(double x, double lo, double hi) {
  if (std::isnan(x)) return x;
  return std::min(std::max(x, lo), hi);
}

// torch's int64 shift left: defined through the unsigned type (wraps)
inline int64_t shl(int64_t a, int64_t s) { return static_cast<int64_t>(static_cast<uint64_t>(a) << s); }

// 2.0**n from its IEEE bits, as compute_pow2: ((n + 1023) << 52) viewed as float64
inline double pow2_bits(int64_t n) { return bits_to_double(static_cast<uint64_t>(shl(n + 1023, 52))); }

// double -> int64 as torch's .to(torch.int64): a truncating conversion (cvttsd2si on x86)
inline int64_t to_int64(double v) {
#if defined(__x86_64__)
  int64_t r;
  __asm__("cvttsd2si %1, %0" : "=r"(r) : "x"(v));
  return r;
#else
  return static_cast<int64_t>(v);
#endif
}

struct ExpConsts {
  const double* table;  // 2**(j/256), j = 0..255
  double clamp, inv_ln2_256, ln2_256_hi, ln2_256_lo, c0, c1, c2;
  int64_t table_bits;
};

ExpConsts exp_consts(const at::Tensor& table, const std::vector<double>& c) {
  TORCH_CHECK(table.dtype() == at::kDouble && table.is_contiguous() && table.numel() == 256, "exp table");
  TORCH_CHECK(c.size() == 7, "exp constants");
  return {table.data_ptr<double>(), c[0], c[1], c[2], c[3], c[4], c[5], c[6], 8};
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
  double n = std::nearbyint(x * k.inv_ln2_256);
  double r = x - n * k.ln2_256_hi;
  r = r - n * k.ln2_256_lo;
  double coeffs[3] = {k.c0, k.c1, k.c2};
  p = horner(r, coeffs, 3) * r;
  int64_t ki = to_int64(n);
  scale = k.table[ki & 255] * pow2_bits(ki >> 8);
}

inline double portable_exp(double x, const ExpConsts& k) {
  double p, s;
  exp_parts(x, k, p, s);
  return p * s + s;
}

template <typename T>
inline double load(const T* ptr, int64_t i) { return static_cast<double>(ptr[i]); }

template <typename F>
at::Tensor map_unary(const at::Tensor& x, F f) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "fused kernels take contiguous CPU tensors");
  auto out = at::empty(x.sizes(), x.options().dtype(at::kDouble));
  double* o = out.data_ptr<double>();
  int64_t n = x.numel();
  if (x.scalar_type() == at::kFloat) {
    const float* in = x.data_ptr<float>();
    at::parallel_for(0, n, GRAIN, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) o[i] = f(load(in, i)); });
  } else {
    TORCH_CHECK(x.scalar_type() == at::kDouble, "fused kernels take float32 or float64");
    const double* in = x.data_ptr<double>();
    at::parallel_for(0, n, GRAIN, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; ++i) o[i] = f(in[i]); });
  }
  return out;
}

}  // namespace

// portable_exp (variant 0) and portable_expm1 (variant 1)
at::Tensor exp64(const at::Tensor& x, const at::Tensor& table, const std::vector<double>& c, int64_t variant) {
  ExpConsts k = exp_consts(table, c);
  if (variant == 0) return map_unary(x, [k](double v) { return portable_exp(v, k); });
  return map_unary(x, [k](double v) {
    double p, s;
    exp_parts(v, k, p, s);
    return p * s + (s - 1.0);
  });
}

// portable_log: c = [sqrt2, ln2, atanh coefficients...]
at::Tensor log64(const at::Tensor& x, const std::vector<double>& c) {
  TORCH_CHECK(c.size() >= 3, "log constants");
  const double sqrt2 = c[0], ln2 = c[1];
  std::vector<double> coeffs(c.begin() + 2, c.end());
  const double* cf = coeffs.data();
  const int64_t nc = static_cast<int64_t>(coeffs.size());
  return map_unary(x, [=](double v) {
    const int64_t b = static_cast<int64_t>(double_to_bits(v));
    int64_t e = ((b >> 52) & 0x7FF) - 1023;
    double m = bits_to_double(static_cast<uint64_t>((b & ((int64_t(1) << 52) - 1)) | (int64_t(1023) << 52)));
    const bool big = m > sqrt2;
    if (big) m = m * 0.5;
    e = e + (big ? 1 : 0);
    double s = (m - 1.0) / (m + 1.0);
    double series = horner(s * s, cf, nc) * s;
    double result = static_cast<double>(e) * ln2 + series * 2.0;
    if (v == std::numeric_limits<double>::infinity()) result = v;
    if (v == 0.0) result = -std::numeric_limits<double>::infinity();
    if (v < 0.0) result = std::numeric_limits<double>::quiet_NaN();
    return result;
  });
}

// tanh-approximate GELU: c = [k1, -2 k0, 3 k1, k0]; variant 0: x s (forward), needs g for 1:
// g * (s + x 2 s (1 - s) dinner) (backward), with s = 1 / (1 + e), 1 - s = e / (1 + e),
// e = exp(-2u), as compute_gelu_gates, portable_gelu_grad and do_gelu_backward.
at::Tensor gelu_tanh64(const at::Tensor& x, const c10::optional<at::Tensor>& g, const at::Tensor& table,
                       const std::vector<double>& ce, const std::vector<double>& c) {
  ExpConsts k = exp_consts(table, ce);
  TORCH_CHECK(c.size() == 4, "gelu constants");
  const double k1 = c[0], m2k0 = c[1], k1x3 = c[2], k0 = c[3];
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.scalar_type() == at::kDouble, "gelu: float64 x");
  auto out = at::empty(x.sizes(), x.options());
  double* o = out.data_ptr<double>();
  const double* in = x.data_ptr<double>();
  const int64_t n = x.numel();
  if (!g.has_value()) {
    at::parallel_for(0, n, GRAIN, [&](int64_t b, int64_t e_) {
      for (int64_t i = b; i < e_; ++i) {
        const double v = in[i];
        double cube = v * v;
        cube = cube * v;
        double u = (v + cube * k1) * m2k0;
        double e = portable_exp(u, k);
        double denom = e + 1.0;
        o[i] = v * (1.0 / denom);
      }
    });
    return out;
  }
  const at::Tensor& gt = *g;
  TORCH_CHECK(gt.device().is_cpu() && gt.is_contiguous() && gt.scalar_type() == at::kDouble && gt.numel() == n,
              "gelu: float64 g");
  const double* gin = gt.data_ptr<double>();
  at::parallel_for(0, n, GRAIN, [&](int64_t b, int64_t e_) {
    for (int64_t i = b; i < e_; ++i) {
      const double v = in[i];
      double cube = v * v;
      cube = cube * v;
      double u = (v + cube * k1) * m2k0;
      double e = portable_exp(u, k);
      double denom = e + 1.0;
      double s = 1.0 / denom;
      double s_bar = e / denom;
      double dinner = v * v;
      dinner = dinner * k1x3;
      dinner = dinner + 1.0;
      dinner = dinner * k0;
      double t = v * 2.0;
      t = t * s;
      t = t * s_bar;
      t = t * dinner;
      double slope = s + t;
      o[i] = gin[i] * slope;
    }
  });
  return out;
}

namespace {

// compute_block_scales' biased-exponent rule, for one block whose largest exponent field is be
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

// The exponent field of |v|: the block exponent of amax is the largest of them (NaN/inf: all ones)
inline int64_t exp_field(float v) { return static_cast<int64_t>((float_to_bits(v) & 0x7FFFFFFFu) >> 23); }
inline int64_t exp_field(double v) { return static_cast<int64_t>((double_to_bits(v) & 0x7FFFFFFFFFFFFFFFull) >> 52); }

inline double nan_to_zero(double v) { return std::isfinite(v) ? v : 0.0; }

template <typename T>
void sum_blocks(const T* in, double* out, int64_t outer, int64_t n, int64_t inner, int64_t bits) {
  const bool is_float = std::is_same<T, float>::value;
  const double up = std::ldexp(1.0, static_cast<int>(bits));
  const double down = std::ldexp(1.0, -static_cast<int>(bits));
  at::parallel_for(0, outer * inner, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t o = idx / inner, i = idx % inner;
      const T* base = in + o * n * inner + i;
      int64_t be = 0;
      for (int64_t j = 0; j < n; ++j) be = std::max(be, exp_field(base[j * inner]));
      double to_grid, from_grid;
      block_scales(be, is_float, bits, to_grid, from_grid);
      double s0 = 0.0, s1 = 0.0, s2 = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        double rest = static_cast<double>(base[j * inner]) * to_grid;
        double q0 = std::nearbyint(rest);
        rest = (rest - q0) * up;
        double q1 = std::nearbyint(rest);
        rest = (rest - q1) * up;
        double q2 = std::nearbyint(rest);
        s0 = s0 + q0;
        s1 = s1 + q1;
        s2 = s2 + q2;
      }
      double low = nan_to_zero(s1 + s2 * down);
      out[idx] = (s0 + low * down) * from_grid;
    }
  });
}

}  // namespace

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

// The two-slice fixed point of a float32 matmul operand, in one pass.
// a (batch, M, K), blocks are rows: returns ([q0 | q1] (batch, M, 2K), from (batch, M, 1)).
// b (batch, K, N), blocks are columns: returns ([q1 ; q0] (batch, 2K, N), from (batch, 1, N)).
// Any strides: the operand is read where it lies (a transposed weight needs no copy first).
std::vector<at::Tensor> split_operand(const at::Tensor& x, bool rows, int64_t bits) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.scalar_type() == at::kFloat, "split_operand: float32 (B, R, C)");
  const int64_t nb = x.size(0), r = x.size(1), c = x.size(2);
  const int64_t sb = x.stride(0), sr = x.stride(1), sc = x.stride(2);
  const float* in = x.data_ptr<float>();
  const double up = std::ldexp(1.0, static_cast<int>(bits));
  at::Tensor cat, from;
  if (rows) {
    cat = at::empty({nb, r, 2 * c}, x.options().dtype(at::kDouble));
    from = at::empty({nb, r, 1}, x.options().dtype(at::kDouble));
  } else {
    cat = at::empty({nb, 2 * r, c}, x.options().dtype(at::kDouble));
    from = at::empty({nb, 1, c}, x.options().dtype(at::kDouble));
  }
  double* q = cat.data_ptr<double>();
  double* f = from.data_ptr<double>();
  if (rows) {  // block = one row of K values
    at::parallel_for(0, nb * r, std::max<int64_t>(1, GRAIN / std::max<int64_t>(c, 1)), [&](int64_t b, int64_t e) {
      for (int64_t idx = b; idx < e; ++idx) {
        const int64_t bi = idx / r, ri = idx % r;
        const float* row = in + bi * sb + ri * sr;
        int64_t be = 0;
        for (int64_t j = 0; j < c; ++j) be = std::max(be, exp_field(row[j * sc]));
        double to_grid, from_grid;
        block_scales(be, true, bits, to_grid, from_grid);
        f[idx] = from_grid;
        double* q0 = q + idx * 2 * c;
        double* q1 = q0 + c;
        for (int64_t j = 0; j < c; ++j) {
          double rest = static_cast<double>(row[j * sc]) * to_grid;
          double a0 = std::nearbyint(rest);
          rest = (rest - a0) * up;
          q0[j] = a0;
          q1[j] = std::nearbyint(rest);
        }
      }
    });
  } else {  // block = one column of K values; write [q1 ; q0]
    at::parallel_for(0, nb, 1, [&](int64_t b, int64_t e) {
      std::vector<int64_t> be(c);
      std::vector<double> to(c);
      for (int64_t bi = b; bi < e; ++bi) {
        const float* mat = in + bi * sb;
        std::fill(be.begin(), be.end(), 0);
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < c; ++j) be[j] = std::max(be[j], exp_field(mat[i * sr + j * sc]));
        for (int64_t j = 0; j < c; ++j) block_scales(be[j], true, bits, to[j], f[bi * c + j]);
        double* q1 = q + bi * 2 * r * c;
        double* q0 = q1 + r * c;
        for (int64_t i = 0; i < r; ++i)
          for (int64_t j = 0; j < c; ++j) {
            double rest = static_cast<double>(mat[i * sr + j * sc]) * to[j];
            double a0 = std::nearbyint(rest);
            rest = (rest - a0) * up;
            q0[i * c + j] = a0;
            q1[i * c + j] = std::nearbyint(rest);
          }
      }
    });
  }
  return {cat, from};
}

// exact_matmul's combination: float32((high + nan_to_num(cross) 2**-b) from_a from_b)
at::Tensor combine_products(const at::Tensor& high, const at::Tensor& cross, const at::Tensor& from_a,
                            const at::Tensor& from_b, int64_t bits) {
  TORCH_CHECK(high.dim() == 3 && high.is_contiguous() && cross.is_contiguous() && from_a.is_contiguous() &&
              from_b.is_contiguous() && high.scalar_type() == at::kDouble, "combine_products: layout");
  const int64_t nb = high.size(0), m = high.size(1), n = high.size(2);
  const double down = std::ldexp(1.0, -static_cast<int>(bits));
  auto out = at::empty({nb, m, n}, high.options().dtype(at::kFloat));
  const double* h = high.data_ptr<double>();
  const double* x = cross.data_ptr<double>();
  const double* fa = from_a.data_ptr<double>();
  const double* fb = from_b.data_ptr<double>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, nb * m, std::max<int64_t>(1, GRAIN / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t bi = idx / m;
      const double a = fa[idx];
      const double* fbr = fb + bi * n;
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = idx * n + j;
        double v = h[k] + nan_to_zero(x[k]) * down;
        v = v * a;
        v = v * fbr[j];
        o[k] = static_cast<float>(v);
      }
    }
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("exp64", &exp64, "portable exp / expm1 (float64 out)");
  m.def("log64", &log64, "portable log (float64 out)");
  m.def("gelu_tanh64", &gelu_tanh64, "tanh GELU forward / backward (float64)");
  m.def("exact_sum3", &exact_sum3, "three-slice exact sum over the middle dim (float64 out)");
  m.def("split_operand", &split_operand, "two-slice fixed point of a matmul operand");
  m.def("combine_products", &combine_products, "combination of exact_matmul's products");
}
