#include "hf_model.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <set>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "files.hpp"

namespace lcx {

namespace {

const char* const kSupported =
    "supported: GPT2LMHeadModel (model_type \"gpt2\") and RuGPT3XLForCausalLM (model_type "
    "\"rugpt3xl\")";

// DeepSpeed FixedSparsityConfig as ruGPT3XL was trained (gpt3_xl_sparse_2048.json); also the
// port's defaults and what a GPT-2 model gets when one of its layers is switched to sparse.
constexpr lcx_sparse_config kDefaultSparse = {16, 8, 1, 1, 8, 1, 0};

// ---- reading config values ------------------------------------------------------------------

struct ConfigReader {
  const Json& root;
  const std::string& source;

  const Json* value(const char* key) const {
    const Json* v = root.find(key);
    return v && !v->is_null() ? v : nullptr;
  }

  int32_t get_int(const char* key, int32_t fallback) const {
    const Json* v = value(key);
    if (!v) return fallback;
    return as_int(*v, key);
  }

  int32_t as_int(const Json& v, const char* key) const {
    if (!v.is_integer())
      fail(LCX_ERR_FORMAT, "%s: \"%s\" must be an integer, got %s", source.c_str(), key,
           v.is_number() ? "a fraction" : v.type_name());
    const int64_t i = v.as_int64();
    if (i < INT32_MIN || i > INT32_MAX)
      fail(LCX_ERR_FORMAT, "%s: \"%s\" = %lld is out of range", source.c_str(), key, (long long)i);
    return (int32_t)i;
  }

  float get_float(const char* key, float fallback) const {
    const Json* v = value(key);
    if (!v) return fallback;
    if (!v->is_number())
      fail(LCX_ERR_FORMAT, "%s: \"%s\" must be a number, got %s", source.c_str(), key,
           v->type_name());
    return (float)v->as_double();
  }

  bool get_bool(const char* key, bool fallback) const {
    const Json* v = value(key);
    if (!v) return fallback;
    if (v->is_bool()) return v->as_bool();
    if (v->is_integer() && (v->as_int64() == 0 || v->as_int64() == 1)) return v->as_int64() == 1;
    fail(LCX_ERR_FORMAT, "%s: \"%s\" must be true or false, got %s", source.c_str(), key,
         v->type_name());
  }

  std::string get_string(const char* key, const char* fallback) const {
    const Json* v = value(key);
    if (!v) return fallback;
    if (!v->is_string())
      fail(LCX_ERR_FORMAT, "%s: \"%s\" must be a string, got %s", source.c_str(), key,
           v->type_name());
    return v->as_string();
  }
};

void check_activation(const std::string& act, const char* key, const std::string& source) {
  // The engine's GELU is the tanh approximation, which is what these names mean in transformers.
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    fail(LCX_ERR_UNSUPPORTED,
         "%s: \"%s\" = \"%s\" is not supported; the engine computes the tanh-approximated GELU "
         "(\"gelu_new\")",
         source.c_str(), key, act.c_str());
}

void parse_attention_list(const ConfigReader& r, lcx_config& c) {
  const Json* list = r.value("longctx_attention");
  if (!list) return;
  const char* src = r.source.c_str();
  if (!list->is_array())
    fail(LCX_ERR_FORMAT, "%s: \"longctx_attention\" must be an array of strings", src);
  if ((int)list->items().size() != c.n_layer)
    fail(LCX_ERR_FORMAT, "%s: \"longctx_attention\" has %zu entries but the model has %d layers",
         src, list->items().size(), c.n_layer);
  for (int l = 0; l < c.n_layer; l++) {
    const Json& e = list->items()[(size_t)l];
    const std::string s = e.is_string() ? e.as_string() : std::string();
    if (s == "dense") {
      c.attn_kind[l] = LCX_ATTN_DENSE;
    } else if (s == "sparse") {
      c.attn_kind[l] = LCX_ATTN_SPARSE;
    } else if (s.rfind("window:", 0) == 0) {
      const std::string digits = s.substr(7);
      long long w = 0;
      bool ok = !digits.empty() && digits.size() <= 9 &&
                digits.find_first_not_of("0123456789") == std::string::npos;
      if (ok) w = std::stoll(digits);
      if (!ok || w <= 0)
        fail(LCX_ERR_FORMAT, "%s: \"longctx_attention\"[%d] = \"%s\": the window must be a "
             "positive integer", src, l, s.c_str());
      c.attn_kind[l] = LCX_ATTN_WINDOW;
      c.attn_window[l] = (int32_t)w;
    } else {
      fail(LCX_ERR_FORMAT,
           "%s: \"longctx_attention\"[%d] must be \"dense\", \"sparse\" or \"window:N\"", src, l);
    }
  }
}

void parse_gpt2(const ConfigReader& r, HfConfig& out) {
  lcx_config& c = out.cfg;
  c.arch = LCX_ARCH_GPT2;
  // Defaults are transformers' GPT2Config defaults, so a sparse config.json means what it means
  // to transformers.
  c.vocab_size = r.get_int("vocab_size", 50257);
  c.n_positions = r.value("n_positions") ? r.get_int("n_positions", 1024) : r.get_int("n_ctx", 1024);
  c.n_embd = r.get_int("n_embd", 768);
  c.n_layer = r.get_int("n_layer", 12);
  c.n_head = r.get_int("n_head", 12);
  c.n_inner = r.get_int("n_inner", 0);
  if (c.n_inner == 0 && !r.value("n_inner")) c.n_inner = 4 * c.n_embd;
  c.layer_norm_eps = r.get_float("layer_norm_epsilon", 1e-5f);
  check_activation(r.get_string("activation_function", "gelu_new"), "activation_function", r.source);
  if (r.get_bool("scale_attn_by_inverse_layer_idx", false))
    fail(LCX_ERR_UNSUPPORTED, "%s: \"scale_attn_by_inverse_layer_idx\": true is not supported",
         r.source.c_str());
  if (!r.get_bool("scale_attn_weights", true))
    fail(LCX_ERR_UNSUPPORTED, "%s: \"scale_attn_weights\": false is not supported", r.source.c_str());
  if (r.get_bool("add_cross_attention", false))
    fail(LCX_ERR_UNSUPPORTED, "%s: \"add_cross_attention\": true (an encoder-decoder GPT-2) is not "
         "supported", r.source.c_str());
  out.lm_head_tied = r.get_bool("tie_word_embeddings", true);

  c.sparse = kDefaultSparse;
  if (const Json* s = r.value("longctx_sparse")) {
    if (!s->is_object())
      fail(LCX_ERR_FORMAT, "%s: \"longctx_sparse\" must be an object", r.source.c_str());
    const std::string sub_source = r.source + " longctx_sparse";
    ConfigReader sr{*s, sub_source};
    c.sparse.block = sr.get_int("block", kDefaultSparse.block);
    c.sparse.num_local_blocks = sr.get_int("num_local_blocks", kDefaultSparse.num_local_blocks);
    c.sparse.num_global_blocks = sr.get_int("num_global_blocks", kDefaultSparse.num_global_blocks);
    c.sparse.different_layout_per_head =
        sr.get_bool("different_layout_per_head", kDefaultSparse.different_layout_per_head);
    c.sparse.num_different_global_patterns =
        sr.get_int("num_different_global_patterns", kDefaultSparse.num_different_global_patterns);
    c.sparse.unidirectional = sr.get_bool("unidirectional", true);
    c.sparse.horizontal_global_attention = sr.get_bool("horizontal_global_attention", false);
  }
}

void parse_rugpt3xl(const ConfigReader& r, HfConfig& out) {
  lcx_config& c = out.cfg;
  c.arch = LCX_ARCH_RUGPT3XL;
  // Defaults: RuGPT3XLConfig.__init__ of the port.
  c.vocab_size = r.get_int("vocab_size", 50264);
  c.n_embd = r.get_int("hidden_size", 2048);
  c.n_layer = r.get_int("num_hidden_layers", 24);
  c.n_head = r.get_int("num_attention_heads", 16);
  c.n_inner = r.get_int("intermediate_size", 8192);
  c.n_positions = r.get_int("max_position_embeddings", 2048);
  c.layer_norm_eps = r.get_float("layer_norm_eps", 1e-5f);
  check_activation(r.get_string("hidden_act", "gelu_new"), "hidden_act", r.source);
  out.lm_head_tied = r.get_bool("tie_word_embeddings", false);

  c.sparse.block = r.get_int("sparse_block_size", kDefaultSparse.block);
  c.sparse.num_local_blocks = r.get_int("sparse_num_local_blocks", kDefaultSparse.num_local_blocks);
  c.sparse.num_global_blocks =
      r.get_int("sparse_num_global_blocks", kDefaultSparse.num_global_blocks);
  c.sparse.num_different_global_patterns = r.get_int(
      "sparse_num_different_global_patterns", kDefaultSparse.num_different_global_patterns);
  c.sparse.different_layout_per_head = r.get_bool("sparse_different_layout_per_head", true);
  c.sparse.unidirectional = 1;
  c.sparse.horizontal_global_attention = 0;

  const std::string mode = r.get_string("sparse_mode", "none");
  if (mode != "none" && mode != "alternating" && mode != "all")
    fail(LCX_ERR_UNSUPPORTED, "%s: \"sparse_mode\" = \"%s\"; supported: \"none\", \"alternating\", \"all\"",
         r.source.c_str(), mode.c_str());
  if (c.n_layer > 0 && c.n_layer <= LCX_MAX_LAYERS)
    for (int l = 0; l < c.n_layer; l++)
      c.attn_kind[l] = (mode == "all" || (mode == "alternating" && l % 2 == 0)) ? LCX_ATTN_SPARSE
                                                                                 : LCX_ATTN_DENSE;
}

// ---- tensor names -------------------------------------------------------------------------------

struct HfTensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // as stored in the HF file
  size_t offset;               // floats into the canonical params
  bool transpose;              // file holds [in, out] (Conv1D); canonical is [out, in]
};

std::vector<HfTensorSpec> tensor_specs(const lcx_config& c, const std::string& prefix) {
  const lcx_param_layout lay = param_layout(c);
  const int64_t V = c.vocab_size, P = c.n_positions, C = c.n_embd, F = c.n_inner;
  const size_t Cs = (size_t)C, Fs = (size_t)F;
  std::vector<HfTensorSpec> s;
  auto add = [&](std::string name, std::vector<int64_t> shape, size_t offset, bool t = false) {
    s.push_back({prefix + name, std::move(shape), offset, t});
  };
  if (c.arch == LCX_ARCH_GPT2) {
    add("wte.weight", {V, C}, lay.offset[0]);
    add("wpe.weight", {P, C}, lay.offset[1]);
    for (int l = 0; l < c.n_layer; l++) {
      const size_t L = (size_t)l;
      const std::string h = "h." + std::to_string(l) + ".";
      add(h + "ln_1.weight", {C}, lay.offset[2] + L * Cs);
      add(h + "ln_1.bias", {C}, lay.offset[3] + L * Cs);
      add(h + "attn.c_attn.weight", {C, 3 * C}, lay.offset[4] + L * 3 * Cs * Cs, true);
      add(h + "attn.c_attn.bias", {3 * C}, lay.offset[5] + L * 3 * Cs);
      add(h + "attn.c_proj.weight", {C, C}, lay.offset[6] + L * Cs * Cs, true);
      add(h + "attn.c_proj.bias", {C}, lay.offset[7] + L * Cs);
      add(h + "ln_2.weight", {C}, lay.offset[8] + L * Cs);
      add(h + "ln_2.bias", {C}, lay.offset[9] + L * Cs);
      add(h + "mlp.c_fc.weight", {C, F}, lay.offset[10] + L * Fs * Cs, true);
      add(h + "mlp.c_fc.bias", {F}, lay.offset[11] + L * Fs);
      add(h + "mlp.c_proj.weight", {F, C}, lay.offset[12] + L * Cs * Fs, true);
      add(h + "mlp.c_proj.bias", {C}, lay.offset[13] + L * Cs);
    }
    add("ln_f.weight", {C}, lay.offset[14]);
    add("ln_f.bias", {C}, lay.offset[15]);
  } else {
    add("embed_tokens.weight", {V, C}, lay.offset[0]);
    add("embed_positions.weight", {P, C}, lay.offset[1]);
    for (int l = 0; l < c.n_layer; l++) {
      const size_t L = (size_t)l;
      const std::string h = "layers." + std::to_string(l) + ".";
      add(h + "input_layernorm.weight", {C}, lay.offset[2] + L * Cs);
      add(h + "input_layernorm.bias", {C}, lay.offset[3] + L * Cs);
      const char* qkv[3] = {"q_proj", "k_proj", "v_proj"};
      for (size_t j = 0; j < 3; j++) {
        // Rows q, then k, then v of the layer's fused (3C, C) block.
        add(h + "self_attn." + qkv[j] + ".weight", {C, C}, lay.offset[4] + (L * 3 + j) * Cs * Cs);
        add(h + "self_attn." + qkv[j] + ".bias", {C}, lay.offset[5] + (L * 3 + j) * Cs);
      }
      add(h + "self_attn.o_proj.weight", {C, C}, lay.offset[6] + L * Cs * Cs);
      add(h + "self_attn.o_proj.bias", {C}, lay.offset[7] + L * Cs);
      add(h + "post_attention_layernorm.weight", {C}, lay.offset[8] + L * Cs);
      add(h + "post_attention_layernorm.bias", {C}, lay.offset[9] + L * Cs);
      add(h + "mlp.up_proj.weight", {F, C}, lay.offset[10] + L * Fs * Cs);
      add(h + "mlp.up_proj.bias", {F}, lay.offset[11] + L * Fs);
      add(h + "mlp.down_proj.weight", {C, F}, lay.offset[12] + L * Cs * Fs);
      add(h + "mlp.down_proj.bias", {C}, lay.offset[13] + L * Cs);
    }
    add("norm.weight", {C}, lay.offset[14]);
    add("norm.bias", {C}, lay.offset[15]);
  }
  return s;
}

const char* canonical_prefix(int arch) { return arch == LCX_ARCH_GPT2 ? "transformer." : "model."; }
const char* embedding_name(int arch) {
  return arch == LCX_ARCH_GPT2 ? "wte.weight" : "embed_tokens.weight";
}

// Transposes a (rows, cols) row-major block into (cols, rows), in cache-sized tiles.
void transpose(const float* src, size_t rows, size_t cols, float* dst) {
  constexpr size_t kTile = 32;
#pragma omp parallel for schedule(static)
  for (long long r0 = 0; r0 < (long long)rows; r0 += (long long)kTile)
    for (size_t c0 = 0; c0 < cols; c0 += kTile) {
      const size_t r1 = std::min((size_t)r0 + kTile, rows), c1 = std::min(c0 + kTile, cols);
      for (size_t r = (size_t)r0; r < r1; r++)
        for (size_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
}

// ---- matching files against the config ------------------------------------------------------

struct ResolvedTensor {
  const HfTensorSpec* spec;
  SafetensorsModel::Located at;
};

struct ResolvedModel {
  HfConfig hf;
  SafetensorsModel files;
  std::vector<HfTensorSpec> specs;
  std::vector<ResolvedTensor> tensors;
  SafetensorsModel::Located lm_head{nullptr, nullptr};
};

bool is_loadable_dtype(const std::string& d) { return d == "F32" || d == "F16" || d == "BF16"; }

ResolvedModel resolve_model(const std::string& dir) {
  ResolvedModel m{read_hf_config(dir), SafetensorsModel::open_dir(dir), {}, {}, {}};
  const lcx_config& c = m.hf.cfg;

  const std::string full_prefix = canonical_prefix(c.arch);
  const std::string prefix =
      m.files.find(full_prefix + embedding_name(c.arch)).entry ? full_prefix
      : m.files.find(embedding_name(c.arch)).entry              ? std::string()
                                                                : full_prefix;
  m.specs = tensor_specs(c, prefix);

  std::set<std::string> expected;
  for (const auto& spec : m.specs) {
    SafetensorsModel::Located at = m.files.find(spec.name);
    if (!at.entry)
      fail(LCX_ERR_FORMAT, "%s: tensor '%s' is missing from %s (expected shape %s for %s)",
           dir.c_str(), spec.name.c_str(), m.files.description().c_str(),
           shape_to_string(spec.shape).c_str(), m.hf.architecture.c_str());
    if (at.entry->shape != spec.shape)
      fail(LCX_ERR_SHAPE, "%s: tensor '%s' has shape %s, config.json implies %s",
           at.file->path().c_str(), spec.name.c_str(), shape_to_string(at.entry->shape).c_str(),
           shape_to_string(spec.shape).c_str());
    if (!is_loadable_dtype(at.entry->dtype))
      fail(LCX_ERR_DTYPE, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be loaded",
           at.file->path().c_str(), spec.name.c_str(), at.entry->dtype.c_str());
    m.tensors.push_back({&spec, at});
    expected.insert(spec.name);
  }

  m.lm_head = m.files.find("lm_head.weight");
  if (m.lm_head.entry) {
    const std::vector<int64_t> want = {c.vocab_size, c.n_embd};
    if (m.lm_head.entry->shape != want)
      fail(LCX_ERR_SHAPE, "%s: tensor 'lm_head.weight' has shape %s, config.json implies %s",
           m.lm_head.file->path().c_str(), shape_to_string(m.lm_head.entry->shape).c_str(),
           shape_to_string(want).c_str());
    if (!m.hf.lm_head_tied && !is_loadable_dtype(m.lm_head.entry->dtype))
      fail(LCX_ERR_DTYPE, "%s: tensor 'lm_head.weight' has dtype %s; only F32, F16 and BF16 can "
           "be loaded", m.lm_head.file->path().c_str(), m.lm_head.entry->dtype.c_str());
    expected.insert("lm_head.weight");
  } else if (!m.hf.lm_head_tied) {
    fail(LCX_ERR_FORMAT, "%s: tensor 'lm_head.weight' is missing from %s (config.json sets "
         "tie_word_embeddings = false, so the output projection must be stored)",
         dir.c_str(), m.files.description().c_str());
  }

  // Anything else means the files and config.json describe different models.
  std::vector<std::string> unexpected;
  for (const auto& name : m.files.tensor_names()) {
    if (expected.count(name)) continue;
    if (c.arch == LCX_ARCH_GPT2) {
      // Causal-mask buffers that old GPT-2 checkpoints saved alongside the weights.
      const std::string tail = name.size() > 10 ? name.substr(name.size() - 10) : name;
      const bool mask_buffer =
          name.rfind(prefix + "h.", 0) == 0 &&
          (tail == ".attn.bias" ||
           (name.size() > 17 && name.compare(name.size() - 17, 17, ".attn.masked_bias") == 0));
      if (mask_buffer) continue;
    }
    unexpected.push_back(name);
  }
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 3; i++) list += (i ? ", '" : "'") + unexpected[i] + "'";
    if (unexpected.size() > 3) list += ", ... (" + std::to_string(unexpected.size()) + " in all)";
    fail(LCX_ERR_FORMAT, "%s: unexpected tensor(s) %s for a %s with %d layers as config.json "
         "describes it; the weights and config.json do not belong together",
         dir.c_str(), list.c_str(), m.hf.architecture.c_str(), c.n_layer);
  }
  return m;
}

// ---- writing config.json -----------------------------------------------------------------------

void update_int(Json& root, const char* key, int64_t value) {
  const Json* v = root.find(key);
  if (v && v->is_integer() && v->as_int64() == value) return;
  root.set(key, Json::integer(value));
}

void update_float(Json& root, const char* key, float value) {
  const Json* v = root.find(key);
  if (v && v->is_number() && (float)v->as_double() == value) return;
  root.set(key, Json::number_with_text((double)value, format_float(value)));
}

void update_string(Json& root, const char* key, const std::string& value) {
  const Json* v = root.find(key);
  if (v && v->is_string() && v->as_string() == value) return;
  root.set(key, Json::string(value));
}

void update_bool(Json& root, const char* key, bool value) {
  const Json* v = root.find(key);
  if (v && v->is_bool() && v->as_bool() == value) return;
  root.set(key, Json::boolean(value));
}

void set_if_absent(Json& root, const char* key, Json value) {
  if (!root.find(key)) root.set(key, std::move(value));
}

// The per-layer pattern that sparse_mode alone expresses, or nullptr if it takes more.
const char* rugpt3xl_sparse_mode(const lcx_config& c) {
  bool none = true, all = true, alternating = true;
  for (int l = 0; l < c.n_layer; l++) {
    const int k = c.attn_kind[l];
    if (k == LCX_ATTN_WINDOW) return nullptr;
    const bool sparse = k == LCX_ATTN_SPARSE;
    none &= !sparse;
    all &= sparse;
    alternating &= sparse == (l % 2 == 0);
  }
  if (none) return "none";
  if (alternating) return "alternating";
  if (all) return "all";
  return nullptr;
}

Json attention_list(const lcx_config& c) {
  Json list = Json::array();
  for (int l = 0; l < c.n_layer; l++) {
    switch (c.attn_kind[l]) {
      case LCX_ATTN_SPARSE: list.push_back(Json::string("sparse")); break;
      case LCX_ATTN_WINDOW:
        list.push_back(Json::string("window:" + std::to_string(c.attn_window[l])));
        break;
      default: list.push_back(Json::string("dense"));
    }
  }
  return list;
}

const char* torch_dtype_name(StoredDtype d) {
  switch (d) {
    case StoredDtype::F32: return "float32";
    case StoredDtype::F16: return "float16";
    case StoredDtype::BF16: return "bfloat16";
  }
  return "float32";
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------

const char* default_hf_architecture(int arch) {
  return arch == LCX_ARCH_RUGPT3XL ? "RuGPT3XLForCausalLM" : "GPT2LMHeadModel";
}

HfConfig parse_hf_config(const std::string& text, const std::string& source) {
  HfConfig out;
  out.json = parse_json(text, source);
  if (!out.json.is_object()) fail(LCX_ERR_FORMAT, "%s: must be a JSON object", source.c_str());
  ConfigReader r{out.json, source};

  std::string arch_name;
  if (const Json* archs = r.value("architectures")) {
    if (!archs->is_array() || (!archs->items().empty() && !archs->items()[0].is_string()))
      fail(LCX_ERR_FORMAT, "%s: \"architectures\" must be an array of strings", source.c_str());
    if (!archs->items().empty()) arch_name = archs->items()[0].as_string();
  }
  const std::string model_type = r.get_string("model_type", "");
  int arch = -1;
  if (!arch_name.empty()) {
    if (arch_name == "GPT2LMHeadModel" || arch_name == "GPT2Model") arch = LCX_ARCH_GPT2;
    if (arch_name == "RuGPT3XLForCausalLM" || arch_name == "RuGPT3XLModel") arch = LCX_ARCH_RUGPT3XL;
    if (arch < 0)
      fail(LCX_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported; %s", source.c_str(),
           arch_name.c_str(), kSupported);
    out.architecture = arch_name;
  } else {
    if (model_type == "gpt2") arch = LCX_ARCH_GPT2;
    if (model_type == "rugpt3xl") arch = LCX_ARCH_RUGPT3XL;
    if (arch < 0) {
      if (model_type.empty())
        fail(LCX_ERR_UNSUPPORTED, "%s: names neither \"architectures\" nor \"model_type\"; %s",
             source.c_str(), kSupported);
      fail(LCX_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not supported; %s", source.c_str(),
           model_type.c_str(), kSupported);
    }
    out.architecture = model_type;
  }

  if (arch == LCX_ARCH_GPT2)
    parse_gpt2(r, out);
  else
    parse_rugpt3xl(r, out);

  lcx_config& c = out.cfg;
  if (c.n_layer > LCX_MAX_LAYERS)
    fail(LCX_ERR_UNSUPPORTED, "%s: %d layers; at most %d are supported", source.c_str(), c.n_layer,
         LCX_MAX_LAYERS);
  if (c.n_layer > 0) parse_attention_list(r, c);
  try {
    validate_config(c);
  } catch (const Error& e) {
    // Bad values in a file are a bad file, not a bad argument.
    const lcx_status s = e.status() == LCX_ERR_ARG ? LCX_ERR_FORMAT : e.status();
    fail(s, "%s: %s", source.c_str(), e.what());
  }
  return out;
}

HfConfig read_hf_config(const std::string& dir) {
  if (!directory_exists(dir)) fail(LCX_ERR_IO, "%s: no such folder", dir.c_str());
  const std::string path = join_path(dir, "config.json");
  if (!file_exists(path))
    fail(LCX_ERR_IO, "%s: no such file (a model folder needs config.json beside its safetensors)",
         path.c_str());
  return parse_hf_config(read_text_file(path), path);
}

lcx_model_info inspect_hf_model(const std::string& dir) {
  ResolvedModel m = resolve_model(dir);
  lcx_model_info info{};
  info.config = m.hf.cfg;
  info.parameters = (int64_t)param_layout(m.hf.cfg).total;
  info.bytes_on_disk = (int64_t)m.files.bytes_on_disk();
  info.num_files = (int32_t)m.files.files().size();
  std::string dtype;
  for (const auto& t : m.tensors) {
    if (dtype.empty()) dtype = t.at.entry->dtype;
    else if (dtype != t.at.entry->dtype) dtype = "mixed";
  }
  std::snprintf(info.dtype, sizeof info.dtype, "%s", dtype.c_str());
  std::snprintf(info.architecture, sizeof info.architecture, "%s", m.hf.architecture.c_str());
  return info;
}

LoadedHfModel load_hf_model(const std::string& dir) {
  ResolvedModel m = resolve_model(dir);
  const lcx_config& c = m.hf.cfg;
  LoadedHfModel out;
  out.cfg = c;
  out.architecture = m.hf.architecture;
  out.config_json = read_text_file(join_path(dir, "config.json"));
  out.params.resize(param_layout(c).total);

  std::vector<float> staging;
  for (const auto& t : m.tensors) {
    float* dst = out.params.data() + t.spec->offset;
    if (!t.spec->transpose) {
      t.at.file->read_f32(*t.at.entry, dst);
      continue;
    }
    const size_t rows = (size_t)t.spec->shape[0], cols = (size_t)t.spec->shape[1];
    staging.resize(rows * cols);
    t.at.file->read_f32(*t.at.entry, staging.data());
    transpose(staging.data(), rows, cols, dst);
  }

  if (!m.hf.lm_head_tied) {
    // Refuse rather than compute with a head the engine cannot represent.
    const size_t n = (size_t)c.vocab_size * (size_t)c.n_embd;
    staging.resize(n);
    m.lm_head.file->read_f32(*m.lm_head.entry, staging.data());
    const float* wte = out.params.data();
    size_t differing = 0, first = 0;
    double max_diff = 0;
    for (size_t i = 0; i < n; i++) {
      if (std::memcmp(&staging[i], &wte[i], sizeof(float)) != 0) {
        if (differing++ == 0) first = i;
        max_diff = std::fmax(max_diff, std::fabs((double)staging[i] - (double)wte[i]));
      }
    }
    if (differing)
      fail(LCX_ERR_UNSUPPORTED,
           "%s: 'lm_head.weight' differs from the token embedding in %zu of %zu values (first at "
           "row %zu, max |diff| %g); the engine ties the output projection to the token embedding "
           "and cannot load an untied model exactly",
           m.lm_head.file->path().c_str(), differing, n, first / (size_t)c.n_embd, max_diff);
  }
  return out;
}

std::string make_hf_config_json(const lcx_config& c, const std::string& architecture,
                                const std::string& original_json, StoredDtype dtype) {
  Json root = Json::object();
  if (!original_json.empty()) {
    Json original = parse_json(original_json, "config.json of the model");
    if (original.is_object()) root = std::move(original);
  }
  const bool fresh = root.members().empty();
  Json archs = Json::array();
  archs.push_back(Json::string(architecture.empty() ? default_hf_architecture(c.arch) : architecture));
  set_if_absent(root, "architectures", std::move(archs));

  bool window_layers = false, sparse_layers = false;
  for (int l = 0; l < c.n_layer; l++) {
    window_layers |= c.attn_kind[l] == LCX_ATTN_WINDOW;
    sparse_layers |= c.attn_kind[l] == LCX_ATTN_SPARSE;
  }

  if (c.arch == LCX_ARCH_GPT2) {
    set_if_absent(root, "model_type", Json::string("gpt2"));
    set_if_absent(root, "activation_function", Json::string("gelu_new"));
    update_int(root, "vocab_size", c.vocab_size);
    update_int(root, "n_positions", c.n_positions);
    // Old configs also carry n_ctx (the causal-mask size in old transformers): keep it in step.
    if (root.find("n_ctx")) update_int(root, "n_ctx", c.n_positions);
    update_int(root, "n_embd", c.n_embd);
    update_int(root, "n_layer", c.n_layer);
    update_int(root, "n_head", c.n_head);
    // null (= 4 * n_embd) stays null where the original said so; fresh configs get the number.
    const Json* inner = root.find("n_inner");
    if (c.n_inner == 4 * c.n_embd && inner && inner->is_null())
      root.set("n_inner", Json());
    else
      update_int(root, "n_inner", c.n_inner);
    update_float(root, "layer_norm_epsilon", c.layer_norm_eps);
    if (fresh) root.set("initializer_range", Json::number_with_text(0.02, "0.02"));
    if (sparse_layers) {
      Json s = Json::object();
      s.set("block", Json::integer(c.sparse.block));
      s.set("num_local_blocks", Json::integer(c.sparse.num_local_blocks));
      s.set("num_global_blocks", Json::integer(c.sparse.num_global_blocks));
      s.set("different_layout_per_head", Json::boolean(c.sparse.different_layout_per_head != 0));
      s.set("num_different_global_patterns", Json::integer(c.sparse.num_different_global_patterns));
      s.set("unidirectional", Json::boolean(c.sparse.unidirectional != 0));
      s.set("horizontal_global_attention",
            Json::boolean(c.sparse.horizontal_global_attention != 0));
      root.set("longctx_sparse", std::move(s));
    } else {
      root.erase("longctx_sparse");
    }
    if (window_layers || sparse_layers)
      root.set("longctx_attention", attention_list(c));
    else
      root.erase("longctx_attention");
  } else {
    if (fresh) {
      // What lets transformers find the port's classes once its .py files sit beside it.
      Json auto_map = Json::object();
      auto_map.set("AutoConfig", Json::string("configuration_rugpt3xl.RuGPT3XLConfig"));
      auto_map.set("AutoModel", Json::string("modeling_rugpt3xl.RuGPT3XLModel"));
      auto_map.set("AutoModelForCausalLM", Json::string("modeling_rugpt3xl.RuGPT3XLForCausalLM"));
      root.set("auto_map", std::move(auto_map));
    }
    set_if_absent(root, "model_type", Json::string("rugpt3xl"));
    update_int(root, "vocab_size", c.vocab_size);
    update_int(root, "hidden_size", c.n_embd);
    update_int(root, "num_hidden_layers", c.n_layer);
    update_int(root, "num_attention_heads", c.n_head);
    update_int(root, "intermediate_size", c.n_inner);
    set_if_absent(root, "hidden_act", Json::string("gelu_new"));
    update_int(root, "max_position_embeddings", c.n_positions);
    update_float(root, "layer_norm_eps", c.layer_norm_eps);
    set_if_absent(root, "tie_word_embeddings", Json::boolean(false));
    const char* mode = rugpt3xl_sparse_mode(c);
    if (mode)
      update_string(root, "sparse_mode", mode);
    else
      set_if_absent(root, "sparse_mode", Json::string("none"));
    update_int(root, "sparse_block_size", c.sparse.block);
    update_int(root, "sparse_num_local_blocks", c.sparse.num_local_blocks);
    update_int(root, "sparse_num_global_blocks", c.sparse.num_global_blocks);
    update_int(root, "sparse_num_different_global_patterns", c.sparse.num_different_global_patterns);
    if (!c.sparse.different_layout_per_head || root.find("sparse_different_layout_per_head"))
      update_bool(root, "sparse_different_layout_per_head", c.sparse.different_layout_per_head != 0);
    if (mode)
      root.erase("longctx_attention");
    else
      root.set("longctx_attention", attention_list(c));
  }

  // transformers >= 4.56 writes "dtype", older ones "torch_dtype": update whichever is there.
  const bool has_dtype = root.find("dtype") != nullptr;
  if (has_dtype) update_string(root, "dtype", torch_dtype_name(dtype));
  if (root.find("torch_dtype") || !has_dtype) update_string(root, "torch_dtype", torch_dtype_name(dtype));
  return write_json(root, 2) + "\n";
}

void save_hf_model(const std::string& dir, const lcx_config& c, const std::string& architecture,
                   const std::string& original_json, const float* params, int64_t max_shard_bytes,
                   StoredDtype dtype) {
  validate_config(c);
  // Decide everything that can fail on the config before touching any file.
  const std::string config_text = make_hf_config_json(c, architecture, original_json, dtype);
  const bool tied = parse_hf_config(config_text, join_path(dir, "config.json")).lm_head_tied;

  const std::vector<HfTensorSpec> specs = tensor_specs(c, canonical_prefix(c.arch));
  std::vector<TensorToWrite> tensors;
  for (const auto& spec : specs) {
    TensorToWrite t;
    t.name = spec.name;
    t.shape = spec.shape;
    const float* src = params + spec.offset;
    if (spec.transpose) {
      // Canonical (out, in) = (shape[1], shape[0]) back to the Conv1D (in, out).
      const size_t out_dim = (size_t)spec.shape[1], in_dim = (size_t)spec.shape[0];
      t.fill = [src, out_dim, in_dim](float* dst) { transpose(src, out_dim, in_dim, dst); };
    } else {
      t.data = src;
    }
    tensors.push_back(std::move(t));
  }
  if (!tied) {
    TensorToWrite head;
    head.name = "lm_head.weight";
    head.shape = {c.vocab_size, c.n_embd};
    head.data = params;  // wte is the first canonical tensor
    tensors.push_back(std::move(head));
  }
  ensure_directory(dir);
  write_safetensors_model(dir, tensors, dtype, max_shard_bytes);
  // config.json last: a folder whose config is new has weights that match it.
  write_text_file_atomic(join_path(dir, "config.json"), config_text);
}

}  // namespace lcx
