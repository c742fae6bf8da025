// The CPU reference backend: fp32 everywhere, parameters / gradients / AdamW moments held in
// the canonical layout (so get/set are copies), activations allocated for the largest B*T seen.
// The layers themselves are in kernels.hpp; this class strings them together into the GPT-2
// forward, backward and optimizer step, and hands out KV caches (cpu_generate.cpp).
#pragma once
#include <memory>
#include <vector>

#include "../core/backend.hpp"
#include "host_memory.hpp"
#include "kernels.hpp"

namespace lcx::cpu {

// Indices of the canonical parameter tensors (longctx.h).
enum ParamTensor {
  WTE, WPE, LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB,
  LN2W, LN2B, FCW, FCB, FCPROJW, FCPROJB, LNFW, LNFB
};

// One layer's saved activations (rows N = B*T). Shapes in the comments.
struct LayerActs {
  float* ln1;       // (N,C)
  float* ln1_mean;  // (N)
  float* ln1_rstd;  // (N)
  float* qkv;       // (N,3C)
  float* atty;      // (N,C) attention output before the projection
  float* lse;       // (B,NH,T) log-sum-exp per query and head, for the backward
  float* res2;      // (N,C) residual after attention
  float* ln2;       // (N,C)
  float* ln2_mean;  // (N)
  float* ln2_rstd;  // (N)
  float* fch;       // (N,F) MLP pre-activation
  float* fch_gelu;  // (N,F)
  float* res3;      // (N,C) residual after the MLP = the layer's output
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const lcx_config& cfg);

  lcx_backend kind() const override { return LCX_BACKEND_CPU; }
  void configure(const lcx_config& cfg) override;
  void set_params(const float* host) override;
  void get_params(float* host) override;
  void forward(const Batch& b, float* nll, float* logits, float* loss) override;
  void train_init(const lcx_train_config& cfg) override;
  void zero_grad() override;
  float forward_backward(const Batch& b, float grad_scale) override;
  float optimizer_step(float lr) override;
  void get_grads(float* host) override;
  bool has_optimizer_state() const override { return !m_.empty(); }
  void get_optimizer_state(float* m, float* v) override;
  void set_optimizer_state(const float* m, const float* v, int64_t step) override;
  int64_t steps() const override { return step_; }
  std::unique_ptr<GenState> gen_create(int max_tokens) override;
  lcx_memory_stats memory_stats() override;
  void reset_peak() override { mem_->reset_peak(); }

  // ---- for the KV-cached decoder ----
  const lcx_config& config() const { return cfg_; }
  const float* param(int tensor) const { return params_.data() + layout_.offset[tensor]; }
  AttnPattern pattern(int layer) const;
  // Bumped by configure(): a KV cache built for an older shape refuses to run.
  uint64_t version() const { return version_; }
  const std::shared_ptr<MemoryCounter>& memory() const { return mem_; }

 private:
  void check_batch(const Batch& b, bool need_targets) const;
  void ensure_activations(int N, bool all_layers, bool with_grads);
  void ensure_classifier_scratch(int N);
  void prepare_rows(const Batch& b);  // positions and document starts
  void run_forward(const Batch& b);   // leaves the final LayerNorm output in lnf_
  void run_backward(const Batch& b);  // after the classifier wrote d(lnf)
  float* grad(int tensor) { return grads_.data() + layout_.offset[tensor]; }

  lcx_config cfg_{};
  lcx_param_layout layout_{};
  std::shared_ptr<MemoryCounter> mem_;
  HostBuffer<float> params_, grads_, m_, v_;
  HostBuffer<float> acts_;        // forward activations
  HostBuffer<float> grad_acts_;   // backward scratch: dres, dC, dqkv, dF
  HostBuffer<float> cls_scratch_; // classifier chunk
  HostBuffer<int32_t> rows_;      // positions (N) then first_same (N)
  BlockLayout sparse_layout_;

  // What acts_ is laid out for.
  int act_rows_ = 0;
  bool act_all_layers_ = false;
  int grad_rows_ = 0;
  int cls_rows_ = 0;
  std::vector<LayerActs> layers_;
  float* encoded_ = nullptr;   // (N,C)
  float* lnf_ = nullptr;       // (N,C)
  float* lnf_mean_ = nullptr;  // (N)
  float* lnf_rstd_ = nullptr;  // (N)
  const float* final_resid_ = nullptr;  // input of the final LayerNorm

  bool train_ready_ = false;
  lcx_train_config train_cfg_{};
  int64_t step_ = 0;
  uint64_t version_ = 0;
};

std::unique_ptr<GenState> make_cpu_gen_state(CpuBackend& backend, int max_tokens);

}  // namespace lcx::cpu
