// Host launchers of the CUDA backend's kernels, one layer per .cu file (llm.c style), forward
// and backward side by side. Shapes: B batch rows, T tokens, C channels, V vocab, N = B*T rows.
// Every launcher takes the stream and checks its launch; none synchronises.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace lcx::cuda {

using bf16 = __nv_bfloat16;

// ---- encoder.cu: x (N,C) fp32 = wte[token] + wpe[pos]
template <class P>
void encoder_forward(float* x, const int32_t* tokens, const int32_t* pos, const P* wte,
                     const P* wpe, int N, int C, cudaStream_t s);
// Deterministic scatter-add for an embedding table: rows of dx grouped by the table row they
// hit (host-sorted buckets): dtable[uniq[u]] += sum over rows[starts[u]..starts[u+1]) of dx.
void embedding_backward(float* dtable, const float* dx, const int32_t* uniq, const int32_t* starts,
                        const int32_t* rows, int U, int C, cudaStream_t s);

// ---- layernorm.cu
// out (N,C) bf16 = LN(x) * w + b; mean, rstd (N) saved for backward (may be nullptr).
// If add_bias != nullptr, first x += add_bias in place (the residual's pending projection bias).
template <class P>
void layernorm_forward(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                       const P* w, const P* b, int N, int C, float eps, cudaStream_t s);
// dx (N,C) fp32 += LN backward of dout (bf16); dw, db (C) fp32 += weight/bias gradients.
// Optional (nullptr = skip): dx16 (N,C) = the updated dx in bf16 (may alias dout), dbias (C) +=
// column sums of the updated dx. scratch holds layernorm_backward_scratch(C) floats.
// LCX_CUDA_LN_FUSED=0 at start runs the unfused kernels (same sums, other order).
template <class P>
void layernorm_backward(float* dx, float* dw, float* db, bf16* dx16, float* dbias, float* scratch,
                        const bf16* dout, const float* x, const float* mean, const float* rstd,
                        const P* w, int N, int C, cudaStream_t s);
size_t layernorm_backward_scratch(int C);

// ---- gelu.cu (tanh approximation, GPT-2's gelu_new)
void gelu_forward(bf16* out, const bf16* in, size_t n, cudaStream_t s);
// d (in place) = d * gelu'(in)
void gelu_backward_inplace(bf16* d, const bf16* in, size_t n, cudaStream_t s);

// ---- bias_grad.cu: dbias (OC) += column sums of dout (N, OC); scratch bias_grad_scratch(OC)
template <class T>
void bias_backward(float* dbias, float* scratch, const T* dout, int N, int OC, cudaStream_t s);
size_t bias_grad_scratch(int OC);

// ---- convert.cu
void f32_to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s);
void bf16_to_f32(float* out, const bf16* in, size_t n, cudaStream_t s);

// ---- classifier.cu: for R rows of fp32 logits (R, V) with row stride ld: nll[r] = logsumexp - logit[target]
// (0 where target < 0); if dlogits != nullptr, dlogits (R,V) bf16 = (softmax - onehot) * dscale
// for scored rows and 0 otherwise.
void classifier_forward_backward(const float* logits, bf16* dlogits, float* nll,
                                 const int32_t* targets, float dscale, int R, int V, int ld,
                                 cudaStream_t s);

// ---- gemv.cu: out (OC) = W (OC, IC) x for one activation row (decoding), bf16 W and x.
// Needs gemv_ok (IC % 8 == 0, W and x 16-byte aligned).
enum GemvMode {
  GEMV_BF16 = 0,       // bf16 out (+ bias, may be nullptr); with kcache: K/V rows also appended
  GEMV_RESIDUAL = 1,   // fp32 out = resid + W x (+ res_bias)
  GEMV_F32 = 2,        // fp32 out = W x
  GEMV_BF16_GELU = 3,  // bf16 out = gelu(W x + bias)
};
struct GemvArgs {
  void* out;
  const float* resid;
  const bf16* w;
  const bf16* x;
  const bf16* bias;
  int IC, OC;
  // GEMV_BF16 on the fused qkv row (OC = 3 C): rows [C, 2C) also go to kcache and [2C, 3C) to
  // vcache at row `len` (or *dev_len in the decode graph) of a C-wide cache.
  bf16* kcache;
  bf16* vcache;
  int C, len;
  const int* dev_len;
  // Decode fusions (generation, one row). ln_x != nullptr (GEMV_BF16, GEMV_BF16_GELU; needs
  // gemv_ln_ok): x is not read; every CTA computes x = LayerNorm(ln_x) * ln_w + ln_b from the
  // fp32 residual row, rounded to bf16 exactly as layernorm_forward would. res_bias
  // (GEMV_RESIDUAL, may be nullptr): the output projection's bias, added after the residual sum.
  // ln_w, ln_b, res_bias are fp32, or bf16 when p_bf16 (the backend's master dtype).
  const float* ln_x;
  const void *ln_w, *ln_b, *res_bias;
  float ln_eps;
  bool p_bf16;
};
bool gemv_ok(const void* w, const void* x, int IC);
// The LayerNorm prologue: IC % 8 == 0, IC <= 4096, ln_w and ln_b 16-byte aligned.
bool gemv_ln_ok(const void* ln_w, const void* ln_b, int IC);
void gemv_bf16(int mode, const GemvArgs& a, cudaStream_t s);
void gemv_bf16(int mode, void* out, const float* resid, const bf16* w, const bf16* x,
               const bf16* bias, int IC, int OC, cudaStream_t s);

// ---- adamw.cu
// Per-block partial sums of squares (double) of g[0..n): writes grad_norm_blocks() values to
// partial. G = float or bf16 (bf16 layer-matrix gradients).
int grad_norm_blocks();
template <class G>
void grad_sumsq(double* partial, const G* g, size_t n, cudaStream_t s);
// AdamW on one tensor. g is multiplied by gscale (clipping) first. P = float (fp32 master) or
// bf16 (bf16 master, stochastically rounded with seed/offset); G = float or bf16 (gradients).
// w16 != nullptr: also writes the new weights rounded to bf16 there (may alias g).
template <class P, class G>
void adamw_update(P* p, const G* g, float* m, float* v, size_t n, float lr, float beta1,
                  float beta2, float eps, float wd, float gscale, int64_t step, uint64_t seed,
                  uint64_t offset, cudaStream_t s, bf16* w16 = nullptr);

}  // namespace lcx::cuda
