// KV-cached decoding on the CPU. The cache holds each layer's keys and values for the tokens
// seen so far; feeding n new tokens runs the same layer functions as the full forward on just
// those n rows, with attention over the cached keys that attends() allows at the tokens'
// absolute positions (the sparse layout included). Because every function computes a row the
// same way whatever else is in the batch, the logits match a full recompute of the sequence.
#include <algorithm>
#include <vector>

#include "../core/error.hpp"
#include "cpu_backend.hpp"

namespace lcx::cpu {

namespace {

class CpuGenState final : public GenState {
 public:
  CpuGenState(CpuBackend& be, int max_tokens)
      : be_(be),
        version_(be.version()),
        cap_(max_tokens),
        k_cache_(be.memory(), "KV cache (keys)"),
        v_cache_(be.memory(), "KV cache (values)"),
        work_(be.memory(), "decoder activations") {
    const auto& c = be.config();
    const size_t per_layer = (size_t)cap_ * c.n_embd;
    k_cache_.reset(per_layer * c.n_layer);  // (L, cap, C)
    v_cache_.reset(per_layer * c.n_layer);  // (L, cap, C)
  }

  int length() const override { return len_; }
  int capacity() const override { return cap_; }
  void reset() override { len_ = 0; }

  void feed(const int32_t* tokens, int n, float* logits) override {
    if (be_.version() != version_)
      fail(LCX_ERR_ARG,
           "this generation state was made before the model was reshaped (extend positions or "
           "attention change); create a new one");
    if (n < 1) fail(LCX_ERR_ARG, "feed needs at least one token, got %d", n);
    if (n > cap_ - len_)
      fail(LCX_ERR_ARG, "KV cache full: %d tokens held, %d more do not fit in %d", len_, n,
           cap_);
    const lcx_config& cfg = be_.config();
    const int C = cfg.n_embd, F = cfg.n_inner, NH = cfg.n_head, HS = C / NH, V = cfg.vocab_size;
    for (int i = 0; i < n; i++)
      if (tokens[i] < 0 || tokens[i] >= V)
        fail(LCX_ERR_ARG, "token %d is outside the vocabulary [0, %d)", tokens[i], V);

    const size_t per_row = (size_t)7 * C + 2 * F;
    if (work_.size() < (size_t)n * per_row) work_.reset((size_t)n * per_row);
    float* x = work_.data();                 // (n,C) residual stream
    float* ln = x + (size_t)n * C;           // (n,C)
    float* qkv = ln + (size_t)n * C;         // (n,3C)
    float* atty = qkv + (size_t)n * 3 * C;   // (n,C)
    float* res2 = atty + (size_t)n * C;      // (n,C)
    float* fch = res2 + (size_t)n * C;       // (n,F)
    float* fch_gelu = fch + (size_t)n * F;   // (n,F)

    std::vector<int32_t> pos(n);
    for (int i = 0; i < n; i++) pos[i] = len_ + i;
    const float eps = cfg.layer_norm_eps;
    encoder_forward(x, tokens, pos.data(), be_.param(WTE), be_.param(WPE), n, C);

    for (int l = 0; l < cfg.n_layer; l++) {
      const size_t lc = (size_t)l * C;
      float* kc = k_cache_.data() + lc * cap_;  // (cap,C)
      float* vc = v_cache_.data() + lc * cap_;  // (cap,C)
      layernorm_forward(ln, nullptr, nullptr, x, be_.param(LN1W) + lc, be_.param(LN1B) + lc, n,
                        C, eps);
      matmul_forward(qkv, ln, be_.param(QKVW) + lc * 3 * C, be_.param(QKVB) + 3 * lc, n, C,
                     3 * C);
      // The new tokens' keys and values go in first: a token attends to itself and to the new
      // tokens before it.
      for (int i = 0; i < n; i++) {
        std::copy_n(qkv + (size_t)i * 3 * C + C, C, kc + (size_t)(len_ + i) * C);
        std::copy_n(qkv + (size_t)i * 3 * C + 2 * C, C, vc + (size_t)(len_ + i) * C);
      }
      const AttnPattern p = be_.pattern(l);
#pragma omp parallel if ((long)n * NH * (len_ + n) * HS >= kParallelMinWork)
      {
        std::vector<float> scores(len_ + n);
        std::vector<int32_t> keys(len_ + n);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
          for (int h = 0; h < NH; h++) {
            const int k = allowed_keys(p, h, len_ + i, 0, nullptr, keys.data());
            attend_query(atty + (size_t)i * C + h * HS, qkv + (size_t)i * 3 * C + h * HS,
                         kc + h * HS, vc + h * HS, C, keys.data(), k, HS, scores.data());
          }
        }
      }
      matmul_forward(res2, atty, be_.param(ATTPROJW) + lc * C, be_.param(ATTPROJB) + lc, n, C,
                     C);
      residual_add(res2, x, (size_t)n * C);
      layernorm_forward(ln, nullptr, nullptr, res2, be_.param(LN2W) + lc, be_.param(LN2B) + lc,
                        n, C, eps);
      matmul_forward(fch, ln, be_.param(FCW) + (size_t)l * F * C, be_.param(FCB) + (size_t)l * F,
                     n, C, F);
      gelu_forward(fch_gelu, fch, (size_t)n * F);
      matmul_forward(x, fch_gelu, be_.param(FCPROJW) + lc * F, be_.param(FCPROJB) + lc, n, F, C);
      residual_add(x, res2, (size_t)n * C);
    }
    len_ += n;

    if (logits) {
      // Only the last token's logits are asked for: (1,C) -> (1,V).
      layernorm_forward(ln, nullptr, nullptr, x + (size_t)(n - 1) * C, be_.param(LNFW),
                        be_.param(LNFB), 1, C, eps);
      matmul_forward(logits, ln, be_.param(WTE), nullptr, 1, C, V);
    }
  }

 private:
  CpuBackend& be_;
  uint64_t version_;
  int cap_;
  int len_ = 0;
  HostBuffer<float> k_cache_, v_cache_;
  HostBuffer<float> work_;
};

}  // namespace

std::unique_ptr<GenState> make_cpu_gen_state(CpuBackend& backend, int max_tokens) {
  return std::make_unique<CpuGenState>(backend, max_tokens);
}

}  // namespace lcx::cpu
