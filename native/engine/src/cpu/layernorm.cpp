// LayerNorm over the channels of each row: out = (x - mean) * rstd * weight + bias, with the
// biased variance as in PyTorch. The forward saves mean and rstd so the backward does not redo
// the reductions; the backward splits in two passes so no two threads write the same float:
// dinp by rows, then dweight/dbias by channels (each a sum over rows in a fixed order).
#include <algorithm>
#include <cmath>

#include "kernels.hpp"

namespace lcx::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C, float eps) {
  // out is (N,C), inp (N,C), weight and bias (C), mean and rstd (N)
#pragma omp parallel for schedule(static) if ((long)N * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const float* x = inp + (size_t)n * C;
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= C;
    // Two passes (mean, then squared deviations) to avoid E[x^2] - E[x]^2 cancellation.
    float var = 0.0f;
    for (int c = 0; c < C; c++) {
      const float d = x[c] - m;
      var += d * d;
    }
    var /= C;
    const float s = 1.0f / std::sqrt(var + eps);
    float* o = out + (size_t)n * C;
    for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    if (mean) mean[n] = m;
    if (rstd) rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C) {
  // dinp (N,C) +=; with xhat = (x - mean) * rstd and g = dout * weight:
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
#pragma omp parallel for schedule(static) if ((long)N * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const float* x = inp + (size_t)n * C;
    const float* d = dout + (size_t)n * C;
    const float m = mean[n], s = rstd[n];
    float g_mean = 0.0f, gx_mean = 0.0f;
    for (int c = 0; c < C; c++) {
      const float g = d[c] * weight[c];
      g_mean += g;
      gx_mean += g * (x[c] - m) * s;
    }
    g_mean /= C;
    gx_mean /= C;
    float* dx = dinp + (size_t)n * C;
    for (int c = 0; c < C; c++) {
      const float xhat = (x[c] - m) * s;
      dx[c] += s * (d[c] * weight[c] - g_mean - xhat * gx_mean);
    }
  }

  // dweight, dbias (C) +=, by blocks of channels
  constexpr int CB = 64;
  const int blocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((long)N * C >= kParallelMinWork)
  for (int b = 0; b < blocks; b++) {
    const int c0 = b * CB, c1 = std::min(C, c0 + CB);
    float dw[CB] = {0}, db[CB] = {0};
    for (int n = 0; n < N; n++) {
      const float* x = inp + (size_t)n * C;
      const float* d = dout + (size_t)n * C;
      const float m = mean[n], s = rstd[n];
      for (int c = c0; c < c1; c++) {
        dw[c - c0] += d[c] * (x[c] - m) * s;
        db[c - c0] += d[c];
      }
    }
    for (int c = c0; c < c1; c++) {
      dweight[c] += dw[c - c0];
      dbias[c] += db[c - c0];
    }
  }
}

}  // namespace lcx::cpu
