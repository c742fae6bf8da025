// cuBLASLt matmuls for the CUDA backend: bf16 operands, fp32 accumulation, bf16 or fp32 output,
// optional epilogues on bf16 outputs (bias; bias + GELU, storing the pre-activation; GELU's
// gradient) and beta-accumulation into the output (the fp32 residual stream, fp32 or bf16 weight
// gradients). Row-major helpers in llm.c's vocabulary sit on top.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

namespace lcx::cuda {

using bf16 = __nv_bfloat16;
class DeviceAllocator;

class Matmul {
 public:
  explicit Matmul(DeviceAllocator& alloc);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // Column-major core: D (m x n, ldd) = alpha op(A) op(B) + beta C [+ bias(m)], C has D's type
  // and layout (c may equal d; c ignored when beta == 0). op(A) is m x k, op(B) is k x n.
  void gemm(void* d, bool d_fp32, const void* c, const bf16* a, bool ta, int lda, const bf16* b,
            bool tb, int ldb, int m, int n, int k, int ldd, float alpha, float beta,
            const bf16* bias, cudaStream_t s);

  // out (N, OC) = inp (N, IC) W (OC, IC)^T [+ bias], bf16 out.
  void linear_bf16(bf16* out, const bf16* inp, const bf16* w, const bf16* bias, int N, int IC,
                   int OC, cudaStream_t s);
  // out (N, OC) = gelu(inp W^T + bias), bf16; pre (nullable) also gets inp W^T + bias, the
  // backward's input. One product instead of a product and a GELU pass over its output (the MLP
  // activation is the largest tensor of a layer). GELU is GPT-2's tanh form in both paths.
  void linear_gelu(bf16* out, bf16* pre, const bf16* inp, const bf16* w, const bf16* bias, int N,
                   int IC, int OC, cudaStream_t s);
  // out (N, OC) fp32 = resid (N, OC) fp32 + inp W^T   (the residual add, bias comes later)
  void linear_residual(float* out, const float* resid, const bf16* inp, const bf16* w, int N,
                       int IC, int OC, cudaStream_t s);
  // out (N, OC) fp32 = inp W^T (logits)
  void linear_f32(float* out, const bf16* inp, const bf16* w, int N, int IC, int OC, cudaStream_t s);
  // dinp (N, IC) bf16 = dout (N, OC) W (OC, IC)
  void linear_dinp(bf16* dinp, const bf16* dout, const bf16* w, int N, int IC, int OC, cudaStream_t s);
  // dinp (N, IC) bf16 = (dout (N, OC) W (OC, IC)) * gelu'(pre), pre (N, IC) as linear_gelu
  // stored it: the GELU backward inside the product's epilogue.
  void linear_dinp_dgelu(bf16* dinp, const bf16* dout, const bf16* w, const bf16* pre, int N, int IC,
                         int OC, cudaStream_t s);
  // dw (OC, IC) fp32 += dout^T inp
  void linear_dw(float* dw, const bf16* dout, const bf16* inp, int N, int IC, int OC, cudaStream_t s);
  // dw (OC, IC) bf16 += dout^T inp: accumulated in fp32, the sum rounded once to bf16
  void linear_dw(bf16* dw, const bf16* dout, const bf16* inp, int N, int IC, int OC, cudaStream_t s);

 private:
  // bf16-output epilogues beyond gemm's bias: GELU (aux = where the pre-activation goes, may be
  // null) and GELU's gradient (aux = the pre-activation read).
  enum class Act { none, gelu, dgelu };
  bool run(void* d, bool d_fp32, const void* c, const bf16* a, bool ta, int lda, const bf16* b,
           bool tb, int ldb, int m, int n, int k, int ldd, float alpha, float beta, const bf16* bias,
           Act act, const bf16* aux, cudaStream_t s);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lcx::cuda
