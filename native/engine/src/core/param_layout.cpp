// Canonical parameter layout (see longctx.h) and small per-config helpers.
#include "config.hpp"

namespace lcx {

lcx_param_layout param_layout(const lcx_config& c) {
  const size_t V = c.vocab_size, P = c.n_positions, C = c.n_embd, L = c.n_layer, F = c.n_inner;
  const size_t count[LCX_NUM_PARAM_TENSORS] = {
      V * C,         // wte
      P * C,         // wpe
      L * C,         // ln1w
      L * C,         // ln1b
      L * 3 * C * C, // qkvw
      L * 3 * C,     // qkvb
      L * C * C,     // attprojw
      L * C,         // attprojb
      L * C,         // ln2w
      L * C,         // ln2b
      L * F * C,     // fcw
      L * F,         // fcb
      L * C * F,     // fcprojw
      L * C,         // fcprojb
      C,             // lnfw
      C,             // lnfb
  };
  lcx_param_layout out{};
  size_t off = 0;
  for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
    out.offset[i] = off;
    out.count[i] = count[i];
    off += count[i];
  }
  out.total = off;
  return out;
}

bool param_decays(int i) {
  // wte, wpe and the four weight matrices; biases and LayerNorm parameters are exempt.
  return i == 0 || i == 1 || i == 4 || i == 6 || i == 10 || i == 12;
}

void positions_for_row(const int32_t* seg_row, int T, int32_t* pos) {
  int start = 0;
  for (int t = 0; t < T; t++) {
    if (seg_row && t > 0 && seg_row[t] != seg_row[t - 1]) start = t;
    pos[t] = t - start;
  }
}

}  // namespace lcx
