// cuBLASLt wrapper. Algorithms come from cuBLASLt's heuristic once per (shape, types,
// transposes, epilogue, pointer alignment) and are cached; the alignments are passed to the
// heuristic so that offsets into the canonical parameter layout (not always 256-byte aligned
// on tiny models) get an algorithm that accepts them.
#include "matmul.hpp"

#include <cublasLt.h>

#include <cstring>
#include <vector>

#include "../core/error.hpp"
#include "allocator.hpp"
#include "cuda_check.hpp"
#include "kernels.hpp"

namespace lcx::cuda {

namespace {
constexpr size_t kWorkspace = 32u << 20;  // Hopper kernels want up to 32 MiB

uint32_t align_of(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 2 && (v % a) != 0) a >>= 1;
  return a;
}

struct Key {
  int m, n, k, lda, ldb, ldd, ta, tb, dfp32, bias, beta_nz;
  uint32_t al_a, al_b, al_c, al_d;
  bool operator<(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) < 0; }
};
}  // namespace

struct Matmul::Impl {
  DeviceAllocator& alloc;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::map<Key, cublasLtMatmulAlgo_t> algos;
  explicit Impl(DeviceAllocator& a) : alloc(a) {}
};

Matmul::Matmul(DeviceAllocator& alloc) : impl_(new Impl(alloc)) {
  LCX_CUBLAS_CHECK(cublasLtCreate(&impl_->handle));
  impl_->workspace = alloc.alloc(kWorkspace, "cuBLASLt workspace");
}

Matmul::~Matmul() {
  if (impl_->handle) cublasLtDestroy(impl_->handle);
  try {
    impl_->alloc.free(impl_->workspace);
  } catch (...) {
  }
}

void Matmul::gemm(void* d, bool d_fp32, const void* c, const bf16* a, bool ta, int lda,
                  const bf16* b, bool tb, int ldb, int m, int n, int k, int ldd, float alpha,
                  float beta, const bf16* bias, cudaStream_t s) {
  if (m == 0 || n == 0) return;
  if (bias && d_fp32) fail(LCX_ERR_INTERNAL, "matmul: bias epilogue only on bf16 outputs");
  if (beta == 0.f) c = d;
  const cudaDataType_t dt = d_fp32 ? CUDA_R_32F : CUDA_R_16BF;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  // RAII-less cleanup: descriptors are destroyed on every path out.
  struct Guard {
    cublasLtMatmulDesc_t& op;
    cublasLtMatrixLayout_t &la, &lb, &lc;
    cublasLtMatmulPreference_t& pref;
    ~Guard() {
      if (pref) cublasLtMatmulPreferenceDestroy(pref);
      if (lc) cublasLtMatrixLayoutDestroy(lc);
      if (lb) cublasLtMatrixLayoutDestroy(lb);
      if (la) cublasLtMatrixLayoutDestroy(la);
      if (op) cublasLtMatmulDescDestroy(op);
    }
  } guard{op, la, lb, lc, pref};

  LCX_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  if (bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    const cudaDataType_t bt = CUDA_R_16BF;
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
  }
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda));
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb));
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, dt, m, n, ldd));

  Key key{};
  key.m = m; key.n = n; key.k = k; key.lda = lda; key.ldb = ldb; key.ldd = ldd;
  key.ta = ta; key.tb = tb; key.dfp32 = d_fp32; key.bias = bias != nullptr; key.beta_nz = beta != 0.f;
  key.al_a = align_of(a); key.al_b = align_of(b); key.al_c = align_of(c); key.al_d = align_of(d);
  auto it = impl_->algos.find(key);
  if (it == impl_->algos.end()) {
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const size_t ws = kWorkspace;
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.al_a, sizeof key.al_a));
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.al_b, sizeof key.al_b));
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.al_c, sizeof key.al_c));
    LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.al_d, sizeof key.al_d));
    if (!d_fp32 && beta != 0.f) {
      // Accumulating into bf16 (bf16 weight gradients): split-K only with its partial sums in
      // fp32, so that the sum is rounded to bf16 once (in-place or output-type reductions would
      // round every partial).
      const uint32_t red = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      LCX_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &red, sizeof red));
    }
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    LCX_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(impl_->handle, op, la, lb, lc, lc, pref, 1, &res, &found));
    if (found == 0)
      fail(LCX_ERR_BACKEND,
           "cuBLASLt has no algorithm for a %dx%dx%d matmul (lda %d ldb %d ldd %d, %s output%s)", m,
           n, k, lda, ldb, ldd, d_fp32 ? "fp32" : "bf16", bias ? ", bias" : "");
    it = impl_->algos.emplace(key, res.algo).first;
  }
  LCX_CUBLAS_CHECK(cublasLtMatmul(impl_->handle, op, &alpha, a, la, b, lb, &beta, c, lc, d, lc,
                                  &it->second, impl_->workspace, kWorkspace, s));
}

// Row-major X (N, IC) is column-major IC x N; W (OC, IC) is column-major IC x OC.
void Matmul::linear_bf16(bf16* out, const bf16* inp, const bf16* w, const bf16* bias, int N,
                         int IC, int OC, cudaStream_t s) {
  // One row (decoding): a plain matrix-vector kernel instead of a GEMM (gemv.cu says why).
  if (N == 1 && gemv_ok(w, inp, IC)) return gemv_bf16(0, out, nullptr, w, inp, bias, IC, OC, s);
  gemm(out, false, nullptr, w, true, IC, inp, false, IC, OC, N, IC, OC, 1.f, 0.f, bias, s);
}
void Matmul::linear_residual(float* out, const float* resid, const bf16* inp, const bf16* w,
                             int N, int IC, int OC, cudaStream_t s) {
  if (N == 1 && gemv_ok(w, inp, IC)) return gemv_bf16(1, out, resid, w, inp, nullptr, IC, OC, s);
  gemm(out, true, resid, w, true, IC, inp, false, IC, OC, N, IC, OC, 1.f, 1.f, nullptr, s);
}
void Matmul::linear_f32(float* out, const bf16* inp, const bf16* w, int N, int IC, int OC,
                        cudaStream_t s) {
  if (N == 1 && gemv_ok(w, inp, IC)) return gemv_bf16(2, out, nullptr, w, inp, nullptr, IC, OC, s);
  gemm(out, true, nullptr, w, true, IC, inp, false, IC, OC, N, IC, OC, 1.f, 0.f, nullptr, s);
}
void Matmul::linear_dinp(bf16* dinp, const bf16* dout, const bf16* w, int N, int IC, int OC,
                         cudaStream_t s) {
  gemm(dinp, false, nullptr, w, false, IC, dout, false, OC, IC, N, OC, IC, 1.f, 0.f, nullptr, s);
}
void Matmul::linear_dw(float* dw, const bf16* dout, const bf16* inp, int N, int IC, int OC,
                       cudaStream_t s) {
  gemm(dw, true, dw, inp, false, IC, dout, true, OC, IC, OC, N, IC, 1.f, 1.f, nullptr, s);
}
void Matmul::linear_dw(bf16* dw, const bf16* dout, const bf16* inp, int N, int IC, int OC,
                       cudaStream_t s) {
  gemm(dw, false, dw, inp, false, IC, dout, true, OC, IC, OC, N, IC, 1.f, 1.f, nullptr, s);
}

}  // namespace lcx::cuda
