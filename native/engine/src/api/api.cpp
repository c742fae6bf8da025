// The C API (longctx.h): argument checks, error translation and everything around the backend
// that is not arithmetic. Every entry point runs inside `guarded`, so no C++ exception ever
// crosses into C, Node or Python: lcx::Error becomes its status, std::bad_alloc LCX_ERR_OOM,
// anything else LCX_ERR_INTERNAL, each with a message for lcx_last_error().
//
// Choices worth knowing:
// - Checkpoints restore the Adam moments and step only when lcx_train_init was called before
//   lcx_load_checkpoint (the resume path); otherwise only the parameters are loaded (evaluation).
// - lcx_extend_positions and lcx_set_attention reconfigure the backend. set_attention keeps the
//   optimizer state (shapes do not change); extend_positions resets it (fresh Adam, step 0) as
//   the header promises. If the backend cannot take the new shape (out of memory at 8k, say), the
//   model is put back as it was and the error is returned.
// - Generators made before such a reconfiguration refuse further use (their KV cache has the old
//   shapes); free them before lcx_model_free.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "../core/backend.hpp"
#include "../core/config.hpp"
#include "../core/cuda_options.hpp"
#include "../core/error.hpp"
#include "../core/host_params.hpp"
#include "../core/model.hpp"
#include "../core/sampling.hpp"
#include "../io/checkpoint.hpp"
#include "../io/hf_model.hpp"
#include "longctx.h"

namespace lcx {

namespace {

thread_local std::string t_last_error;
std::atomic<int> g_cuda_expandable{1};
std::atomic<int> g_num_threads{0};  // 0 = not set: the OpenMP default

void set_last_error(const char* msg) noexcept {
  try {
    t_last_error = msg;
  } catch (...) {
    // Out of memory while recording an out-of-memory error: the status still says it.
  }
}

// OpenMP's thread count is per calling thread, and the addon calls in from libuv worker
// threads, so the count chosen with lcx_set_num_threads is applied on every call.
void apply_thread_count() {
#if defined(_OPENMP)
  const int n = g_num_threads.load(std::memory_order_relaxed);
  if (n > 0 && omp_get_max_threads() != n) omp_set_num_threads(n);
#endif
}

template <class Fn>
lcx_status guarded(const char* fn_name, Fn&& fn) noexcept {
  try {
    apply_thread_count();
    fn();
    return LCX_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error((std::string(fn_name) + ": out of host memory").c_str());
    return LCX_ERR_OOM;
  } catch (const std::exception& e) {
    set_last_error((std::string(fn_name) + ": internal error: " + e.what()).c_str());
    return LCX_ERR_INTERNAL;
  } catch (...) {
    set_last_error((std::string(fn_name) + ": internal error (unknown exception)").c_str());
    return LCX_ERR_INTERNAL;
  }
}

lcx_model& model_of(lcx_model* m, const char* fn) {
  if (!m) fail(LCX_ERR_ARG, "%s: model is NULL", fn);
  if (!m->backend) fail(LCX_ERR_INTERNAL, "%s: model has no backend", fn);
  return *m;
}

void require_pointer(const void* p, const char* fn, const char* what) {
  if (!p) fail(LCX_ERR_ARG, "%s: %s is NULL", fn, what);
}

void require_train_ready(const lcx_model& m, const char* fn) {
  if (!m.train_ready) fail(LCX_ERR_ARG, "%s: call lcx_train_init first", fn);
}

std::unique_ptr<Backend> make_backend(int32_t kind, const lcx_config& cfg) {
  if (kind == LCX_BACKEND_CPU) return make_cpu_backend(cfg);
  if (kind == LCX_BACKEND_CUDA) return make_cuda_backend(cfg);
  fail(LCX_ERR_ARG, "backend %d is not 0 (CPU) or 1 (CUDA)", kind);
}

size_t total_floats(const lcx_config& cfg) { return param_layout(cfg).total; }

void check_count(const lcx_model& m, size_t count, const char* fn) {
  const size_t total = total_floats(m.cfg);
  if (count != total)
    fail(LCX_ERR_ARG, "%s: count = %zu floats, but the model has %zu (lcx_param_layout_of().total)",
         fn, count, total);
}

// capacity_floats > the current size reserves room for a later resize (position extension)
// so that growing never holds two copies of a multi-GB vector.
std::vector<float> host_params(lcx_model& m, size_t capacity_floats = 0) {
  std::vector<float> p;
  p.reserve(std::max(capacity_floats, total_floats(m.cfg)));
  p.resize(total_floats(m.cfg));
  m.backend->get_params(p.data());
  return p;
}

// Layers beyond n_layer are not part of the model; zeroing them keeps configs comparable.
lcx_config normalized(const lcx_config& in) {
  lcx_config c = in;
  for (int l = c.n_layer < 0 ? 0 : c.n_layer; l < LCX_MAX_LAYERS; l++) {
    c.attn_kind[l] = 0;
    c.attn_window[l] = 0;
  }
  for (int l = 0; l < c.n_layer && l < LCX_MAX_LAYERS; l++)
    if (c.attn_kind[l] != LCX_ATTN_WINDOW) c.attn_window[l] = 0;
  return c;
}

// Moves the backend to cfg with params (canonical layout of cfg). On failure the backend is put
// back to the model's current config with old_params() and the error rethrown.
void reconfigure(lcx_model& m, const lcx_config& cfg, const std::vector<float>& params,
                 bool keep_optimizer_state, const std::function<std::vector<float>()>& old_params) {
  std::vector<float> adam_m, adam_v;
  int64_t step = 0;
  const bool had_state = m.train_ready && m.backend->has_optimizer_state();
  if (had_state) {
    adam_m.resize(total_floats(m.cfg));
    adam_v.resize(total_floats(m.cfg));
    m.backend->get_optimizer_state(adam_m.data(), adam_v.data());
    step = m.backend->steps();
  }
  auto restore_training = [&](bool restore_state) {
    if (!m.train_ready) return;
    m.backend->train_init(m.train_cfg);
    if (restore_state && had_state) m.backend->set_optimizer_state(adam_m.data(), adam_v.data(), step);
  };
  try {
    m.backend->configure(cfg);
    m.backend->set_params(params.data());
    restore_training(keep_optimizer_state);
  } catch (...) {
    try {
      m.backend->configure(m.cfg);
      m.backend->set_params(old_params().data());
      restore_training(true);
    } catch (...) {
      // The original error is the one worth reporting.
    }
    throw;
  }
  m.cfg = cfg;
  m.config_version++;
}

Batch checked_batch(const lcx_model& m, const lcx_batch* b, const char* fn, bool need_targets) {
  if (!b) fail(LCX_ERR_ARG, "%s: batch is NULL", fn);
  if (!b->tokens) fail(LCX_ERR_ARG, "%s: batch.tokens is NULL", fn);
  if (b->B <= 0 || b->T <= 0)
    fail(LCX_ERR_ARG, "%s: batch.B = %d and batch.T = %d must both be > 0", fn, b->B, b->T);
  if (b->T > m.cfg.n_positions)
    fail(LCX_ERR_ARG, "%s: batch.T = %d is longer than the model's context n_positions = %d "
         "(extend the positions first)", fn, b->T, m.cfg.n_positions);
  const int64_t n = (int64_t)b->B * b->T;
  if (n > (int64_t)INT32_MAX)
    fail(LCX_ERR_ARG, "%s: batch.B x batch.T = %lld tokens is too many for one call", fn, (long long)n);
  if (need_targets && !b->targets)
    fail(LCX_ERR_ARG, "%s: batch.targets is NULL (training needs next-token targets)", fn);
  const int32_t V = m.cfg.vocab_size;
  for (int64_t i = 0; i < n; i++) {
    const int32_t tok = b->tokens[i];
    if (tok < 0 || tok >= V)
      fail(LCX_ERR_ARG, "%s: batch.tokens[%lld] (row %lld, position %lld) = %d is outside the "
           "vocabulary [0, %d)", fn, (long long)i, (long long)(i / b->T), (long long)(i % b->T),
           tok, V);
  }
  if (b->targets) {
    for (int64_t i = 0; i < n; i++) {
      const int32_t t = b->targets[i];
      if (t < -1 || t >= V)
        fail(LCX_ERR_ARG, "%s: batch.targets[%lld] (row %lld, position %lld) = %d is outside "
             "[-1, %d) (-1 = not scored)", fn, (long long)i, (long long)(i / b->T),
             (long long)(i % b->T), t, V);
    }
  }
  return Batch{b->tokens, b->targets, b->segments, b->B, b->T};
}

bool finite(float x) { return std::isfinite(x); }

lcx_gen& gen_of(lcx_gen* g, const char* fn) {
  if (!g) fail(LCX_ERR_ARG, "%s: generator is NULL", fn);
  if (!g->model || !g->state) fail(LCX_ERR_INTERNAL, "%s: generator has no model", fn);
  if (g->model->config_version != g->config_version)
    fail(LCX_ERR_ARG, "%s: the model was reconfigured (lcx_extend_positions / lcx_set_attention) "
         "after this generator was created; free it and create a new one", fn);
  return *g;
}

void check_gen_tokens(const lcx_gen& g, const int32_t* tokens, int32_t n, const char* fn) {
  const int32_t V = g.model->cfg.vocab_size;
  for (int32_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      fail(LCX_ERR_ARG, "%s: tokens[%d] = %d is outside the vocabulary [0, %d)", fn, i, tokens[i], V);
  const int have = g.state->length(), cap = g.state->capacity();
  if ((int64_t)have + n > cap)
    fail(LCX_ERR_ARG, "%s: the KV cache holds %d of its %d tokens; %d more would not fit "
         "(create the generator with a larger max_tokens, up to n_positions = %d)",
         fn, have, cap, n, g.model->cfg.n_positions);
}

int32_t sample_next(const lcx_gen& g, const lcx_sampling& s, uint64_t* rng_state) {
  return sample_token(g.last_logits.data(), g.model->cfg.vocab_size, s, g.tokens.data(),
                      (int)g.tokens.size(), rng_state);
}

}  // namespace

int cuda_allocator_expandable() { return g_cuda_expandable.load(); }

}  // namespace lcx

using lcx::fail;

// ---- errors, build ----------------------------------------------------------------------------

extern "C" LCX_API const char* lcx_last_error(void) { return lcx::t_last_error.c_str(); }

extern "C" LCX_API const char* lcx_status_name(lcx_status s) {
  switch (s) {
    case LCX_OK: return "LCX_OK";
    case LCX_ERR_ARG: return "LCX_ERR_ARG";
    case LCX_ERR_IO: return "LCX_ERR_IO";
    case LCX_ERR_FORMAT: return "LCX_ERR_FORMAT";
    case LCX_ERR_SHAPE: return "LCX_ERR_SHAPE";
    case LCX_ERR_DTYPE: return "LCX_ERR_DTYPE";
    case LCX_ERR_UNSUPPORTED: return "LCX_ERR_UNSUPPORTED";
    case LCX_ERR_OOM: return "LCX_ERR_OOM";
    case LCX_ERR_BACKEND: return "LCX_ERR_BACKEND";
    case LCX_ERR_NUMERIC: return "LCX_ERR_NUMERIC";
    case LCX_ERR_INTERNAL: return "LCX_ERR_INTERNAL";
  }
  return "LCX_ERR_UNKNOWN";
}

extern "C" LCX_API int32_t lcx_backends_available(void) {
  return (1 << LCX_BACKEND_CPU) | (lcx::cuda_backend_built() ? (1 << LCX_BACKEND_CUDA) : 0);
}

extern "C" LCX_API lcx_status lcx_set_num_threads(int32_t n) {
  return lcx::guarded("lcx_set_num_threads", [&] {
    if (n < 0) fail(LCX_ERR_ARG, "lcx_set_num_threads: n = %d must be >= 0 (0 = all cores)", n);
    int threads = n;
    if (threads == 0) {
      const unsigned hw = std::thread::hardware_concurrency();
      threads = hw > 0 ? (int)hw : 1;
    }
    lcx::g_num_threads.store(threads);
    lcx::apply_thread_count();
  });
}

extern "C" LCX_API int32_t lcx_get_num_threads(void) {
  const int n = lcx::g_num_threads.load();
  if (n > 0) return n;
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// ---- models -----------------------------------------------------------------------------------

extern "C" LCX_API lcx_status lcx_inspect(const char* dir, lcx_model_info* out) {
  return lcx::guarded("lcx_inspect", [&] {
    lcx::require_pointer(dir, "lcx_inspect", "dir");
    lcx::require_pointer(out, "lcx_inspect", "out");
    *out = lcx::inspect_hf_model(dir);
  });
}

extern "C" LCX_API lcx_status lcx_model_load(const char* dir, int32_t backend, lcx_model** out) {
  if (out) *out = nullptr;
  return lcx::guarded("lcx_model_load", [&] {
    lcx::require_pointer(dir, "lcx_model_load", "dir");
    lcx::require_pointer(out, "lcx_model_load", "out");
    lcx::LoadedHfModel loaded = lcx::load_hf_model(dir);
    auto m = std::make_unique<lcx_model>();
    m->cfg = lcx::normalized(loaded.cfg);
    m->backend = lcx::make_backend(backend, m->cfg);
    m->backend->set_params(loaded.params.data());
    m->hf_architecture = loaded.architecture;
    m->hf_config_json = std::move(loaded.config_json);
    *out = m.release();
  });
}

extern "C" LCX_API lcx_status lcx_model_create(const lcx_config* cfg, uint64_t seed,
                                               int32_t backend, lcx_model** out) {
  if (out) *out = nullptr;
  return lcx::guarded("lcx_model_create", [&] {
    lcx::require_pointer(cfg, "lcx_model_create", "cfg");
    lcx::require_pointer(out, "lcx_model_create", "out");
    const lcx_config c = lcx::normalized(*cfg);
    lcx::validate_config(c);
    auto m = std::make_unique<lcx_model>();
    m->cfg = c;
    m->backend = lcx::make_backend(backend, c);  // first: fail fast when there is no device
    std::vector<float> params(lcx::total_floats(c));
    lcx::init_gpt2_params(c, seed, params.data());
    m->backend->set_params(params.data());
    m->hf_architecture = lcx::default_hf_architecture(c.arch);
    *out = m.release();
  });
}

extern "C" LCX_API lcx_status lcx_model_save(lcx_model* m, const char* dir, int64_t max_shard_bytes) {
  return lcx::guarded("lcx_model_save", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_model_save");
    lcx::require_pointer(dir, "lcx_model_save", "dir");
    if (max_shard_bytes < 0)
      fail(LCX_ERR_ARG, "lcx_model_save: max_shard_bytes = %lld must be >= 0 (0 = one file)",
           (long long)max_shard_bytes);
    const std::vector<float> params = lcx::host_params(model);
    lcx::save_hf_model(dir, model.cfg, model.hf_architecture, model.hf_config_json, params.data(),
                       max_shard_bytes);
  });
}

extern "C" LCX_API void lcx_model_free(lcx_model* m) { delete m; }

extern "C" LCX_API lcx_status lcx_model_config(const lcx_model* m, lcx_config* out) {
  return lcx::guarded("lcx_model_config", [&] {
    if (!m) fail(LCX_ERR_ARG, "lcx_model_config: model is NULL");
    lcx::require_pointer(out, "lcx_model_config", "out");
    *out = m->cfg;
  });
}

extern "C" LCX_API int32_t lcx_model_backend(const lcx_model* m) {
  if (!m || !m->backend) return -1;
  return m->backend->kind();
}

extern "C" LCX_API void lcx_param_layout_of(const lcx_config* cfg, lcx_param_layout* out) {
  if (!cfg || !out) return;
  *out = lcx::param_layout(*cfg);
}

extern "C" LCX_API lcx_status lcx_get_params(lcx_model* m, float* out, size_t count) {
  return lcx::guarded("lcx_get_params", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_get_params");
    lcx::require_pointer(out, "lcx_get_params", "out");
    lcx::check_count(model, count, "lcx_get_params");
    model.backend->get_params(out);
  });
}

extern "C" LCX_API lcx_status lcx_set_params(lcx_model* m, const float* in, size_t count) {
  return lcx::guarded("lcx_set_params", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_set_params");
    lcx::require_pointer(in, "lcx_set_params", "in");
    lcx::check_count(model, count, "lcx_set_params");
    model.backend->set_params(in);
  });
}

extern "C" LCX_API lcx_status lcx_set_attention(lcx_model* m, int32_t layer, int32_t kind,
                                                int32_t window) {
  return lcx::guarded("lcx_set_attention", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_set_attention");
    if (layer < 0 || layer >= model.cfg.n_layer)
      fail(LCX_ERR_ARG, "lcx_set_attention: layer %d is outside 0..%d", layer, model.cfg.n_layer - 1);
    if (kind != LCX_ATTN_DENSE && kind != LCX_ATTN_WINDOW && kind != LCX_ATTN_SPARSE)
      fail(LCX_ERR_ARG, "lcx_set_attention: kind %d is not 0 dense, 1 window or 2 sparse", kind);
    if (kind == LCX_ATTN_WINDOW && window <= 0)
      fail(LCX_ERR_ARG, "lcx_set_attention: window = %d must be > 0 for a window layer", window);
    lcx_config cfg = model.cfg;
    cfg.attn_kind[layer] = kind;
    cfg.attn_window[layer] = kind == LCX_ATTN_WINDOW ? window : 0;
    if (cfg.attn_kind[layer] == model.cfg.attn_kind[layer] &&
        cfg.attn_window[layer] == model.cfg.attn_window[layer])
      return;
    lcx::validate_config(cfg);
    const std::vector<float> params = lcx::host_params(model);
    lcx::reconfigure(model, cfg, params, /*keep_optimizer_state=*/true, [&] { return params; });
  });
}

// ---- context extension ------------------------------------------------------------------------

extern "C" LCX_API lcx_status lcx_extend_positions(lcx_model* m, int32_t n_new, int32_t mode,
                                                   uint64_t seed) {
  return lcx::guarded("lcx_extend_positions", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_extend_positions");
    const lcx_config old_cfg = model.cfg;
    if (mode != LCX_EXTEND_TILE && mode != LCX_EXTEND_INTERPOLATE && mode != LCX_EXTEND_RANDOM)
      fail(LCX_ERR_ARG, "lcx_extend_positions: mode %d is not 0 tile, 1 interpolate or 2 random", mode);
    if (n_new < old_cfg.n_positions)
      fail(LCX_ERR_ARG, "lcx_extend_positions: n_new = %d is smaller than the current n_positions "
           "= %d; positions can only grow", n_new, old_cfg.n_positions);
    if (n_new == old_cfg.n_positions) return;
    lcx_config cfg = old_cfg;
    cfg.n_positions = n_new;
    lcx::validate_config(cfg);

    std::vector<float> params = lcx::host_params(model, lcx::total_floats(cfg));
    const lcx_param_layout old_lay = lcx::param_layout(old_cfg);
    const std::vector<float> old_wpe(params.begin() + (std::ptrdiff_t)old_lay.offset[1],
                                     params.begin() + (std::ptrdiff_t)old_lay.offset[2]);
    lcx::extend_position_embeddings(params, old_cfg, n_new, mode, seed);
    // Undo for a backend that cannot take the new length: the tail moves back down and the
    // saved rows return (interpolate rewrote all of them).
    auto old_params = [&] {
      const lcx_param_layout new_lay = lcx::param_layout(cfg);
      std::vector<float> p(old_lay.total);
      std::copy(params.begin(), params.begin() + (std::ptrdiff_t)old_lay.offset[1], p.begin());
      std::copy(old_wpe.begin(), old_wpe.end(), p.begin() + (std::ptrdiff_t)old_lay.offset[1]);
      std::copy(params.begin() + (std::ptrdiff_t)new_lay.offset[2], params.end(),
                p.begin() + (std::ptrdiff_t)old_lay.offset[2]);
      return p;
    };
    lcx::reconfigure(model, cfg, params, /*keep_optimizer_state=*/false, old_params);
  });
}

// ---- forward / training -----------------------------------------------------------------------

extern "C" LCX_API lcx_status lcx_forward(lcx_model* m, const lcx_batch* b, float* nll,
                                          float* logits, float* loss) {
  return lcx::guarded("lcx_forward", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_forward");
    const lcx::Batch batch = lcx::checked_batch(model, b, "lcx_forward", false);
    if ((nll || loss) && !b->targets)
      fail(LCX_ERR_ARG, "lcx_forward: nll or loss requested but batch.targets is NULL");
    model.backend->forward(batch, nll, logits, loss);
  });
}

extern "C" LCX_API lcx_status lcx_train_init(lcx_model* m, const lcx_train_config* cfg) {
  return lcx::guarded("lcx_train_init", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_train_init");
    lcx::require_pointer(cfg, "lcx_train_init", "cfg");
    const lcx_train_config& c = *cfg;
    const char* fn = "lcx_train_init";
    if (!(c.beta1 >= 0.0f && c.beta1 < 1.0f))
      fail(LCX_ERR_ARG, "%s: beta1 = %g must be in [0, 1)", fn, (double)c.beta1);
    if (!(c.beta2 >= 0.0f && c.beta2 < 1.0f))
      fail(LCX_ERR_ARG, "%s: beta2 = %g must be in [0, 1)", fn, (double)c.beta2);
    if (!(c.eps > 0.0f) || !lcx::finite(c.eps))
      fail(LCX_ERR_ARG, "%s: eps = %g must be a positive number", fn, (double)c.eps);
    if (!(c.weight_decay >= 0.0f) || !lcx::finite(c.weight_decay))
      fail(LCX_ERR_ARG, "%s: weight_decay = %g must be >= 0", fn, (double)c.weight_decay);
    if (!lcx::finite(c.grad_clip))
      fail(LCX_ERR_ARG, "%s: grad_clip = %g must be finite (<= 0 turns clipping off)", fn,
           (double)c.grad_clip);
    if (c.recompute != 0 && c.recompute != 1)
      fail(LCX_ERR_ARG, "%s: recompute = %d must be 0 or 1", fn, c.recompute);
    if (c.master_dtype != 0 && c.master_dtype != 1)
      fail(LCX_ERR_ARG, "%s: master_dtype = %d must be 0 (fp32) or 1 (bf16 + stochastic rounding)",
           fn, c.master_dtype);
    if (c.grad_dtype != 0 && c.grad_dtype != 1)
      fail(LCX_ERR_ARG, "%s: grad_dtype = %d must be 0 (fp32) or 1 (bf16 layer-matrix gradients)",
           fn, c.grad_dtype);
    model.backend->train_init(c);
    model.train_cfg = c;
    model.train_ready = true;
  });
}

extern "C" LCX_API lcx_status lcx_zero_grad(lcx_model* m) {
  return lcx::guarded("lcx_zero_grad", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_zero_grad");
    lcx::require_train_ready(model, "lcx_zero_grad");
    model.backend->zero_grad();
  });
}

extern "C" LCX_API lcx_status lcx_forward_backward(lcx_model* m, const lcx_batch* b,
                                                   float grad_scale, float* loss) {
  return lcx::guarded("lcx_forward_backward", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_forward_backward");
    lcx::require_train_ready(model, "lcx_forward_backward");
    const lcx::Batch batch = lcx::checked_batch(model, b, "lcx_forward_backward", true);
    if (!lcx::finite(grad_scale))
      fail(LCX_ERR_ARG, "lcx_forward_backward: grad_scale = %g must be finite", (double)grad_scale);
    const float l = model.backend->forward_backward(batch, grad_scale);
    if (loss) *loss = l;
  });
}

extern "C" LCX_API lcx_status lcx_optimizer_step(lcx_model* m, float lr, float* grad_norm) {
  return lcx::guarded("lcx_optimizer_step", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_optimizer_step");
    lcx::require_train_ready(model, "lcx_optimizer_step");
    if (!(lr >= 0.0f) || !lcx::finite(lr))
      fail(LCX_ERR_ARG, "lcx_optimizer_step: lr = %g must be a finite number >= 0", (double)lr);
    const float norm = model.backend->optimizer_step(lr);
    if (grad_norm) *grad_norm = norm;
  });
}

extern "C" LCX_API lcx_status lcx_get_grads(lcx_model* m, float* out, size_t count) {
  return lcx::guarded("lcx_get_grads", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_get_grads");
    lcx::require_train_ready(model, "lcx_get_grads");
    lcx::require_pointer(out, "lcx_get_grads", "out");
    lcx::check_count(model, count, "lcx_get_grads");
    model.backend->get_grads(out);
  });
}

extern "C" LCX_API lcx_status lcx_save_checkpoint(lcx_model* m, const char* path) {
  return lcx::guarded("lcx_save_checkpoint", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_save_checkpoint");
    lcx::require_pointer(path, "lcx_save_checkpoint", "path");
    const std::vector<float> params = lcx::host_params(model);
    std::vector<float> adam_m, adam_v;
    int64_t step = 0;
    if (model.train_ready && model.backend->has_optimizer_state()) {
      adam_m.resize(params.size());
      adam_v.resize(params.size());
      model.backend->get_optimizer_state(adam_m.data(), adam_v.data());
      step = model.backend->steps();
    }
    lcx::write_checkpoint(path, model.cfg, model.hf_architecture, params.data(),
                          adam_m.empty() ? nullptr : adam_m.data(),
                          adam_v.empty() ? nullptr : adam_v.data(), step);
  });
}

extern "C" LCX_API lcx_status lcx_load_checkpoint(lcx_model* m, const char* path) {
  return lcx::guarded("lcx_load_checkpoint", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_load_checkpoint");
    lcx::require_pointer(path, "lcx_load_checkpoint", "path");
    lcx::CheckpointReader reader(path, model.cfg);  // validates everything before any change
    {
      std::vector<float> params(lcx::total_floats(model.cfg));
      reader.read_params(params.data());
      model.backend->set_params(params.data());
    }
    if (!model.train_ready) return;
    if (reader.has_optimizer_state()) {
      std::vector<float> adam_m(lcx::total_floats(model.cfg)), adam_v(adam_m.size());
      reader.read_optimizer_state(adam_m.data(), adam_v.data());
      model.backend->set_optimizer_state(adam_m.data(), adam_v.data(), reader.step());
    } else {
      // Moments from another trajectory would be wrong for these parameters.
      model.backend->train_init(model.train_cfg);
    }
  });
}

extern "C" LCX_API int64_t lcx_optimizer_steps(const lcx_model* m) {
  if (!m || !m->backend) return -1;
  try {
    return m->backend->steps();
  } catch (...) {
    return -1;
  }
}

// ---- generation -------------------------------------------------------------------------------

extern "C" LCX_API lcx_status lcx_gen_create(lcx_model* m, int32_t max_tokens, lcx_gen** out) {
  if (out) *out = nullptr;
  return lcx::guarded("lcx_gen_create", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_gen_create");
    lcx::require_pointer(out, "lcx_gen_create", "out");
    if (max_tokens < 1 || max_tokens > model.cfg.n_positions)
      fail(LCX_ERR_ARG, "lcx_gen_create: max_tokens = %d must be in 1..n_positions (%d)",
           max_tokens, model.cfg.n_positions);
    auto g = std::make_unique<lcx_gen>();
    g->model = &model;
    g->state = model.backend->gen_create(max_tokens);
    g->config_version = model.config_version;
    *out = g.release();
  });
}

extern "C" LCX_API void lcx_gen_free(lcx_gen* g) { delete g; }

extern "C" LCX_API lcx_status lcx_gen_reset(lcx_gen* g) {
  return lcx::guarded("lcx_gen_reset", [&] {
    lcx_gen& gen = lcx::gen_of(g, "lcx_gen_reset");
    gen.state->reset();
    gen.tokens.clear();
    gen.last_logits.clear();
    gen.rng_seeded = false;
  });
}

extern "C" LCX_API lcx_status lcx_gen_feed(lcx_gen* g, const int32_t* tokens, int32_t n,
                                           float* logits) {
  return lcx::guarded("lcx_gen_feed", [&] {
    lcx_gen& gen = lcx::gen_of(g, "lcx_gen_feed");
    if (n < 0) fail(LCX_ERR_ARG, "lcx_gen_feed: n = %d must be >= 0", n);
    const size_t V = (size_t)gen.model->cfg.vocab_size;
    if (n > 0) {
      lcx::require_pointer(tokens, "lcx_gen_feed", "tokens");
      lcx::check_gen_tokens(gen, tokens, n, "lcx_gen_feed");
      gen.last_logits.resize(V);
      gen.state->feed(tokens, n, gen.last_logits.data());
      gen.tokens.insert(gen.tokens.end(), tokens, tokens + n);
    }
    if (logits) {
      if (gen.last_logits.empty())
        fail(LCX_ERR_ARG, "lcx_gen_feed: no token fed yet, so there are no logits to return");
      std::memcpy(logits, gen.last_logits.data(), V * sizeof(float));
    }
  });
}

extern "C" LCX_API lcx_status lcx_gen_next(lcx_gen* g, const lcx_sampling* s, int32_t* token) {
  return lcx::guarded("lcx_gen_next", [&] {
    lcx_gen& gen = lcx::gen_of(g, "lcx_gen_next");
    lcx::require_pointer(s, "lcx_gen_next", "sampling");
    lcx::require_pointer(token, "lcx_gen_next", "token");
    const char* fn = "lcx_gen_next";
    if (!(s->temperature >= 0.0f) || !lcx::finite(s->temperature))
      fail(LCX_ERR_ARG, "%s: temperature = %g must be >= 0 (0 = greedy)", fn, (double)s->temperature);
    if (s->top_k < 0) fail(LCX_ERR_ARG, "%s: top_k = %d must be >= 0 (0 = off)", fn, s->top_k);
    if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
      fail(LCX_ERR_ARG, "%s: top_p = %g must be in (0, 1] (1 = off)", fn, (double)s->top_p);
    if (!(s->repetition_penalty > 0.0f) || !lcx::finite(s->repetition_penalty))
      fail(LCX_ERR_ARG, "%s: repetition_penalty = %g must be > 0 (1 = off)", fn,
           (double)s->repetition_penalty);
    if (gen.last_logits.empty())
      fail(LCX_ERR_ARG, "%s: feed a prompt with lcx_gen_feed first", fn);
    if (gen.state->length() >= gen.state->capacity())
      fail(LCX_ERR_ARG, "%s: the KV cache is full (%d tokens); create the generator with a larger "
           "max_tokens, up to n_positions = %d", fn, gen.state->capacity(), gen.model->cfg.n_positions);
    if (!gen.rng_seeded) {
      gen.rng_state = s->seed;
      gen.rng_seeded = true;
    }
    const int32_t next = lcx::sample_next(gen, *s, &gen.rng_state);
    if (next < 0 || next >= gen.model->cfg.vocab_size)
      fail(LCX_ERR_INTERNAL, "%s: the sampler returned token %d outside [0, %d)", fn, next,
           gen.model->cfg.vocab_size);
    gen.state->feed(&next, 1, gen.last_logits.data());
    gen.tokens.push_back(next);
    *token = next;
  });
}

extern "C" LCX_API int32_t lcx_gen_length(const lcx_gen* g) {
  if (!g || !g->state) return -1;
  return g->state->length();
}

// ---- memory / device --------------------------------------------------------------------------

extern "C" LCX_API lcx_status lcx_memory_stats_get(lcx_model* m, lcx_memory_stats* out) {
  return lcx::guarded("lcx_memory_stats_get", [&] {
    lcx_model& model = lcx::model_of(m, "lcx_memory_stats_get");
    lcx::require_pointer(out, "lcx_memory_stats_get", "out");
    *out = model.backend->memory_stats();
  });
}

extern "C" LCX_API lcx_status lcx_memory_reset_peak(lcx_model* m) {
  return lcx::guarded("lcx_memory_reset_peak", [&] {
    lcx::model_of(m, "lcx_memory_reset_peak").backend->reset_peak();
  });
}

extern "C" LCX_API lcx_status lcx_cuda_set_allocator(int32_t expandable) {
  return lcx::guarded("lcx_cuda_set_allocator", [&] {
    if (expandable != 0 && expandable != 1)
      fail(LCX_ERR_ARG, "lcx_cuda_set_allocator: expandable = %d must be 0 (classic) or 1", expandable);
    lcx::g_cuda_expandable.store(expandable);
  });
}
