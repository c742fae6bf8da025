// Entry point of longctx_addon.node: the Model and Generator classes and the free functions.
// The TypeScript declaration of everything exported here is src-main/engine/native.ts.
#include "common.hpp"

namespace lcxnode {
namespace {

Napi::Value BackendsAvailable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t bits = lcx_backends_available();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  if (bits & (1 << LCX_BACKEND_CPU)) out.Set(n++, "cpu");
  if (bits & (1 << LCX_BACKEND_CUDA)) out.Set(n++, "cuda");
  return out;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t n = get_int(env, info[0], "threads");
  lcx_status s = lcx_set_num_threads(n);
  if (s != LCX_OK) throw_error(env, lcx_status_name(s), lcx_last_error());
  return env.Undefined();
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), lcx_get_num_threads());
}

Napi::Value ParamLayout(const Napi::CallbackInfo& info) {
  lcx_config c = config_from_js(info.Env(), info[0]);
  lcx_param_layout l;
  lcx_param_layout_of(&c, &l);
  return layout_to_js(info.Env(), l);
}

Napi::Value CudaSetAllocator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  lcx_status s = lcx_cuda_set_allocator(info[0].ToBoolean() ? 1 : 0);
  if (s != LCX_OK) throw_error(env, lcx_status_name(s), lcx_last_error());
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted by Node when the environment goes away
  init_model_class(env, exports, data);
  init_generator_class(env, exports, data);
  exports.Set("backendsAvailable", Napi::Function::New(env, BackendsAvailable, "backendsAvailable"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("paramLayout", Napi::Function::New(env, ParamLayout, "paramLayout"));
  exports.Set("cudaSetAllocator", Napi::Function::New(env, CudaSetAllocator, "cudaSetAllocator"));
  exports.Set("nvmlQuery", Napi::Function::New(env, nvml_query, "nvmlQuery"));
  return exports;
}

}  // namespace lcxnode

// NODE_API_MODULE pastes its argument into a function name, so it needs an unqualified name.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return lcxnode::Init(env, exports); }
NODE_API_MODULE(longctx_addon, InitAddon)
