#include "checkpoint.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <climits>
#include <cstring>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace lcx {

namespace {

const char* const kFormat = "longctx-checkpoint";
const char* const kVersion = "1";

const char* const kTensorNames[LCX_NUM_PARAM_TENSORS] = {
    "wte",  "wpe",  "ln1w", "ln1b", "qkvw",    "qkvb",  "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb", "lnfw",   "lnfb"};

const char* const kSparseKeys[] = {"block",
                                   "num_local_blocks",
                                   "num_global_blocks",
                                   "different_layout_per_head",
                                   "num_different_global_patterns",
                                   "unidirectional",
                                   "horizontal_global_attention"};

int32_t* sparse_field(lcx_sparse_config& s, int i) {
  int32_t* fields[] = {&s.block,
                       &s.num_local_blocks,
                       &s.num_global_blocks,
                       &s.different_layout_per_head,
                       &s.num_different_global_patterns,
                       &s.unidirectional,
                       &s.horizontal_global_attention};
  return fields[i];
}

bool any_sparse_layer(const lcx_config& c) {
  for (int l = 0; l < c.n_layer && l < LCX_MAX_LAYERS; l++)
    if (c.attn_kind[l] == LCX_ATTN_SPARSE) return true;
  return false;
}

}  // namespace

const char* canonical_tensor_name(int i) {
  return i >= 0 && i < LCX_NUM_PARAM_TENSORS ? kTensorNames[i] : "?";
}

std::vector<int64_t> canonical_tensor_shape(const lcx_config& c, int i) {
  const int64_t V = c.vocab_size, P = c.n_positions, C = c.n_embd, L = c.n_layer, F = c.n_inner;
  switch (i) {
    case 0: return {V, C};
    case 1: return {P, C};
    case 4: return {L, 3 * C, C};
    case 5: return {L, 3 * C};
    case 6: return {L, C, C};
    case 10: return {L, F, C};
    case 11: return {L, F};
    case 12: return {L, C, F};
    case 14:
    case 15: return {C};
    default: return {L, C};  // ln1w ln1b attprojb ln2w ln2b fcprojb
  }
}

Json config_to_json(const lcx_config& c) {
  Json j = Json::object();
  j.set("arch", Json::integer(c.arch));
  j.set("vocab_size", Json::integer(c.vocab_size));
  j.set("n_positions", Json::integer(c.n_positions));
  j.set("n_embd", Json::integer(c.n_embd));
  j.set("n_layer", Json::integer(c.n_layer));
  j.set("n_head", Json::integer(c.n_head));
  j.set("n_inner", Json::integer(c.n_inner));
  j.set("layer_norm_eps", Json::number_with_text(c.layer_norm_eps, format_float(c.layer_norm_eps)));
  Json kinds = Json::array(), windows = Json::array();
  for (int l = 0; l < c.n_layer && l < LCX_MAX_LAYERS; l++) {
    kinds.push_back(Json::integer(c.attn_kind[l]));
    windows.push_back(Json::integer(c.attn_window[l]));
  }
  j.set("attn_kind", std::move(kinds));
  j.set("attn_window", std::move(windows));
  Json s = Json::object();
  lcx_sparse_config sc = c.sparse;
  for (int i = 0; i < 7; i++) s.set(kSparseKeys[i], Json::integer(*sparse_field(sc, i)));
  j.set("sparse", std::move(s));
  return j;
}

lcx_config config_from_json(const Json& j, const std::string& source) {
  const char* src = source.c_str();
  auto int_of = [&](const Json& parent, const char* key) -> int32_t {
    const Json* v = parent.is_object() ? parent.find(key) : nullptr;
    if (!v || !v->is_integer() || v->as_int64() < INT32_MIN || v->as_int64() > INT32_MAX)
      fail(LCX_ERR_FORMAT, "%s: config field \"%s\" is missing or not an integer", src, key);
    return (int32_t)v->as_int64();
  };
  lcx_config c{};
  c.arch = int_of(j, "arch");
  c.vocab_size = int_of(j, "vocab_size");
  c.n_positions = int_of(j, "n_positions");
  c.n_embd = int_of(j, "n_embd");
  c.n_layer = int_of(j, "n_layer");
  c.n_head = int_of(j, "n_head");
  c.n_inner = int_of(j, "n_inner");
  const Json* eps = j.find("layer_norm_eps");
  if (!eps || !eps->is_number()) fail(LCX_ERR_FORMAT, "%s: config field \"layer_norm_eps\" is missing", src);
  c.layer_norm_eps = (float)eps->as_double();
  if (c.n_layer < 0 || c.n_layer > LCX_MAX_LAYERS)
    fail(LCX_ERR_FORMAT, "%s: config n_layer = %d is out of range", src, c.n_layer);
  const Json* kinds = j.find("attn_kind");
  const Json* windows = j.find("attn_window");
  if (!kinds || !windows || !kinds->is_array() || !windows->is_array() ||
      (int)kinds->items().size() != c.n_layer || (int)windows->items().size() != c.n_layer)
    fail(LCX_ERR_FORMAT, "%s: config attn_kind / attn_window must have n_layer entries", src);
  for (int l = 0; l < c.n_layer; l++) {
    const Json& k = kinds->items()[(size_t)l];
    const Json& w = windows->items()[(size_t)l];
    if (!k.is_integer() || !w.is_integer())
      fail(LCX_ERR_FORMAT, "%s: config attn_kind / attn_window entries must be integers", src);
    c.attn_kind[l] = (int32_t)k.as_int64();
    c.attn_window[l] = (int32_t)w.as_int64();
  }
  const Json* s = j.find("sparse");
  if (!s || !s->is_object()) fail(LCX_ERR_FORMAT, "%s: config field \"sparse\" is missing", src);
  for (int i = 0; i < 7; i++) *sparse_field(c.sparse, i) = int_of(*s, kSparseKeys[i]);
  return c;
}

std::string config_difference(const lcx_config& a, const lcx_config& b) {
  char buf[256];
  auto differs = [&](const char* name, long long x, long long y) {
    if (x == y) return false;
    std::snprintf(buf, sizeof buf, "%s is %lld here and %lld there", name, x, y);
    return true;
  };
  if (differs("arch", a.arch, b.arch) || differs("vocab_size", a.vocab_size, b.vocab_size) ||
      differs("n_positions", a.n_positions, b.n_positions) ||
      differs("n_embd", a.n_embd, b.n_embd) || differs("n_layer", a.n_layer, b.n_layer) ||
      differs("n_head", a.n_head, b.n_head) || differs("n_inner", a.n_inner, b.n_inner))
    return buf;
  if (a.layer_norm_eps != b.layer_norm_eps) {
    std::snprintf(buf, sizeof buf, "layer_norm_eps is %g here and %g there",
                  (double)a.layer_norm_eps, (double)b.layer_norm_eps);
    return buf;
  }
  for (int l = 0; l < a.n_layer && l < LCX_MAX_LAYERS; l++) {
    char name[64];
    std::snprintf(name, sizeof name, "attn_kind[%d]", l);
    if (differs(name, a.attn_kind[l], b.attn_kind[l])) return buf;
    std::snprintf(name, sizeof name, "attn_window[%d]", l);
    if (a.attn_kind[l] == LCX_ATTN_WINDOW && differs(name, a.attn_window[l], b.attn_window[l]))
      return buf;
  }
  if (any_sparse_layer(a)) {
    lcx_sparse_config sa = a.sparse, sb = b.sparse;
    for (int i = 0; i < 7; i++) {
      std::string name = std::string("sparse.") + kSparseKeys[i];
      if (differs(name.c_str(), *sparse_field(sa, i), *sparse_field(sb, i))) return buf;
    }
  }
  return "";
}

void write_checkpoint(const std::string& path, const lcx_config& cfg,
                      const std::string& architecture, const float* params, const float* adam_m,
                      const float* adam_v, int64_t step) {
  const lcx_param_layout lay = param_layout(cfg);
  std::vector<TensorToWrite> tensors;
  auto add_group = [&](const char* group, const float* base) {
    for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
      TensorToWrite t;
      t.name = std::string(group) + "." + kTensorNames[i];
      t.shape = canonical_tensor_shape(cfg, i);
      t.data = base + lay.offset[i];
      tensors.push_back(std::move(t));
    }
  };
  add_group("params", params);
  if (adam_m && adam_v) {
    add_group("adam_m", adam_m);
    add_group("adam_v", adam_v);
  }
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"format", kFormat},
      {"longctx_checkpoint_version", kVersion},
      {"step", std::to_string(step)},
      {"architecture", architecture},
      {"config", write_json(config_to_json(cfg))}};
  write_safetensors(path, tensors, StoredDtype::F32, meta);
}

CheckpointReader::CheckpointReader(const std::string& path, const lcx_config& expected)
    : file_(path), cfg_(expected) {
  const char* p = path.c_str();
  const std::string* format = file_.metadata_value("format");
  if (!format || *format != kFormat)
    fail(LCX_ERR_FORMAT, "%s: not a LongCtx checkpoint (its __metadata__ has no \"format\": \"%s\")",
         p, kFormat);
  const std::string* version = file_.metadata_value("longctx_checkpoint_version");
  if (!version || *version != kVersion)
    fail(LCX_ERR_UNSUPPORTED, "%s: checkpoint version \"%s\" is not supported (expected %s)", p,
         version ? version->c_str() : "", kVersion);
  const std::string* step = file_.metadata_value("step");
  const std::string* config = file_.metadata_value("config");
  if (!step || !config) fail(LCX_ERR_FORMAT, "%s: checkpoint metadata lacks \"step\" or \"config\"", p);
  char* end = nullptr;
  errno = 0;
  step_ = std::strtoll(step->c_str(), &end, 10);
  if (step->empty() || *end != '\0' || errno != 0 || step_ < 0)
    fail(LCX_ERR_FORMAT, "%s: checkpoint step \"%s\" is not a non-negative integer", p, step->c_str());
  const lcx_config saved = config_from_json(parse_json(*config, path + " (config metadata)"), path);
  const std::string diff = config_difference(expected, saved);
  if (!diff.empty())
    fail(LCX_ERR_ARG, "%s: this checkpoint belongs to a different model: %s (this model vs the "
         "checkpoint)", p, diff.c_str());

  has_adam_ = file_.find("adam_m.wte") != nullptr;
  const char* groups[] = {"params", "adam_m", "adam_v"};
  for (int g = 0; g < (has_adam_ ? 3 : 1); g++) {
    for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
      const std::string name = std::string(groups[g]) + "." + kTensorNames[i];
      const TensorEntry* t = file_.find(name);
      if (!t) fail(LCX_ERR_FORMAT, "%s: checkpoint tensor '%s' is missing", p, name.c_str());
      const std::vector<int64_t> want = canonical_tensor_shape(expected, i);
      if (t->shape != want)
        fail(LCX_ERR_SHAPE, "%s: checkpoint tensor '%s' has shape %s, expected %s", p,
             name.c_str(), shape_to_string(t->shape).c_str(), shape_to_string(want).c_str());
      if (t->dtype != "F32")
        fail(LCX_ERR_DTYPE, "%s: checkpoint tensor '%s' has dtype %s, expected F32", p,
             name.c_str(), t->dtype.c_str());
    }
  }
}

void CheckpointReader::read_group(const char* group, float* out) {
  const lcx_param_layout lay = param_layout(cfg_);
  for (int i = 0; i < LCX_NUM_PARAM_TENSORS; i++) {
    const TensorEntry* t = file_.find(std::string(group) + "." + kTensorNames[i]);
    file_.read_f32(*t, out + lay.offset[i]);
  }
}

void CheckpointReader::read_params(float* out) { read_group("params", out); }

void CheckpointReader::read_optimizer_state(float* m, float* v) {
  if (!has_adam_) fail(LCX_ERR_INTERNAL, "checkpoint has no optimizer state");
  read_group("adam_m", m);
  read_group("adam_v", v);
}

}  // namespace lcx
