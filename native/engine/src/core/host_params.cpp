#include "host_params.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "config.hpp"
#include "error.hpp"

namespace lcx {

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t splitmix_finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The k-th output of a splitmix64 generator whose state starts at key: random access, so any
// element can be produced by any thread.
uint64_t splitmix_at(uint64_t key, uint64_t k) { return splitmix_finalize(key + (k + 1) * kGolden); }

}  // namespace

void fill_normal(float* out, size_t n, float std, uint64_t seed, uint64_t stream) {
  const uint64_t key = splitmix_finalize(seed ^ splitmix_finalize(stream + kGolden));
  const size_t pairs = (n + 1) / 2;
  const double two_pi = 6.283185307179586476925286766559;
#pragma omp parallel for schedule(static)
  for (long long pi = 0; pi < (long long)pairs; pi++) {
    const uint64_t r1 = splitmix_at(key, 2 * (uint64_t)pi);
    const uint64_t r2 = splitmix_at(key, 2 * (uint64_t)pi + 1);
    const double u1 = ((double)(r1 >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]: log stays finite
    const double u2 = (double)(r2 >> 11) * 0x1.0p-53;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const size_t i = 2 * (size_t)pi;
    out[i] = (float)(std * radius * std::cos(two_pi * u2));
    if (i + 1 < n) out[i + 1] = (float)(std * radius * std::sin(two_pi * u2));
  }
}

void init_gpt2_params(const lcx_config& c, uint64_t seed, float* params) {
  const lcx_param_layout lay = param_layout(c);
  const float std = 0.02f;
  const float residual_std = (float)(0.02 / std::sqrt(2.0 * c.n_layer));
  for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
    float* p = params + lay.offset[i];
    const size_t n = lay.count[i];
    switch (i) {
      case 0:   // wte
      case 1:   // wpe
      case 4:   // qkvw
      case 10:  // fcw
        fill_normal(p, n, std, seed, (uint64_t)i);
        break;
      case 6:   // attprojw
      case 12:  // fcprojw
        fill_normal(p, n, residual_std, seed, (uint64_t)i);
        break;
      case 2:   // ln1w
      case 8:   // ln2w
      case 14:  // lnfw
        std::fill(p, p + n, 1.0f);
        break;
      default:  // biases and LayerNorm biases
        std::fill(p, p + n, 0.0f);
    }
  }
}

void extend_position_embeddings(std::vector<float>& params, const lcx_config& old_cfg, int n_new,
                                int mode, uint64_t seed) {
  const int n_old = old_cfg.n_positions;
  if (mode != LCX_EXTEND_TILE && mode != LCX_EXTEND_INTERPOLATE && mode != LCX_EXTEND_RANDOM)
    fail(LCX_ERR_ARG, "extend mode %d is not one of 0 tile, 1 interpolate, 2 random", mode);
  if (n_new < n_old)
    fail(LCX_ERR_ARG,
         "cannot extend positions from %d to %d: the new length must be >= the current one "
         "(shrinking would drop trained position rows)",
         n_old, n_new);
  const lcx_param_layout old_lay = param_layout(old_cfg);
  if (params.size() != old_lay.total)
    fail(LCX_ERR_INTERNAL, "extend_position_embeddings: %zu floats given, layout has %zu",
         params.size(), old_lay.total);
  if (n_new == n_old) return;

  lcx_config new_cfg = old_cfg;
  new_cfg.n_positions = n_new;
  const lcx_param_layout new_lay = param_layout(new_cfg);
  const size_t C = (size_t)old_cfg.n_embd;
  const size_t wpe = old_lay.offset[1];

  // Move everything after wpe up to its new offset (back to front: the ranges overlap).
  const size_t tail_from = old_lay.offset[2], tail_to = new_lay.offset[2];
  const size_t tail_len = old_lay.total - tail_from;
  params.resize(new_lay.total);
  std::copy_backward(params.begin() + (std::ptrdiff_t)tail_from,
                     params.begin() + (std::ptrdiff_t)(tail_from + tail_len),
                     params.begin() + (std::ptrdiff_t)(tail_to + tail_len));
  float* rows = params.data() + wpe;

  switch (mode) {
    case LCX_EXTEND_TILE:
      for (size_t p = (size_t)n_old; p < (size_t)n_new; p++)
        std::memcpy(rows + p * C, rows + (p % (size_t)n_old) * C, C * sizeof(float));
      break;
    case LCX_EXTEND_RANDOM:
      fill_normal(rows + (size_t)n_old * C, (size_t)(n_new - n_old) * C, 0.02f, seed,
                  kRandomPositionStream);
      break;
    case LCX_EXTEND_INTERPOLATE: {
      const std::vector<float> old_rows(rows, rows + (size_t)n_old * C);
      for (size_t p = 0; p < (size_t)n_new; p++) {
        const double x = (double)p * (double)(n_old - 1) / (double)(n_new - 1);
        const size_t i0 = (size_t)std::floor(x);
        const size_t i1 = std::min(i0 + 1, (size_t)n_old - 1);
        const double f = x - (double)i0;
        const float* a = old_rows.data() + i0 * C;
        const float* b = old_rows.data() + i1 * C;
        float* dst = rows + p * C;
        for (size_t k = 0; k < C; k++) dst[k] = (float)((1.0 - f) * a[k] + f * b[k]);
      }
      break;
    }
  }
}

}  // namespace lcx
