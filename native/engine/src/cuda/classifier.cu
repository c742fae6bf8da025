// Fused classifier tail for one chunk of rows: softmax, cross-entropy and its gradient from
// fp32 logits, without ever holding (B*T, V) logits: the backend runs this chunk by chunk
// (logits chunk = lnf_out chunk x wte^T through cuBLASLt, then this, then the two backward
// products). One block per row, two passes over it: an online max and sum of exponentials
// (each thread rescales its sum when its max grows), then the gradient. A chunk's rows do not
// fit in L2 (50264 floats = 196 KiB a row), so each pass reads the row from memory: run 12's
// profile had the three-pass kernel at 1.8 TB/s.
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

__device__ __forceinline__ void online_add(float& m, float& sum, float x) {
  if (x > m) {
    sum = sum * __expf(m - x) + 1.f;  // exp(-inf) = 0 on the first element
    m = x;
  } else {
    sum += __expf(x - m);
  }
}

// ld % 4 == 0 and logits 16-byte aligned (the backend's rows are padded to 8): float4 loads for
// the first V / 4 * 4 columns, scalar for the rest.
__global__ void __launch_bounds__(512)
    classifier_kernel(const float* logits, bf16* dlogits, float* nll, const int32_t* targets,
                      float dscale, int V, int ld, bool vec) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const float* lr = logits + (size_t)row * ld;
  const int t = targets ? targets[row] : -1;
  const int v4 = vec ? V / 4 : 0;
  float m = -INFINITY, sum = 0.f;
  const float4* l4 = reinterpret_cast<const float4*>(lr);
  for (int i = threadIdx.x; i < v4; i += blockDim.x) {
    const float4 x = l4[i];
    online_add(m, sum, x.x);
    online_add(m, sum, x.y);
    online_add(m, sum, x.z);
    online_add(m, sum, x.w);
  }
  for (int i = 4 * v4 + threadIdx.x; i < V; i += blockDim.x) online_add(m, sum, lr[i]);
  const float mx = block_max(m, red);
  sum = block_sum(m == -INFINITY ? 0.f : sum * __expf(m - mx), red);
  const float lse = mx + logf(sum);
  if (threadIdx.x == 0 && nll) nll[row] = t >= 0 ? lse - lr[t] : 0.f;
  if (!dlogits) return;
  bf16* dr = dlogits + (size_t)row * ld;
  const float inv = 1.f / sum;
  auto grad = [&](float x, int i) { return t >= 0 ? (__expf(x - mx) * inv - (i == t ? 1.f : 0.f)) * dscale : 0.f; };
  for (int i = threadIdx.x; i < v4; i += blockDim.x) {
    const float4 x = l4[i];
    store_bf16x4(dr, i, make_float4(grad(x.x, 4 * i), grad(x.y, 4 * i + 1), grad(x.z, 4 * i + 2),
                                    grad(x.w, 4 * i + 3)));
  }
  for (int i = 4 * v4 + threadIdx.x; i < V; i += blockDim.x) dr[i] = __float2bfloat16_rn(grad(lr[i], i));
}

}  // namespace

void classifier_forward_backward(const float* logits, bf16* dlogits, float* nll,
                                 const int32_t* targets, float dscale, int R, int V, int ld,
                                 cudaStream_t s) {
  if (R == 0) return;
  const bool vec = ld % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0 &&
                   (!dlogits || reinterpret_cast<uintptr_t>(dlogits) % 8 == 0);
  classifier_kernel<<<R, 512, 0, s>>>(logits, dlogits, nll, targets, dscale, V, ld, vec);
  LCX_LAUNCH_CHECK();
}

}  // namespace lcx::cuda
