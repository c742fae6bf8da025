#include "cuda_check.hpp"

#include <cstring>

namespace lcx::cuda {

bool& pdl_enabled() {
  thread_local bool on = false;
  return on;
}

static const char* base_name(const char* file) {
  const char* s = std::strrchr(file, '/');
  return s ? s + 1 : file;
}

void fail_cuda(cudaError_t err, const char* what, const char* file, int line) {
  // An allocation failure is recoverable (the caller can shrink the batch); everything else
  // after a kernel fault leaves the context unusable, which the message says.
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail(LCX_ERR_OOM, "%s:%d: %s: CUDA out of memory (device has %zu bytes free of %zu)",
         base_name(file), line, what, free_b, total_b);
  }
  fail(LCX_ERR_BACKEND, "%s:%d: %s failed: %s (%s)%s", base_name(file), line, what,
       cudaGetErrorName(err), cudaGetErrorString(err),
       err == cudaErrorIllegalAddress || err == cudaErrorLaunchFailure
           ? "; the CUDA context is lost, reload the model"
           : "");
}

void fail_driver(CUresult err, const char* what, const char* file, int line) {
  const char* name = nullptr;
  const char* msg = nullptr;
  cuGetErrorName(err, &name);
  cuGetErrorString(err, &msg);
  fail(err == CUDA_ERROR_OUT_OF_MEMORY ? LCX_ERR_OOM : LCX_ERR_BACKEND, "%s:%d: %s failed: %s (%s)",
       base_name(file), line, what, name ? name : "?", msg ? msg : "?");
}

void fail_cublas(int status, const char* what, const char* file, int line) {
  // cuBLASLt status 3 = CUBLAS_STATUS_ALLOC_FAILED.
  fail(status == 3 ? LCX_ERR_OOM : LCX_ERR_BACKEND, "%s:%d: %s failed: cuBLAS status %d",
       base_name(file), line, what, status);
}

}  // namespace lcx::cuda
