// Built when no CUDA toolkit with cuBLASLt was found: the CUDA backend reports itself missing.
#include "../core/backend.hpp"
#include "../core/error.hpp"

namespace lcx {

bool cuda_backend_built() { return false; }

std::unique_ptr<Backend> make_cuda_backend(const lcx_config&) {
  fail(LCX_ERR_BACKEND,
       "this build has no CUDA backend (no CUDA toolkit with cuBLASLt was found when the engine "
       "was compiled); install the CUDA toolkit and run `npm run build:native`, or use the CPU");
}

}  // namespace lcx
