// Token + position embeddings, and the residual add (the other elementwise piece of the
// stream). Positions come from the caller: 0..T-1, or restarting at each document start when
// the batch has segments (positions_for_row), or length()+i in the KV-cached decoder.
#include <algorithm>

#include "kernels.hpp"

namespace lcx::cpu {

void encoder_forward(float* out, const int32_t* tokens, const int32_t* pos, const float* wte,
                     const float* wpe, int N, int C) {
  // out is (N,C), wte (V,C), wpe (n_positions,C)
#pragma omp parallel for schedule(static) if ((long)N * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const float* te = wte + (size_t)tokens[n] * C;
    const float* pe = wpe + (size_t)pos[n] * C;
    float* o = out + (size_t)n * C;
    for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
  }
}

void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                      const int32_t* pos, int N, int C) {
  // A token (or position) may repeat inside the batch, so rows cannot be split across threads;
  // channels can: each thread owns a block of columns of dwte and dwpe.
  constexpr int CB = 64;
  const int blocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((long)N * C >= kParallelMinWork)
  for (int b = 0; b < blocks; b++) {
    const int c0 = b * CB, c1 = std::min(C, c0 + CB);
    for (int n = 0; n < N; n++) {
      const float* d = dout + (size_t)n * C;
      float* te = dwte + (size_t)tokens[n] * C;
      float* pe = dwpe + (size_t)pos[n] * C;
      for (int c = c0; c < c1; c++) {
        te[c] += d[c];
        pe[c] += d[c];
      }
    }
  }
}

void residual_add(float* out, const float* inp, size_t n) {
#pragma omp parallel for schedule(static) if ((long)n >= kParallelMinWork)
  for (size_t i = 0; i < n; i++) out[i] += inp[i];
}

}  // namespace lcx::cpu
