// A deliberately naive GPT-2 forward in double precision, written straight from the canonical
// parameter layout and config.hpp's attends() predicate: every (query, key) pair of a row is
// visited and kept only if attends() says so. It shares no code with the backend besides the
// predicate, the position rule and the DeepSpeed layout (tested on its own), so agreement with
// it checks the backend's key enumeration, softmax and every layer.
#pragma once
#include <cmath>
#include <vector>

#include "core/config.hpp"
#include "longctx.h"

namespace reference {

using Vec = std::vector<double>;

inline void layernorm(const double* x, const float* w, const float* b, int C, double eps,
                      double* out) {
  double mean = 0, var = 0;
  for (int c = 0; c < C; c++) mean += x[c];
  mean /= C;
  for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
  var /= C;
  for (int c = 0; c < C; c++) out[c] = (x[c] - mean) / std::sqrt(var + eps) * w[c] + b[c];
}

// y (OC) = W (OC,IC) x + b
inline void linear(const double* x, const float* W, const float* b, int IC, int OC, double* y) {
  for (int o = 0; o < OC; o++) {
    double s = b ? b[o] : 0.0;
    for (int i = 0; i < IC; i++) s += (double)W[(size_t)o * IC + i] * x[i];
    y[o] = s;
  }
}

// Logits (B,T,V) of the model on tokens (B,T) with optional segments (B,T).
inline Vec logits(const lcx_config& c, const std::vector<float>& P, const int32_t* tokens,
                  const int32_t* segments, int B, int T) {
  const lcx_param_layout lay = lcx::param_layout(c);
  auto W = [&](int t, size_t layer_stride = 0, int l = 0) {
    return P.data() + lay.offset[t] + layer_stride * l;
  };
  const int V = c.vocab_size, C = c.n_embd, NH = c.n_head, HS = C / NH, F = c.n_inner;
  std::vector<uint8_t> layout;
  int nb = 0;
  for (int l = 0; l < c.n_layer; l++)
    if (c.attn_kind[l] == LCX_ATTN_SPARSE && layout.empty()) {
      layout = lcx::fixed_sparse_layout(c.sparse, NH, c.n_positions);
      nb = (c.n_positions + c.sparse.block - 1) / c.sparse.block;
    }

  Vec out((size_t)B * T * V);
  for (int b = 0; b < B; b++) {
    const int32_t* tok = tokens + (size_t)b * T;
    const int32_t* seg = segments ? segments + (size_t)b * T : nullptr;
    std::vector<int32_t> pos(T);
    lcx::positions_for_row(seg, T, pos.data());
    Vec x((size_t)T * C);
    for (int t = 0; t < T; t++)
      for (int i = 0; i < C; i++)
        x[t * C + i] = (double)W(0)[(size_t)tok[t] * C + i] + W(1)[(size_t)pos[t] * C + i];

    for (int l = 0; l < c.n_layer; l++) {
      Vec h((size_t)T * C), qkv((size_t)T * 3 * C), att((size_t)T * C), tmp(C), f(F);
      for (int t = 0; t < T; t++) {
        layernorm(&x[t * C], W(2, C, l), W(3, C, l), C, c.layer_norm_eps, &h[t * C]);
        linear(&h[t * C], W(4, (size_t)3 * C * C, l), W(5, 3 * C, l), C, 3 * C, &qkv[t * 3 * C]);
      }
      for (int hd = 0; hd < NH; hd++) {
        for (int q = 0; q < T; q++) {
          Vec score(T, 0.0);
          double mx = -INFINITY;
          for (int k = 0; k < T; k++) {
            if (!lcx::attends(c.attn_kind[l], c.attn_window[l], layout.data(), nb,
                              c.sparse.block, hd, q, k, seg))
              continue;
            double s = 0;
            for (int i = 0; i < HS; i++)
              s += qkv[q * 3 * C + hd * HS + i] * qkv[k * 3 * C + C + hd * HS + i];
            score[k] = s / std::sqrt((double)HS);
            mx = std::max(mx, score[k]);
          }
          double sum = 0;
          Vec p(T, 0.0);
          for (int k = 0; k < T; k++)
            if (lcx::attends(c.attn_kind[l], c.attn_window[l], layout.data(), nb,
                             c.sparse.block, hd, q, k, seg))
              sum += p[k] = std::exp(score[k] - mx);
          for (int i = 0; i < HS; i++) {
            double o = 0;
            for (int k = 0; k < T; k++) o += p[k] / sum * qkv[k * 3 * C + 2 * C + hd * HS + i];
            att[q * C + hd * HS + i] = o;
          }
        }
      }
      for (int t = 0; t < T; t++) {
        linear(&att[t * C], W(6, (size_t)C * C, l), W(7, C, l), C, C, tmp.data());
        for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
        layernorm(&x[t * C], W(8, C, l), W(9, C, l), C, c.layer_norm_eps, &h[t * C]);
        linear(&h[t * C], W(10, (size_t)F * C, l), W(11, F, l), C, F, f.data());
        for (auto& v : f)
          v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        linear(f.data(), W(12, (size_t)C * F, l), W(13, C, l), F, C, tmp.data());
        for (int i = 0; i < C; i++) x[t * C + i] += tmp[i];
      }
    }
    for (int t = 0; t < T; t++) {
      Vec h(C);
      layernorm(&x[t * C], W(14), W(15), C, c.layer_norm_eps, h.data());
      linear(h.data(), W(0), nullptr, C, V, &out[((size_t)b * T + t) * V]);
    }
  }
  return out;
}

// NLL of each position (0 where target < 0) from (N,V) logits.
inline Vec nll(const Vec& logits, const int32_t* targets, int N, int V) {
  Vec out(N, 0.0);
  for (int n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const double* z = &logits[(size_t)n * V];
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < V; i++) mx = std::max(mx, z[i]);
    for (int i = 0; i < V; i++) s += std::exp(z[i] - mx);
    out[n] = std::log(s) + mx - z[targets[n]];
  }
  return out;
}

}  // namespace reference
