// nvmlQuery(): the NVML reading as a JS object. Synchronous on purpose: a reading is a few
// driver queries (well under a millisecond per GPU), polled about once a second by the UI.
#include "common.hpp"
#include "nvml_reader.hpp"

namespace lcxnode {

Napi::Value nvml_query(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NvmlReading r = nvml_read();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", r.ok);
  if (!r.ok) {
    o.Set("reason", r.reason);
    return o;
  }
  o.Set("driver", r.driver);
  Napi::Array gpus = Napi::Array::New(env, r.gpus.size());
  for (size_t i = 0; i < r.gpus.size(); i++) {
    const NvmlGpu& g = r.gpus[i];
    Napi::Object j = Napi::Object::New(env);
    j.Set("index", g.index);
    j.Set("name", g.name);
    j.Set("totalBytes", static_cast<double>(g.total_bytes));
    j.Set("usedBytes", static_cast<double>(g.used_bytes));
    j.Set("utilizationPct", g.has_util ? Napi::Value(Napi::Number::New(env, g.utilization_pct)) : env.Null());
    j.Set("temperatureC", g.has_temp ? Napi::Value(Napi::Number::New(env, g.temperature_c)) : env.Null());
    j.Set("powerW", g.has_power ? Napi::Value(Napi::Number::New(env, g.power_w)) : env.Null());
    gpus.Set(static_cast<uint32_t>(i), j);
  }
  o.Set("gpus", gpus);
  return o;
}

}  // namespace lcxnode
