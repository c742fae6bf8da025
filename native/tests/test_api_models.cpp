// The C API around model files and state, on the CPU backend: create/save/load round trips of
// both architectures, position extension, argument checking with its messages, training-state
// glue, checkpoints (resume gives the same numbers), generation bookkeeping, error reporting.
// The arithmetic itself is tested elsewhere (test_cpu_*); here it only has to be deterministic.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "core/host_params.hpp"
#include "longctx.h"
#include "testing.hpp"

namespace fs = std::filesystem;

namespace {

std::string g_root;

std::string scratch(const std::string& name) {
  const std::string p = (fs::path(g_root) / name).string();
  fs::remove_all(p);
  return p;
}

bool error_has(lcx_status got, lcx_status want, std::vector<std::string> pieces) {
  const std::string msg = lcx_last_error();
  bool ok = got == want;
  for (const auto& p : pieces) ok = ok && msg.find(p) != std::string::npos;
  if (!ok)
    std::printf("     got %s (want %s): %s\n", lcx_status_name(got), lcx_status_name(want), msg.c_str());
  return ok;
}
#define CHECK_ERROR(call, want, ...) CHECK(error_has((call), (want), {__VA_ARGS__}))
#define CHECK_OK(call) CHECK(error_has((call), LCX_OK, {}))

lcx_config tiny(int arch) {
  lcx_config c{};
  c.arch = arch;
  c.vocab_size = 48;
  c.n_positions = 32;
  c.n_embd = 16;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_inner = 64;
  c.layer_norm_eps = 1e-5f;
  c.sparse = {4, 2, 1, 1, 2, 1, 0};
  if (arch == LCX_ARCH_RUGPT3XL) c.attn_kind[0] = LCX_ATTN_SPARSE;
  return c;
}

size_t total(const lcx_config& c) {
  lcx_param_layout lay;
  lcx_param_layout_of(&c, &lay);
  return lay.total;
}

std::vector<float> params_of(lcx_model* m) {
  lcx_config c;
  lcx_model_config(m, &c);
  std::vector<float> p(total(c));
  lcx_get_params(m, p.data(), p.size());
  return p;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct TokenBatch {
  std::vector<int32_t> tokens, targets;
  lcx_batch b{};
  TokenBatch(int B, int T, int V, int salt) : tokens((size_t)(B * T)), targets((size_t)(B * T)) {
    for (int i = 0; i < B * T; i++) tokens[(size_t)i] = (i * 7 + salt * 13 + 3) % V;
    for (int i = 0; i < B * T; i++) targets[(size_t)i] = (i % T == T - 1) ? -1 : tokens[(size_t)i + 1];
    b = {tokens.data(), targets.data(), nullptr, B, T};
  }
};

std::vector<float> logits_of(lcx_model* m, const lcx_batch& b, int V) {
  std::vector<float> logits((size_t)(b.B * b.T * V));
  lcx_forward(m, &b, nullptr, logits.data(), nullptr);
  return logits;
}

lcx_train_config train_config() {
  lcx_train_config t{};
  t.beta1 = 0.9f;
  t.beta2 = 0.95f;
  t.eps = 1e-8f;
  t.weight_decay = 0.1f;
  t.grad_clip = 1.0f;
  t.seed = 5;
  return t;
}

TEST(basics) {
  CHECK(std::string(lcx_status_name(LCX_ERR_SHAPE)) == "LCX_ERR_SHAPE");
  CHECK(std::string(lcx_status_name((lcx_status)99)) == "LCX_ERR_UNKNOWN");
  CHECK((lcx_backends_available() & 1) == 1);
  CHECK_OK(lcx_set_num_threads(2));
  CHECK(lcx_get_num_threads() == 2);
  CHECK_ERROR(lcx_set_num_threads(-1), LCX_ERR_ARG, "lcx_set_num_threads");
  CHECK_ERROR(lcx_cuda_set_allocator(2), LCX_ERR_ARG, "expandable = 2");
  CHECK_OK(lcx_cuda_set_allocator(1));

  lcx_model* m = reinterpret_cast<lcx_model*>(1);
  CHECK_ERROR(lcx_model_load(nullptr, 0, &m), LCX_ERR_ARG, "dir is NULL");
  CHECK(m == nullptr);  // out is cleared on failure
  const lcx_config c = tiny(LCX_ARCH_GPT2);
  CHECK_ERROR(lcx_model_create(&c, 1, 7, &m), LCX_ERR_ARG, "backend 7");
  if (!(lcx_backends_available() & 2))
    CHECK_ERROR(lcx_model_create(&c, 1, LCX_BACKEND_CUDA, &m), LCX_ERR_BACKEND, "CUDA");
  lcx_config bad = c;
  bad.n_head = 5;
  CHECK_ERROR(lcx_model_create(&bad, 1, 0, &m), LCX_ERR_ARG, "n_head = 5");
  lcx_model_free(nullptr);
  CHECK_ERROR(lcx_forward(nullptr, nullptr, nullptr, nullptr, nullptr), LCX_ERR_ARG, "model is NULL");

  // The last error belongs to the thread that failed.
  CHECK_ERROR(lcx_set_num_threads(-3), LCX_ERR_ARG, "n = -3");
  std::string other;
  std::thread([&] {
    lcx_cuda_set_allocator(9);
    other = lcx_last_error();
  }).join();
  CHECK(other.find("expandable = 9") != std::string::npos);
  CHECK(std::string(lcx_last_error()).find("n = -3") != std::string::npos);
}

void create_save_load(int arch) {
  const lcx_config c = tiny(arch);
  lcx_model *a = nullptr, *b = nullptr, *d = nullptr;
  CHECK_OK(lcx_model_create(&c, 42, LCX_BACKEND_CPU, &a));
  CHECK_OK(lcx_model_create(&c, 42, LCX_BACKEND_CPU, &b));
  CHECK_OK(lcx_model_create(&c, 43, LCX_BACKEND_CPU, &d));
  if (!a || !b || !d) return;
  CHECK(lcx_model_backend(a) == LCX_BACKEND_CPU);
  const std::vector<float> pa = params_of(a);
  CHECK(same_bits(pa, params_of(b)));
  CHECK(!same_bits(pa, params_of(d)));
  // The initialisation is the host-side one: identical whatever the backend.
  std::vector<float> host(total(c));
  lcx::init_gpt2_params(c, 42, host.data());
  CHECK(same_bits(pa, host));

  std::vector<float> wrong(total(c) + 1);
  CHECK_ERROR(lcx_get_params(a, wrong.data(), wrong.size()), LCX_ERR_ARG, "count = ", "lcx_param_layout_of");
  CHECK_ERROR(lcx_set_params(a, wrong.data(), 3), LCX_ERR_ARG, "count = 3");

  const std::string dir = scratch(arch == LCX_ARCH_GPT2 ? "gpt2" : "rugpt3xl");
  CHECK_OK(lcx_model_save(a, dir.c_str(), 0));
  CHECK_ERROR(lcx_model_save(a, dir.c_str(), -1), LCX_ERR_ARG, "max_shard_bytes");
  lcx_model_info info{};
  CHECK_OK(lcx_inspect(dir.c_str(), &info));
  CHECK(info.parameters == (int64_t)total(c));
  CHECK(std::string(info.architecture) == (arch == LCX_ARCH_GPT2 ? "GPT2LMHeadModel" : "RuGPT3XLForCausalLM"));
  CHECK(info.config.n_layer == 2 && info.config.attn_kind[0] == c.attn_kind[0]);

  lcx_model* loaded = nullptr;
  CHECK_OK(lcx_model_load(dir.c_str(), LCX_BACKEND_CPU, &loaded));
  if (loaded) {
    CHECK(same_bits(params_of(loaded), pa));
    lcx_config lc{};
    lcx_model_config(loaded, &lc);
    CHECK(lc.n_positions == c.n_positions && lc.n_inner == c.n_inner && lc.attn_kind[0] == c.attn_kind[0]);
    // Same parameters, same logits.
    TokenBatch tb(2, 8, c.vocab_size, 1);
    CHECK(same_bits(logits_of(loaded, tb.b, c.vocab_size), logits_of(a, tb.b, c.vocab_size)));
    lcx_model_free(loaded);
  }
  // Sharded save loads the same.
  const std::string sharded = scratch(arch == LCX_ARCH_GPT2 ? "gpt2_sharded" : "rugpt3xl_sharded");
  CHECK_OK(lcx_model_save(a, sharded.c_str(), 4096));
  CHECK(fs::exists(fs::path(sharded) / "model.safetensors.index.json"));
  CHECK_OK(lcx_model_load(sharded.c_str(), LCX_BACKEND_CPU, &loaded));
  if (loaded) CHECK(same_bits(params_of(loaded), pa));
  lcx_model_free(loaded);
  lcx_model_free(a);
  lcx_model_free(b);
  lcx_model_free(d);
}

TEST(create_save_load_gpt2) { create_save_load(LCX_ARCH_GPT2); }

TEST(create_save_load_rugpt3xl) { create_save_load(LCX_ARCH_RUGPT3XL); }

TEST(load_errors) {
  lcx_model* m = nullptr;
  lcx_model_info info;
  const std::string empty = scratch("empty");
  fs::create_directories(empty);
  CHECK_ERROR(lcx_model_load(empty.c_str(), 0, &m), LCX_ERR_IO, "config.json", "no such file");
  CHECK_ERROR(lcx_inspect(empty.c_str(), &info), LCX_ERR_IO, "config.json");
  FILE* f = std::fopen((fs::path(empty) / "config.json").c_str(), "w");
  std::fputs(R"({"architectures": ["BloomForCausalLM"]})", f);
  std::fclose(f);
  CHECK_ERROR(lcx_inspect(empty.c_str(), &info), LCX_ERR_UNSUPPORTED, "BloomForCausalLM", "GPT2LMHeadModel");
  CHECK_ERROR(lcx_inspect(empty.c_str(), nullptr), LCX_ERR_ARG, "out is NULL");
  CHECK(m == nullptr);
}

TEST(batch_validation) {
  const lcx_config c = tiny(LCX_ARCH_GPT2);
  lcx_model* m = nullptr;
  CHECK_OK(lcx_model_create(&c, 1, 0, &m));
  if (!m) return;
  TokenBatch tb(2, 4, c.vocab_size, 0);
  float loss = 0;
  CHECK_OK(lcx_forward(m, &tb.b, nullptr, nullptr, &loss));
  CHECK(std::isfinite(loss) && loss > 0);

  tb.tokens[5] = 48;
  CHECK_ERROR(lcx_forward(m, &tb.b, nullptr, nullptr, nullptr), LCX_ERR_ARG,
              "batch.tokens[5] (row 1, position 1) = 48", "[0, 48)");
  tb.tokens[5] = -1;
  CHECK_ERROR(lcx_forward(m, &tb.b, nullptr, nullptr, nullptr), LCX_ERR_ARG, "batch.tokens[5]");
  tb.tokens[5] = 1;
  tb.targets[2] = -2;
  CHECK_ERROR(lcx_forward(m, &tb.b, nullptr, nullptr, &loss), LCX_ERR_ARG, "batch.targets[2]", "-2");
  tb.targets[2] = 3;
  lcx_batch no_targets = tb.b;
  no_targets.targets = nullptr;
  CHECK_ERROR(lcx_forward(m, &no_targets, nullptr, nullptr, &loss), LCX_ERR_ARG, "batch.targets is NULL");
  lcx_batch zero = tb.b;
  zero.B = 0;
  CHECK_ERROR(lcx_forward(m, &zero, nullptr, nullptr, nullptr), LCX_ERR_ARG, "batch.B = 0");
  lcx_batch null_tokens = tb.b;
  null_tokens.tokens = nullptr;
  CHECK_ERROR(lcx_forward(m, &null_tokens, nullptr, nullptr, nullptr), LCX_ERR_ARG, "batch.tokens is NULL");
  TokenBatch too_long(1, 33, c.vocab_size, 0);
  CHECK_ERROR(lcx_forward(m, &too_long.b, nullptr, nullptr, nullptr), LCX_ERR_ARG, "batch.T = 33", "n_positions = 32");
  CHECK_ERROR(lcx_forward(m, nullptr, nullptr, nullptr, nullptr), LCX_ERR_ARG, "batch is NULL");
  lcx_model_free(m);
}

TEST(extend) {
  for (int mode : {LCX_EXTEND_TILE, LCX_EXTEND_INTERPOLATE, LCX_EXTEND_RANDOM}) {
    const lcx_config c = tiny(LCX_ARCH_RUGPT3XL);
    lcx_model* m = nullptr;
    CHECK_OK(lcx_model_create(&c, 9, 0, &m));
    if (!m) return;
    const std::vector<float> before = params_of(m);
    TokenBatch tb(2, 32, c.vocab_size, 4);
    const std::vector<float> logits_before = logits_of(m, tb.b, c.vocab_size);

    CHECK_ERROR(lcx_extend_positions(m, 16, mode, 0), LCX_ERR_ARG, "n_new = 16", "only grow");
    CHECK_ERROR(lcx_extend_positions(m, 64, 3, 0), LCX_ERR_ARG, "mode 3");
    CHECK_OK(lcx_extend_positions(m, 32, mode, 0));  // same length: nothing changes
    CHECK(same_bits(params_of(m), before));

    CHECK_OK(lcx_extend_positions(m, 80, mode, 1));
    lcx_config e{};
    lcx_model_config(m, &e);
    CHECK(e.n_positions == 80);
    std::vector<float> expect = before;
    lcx::extend_position_embeddings(expect, c, 80, mode, 1);
    CHECK(same_bits(params_of(m), expect));
    if (mode != LCX_EXTEND_INTERPOLATE) {
      // Rows below n_old unchanged: the model is bit-for-bit the same on sequences <= n_old.
      CHECK(same_bits(logits_of(m, tb.b, c.vocab_size), logits_before));
    }
    TokenBatch longer(1, 80, c.vocab_size, 2);
    float loss = 0;
    CHECK_OK(lcx_forward(m, &longer.b, nullptr, nullptr, &loss));
    CHECK(std::isfinite(loss));

    // The extended model saves with the new length and loads back identically.
    const std::string dir = scratch("extended" + std::to_string(mode));
    CHECK_OK(lcx_model_save(m, dir.c_str(), 0));
    lcx_model* back = nullptr;
    CHECK_OK(lcx_model_load(dir.c_str(), 0, &back));
    if (back) {
      lcx_config bc{};
      lcx_model_config(back, &bc);
      CHECK(bc.n_positions == 80);
      CHECK(same_bits(params_of(back), expect));
      lcx_model_free(back);
    }
    lcx_model_free(m);
  }
}

TEST(set_attention) {
  const lcx_config c = tiny(LCX_ARCH_GPT2);
  lcx_model* m = nullptr;
  CHECK_OK(lcx_model_create(&c, 3, 0, &m));
  if (!m) return;
  const std::vector<float> before = params_of(m);
  CHECK_ERROR(lcx_set_attention(m, 2, LCX_ATTN_DENSE, 0), LCX_ERR_ARG, "layer 2");
  CHECK_ERROR(lcx_set_attention(m, 0, 7, 0), LCX_ERR_ARG, "kind 7");
  CHECK_ERROR(lcx_set_attention(m, 0, LCX_ATTN_WINDOW, 0), LCX_ERR_ARG, "window = 0");
  CHECK_OK(lcx_set_attention(m, 1, LCX_ATTN_WINDOW, 8));
  lcx_config e{};
  lcx_model_config(m, &e);
  CHECK(e.attn_kind[1] == LCX_ATTN_WINDOW && e.attn_window[1] == 8);
  CHECK(same_bits(params_of(m), before));
  // A window of 8 and dense attention agree on sequences of at most 8 tokens.
  lcx_model* dense = nullptr;
  CHECK_OK(lcx_model_create(&c, 3, 0, &dense));
  TokenBatch tb(1, 8, c.vocab_size, 6);
  if (dense) CHECK(same_bits(logits_of(m, tb.b, c.vocab_size), logits_of(dense, tb.b, c.vocab_size)));
  lcx_model_free(dense);
  // The pattern travels with the saved model.
  const std::string dir = scratch("window");
  CHECK_OK(lcx_model_save(m, dir.c_str(), 0));
  lcx_model_info info{};
  CHECK_OK(lcx_inspect(dir.c_str(), &info));
  CHECK(info.config.attn_kind[1] == LCX_ATTN_WINDOW && info.config.attn_window[1] == 8);
  lcx_model_free(m);
}

void train_steps(lcx_model* m, int steps, int salt) {
  for (int s = 0; s < steps; s++) {
    TokenBatch tb(2, 16, 48, salt + s);
    lcx_zero_grad(m);
    float loss = 0, norm = 0;
    lcx_forward_backward(m, &tb.b, 1.0f, &loss);
    lcx_optimizer_step(m, 1e-3f, &norm);
  }
}

TEST(training_and_checkpoints) {
  const lcx_config c = tiny(LCX_ARCH_GPT2);
  lcx_model* m = nullptr;
  CHECK_OK(lcx_model_create(&c, 11, 0, &m));
  if (!m) return;
  TokenBatch tb(2, 16, c.vocab_size, 0);
  CHECK_ERROR(lcx_zero_grad(m), LCX_ERR_ARG, "lcx_train_init first");
  CHECK_ERROR(lcx_forward_backward(m, &tb.b, 1.0f, nullptr), LCX_ERR_ARG, "lcx_train_init first");
  CHECK_ERROR(lcx_optimizer_step(m, 1e-3f, nullptr), LCX_ERR_ARG, "lcx_train_init first");
  lcx_train_config t = train_config();
  t.beta1 = 1.0f;
  CHECK_ERROR(lcx_train_init(m, &t), LCX_ERR_ARG, "beta1");
  t = train_config();
  t.master_dtype = 4;
  CHECK_ERROR(lcx_train_init(m, &t), LCX_ERR_ARG, "master_dtype");
  t = train_config();
  t.grad_dtype = 2;
  CHECK_ERROR(lcx_train_init(m, &t), LCX_ERR_ARG, "grad_dtype = 2");
  t = train_config();
  CHECK_OK(lcx_train_init(m, &t));
  CHECK_ERROR(lcx_optimizer_step(m, NAN, nullptr), LCX_ERR_ARG, "lr");
  lcx_batch untargeted = tb.b;
  untargeted.targets = nullptr;
  CHECK_ERROR(lcx_forward_backward(m, &untargeted, 1.0f, nullptr), LCX_ERR_ARG, "batch.targets is NULL");
  std::vector<float> grads(total(c));
  CHECK_OK(lcx_get_grads(m, grads.data(), grads.size()));

  train_steps(m, 3, 0);
  CHECK(lcx_optimizer_steps(m) == 3);
  const std::string dir = scratch("ckpt");
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / "step3.safetensors").string();
  CHECK_OK(lcx_save_checkpoint(m, path.c_str()));
  train_steps(m, 2, 3);
  const std::vector<float> continued = params_of(m);

  // Resume in a fresh model: the same two steps give the same numbers, bit for bit (with bf16
  // gradients asked for: the CPU backend keeps fp32 gradients whatever grad_dtype says).
  lcx_model* r = nullptr;
  CHECK_OK(lcx_model_create(&c, 999, 0, &r));
  if (r) {
    lcx_train_config t16 = t;
    t16.grad_dtype = 1;
    CHECK_OK(lcx_train_init(r, &t16));
    CHECK_OK(lcx_load_checkpoint(r, path.c_str()));
    CHECK(lcx_optimizer_steps(r) == 3);
    train_steps(r, 2, 3);
    CHECK(same_bits(params_of(r), continued));
    CHECK(lcx_optimizer_steps(r) == 5);
    lcx_model_free(r);
  }
  // Without lcx_train_init only the parameters come back (evaluation of a checkpoint).
  lcx_model* eval = nullptr;
  CHECK_OK(lcx_model_create(&c, 5, 0, &eval));
  if (eval) {
    CHECK_OK(lcx_load_checkpoint(eval, path.c_str()));
    CHECK(lcx_optimizer_steps(eval) == 0);
    lcx_model_free(eval);
  }
  // A checkpoint of another shape is refused with the difference named.
  lcx_config other = c;
  other.n_positions = 64;
  lcx_model* o = nullptr;
  CHECK_OK(lcx_model_create(&other, 5, 0, &o));
  if (o) {
    const std::vector<float> po = params_of(o);
    CHECK_ERROR(lcx_load_checkpoint(o, path.c_str()), LCX_ERR_ARG, "different model", "n_positions is 64 here and 32 there");
    CHECK(same_bits(params_of(o), po));  // untouched
    lcx_model_free(o);
  }
  CHECK_ERROR(lcx_load_checkpoint(m, (dir + "/missing.safetensors").c_str()), LCX_ERR_IO, "missing.safetensors");

  // Extending resets the optimizer but keeps the model trainable.
  CHECK_OK(lcx_extend_positions(m, 64, LCX_EXTEND_TILE, 0));
  CHECK(lcx_optimizer_steps(m) == 0);
  train_steps(m, 1, 9);
  CHECK(lcx_optimizer_steps(m) == 1);
  lcx_model_free(m);
}

TEST(generation) {
  const lcx_config c = tiny(LCX_ARCH_GPT2);
  lcx_model* m = nullptr;
  CHECK_OK(lcx_model_create(&c, 2, 0, &m));
  if (!m) return;
  lcx_gen* g = nullptr;
  CHECK_ERROR(lcx_gen_create(m, 33, &g), LCX_ERR_ARG, "max_tokens = 33", "n_positions (32)");
  CHECK_ERROR(lcx_gen_create(m, 0, &g), LCX_ERR_ARG, "max_tokens = 0");
  CHECK_OK(lcx_gen_create(m, 10, &g));
  if (!g) return;
  lcx_sampling s{};
  s.temperature = 0;
  s.top_p = 1;
  s.repetition_penalty = 1;
  int32_t tok = -1;
  CHECK_ERROR(lcx_gen_next(g, &s, &tok), LCX_ERR_ARG, "feed a prompt");
  const int32_t prompt[6] = {1, 2, 3, 4, 5, 6};
  std::vector<float> logits((size_t)c.vocab_size);
  CHECK_OK(lcx_gen_feed(g, prompt, 6, logits.data()));
  CHECK(lcx_gen_length(g) == 6);
  // The last-token logits equal a full forward's last row.
  TokenBatch tb(1, 6, c.vocab_size, 0);
  std::copy(prompt, prompt + 6, tb.tokens.begin());
  const std::vector<float> full = logits_of(m, tb.b, c.vocab_size);
  float max_diff = 0;
  for (int v = 0; v < c.vocab_size; v++)
    max_diff = std::fmax(max_diff, std::fabs(full[(size_t)(5 * c.vocab_size + v)] - logits[(size_t)v]));
  CHECK(max_diff < 1e-4f);

  const int32_t bad[1] = {48};
  CHECK_ERROR(lcx_gen_feed(g, bad, 1, nullptr), LCX_ERR_ARG, "tokens[0] = 48");
  const int32_t five[5] = {1, 1, 1, 1, 1};
  CHECK_ERROR(lcx_gen_feed(g, five, 5, nullptr), LCX_ERR_ARG, "holds 6 of its 10 tokens", "5 more");
  CHECK(lcx_gen_length(g) == 6);
  s.top_p = 0;
  CHECK_ERROR(lcx_gen_next(g, &s, &tok), LCX_ERR_ARG, "top_p");
  s.top_p = 1;
  for (int i = 0; i < 4; i++) {
    CHECK_OK(lcx_gen_next(g, &s, &tok));
    CHECK(tok >= 0 && tok < c.vocab_size);
  }
  CHECK(lcx_gen_length(g) == 10);
  CHECK_ERROR(lcx_gen_next(g, &s, &tok), LCX_ERR_ARG, "KV cache is full");
  CHECK_OK(lcx_gen_reset(g));
  CHECK(lcx_gen_length(g) == 0);
  CHECK_ERROR(lcx_gen_feed(g, nullptr, 0, logits.data()), LCX_ERR_ARG, "no token fed yet");

  // After a reconfiguration the old cache must not be used.
  CHECK_OK(lcx_extend_positions(m, 64, LCX_EXTEND_TILE, 0));
  CHECK_ERROR(lcx_gen_feed(g, prompt, 1, nullptr), LCX_ERR_ARG, "reconfigured");
  lcx_gen_free(g);
  lcx_gen_free(nullptr);

  lcx_memory_stats ms{};
  CHECK_OK(lcx_memory_stats_get(m, &ms));
  CHECK(ms.allocated_bytes >= 0);
  CHECK_OK(lcx_memory_reset_peak(m));
  lcx_model_free(m);
}

}  // namespace

int main() {
  g_root = (fs::temp_directory_path() / ("lcx_test_api_" + std::to_string((long long)getpid()))).string();
  fs::remove_all(g_root);
  fs::create_directories(g_root);
  const int rc = testing::run_all();
  fs::remove_all(g_root);
  return rc;
}
