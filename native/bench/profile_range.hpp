// The region an external profiler records (`ncu --profile-from-start off`): the benches wrap one
// training step, or a few decoded tokens, in it when run with --profile.
#pragma once
#ifdef LCX_CUDA
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
inline void profile_begin() {
  cudaDeviceSynchronize();
  cudaProfilerStart();
}
inline void profile_end() {
  cudaDeviceSynchronize();
  cudaProfilerStop();
}
#else
inline void profile_begin() {}
inline void profile_end() {}
#endif
