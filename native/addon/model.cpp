// The Model class: one lcx_model behind a JS object. Every call that computes, allocates or
// touches files is a Job on the model's queue and returns a Promise; the getters read the
// snapshot published by the last completed job, so they never race a running job.
#include <cmath>
#include <cstring>
#include <functional>

#include "common.hpp"

namespace lcxnode {

namespace {

uint64_t get_seed(Napi::Env env, const Napi::Value& v) {
  if (v.IsUndefined()) return 0;
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t s = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_arg(env, "seed must fit in 64 bits");
    return s;
  }
  double d = get_number(env, v, "seed");
  if (d < 0 || d != std::floor(d) || d > 9007199254740991.0)
    throw_arg(env, "seed must be a non-negative integer (or a BigInt)");
  return static_cast<uint64_t>(d);
}

// A batch copied out of JS: { tokens, targets?, segments?, B, T }.
struct BatchCopy {
  std::vector<int32_t> tokens, targets, segments;
  bool has_targets = false, has_segments = false;
  int32_t B = 0, T = 0;

  lcx_batch view() const {
    lcx_batch b{};
    b.tokens = tokens.data();
    b.targets = has_targets ? targets.data() : nullptr;
    b.segments = has_segments ? segments.data() : nullptr;
    b.B = B;
    b.T = T;
    return b;
  }
};

BatchCopy batch_from_js(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw_arg(env, "batch must be an object { tokens, targets?, segments?, B, T }");
  Napi::Object o = v.As<Napi::Object>();
  BatchCopy b;
  b.B = get_int(env, o.Get("B"), "batch.B");
  b.T = get_int(env, o.Get("T"), "batch.T");
  if (b.B < 1 || b.T < 1) throw_arg(env, "batch.B and batch.T must be at least 1");
  // Only the sizes are checked here (the engine cannot see JS lengths); token ids, T against
  // n_positions and the rest are the engine's to judge, so its messages reach the user.
  const size_t n = static_cast<size_t>(b.B) * static_cast<size_t>(b.T);
  b.tokens = copy_int32(env, o.Get("tokens"), "batch.tokens");
  if (b.tokens.size() != n)
    throw_arg(env, "batch.tokens has " + std::to_string(b.tokens.size()) + " ids, expected B*T = " +
                       std::to_string(n));
  Napi::Value t = o.Get("targets");
  if (!t.IsUndefined() && !t.IsNull()) {
    b.targets = copy_int32(env, t, "batch.targets");
    b.has_targets = true;
    if (b.targets.size() != n)
      throw_arg(env, "batch.targets has " + std::to_string(b.targets.size()) +
                         " ids, expected B*T = " + std::to_string(n));
  }
  Napi::Value s = o.Get("segments");
  if (!s.IsUndefined() && !s.IsNull()) {
    b.segments = copy_int32(env, s, "batch.segments");
    b.has_segments = true;
    if (b.segments.size() != n)
      throw_arg(env, "batch.segments has " + std::to_string(b.segments.size()) +
                         " ids, expected B*T = " + std::to_string(n));
  }
  return b;
}

size_t param_total(const lcx_config& c) {
  lcx_param_layout l;
  lcx_param_layout_of(&c, &l);
  return l.total;
}

// A Float32Array allocated on the main thread that a job fills on the worker thread: the
// result needs no second copy, and V8 never moves a backing store.
struct OutFloats {
  Napi::Reference<Napi::Float32Array> ref;
  float* data = nullptr;
  size_t count = 0;

  void alloc(Napi::Env env, size_t n) {
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    data = a.Data();
    count = n;
    ref = Napi::Persistent(a);
  }
  Napi::Value value(Napi::Env env) const { return ref.IsEmpty() ? env.Null() : ref.Value(); }
};

// ---- jobs without a model yet --------------------------------------------------------------------

class LoadJob : public Job {
 public:
  LoadJob(Napi::Env env, AddonData* data, std::string dir, int32_t backend)
      : Job(env, "lcx.load", nullptr), data_(data), dir_(std::move(dir)), backend_(backend) {}
  LoadJob(Napi::Env env, AddonData* data, const lcx_config& cfg, uint64_t seed, int32_t backend)
      : Job(env, "lcx.create", nullptr), data_(data), create_(true), cfg_(cfg), seed_(seed),
        backend_(backend) {}
  ~LoadJob() override { lcx_model_free(model_); }  // only non-null if never handed to JS

 protected:
  void Run() override {
    if (create_) check(lcx_model_create(&cfg_, seed_, backend_, &model_));
    else check(lcx_model_load(dir_.c_str(), backend_, &model_));
    if (model_) snap_ = take_snapshot(model_);
  }
  Napi::Value Result(Napi::Env env) override {
    auto core = std::make_shared<ModelCore>(model_);
    model_ = nullptr;  // owned by the core from here on
    core->publish(snap_);
    auto* holder = new std::shared_ptr<ModelCore>(core);
    Napi::External<std::shared_ptr<ModelCore>> ext = Napi::External<std::shared_ptr<ModelCore>>::New(
        env, holder, [](Napi::Env, std::shared_ptr<ModelCore>* p) { delete p; });
    return data_->model_ctor.New({ext});
  }

 private:
  AddonData* data_;
  bool create_ = false;
  std::string dir_;
  lcx_config cfg_{};
  uint64_t seed_ = 0;
  int32_t backend_;
  lcx_model* model_ = nullptr;
};

class InspectJob : public Job {
 public:
  InspectJob(Napi::Env env, std::string dir) : Job(env, "lcx.inspect", nullptr), dir_(std::move(dir)) {}

 protected:
  void Run() override { check(lcx_inspect(dir_.c_str(), &info_)); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("config", config_to_js(env, info_.config));
    o.Set("parameters", static_cast<double>(info_.parameters));
    o.Set("bytesOnDisk", static_cast<double>(info_.bytes_on_disk));
    o.Set("numFiles", info_.num_files);
    o.Set("dtype", std::string(info_.dtype, strnlen(info_.dtype, sizeof info_.dtype)));
    o.Set("architecture",
          std::string(info_.architecture, strnlen(info_.architecture, sizeof info_.architecture)));
    return o;
  }

 private:
  std::string dir_;
  lcx_model_info info_{};
};

// ---- jobs on a model -----------------------------------------------------------------------------

// A job whose whole work is one status-returning call and whose result is undefined or a
// number computed by that call.
class SimpleJob : public Job {
 public:
  using Fn = std::function<lcx_status(lcx_model*, double*)>;
  SimpleJob(Napi::Env env, const char* name, std::shared_ptr<ModelCore> core, Fn fn, bool returns_number)
      : Job(env, name, std::move(core)), fn_(std::move(fn)), returns_number_(returns_number) {}

 protected:
  void Run() override { check(fn_(core_->model(), &out_)); }
  Napi::Value Result(Napi::Env env) override {
    return returns_number_ ? Napi::Number::New(env, out_) : env.Undefined();
  }

 private:
  Fn fn_;
  bool returns_number_;
  double out_ = 0;
};

class ForwardJob : public Job {
 public:
  ForwardJob(Napi::Env env, std::shared_ptr<ModelCore> core, BatchCopy batch, bool want_nll,
             bool want_logits)
      : Job(env, "lcx.forward", std::move(core)), batch_(std::move(batch)) {
    const size_t n = static_cast<size_t>(batch_.B) * batch_.T;
    if (want_nll) nll_.alloc(env, n);
    if (want_logits) logits_.alloc(env, n * static_cast<size_t>(core_->snapshot().config.vocab_size));
  }

 protected:
  void Run() override {
    lcx_batch b = batch_.view();
    check(lcx_forward(core_->model(), &b, nll_.data, logits_.data,
                      batch_.has_targets ? &loss_ : nullptr));
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (batch_.has_targets) o.Set("loss", loss_);
    if (nll_.data) o.Set("nll", nll_.value(env));
    if (logits_.data) o.Set("logits", logits_.value(env));
    return o;
  }

 private:
  BatchCopy batch_;
  OutFloats nll_, logits_;
  float loss_ = 0;
};

class ForwardBackwardJob : public Job {
 public:
  ForwardBackwardJob(Napi::Env env, std::shared_ptr<ModelCore> core, BatchCopy batch, float scale)
      : Job(env, "lcx.forwardBackward", std::move(core)), batch_(std::move(batch)), scale_(scale) {}

 protected:
  void Run() override {
    lcx_batch b = batch_.view();
    check(lcx_forward_backward(core_->model(), &b, scale_, &loss_));
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, loss_); }

 private:
  BatchCopy batch_;
  float scale_;
  float loss_ = 0;
};

// getParams / getGrads: a Float32Array of the canonical layout.
class ReadFloatsJob : public Job {
 public:
  ReadFloatsJob(Napi::Env env, std::shared_ptr<ModelCore> core, bool grads)
      : Job(env, grads ? "lcx.getGrads" : "lcx.getParams", std::move(core)), grads_(grads) {
    out_.alloc(env, param_total(core_->snapshot().config));
  }

 protected:
  void Run() override {
    // The size is re-checked against the model as it is now: a queued extendPositions may have
    // changed it since the buffer was allocated.
    lcx_config c;
    if (!check(lcx_model_config(core_->model(), &c))) return;
    if (param_total(c) != out_.count) {
      fail(kCodeArg, "the model's parameter count changed while this call was queued; call again");
      return;
    }
    check(grads_ ? lcx_get_grads(core_->model(), out_.data, out_.count)
                 : lcx_get_params(core_->model(), out_.data, out_.count));
  }
  Napi::Value Result(Napi::Env env) override { return out_.value(env); }

 private:
  bool grads_;
  OutFloats out_;
};

class SetParamsJob : public Job {
 public:
  SetParamsJob(Napi::Env env, std::shared_ptr<ModelCore> core, std::vector<float> params)
      : Job(env, "lcx.setParams", std::move(core)), params_(std::move(params)) {}

 protected:
  void Run() override { check(lcx_set_params(core_->model(), params_.data(), params_.size())); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::vector<float> params_;
};

class MemoryStatsJob : public Job {
 public:
  MemoryStatsJob(Napi::Env env, std::shared_ptr<ModelCore> core)
      : Job(env, "lcx.memoryStats", std::move(core)) {}

 protected:
  void Run() override { check(lcx_memory_stats_get(core_->model(), &stats_)); }
  Napi::Value Result(Napi::Env env) override { return memory_stats_to_js(env, stats_); }

 private:
  lcx_memory_stats stats_{};
};

class CreateGeneratorJob : public Job {
 public:
  CreateGeneratorJob(Napi::Env env, AddonData* data, std::shared_ptr<ModelCore> core, int32_t max_tokens)
      : Job(env, "lcx.createGenerator", std::move(core)), data_(data), max_tokens_(max_tokens) {}
  ~CreateGeneratorJob() override { lcx_gen_free(gen_); }  // only non-null if never handed over

 protected:
  void Run() override { check(lcx_gen_create(core_->model(), max_tokens_, &gen_)); }
  Napi::Value Result(Napi::Env env) override {
    std::shared_ptr<GenCore> gc = core_->add_generator(gen_);
    gen_ = nullptr;
    auto* holder = new std::pair<std::shared_ptr<ModelCore>, std::shared_ptr<GenCore>>(core_, gc);
    using Holder = std::pair<std::shared_ptr<ModelCore>, std::shared_ptr<GenCore>>;
    auto ext = Napi::External<Holder>::New(env, holder, [](Napi::Env, Holder* p) { delete p; });
    return data_->generator_ctor.New({ext, Napi::Number::New(env, max_tokens_)});
  }

 private:
  AddonData* data_;
  int32_t max_tokens_;
  lcx_gen* gen_ = nullptr;
};

// ---- the class -----------------------------------------------------------------------------------

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Model",
        {
            StaticMethod<&Model::Load>("load"),
            StaticMethod<&Model::Create>("create"),
            InstanceAccessor<&Model::GetConfig>("config"),
            InstanceAccessor<&Model::GetBackend>("backend"),
            InstanceAccessor<&Model::GetParamCount>("paramCount"),
            InstanceAccessor<&Model::GetOptimizerSteps>("optimizerSteps"),
            InstanceAccessor<&Model::GetDisposed>("disposed"),
            InstanceMethod<&Model::Save>("save"),
            InstanceMethod<&Model::GetParams>("getParams"),
            InstanceMethod<&Model::SetParams>("setParams"),
            InstanceMethod<&Model::GetGrads>("getGrads"),
            InstanceMethod<&Model::SetAttention>("setAttention"),
            InstanceMethod<&Model::ExtendPositions>("extendPositions"),
            InstanceMethod<&Model::Forward>("forward"),
            InstanceMethod<&Model::TrainInit>("trainInit"),
            InstanceMethod<&Model::ZeroGrad>("zeroGrad"),
            InstanceMethod<&Model::ForwardBackward>("forwardBackward"),
            InstanceMethod<&Model::OptimizerStep>("optimizerStep"),
            InstanceMethod<&Model::SaveCheckpoint>("saveCheckpoint"),
            InstanceMethod<&Model::LoadCheckpoint>("loadCheckpoint"),
            InstanceMethod<&Model::MemoryStats>("memoryStats"),
            InstanceMethod<&Model::ResetPeakMemory>("resetPeakMemory"),
            InstanceMethod<&Model::CreateGenerator>("createGenerator"),
            InstanceMethod<&Model::Dispose>("dispose"),
        });
  }

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    // Only LoadJob constructs models; `new Model()` from JS has no engine model to wrap.
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_arg(info.Env(), "use Model.load(dir, backend) or Model.create(config, seed, backend)");
    core_ = *info[0].As<Napi::External<std::shared_ptr<ModelCore>>>().Data();
  }

  ~Model() override {
    // Garbage-collected without dispose(): free once no job runs. Jobs keep their own reference
    // to the core, so this never frees memory under a running job.
    if (core_) core_->dispose();
  }

 private:
  static AddonData* data(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

  static Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string dir = get_string(env, info[0], "dir");
    return (new LoadJob(env, data(env), dir, backend_from_js(env, info[1])))->start();
  }

  static Napi::Value Create(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    lcx_config cfg = config_from_js(env, info[0]);
    uint64_t seed = get_seed(env, info[1]);
    return (new LoadJob(env, data(env), cfg, seed, backend_from_js(env, info[2])))->start();
  }

  // Live model or a JS error; every method starts here.
  std::shared_ptr<ModelCore> live(Napi::Env env) {
    if (!core_ || core_->disposed()) throw_error(env, kCodeDisposed, "this model was disposed");
    return core_;
  }

  Napi::Value GetConfig(const Napi::CallbackInfo& info) {
    return config_to_js(info.Env(), live(info.Env())->snapshot().config);
  }
  Napi::Value GetBackend(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), backend_name(live(info.Env())->snapshot().backend));
  }
  Napi::Value GetParamCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(param_total(live(info.Env())->snapshot().config)));
  }
  Napi::Value GetOptimizerSteps(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(live(info.Env())->snapshot().steps));
  }
  Napi::Value GetDisposed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !core_ || core_->disposed());
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    std::string dir = get_string(env, info[0], "dir");
    int64_t max_shard = 0;
    if (!info[1].IsUndefined()) {
      double d = get_number(env, info[1], "maxShardBytes");
      if (d < 0) throw_arg(env, "maxShardBytes must be >= 0 (0 = one file)");
      max_shard = static_cast<int64_t>(d);
    }
    return (new SimpleJob(env, "lcx.save", core,
                          [dir, max_shard](lcx_model* m, double*) { return lcx_model_save(m, dir.c_str(), max_shard); },
                          false))
        ->start();
  }

  Napi::Value GetParams(const Napi::CallbackInfo& info) {
    return (new ReadFloatsJob(info.Env(), live(info.Env()), false))->start();
  }
  Napi::Value GetGrads(const Napi::CallbackInfo& info) {
    return (new ReadFloatsJob(info.Env(), live(info.Env()), true))->start();
  }
  Napi::Value SetParams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    return (new SetParamsJob(env, core, copy_float32(env, info[0], "params")))->start();
  }

  Napi::Value SetAttention(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    int32_t layer = get_int(env, info[0], "layer");
    std::string p = get_string(env, info[1], "pattern");
    int32_t kind = LCX_ATTN_DENSE, window = 0;
    if (p == "sparse") {
      kind = LCX_ATTN_SPARSE;
    } else if (p.rfind("window:", 0) == 0) {
      kind = LCX_ATTN_WINDOW;
      char* end = nullptr;
      long w = std::strtol(p.c_str() + 7, &end, 10);
      if (end == p.c_str() + 7 || *end != '\0' || w < 1 || w > INT32_MAX)
        throw_arg(env, "pattern '" + p + "' needs a positive window, e.g. 'window:256'");
      window = static_cast<int32_t>(w);
    } else if (p != "dense") {
      throw_arg(env, "pattern must be 'dense', 'sparse' or 'window:N', got '" + p + "'");
    }
    return (new SimpleJob(env, "lcx.setAttention", core,
                          [layer, kind, window](lcx_model* m, double*) {
                            return lcx_set_attention(m, layer, kind, window);
                          },
                          false))
        ->start();
  }

  Napi::Value ExtendPositions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    int32_t n = get_int(env, info[0], "nPositions");
    int32_t mode = LCX_EXTEND_TILE;
    if (!info[1].IsUndefined()) {
      std::string s = get_string(env, info[1], "mode");
      if (s == "tile") mode = LCX_EXTEND_TILE;
      else if (s == "interpolate") mode = LCX_EXTEND_INTERPOLATE;
      else if (s == "random") mode = LCX_EXTEND_RANDOM;
      else throw_arg(env, "mode must be 'tile', 'interpolate' or 'random', got '" + s + "'");
    }
    uint64_t seed = get_seed(env, info[2]);
    return (new SimpleJob(env, "lcx.extendPositions", core,
                          [n, mode, seed](lcx_model* m, double*) { return lcx_extend_positions(m, n, mode, seed); },
                          false))
        ->start();
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    BatchCopy b = batch_from_js(env, info[0]);
    bool want_nll = false, want_logits = false;
    if (info[1].IsObject()) {
      Napi::Object o = info[1].As<Napi::Object>();
      want_nll = o.Get("nll").ToBoolean();
      want_logits = o.Get("logits").ToBoolean();
    }
    return (new ForwardJob(env, core, std::move(b), want_nll, want_logits))->start();
  }

  Napi::Value TrainInit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    // AdamW defaults of GPT-2 fine-tuning; every field can be overridden.
    lcx_train_config tc{0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0, 0, 0, 0};
    if (info[0].IsObject()) {
      Napi::Object o = info[0].As<Napi::Object>();
      auto num = [&](const char* key, float& dst) {
        Napi::Value v = o.Get(key);
        if (!v.IsUndefined()) dst = static_cast<float>(get_number(env, v, key));
      };
      num("beta1", tc.beta1);
      num("beta2", tc.beta2);
      num("eps", tc.eps);
      num("weightDecay", tc.weight_decay);
      num("gradClip", tc.grad_clip);
      Napi::Value rc = o.Get("recompute");
      if (!rc.IsUndefined()) tc.recompute = rc.ToBoolean() ? 1 : 0;
      // 'fp32' -> 0, 'bf16' -> 1
      auto dtype = [&](const char* key, int32_t& dst) {
        Napi::Value v = o.Get(key);
        if (v.IsUndefined()) return;
        const std::string s = get_string(env, v, key);
        if (s == "fp32") dst = 0;
        else if (s == "bf16") dst = 1;
        else throw_arg(env, std::string(key) + " must be 'fp32' or 'bf16', got '" + s + "'");
      };
      dtype("masterDtype", tc.master_dtype);
      dtype("gradDtype", tc.grad_dtype);
      tc.seed = get_seed(env, o.Get("seed"));
    } else if (!info[0].IsUndefined()) {
      throw_arg(env, "train config must be an object");
    }
    return (new SimpleJob(env, "lcx.trainInit", core,
                          [tc](lcx_model* m, double*) { return lcx_train_init(m, &tc); }, false))
        ->start();
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return (new SimpleJob(info.Env(), "lcx.zeroGrad", live(info.Env()),
                          [](lcx_model* m, double*) { return lcx_zero_grad(m); }, false))
        ->start();
  }

  Napi::Value ForwardBackward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    BatchCopy b = batch_from_js(env, info[0]);
    float scale = info[1].IsUndefined() ? 1.0f : static_cast<float>(get_number(env, info[1], "gradScale"));
    return (new ForwardBackwardJob(env, core, std::move(b), scale))->start();
  }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    float lr = static_cast<float>(get_number(env, info[0], "lr"));
    return (new SimpleJob(env, "lcx.optimizerStep", core,
                          [lr](lcx_model* m, double* out) {
                            float norm = 0;
                            lcx_status s = lcx_optimizer_step(m, lr, &norm);
                            *out = norm;
                            return s;
                          },
                          true))
        ->start();
  }

  Napi::Value SaveCheckpoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    std::string path = get_string(env, info[0], "path");
    return (new SimpleJob(env, "lcx.saveCheckpoint", core,
                          [path](lcx_model* m, double*) { return lcx_save_checkpoint(m, path.c_str()); },
                          false))
        ->start();
  }

  Napi::Value LoadCheckpoint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    std::string path = get_string(env, info[0], "path");
    return (new SimpleJob(env, "lcx.loadCheckpoint", core,
                          [path](lcx_model* m, double*) { return lcx_load_checkpoint(m, path.c_str()); },
                          false))
        ->start();
  }

  Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
    return (new MemoryStatsJob(info.Env(), live(info.Env())))->start();
  }

  Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
    return (new SimpleJob(info.Env(), "lcx.resetPeakMemory", live(info.Env()),
                          [](lcx_model* m, double*) { return lcx_memory_reset_peak(m); }, false))
        ->start();
  }

  Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto core = live(env);
    int32_t max_tokens = get_int(env, info[0], "maxTokens");
    return (new CreateGeneratorJob(env, data(env), core, max_tokens))->start();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (core_) core_->dispose();
    return info.Env().Undefined();
  }

  std::shared_ptr<ModelCore> core_;
};

}  // namespace

void init_model_class(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = Model::Define(env);
  data->model_ctor = Napi::Persistent(ctor);
  exports.Set("Model", ctor);
  exports.Set("inspect", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                Napi::Env env = info.Env();
                return (new InspectJob(env, get_string(env, info[0], "dir")))->start();
              }, "inspect"));
}

}  // namespace lcxnode
