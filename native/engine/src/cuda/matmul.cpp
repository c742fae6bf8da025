// cuBLASLt wrapper. Algorithms come from cuBLASLt's heuristic once per (shape, types,
// transposes, epilogue, pointer alignment) and are cached; the alignments are passed to the
// heuristic so that offsets into the canonical parameter layout (not always 256-byte aligned
// on tiny models) get an algorithm that accepts them.
// The MLP's GELU runs in the fc product's epilogue (forward) and in the epilogue of the product
// that feeds its gradient (backward); LCX_CUDA_GELU_EPILOGUE=0 runs the separate GELU kernels, as
// does a shape cuBLASLt has no epilogue algorithm for.
#include "matmul.hpp"

#include <cublasLt.h>

#include <cstdlib>
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
  int m, n, k, lda, ldb, ldd, ta, tb, dfp32, beta_nz, epilogue;  // epilogue: bias and activation
  uint32_t al_a, al_b, al_c, al_d, al_aux;
  bool operator<(const Key& o) const { return std::memcmp(this, &o, sizeof(Key)) < 0; }
};
}  // namespace

struct Matmul::Impl {
  DeviceAllocator& alloc;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  // found = false: the heuristic had nothing for this key (asked once, remembered).
  struct Choice {
    bool found;
    cublasLtMatmulAlgo_t algo;
  };
  std::map<Key, Choice> algos;
  bool gelu_epilogue = true;
  explicit Impl(DeviceAllocator& a) : alloc(a) {}
};

Matmul::Matmul(DeviceAllocator& alloc) : impl_(new Impl(alloc)) {
  const char* ge = std::getenv("LCX_CUDA_GELU_EPILOGUE");
  impl_->gelu_epilogue = !(ge && ge[0] == '0');
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
  if (!run(d, d_fp32, c, a, ta, lda, b, tb, ldb, m, n, k, ldd, alpha, beta, bias, Act::none, nullptr, s))
    fail(LCX_ERR_BACKEND,
         "cuBLASLt has no algorithm for a %dx%dx%d matmul (lda %d ldb %d ldd %d, %s output%s)", m,
         n, k, lda, ldb, ldd, d_fp32 ? "fp32" : "bf16", bias ? ", bias" : "");
}

bool Matmul::run(void* d, bool d_fp32, const void* c, const bf16* a, bool ta, int lda,
                 const bf16* b, bool tb, int ldb, int m, int n, int k, int ldd, float alpha,
                 float beta, const bf16* bias, Act act, const bf16* aux, cudaStream_t s) {
  if (m == 0 || n == 0) return true;
  if ((bias || act != Act::none) && d_fp32) fail(LCX_ERR_INTERNAL, "matmul: epilogues only on bf16 outputs");
  if (act == Act::dgelu && (bias || !aux)) fail(LCX_ERR_INTERNAL, "matmul: GELU gradient needs its input, no bias");
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
  cublasLtEpilogue_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (act == Act::gelu)
    epi = bias ? (aux ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_BIAS)
               : (aux ? CUBLASLT_EPILOGUE_GELU_AUX : CUBLASLT_EPILOGUE_GELU);
  if (act == Act::dgelu) epi = CUBLASLT_EPILOGUE_DGELU;
  if (epi != CUBLASLT_EPILOGUE_DEFAULT)
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  if (bias) {
    const cudaDataType_t bt = CUDA_R_16BF;
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
  }
  if (aux) {
    // The pre-activation has D's type and layout (bf16, leading dimension ldd).
    const int64_t aux_ld = ldd;
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
    LCX_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld));
  }
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda));
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb));
  LCX_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lc, dt, m, n, ldd));

  Key key{};
  key.m = m; key.n = n; key.k = k; key.lda = lda; key.ldb = ldb; key.ldd = ldd;
  key.ta = ta; key.tb = tb; key.dfp32 = d_fp32; key.beta_nz = beta != 0.f;
  key.epilogue = (int)epi;
  key.al_a = align_of(a); key.al_b = align_of(b); key.al_c = align_of(c); key.al_d = align_of(d);
  key.al_aux = aux ? align_of(aux) : 0;
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
    // An epilogue the library does not offer for these types is "not supported", not an error.
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(impl_->handle, op, la, lb, lc, lc, pref, 1, &res, &found);
    if (st != CUBLAS_STATUS_NOT_SUPPORTED) LCX_CUBLAS_CHECK(st);
    it = impl_->algos.emplace(key, Impl::Choice{st == CUBLAS_STATUS_SUCCESS && found > 0, res.algo}).first;
  }
  if (!it->second.found) return false;
  LCX_CUBLAS_CHECK(cublasLtMatmul(impl_->handle, op, &alpha, a, la, b, lb, &beta, c, lc, d, lc,
                                  &it->second.algo, impl_->workspace, kWorkspace, s));
  return true;
}

// Row-major X (N, IC) is column-major IC x N; W (OC, IC) is column-major IC x OC.
void Matmul::linear_bf16(bf16* out, const bf16* inp, const bf16* w, const bf16* bias, int N,
                         int IC, int OC, cudaStream_t s) {
  // One row (decoding): a plain matrix-vector kernel instead of a GEMM (gemv.cu says why).
  if (N == 1 && gemv_ok(w, inp, IC)) return gemv_bf16(0, out, nullptr, w, inp, bias, IC, OC, s);
  gemm(out, false, nullptr, w, true, IC, inp, false, IC, OC, N, IC, OC, 1.f, 0.f, bias, s);
}
// The epilogue wants the pre-activation in D's layout, 16-byte aligned rows.
void Matmul::linear_gelu(bf16* out, bf16* pre, const bf16* inp, const bf16* w, const bf16* bias,
                         int N, int IC, int OC, cudaStream_t s) {
  const bool aligned = OC % 8 == 0 && align_of(out) >= 16 && (!pre || align_of(pre) >= 16);
  if (N > 1 && impl_->gelu_epilogue && aligned &&
      run(out, false, nullptr, w, true, IC, inp, false, IC, OC, N, IC, OC, 1.f, 0.f, bias, Act::gelu, pre, s))
    return;
  // Product, then the GELU kernel (in place when the pre-activation is not kept).
  bf16* h = pre ? pre : out;
  linear_bf16(h, inp, w, bias, N, IC, OC, s);
  gelu_forward(out, h, (size_t)N * OC, s);
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
void Matmul::linear_dinp_dgelu(bf16* dinp, const bf16* dout, const bf16* w, const bf16* pre, int N,
                               int IC, int OC, cudaStream_t s) {
  const bool aligned = IC % 8 == 0 && align_of(dinp) >= 16 && align_of(pre) >= 16;
  if (impl_->gelu_epilogue && aligned &&
      run(dinp, false, nullptr, w, false, IC, dout, false, OC, IC, N, OC, IC, 1.f, 0.f, nullptr, Act::dgelu, pre, s))
    return;
  linear_dinp(dinp, dout, w, N, IC, OC, s);
  gelu_backward_inplace(dinp, pre, (size_t)N * IC, s);
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
