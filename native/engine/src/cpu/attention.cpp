// Causal self-attention for the three patterns (dense, sliding window, DeepSpeed block-sparse),
// with documents (segments) inside packed rows.
//
// Design: the kernels never build a (T,T) score matrix and never compute a score only to mask
// it. For each query, allowed_keys() lists exactly the keys config.hpp's attends() allows:
// - dense:   [first key of the query's document, q]
// - window:  the same, cut to the last `window` keys
// - sparse:  only the key blocks of the query block's row in the layout (CSR), each cut to the
//            document and to k <= q; blocks the layout leaves out are never visited.
// So a window or sparse layer costs in proportion to the keys it can see.
//
// Like FlashAttention, the forward keeps one number per query and head, the log-sum-exp of its
// scaled scores, instead of the probabilities; the backward recomputes each probability as
// exp(score - lse). Memory is O(T) per head instead of O(T^2).
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "../core/config.hpp"
#include "kernels.hpp"
#include "simd.hpp"

namespace lcx::cpu {

void BlockLayout::build(std::vector<uint8_t> layout, int n_head_, int nb_, int block_) {
  dense = std::move(layout);
  n_head = n_head_;
  nb = nb_;
  block = block_;
  row_start.assign((size_t)n_head * nb + 1, 0);
  key_blocks.clear();
  for (int h = 0; h < n_head; h++) {
    for (int qb = 0; qb < nb; qb++) {
      const uint8_t* row = dense.data() + ((size_t)h * nb + qb) * nb;
      for (int kb = 0; kb < nb; kb++)
        if (row[kb]) key_blocks.push_back(kb);
      row_start[(size_t)h * nb + qb + 1] = (int32_t)key_blocks.size();
    }
  }
}

void document_starts(const int32_t* seg_row, int T, int32_t* first_same) {
  std::unordered_map<int32_t, int32_t> first;
  for (int t = 0; t < T; t++) first_same[t] = first.emplace(seg_row[t], t).first->second;
}

int allowed_keys(const AttnPattern& p, int h, int q, int lo, const int32_t* seg_row,
                 int32_t* keys) {
  int n = 0;
  // Keys k0..k1 (inclusive). Inside a document's span every key normally matches; the check
  // only matters when an id reappears after another document.
  auto take = [&](int k0, int k1) {
    if (!seg_row) {
      for (int k = k0; k <= k1; k++) keys[n++] = k;
    } else {
      const int32_t s = seg_row[q];
      for (int k = k0; k <= k1; k++)
        if (seg_row[k] == s) keys[n++] = k;
    }
  };
  if (p.kind == LCX_ATTN_SPARSE) {
    const BlockLayout& L = *p.layout;
    const size_t row = (size_t)h * L.nb + q / L.block;
    for (int32_t i = L.row_start[row]; i < L.row_start[row + 1]; i++) {
      const int k0 = L.key_blocks[i] * L.block;
      if (k0 > q) break;  // blocks are ascending; the rest are in the future
      take(std::max(k0, lo), std::min(k0 + L.block - 1, q));
    }
  } else {
    if (p.kind == LCX_ATTN_WINDOW) lo = std::max(lo, q - p.window + 1);
    take(lo, q);
  }
  return n;
}

float attend_query(float* out, const float* q, const float* kbase, const float* vbase,
                   size_t kv_stride, const int32_t* keys, int n, int HS, float* scores) {
  // out and q are (HS); scores (n)
  const float scale = 1.0f / std::sqrt((float)HS);
  float mx = -INFINITY;
  for (int j = 0; j < n; j++) {
    const float s = dot(q, kbase + (size_t)keys[j] * kv_stride, HS) * scale;
    scores[j] = s;
    mx = std::max(mx, s);
  }
  float sum = 0.0f;
  for (int j = 0; j < n; j++) {
    scores[j] = std::exp(scores[j] - mx);
    sum += scores[j];
  }
  const float inv = 1.0f / sum;
  for (int c = 0; c < HS; c++) out[c] = 0.0f;
  for (int j = 0; j < n; j++) {
    const float pj = scores[j] * inv;
    const float* v = vbase + (size_t)keys[j] * kv_stride;
    for (int c = 0; c < HS; c++) out[c] += pj * v[c];
  }
  return mx + std::log(sum);
}

void attention_forward(float* out, float* lse, const float* qkv, const int32_t* segments,
                       const int32_t* first_same, int B, int T, int C, int NH,
                       const AttnPattern& p) {
  // out is (B,T,C), lse (B,NH,T), qkv (B,T,3C) with q | k | v, heads contiguous in each
  const int HS = C / NH;
  const size_t C3 = (size_t)3 * C;
  const long total = (long)B * NH * T;
#pragma omp parallel if (total * std::min(T, 256) * HS >= kParallelMinWork)
  {
    std::vector<float> scores(T);
    std::vector<int32_t> keys(T);
    // Queries of one (b, h) are consecutive so a thread's chunk shares its keys in cache;
    // dynamic because causal rows grow with t.
#pragma omp for schedule(dynamic, 32)
    for (long idx = 0; idx < total; idx++) {
      const int t = (int)(idx % T), h = (int)(idx / T % NH), b = (int)(idx / T / NH);
      const int32_t* seg = segments ? segments + (size_t)b * T : nullptr;
      const int lo = first_same ? first_same[(size_t)b * T + t] : 0;
      const int n = allowed_keys(p, h, t, lo, seg, keys.data());
      const float* row0 = qkv + (size_t)b * T * C3;  // token 0 of this row
      lse[idx] = attend_query(out + ((size_t)b * T + t) * C + h * HS,
                              row0 + t * C3 + h * HS, row0 + C + h * HS, row0 + 2 * C + h * HS,
                              C3, keys.data(), n, HS, scores.data());
    }
  }
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* segments, const int32_t* first_same,
                        int B, int T, int C, int NH, const AttnPattern& p) {
  // dqkv (B,T,3C) written; dout and out (B,T,C); lse (B,NH,T).
  // With P = softmax(S), S = scale q.k:  dv_j += p_j dout,  ds_j = p_j (dout.v_j - dout.out),
  // dq += scale ds_j k_j,  dk_j += scale ds_j q.
  // Every query of a (b, h) adds into the same dk/dv rows, so a task is a whole (b, h): its
  // slices of dqkv belong to it alone and no atomics or per-thread copies are needed.
  const int HS = C / NH;
  const size_t C3 = (size_t)3 * C;
  const float scale = 1.0f / std::sqrt((float)HS);
#pragma omp parallel if ((long)B * NH * T * std::min(T, 256) * HS >= kParallelMinWork)
  {
    std::vector<float> probs(T);
    std::vector<int32_t> keys(T);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
      for (int h = 0; h < NH; h++) {
        const int32_t* seg = segments ? segments + (size_t)b * T : nullptr;
        const float* row0 = qkv + (size_t)b * T * C3;
        float* drow0 = dqkv + (size_t)b * T * C3;
        const float* kbase = row0 + C + h * HS;
        const float* vbase = row0 + 2 * C + h * HS;
        for (int t = 0; t < T; t++)
          for (int part = 0; part < 3; part++)
            std::fill_n(drow0 + t * C3 + part * C + h * HS, HS, 0.0f);

        for (int t = 0; t < T; t++) {
          const int lo = first_same ? first_same[(size_t)b * T + t] : 0;
          const int n = allowed_keys(p, h, t, lo, seg, keys.data());
          const float* q = row0 + t * C3 + h * HS;
          const float* o = out + ((size_t)b * T + t) * C + h * HS;
          const float* d = dout + ((size_t)b * T + t) * C + h * HS;
          const float l = lse[((size_t)b * NH + h) * T + t];
          float* dq = drow0 + t * C3 + h * HS;

          const float d_dot_o = dot(d, o, HS);
          for (int j = 0; j < n; j++)  // the forward's probabilities, bit for bit
            probs[j] = std::exp(dot(q, kbase + (size_t)keys[j] * C3, HS) * scale - l);
          for (int j = 0; j < n; j++) {
            const size_t kv = (size_t)keys[j] * C3;
            const float* k = kbase + kv;
            const float* v = vbase + kv;
            float* dk = drow0 + kv + C + h * HS;
            float* dv = drow0 + kv + 2 * C + h * HS;
            const float ds = probs[j] * (dot(d, v, HS) - d_dot_o) * scale;
            for (int c = 0; c < HS; c++) {
              dq[c] += ds * k[c];
              dk[c] += ds * q[c];
              dv[c] += probs[j] * d[c];
            }
          }
        }
      }
    }
  }
}

}  // namespace lcx::cpu
