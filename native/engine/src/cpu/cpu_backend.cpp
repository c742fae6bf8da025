// GPT-2 forward / backward / AdamW on the CPU, layer by layer (see kernels.hpp for each layer).
#include "cpu_backend.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace lcx::cpu {

namespace {

void check_config(const lcx_config& c) {
  auto positive = [](int v, const char* name) {
    if (v <= 0) fail(LCX_ERR_ARG, "config.%s must be positive, got %d", name, v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.n_positions, "n_positions");
  positive(c.n_embd, "n_embd");
  positive(c.n_layer, "n_layer");
  positive(c.n_head, "n_head");
  positive(c.n_inner, "n_inner");
  if (c.n_layer > LCX_MAX_LAYERS)
    fail(LCX_ERR_ARG, "config.n_layer = %d exceeds the engine's limit of %d layers", c.n_layer,
         LCX_MAX_LAYERS);
  if (c.n_embd % c.n_head != 0)
    fail(LCX_ERR_ARG, "config.n_embd = %d is not divisible by n_head = %d", c.n_embd, c.n_head);
  if (!(c.layer_norm_eps >= 0.0f))
    fail(LCX_ERR_ARG, "config.layer_norm_eps must be >= 0, got %g", (double)c.layer_norm_eps);
  for (int l = 0; l < c.n_layer; l++) {
    const int k = c.attn_kind[l];
    if (k != LCX_ATTN_DENSE && k != LCX_ATTN_WINDOW && k != LCX_ATTN_SPARSE)
      fail(LCX_ERR_ARG, "layer %d: unknown attention kind %d", l, k);
    if (k == LCX_ATTN_WINDOW && c.attn_window[l] < 1)
      fail(LCX_ERR_ARG, "layer %d: sliding window must be at least 1 token, got %d", l,
           c.attn_window[l]);
  }
}

}  // namespace

CpuBackend::CpuBackend(const lcx_config& cfg)
    : mem_(std::make_shared<MemoryCounter>()),
      params_(mem_, "parameters"),
      grads_(mem_, "gradients"),
      m_(mem_, "AdamW first moments"),
      v_(mem_, "AdamW second moments"),
      acts_(mem_, "activations"),
      grad_acts_(mem_, "activation gradients"),
      cls_scratch_(mem_, "classifier chunk"),
      rows_(mem_, "positions") {
  configure(cfg);
}

void CpuBackend::configure(const lcx_config& cfg) {
  check_config(cfg);
  bool any_sparse = false;
  for (int l = 0; l < cfg.n_layer; l++) any_sparse |= cfg.attn_kind[l] == LCX_ATTN_SPARSE;
  BlockLayout layout;
  if (any_sparse) {
    // The master layout for n_positions; a shorter sequence uses its top-left corner, as
    // DeepSpeed's SparseSelfAttention does.
    const int nb = (cfg.n_positions + cfg.sparse.block - 1) / std::max(cfg.sparse.block, 1);
    layout.build(fixed_sparse_layout(cfg.sparse, cfg.n_head, cfg.n_positions), cfg.n_head, nb,
                 cfg.sparse.block);
  }

  cfg_ = cfg;
  layout_ = param_layout(cfg);
  sparse_layout_ = std::move(layout);
  version_++;
  for (auto* b : {&grads_, &m_, &v_, &acts_, &grad_acts_, &cls_scratch_, &params_}) b->release();
  rows_.release();
  act_rows_ = grad_rows_ = cls_rows_ = 0;
  act_all_layers_ = false;
  layers_.clear();
  params_.reset(layout_.total);
  step_ = 0;
  if (train_ready_) {
    // Training continues after extendPositions with fresh optimizer state for the new shape.
    grads_.reset(layout_.total);
    m_.reset(layout_.total);
    v_.reset(layout_.total);
  }
}

AttnPattern CpuBackend::pattern(int layer) const {
  AttnPattern p;
  p.kind = cfg_.attn_kind[layer];
  p.window = cfg_.attn_window[layer];
  p.layout = &sparse_layout_;
  return p;
}

void CpuBackend::set_params(const float* host) {
  std::memcpy(params_.data(), host, layout_.total * sizeof(float));
}

void CpuBackend::get_params(float* host) {
  std::memcpy(host, params_.data(), layout_.total * sizeof(float));
}

// ---- batches --------------------------------------------------------------------------------

void CpuBackend::check_batch(const Batch& b, bool need_targets) const {
  if (b.B < 1 || b.T < 1)
    fail(LCX_ERR_ARG, "batch must have B >= 1 and T >= 1, got B=%d T=%d", b.B, b.T);
  if (b.T > cfg_.n_positions)
    fail(LCX_ERR_ARG, "batch rows have T = %d tokens but the model has only %d positions", b.T,
         cfg_.n_positions);
  if ((int64_t)b.B * b.T > INT32_MAX)
    fail(LCX_ERR_ARG, "batch of %d x %d tokens is too large", b.B, b.T);
  if (!b.tokens) fail(LCX_ERR_ARG, "batch has no tokens");
  if (need_targets && !b.targets) fail(LCX_ERR_ARG, "training needs targets");
  const int N = b.B * b.T, V = cfg_.vocab_size;
  for (int n = 0; n < N; n++) {
    if (b.tokens[n] < 0 || b.tokens[n] >= V)
      fail(LCX_ERR_ARG, "tokens[%d] = %d is outside the vocabulary [0, %d)", n, b.tokens[n], V);
    if (b.targets && (b.targets[n] < -1 || b.targets[n] >= V))
      fail(LCX_ERR_ARG, "targets[%d] = %d is outside [-1, %d)", n, b.targets[n], V);
  }
}

void CpuBackend::prepare_rows(const Batch& b) {
  const int N = b.B * b.T;
  if (rows_.size() < (size_t)2 * N) rows_.reset((size_t)2 * N);
  int32_t* pos = rows_.data();
  int32_t* first_same = rows_.data() + N;
  for (int r = 0; r < b.B; r++) {
    const int32_t* seg = b.segments ? b.segments + (size_t)r * b.T : nullptr;
    positions_for_row(seg, b.T, pos + (size_t)r * b.T);
    if (seg) document_starts(seg, b.T, first_same + (size_t)r * b.T);
  }
}

// Lays out the activation arena for N rows: every layer (training keeps them for the backward)
// or one slot reused by all layers (inference). Grows, never shrinks, within one mode.
void CpuBackend::ensure_activations(int N, bool all_layers, bool with_grads) {
  const size_t C = cfg_.n_embd, F = cfg_.n_inner, NH = cfg_.n_head;
  if (act_rows_ < N || (all_layers && !act_all_layers_)) {
    const int rows = (all_layers == act_all_layers_) ? std::max(N, act_rows_) : N;
    const size_t R = rows;
    const size_t per_layer = R * (8 * C + 2 * F + NH + 4);
    const int slots = all_layers ? cfg_.n_layer : 1;
    act_rows_ = 0;  // if the allocation throws, nothing claims the old arena
    layers_.clear();
    acts_.reset(R * C + slots * per_layer + R * (C + 2));
    float* p = acts_.data();
    auto take = [&p](size_t n) {
      float* q = p;
      p += n;
      return q;
    };
    encoded_ = take(R * C);
    layers_.assign(slots, LayerActs{});
    for (auto& a : layers_) {
      a.ln1 = take(R * C);
      a.ln1_mean = take(R);
      a.ln1_rstd = take(R);
      a.qkv = take(3 * R * C);
      a.atty = take(R * C);
      a.lse = take(R * NH);
      a.res2 = take(R * C);
      a.ln2 = take(R * C);
      a.ln2_mean = take(R);
      a.ln2_rstd = take(R);
      a.fch = take(R * F);
      a.fch_gelu = take(R * F);
      a.res3 = take(R * C);
    }
    lnf_ = take(R * C);
    lnf_mean_ = take(R);
    lnf_rstd_ = take(R);
    act_rows_ = rows;
    act_all_layers_ = all_layers;
  }
  if (with_grads && grad_rows_ < N) {
    grad_rows_ = 0;
    grad_acts_.reset((size_t)N * (5 * C + F));  // dres, dC, dqkv (3C), dF
    grad_rows_ = N;
  }
}

void CpuBackend::ensure_classifier_scratch(int N) {
  const int rows = classifier_chunk_rows(cfg_.vocab_size, N);
  if (cls_rows_ < rows) {
    cls_rows_ = 0;
    cls_scratch_.reset((size_t)rows * (cfg_.vocab_size + 2 * (size_t)cfg_.n_embd));
    cls_rows_ = rows;
  }
}

// ---- forward ----------------------------------------------------------------------------------

void CpuBackend::run_forward(const Batch& b) {
  const int B = b.B, T = b.T, N = B * T;
  const int C = cfg_.n_embd, F = cfg_.n_inner, NH = cfg_.n_head;
  const float eps = cfg_.layer_norm_eps;
  const int32_t* pos = rows_.data();
  const int32_t* first_same = b.segments ? rows_.data() + N : nullptr;

  encoder_forward(encoded_, b.tokens, pos, param(WTE), param(WPE), N, C);
  const float* resid = encoded_;  // (N,C) the residual stream entering the layer
  for (int l = 0; l < cfg_.n_layer; l++) {
    // With one shared slot, resid is this slot's res3 from the previous layer: it is read
    // (LayerNorm, residual add into res2) before res3 is overwritten by the MLP.
    LayerActs& a = layers_[act_all_layers_ ? l : 0];
    const size_t lc = (size_t)l * C;
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, resid, param(LN1W) + lc, param(LN1B) + lc,
                      N, C, eps);
    matmul_forward(a.qkv, a.ln1, param(QKVW) + lc * 3 * C, param(QKVB) + 3 * lc, N, C, 3 * C);
    attention_forward(a.atty, a.lse, a.qkv, b.segments, first_same, B, T, C, NH, pattern(l));
    matmul_forward(a.res2, a.atty, param(ATTPROJW) + lc * C, param(ATTPROJB) + lc, N, C, C);
    residual_add(a.res2, resid, (size_t)N * C);
    layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res2, param(LN2W) + lc, param(LN2B) + lc,
                      N, C, eps);
    matmul_forward(a.fch, a.ln2, param(FCW) + (size_t)l * F * C, param(FCB) + (size_t)l * F, N,
                   C, F);
    gelu_forward(a.fch_gelu, a.fch, (size_t)N * F);
    matmul_forward(a.res3, a.fch_gelu, param(FCPROJW) + lc * F, param(FCPROJB) + lc, N, F, C);
    residual_add(a.res3, a.res2, (size_t)N * C);
    resid = a.res3;
  }
  final_resid_ = resid;
  layernorm_forward(lnf_, lnf_mean_, lnf_rstd_, resid, param(LNFW), param(LNFB), N, C, eps);
}

void CpuBackend::forward(const Batch& b, float* nll, float* logits, float* loss) {
  check_batch(b, false);
  const int N = b.B * b.T;
  // Reuse the training arena when it is big enough; otherwise one layer slot suffices.
  ensure_activations(N, act_all_layers_ && act_rows_ >= N, false);
  prepare_rows(b);
  run_forward(b);

  const int C = cfg_.n_embd, V = cfg_.vocab_size;
  double sum = 0.0;
  int scored = 0;
  if (b.targets)
    for (int n = 0; n < N; n++) scored += b.targets[n] >= 0;
  if (logits) {
    matmul_forward(logits, lnf_, param(WTE), nullptr, N, C, V);
    if (b.targets) sum = nll_from_logits(nll, logits, b.targets, N, V);
  } else if (b.targets && (nll || loss)) {
    ensure_classifier_scratch(N);
    sum = classifier_chunked(nll, nullptr, nullptr, lnf_, b.targets, param(WTE), N, C, V, 0.0f,
                             cls_scratch_.data(), cls_rows_);
  }
  // Without targets nothing is scored: per-token NLL is 0, like unscored tokens.
  if (nll && !b.targets) std::fill_n(nll, N, 0.0f);
  if (loss) *loss = scored ? (float)(sum / scored) : 0.0f;
}

// ---- training ---------------------------------------------------------------------------------

void CpuBackend::train_init(const lcx_train_config& tc) {
  auto in01 = [](float x) { return x >= 0.0f && x < 1.0f; };
  if (!in01(tc.beta1) || !in01(tc.beta2))
    fail(LCX_ERR_ARG, "AdamW betas must be in [0, 1), got beta1=%g beta2=%g", (double)tc.beta1,
         (double)tc.beta2);
  if (!(tc.eps >= 0.0f)) fail(LCX_ERR_ARG, "AdamW eps must be >= 0, got %g", (double)tc.eps);
  if (!(tc.weight_decay >= 0.0f))
    fail(LCX_ERR_ARG, "weight_decay must be >= 0, got %g", (double)tc.weight_decay);
  // recompute, bf16 master weights and bf16 gradients are CUDA memory savings; the CPU
  // reference always keeps fp32 weights and gradients and every activation, so they do not
  // change its results.
  train_cfg_ = tc;
  // A fresh start: zero gradients, zero moments, step 0. The C API relies on this to drop
  // moments that belong to other parameters (a checkpoint without optimizer state); a resume
  // calls set_optimizer_state afterwards.
  grads_.reset(layout_.total);
  m_.reset(layout_.total);
  v_.reset(layout_.total);
  step_ = 0;
  train_ready_ = true;
}

void CpuBackend::zero_grad() {
  if (!train_ready_) fail(LCX_ERR_ARG, "zero_grad before train_init");
  grads_.zero();
}

void CpuBackend::get_grads(float* host) {
  if (!train_ready_) fail(LCX_ERR_ARG, "get_grads before train_init");
  std::memcpy(host, grads_.data(), layout_.total * sizeof(float));
}

float CpuBackend::forward_backward(const Batch& b, float grad_scale) {
  if (!train_ready_) fail(LCX_ERR_ARG, "forward_backward before train_init");
  check_batch(b, true);
  const int N = b.B * b.T;
  ensure_activations(N, true, true);
  ensure_classifier_scratch(N);
  prepare_rows(b);
  run_forward(b);
  int scored = 0;
  for (int n = 0; n < N; n++) scored += b.targets[n] >= 0;
  // d(mean NLL)/d(NLL_n) = 1/scored for every scored token.
  const float dloss_scale = scored ? grad_scale / scored : 0.0f;
  const double sum = classifier_chunked(nullptr, grad_acts_.data() + (size_t)N * cfg_.n_embd,
                                        grad(WTE), lnf_, b.targets, param(WTE), N, cfg_.n_embd,
                                        cfg_.vocab_size, dloss_scale, cls_scratch_.data(),
                                        cls_rows_);
  run_backward(b);
  return scored ? (float)(sum / scored) : 0.0f;
}

// Expects the classifier to have written d(lnf) into dC. Walks the layers in reverse, adding
// every parameter gradient into grads_.
void CpuBackend::run_backward(const Batch& b) {
  const int B = b.B, T = b.T, N = B * T;
  const int C = cfg_.n_embd, F = cfg_.n_inner, NH = cfg_.n_head;
  const size_t NC = (size_t)N * C;
  float* dres = grad_acts_.data();  // (N,C) gradient of the residual stream
  float* dC = dres + NC;            // (N,C) scratch: dlnf, dln2, datty, dln1
  float* dqkv = dC + NC;            // (N,3C)
  float* dF = dqkv + 3 * NC;        // (N,F)
  const int32_t* pos = rows_.data();
  const int32_t* first_same = b.segments ? rows_.data() + N : nullptr;

  std::fill_n(dres, NC, 0.0f);
  layernorm_backward(dres, grad(LNFW), grad(LNFB), dC, final_resid_, param(LNFW), lnf_mean_,
                     lnf_rstd_, N, C);
  for (int l = cfg_.n_layer - 1; l >= 0; l--) {
    const LayerActs& a = layers_[l];
    const float* resid = l == 0 ? encoded_ : layers_[l - 1].res3;
    const size_t lc = (size_t)l * C;
    // MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))); dres flows to res2 unchanged plus the
    // MLP branch, which layernorm_backward adds in.
    matmul_backward(dF, grad(FCPROJW) + lc * F, grad(FCPROJB) + lc, dres, a.fch_gelu,
                    param(FCPROJW) + lc * F, N, F, C);
    gelu_backward(dF, a.fch, dF, (size_t)N * F);
    matmul_backward(dC, grad(FCW) + (size_t)l * F * C, grad(FCB) + (size_t)l * F, dF, a.ln2,
                    param(FCW) + (size_t)l * F * C, N, C, F);
    layernorm_backward(dres, grad(LN2W) + lc, grad(LN2B) + lc, dC, a.res2, param(LN2W) + lc,
                       a.ln2_mean, a.ln2_rstd, N, C);
    // Attention: res2 = resid + attproj(attn(qkv(ln1(resid)))).
    matmul_backward(dC, grad(ATTPROJW) + lc * C, grad(ATTPROJB) + lc, dres, a.atty,
                    param(ATTPROJW) + lc * C, N, C, C);
    attention_backward(dqkv, dC, a.qkv, a.atty, a.lse, b.segments, first_same, B, T, C, NH,
                       pattern(l));
    matmul_backward(dC, grad(QKVW) + lc * 3 * C, grad(QKVB) + 3 * lc, dqkv, a.ln1,
                    param(QKVW) + lc * 3 * C, N, C, 3 * C);
    layernorm_backward(dres, grad(LN1W) + lc, grad(LN1B) + lc, dC, resid, param(LN1W) + lc,
                       a.ln1_mean, a.ln1_rstd, N, C);
  }
  encoder_backward(grad(WTE), grad(WPE), dres, b.tokens, pos, N, C);
}

float CpuBackend::optimizer_step(float lr) {
  if (!train_ready_) fail(LCX_ERR_ARG, "optimizer_step before train_init");
  const double ss = sum_squares(grads_.data(), layout_.total);
  if (!std::isfinite(ss))
    fail(LCX_ERR_NUMERIC,
         "gradients hold NaN or Inf (sum of squares %g); the optimizer step was skipped and the "
         "parameters are unchanged",
         ss);
  const float norm = (float)std::sqrt(ss);
  // PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  float scale = 1.0f;
  if (train_cfg_.grad_clip > 0.0f) {
    const float coef = train_cfg_.grad_clip / (norm + 1e-6f);
    if (coef < 1.0f) scale = coef;
  }
  step_++;
  for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
    const size_t off = layout_.offset[i];
    adamw_update(params_.data() + off, grads_.data() + off, m_.data() + off, v_.data() + off,
                 layout_.count[i], lr, train_cfg_.beta1, train_cfg_.beta2, train_cfg_.eps,
                 param_decays(i) ? train_cfg_.weight_decay : 0.0f, scale, step_);
  }
  return norm;
}

void CpuBackend::get_optimizer_state(float* m, float* v) {
  if (m_.empty()) fail(LCX_ERR_ARG, "no optimizer state: call train_init first");
  std::memcpy(m, m_.data(), layout_.total * sizeof(float));
  std::memcpy(v, v_.data(), layout_.total * sizeof(float));
}

void CpuBackend::set_optimizer_state(const float* m, const float* v, int64_t step) {
  if (step < 0) fail(LCX_ERR_ARG, "optimizer step count must be >= 0, got %lld", (long long)step);
  if (m_.empty()) m_.reset(layout_.total);
  if (v_.empty()) v_.reset(layout_.total);
  std::memcpy(m_.data(), m, layout_.total * sizeof(float));
  std::memcpy(v_.data(), v, layout_.total * sizeof(float));
  step_ = step;
}

std::unique_ptr<GenState> CpuBackend::gen_create(int max_tokens) {
  if (max_tokens < 1 || max_tokens > cfg_.n_positions)
    fail(LCX_ERR_ARG, "KV cache size must be in [1, n_positions = %d], got %d", cfg_.n_positions,
         max_tokens);
  return make_cpu_gen_state(*this, max_tokens);
}

lcx_memory_stats CpuBackend::memory_stats() {
  lcx_memory_stats s{};
  s.allocated_bytes = mem_->allocated.load();
  s.mapped_bytes = s.allocated_bytes;  // no pooling on the CPU: what is held is what is used
  s.peak_allocated_bytes = mem_->peak.load();
  s.peak_mapped_bytes = s.peak_allocated_bytes;
  s.reserved_va_bytes = 0;
  s.fragmentation = 0.0;
  s.expandable = 0;
  return s;
}

}  // namespace lcx::cpu

namespace lcx {

std::unique_ptr<Backend> make_cpu_backend(const lcx_config& cfg) {
  return std::make_unique<cpu::CpuBackend>(cfg);
}

}  // namespace lcx
