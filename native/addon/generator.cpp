// The Generator class: one lcx_gen (a KV cache) of a model. Its jobs go through the model's
// queue, because a generator computes with the model's parameters and backend state.
#include <cmath>

#include "common.hpp"

namespace lcxnode {

namespace {

using Holder = std::pair<std::shared_ptr<ModelCore>, std::shared_ptr<GenCore>>;

class GenJob : public Job {
 public:
  GenJob(Napi::Env env, const char* name, std::shared_ptr<ModelCore> core, std::shared_ptr<GenCore> gen)
      : Job(env, name, std::move(core)), gen_(std::move(gen)) {}

 protected:
  void Run() final {
    // Frees happen only while the queue is empty, so a job that was accepted still finds its
    // generator; the check is a second line of defence.
    if (!gen_->gen) {
      fail(kCodeDisposed, "this generator was disposed");
      return;
    }
    RunGen(gen_->gen);
    length_ = lcx_gen_length(gen_->gen);
  }
  Napi::Value Result(Napi::Env env) final {
    gen_->length = length_;
    return GenResult(env);
  }
  virtual void RunGen(lcx_gen* g) = 0;
  virtual Napi::Value GenResult(Napi::Env env) = 0;

  std::shared_ptr<GenCore> gen_;

 private:
  int32_t length_ = 0;
};

class FeedJob : public GenJob {
 public:
  FeedJob(Napi::Env env, std::shared_ptr<ModelCore> core, std::shared_ptr<GenCore> gen,
          std::vector<int32_t> tokens, bool want_logits)
      : GenJob(env, "lcx.gen.feed", core, std::move(gen)), tokens_(std::move(tokens)) {
    if (want_logits) {
      Napi::Float32Array a = Napi::Float32Array::New(env, core->snapshot().config.vocab_size);
      logits_ = a.Data();
      ref_ = Napi::Persistent(a);
    }
  }

 protected:
  void RunGen(lcx_gen* g) override {
    check(lcx_gen_feed(g, tokens_.data(), static_cast<int32_t>(tokens_.size()), logits_));
  }
  Napi::Value GenResult(Napi::Env env) override { return ref_.IsEmpty() ? env.Null() : ref_.Value(); }

 private:
  std::vector<int32_t> tokens_;
  float* logits_ = nullptr;
  Napi::Reference<Napi::Float32Array> ref_;
};

class NextJob : public GenJob {
 public:
  NextJob(Napi::Env env, std::shared_ptr<ModelCore> core, std::shared_ptr<GenCore> gen,
          const lcx_sampling& s)
      : GenJob(env, "lcx.gen.next", std::move(core), std::move(gen)), s_(s) {}

 protected:
  void RunGen(lcx_gen* g) override { check(lcx_gen_next(g, &s_, &token_)); }
  Napi::Value GenResult(Napi::Env env) override { return Napi::Number::New(env, token_); }

 private:
  lcx_sampling s_;
  int32_t token_ = -1;
};

class ResetJob : public GenJob {
 public:
  ResetJob(Napi::Env env, std::shared_ptr<ModelCore> core, std::shared_ptr<GenCore> gen)
      : GenJob(env, "lcx.gen.reset", std::move(core), std::move(gen)) {}

 protected:
  void RunGen(lcx_gen* g) override { check(lcx_gen_reset(g)); }
  Napi::Value GenResult(Napi::Env env) override { return env.Undefined(); }
};

lcx_sampling sampling_from_js(Napi::Env env, const Napi::Value& v) {
  lcx_sampling s{0.0f, 0, 1.0f, 1.0f, 0};  // greedy unless told otherwise
  if (v.IsUndefined() || v.IsNull()) return s;
  if (!v.IsObject()) throw_arg(env, "sampling must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto num = [&](const char* key) -> Napi::Value { return o.Get(key); };
  if (!num("temperature").IsUndefined()) s.temperature = static_cast<float>(get_number(env, num("temperature"), "temperature"));
  if (!num("topK").IsUndefined()) s.top_k = get_int(env, num("topK"), "topK");
  if (!num("topP").IsUndefined()) s.top_p = static_cast<float>(get_number(env, num("topP"), "topP"));
  if (!num("repetitionPenalty").IsUndefined())
    s.repetition_penalty = static_cast<float>(get_number(env, num("repetitionPenalty"), "repetitionPenalty"));
  Napi::Value seed = num("seed");
  if (seed.IsBigInt()) {
    bool lossless = false;
    s.seed = seed.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_arg(env, "seed must fit in 64 bits");
  } else if (!seed.IsUndefined()) {
    double d = get_number(env, seed, "seed");
    if (d < 0 || d != std::floor(d)) throw_arg(env, "seed must be a non-negative integer");
    s.seed = static_cast<uint64_t>(d);
  }
  return s;
}

class Generator : public Napi::ObjectWrap<Generator> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Generator",
                       {
                           InstanceAccessor<&Generator::GetLength>("length"),
                           InstanceAccessor<&Generator::GetCapacity>("capacity"),
                           InstanceAccessor<&Generator::GetDisposed>("disposed"),
                           InstanceMethod<&Generator::Feed>("feed"),
                           InstanceMethod<&Generator::Next>("next"),
                           InstanceMethod<&Generator::Reset>("reset"),
                           InstanceMethod<&Generator::Dispose>("dispose"),
                       });
  }

  explicit Generator(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Generator>(info) {
    if (info.Length() != 2 || !info[0].IsExternal())
      throw_arg(info.Env(), "use model.createGenerator(maxTokens)");
    Holder* h = info[0].As<Napi::External<Holder>>().Data();
    model_ = h->first;
    gen_ = h->second;
    capacity_ = info[1].As<Napi::Number>().Int32Value();
  }

  ~Generator() override {
    if (model_ && gen_) model_->dispose_generator(gen_);
  }

 private:
  bool dead() const { return !gen_ || gen_->disposed || !model_ || model_->disposed(); }

  void check_live(Napi::Env env) {
    if (model_ && model_->disposed()) throw_error(env, kCodeDisposed, "the generator's model was disposed");
    if (dead()) throw_error(env, kCodeDisposed, "this generator was disposed");
  }

  Napi::Value GetLength(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), gen_ ? gen_->length : 0); }
  Napi::Value GetCapacity(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), capacity_); }
  Napi::Value GetDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), dead()); }

  Napi::Value Feed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env);
    std::vector<int32_t> tokens = copy_int32(env, info[0], "tokens");
    bool want_logits = info[1].ToBoolean();
    return (new FeedJob(env, model_, gen_, std::move(tokens), want_logits))->start();
  }

  Napi::Value Next(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env);
    lcx_sampling s = sampling_from_js(env, info[0]);
    return (new NextJob(env, model_, gen_, s))->start();
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_live(env);
    return (new ResetJob(env, model_, gen_))->start();
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (model_ && gen_ && !gen_->disposed) model_->dispose_generator(gen_);
    return info.Env().Undefined();
  }

  std::shared_ptr<ModelCore> model_;
  std::shared_ptr<GenCore> gen_;
  int32_t capacity_ = 0;
};

}  // namespace

void init_generator_class(Napi::Env env, Napi::Object exports, AddonData* data) {
  Napi::Function ctor = Generator::Define(env);
  data->generator_ctor = Napi::Persistent(ctor);
  exports.Set("Generator", ctor);
}

}  // namespace lcxnode
