// The fp32 layers of the CPU reference backend. One file per layer, forward and backward side
// by side; this header is their table of contents. Shapes use longctx.h's vocabulary: N = B*T
// rows, C channels, F = n_inner, V vocabulary, NH heads of HS = C/NH channels.
//
// Conventions shared by every backward: gradients of parameters are accumulated (+=), because
// micro-batches add into the same gradient buffers; gradients of activations are either written
// (=, when the buffer is fresh) or accumulated, as each function says.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lcx::cpu {

// Work (multiply-adds, or elements for elementwise layers) below which a layer runs on one
// thread. Under it the fork/join costs more than the work, and on a busy 2-core machine an
// OpenMP thread that spins waiting for a descheduled sibling can make a tiny op 100x slower.
constexpr long kParallelMinWork = 1L << 16;

// ---- matmul.cpp: every linear layer, weights stored (out, in) row-major --------------------
// out (N,OC) = inp (N,IC) . weight(OC,IC)^T + bias(OC); bias may be null.
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int N,
                    int IC, int OC);
// dinp (N,IC) = dout . weight (written, may be null); dweight (OC,IC) += dout^T . inp;
// dbias (OC) += column sums of dout (may be null).
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int N, int IC, int OC);

// ---- layernorm.cpp ----------------------------------------------------------------------
// out (N,C); mean, rstd (N) saved for the backward (may be null for inference).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                       const float* weight, const float* bias, int N, int C, float eps);
// dinp (N,C) += ...; dweight, dbias (C) += ...
void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                        const float* inp, const float* weight, const float* mean,
                        const float* rstd, int N, int C);

// ---- gelu.cpp (tanh approximation, as GPT-2) ------------------------------------------------
void gelu_forward(float* out, const float* inp, size_t n);
// dinp = gelu'(inp) * dout (written; dinp may alias dout).
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n);

// ---- encoder.cpp: token + position embeddings -----------------------------------------------
// out (N,C) = wte[tokens] + wpe[pos]
void encoder_forward(float* out, const int32_t* tokens, const int32_t* pos, const float* wte,
                     const float* wpe, int N, int C);
// dwte, dwpe += scatter of dout (N,C)
void encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                      const int32_t* pos, int N, int C);

// out (n) += inp (n): the residual stream.
void residual_add(float* out, const float* inp, size_t n);

// ---- attention.cpp ------------------------------------------------------------------------
// A DeepSpeed block layout in the form the kernels walk: for each (head, query block), the key
// blocks it may see, ascending (CSR). Built once per configure() from fixed_sparse_layout.
struct BlockLayout {
  int n_head = 0, nb = 0, block = 0;
  std::vector<uint8_t> dense;         // (NH, nb, nb) as fixed_sparse_layout returns it
  std::vector<int32_t> row_start;     // (NH*nb + 1)
  std::vector<int32_t> key_blocks;    // concatenated rows
  void build(std::vector<uint8_t> layout, int n_head, int nb, int block);
};

// What one layer's attention may see. The mask itself is config.hpp's attends(); the kernels
// enumerate exactly the keys attends() allows, without visiting the others.
struct AttnPattern {
  int kind = 0;                        // lcx_attn_kind
  int window = 0;                      // LCX_ATTN_WINDOW
  const BlockLayout* layout = nullptr; // LCX_ATTN_SPARSE
};

// For each token of a row (T), the first index of the row with the same segment id: no key
// below it can be in the same document, so enumeration starts there. (Segments are normally
// contiguous runs; a repeated id further on still works, its gap is skipped key by key.)
void document_starts(const int32_t* seg_row, int T, int32_t* first_same);

// Keys (ascending) that query q of head h may attend, written to keys; returns their count.
// lo = first_same[q] (0 without segments); seg_row may be null.
int allowed_keys(const AttnPattern& p, int h, int q, int lo, const int32_t* seg_row,
                 int32_t* keys);

// softmax(scale * q . k_j) weighted sum of v_j over the n listed keys, for one head of one
// query. k_j lives at kbase + keys[j]*kv_stride (same for v). scores: n floats of scratch.
// Returns the log-sum-exp of the scaled scores (what the backward needs to rebuild the
// probabilities). Shared by the full forward and the KV-cached decoder so both give one answer.
float attend_query(float* out, const float* q, const float* kbase, const float* vbase,
                   size_t kv_stride, const int32_t* keys, int n, int HS, float* scores);

// out (B,T,C) from qkv (B,T,3C); lse (B,NH,T) saved for the backward.
// segments, first_same: (B,T) or both null.
void attention_forward(float* out, float* lse, const float* qkv, const int32_t* segments,
                       const int32_t* first_same, int B, int T, int C, int NH,
                       const AttnPattern& p);
// dqkv (B,T,3C) written, from dout (B,T,C).
void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                        const float* lse, const int32_t* segments, const int32_t* first_same,
                        int B, int T, int C, int NH, const AttnPattern& p);

// ---- classifier.cpp: tied lm_head + softmax cross-entropy, chunked --------------------------
// Scores the rows of x (N,C) that have a target (targets[n] >= 0) without ever holding (N,V)
// logits: rows go through in chunks of chunk_rows using scratch (chunk_rows*(V + 2C) floats).
// nll (N, may be null) gets each row's NLL (0 where not scored). When dx is not null this is
// also the backward: dx (N,C) is written (0 for unscored rows), dwte (V,C) +=, both for the
// loss dloss_scale * sum(NLL). Returns sum(NLL) over scored rows.
double classifier_chunked(float* nll, float* dx, float* dwte, const float* x,
                          const int32_t* targets, const float* wte, int N, int C, int V,
                          float dloss_scale, float* scratch, int chunk_rows);
// nll (N) from logits the caller already has (N,V); 0 where targets[n] < 0. Returns the sum.
double nll_from_logits(float* nll, const float* logits, const int32_t* targets, int N, int V);
// Rows per chunk for a vocabulary, so a chunk of logits stays around 16 MB.
int classifier_chunk_rows(int V, int N);

// ---- adamw.cpp --------------------------------------------------------------------------
// sum of squares in double, in a fixed order (same answer for any thread count).
double sum_squares(const float* x, size_t n);
// One AdamW update of n parameters; t is the step number after increment (>= 1).
void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                  int64_t t);

}  // namespace lcx::cpu
