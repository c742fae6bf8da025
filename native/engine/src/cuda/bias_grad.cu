// Bias gradients: column sums of dout (N, OC) added to dbias (OC), in two deterministic passes
// (per-row-block partials, then a fixed-order reduction). The output bias of the attention and
// MLP projections sums the fp32 residual gradient; the others sum bf16 matmul gradients.
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
  for (int rb = 0; rb < nrb; rb++) acc += partial[(size_t)rb * OC + c];
  dbias[c] += acc;
}

}  // namespace

size_t bias_grad_scratch(int OC) { return (size_t)kRowBlocks * OC; }

template <class T>
void bias_backward(float* dbias, float* scratch, const T* dout, int N, int OC, cudaStream_t s) {
  if (N == 0) return;
  const int nrb = N < kRowBlocks ? N : kRowBlocks;
  const int rows_per = ceil_div(N, nrb);
  colsum_partial_kernel<T><<<dim3(ceil_div(OC, 128), nrb), 128, 0, s>>>(scratch, dout, N, OC, rows_per);
  LCX_LAUNCH_CHECK();
  colsum_reduce_kernel<<<ceil_div(OC, 128), 128, 0, s>>>(dbias, scratch, nrb, OC);
  LCX_LAUNCH_CHECK();
}
template void bias_backward<float>(float*, float*, const float*, int, int, cudaStream_t);
template void bias_backward<bf16>(float*, float*, const bf16*, int, int, cudaStream_t);

}  // namespace lcx::cuda
