// The CUDA backend: GPT-2-family training and inference on one GPU, bf16 compute with fp32
// accumulation, behind the same Backend interface as the CPU reference (core/backend.hpp).
//
// Memory plan (why it looks like this):
// - Parameters live in the canonical layout (longctx.h) on the device, fp32 master weights by
//   default, or bf16 with stochastic rounding (lcx_train_config.master_dtype = 1). AdamW moments
//   are fp32 in the same layout, so get/set calls are single copies; so are the gradients by
//   default.
// - With lcx_train_config.grad_dtype = 1 the layers' four matrices (qkv, attention projection,
//   fc, fc projection: over 90% of a 1.3B model) keep bf16 gradients in a buffer of their own,
//   and the other tensors' fp32 gradients are packed in canonical order without them: 2 bytes
//   per matrix parameter less (2.25 GiB on 1.3B). cuBLASLt computes each micro-batch's weight
//   gradient in fp32 and rounds it once into the bf16 sum (beta = 1), so accumulating several
//   micro-batches adds one rounding per micro-batch: the app asks for it only for steps of one
//   micro-batch. The norm, the clip and AdamW read both buffers as fp32; get_grads converts back
//   to the canonical fp32 layout.
// - With fp32 masters and those bf16 gradients, the bf16 gradient buffer carries nothing between
//   the optimizer step and the next backward, so AdamW leaves the new weights there, rounded to
//   bf16 (the bits the per-layer conversion below would give), and the forward, the backward's
//   recompute and its input gradients read them: no fp32 -> bf16 conversion of the matrices,
//   twice per step (~9 ms of a 1.3B step), for no memory. The backward zeroes layer l's slots
//   and accumulates its gradients there once its input gradients are done; the step then
//   consumes the gradients (the next backward starts from zero, as after zero_grad).
//   LCX_CUDA_W16_IN_GRADS=0 turns this off.
// - In fp32-master mode there is no second, bf16 copy of the model: each layer's four matrices
//   (and the two biases that go through cuBLASLt's epilogue) are converted into a one-layer
//   staging buffer right before that layer runs. That costs ~12 bytes of traffic per parameter
//   per pass (~1% of a step) and saves 2 bytes per parameter (2.6 GB on a 1.3B model). wte gets
//   a persistent bf16 copy because the classifier reads it once per chunk.
// - The residual stream is fp32. With activation recompute only the residual entering each
//   layer is kept (fp32 (B*T, C) per layer); one layer's activations are recomputed right
//   before its backward.
// - Biases of the two output projections are added inside the next LayerNorm kernel, since the
//   projections write the fp32 residual with cuBLASLt beta = 1 (x + y) and no bias epilogue.
//   Decoding with the decode fusions (one row, GEMVs: DecodeFuse::norm) is the exception: the
//   LayerNorms run inside the next GEMV and the projection GEMVs add their own bias, so there
//   nothing is pending, the final LayerNorm included.
//
// Every CUDA / cuBLASLt call is checked (cuda_check.hpp); errors are lcx::Error, never exit.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "../core/backend.hpp"
#include "../core/config.hpp"
#include "../core/cuda_options.hpp"
#include "../core/error.hpp"
#include "allocator.hpp"
#include "attention.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "kernels.hpp"
#include "matmul.hpp"

namespace lcx {
namespace cuda {

namespace {

enum Tensor {
  WTE = 0, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW,
  FCPROJB, LNFW, LNFB
};

// The tensors whose gradients are bf16 with grad_dtype = 1 (cuBLASLt's weight-gradient outputs).
bool is_matrix(int t) { return t == QKVW || t == ATTPROJW || t == FCW || t == FCPROJW; }

constexpr int kClassifierChunk = 512;  // rows of logits held at once (fp32 + bf16 gradient), at least
// Prefill passes: at least kGenPiece tokens per pass, up to kGenPieceMax when memory allows
// (CudaGen::piece_tokens).
constexpr int kGenPiece = 1024;
constexpr int kGenPieceMax = 8192;

size_t round8(size_t v) { return (v + 7) / 8 * 8; }

// Pointers to one layer's bf16 operands of cuBLASLt.
struct LayerW16 {
  const bf16 *qkvw, *qkvb, *attprojw, *fcw, *fcb, *fcprojw;
};

// Generation's one-row fusions (layer_forward): where the qkv product appends K and V.
struct DecodeFuse {
  bf16* kcache;
  bf16* vcache;
  int len;               // cache rows before this token (host value) ...
  const int* dev_len;    // ... or read on the device (the decode graph)
  bool appended = false;
  // Decode fusions (the same for every layer of a feed piece: CudaGen::feed): LayerNorms in the
  // GEMV prologues, output-projection biases in the GEMV epilogues, nothing pending.
  bool norm = false;
};

// Activation pointers of one layer (one slot of the activation arrays).
struct LayerActs {
  float* res_in;   // (N, C) input residual; its pending bias is added by LN1 when asked
  float* res_mid;  // (N, C) after attention
  float* res_out;  // (N, C) after the MLP, or nullptr (recompute: already stored)
  bf16 *ln1, *qkv, *att, *ln2;
  bf16* fch;   // (N, n_inner) MLP pre-activation, kept for the backward; nullptr: not kept
  bf16* fchg;  // (N, n_inner) its GELU
  float *ln1_mean, *ln1_rstd, *ln2_mean, *ln2_rstd, *lse;
};

struct PlanSlot {
  int kind = 0, window = 0;
  AttnPattern pat;
  AttnPlan plan;
  DBuf bufs[kPlanArrays];
};

}  // namespace

class CudaBackend;

class CudaGen : public GenState {
 public:
  CudaGen(CudaBackend& be, int max_tokens);
  void feed(const int32_t* tokens, int n, float* logits) override;
  int length() const override { return len_; }
  int capacity() const override { return cap_; }
  void reset() override { len_ = 0; }
  ~CudaGen() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  }

 private:
  int piece_tokens(int n) const;
  CudaBackend& be_;
  int cap_, len_ = 0;
  DBuf w16_;  // full bf16 parameter copy (fp32-master backends), canonical layout
  DBuf kc_, vc_;  // (L, cap, C) bf16
  DBuf res_, ln1_, qkv_, att_, resm_, ln2_, fchg_, stats_, lse_, lnf_, logits_, tok_, pos_;
  DBuf dec_;  // attention_decode partials, sized for the whole cache once
  size_t dec_floats_ = 0;
  DBuf step_;  // graph replay inputs: token, position, cache length
  bool graph_enabled_ = true;  // LCX_CUDA_DECODE_GRAPH=0 turns the decode graph off
  // Programmatic dependent launch inside the decode graph (sm_90+; LCX_CUDA_PDL=0 turns it off,
  // and a capture that fails with it is retried without it).
  bool pdl_ = false;
  // Decode fusions: LayerNorm in the GEMV prologues, biases in the projection GEMVs, the attention
  // merge in the split kernel. LCX_CUDA_DECODE_FUSE=0 restores the separate kernels.
  bool decode_fuse_ = true;
  int piece_env_ = 0;  // LCX_CUDA_GEN_PIECE: fixed tokens per prefill pass (experiments, tests)
  cudaGraphExec_t graph_exec_ = nullptr;
  std::vector<const void*> graph_key_;
  std::vector<PlanSlot> plans_;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(const lcx_config& cfg) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
      (void)cudaGetLastError();
      fail(LCX_ERR_BACKEND, "CUDA backend: no CUDA device is available (%s)",
           e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
    }
    LCX_CUDA_CHECK(cudaGetDevice(&dev_));
    LCX_CUDA_CHECK(cudaFree(nullptr));  // creates the primary context for the driver API
    LCX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    alloc_.reset(new DeviceAllocator(cuda_allocator_expandable() != 0, dev_));
    mm_.reset(new Matmul(*alloc_));
    configure(cfg);
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    free_all();
    mm_.reset();
    alloc_.reset();
    cudaStreamDestroy(stream_);
  }

  lcx_backend kind() const override { return LCX_BACKEND_CUDA; }

  // ---- configuration and parameters -------------------------------------------------------

  void configure(const lcx_config& cfg) override {
    const int C = cfg.n_embd, NH = cfg.n_head;
    if (NH <= 0 || C % NH != 0)
      fail(LCX_ERR_ARG, "CUDA backend: n_embd %d is not a multiple of n_head %d", C, NH);
    if (!attention_head_dim_supported(C / NH))
      fail(LCX_ERR_UNSUPPORTED,
           "CUDA backend: head size %d (n_embd %d / n_head %d) is not supported; the attention "
           "kernels support 32, 64, 96 and 128 (use the CPU backend for this model)",
           C / NH, C, NH);
    if (C % 8 || cfg.n_inner % 8)
      fail(LCX_ERR_UNSUPPORTED, "CUDA backend: n_embd (%d) and n_inner (%d) must be multiples of 8",
           C, cfg.n_inner);
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    free_all();
    cfg_ = cfg;
    lay_ = param_layout(cfg);
    p32_.reset(*alloc_, lay_.total * sizeof(float), "parameters (fp32)");
    bf16_master_ = false;
    bf16_grads_ = false;
    w16g_on_ = false;
    w16g_layers_ = 0;
    // Sparse layout for the configured n_positions (the top-left corner serves shorter T).
    layout_host_.clear();
    layout_heads_ = 1;
    bool any_sparse = false;
    for (int l = 0; l < cfg.n_layer; l++) any_sparse |= cfg.attn_kind[l] == LCX_ATTN_SPARSE;
    if (any_sparse) {
      std::vector<uint8_t> full = fixed_sparse_layout(cfg.sparse, NH, cfg.n_positions);
      nb_ = (cfg.n_positions + cfg.sparse.block - 1) / cfg.sparse.block;
      layout_heads_ = cfg.sparse.different_layout_per_head ? NH : 1;
      layout_host_.assign(full.begin(), full.begin() + (size_t)layout_heads_ * nb_ * nb_);
      layout_dev_.reset(*alloc_, layout_host_.size(), "sparse layout");
      LCX_CUDA_CHECK(cudaMemcpyAsync(layout_dev_.get(), layout_host_.data(), layout_host_.size(),
                                     cudaMemcpyHostToDevice, stream_));
    }
    staged_layer_ = -1;
    wte_dirty_ = true;
  }

  void set_params(const float* host) override {
    if (!bf16_master_) {
      LCX_CUDA_CHECK(cudaMemcpyAsync(p32_.get(), host, lay_.total * sizeof(float),
                                     cudaMemcpyHostToDevice, stream_));
    } else {
      chunked_host_to_bf16(p16_.as<bf16>(), host, lay_.total);
    }
    params_changed();
    w16g_fill();
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void get_params(float* host) override {
    if (!bf16_master_) {
      LCX_CUDA_CHECK(cudaMemcpyAsync(host, p32_.get(), lay_.total * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_));
    } else {
      chunked_bf16_to_host(host, p16_.as<bf16>(), lay_.total);
    }
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // ---- inference forward ------------------------------------------------------------------

  void forward(const Batch& b, float* nll, float* logits, float* loss) override {
    const int N = b.B * b.T;
    prepare_batch(b, /*backward=*/false);
    ensure_acts(N, /*train=*/false, false);
    run_forward(b, /*train=*/false);
    classifier(b, /*train=*/false, 0.f, logits);
    finish_loss(N, nll, loss);
  }

  // ---- training ---------------------------------------------------------------------------

  void train_init(const lcx_train_config& c) override {
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    tcfg_ = c;
    // Activation sizes depend on the mode (recompute, master dtype): drop them now so that the
    // next step maps exactly what the new mode needs (and peak stats see only that).
    acts_release();
    const bool want16 = c.master_dtype == 1;
    if (want16 && !bf16_master_) {
      p16_.reset(*alloc_, lay_.total * sizeof(bf16), "parameters (bf16 master)");
      f32_to_bf16(p16_.as<bf16>(), p32_.as<float>(), lay_.total, stream_);
      LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
      p32_.release();
      wte16_.release();
      bf16_master_ = true;
    } else if (!want16 && bf16_master_) {
      p32_.reset(*alloc_, lay_.total * sizeof(float), "parameters (fp32)");
      bf16_to_f32(p32_.as<float>(), p16_.as<bf16>(), lay_.total, stream_);
      LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
      p16_.release();
      bf16_master_ = false;
    }
    if (!grads_ || (c.grad_dtype == 1) != bf16_grads_) grads_alloc(c.grad_dtype == 1);
    if (!m_) m_.reset(*alloc_, lay_.total * sizeof(float), "AdamW m (fp32)");
    if (!v_) v_.reset(*alloc_, lay_.total * sizeof(float), "AdamW v (fp32)");
    const char* w16env = std::getenv("LCX_CUDA_W16_IN_GRADS");
    w16g_on_ = bf16_grads_ && !bf16_master_ && !(w16env && w16env[0] == '0');
    w16g_layers_ = 0;
    grads_zero();
    w16g_fill();
    LCX_CUDA_CHECK(cudaMemsetAsync(m_.get(), 0, m_.bytes(), stream_));
    LCX_CUDA_CHECK(cudaMemsetAsync(v_.get(), 0, v_.bytes(), stream_));
    step_ = 0;
    params_changed();
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void zero_grad() override {
    require_train("zero_grad");
    grads_zero();
  }

  float forward_backward(const Batch& b, float grad_scale) override {
    require_train("forward_backward");
    if (!b.targets) fail(LCX_ERR_ARG, "forward_backward: batch has no targets");
    const int N = b.B * b.T;
    prepare_batch(b, /*backward=*/true);
    const bool rc = tcfg_.recompute != 0;
    ensure_acts(N, /*train=*/true, rc);
    const float dscale = scored_ > 0 ? grad_scale / (float)scored_ : 0.f;
    run_forward(b, /*train=*/true);
    classifier(b, /*train=*/true, dscale, nullptr);
    run_backward(b);
    g16_fresh_ = false;  // the matrices' slots hold this backward's gradients
    float loss = 0.f;
    finish_loss(N, nullptr, &loss);
    return loss;
  }

  float optimizer_step(float lr) override {
    require_train("optimizer_step");
    // No backward since the gradients were zeroed: the matrices' buffer may hold weights.
    if (w16g_on_ && g16_fresh_) {
      LCX_CUDA_CHECK(cudaMemsetAsync(g16_.get(), 0, g16_.bytes(), stream_));
      w16g_layers_ = 0;
    }
    // One set of fixed-block partial sums per gradient buffer, added on the host in order.
    const int nb = grad_norm_blocks(), nparts = bf16_grads_ ? 2 : 1;
    partial_.grow(*alloc_, nparts * nb * sizeof(double), "grad norm partials");
    grad_sumsq(partial_.as<double>(), grads_.as<float>(), grads_.bytes() / sizeof(float), stream_);
    if (bf16_grads_)
      grad_sumsq(partial_.as<double>() + nb, g16_.as<bf16>(), g16_.bytes() / sizeof(bf16), stream_);
    std::vector<double> part((size_t)nparts * nb);
    LCX_CUDA_CHECK(cudaMemcpyAsync(part.data(), partial_.get(), part.size() * sizeof(double),
                                   cudaMemcpyDeviceToHost, stream_));
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    double ss = 0.0;
    for (double v : part) ss += v;
    const double norm = std::sqrt(ss);
    if (!std::isfinite(norm))
      fail(LCX_ERR_NUMERIC,
           "optimizer_step: the gradients hold NaN or Inf (global norm %g); parameters were not "
           "updated. Lower the learning rate, check the data, or skip this batch.",
           norm);
    // torch.nn.utils.clip_grad_norm_: scale by clip / (norm + 1e-6) when that is below 1.
    float gscale = 1.f;
    if (tcfg_.grad_clip > 0.f) {
      const double coef = (double)tcfg_.grad_clip / (norm + 1e-6);
      if (coef < 1.0) gscale = (float)coef;
    }
    step_++;
    const uint64_t seed = tcfg_.seed * 0x9E3779B97F4A7C15ull + (uint64_t)step_;
    for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
      const size_t off = lay_.offset[t], n = lay_.count[t];
      const float wd = param_decays(t) ? tcfg_.weight_decay : 0.f;
      float* m = m_.as<float>() + off;
      float* v = v_.as<float>() + off;
      // Master weights fp32 or bf16, gradient fp32 or bf16 (the matrices with grad_dtype = 1).
      auto update = [&](auto* p) {
        if (bf16_grads_ && is_matrix(t))
          adamw_update(p, G16(t), m, v, n, lr, tcfg_.beta1, tcfg_.beta2, tcfg_.eps, wd, gscale,
                       step_, seed, off, stream_, w16g_on_ ? G16(t) : nullptr);
        else
          adamw_update(p, G(t), m, v, n, lr, tcfg_.beta1, tcfg_.beta2, tcfg_.eps, wd, gscale,
                       step_, seed, off, stream_);
      };
      if (bf16_master_)
        update(p16_.as<bf16>() + off);
      else
        update(p32_.as<float>() + off);
    }
    params_changed();
    if (w16g_on_) {
      // The matrices' gradients became the new bf16 weights: the step consumes every gradient.
      w16g_layers_ = cfg_.n_layer;
      LCX_CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0, grads_.bytes(), stream_));
      g16_fresh_ = true;
    }
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return (float)norm;
  }

  void get_grads(float* host) override {
    require_train("get_grads");
    if (!bf16_grads_) {
      LCX_CUDA_CHECK(cudaMemcpyAsync(host, grads_.get(), grads_.bytes(), cudaMemcpyDeviceToHost, stream_));
    } else {
      // Back to the canonical fp32 layout: the packed fp32 tensors copied, the matrices converted.
      for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
        float* dst = host + lay_.offset[t];
        if (is_matrix(t) && w16g_on_ && g16_fresh_)
          std::fill(dst, dst + lay_.count[t], 0.f);  // zeroed (the buffer may hold weights)
        else if (is_matrix(t))
          chunked_bf16_to_host(dst, G16(t), lay_.count[t]);
        else
          LCX_CUDA_CHECK(cudaMemcpyAsync(dst, G(t), lay_.count[t] * sizeof(float),
                                         cudaMemcpyDeviceToHost, stream_));
      }
    }
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  bool has_optimizer_state() const override { return (bool)m_; }
  void get_optimizer_state(float* m, float* v) override {
    require_train("get_optimizer_state");
    LCX_CUDA_CHECK(cudaMemcpyAsync(m, m_.get(), m_.bytes(), cudaMemcpyDeviceToHost, stream_));
    LCX_CUDA_CHECK(cudaMemcpyAsync(v, v_.get(), v_.bytes(), cudaMemcpyDeviceToHost, stream_));
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void set_optimizer_state(const float* m, const float* v, int64_t step) override {
    require_train("set_optimizer_state");
    LCX_CUDA_CHECK(cudaMemcpyAsync(m_.get(), m, m_.bytes(), cudaMemcpyHostToDevice, stream_));
    LCX_CUDA_CHECK(cudaMemcpyAsync(v_.get(), v, v_.bytes(), cudaMemcpyHostToDevice, stream_));
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    step_ = step;
  }
  int64_t steps() const override { return step_; }

  std::unique_ptr<GenState> gen_create(int max_tokens) override {
    if (max_tokens <= 0 || max_tokens > cfg_.n_positions)
      fail(LCX_ERR_ARG, "gen_create: max_tokens %d must be in 1..n_positions (%d)", max_tokens,
           cfg_.n_positions);
    return std::unique_ptr<GenState>(new CudaGen(*this, max_tokens));
  }

  lcx_memory_stats memory_stats() override { return alloc_->stats(); }
  void reset_peak() override { alloc_->reset_peak(); }

 private:
  friend class CudaGen;

  // ---- helpers ------------------------------------------------------------------------------

  void require_train(const char* fn) const {
    if (!grads_) fail(LCX_ERR_ARG, "%s: call train_init first", fn);
  }

  void params_changed() {
    staged_layer_ = -1;
    wte_dirty_ = true;
  }

  void free_all() {
    acts_release();
    plans_.clear();  // releases the plans' device buffers
    for (DBuf* b : {&p32_, &p16_, &grads_, &g16_, &m_, &v_, &wte16_, &layer16_, &layout_dev_,
                    &partial_, &staging_, &d_tokens_, &d_targets_, &d_pos_, &d_seg_, &d_te_uniq_,
                    &d_te_start_, &d_te_rows_, &d_pe_uniq_, &d_pe_start_, &d_pe_rows_})
      b->release();
    step_ = 0;
  }

  size_t per_layer(int t) const { return lay_.count[t] / cfg_.n_layer; }
  // Offset of layer l's slice in tensor t (0 for the tensors that are not per layer).
  size_t layer_off(int t, int l) const {
    return (size_t)l * (t == WTE || t == WPE || t >= LNFW ? 0 : per_layer(t));
  }
  // Parameter pointer (fp32 or bf16 master) of tensor t, layer l.
  const void* P(int t, int l = 0) const {
    const size_t off = lay_.offset[t] + layer_off(t, l);
    return bf16_master_ ? (const void*)(p16_.as<bf16>() + off) : (const void*)(p32_.as<float>() + off);
  }
  // Gradient of tensor t, layer l: fp32 (every tensor, or all but the matrices when bf16_grads_)
  // or bf16 (the matrices when bf16_grads_). goff_ places t in its buffer.
  float* G(int t, int l = 0) const { return grads_.as<float>() + goff_[t] + layer_off(t, l); }
  bf16* G16(int t, int l = 0) const { return g16_.as<bf16>() + goff_[t] + layer_off(t, l); }

  // Gradient buffers for grad_dtype: fp32 in the canonical layout, or the matrices in a bf16
  // buffer and the other tensors packed in the same order in the fp32 one. The old buffers are
  // released first, so a switch never holds both.
  void grads_alloc(bool bf16_matrices) {
    grads_.release();
    g16_.release();
    size_t n32 = 0, n16 = 0;
    for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++) {
      size_t& n = bf16_matrices && is_matrix(t) ? n16 : n32;
      goff_[t] = n;
      n += lay_.count[t];
    }
    grads_.reset(*alloc_, n32 * sizeof(float), bf16_matrices ? "gradients (fp32, all but the matrices)"
                                                             : "gradients (fp32)");
    if (bf16_matrices) g16_.reset(*alloc_, n16 * sizeof(bf16), "gradients (bf16, layer matrices)");
    bf16_grads_ = bf16_matrices;
  }
  // Zero gradients. With bf16 weights in the matrices' gradient buffer (w16g_on_) that buffer
  // is left as it is and marked fresh: the next backward zeroes each layer's slots itself once
  // it has read the weights there.
  void grads_zero() {
    LCX_CUDA_CHECK(cudaMemsetAsync(grads_.get(), 0, grads_.bytes(), stream_));
    if (g16_ && !w16g_on_) LCX_CUDA_CHECK(cudaMemsetAsync(g16_.get(), 0, g16_.bytes(), stream_));
    g16_fresh_ = true;
  }
  // The current bf16 weights of the layer matrices into their (fresh) gradient slots.
  void w16g_fill() {
    if (!w16g_on_ || !g16_fresh_) return;
    for (int t = 0; t < LCX_NUM_PARAM_TENSORS; t++)
      if (is_matrix(t)) f32_to_bf16(G16(t), (const float*)P(t), lay_.count[t], stream_);
    w16g_layers_ = cfg_.n_layer;
  }
  // dW += dout^T inp for layer l's matrix t, into its fp32 or bf16 gradient. In a fresh bf16
  // buffer the slot is zeroed first (it may hold layer l's weights, read by then).
  void matrix_dw(int t, int l, const bf16* dout, const bf16* inp, int N, int IC, int OC) {
    if (!bf16_grads_) return mm_->linear_dw(G(t, l), dout, inp, N, IC, OC, stream_);
    if (w16g_on_ && g16_fresh_)
      LCX_CUDA_CHECK(cudaMemsetAsync(G16(t, l), 0, per_layer(t) * sizeof(bf16), stream_));
    mm_->linear_dw(G16(t, l), dout, inp, N, IC, OC, stream_);
  }

  void ln_fwd(bf16* out, float* mean, float* rstd, float* x, const void* add_bias, const void* w,
              const void* b, int N) {
    if (bf16_master_)
      layernorm_forward<bf16>(out, mean, rstd, x, (const bf16*)add_bias, (const bf16*)w,
                              (const bf16*)b, N, cfg_.n_embd, cfg_.layer_norm_eps, stream_);
    else
      layernorm_forward<float>(out, mean, rstd, x, (const float*)add_bias, (const float*)w,
                               (const float*)b, N, cfg_.n_embd, cfg_.layer_norm_eps, stream_);
  }
  // dx += the LayerNorm's input gradient; dx16 = dx in bf16 (the next product's operand, may be
  // dout itself) and dbias += column sums of dx (the bias gradient of the projection that wrote
  // this residual), both optional, in the same pass.
  void ln_bwd(float* dx, float* dw, float* db, bf16* dx16, float* dbias, const bf16* dout,
              const float* x, const float* mean, const float* rstd, const void* w, int N) {
    float* scratch = acts_.scratch.as<float>();
    if (bf16_master_)
      layernorm_backward<bf16>(dx, dw, db, dx16, dbias, scratch, dout, x, mean, rstd,
                               (const bf16*)w, N, cfg_.n_embd, stream_);
    else
      layernorm_backward<float>(dx, dw, db, dx16, dbias, scratch, dout, x, mean, rstd,
                                (const float*)w, N, cfg_.n_embd, stream_);
  }

  // bf16 operands of layer l: straight into the bf16 master, or staged from fp32. With the bf16
  // weights in the gradient buffer (l < w16g_layers_) the matrices are read there, except fcproj's,
  // copied to the stage: its gradient overwrites the slot before its input gradient is computed
  // (that product overwrites the GELU output the weight gradient reads).
  LayerW16 layer_w16(int l) {
    const int t_ids[6] = {QKVW, QKVB, ATTPROJW, FCW, FCB, FCPROJW};
    const bf16* ptr[6];
    if (bf16_master_) {
      for (int i = 0; i < 6; i++) ptr[i] = (const bf16*)P(t_ids[i], l);
    } else {
      const bool in_g16 = w16g_on_ && l < w16g_layers_;
      size_t total = 0;
      for (int t : t_ids) total += round8(per_layer(t));
      layer16_.grow(*alloc_, total * sizeof(bf16), "one layer's bf16 weights");
      bf16* dst = layer16_.as<bf16>();
      size_t off = 0;
      for (int i = 0; i < 6; i++) {
        const int t = t_ids[i];
        if (in_g16 && is_matrix(t) && t != FCPROJW) {
          ptr[i] = G16(t, l);
        } else {
          ptr[i] = dst + off;
          if (staged_layer_ != l || staged_in_g16_ != in_g16) {
            if (in_g16 && t == FCPROJW)
              LCX_CUDA_CHECK(cudaMemcpyAsync(dst + off, G16(t, l), per_layer(t) * sizeof(bf16),
                                             cudaMemcpyDeviceToDevice, stream_));
            else
              f32_to_bf16(dst + off, (const float*)P(t, l), per_layer(t), stream_);
          }
        }
        off += round8(per_layer(t));
      }
      staged_layer_ = l;
      staged_in_g16_ = in_g16;  // the stage then lacks three matrices
    }
    return {ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5]};
  }

  // wte as the classifier's bf16 operand. With the shared arena it is converted into the arena
  // on every call (the layer temporaries are free while the classifier runs; training makes the
  // copy stale every step anyway); otherwise a persistent copy, converted when stale.
  const bf16* wte_bf16() {
    if (bf16_master_) return (const bf16*)P(WTE);
    if (acts_.shared) {
      f32_to_bf16(acts_.wte16_p, (const float*)P(WTE), lay_.count[WTE], stream_);
      return acts_.wte16_p;
    }
    if (wte_dirty_ || !wte16_) {
      wte16_.grow(*alloc_, lay_.count[WTE] * sizeof(bf16), "wte (bf16 copy)");
      f32_to_bf16(wte16_.as<bf16>(), (const float*)P(WTE), lay_.count[WTE], stream_);
      wte_dirty_ = false;
    }
    return wte16_.as<bf16>();
  }

  void chunked_host_to_bf16(bf16* dst, const float* host, size_t n) {
    const size_t chunk = 16u << 20;
    staging_.grow(*alloc_, chunk * sizeof(float), "parameter staging");
    for (size_t i = 0; i < n; i += chunk) {
      const size_t c = std::min(chunk, n - i);
      LCX_CUDA_CHECK(cudaMemcpyAsync(staging_.get(), host + i, c * sizeof(float), cudaMemcpyHostToDevice, stream_));
      f32_to_bf16(dst + i, staging_.as<float>(), c, stream_);
      LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
  }
  void chunked_bf16_to_host(float* host, const bf16* src, size_t n) {
    const size_t chunk = 16u << 20;
    staging_.grow(*alloc_, chunk * sizeof(float), "parameter staging");
    for (size_t i = 0; i < n; i += chunk) {
      const size_t c = std::min(chunk, n - i);
      bf16_to_f32(staging_.as<float>(), src + i, c, stream_);
      LCX_CUDA_CHECK(cudaMemcpyAsync(host + i, staging_.get(), c * sizeof(float), cudaMemcpyDeviceToHost, stream_));
      LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
  }

  template <class T>
  void upload(DBuf& buf, const T* host, size_t n, const char* what) {
    buf.grow(*alloc_, std::max<size_t>(n, 1) * sizeof(T), what, /*slack=*/true);
    if (n)
      LCX_CUDA_CHECK(cudaMemcpyAsync(buf.get(), host, n * sizeof(T), cudaMemcpyHostToDevice, stream_));
  }

  // ---- batch preparation (host) -------------------------------------------------------------

  static void buckets(const std::vector<int32_t>& key, std::vector<int32_t>& uniq,
                      std::vector<int32_t>& start, std::vector<int32_t>& rows) {
    rows.resize(key.size());
    std::iota(rows.begin(), rows.end(), 0);
    std::stable_sort(rows.begin(), rows.end(), [&](int a, int b) { return key[a] < key[b]; });
    uniq.clear();
    start.clear();
    for (size_t i = 0; i < rows.size(); i++) {
      if (i == 0 || key[rows[i]] != key[rows[i - 1]]) {
        uniq.push_back(key[rows[i]]);
        start.push_back((int32_t)i);
      }
    }
    start.push_back((int32_t)rows.size());
  }

  void prepare_batch(const Batch& b, bool backward) {
    const int N = b.B * b.T, V = cfg_.vocab_size;
    if (b.T > cfg_.n_positions)
      fail(LCX_ERR_ARG, "batch T = %d exceeds n_positions = %d", b.T, cfg_.n_positions);
    for (int i = 0; i < N; i++)
      if (b.tokens[i] < 0 || b.tokens[i] >= V)
        fail(LCX_ERR_ARG, "token %d at index %d is outside the vocabulary (%d)", b.tokens[i], i, V);
    std::vector<int32_t> pos(N);
    for (int r = 0; r < b.B; r++)
      positions_for_row(b.segments ? b.segments + (size_t)r * b.T : nullptr, b.T, pos.data() + (size_t)r * b.T);
    upload(d_tokens_, b.tokens, N, "batch tokens");
    upload(d_pos_, pos.data(), N, "batch positions");
    scored_ = 0;
    if (b.targets) {
      for (int i = 0; i < N; i++) {
        if (b.targets[i] >= V) fail(LCX_ERR_ARG, "target %d at index %d is outside the vocabulary", b.targets[i], i);
        scored_ += b.targets[i] >= 0;
      }
      upload(d_targets_, b.targets, N, "batch targets");
    }
    has_targets_ = b.targets != nullptr;
    if (b.segments) upload(d_seg_, b.segments, N, "batch segments");
    has_seg_ = b.segments != nullptr;
    if (backward) {
      std::vector<int32_t> tok(b.tokens, b.tokens + N), u, s, r;
      buckets(tok, u, s, r);
      te_U_ = (int)u.size();
      upload(d_te_uniq_, u.data(), u.size(), "embedding buckets");
      upload(d_te_start_, s.data(), s.size(), "embedding buckets");
      upload(d_te_rows_, r.data(), r.size(), "embedding buckets");
      buckets(pos, u, s, r);
      pe_U_ = (int)u.size();
      upload(d_pe_uniq_, u.data(), u.size(), "embedding buckets");
      upload(d_pe_start_, s.data(), s.size(), "embedding buckets");
      upload(d_pe_rows_, r.data(), r.size(), "embedding buckets");
    }
    make_plans(plans_, layer_plan_, b.B, b.T, b.T, 0, b.segments, backward);
  }

 public:
  // Builds (or rebuilds) one plan per distinct attention pattern of the model, uploads them.
  // build = false only sets the slots' patterns (decoding needs no tile plan: attention_decode).
  void make_plans(std::vector<PlanSlot>& slots, std::vector<int>& layer_slot, int B, int Tq, int Tk,
                  int q_offset, const int32_t* seg, bool backward, bool build = true) {
    layer_slot.assign(cfg_.n_layer, 0);
    for (int l = 0; l < cfg_.n_layer; l++) {
      const int kind = cfg_.attn_kind[l];
      const int window = kind == LCX_ATTN_WINDOW ? cfg_.attn_window[l] : 0;
      int found = -1;
      for (size_t i = 0; i < slots.size(); i++)
        if (slots[i].kind == kind && slots[i].window == window) found = (int)i;
      if (found < 0) {
        slots.emplace_back();
        found = (int)slots.size() - 1;
        slots[found].kind = kind;
        slots[found].window = window;
      }
      layer_slot[l] = found;
    }
    for (auto& s : slots) {
      AttnPattern& pat = s.pat;
      pat = AttnPattern{};
      pat.kind = s.kind;
      pat.window = s.window;
      if (s.kind == LCX_ATTN_SPARSE) {
        pat.layout_host = layout_host_.data();
        pat.layout_dev = layout_dev_.as<uint8_t>();
        pat.nb = nb_;
        pat.block = cfg_.sparse.block;
        pat.layout_heads = layout_heads_;
      }
      // Rebuilt and uploaded only when the batch shape, pattern or documents changed.
      if (build && build_attn_plan(s.plan, pat, B, Tq, Tk, q_offset, seg, backward)) {
        for (int i = 0; i < kPlanArrays; i++) {
          upload(s.bufs[i], s.plan.h[i].data(), s.plan.h[i].size(), "attention plan");
          s.plan.d[i] = s.bufs[i].as<int>();
        }
      }
    }
  }

 private:
  // ---- activations --------------------------------------------------------------------------

  struct Acts {
    int N = 0;
    bool train = false, recompute = false;
    int nres = 0, nlay = 0, natt = 0;
    DBuf res, att, fchg, stats, lse, lnf, lnf_stats, dres, dC, dvec, scratch, nll;
    // The kept layers' temporaries, the qkv / n_inner gradient buffers and the classifier's
    // buffers, carved from one allocation. Training with recompute keeps one layer, recomputed
    // right before its backward, so these are never live at the same time as the classifier's
    // (logits, their gradient, the bf16 wte): then both sets start at offset 0 (shared).
    DBuf arena;
    bool shared = false;
    int cls_rows = kClassifierChunk;  // classifier rows per chunk
    float *resm_p = nullptr, *logits_p = nullptr;
    bf16 *ln1_p = nullptr, *qkv_p = nullptr, *ln2_p = nullptr, *fch_p = nullptr, *dF_p = nullptr,
         *dqkv_p = nullptr, *dlogits_p = nullptr, *wte16_p = nullptr;
  } acts_;

  void acts_release() {
    for (DBuf* b : {&acts_.res, &acts_.att, &acts_.fchg, &acts_.stats, &acts_.lse, &acts_.lnf,
                    &acts_.lnf_stats, &acts_.dres, &acts_.dC, &acts_.dvec, &acts_.scratch, &acts_.nll,
                    &acts_.arena})
      b->release();
    acts_.N = 0;
    acts_.shared = false;
  }

  // Sized for the largest B*T seen; a smaller batch reuses the buffers, a larger one (a stage
  // change) frees them and maps new ones in the same address range.
  void ensure_acts(int N, bool train, bool recompute) {
    const int L = cfg_.n_layer;
    const int nres = train ? L + 1 : 2;
    const int nlay = train && !recompute ? L : 1;
    // Attention output and its log-sum-exp are kept for every layer even with recompute: the
    // recompute then redoes the cheap matmul-side work but never the attention forward, the
    // most expensive thing to redo at long context (8 KB per token per layer at C=2048).
    // In lean mode (bf16 master weights) the attention output is recomputed too, trading ~15%
    // of step time for 8 KB per token per layer, so that 1.3B at 8192 fits a 24 GB card.
    const int natt = train && (!recompute || !bf16_master_) ? L : 1;
    // Training buffers serve inference too (evaluation between steps must not remap memory).
    if (acts_.N >= N && (train ? acts_.train && acts_.nlay == nlay && acts_.natt == natt : true)) return;
    const int Nc = N;
    acts_release();
    const size_t C = cfg_.n_embd, F = cfg_.n_inner, NH = cfg_.n_head, V = cfg_.vocab_size;
    const size_t n = (size_t)Nc;
    DeviceAllocator& a = *alloc_;
    size_t R = std::min<size_t>(n, kClassifierChunk);
    const size_t Vp = round8(V);
    acts_.res.reset(a, nres * n * C * 4, "activations: residual stream");
    acts_.att.reset(a, natt * n * C * 2, "activations: attention out");
    acts_.stats.reset(a, nlay * n * 4 * 4, "activations: layernorm stats");
    acts_.lse.reset(a, natt * n * NH * 4, "activations: attention lse");
    acts_.lnf.reset(a, n * C * 2, "activations: lnf");
    acts_.lnf_stats.reset(a, n * 2 * 4, "activations: lnf stats");
    acts_.nll.reset(a, n * 4, "per-token nll");
    // Sizes of the per-layer temporaries (nlay slots) and of the classifier's buffers.
    auto al = [](size_t b) { return (b + 255) / 256 * 256; };
    const size_t b_ln1 = al(nlay * n * C * 2), b_qkv = al(nlay * n * 3 * C * 2), b_resm = al(nlay * n * C * 4),
                 b_ln2 = al(nlay * n * C * 2), b_fch = al(nlay * n * F * 2),
                 b_dF = train ? al(n * std::max(F, C) * 2) : 0, b_dqkv = train ? al(n * 3 * C * 2) : 0;
    acts_.shared = train && nlay == 1;
    const size_t layer = b_ln1 + b_qkv + b_resm + b_ln2 + b_fch + b_dF + b_dqkv;
    const size_t b_wte = acts_.shared && !bf16_master_ ? al(V * C * 2) : 0;
    // Shared: chunks as large as the layer temporaries leave room for (whole multiples of 512
    // rows). Each chunk's wte-gradient product reads and writes all of dwte (0.8 GB at 1.3B)
    // and the other two read wte: at 2048 x 6 tokens 2048-row chunks instead of 512 move
    // ~15 GB less per step, for no memory.
    auto cls_bytes = [&](size_t r) { return al(r * Vp * 4) + (train ? al(r * Vp * 2) : 0) + b_wte; };
    if (acts_.shared)
      while (R + kClassifierChunk <= n && cls_bytes(R + kClassifierChunk) <= layer) R += kClassifierChunk;
    acts_.cls_rows = (int)R;
    const size_t b_logits = al(R * Vp * 4), b_dlogits = train ? al(R * Vp * 2) : 0;
    const size_t cls = b_logits + b_dlogits + b_wte;
    // Shared: recompute redoes every layer's temporaries right before its backward (the last
    // one too, run_backward), so the classifier may overwrite them: at 8192 tokens of the 1.3B
    // model this saves the classifier's 0.34 GiB (issue 5: standard mode <= 0.9x the anchor),
    // and the persistent wte copy (wte_bf16).
    if (acts_.shared) wte16_.release();
    acts_.arena.reset(a, acts_.shared ? std::max(layer, cls) : layer + cls,
                      acts_.shared ? "activations: one layer's temporaries / classifier (shared)"
                                   : "activations: layer temporaries and classifier chunk");
    char* p = acts_.arena.as<char>();
    size_t o = 0;
    auto take = [&](size_t b) { char* q = b ? p + o : nullptr; o += b; return q; };
    acts_.ln1_p = (bf16*)take(b_ln1);
    acts_.qkv_p = (bf16*)take(b_qkv);
    acts_.resm_p = (float*)take(b_resm);
    acts_.ln2_p = (bf16*)take(b_ln2);
    acts_.fch_p = (bf16*)take(b_fch);
    acts_.dF_p = (bf16*)take(b_dF);
    acts_.dqkv_p = (bf16*)take(b_dqkv);
    if (acts_.shared) o = 0;
    acts_.logits_p = (float*)take(b_logits);
    acts_.dlogits_p = (bf16*)take(b_dlogits);
    acts_.wte16_p = (bf16*)take(b_wte);
    // GELU output is a temporary: training reuses the (N, n_inner) gradient buffer for it in the
    // forward and recomputes it from the fc output in the backward.
    if (!train) acts_.fchg.reset(a, n * F * 2, "activations: gelu");
    if (train) {
      acts_.dres.reset(a, n * C * 4, "gradients: residual");
      acts_.dC.reset(a, n * C * 2, "gradients: (N, C) bf16");
      acts_.dvec.reset(a, n * NH * 4, "gradients: attention dvec");
      const size_t sc = std::max(layernorm_backward_scratch((int)C),
                                 bias_grad_scratch((int)std::max(3 * C, std::max(F, C))));
      acts_.scratch.reset(a, sc * 4, "gradient reduction scratch");
    }
    acts_.N = Nc;
    acts_.train = train;
    acts_.recompute = recompute;
    acts_.nres = nres;
    acts_.nlay = nlay;
    acts_.natt = natt;
  }

  LayerActs layer_acts(int l, int N, bool train) {
    const size_t C = cfg_.n_embd, F = cfg_.n_inner, NH = cfg_.n_head, n = (size_t)acts_.N;
    const size_t s = acts_.nlay == 1 ? 0 : (size_t)l;
    float* res = acts_.res.as<float>();
    LayerActs la{};
    if (train) {
      la.res_in = res + (size_t)l * n * C;
      la.res_out = res + (size_t)(l + 1) * n * C;
    } else {
      la.res_in = res + (size_t)(l & 1) * n * C;
      la.res_out = res + (size_t)((l + 1) & 1) * n * C;
    }
    la.res_mid = acts_.resm_p + s * n * C;
    la.ln1 = acts_.ln1_p + s * n * C;
    la.qkv = acts_.qkv_p + s * n * 3 * C;
    const size_t sa = acts_.natt == 1 ? 0 : (size_t)l;
    la.att = acts_.att.as<bf16>() + sa * n * C;
    la.ln2 = acts_.ln2_p + s * n * C;
    la.fch = train ? acts_.fch_p + s * n * F : nullptr;  // only a backward reads the pre-activation
    la.fchg = acts_.train ? acts_.dF_p : acts_.fchg.as<bf16>();
    float* st = acts_.stats.as<float>() + s * n * 4;
    la.ln1_mean = st;
    la.ln1_rstd = st + n;
    la.ln2_mean = st + 2 * n;
    la.ln2_rstd = st + 3 * n;
    la.lse = acts_.lse.as<float>() + sa * n * NH;
    (void)N;
    return la;
  }

  // ---- the layer ----------------------------------------------------------------------------

  using AttnFn = std::function<void(const bf16* qkv, bf16* att, float* lse)>;

  // One transformer block forward. add_bias: the previous block's MLP output bias, still
  // pending on res_in (nullptr when res_in is complete). res_out == nullptr skips the MLP
  // output projection (recompute: the block's output is already stored).
  // fuse (generation only, one row): the qkv matrix-vector product also appends K and V to the
  // cache (fuse->appended tells the attention callback), and the MLP's first one applies GELU,
  // two kernels fewer per layer; fch is then not written (training's backward would need it).
  // fuse->norm (decode fusions): the qkv and fc GEMVs normalise res_in / res_mid themselves (ln1,
  // ln2 and their stats are not written) and the two projection GEMVs add their bias, so res_in
  // must be complete (add_bias nullptr) and res_out is left complete.
  void layer_forward(int l, const LayerActs& la, const LayerW16& w, int N, const void* add_bias,
                     const AttnFn& attn, DecodeFuse* fuse = nullptr) {
    const int C = cfg_.n_embd, F = cfg_.n_inner;
    const bool fused = fuse && N == 1 && la.res_out && gemv_ok(w.qkvw, la.ln1, C) && gemv_ok(w.fcw, la.ln2, C);
    const bool norm = fuse && fuse->norm;
    // feed decided norm with decode_norm_ok for every layer; a bias must never be added twice
    // or not at all, so a mismatch here is a bug, not a fallback.
    if (norm && (!fused || add_bias || !decode_norm_ok(l, w, la.ln1, la.att, la.ln2, la.fchg)))
      fail(LCX_ERR_INTERNAL, "layer %d: decode fusions without their one-row products", l);
    auto with_ln = [&](GemvArgs& g, const float* x, int tw, int tb) {
      g.ln_x = x; g.ln_w = P(tw, l); g.ln_b = P(tb, l); g.ln_eps = cfg_.layer_norm_eps; g.p_bf16 = bf16_master_;
    };
    // out = resid + x W^T, + the bias when norm (else it stays pending for the next LayerNorm)
    auto residual = [&](float* out, const float* resid, const bf16* x, const bf16* wt, int tbias, int IC) {
      if (!norm) return mm_->linear_residual(out, resid, x, wt, N, IC, C, stream_);
      GemvArgs g{};
      g.out = out; g.resid = resid; g.w = wt; g.x = x; g.IC = IC; g.OC = C;
      g.res_bias = P(tbias, l); g.p_bf16 = bf16_master_;
      gemv_bf16(GEMV_RESIDUAL, g, stream_);
    };
    if (!norm) ln_fwd(la.ln1, la.ln1_mean, la.ln1_rstd, la.res_in, add_bias, P(LN1W, l), P(LN1B, l), N);
    if (fused) {
      GemvArgs g{};
      g.out = la.qkv; g.w = w.qkvw; g.x = la.ln1; g.bias = w.qkvb; g.IC = C; g.OC = 3 * C;
      g.kcache = fuse->kcache; g.vcache = fuse->vcache; g.C = C; g.len = fuse->len; g.dev_len = fuse->dev_len;
      if (norm) with_ln(g, la.res_in, LN1W, LN1B);
      gemv_bf16(GEMV_BF16, g, stream_);
      fuse->appended = true;
    } else {
      mm_->linear_bf16(la.qkv, la.ln1, w.qkvw, w.qkvb, N, C, 3 * C, stream_);
    }
    attn(la.qkv, la.att, la.lse);
    residual(la.res_mid, la.res_in, la.att, w.attprojw, ATTPROJB, C);
    if (!norm) ln_fwd(la.ln2, la.ln2_mean, la.ln2_rstd, la.res_mid, P(ATTPROJB, l), P(LN2W, l), P(LN2B, l), N);
    if (fused) {
      GemvArgs g{};
      g.out = la.fchg; g.w = w.fcw; g.x = la.ln2; g.bias = w.fcb; g.IC = C; g.OC = F;
      if (norm) with_ln(g, la.res_mid, LN2W, LN2B);
      gemv_bf16(GEMV_BF16_GELU, g, stream_);
    } else {
      // GELU in the product's epilogue; fch (the pre-activation, for the backward) when kept.
      // A recompute (res_out nullptr) leaves the GELU output for the backward's fcproj weight
      // gradient: the same product as the forward's, so the same values.
      mm_->linear_gelu(la.fchg, la.fch, la.ln2, w.fcw, w.fcb, N, C, F, stream_);
    }
    if (la.res_out) residual(la.res_out, la.res_mid, la.fchg, w.fcprojw, FCPROJB, F);
  }

  // Whether layer l can run the decode fusions (DecodeFuse::norm) with these activation rows:
  // all four products one-row GEMVs, the LayerNorm parameters fit for the GEMV prologue.
  bool decode_norm_ok(int l, const LayerW16& w, const bf16* ln1, const bf16* att, const bf16* ln2,
                      const bf16* fchg) const {
    const int C = cfg_.n_embd, F = cfg_.n_inner;
    return gemv_ok(w.qkvw, ln1, C) && gemv_ok(w.attprojw, att, C) && gemv_ok(w.fcw, ln2, C) &&
           gemv_ok(w.fcprojw, fchg, F) && gemv_ln_ok(P(LN1W, l), P(LN1B, l), C) &&
           gemv_ln_ok(P(LN2W, l), P(LN2B, l), C);
  }

  AttnArgs self_attn_args(const Batch& b, const bf16* qkv, bf16* att, float* lse) const {
    const int C = cfg_.n_embd;
    AttnArgs a{};
    a.B = b.B; a.NH = cfg_.n_head; a.HS = C / cfg_.n_head; a.Tq = b.T; a.Tk = b.T; a.q_offset = 0;
    a.q = qkv; a.k = qkv + C; a.v = qkv + 2 * C;
    a.q_row = a.kv_row = 3 * C;
    a.q_batch = a.kv_batch = (long long)b.T * 3 * C;
    a.o = att; a.o_row = C; a.o_batch = (long long)b.T * C;
    a.lse = lse;
    a.seg = has_seg_ ? d_seg_.as<int32_t>() : nullptr;
    a.seg_batch = b.T;
    return a;
  }

  void run_forward(const Batch& b, bool train) {
    const int N = b.B * b.T, C = cfg_.n_embd, L = cfg_.n_layer;
    float* res0 = acts_.res.as<float>();
    if (bf16_master_)
      encoder_forward<bf16>(res0, d_tokens_.as<int32_t>(), d_pos_.as<int32_t>(), (const bf16*)P(WTE),
                            (const bf16*)P(WPE), N, C, stream_);
    else
      encoder_forward<float>(res0, d_tokens_.as<int32_t>(), d_pos_.as<int32_t>(), (const float*)P(WTE),
                             (const float*)P(WPE), N, C, stream_);
    for (int l = 0; l < L; l++) {
      const LayerActs la = layer_acts(l, N, train);
      const LayerW16 w = layer_w16(l);
      PlanSlot& ps = plans_[layer_plan_[l]];
      layer_forward(l, la, w, N, l > 0 ? P(FCPROJB, l - 1) : nullptr,
                    [&](const bf16* qkv, bf16* att, float* lse) {
                      attention_forward(self_attn_args(b, qkv, att, lse), ps.pat, ps.plan, stream_);
                    });
    }
    // Final LayerNorm (adds the last block's pending MLP bias to the residual).
    float* resL = train ? res0 + (size_t)L * acts_.N * C : res0 + (size_t)(L & 1) * acts_.N * C;
    final_res_ = resL;
    float* st = acts_.lnf_stats.as<float>();
    ln_fwd(acts_.lnf.as<bf16>(), st, st + acts_.N, resL, P(FCPROJB, L - 1), P(LNFW), P(LNFB), N);
  }

  // Logits chunk by chunk; nll per token on the device; in training also dlogits, the
  // gradient into lnf (dC) and into wte.
  void classifier(const Batch& b, bool train, float dscale, float* logits_out) {
    const int N = b.B * b.T, C = cfg_.n_embd, V = cfg_.vocab_size, Vp = (int)round8(V);
    const bf16* wte = wte_bf16();
    for (int r0 = 0; r0 < N; r0 += acts_.cls_rows) {
      const int R = std::min(acts_.cls_rows, N - r0);
      const bf16* x = acts_.lnf.as<bf16>() + (size_t)r0 * C;
      float* lg = acts_.logits_p;
      mm_->gemm(lg, true, nullptr, wte, true, C, x, false, C, V, R, C, Vp, 1.f, 0.f, nullptr, stream_);
      classifier_forward_backward(lg, train ? acts_.dlogits_p : nullptr, acts_.nll.as<float>() + r0,
                                  has_targets_ ? d_targets_.as<int32_t>() + r0 : nullptr, dscale, R, V,
                                  Vp, stream_);
      if (logits_out)
        LCX_CUDA_CHECK(cudaMemcpy2DAsync(logits_out + (size_t)r0 * V, (size_t)V * 4, lg, (size_t)Vp * 4,
                                         (size_t)V * 4, R, cudaMemcpyDeviceToHost, stream_));
      if (train) {
        const bf16* dl = acts_.dlogits_p;
        // dlnf (R, C) = dlogits (R, V) wte (V, C);  dwte (V, C) += dlogits^T lnf
        mm_->gemm(acts_.dC.as<bf16>() + (size_t)r0 * C, false, nullptr, wte, false, C, dl, false, Vp,
                  C, R, V, C, 1.f, 0.f, nullptr, stream_);
        mm_->gemm(G(WTE), true, G(WTE), x, false, C, dl, true, Vp, C, V, R, C, 1.f, 1.f, nullptr, stream_);
      }
    }
  }

  void finish_loss(int N, float* nll_out, float* loss_out) {
    std::vector<float> nll(N);
    LCX_CUDA_CHECK(cudaMemcpyAsync(nll.data(), acts_.nll.get(), (size_t)N * 4, cudaMemcpyDeviceToHost, stream_));
    LCX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (nll_out) std::memcpy(nll_out, nll.data(), (size_t)N * 4);
    if (loss_out) {
      double s = 0.0;
      for (float v : nll) s += v;
      *loss_out = scored_ > 0 ? (float)(s / scored_) : 0.f;
    }
  }

  void run_backward(const Batch& b) {
    const int N = b.B * b.T, C = cfg_.n_embd, F = cfg_.n_inner, L = cfg_.n_layer;
    float* dres = acts_.dres.as<float>();
    bf16* dC = acts_.dC.as<bf16>();
    bf16* dF = acts_.dF_p;
    bf16* dqkv = acts_.dqkv_p;
    float* scratch = acts_.scratch.as<float>();
    LCX_CUDA_CHECK(cudaMemsetAsync(dres, 0, (size_t)N * C * 4, stream_));
    const float* st = acts_.lnf_stats.as<float>();
    // Each LayerNorm backward also leaves dres in bf16 in dC and sums the bias gradient of the
    // projection below it (none below layer 0's ln1: the embeddings read dres).
    ln_bwd(dres, G(LNFW), G(LNFB), dC, G(FCPROJB, L - 1), dC, final_res_, st, st + acts_.N, P(LNFW), N);
    for (int l = L - 1; l >= 0; l--) {
      LayerActs la = layer_acts(l, N, true);
      const LayerW16 w = layer_w16(l);
      PlanSlot& ps = plans_[layer_plan_[l]];
      // Without recompute every layer's activations are kept; with it, the last block's are
      // still there after the forward, unless the classifier reused their memory (arena).
      const bool recomputed = acts_.recompute && (l != L - 1 || acts_.shared);
      if (recomputed) {
        // res_in already carries its bias (added in the forward); the output is stored.
        LayerActs rc = la;
        rc.res_out = nullptr;
        if (acts_.natt > 1) {
          // att and lse of this layer were kept by the forward: no attention recompute.
          layer_forward(l, rc, w, N, nullptr, [](const bf16*, bf16*, float*) {});
        } else {
          layer_forward(l, rc, w, N, nullptr, [&](const bf16* qkv, bf16* att, float* lse) {
            attention_forward(self_attn_args(b, qkv, att, lse), ps.pat, ps.plan, stream_);
          });
        }
      }
      // dres = d loss / d res_out, dC = it in bf16.  MLP output projection (its bias gradient
      // was summed with dres).
      // The GELU output: the recompute left it in dF; stored activations keep only fch.
      if (!recomputed) gelu_forward(dF, la.fch, (size_t)N * F, stream_);
      matrix_dw(FCPROJW, l, dC, dF, N, F, C);
      mm_->linear_dinp_dgelu(dF, dC, w.fcprojw, la.fch, N, F, C, stream_);  // d fch
      bias_backward<bf16>(G(FCB, l), scratch, dF, N, F, stream_);
      // Input gradient first: the weight may sit in the slot matrix_dw overwrites (w16g_on_).
      mm_->linear_dinp(dC, dF, w.fcw, N, C, F, stream_);
      matrix_dw(FCW, l, dF, la.ln2, N, C, F);
      ln_bwd(dres, G(LN2W, l), G(LN2B, l), dC, G(ATTPROJB, l), dC, la.res_mid, la.ln2_mean,
             la.ln2_rstd, P(LN2W, l), N);
      // dres = d loss / d res_mid, dC = it in bf16.  Attention output projection.
      bf16* datt = dF;  // free again; (N, C) fits in (N, max(F, C))
      mm_->linear_dinp(datt, dC, w.attprojw, N, C, C, stream_);
      matrix_dw(ATTPROJW, l, dC, la.att, N, C, C);
      AttnArgs a = self_attn_args(b, la.qkv, la.att, la.lse);
      a.dout = datt;
      a.dvec = acts_.dvec.as<float>();
      a.dq = dqkv; a.dk = dqkv + C; a.dv = dqkv + 2 * C;
      a.dq_row = a.dkv_row = 3 * C;
      a.dq_batch = a.dkv_batch = (long long)b.T * 3 * C;
      attention_backward(a, ps.pat, ps.plan, stream_);
      bias_backward<bf16>(G(QKVB, l), scratch, dqkv, N, 3 * C, stream_);
      mm_->linear_dinp(dC, dqkv, w.qkvw, N, C, 3 * C, stream_);
      matrix_dw(QKVW, l, dqkv, la.ln1, N, C, 3 * C);
      if (w16g_on_) w16g_layers_ = std::min(w16g_layers_, l);  // layer l's slots hold gradients now
      ln_bwd(dres, G(LN1W, l), G(LN1B, l), l > 0 ? dC : nullptr, l > 0 ? G(FCPROJB, l - 1) : nullptr,
             dC, la.res_in, la.ln1_mean, la.ln1_rstd, P(LN1W, l), N);
    }
    // dres = d loss / d (wte[token] + wpe[pos])
    embedding_backward(G(WTE), dres, d_te_uniq_.as<int32_t>(), d_te_start_.as<int32_t>(),
                       d_te_rows_.as<int32_t>(), te_U_, C, stream_);
    embedding_backward(G(WPE), dres, d_pe_uniq_.as<int32_t>(), d_pe_start_.as<int32_t>(),
                       d_pe_rows_.as<int32_t>(), pe_U_, C, stream_);
  }

  // ---- state --------------------------------------------------------------------------------
  lcx_config cfg_{};
  lcx_param_layout lay_{};
  lcx_train_config tcfg_{};
  int dev_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<DeviceAllocator> alloc_;
  std::unique_ptr<Matmul> mm_;

  bool bf16_master_ = false;
  // grad_dtype = 1: the matrices' gradients in g16_ (bf16), the rest packed in grads_ (fp32);
  // goff_[t] = tensor t's offset in its buffer (grads_alloc).
  bool bf16_grads_ = false;
  size_t goff_[LCX_NUM_PARAM_TENSORS] = {};
  // The bf16 weights in the matrices' gradient buffer (see the top): w16g_on_ = the mode,
  // layers below w16g_layers_ still hold their weights there (the backward overwrites layers from
  // the top down), g16_fresh_ = no gradient since the last zeroing
  // (the next backward zeroes each slot before accumulating).
  bool w16g_on_ = false, g16_fresh_ = false, staged_in_g16_ = false;
  int w16g_layers_ = 0;
  DBuf p32_, p16_, grads_, g16_, m_, v_, wte16_, layer16_, partial_, staging_;
  int64_t step_ = 0;
  int staged_layer_ = -1;
  bool wte_dirty_ = true;

  std::vector<uint8_t> layout_host_;
  DBuf layout_dev_;
  int nb_ = 0, layout_heads_ = 1;

  DBuf d_tokens_, d_targets_, d_pos_, d_seg_;
  DBuf d_te_uniq_, d_te_start_, d_te_rows_, d_pe_uniq_, d_pe_start_, d_pe_rows_;
  int te_U_ = 0, pe_U_ = 0, scored_ = 0;
  bool has_targets_ = false, has_seg_ = false;
  std::vector<PlanSlot> plans_;
  std::vector<int> layer_plan_;
  float* final_res_ = nullptr;
};

// ---- generation -------------------------------------------------------------------------------

CudaGen::CudaGen(CudaBackend& be, int max_tokens) : be_(be), cap_(max_tokens) {
  const lcx_config& c = be.cfg_;
  DeviceAllocator& a = *be.alloc_;
  if (!be.bf16_master_) {
    // A bf16 copy of the weights: decoding reads every weight once per token, so staging from
    // fp32 per token would triple its traffic.
    w16_.reset(a, be.lay_.total * sizeof(bf16), "generation: bf16 weights");
    f32_to_bf16(w16_.as<bf16>(), be.p32_.as<float>(), be.lay_.total, be.stream_);
  }
  const size_t kv = (size_t)c.n_layer * cap_ * c.n_embd * sizeof(bf16);
  kc_.reset(a, kv, "generation: K cache");
  vc_.reset(a, kv, "generation: V cache");
  dec_floats_ = attention_decode_scratch(c.n_head, c.n_embd / c.n_head, cap_);
  dec_.reset(a, dec_floats_ * sizeof(float), "generation: decode attention partials");
  // Zero once: the split kernel's per-head arrival counters (the scratch's end) start at 0, and
  // every merge leaves them at 0.
  LCX_CUDA_CHECK(cudaMemsetAsync(dec_.get(), 0, dec_floats_ * sizeof(float), be.stream_));
  const char* g = std::getenv("LCX_CUDA_DECODE_GRAPH");
  graph_enabled_ = !(g && g[0] == '0');
  const char* df = std::getenv("LCX_CUDA_DECODE_FUSE");
  decode_fuse_ = !(df && df[0] == '0');
  const char* pdl = std::getenv("LCX_CUDA_PDL");
  int dev = 0, major = 0;
  LCX_CUDA_CHECK(cudaGetDevice(&dev));
  LCX_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  pdl_ = major >= 9 && !(pdl && pdl[0] == '0');
  if (const char* pe = std::getenv("LCX_CUDA_GEN_PIECE")) piece_env_ = std::max(0, std::atoi(pe));
  LCX_CUDA_CHECK(cudaStreamSynchronize(be.stream_));
}

// Tokens per prefill pass for n tokens still to feed. Wide passes keep the GPU busy: a 1024-token
// pass gives the attention kernels 16 query tiles per head, too few CTAs for the tail of an
// 8000-token prompt, and smaller matmuls. But a pass's activations cost ~(24 C + 2 n_inner)
// bytes per token (64 KB at 1.3B), so passes widen (doubling from kGenPiece) only while they take
// at most a quarter of the device's free memory: the evaluation inside a training run on a
// full 24 GB card keeps 1024-token passes.
int CudaGen::piece_tokens(int n) const {
  if (piece_env_ > 0) return std::min(n, piece_env_);
  if (n <= kGenPiece) return n;  // decoding and short prompts: no device query per token
  const lcx_config& c = be_.cfg_;
  const size_t per_token = (size_t)24 * c.n_embd + (size_t)2 * c.n_inner + 16 + (size_t)4 * c.n_head;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    (void)cudaGetLastError();
    free_b = 0;
  }
  int piece = kGenPiece;
  while (piece < kGenPieceMax && piece < n && (size_t)piece * 2 * per_token <= free_b / 4) piece *= 2;
  return std::min(n, piece);
}

void CudaGen::feed(const int32_t* tokens, int n, float* logits) {
  CudaBackend& be = be_;
  const lcx_config& c = be.cfg_;
  const int C = c.n_embd, F = c.n_inner, L = c.n_layer, NH = c.n_head, V = c.vocab_size;
  if (n < 0 || len_ + n > cap_)
    fail(LCX_ERR_ARG, "gen feed: %d + %d tokens exceed the cache of %d", len_, n, cap_);
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= V) fail(LCX_ERR_ARG, "gen feed: token %d outside the vocabulary", tokens[i]);
  if (n == 0) return;
  DeviceAllocator& a = *be.alloc_;
  cudaStream_t s = be.stream_;
  const bf16* W = be.bf16_master_ ? be.p16_.as<bf16>() : w16_.as<bf16>();
  auto w16_of = [&](int t, int l) { return W + be.lay_.offset[t] + (size_t)l * be.per_layer(t); };
  auto layer_w = [&](int l) {
    return LayerW16{w16_of(QKVW, l), w16_of(QKVB, l), w16_of(ATTPROJW, l), w16_of(FCW, l),
                    w16_of(FCB, l), w16_of(FCPROJW, l)};
  };
  for (int done = 0; done < n;) {
    const int m = piece_tokens(n - done);
    const size_t mm = (size_t)m;
    res_.grow(a, 2 * mm * C * 4, "generation: residual");
    ln1_.grow(a, mm * C * 2, "generation: activations");
    qkv_.grow(a, mm * 3 * C * 2, "generation: activations");
    att_.grow(a, mm * C * 2, "generation: activations");
    resm_.grow(a, mm * C * 4, "generation: activations");
    ln2_.grow(a, mm * C * 2, "generation: activations");
    fchg_.grow(a, mm * F * 2, "generation: activations");
    stats_.grow(a, mm * 4 * 4, "generation: activations");
    lse_.grow(a, mm * NH * 4, "generation: activations");
    lnf_.grow(a, (size_t)C * 2, "generation: activations");
    logits_.grow(a, round8(V) * 4, "generation: logits");
    // A one-token step (decoding) uses attention_decode, which needs no plan: building and
    // uploading a plan per token would cost host time and small copies on every step.
    const bool decode = m == 1;
    std::vector<int> layer_slot;
    be.make_plans(plans_, layer_slot, 1, m, len_ + m, len_, nullptr, false, !decode);
    for (const PlanSlot& ps : plans_)
      if (ps.kind == LCX_ATTN_SPARSE && ps.pat.nb * ps.pat.block < len_ + m)
        fail(LCX_ERR_ARG, "sparse attention: %d tokens exceed the layout built for %d positions",
             len_ + m, ps.pat.nb * ps.pat.block);
    // Decoding replays one captured CUDA graph per token: ~270 launches per token otherwise
    // cost more host time than the GPU needs for them. The graph reads the token, its position
    // and the cache length from step_ (device), so one capture serves every position; it is
    // captured again only when a buffer it uses moved (a larger prefill grew it).
    const bool use_graph = decode && graph_enabled_;
    const int* dstep = nullptr;
    if (use_graph) {
      const int32_t st[3] = {tokens[done], len_, len_};  // token, position, cache length
      step_.grow(a, 4 * sizeof(int32_t), "generation: step");
      LCX_CUDA_CHECK(cudaMemcpyAsync(step_.get(), st, sizeof st, cudaMemcpyHostToDevice, s));
      dstep = step_.as<int32_t>();
    } else {
      std::vector<int32_t> pos(m);
      for (int i = 0; i < m; i++) pos[i] = len_ + i;
      be.upload(tok_, tokens + done, m, "generation: tokens");
      be.upload(pos_, pos.data(), m, "generation: positions");
    }
    // Decode fusions (DecodeFuse::norm), decided once for the whole piece: with them no layer
    // leaves a bias pending, so whether the next layer and the final LayerNorm add one must not
    // change from layer to layer. The pointers checked are those of the captured graph's key.
    bool norm = decode && decode_fuse_;
    for (int l = 0; norm && l < L; l++)
      norm = be.decode_norm_ok(l, layer_w(l), ln1_.as<bf16>(), att_.as<bf16>(), ln2_.as<bf16>(),
                               fchg_.as<bf16>());
    float* res = res_.as<float>();
    // Everything on the stream for this piece (captured into the graph when use_graph).
    auto enqueue = [&]() {
      const int32_t* dtok = use_graph ? dstep : tok_.as<int32_t>();
      const int32_t* dpos = use_graph ? dstep + 1 : pos_.as<int32_t>();
      const int* dlen = use_graph ? dstep + 2 : nullptr;
      if (be.bf16_master_)
        encoder_forward<bf16>(res, dtok, dpos, (const bf16*)be.P(WTE), (const bf16*)be.P(WPE), m, C, s);
      else
        encoder_forward<float>(res, dtok, dpos, (const float*)be.P(WTE), (const float*)be.P(WPE), m, C, s);
      for (int l = 0; l < L; l++) {
        LayerActs la{};
        la.res_in = res + (size_t)(l & 1) * mm * C;
        la.res_out = res + (size_t)((l + 1) & 1) * mm * C;
        la.res_mid = resm_.as<float>();
        la.ln1 = ln1_.as<bf16>(); la.qkv = qkv_.as<bf16>(); la.att = att_.as<bf16>();
        la.ln2 = ln2_.as<bf16>(); la.fch = nullptr; la.fchg = fchg_.as<bf16>();  // no backward: no pre-activation
        float* st = stats_.as<float>();
        la.ln1_mean = st; la.ln1_rstd = st + mm; la.ln2_mean = st + 2 * mm; la.ln2_rstd = st + 3 * mm;
        la.lse = lse_.as<float>();
        const LayerW16 w = layer_w(l);
        PlanSlot& ps = plans_[layer_slot[l]];
        bf16* kc = kc_.as<bf16>() + (size_t)l * cap_ * C;
        bf16* vc = vc_.as<bf16>() + (size_t)l * cap_ * C;
        DecodeFuse fuse{kc, vc, len_, dlen};
        fuse.norm = norm;
        // Layer 0 starts from the embedding; later ones get the previous MLP bias unless the
        // projection GEMV added it (norm).
        be.layer_forward(l, la, w, m, l > 0 && !norm ? be.P(FCPROJB, l - 1) : nullptr,
                         [&](const bf16* qkv, bf16* att, float* lse) {
                           // Append this piece's keys and values (unless the qkv product did),
                           // then attend over the cache.
                           if (!fuse.appended) kv_append(kc, vc, qkv, m, C, len_, dlen, s);
                           AttnArgs aa{};
                           aa.B = 1; aa.NH = NH; aa.HS = C / NH; aa.Tq = m; aa.Tk = len_ + m; aa.q_offset = len_;
                           aa.q = qkv; aa.q_row = 3 * C; aa.q_batch = 0;
                           aa.k = kc; aa.v = vc; aa.kv_row = C; aa.kv_batch = 0;
                           aa.o = att; aa.o_row = C; aa.o_batch = 0;
                           aa.lse = lse;
                           if (use_graph) {
                             aa.Tk = cap_;  // grid sized for the whole cache, position on the device
                             attention_decode(aa, ps.pat, dec_.as<float>(), dec_floats_, s, dlen, decode_fuse_);
                           } else if (decode) {
                             attention_decode(aa, ps.pat, dec_.as<float>(), dec_floats_, s, nullptr, decode_fuse_);
                           } else {
                             attention_forward(aa, ps.pat, ps.plan, s);
                           }
                         },
                         &fuse);
      }
      if (use_graph || (done + m == n && logits)) {
        // Only the last token's logits: LayerNorm and the classifier on one row.
        float* last = res + (size_t)(L & 1) * mm * C + (size_t)(m - 1) * C;
        // The last block's MLP bias is still pending unless its projection GEMV added it (norm).
        be.ln_fwd(lnf_.as<bf16>(), nullptr, nullptr, last, norm ? nullptr : be.P(FCPROJB, L - 1), be.P(LNFW),
                  be.P(LNFB), 1);
        const bf16* wte = W + be.lay_.offset[WTE];
        be.mm_->linear_f32(logits_.as<float>(), lnf_.as<bf16>(), wte, 1, C, V, s);
      }
    };
    if (use_graph) {
      // Every pointer the captured work uses; a change means re-capture.
      const std::vector<const void*> key = {W, be.P(WTE), be.P(LNFW), res, resm_.get(), ln1_.get(), qkv_.get(), att_.get(),
                                            ln2_.get(), fchg_.get(), stats_.get(), lse_.get(),
                                            lnf_.get(), logits_.get(), step_.get(), dec_.get(),
                                            kc_.get(), vc_.get()};
      std::vector<const void*> full = key;
      for (const PlanSlot& ps : plans_) full.push_back(ps.pat.layout_dev);
      if (!graph_exec_ || full != graph_key_) {
        if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
        graph_exec_ = nullptr;
        // Captured with PDL when allowed; a driver that refuses PDL in a graph gets a plain one.
        for (bool with_pdl : {pdl_, false}) {
          cudaGraph_t graph = nullptr;
          LCX_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
          cudaError_t e = cudaSuccess;
          try {
            PdlScope scope(with_pdl);
            enqueue();
          } catch (const Error&) {
            if (!with_pdl) {
              cudaStreamEndCapture(s, &graph);
              if (graph) cudaGraphDestroy(graph);
              throw;
            }
            e = cudaErrorNotSupported;
          }
          const cudaError_t end = cudaStreamEndCapture(s, &graph);
          if (e == cudaSuccess) e = end;
          if (e == cudaSuccess) e = cudaGraphInstantiate(&graph_exec_, graph, 0);
          if (graph) cudaGraphDestroy(graph);
          if (e == cudaSuccess) break;
          (void)cudaGetLastError();
          graph_exec_ = nullptr;
          if (!with_pdl) LCX_CUDA_CHECK(e);
          pdl_ = false;  // remember: the next captures go without it
        }
        graph_key_ = full;
      }
      LCX_CUDA_CHECK(cudaGraphLaunch(graph_exec_, s));
    } else {
      enqueue();
    }
    len_ += m;
    done += m;
    if (done == n && logits)
      LCX_CUDA_CHECK(cudaMemcpyAsync(logits, logits_.get(), (size_t)V * 4, cudaMemcpyDeviceToHost, s));
  }
  LCX_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace cuda

bool cuda_backend_built() { return true; }

std::unique_ptr<Backend> make_cuda_backend(const lcx_config& cfg) {
  return std::unique_ptr<Backend>(new cuda::CudaBackend(cfg));
}

}  // namespace lcx
