// Conversions, errors and the per-model job queue (see common.hpp for the threading rules).
#include "common.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace lcxnode {

// ---- errors --------------------------------------------------------------------------------------

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

void throw_error(Napi::Env env, const std::string& code, const std::string& message) {
  throw make_error(env, code, message);
}

// ---- arguments -----------------------------------------------------------------------------------

double get_number(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw_arg(env, std::string(what) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_arg(env, std::string(what) + " must be finite");
  return d;
}

int32_t get_int(Napi::Env env, const Napi::Value& v, const char* what) {
  double d = get_number(env, v, what);
  if (d != std::floor(d) || d < INT32_MIN || d > INT32_MAX)
    throw_arg(env, std::string(what) + " must be a 32-bit integer");
  return static_cast<int32_t>(d);
}

std::string get_string(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw_arg(env, std::string(what) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  // A path with a NUL would be silently cut short by the C API.
  if (s.find('\0') != std::string::npos) throw_arg(env, std::string(what) + " contains a NUL byte");
  return s;
}

std::vector<int32_t> copy_int32(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw_arg(env, std::string(what) + " must be an Int32Array");
  auto a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

std::vector<float> copy_float32(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, std::string(what) + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

int32_t backend_from_js(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return LCX_BACKEND_CPU;
  std::string s = get_string(env, v, "backend");
  if (s == "cpu") return LCX_BACKEND_CPU;
  if (s == "cuda") return LCX_BACKEND_CUDA;
  throw_arg(env, "backend must be 'cpu' or 'cuda', got '" + s + "'");
}

const char* backend_name(int32_t backend) { return backend == LCX_BACKEND_CUDA ? "cuda" : "cpu"; }

// ---- config --------------------------------------------------------------------------------------

namespace {

int32_t opt_int(Napi::Env env, const Napi::Object& o, const char* key, int32_t dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  return get_int(env, v, key);
}

int32_t req_int(Napi::Env env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) throw_arg(env, std::string("config.") + key + " is required");
  return get_int(env, v, key);
}

bool opt_bool(Napi::Env env, const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsBoolean()) throw_arg(env, std::string("config.sparse.") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

}  // namespace

lcx_config config_from_js(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw_arg(env, "config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  lcx_config c{};
  Napi::Value arch = o.Get("arch");
  std::string a = arch.IsUndefined() ? "gpt2" : get_string(env, arch, "config.arch");
  if (a == "gpt2") c.arch = LCX_ARCH_GPT2;
  else if (a == "rugpt3xl") c.arch = LCX_ARCH_RUGPT3XL;
  else throw_arg(env, "config.arch must be 'gpt2' or 'rugpt3xl', got '" + a + "'");
  c.vocab_size = req_int(env, o, "vocabSize");
  c.n_positions = req_int(env, o, "nPositions");
  c.n_embd = req_int(env, o, "nEmbd");
  c.n_layer = req_int(env, o, "nLayer");
  c.n_head = req_int(env, o, "nHead");
  c.n_inner = opt_int(env, o, "nInner", 4 * c.n_embd);
  Napi::Value eps = o.Get("layerNormEps");
  c.layer_norm_eps = eps.IsUndefined() ? 1e-5f : static_cast<float>(get_number(env, eps, "layerNormEps"));
  if (c.n_layer < 1 || c.n_layer > LCX_MAX_LAYERS)
    throw_arg(env, "config.nLayer must be between 1 and " + std::to_string(LCX_MAX_LAYERS));

  // attention: one "dense" | "sparse" | "window:N" per layer, all dense when absent.
  Napi::Value att = o.Get("attention");
  if (!att.IsUndefined()) {
    if (!att.IsArray()) throw_arg(env, "config.attention must be an array");
    Napi::Array arr = att.As<Napi::Array>();
    if (arr.Length() != static_cast<uint32_t>(c.n_layer))
      throw_arg(env, "config.attention has " + std::to_string(arr.Length()) +
                         " entries, expected one per layer (" + std::to_string(c.n_layer) + ")");
    for (uint32_t i = 0; i < arr.Length(); i++) {
      std::string p = get_string(env, arr.Get(i), "config.attention[i]");
      if (p == "dense") {
        c.attn_kind[i] = LCX_ATTN_DENSE;
      } else if (p == "sparse") {
        c.attn_kind[i] = LCX_ATTN_SPARSE;
      } else if (p.rfind("window:", 0) == 0) {
        char* end = nullptr;
        long w = std::strtol(p.c_str() + 7, &end, 10);
        if (end == p.c_str() + 7 || *end != '\0' || w < 1 || w > INT32_MAX)
          throw_arg(env, "config.attention[" + std::to_string(i) + "] '" + p +
                             "' needs a positive window, e.g. 'window:256'");
        c.attn_kind[i] = LCX_ATTN_WINDOW;
        c.attn_window[i] = static_cast<int32_t>(w);
      } else {
        throw_arg(env, "config.attention[" + std::to_string(i) + "] must be 'dense', 'sparse' or "
                       "'window:N', got '" + p + "'");
      }
    }
  }

  // DeepSpeed FixedSparsityConfig as ruGPT3XL was trained; the same defaults the engine gives a
  // loaded config.json without sparse keys, so create -> save -> load keeps the config equal.
  c.sparse = lcx_sparse_config{16, 8, 1, 1, 8, 1, 0};
  Napi::Value sp = o.Get("sparse");
  if (!sp.IsUndefined() && !sp.IsNull()) {
    if (!sp.IsObject()) throw_arg(env, "config.sparse must be an object");
    Napi::Object s = sp.As<Napi::Object>();
    c.sparse.block = opt_int(env, s, "block", c.sparse.block);
    c.sparse.num_local_blocks = opt_int(env, s, "numLocalBlocks", c.sparse.num_local_blocks);
    c.sparse.num_global_blocks = opt_int(env, s, "numGlobalBlocks", c.sparse.num_global_blocks);
    c.sparse.different_layout_per_head = opt_bool(env, s, "differentLayoutPerHead", true);
    c.sparse.num_different_global_patterns =
        opt_int(env, s, "numDifferentGlobalPatterns", c.sparse.num_different_global_patterns);
    c.sparse.unidirectional = opt_bool(env, s, "unidirectional", true);
    c.sparse.horizontal_global_attention = opt_bool(env, s, "horizontalGlobalAttention", false);
  }
  return c;
}

Napi::Object config_to_js(Napi::Env env, const lcx_config& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", c.arch == LCX_ARCH_RUGPT3XL ? "rugpt3xl" : "gpt2");
  o.Set("vocabSize", c.vocab_size);
  o.Set("nPositions", c.n_positions);
  o.Set("nEmbd", c.n_embd);
  o.Set("nLayer", c.n_layer);
  o.Set("nHead", c.n_head);
  o.Set("nInner", c.n_inner);
  // The engine stores eps as float; print it back at float precision (1e-5, not 9.99999975e-6).
  char eps[32];
  std::snprintf(eps, sizeof eps, "%.7g", static_cast<double>(c.layer_norm_eps));
  o.Set("layerNormEps", std::strtod(eps, nullptr));
  int layers = c.n_layer < 0 ? 0 : (c.n_layer > LCX_MAX_LAYERS ? LCX_MAX_LAYERS : c.n_layer);
  Napi::Array att = Napi::Array::New(env, layers);
  for (int i = 0; i < layers; i++) {
    std::string p = c.attn_kind[i] == LCX_ATTN_SPARSE   ? "sparse"
                    : c.attn_kind[i] == LCX_ATTN_WINDOW ? "window:" + std::to_string(c.attn_window[i])
                                                        : "dense";
    att.Set(static_cast<uint32_t>(i), p);
  }
  o.Set("attention", att);
  Napi::Object s = Napi::Object::New(env);
  s.Set("block", c.sparse.block);
  s.Set("numLocalBlocks", c.sparse.num_local_blocks);
  s.Set("numGlobalBlocks", c.sparse.num_global_blocks);
  s.Set("differentLayoutPerHead", c.sparse.different_layout_per_head != 0);
  s.Set("numDifferentGlobalPatterns", c.sparse.num_different_global_patterns);
  s.Set("unidirectional", c.sparse.unidirectional != 0);
  s.Set("horizontalGlobalAttention", c.sparse.horizontal_global_attention != 0);
  o.Set("sparse", s);
  return o;
}

Napi::Object layout_to_js(Napi::Env env, const lcx_param_layout& l) {
  static const char* names[LCX_NUM_PARAM_TENSORS] = {
      "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
      "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};
  Napi::Object o = Napi::Object::New(env);
  Napi::Array tensors = Napi::Array::New(env, LCX_NUM_PARAM_TENSORS);
  for (uint32_t i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("name", names[i]);
    t.Set("offset", static_cast<double>(l.offset[i]));
    t.Set("count", static_cast<double>(l.count[i]));
    tensors.Set(i, t);
  }
  o.Set("tensors", tensors);
  o.Set("total", static_cast<double>(l.total));
  return o;
}

Napi::Object memory_stats_to_js(Napi::Env env, const lcx_memory_stats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocatedBytes", static_cast<double>(s.allocated_bytes));
  o.Set("mappedBytes", static_cast<double>(s.mapped_bytes));
  o.Set("peakAllocatedBytes", static_cast<double>(s.peak_allocated_bytes));
  o.Set("peakMappedBytes", static_cast<double>(s.peak_mapped_bytes));
  o.Set("reservedVaBytes", static_cast<double>(s.reserved_va_bytes));
  o.Set("fragmentation", s.fragmentation);
  o.Set("expandable", s.expandable != 0);
  return o;
}

// ---- model core ----------------------------------------------------------------------------------

ModelSnapshot take_snapshot(lcx_model* m) {
  ModelSnapshot s;
  if (lcx_model_config(m, &s.config) != LCX_OK) s.config = lcx_config{};
  s.backend = lcx_model_backend(m);
  s.steps = lcx_optimizer_steps(m);
  return s;
}

ModelCore::ModelCore(lcx_model* m) : model_(m) {}

ModelCore::~ModelCore() {
  // Only reached when no job holds the core any more, so nothing can be running.
  for (auto& g : gens_) {
    lcx_gen_free(g->gen);
    g->gen = nullptr;
    g->disposed = true;
  }
  lcx_model_free(model_);
}

void ModelCore::submit(Job* job) {
  if (busy_) {
    pending_.push_back(job);
    return;
  }
  busy_ = true;
  job->Queue();
}

void ModelCore::job_done() {
  busy_ = false;
  release_if_idle();
  if (!pending_.empty()) {
    Job* next = pending_.front();
    pending_.pop_front();
    busy_ = true;
    next->Queue();
  }
}

void ModelCore::dispose() {
  disposed_ = true;
  release_if_idle();
}

std::shared_ptr<GenCore> ModelCore::add_generator(lcx_gen* g) {
  auto gc = std::make_shared<GenCore>();
  gc->gen = g;
  if (disposed_) {
    // The model went away while the generator was being created.
    lcx_gen_free(g);
    gc->gen = nullptr;
    gc->disposed = true;
  } else {
    gens_.push_back(gc);
  }
  return gc;
}

void ModelCore::dispose_generator(const std::shared_ptr<GenCore>& g) {
  g->disposed = true;
  release_if_idle();
}

void ModelCore::release_if_idle() {
  // A running or queued job may use any generator (they share the model's compute state), so
  // nothing is freed until the queue is empty; jobs queued before dispose() still run (they
  // were accepted) and the memory is freed after the last of them.
  if (busy_ || !pending_.empty()) return;
  for (auto it = gens_.begin(); it != gens_.end();) {
    if ((*it)->disposed || disposed_) {
      lcx_gen_free((*it)->gen);
      (*it)->gen = nullptr;
      (*it)->disposed = true;
      it = gens_.erase(it);
    } else {
      ++it;
    }
  }
  if (disposed_ && model_) {
    lcx_model_free(model_);
    model_ = nullptr;
  }
}

// ---- jobs ----------------------------------------------------------------------------------------

Job::Job(Napi::Env env, const char* name, std::shared_ptr<ModelCore> core)
    : Napi::AsyncWorker(env, name), core_(std::move(core)), deferred_(Napi::Promise::Deferred::New(env)) {}

Napi::Promise Job::start() {
  Napi::Promise p = deferred_.Promise();
  if (core_) core_->submit(this);
  else Queue();
  return p;
}

void Job::fail_status(lcx_status s) {
  const char* msg = lcx_last_error();
  fail(lcx_status_name(s), msg && *msg ? msg : lcx_status_name(s));
}

void Job::fail(const std::string& code, const std::string& message) {
  failed_ = true;
  code_ = code;
  message_ = message;
  SetError(message);
}

void Job::Execute() {
  try {
    Run();
  } catch (const std::bad_alloc&) {
    fail("LCX_ERR_OOM", "out of host memory in the addon");
  } catch (const std::exception& e) {
    fail("LCX_ERR_INTERNAL", e.what());
  }
  if (core_ && core_->model()) {
    snap_ = take_snapshot(core_->model());
    has_snap_ = true;
  }
}

void Job::OnOK() {
  if (has_snap_) core_->publish(snap_);
  Napi::Env env = Env();
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void Job::OnError(const Napi::Error& e) {
  if (has_snap_) core_->publish(snap_);
  if (failed_) deferred_.Reject(make_error(Env(), code_, message_).Value());
  else deferred_.Reject(e.Value());
}

void Job::OnWorkComplete(Napi::Env env, napi_status status) {
  // The base class settles the promise and then deletes this job; keep the core alive past that
  // and start the next queued job only afterwards.
  std::shared_ptr<ModelCore> core = core_;
  Napi::AsyncWorker::OnWorkComplete(env, status);
  if (core) core->job_done();
}

}  // namespace lcxnode
