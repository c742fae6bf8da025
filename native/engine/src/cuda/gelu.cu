// GELU, tanh approximation (GPT-2's gelu_new): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr float kS2Pi = 0.7978845608028654f;  // sqrt(2 / pi)

__global__ void gelu_fwd_kernel(bf16* out, const bf16* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float x = __bfloat162float(in[i]);
    const float u = kS2Pi * (x + 0.044715f * x * x * x);
    out[i] = __float2bfloat16_rn(0.5f * x * (1.f + tanhf(u)));
  }
}

__global__ void gelu_bwd_kernel(bf16* d, const bf16* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float x = __bfloat162float(in[i]);
    const float u = kS2Pi * (x + 0.044715f * x * x * x);
    const float th = tanhf(u);
    const float du = kS2Pi * (1.f + 3.f * 0.044715f * x * x);
    const float grad = 0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * du;
    d[i] = __float2bfloat16_rn(__bfloat162float(d[i]) * grad);
  }
}

int grid_for(size_t n) {
  const size_t b = (n + 255) / 256;
  return (int)(b < 65536 ? (b ? b : 1) : 65536);
}

}  // namespace

void gelu_forward(bf16* out, const bf16* in, size_t n, cudaStream_t s) {
  if (!n) return;
  gelu_fwd_kernel<<<grid_for(n), 256, 0, s>>>(out, in, n);
  LCX_LAUNCH_CHECK();
}

void gelu_backward_inplace(bf16* d, const bf16* in, size_t n, cudaStream_t s) {
  if (!n) return;
  gelu_bwd_kernel<<<grid_for(n), 256, 0, s>>>(d, in, n);
  LCX_LAUNCH_CHECK();
}

}  // namespace lcx::cuda
