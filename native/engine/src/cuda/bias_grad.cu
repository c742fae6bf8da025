// Bias gradients: column sums of dout (N, OC) added to dbias (OC), in two deterministic passes
// (per-row-block partials, then a fixed-order reduction): the fc and qkv biases from bf16 matmul
// gradients; the output projections' biases from the fp32 residual gradient where the LayerNorm
// backward does not sum them itself (layernorm.cu).
#include <cstdlib>
#include <type_traits>

#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kRowBlocks = 128;

template <class T>
__global__ void colsum_partial_kernel(float* partial, const T* d, int N, int OC, int rows_per) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int rb = blockIdx.y;
  if (c >= OC) return;
  const int r0 = rb * rows_per, r1 = min(N, r0 + rows_per);
  float acc = 0.f;
  for (int r = r0; r < r1; r++) acc += to_f(d[(size_t)r * OC + c]);
  partial[(size_t)rb * OC + c] = acc;
}

__global__ void colsum_reduce_kernel(float* dbias, const float* partial, int nrb, int OC) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= OC) return;
  float acc = 0.f;
#pragma unroll 8
  for (int rb = 0; rb < nrb; rb++) acc += partial[(size_t)rb * OC + c];
  dbias[c] += acc;
}

// bf16 rows with OC % 8 == 0 (the fc and qkv biases: (N, 4C) and (N, 3C)): 16-byte loads of 8
// columns, a CTA of 32 column groups x 8 row lanes, the 8 lane sums added in order. The scalar
// kernel above loads 2 bytes per thread per row.
__global__ void __launch_bounds__(256)
    colsum_partial_bf16x8_kernel(float* partial, const bf16* d, int N, int OC, int rows_per) {
  __shared__ float acc[8][32 * 8 + 1];
  const int cg = threadIdx.x & 31, ry = threadIdx.x >> 5;
  const int c8 = blockIdx.x * 32 + cg, rb = blockIdx.y;
  const int r0 = rb * rows_per, r1 = min(N, r0 + rows_per);
  float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (c8 * 8 < OC) {
    const uint4* p = reinterpret_cast<const uint4*>(d) + c8;
    const size_t stride = OC / 8;
#pragma unroll 4
    for (int r = r0 + ry; r < r1; r += 8) {
      float f[8];
      unpack8(p[(size_t)r * stride], f);
#pragma unroll
      for (int k = 0; k < 8; k++) s[k] += f[k];
    }
  }
#pragma unroll
  for (int k = 0; k < 8; k++) acc[ry][cg * 8 + k] = s[k];
  __syncthreads();
  // 256 columns of this CTA, one per thread: the 8 row lanes in order.
  const int col = blockIdx.x * 256 + threadIdx.x;
  if (col < OC) {
    float t = 0.f;
    for (int y = 0; y < 8; y++) t += acc[y][threadIdx.x];
    partial[(size_t)rb * OC + col] = t;
  }
}

}  // namespace

size_t bias_grad_scratch(int OC) { return (size_t)kRowBlocks * OC; }

template <class T>
void bias_backward(float* dbias, float* scratch, const T* dout, int N, int OC, cudaStream_t s) {
  if (N == 0) return;
  const int nrb = N < kRowBlocks ? N : kRowBlocks;
  const int rows_per = ceil_div(N, nrb);
  // LCX_CUDA_BIAS_VEC=0 (read once, for A/B runs) keeps the scalar kernel.
  static const bool vec = [] {
    const char* env = std::getenv("LCX_CUDA_BIAS_VEC");
    return !(env && env[0] == '0');
  }();
  if (vec && std::is_same<T, bf16>::value && OC % 8 == 0 && reinterpret_cast<uintptr_t>(dout) % 16 == 0)
    colsum_partial_bf16x8_kernel<<<dim3(ceil_div(OC, 256), nrb), 256, 0, s>>>(
        scratch, reinterpret_cast<const bf16*>(dout), N, OC, rows_per);
  else
    colsum_partial_kernel<T><<<dim3(ceil_div(OC, 128), nrb), 128, 0, s>>>(scratch, dout, N, OC, rows_per);
  LCX_LAUNCH_CHECK();
  colsum_reduce_kernel<<<ceil_div(OC, 128), 128, 0, s>>>(dbias, scratch, nrb, OC);
  LCX_LAUNCH_CHECK();
}
template void bias_backward<float>(float*, float*, const float*, int, int, cudaStream_t);
template void bias_backward<bf16>(float*, float*, const bf16*, int, int, cudaStream_t);

}  // namespace lcx::cuda
