// Shared pieces of the Node addon: JS <-> lcx_config conversion, errors that carry the engine's
// status name as `code`, and the per-model job queue every slow call goes through.
//
// Threading rules (the reason this file exists):
// - An lcx_model is touched only by one job at a time, on a libuv worker thread. Jobs of one
//   model (and of its generators) run strictly in submission order: a FIFO on the main thread
//   queues the next job only when the previous one has completed. A mutex would serialise them
//   too, but neither in order nor without parking thread-pool threads.
// - lcx_last_error() is thread-local, so a job reads it on the worker thread right after the
//   failing call.
// - Everything the main thread reads synchronously (config, backend, steps) is a snapshot taken
//   by the job on the worker thread and published when the job completes.
#pragma once
#ifndef NAPI_CPP_EXCEPTIONS
#define NAPI_CPP_EXCEPTIONS 1  // C++ exceptions become JS errors (also set by CMake)
#endif
#include <napi.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "longctx.h"

namespace lcxnode {

// Error codes the addon itself raises (the engine's are lcx_status_name values).
constexpr const char* kCodeArg = "LCX_ERR_ARG";
constexpr const char* kCodeDisposed = "LCX_ERR_DISPOSED";

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throw_error(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] inline void throw_arg(Napi::Env env, const std::string& message) {
  throw_error(env, kCodeArg, message);
}

// ---- argument helpers (throw LCX_ERR_ARG naming the argument) --------------------------------
int32_t get_int(Napi::Env env, const Napi::Value& v, const char* what);
double get_number(Napi::Env env, const Napi::Value& v, const char* what);
std::string get_string(Napi::Env env, const Napi::Value& v, const char* what);
// Copies an Int32Array / Float32Array so the worker never reads JS-owned memory.
std::vector<int32_t> copy_int32(Napi::Env env, const Napi::Value& v, const char* what);
std::vector<float> copy_float32(Napi::Env env, const Napi::Value& v, const char* what);
int32_t backend_from_js(Napi::Env env, const Napi::Value& v);
const char* backend_name(int32_t backend);

// ---- config ------------------------------------------------------------------------------------
lcx_config config_from_js(Napi::Env env, const Napi::Value& v);
Napi::Object config_to_js(Napi::Env env, const lcx_config& c);
Napi::Object layout_to_js(Napi::Env env, const lcx_param_layout& l);
Napi::Object memory_stats_to_js(Napi::Env env, const lcx_memory_stats& s);

// ---- the per-model queue -----------------------------------------------------------------------
class Job;

// The native side of one generator. Freed by the model core, never behind a running job.
struct GenCore {
  lcx_gen* gen = nullptr;
  bool disposed = false;  // JS asked to free it (or its model went away)
  int32_t length = 0;     // tokens in the cache, as of the last completed job
};

// What the main thread may read without a job (published by completed jobs).
struct ModelSnapshot {
  lcx_config config{};
  int32_t backend = 0;
  int64_t steps = 0;
  bool train_ready = false;
};

class ModelCore : public std::enable_shared_from_this<ModelCore> {
 public:
  explicit ModelCore(lcx_model* m);
  ~ModelCore();
  ModelCore(const ModelCore&) = delete;
  ModelCore& operator=(const ModelCore&) = delete;

  lcx_model* model() const { return model_; }
  bool disposed() const { return disposed_; }
  const ModelSnapshot& snapshot() const { return snap_; }
  void publish(const ModelSnapshot& s) { snap_ = s; }

  // Main thread. Runs now if idle, otherwise after the jobs already submitted.
  void submit(Job* job);
  // Main thread. Called by Job when it has completed (resolved or rejected).
  void job_done();

  // Main thread. Idempotent; the memory is freed as soon as no job is running or queued.
  void dispose();
  std::shared_ptr<GenCore> add_generator(lcx_gen* g);
  void dispose_generator(const std::shared_ptr<GenCore>& g);

 private:
  void release_if_idle();

  lcx_model* model_;
  bool disposed_ = false;
  bool busy_ = false;
  std::deque<Job*> pending_;
  std::vector<std::shared_ptr<GenCore>> gens_;
  ModelSnapshot snap_;
};

// Takes a snapshot of m; call on the thread that owns the model at that moment.
ModelSnapshot take_snapshot(lcx_model* m);

// A slow call: runs Run() on a worker thread with exclusive use of the model, then settles a
// Promise on the main thread. Subclasses report engine failures with fail_status().
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, const char* name, std::shared_ptr<ModelCore> core);
  Napi::Promise promise() const { return deferred_.Promise(); }
  // Submits to the core's queue (or straight to the thread pool when there is no core).
  Napi::Promise start();

 protected:
  virtual void Run() = 0;                      // worker thread
  virtual Napi::Value Result(Napi::Env env) = 0;  // main thread, after success

  // Worker thread: turns a failed lcx call into the job's error (status name + message).
  void fail_status(lcx_status s);
  void fail(const std::string& code, const std::string& message);
  // Worker thread: true when s is LCX_OK, else records the failure.
  bool check(lcx_status s) {
    if (s == LCX_OK) return true;
    fail_status(s);
    return false;
  }

  std::shared_ptr<ModelCore> core_;
  ModelSnapshot snap_;  // taken at the end of Run() when the job touched a model
  bool has_snap_ = false;

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& e) final;
  void OnWorkComplete(Napi::Env env, napi_status status) final;

  Napi::Promise::Deferred deferred_;
  std::string code_;
  std::string message_;
  bool failed_ = false;
};

// Instance data of the addon (one per Node environment / worker thread).
struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference generator_ctor;
};

void init_model_class(Napi::Env env, Napi::Object exports, AddonData* data);
void init_generator_class(Napi::Env env, Napi::Object exports, AddonData* data);
Napi::Value nvml_query(const Napi::CallbackInfo& info);

}  // namespace lcxnode
