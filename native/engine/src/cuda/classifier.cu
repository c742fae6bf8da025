// Fused classifier tail for one chunk of rows: softmax, cross-entropy and its gradient from
// fp32 logits, without ever holding (B*T, V) logits: the backend runs this chunk by chunk
// (logits chunk = lnf_out chunk x wte^T through cuBLASLt, then this, then the two backward
// products). One block per row; the row (V floats) is read three times, from L2 mostly.
#include "common.cuh"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {

__global__ void classifier_kernel(const float* logits, bf16* dlogits, float* nll,
                                  const int32_t* targets, float dscale, int V, int ld) {
  __shared__ float red[32];
  const int row = blockIdx.x;
  const float* lr = logits + (size_t)row * ld;
  const int t = targets ? targets[row] : -1;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, lr[i]);
  mx = block_max(mx, red);
  float sum = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(lr[i] - mx);
  sum = block_sum(sum, red);
  const float lse = mx + logf(sum);
  if (threadIdx.x == 0 && nll) nll[row] = t >= 0 ? lse - lr[t] : 0.f;
  if (!dlogits) return;
  bf16* dr = dlogits + (size_t)row * ld;
  const float inv = 1.f / sum;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    float d = 0.f;
    if (t >= 0) d = (expf(lr[i] - mx) * inv - (i == t ? 1.f : 0.f)) * dscale;
    dr[i] = __float2bfloat16_rn(d);
  }
}

}  // namespace

void classifier_forward_backward(const float* logits, bf16* dlogits, float* nll,
                                 const int32_t* targets, float dscale, int R, int V, int ld,
                                 cudaStream_t s) {
  if (R == 0) return;
  classifier_kernel<<<R, 512, 0, s>>>(logits, dlogits, nll, targets, dscale, V, ld);
  LCX_LAUNCH_CHECK();
}

}  // namespace lcx::cuda
