// Error checks for every CUDA runtime / driver / cuBLASLt call in the CUDA backend. Each failure
// becomes an lcx::Error carrying file:line and the call text, so the app gets a status code and a
// message instead of a dead worker (llm.c's cudaCheck, minus the exit()).
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include "../core/error.hpp"

namespace lcx::cuda {

[[noreturn]] void fail_cuda(cudaError_t err, const char* what, const char* file, int line);
[[noreturn]] void fail_driver(CUresult err, const char* what, const char* file, int line);
[[noreturn]] void fail_cublas(int status, const char* what, const char* file, int line);

inline void check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess) fail_cuda(err, what, file, line);
}
inline void check_driver(CUresult err, const char* what, const char* file, int line) {
  if (err != CUDA_SUCCESS) fail_driver(err, what, file, line);
}

// Programmatic dependent launch (Hopper), used by the decode graph: while a PdlScope(true) is
// alive on this thread, kernels launched through launch_k (common.cuh) carry the
// programmatic-serialization attribute. Only kernels that call pdl_wait() before touching their
// inputs or writing anything are launched through launch_k.
bool& pdl_enabled();
struct PdlScope {
  bool prev;
  explicit PdlScope(bool on) : prev(pdl_enabled()) { pdl_enabled() = on; }
  ~PdlScope() { pdl_enabled() = prev; }
  PdlScope(const PdlScope&) = delete;
  PdlScope& operator=(const PdlScope&) = delete;
};

}  // namespace lcx::cuda

#define LCX_CUDA_CHECK(call) ::lcx::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define LCX_CU_CHECK(call) ::lcx::cuda::check_driver((call), #call, __FILE__, __LINE__)
#define LCX_CUBLAS_CHECK(call)                                                   \
  do {                                                                           \
    int lcx_st_ = (int)(call);                                                   \
    if (lcx_st_ != 0) ::lcx::cuda::fail_cublas(lcx_st_, #call, __FILE__, __LINE__); \
  } while (0)
// After every kernel launch: catches bad launch configurations at the launch site.
#define LCX_LAUNCH_CHECK() LCX_CUDA_CHECK(cudaGetLastError())
