// Device-side helpers shared by the kernels: bf16 <-> fp32, 16-byte vector access, warp and
// block reductions. Host launchers check every launch with LCX_LAUNCH_CHECK (cuda_check.hpp).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.hpp"

namespace lcx::cuda {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <class T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16_rn(x); }

// Packed bf16: 8 values in a 16-byte word, 4 in an 8-byte one (i4 counts groups of 4).
__device__ __forceinline__ void unpack8(const uint4& r, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&r);
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const float2 t = __bfloat1622float2(h[i]);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}
__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
  uint4 r;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&r);
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return r;
}
__device__ __forceinline__ float4 load_bf16x4(const bf16* p, int i4) {
  const uint2 raw = reinterpret_cast<const uint2*>(p)[i4];
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
__device__ __forceinline__ void store_bf16x4(bf16* p, int i4, float4 v) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 raw;
  raw.x = *reinterpret_cast<uint32_t*>(&lo);
  raw.y = *reinterpret_cast<uint32_t*>(&hi);
  reinterpret_cast<uint2*>(p)[i4] = raw;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; every thread gets the result. `shared` holds >= 32 floats. Two calls in
// a row need a __syncthreads() between them (done here at entry).
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : 0.f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// GPT-2's gelu_new (tanh approximation), shared by the GELU kernels and the GEMV epilogue.
__device__ __forceinline__ float gelu_tanh(float x) {
  constexpr float kS2Pi = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.f + tanhf(kS2Pi * (x + 0.044715f * x * x * x)));
}

// Mean and 1/sqrt(var + eps) of one row held by a block, K values per thread at columns
// threadIdx.x + i * blockDim.x (zeros past C): two passes (mean, then squared deviations), as
// the one-row LayerNorm and the GEMV's LayerNorm prologue both need, bit for bit alike.
template <int K>
__device__ __forceinline__ void row_mean_rstd(const float (&v)[K], int C, float eps, float* red,
                                              float* mean, float* rstd) {
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < K; i++) sum += v[i];
  const float m = block_sum(sum, red) / C;
  float var = 0.f;
#pragma unroll
  for (int i = 0; i < K; i++)
    if ((int)threadIdx.x + i * (int)blockDim.x < C) var += (v[i] - m) * (v[i] - m);
  *mean = m;
  *rstd = rsqrtf(block_sum(var, red) / C + eps);
}

// 16-byte asynchronous copy global -> shared; src_bytes < 16 zero-fills the rest (0: all zeros,
// the source is not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes = 16) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   (uint32_t)__cvta_generic_to_shared(dst)),
               "l"(src), "r"(src_bytes));
}

// ---- programmatic dependent launch (PDL) ----
// A kernel launched with PDL (launch_k inside a PdlScope) may become resident while the kernel
// before it still runs: it can prefetch what no earlier kernel writes (weights, old K/V rows),
// then blocks in pdl_wait() until its predecessor has finished and its writes are visible. Every
// thread calls pdl_wait() before reading inputs or writing anything: a kernel whose threads all
// skipped it could finish before its predecessor, and its successor would then see stale data.
// Launched normally (or before sm_90) both calls do nothing.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Lets the next kernel's CTAs launch (they still wait for this whole grid in pdl_wait()).
__device__ __forceinline__ void pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <class... KernelArgs, class... Args>
void launch_k(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
              Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  LCX_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Args&&>(args)...));
}

// Counter-based random bits for stochastic rounding: the same (seed, index) always gives the
// same bits, so a run is reproducible from its seed.
__device__ __forceinline__ uint32_t hash_u32(uint64_t seed, uint64_t idx) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (idx + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (uint32_t)(z ^ (z >> 31));
}

// fp32 -> bf16 with stochastic rounding: add random bits below the bf16 mantissa, truncate.
// Unbiased, so tiny AdamW updates survive on average in bf16 master weights.
__device__ __forceinline__ bf16 bf16_stochastic(float x, uint32_t rnd) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return __float2bfloat16_rn(x);  // inf / nan as is
  u += (rnd & 0xffffu);
  u &= 0xffff0000u;
  return __ushort_as_bfloat16((unsigned short)(u >> 16));
}

inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

}  // namespace lcx::cuda
