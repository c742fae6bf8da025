// AdamW (Loshchilov & Hutter): Adam on the gradient, plus weight decay applied to the weights
// directly rather than folded into the gradient, so the decay is not rescaled by 1/sqrt(v).
// The caller decides which tensors decay (param_decays) and whether to clip (grad_scale).
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.hpp"

namespace lcx::cpu {

double sum_squares(const float* x, size_t n) {
  // Fixed chunks summed in order: the norm (and the clipping it drives) is the same for any
  // number of threads, so runs are reproducible.
  constexpr size_t CHUNK = 1 << 16;
  const size_t chunks = (n + CHUNK - 1) / CHUNK;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static) if ((long)n >= kParallelMinWork)
  for (size_t c = 0; c < chunks; c++) {
    const size_t i0 = c * CHUNK, i1 = std::min(n, i0 + CHUNK);
    double s = 0.0;
    for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
    partial[c] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                  int64_t t) {
  const float m_correction = 1.0f - (float)std::pow((double)beta1, (double)t);
  const float v_correction = 1.0f - (float)std::pow((double)beta2, (double)t);
#pragma omp parallel for schedule(static) if ((long)n >= kParallelMinWork)
  for (size_t i = 0; i < n; i++) {
    const float g = grad[i] * grad_scale;
    m[i] = beta1 * m[i] + (1.0f - beta1) * g;
    v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
    const float m_hat = m[i] / m_correction;
    const float v_hat = v[i] / v_correction;
    param[i] -= lr * (m_hat / (std::sqrt(v_hat) + eps) + weight_decay * param[i]);
  }
}

}  // namespace lcx::cpu
