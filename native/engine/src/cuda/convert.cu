// fp32 <-> bf16 copies: staging one layer's matrices in bf16 from fp32 master weights (so the
// full model never needs a second, bf16 copy), and parameter export in bf16-master mode.
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

__global__ void f2b_kernel(bf16* out, const float* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}
__global__ void b2f_kernel(float* out, const bf16* in, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = __bfloat162float(in[i]);
}
int grid_for(size_t n) {
  const size_t b = (n + 255) / 256;
  return (int)(b < 65536 ? (b ? b : 1) : 65536);
}

}  // namespace

void f32_to_bf16(bf16* out, const float* in, size_t n, cudaStream_t s) {
  if (!n) return;
  f2b_kernel<<<grid_for(n), 256, 0, s>>>(out, in, n);
  LCX_LAUNCH_CHECK();
}
void bf16_to_f32(float* out, const bf16* in, size_t n, cudaStream_t s) {
  if (!n) return;
  b2f_kernel<<<grid_for(n), 256, 0, s>>>(out, in, n);
  LCX_LAUNCH_CHECK();
}

}  // namespace lcx::cuda
