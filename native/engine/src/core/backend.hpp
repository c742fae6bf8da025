// The seam between the C API and the compute backends. api.cpp owns the model's config and
// everything that is not arithmetic (files, position extension, sampling); a Backend owns the
// parameters, gradients, optimizer state and activations in its own memory and precision, and
// exchanges parameters with the outside world only in the canonical fp32 layout (longctx.h).
#pragma once
#include <cstdint>
#include <memory>

#include "longctx.h"

namespace lcx {

struct Batch {
  const int32_t* tokens;    // (B, T)
  const int32_t* targets;   // (B, T), -1 = not scored, or nullptr
  const int32_t* segments;  // (B, T) or nullptr
  int B, T;
};

// KV cache for one sequence, created by a backend for its current parameters.
class GenState {
 public:
  virtual ~GenState() = default;
  // Appends n tokens at positions length()..length()+n-1; writes the last token's logits
  // (V floats, host memory) when logits != nullptr.
  virtual void feed(const int32_t* tokens, int n, float* logits) = 0;
  virtual int length() const = 0;
  virtual int capacity() const = 0;
  virtual void reset() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual lcx_backend kind() const = 0;

  // (Re)shape for a config: called at creation and after extendPositions / set_attention.
  // Parameters are undefined afterwards until set_params; optimizer state is dropped.
  virtual void configure(const lcx_config& cfg) = 0;

  virtual void set_params(const float* host) = 0;  // canonical layout, layout.total floats
  virtual void get_params(float* host) = 0;

  // Inference forward; any output pointer may be nullptr (host memory).
  virtual void forward(const Batch& b, float* nll, float* logits, float* loss) = 0;

  virtual void train_init(const lcx_train_config& cfg) = 0;
  virtual void zero_grad() = 0;
  // Adds grad_scale * d(mean NLL over scored targets)/dparams to the gradients; returns loss.
  virtual float forward_backward(const Batch& b, float grad_scale) = 0;
  // Global-norm clip + AdamW; returns the norm before clipping. Throws LCX_ERR_NUMERIC, with
  // parameters untouched, when the gradients hold NaN/Inf.
  virtual float optimizer_step(float lr) = 0;
  virtual void get_grads(float* host) = 0;
  virtual bool has_optimizer_state() const = 0;
  virtual void get_optimizer_state(float* m, float* v) = 0;  // canonical layout
  virtual void set_optimizer_state(const float* m, const float* v, int64_t step) = 0;
  virtual int64_t steps() const = 0;

  virtual std::unique_ptr<GenState> gen_create(int max_tokens) = 0;

  virtual lcx_memory_stats memory_stats() = 0;
  virtual void reset_peak() = 0;
};

// Each throws lcx::Error(LCX_ERR_BACKEND) when that backend is not built or has no device.
std::unique_ptr<Backend> make_cpu_backend(const lcx_config& cfg);
std::unique_ptr<Backend> make_cuda_backend(const lcx_config& cfg);
bool cuda_backend_built();

}  // namespace lcx
