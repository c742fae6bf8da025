// AdamW (decoupled weight decay, bias-corrected moments) and the global gradient norm.
// fp32 master weights, or bf16 master weights written back with stochastic rounding (unbiased,
// so updates smaller than a bf16 ulp still move the weights on average), seeded per step.
// Gradients are fp32, or bf16 for the layer matrices (lcx_train_config.grad_dtype): both are read
// as fp32, so the update arithmetic is the same. w16 (optional) receives the new fp32 weights
// rounded to bf16, the same bits f32_to_bf16 would give; it may be the gradient itself (each
// element is read before it is written), see the bf16 weights in cuda_backend.cpp.
#include <cmath>

#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kNormBlocks = 1024;  // fixed partition: the norm is the same bits every run

// 16-byte loads where the buffer is aligned (the run-12 profile had the scalar loop at 1.3 TB/s
// over the 2.4 GB of bf16 gradients), then the tail; each thread's share is fixed by the grid.
__device__ __forceinline__ double sumsq16(uint4 raw, const float*) {
  const float4 f = *reinterpret_cast<const float4*>(&raw);
  return ((double)f.x * f.x + (double)f.y * f.y) + ((double)f.z * f.z + (double)f.w * f.w);
}
__device__ __forceinline__ double sumsq16(uint4 raw, const bf16*) {
  float f[8];
  unpack8(raw, f);
  double acc = 0.0;
#pragma unroll
  for (int k = 0; k < 4; k++) acc += (double)f[2 * k] * f[2 * k] + (double)f[2 * k + 1] * f[2 * k + 1];
  return acc;
}

template <class G>
__global__ void sumsq_kernel(double* partial, const G* g, size_t n) {
  __shared__ double red[32];
  double acc = 0.0;
  constexpr size_t W = 16 / sizeof(G);
  const size_t tid = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)gridDim.x * blockDim.x;
  const size_t nv = reinterpret_cast<uintptr_t>(g) % 16 == 0 ? n / W : 0;
  const uint4* g16 = reinterpret_cast<const uint4*>(g);
  for (size_t i = tid; i < nv; i += stride) acc += sumsq16(g16[i], g);
  for (size_t i = nv * W + tid; i < n; i += stride) {
    const double v = to_f(g[i]);
    acc += v * v;
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = acc;
  __syncthreads();
  if (warp == 0) {
    acc = lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) partial[blockIdx.x] = acc;
  }
}

__device__ __forceinline__ void store_param(float* p, size_t i, float v, uint64_t, uint64_t) { p[i] = v; }
__device__ __forceinline__ void store_param(bf16* p, size_t i, float v, uint64_t seed, uint64_t off) {
  p[i] = bf16_stochastic(v, hash_u32(seed, off + i));
}

template <class P, class G>
__global__ void adamw_kernel(P* p, const G* g, float* m, float* v, bf16* w16, size_t n, float lr,
                             float b1, float b2, float eps, float wd, float gscale, float bc1,
                             float bc2, uint64_t seed, uint64_t offset) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float grad = to_f(g[i]) * gscale;
    const float mi = b1 * m[i] + (1.f - b1) * grad;
    const float vi = b2 * v[i] + (1.f - b2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    const float w = to_f(p[i]);
    const float upd = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * w;
    const float nw = w - lr * upd;
    store_param(p, i, nw, seed, offset);
    if (w16) w16[i] = __float2bfloat16_rn(nw);
  }
}

}  // namespace

int grad_norm_blocks() { return kNormBlocks; }

template <class G>
void grad_sumsq(double* partial, const G* g, size_t n, cudaStream_t s) {
  sumsq_kernel<G><<<kNormBlocks, 256, 0, s>>>(partial, g, n);
  LCX_LAUNCH_CHECK();
}
template void grad_sumsq<float>(double*, const float*, size_t, cudaStream_t);
template void grad_sumsq<bf16>(double*, const bf16*, size_t, cudaStream_t);

template <class P, class G>
void adamw_update(P* p, const G* g, float* m, float* v, size_t n, float lr, float beta1,
                  float beta2, float eps, float wd, float gscale, int64_t step, uint64_t seed,
                  uint64_t offset, cudaStream_t s, bf16* w16) {
  if (!n) return;
  const double bc1 = 1.0 - std::pow((double)beta1, (double)step);
  const double bc2 = 1.0 - std::pow((double)beta2, (double)step);
  const size_t blocks = (n + 255) / 256;
  adamw_kernel<P, G><<<(int)(blocks < 65536 ? blocks : 65536), 256, 0, s>>>(
      p, g, m, v, w16, n, lr, beta1, beta2, eps, wd, gscale, (float)bc1, (float)bc2, seed, offset);
  LCX_LAUNCH_CHECK();
}

#define LCX_ADAMW_INST(P, G)                                                                 \
  template void adamw_update<P, G>(P*, const G*, float*, float*, size_t, float, float, float, \
                                   float, float, float, int64_t, uint64_t, uint64_t,          \
                                   cudaStream_t, bf16*);
LCX_ADAMW_INST(float, float)
LCX_ADAMW_INST(bf16, float)
LCX_ADAMW_INST(float, bf16)
LCX_ADAMW_INST(bf16, bf16)

}  // namespace lcx::cuda
