// Tiny GPT-2 configs and random weights for the backend tests. Weights are drawn larger than
// GPT-2's 0.02 so that attention is far from uniform and every gradient is well above float
// noise: a mask or gradient bug then changes numbers by much more than the tolerances.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/config.hpp"
#include "longctx.h"

namespace tiny {

// splitmix64 + Box-Muller: reproducible on every platform (unlike std::normal_distribution).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
  int below(int n) { return (int)(uniform() * n); }
  float normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return (float)(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
};

inline lcx_config config(int V, int C, int NH, int L, int F, int n_positions) {
  lcx_config c;
  std::memset(&c, 0, sizeof c);
  c.arch = LCX_ARCH_GPT2;
  c.vocab_size = V;
  c.n_positions = n_positions;
  c.n_embd = C;
  c.n_layer = L;
  c.n_head = NH;
  c.n_inner = F;
  c.layer_norm_eps = 1e-5f;
  c.sparse.block = 2;
  c.sparse.num_local_blocks = 2;
  c.sparse.num_global_blocks = 1;
  c.sparse.different_layout_per_head = 1;
  c.sparse.num_different_global_patterns = 2;
  c.sparse.unidirectional = 1;
  return c;
}

inline void set_all_layers(lcx_config& c, int kind, int window = 0) {
  for (int l = 0; l < c.n_layer; l++) {
    c.attn_kind[l] = kind;
    c.attn_window[l] = window;
  }
}

inline std::vector<float> random_params(const lcx_config& c, uint64_t seed, float scale = 0.3f) {
  const lcx_param_layout lay = lcx::param_layout(c);
  std::vector<float> p(lay.total);
  Rng rng(seed);
  for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
    const bool ln_weight = t == 2 || t == 8 || t == 14;
    for (size_t i = 0; i < lay.count[t]; i++)
      p[lay.offset[t] + i] = (ln_weight ? 1.0f : 0.0f) + scale * rng.normal();
  }
  return p;
}

inline std::vector<int32_t> random_tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = rng.below(V);
  return t;
}

}  // namespace tiny
