// The tied lm_head and the cross-entropy loss, fused and chunked.
//
// (N,V) logits are the largest activation of a GPT-2 (8192 tokens x 50257 x 4 bytes = 1.6 GB),
// and the loss needs only a few numbers per row. So rows are pushed through in chunks: gather
// the scored rows' hidden states, logits = x . wte^T for the chunk, turn each row into its NLL
// and, in place, into dlogits = scale * (softmax - onehot), then back through the same matmul
// into dx and dwte before the next chunk overwrites the scratch. Rows without a target
// (-1: padding, the last token of a document) are never multiplied at all.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.hpp"

namespace lcx::cpu {

int classifier_chunk_rows(int V, int N) {
  const long target_floats = 4L << 20;  // 16 MB of logits
  const long rows = std::clamp(target_floats / std::max(V, 1), 8L, 1024L);
  return (int)std::min<long>(rows, std::max(N, 1));
}

double nll_from_logits(float* nll, const float* logits, const int32_t* targets, int N, int V) {
  std::vector<float> row_nll(N, 0.0f);
#pragma omp parallel for schedule(static) if ((long)N * V >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const float* z = logits + (size_t)n * V;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = std::max(mx, z[i]);
    float sum = 0.0f;
    for (int i = 0; i < V; i++) sum += std::exp(z[i] - mx);
    row_nll[n] = std::log(sum) + mx - z[targets[n]];
  }
  double total = 0.0;
  for (int n = 0; n < N; n++) {
    if (nll) nll[n] = row_nll[n];
    total += row_nll[n];
  }
  return total;
}

double classifier_chunked(float* nll, float* dx, float* dwte, const float* x,
                          const int32_t* targets, const float* wte, int N, int C, int V,
                          float dloss_scale, float* scratch, int chunk_rows) {
  // x and dx are (N,C), wte and dwte (V,C); scratch holds logits (chunk_rows,V) then the
  // gathered rows (chunk_rows,C) and their dx (chunk_rows,C).
  const bool backward = dx != nullptr;
  if (nll) std::fill_n(nll, N, 0.0f);
  if (backward) std::fill_n(dx, (size_t)N * C, 0.0f);

  std::vector<int> rows;
  rows.reserve(N);
  for (int n = 0; n < N; n++)
    if (targets[n] >= 0) rows.push_back(n);

  float* logits = scratch;                                  // (chunk, V)
  float* xc = scratch + (size_t)chunk_rows * V;             // (chunk, C)
  float* dxc = xc + (size_t)chunk_rows * C;                 // (chunk, C)
  std::vector<float> row_nll(std::min<size_t>(chunk_rows, rows.size()));
  double total = 0.0;  // summed in row order: the loss does not depend on the thread count
  for (size_t r0 = 0; r0 < rows.size(); r0 += chunk_rows) {
    const int R = (int)std::min<size_t>(chunk_rows, rows.size() - r0);
    for (int r = 0; r < R; r++)
      std::copy_n(x + (size_t)rows[r0 + r] * C, C, xc + (size_t)r * C);
    matmul_forward(logits, xc, wte, nullptr, R, C, V);

#pragma omp parallel for schedule(static) if ((long)R * V >= kParallelMinWork)
    for (int r = 0; r < R; r++) {
      float* z = logits + (size_t)r * V;
      const int y = targets[rows[r0 + r]];
      float mx = -INFINITY;
      for (int i = 0; i < V; i++) mx = std::max(mx, z[i]);
      float sum = 0.0f;
      for (int i = 0; i < V; i++) sum += std::exp(z[i] - mx);
      row_nll[r] = std::log(sum) + mx - z[y];
      if (backward) {
        const float inv = 1.0f / sum;
        for (int i = 0; i < V; i++) z[i] = dloss_scale * std::exp(z[i] - mx) * inv;
        z[y] -= dloss_scale;
      }
    }
    for (int r = 0; r < R; r++) {
      if (nll) nll[rows[r0 + r]] = row_nll[r];
      total += row_nll[r];
    }

    if (backward) {
      // dxc (R,C) = dlogits . wte;  dwte (V,C) += dlogits^T . xc
      matmul_backward(dxc, dwte, nullptr, logits, xc, wte, R, C, V);
      for (int r = 0; r < R; r++)
        std::copy_n(dxc + (size_t)r * C, C, dx + (size_t)rows[r0 + r] * C);
    }
  }
  return total;
}

}  // namespace lcx::cpu
