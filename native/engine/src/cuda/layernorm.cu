// LayerNorm over C channels of fp32 residual rows, bf16 output (the next matmul's operand).
// Forward optionally adds a pending bias to the residual first: the attention and MLP output
// projections write x + y with cuBLASLt's beta = 1 (fp32 residual, no bias epilogue on fp32
// outputs), and their bias lands here, fused with the normalisation that reads x anyway.
// Backward: dx by one warp per row; dw/db by a column-parallel pass with per-row-block partial
// sums reduced in a fixed order (deterministic, no atomics).
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

constexpr int kRowBlocks = 128;  // partial sums for weight gradients: fixed, so deterministic

template <class P>
__global__ void ln_fwd_kernel(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                              const P* w, const P* b, int N, int C, float eps) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  float* xr = x + (size_t)row * C;
  float sum = 0.f;
  for (int c = lane; c < C; c += 32) {
    float v = xr[c];
    if (add_bias) {
      v += to_f(add_bias[c]);
      xr[c] = v;  // each lane re-reads only its own columns below
    }
    sum += v;
  }
  const float m = warp_sum(sum) / C;
  float var = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = xr[c] - m;
    var += d * d;
  }
  const float rs = rsqrtf(warp_sum(var) / C + eps);
  bf16* orow = out + (size_t)row * C;
  for (int c = lane; c < C; c += 32)
    orow[c] = __float2bfloat16_rn((xr[c] - m) * rs * to_f(w[c]) + to_f(b[c]));
  if (lane == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = rs;
  }
}

// Few rows (decoding: N = 1): one 256-thread block per row, the row held in registers. The
// warp-per-row kernel above walks a 2048-wide row in 64 dependent load steps per pass (3 passes),
// tens of microseconds per call with one row, twice per layer; here each thread issues its <= 16
// loads at once and the block reduces. The LayerNorm parameters are read before pdl_wait (no
// kernel of the decode graph writes them), and every load of x and of the pending bias is issued
// before the first store: with a store to x between them the compiler must assume the bias may
// alias x, and the loads became 16 dependent round trips (run 7's profile: 9.7 us per call).
constexpr int kLnRowThreads = 256, kLnRowMax = 16;  // C <= 4096
template <class P>
__global__ void __launch_bounds__(kLnRowThreads)
    ln_fwd_row_kernel(bf16* out, float* mean, float* rstd, float* x, const P* add_bias, const P* w,
                      const P* b, int C, float eps) {
  __shared__ float red[32];
  float wv[kLnRowMax], bv[kLnRowMax];
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    wv[i] = c < C ? to_f(w[c]) : 0.f;
    bv[i] = c < C ? to_f(b[c]) : 0.f;
  }
  pdl_release();
  pdl_wait();  // x is the previous kernel's output (decode graph: launched with PDL)
  const int row = blockIdx.x;
  float* xr = x + (size_t)row * C;
  float v[kLnRowMax];
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    v[i] = c < C ? xr[c] : 0.f;
  }
  if (add_bias) {
    float ab[kLnRowMax];
#pragma unroll
    for (int i = 0; i < kLnRowMax; i++) {
      const int c = threadIdx.x + i * kLnRowThreads;
      ab[i] = c < C ? to_f(add_bias[c]) : 0.f;
    }
#pragma unroll
    for (int i = 0; i < kLnRowMax; i++) {
      const int c = threadIdx.x + i * kLnRowThreads;
      v[i] += ab[i];
      if (c < C) xr[c] = v[i];
    }
  }
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) sum += v[i];
  const float m = block_sum(sum, red) / C;
  float var = 0.f;
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    if (c < C) var += (v[i] - m) * (v[i] - m);
  }
  const float rs = rsqrtf(block_sum(var, red) / C + eps);
  bf16* orow = out + (size_t)row * C;
#pragma unroll
  for (int i = 0; i < kLnRowMax; i++) {
    const int c = threadIdx.x + i * kLnRowThreads;
    if (c < C) orow[c] = __float2bfloat16_rn((v[i] - m) * rs * wv[i] + bv[i]);
  }
  if (threadIdx.x == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = rs;
  }
}

// dx += rstd * (dn - mean(dn) - xhat * mean(dn * xhat)),  dn = dout * w
template <class P>
__global__ void ln_bwd_dx_kernel(float* dx, const bf16* dout, const float* x, const float* mean,
                                 const float* rstd, const P* w, int N, int C) {
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= N) return;
  const float m = mean[row], rs = rstd[row];
  const float* xr = x + (size_t)row * C;
  const bf16* dr = dout + (size_t)row * C;
  float s1 = 0.f, s2 = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float dn = __bfloat162float(dr[c]) * to_f(w[c]);
    s1 += dn;
    s2 += dn * (xr[c] - m) * rs;
  }
  s1 = warp_sum(s1) / C;
  s2 = warp_sum(s2) / C;
  float* dxr = dx + (size_t)row * C;
  for (int c = lane; c < C; c += 32) {
    const float dn = __bfloat162float(dr[c]) * to_f(w[c]);
    const float xh = (xr[c] - m) * rs;
    dxr[c] += rs * (dn - s1 - xh * s2);
  }
}

// partial[rb][c] = sum over rows of row-block rb of dout * xhat; partial[rb][C + c] = of dout.
__global__ void ln_bwd_dw_kernel(float* partial, const bf16* dout, const float* x,
                                 const float* mean, const float* rstd, int N, int C, int rows_per) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int rb = blockIdx.y;
  if (c >= C) return;
  const int r0 = rb * rows_per, r1 = min(N, r0 + rows_per);
  float aw = 0.f, ab = 0.f;
  for (int r = r0; r < r1; r++) {
    const float d = __bfloat162float(dout[(size_t)r * C + c]);
    aw += d * (x[(size_t)r * C + c] - mean[r]) * rstd[r];
    ab += d;
  }
  partial[(size_t)rb * 2 * C + c] = aw;
  partial[(size_t)rb * 2 * C + C + c] = ab;
}

__global__ void ln_bwd_reduce_kernel(float* dw, float* db, const float* partial, int nrb, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float aw = 0.f, ab = 0.f;
  for (int rb = 0; rb < nrb; rb++) {
    aw += partial[(size_t)rb * 2 * C + c];
    ab += partial[(size_t)rb * 2 * C + C + c];
  }
  dw[c] += aw;
  db[c] += ab;
}

}  // namespace

size_t layernorm_backward_scratch(int C) { return (size_t)kRowBlocks * 2 * C; }

template <class P>
void layernorm_forward(bf16* out, float* mean, float* rstd, float* x, const P* add_bias,
                       const P* w, const P* b, int N, int C, float eps, cudaStream_t s) {
  if (N == 0) return;
  if (N <= 64 && C <= kLnRowThreads * kLnRowMax) {  // decoding: latency, not throughput
    launch_k(ln_fwd_row_kernel<P>, dim3(N), dim3(kLnRowThreads), 0, s, out, mean, rstd, x, add_bias, w, b, C, eps);
    return;
  }
  ln_fwd_kernel<P><<<ceil_div(N, 8), 256, 0, s>>>(out, mean, rstd, x, add_bias, w, b, N, C, eps);
  LCX_LAUNCH_CHECK();
}

template <class P>
void layernorm_backward(float* dx, float* dw, float* db, float* scratch, const bf16* dout,
                        const float* x, const float* mean, const float* rstd, const P* w, int N,
                        int C, cudaStream_t s) {
  if (N == 0) return;
  ln_bwd_dx_kernel<P><<<ceil_div(N, 8), 256, 0, s>>>(dx, dout, x, mean, rstd, w, N, C);
  LCX_LAUNCH_CHECK();
  const int nrb = N < kRowBlocks ? N : kRowBlocks;
  const int rows_per = ceil_div(N, nrb);
  ln_bwd_dw_kernel<<<dim3(ceil_div(C, 128), nrb), 128, 0, s>>>(scratch, dout, x, mean, rstd, N, C,
                                                                rows_per);
  LCX_LAUNCH_CHECK();
  ln_bwd_reduce_kernel<<<ceil_div(C, 128), 128, 0, s>>>(dw, db, scratch, nrb, C);
  LCX_LAUNCH_CHECK();
}

#define LCX_LN_INST(P)                                                                      \
  template void layernorm_forward<P>(bf16*, float*, float*, float*, const P*, const P*,     \
                                     const P*, int, int, float, cudaStream_t);              \
  template void layernorm_backward<P>(float*, float*, float*, float*, const bf16*,          \
                                      const float*, const float*, const float*, const P*,   \
                                      int, int, cudaStream_t);
LCX_LN_INST(float)
LCX_LN_INST(bf16)

}  // namespace lcx::cuda
