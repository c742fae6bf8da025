#include "safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "../core/error.hpp"
#include "json.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data are little-endian; this reader assumes a little-endian host"
#endif

namespace lcx {

namespace {

// The limit safetensors itself enforces; a larger value means a corrupt or foreign file.
constexpr uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;
// Raw bytes converted per read: big enough for sequential throughput, small next to a model.
constexpr size_t kChunkBytes = 8u << 20;

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

// ---- dtypes ---------------------------------------------------------------------------------

const char* stored_dtype_name(StoredDtype d) {
  switch (d) {
    case StoredDtype::F32: return "F32";
    case StoredDtype::F16: return "F16";
    case StoredDtype::BF16: return "BF16";
  }
  return "?";
}

size_t stored_dtype_size(StoredDtype d) { return d == StoredDtype::F32 ? 4 : 2; }

size_t safetensors_dtype_size(const std::string& d) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"F64", 8},  {"F32", 4},  {"F16", 2},     {"BF16", 2},    {"I64", 8},
      {"I32", 4},  {"I16", 2},  {"I8", 1},      {"U64", 8},     {"U32", 4},
      {"U16", 2},  {"U8", 1},   {"BOOL", 1},    {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"C64", 8},  {"F8_E8M0", 1}};
  for (const auto& s : kSizes)
    if (d == s.first) return s.second;
  return 0;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in fp32.
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7F800000u | (mant << 13));
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  uint32_t x = float_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u)  // Inf or NaN (NaN kept quiet, payload top bits kept)
    return (uint16_t)(sign | (ax > 0x7F800000u ? 0x7E00 | ((ax >> 13) & 0x3FF) : 0x7C00));
  if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);  // >= 65520 rounds to Inf
  if (ax < 0x38800000u) {
    // Below the smallest normal half (2^-14): the result is round(|f| * 2^24) units of 2^-24;
    // the scaling is exact and rint rounds half to even. 1024 units encode 2^-14, the first
    // normal, which is also the right bit pattern.
    float units = std::nearbyint(bits_float(ax) * 16777216.0f);
    return (uint16_t)(sign | (uint16_t)units);
  }
  uint32_t h = ((ax >> 23) - 112) << 10 | ((ax >> 13) & 0x3FF);
  uint32_t rest = ax & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;  // carry may bump the exponent: fine
  return (uint16_t)(sign | h);
}

float bf16_to_f32(uint16_t b) { return bits_float((uint32_t)b << 16); }

uint16_t f32_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN
  uint32_t rounding = 0x7FFF + ((x >> 16) & 1);
  return (uint16_t)((x + rounding) >> 16);
}

// ---- reading --------------------------------------------------------------------------------

uint64_t TensorEntry::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= (uint64_t)d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

static uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const char* p = path.c_str();
  const uint64_t size = file_.size();
  if (size < 8)
    fail(LCX_ERR_FORMAT, "%s: truncated: %llu bytes is too small for a safetensors file", p,
         (unsigned long long)size);
  unsigned char len_bytes[8];
  file_.read_at(0, len_bytes, 8);
  const uint64_t header_len = read_le64(len_bytes);
  if (header_len == 0 || header_len > kMaxHeaderBytes)
    fail(LCX_ERR_FORMAT,
         "%s: not a safetensors file: the header length field says %llu bytes (expected 1..%llu)",
         p, (unsigned long long)header_len, (unsigned long long)kMaxHeaderBytes);
  if (header_len > size - 8)
    fail(LCX_ERR_FORMAT, "%s: truncated: the header needs %llu bytes but the file has %llu", p,
         (unsigned long long)(8 + header_len), (unsigned long long)size);
  std::string header(header_len, '\0');
  file_.read_at(8, header.data(), header_len);
  if (header[0] != '{')
    fail(LCX_ERR_FORMAT, "%s: not a safetensors file: the header does not start with '{'", p);

  Json root = parse_json(header, path + " (safetensors header)");
  if (!root.is_object()) fail(LCX_ERR_FORMAT, "%s: the safetensors header is not a JSON object", p);

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (const auto& [name, info] : root.members()) {
    if (name == "__metadata__") {
      if (info.is_null()) continue;
      if (!info.is_object())
        fail(LCX_ERR_FORMAT, "%s: __metadata__ must be an object of strings", p);
      for (const auto& [k, v] : info.members()) {
        if (!v.is_string())
          fail(LCX_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is a %s, must be a string", p,
               k.c_str(), v.type_name());
        metadata_.emplace_back(k, v.as_string());
      }
      continue;
    }
    const char* tn = name.c_str();
    if (!info.is_object()) fail(LCX_ERR_FORMAT, "%s: tensor '%s': entry is not an object", p, tn);
    const Json* dtype = info.find("dtype");
    const Json* shape = info.find("shape");
    const Json* offsets = info.find("data_offsets");
    if (!dtype || !dtype->is_string())
      fail(LCX_ERR_FORMAT, "%s: tensor '%s': missing string \"dtype\"", p, tn);
    if (!shape || !shape->is_array())
      fail(LCX_ERR_FORMAT, "%s: tensor '%s': missing array \"shape\"", p, tn);
    if (!offsets || !offsets->is_array() || offsets->items().size() != 2)
      fail(LCX_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end]", p, tn);

    TensorEntry t;
    t.name = name;
    t.dtype = dtype->as_string();
    uint64_t numel = 1;
    for (const Json& d : shape->items()) {
      if (!d.is_integer() || d.as_int64() < 0)
        fail(LCX_ERR_FORMAT, "%s: tensor '%s': shape entries must be non-negative integers", p, tn);
      t.shape.push_back(d.as_int64());
      if (__builtin_mul_overflow(numel, (uint64_t)d.as_int64(), &numel))
        fail(LCX_ERR_FORMAT, "%s: tensor '%s': shape %s overflows", p, tn,
             shape_to_string(t.shape).c_str());
    }
    for (const Json& o : offsets->items())
      if (!o.is_integer() || o.as_int64() < 0)
        fail(LCX_ERR_FORMAT, "%s: tensor '%s': data_offsets must be non-negative integers", p, tn);
    const uint64_t b = (uint64_t)offsets->items()[0].as_int64();
    const uint64_t e = (uint64_t)offsets->items()[1].as_int64();
    if (b > e) fail(LCX_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] are reversed", p,
                    tn, (unsigned long long)b, (unsigned long long)e);
    if (e > data_size)
      fail(LCX_ERR_FORMAT,
           "%s: truncated: tensor '%s' needs bytes %llu..%llu of the data section but the file "
           "holds only %llu (an incomplete download or copy?)",
           p, tn, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
    const size_t elem = safetensors_dtype_size(t.dtype);
    uint64_t expected_bytes = 0;
    if (elem != 0 && (__builtin_mul_overflow(numel, (uint64_t)elem, &expected_bytes) ||
                      expected_bytes != e - b))
      fail(LCX_ERR_FORMAT, "%s: tensor '%s': data_offsets span %llu bytes but %s x %s needs %llu",
           p, tn, (unsigned long long)(e - b), shape_to_string(t.shape).c_str(), t.dtype.c_str(),
           (unsigned long long)(numel * elem));
    t.begin = data_start + b;
    t.end = data_start + e;
    tensors_.push_back(std::move(t));
  }

  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); i++) {
    const TensorEntry* a = by_offset[i - 1];
    const TensorEntry* b = by_offset[i];
    if (a->end > b->begin && b->end > b->begin && a->end > a->begin)
      fail(LCX_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section", p,
           a->name.c_str(), b->name.c_str());
  }
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const std::string* SafetensorsFile::metadata_value(const std::string& key) const {
  for (const auto& kv : metadata_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void SafetensorsFile::read_f32(const TensorEntry& t, float* out) {
  const uint64_t n = t.numel();
  if (t.dtype == "F32") {
    // Straight into the destination: no staging copy.
    for (uint64_t done = 0; done < n;) {
      uint64_t k = std::min<uint64_t>(n - done, kChunkBytes / 4);
      file_.read_at(t.begin + done * 4, out + done, (size_t)(k * 4));
      done += k;
    }
    return;
  }
  const bool is_f16 = t.dtype == "F16";
  if (!is_f16 && t.dtype != "BF16")
    fail(LCX_ERR_DTYPE, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be loaded",
         path().c_str(), t.name.c_str(), t.dtype.c_str());
  std::vector<uint16_t> raw((size_t)std::min<uint64_t>(n, kChunkBytes / 2));
  for (uint64_t done = 0; done < n;) {
    size_t k = (size_t)std::min<uint64_t>(n - done, raw.size());
    file_.read_at(t.begin + done * 2, raw.data(), k * 2);
    float* dst = out + done;
    if (is_f16)
      for (size_t i = 0; i < k; i++) dst[i] = f16_to_f32(raw[i]);
    else
      for (size_t i = 0; i < k; i++) dst[i] = bf16_to_f32(raw[i]);
    done += k;
  }
}

// ---- a model folder ---------------------------------------------------------------------------

SafetensorsModel SafetensorsModel::open_dir(const std::string& dir) {
  SafetensorsModel m;
  const std::string single = join_path(dir, "model.safetensors");
  const std::string index_path = join_path(dir, "model.safetensors.index.json");
  if (file_exists(single)) {
    m.files_.emplace_back(single);
    m.description_ = "model.safetensors";
  } else if (file_exists(index_path)) {
    Json index = parse_json(read_text_file(index_path), index_path);
    const Json* weight_map = index.is_object() ? index.find("weight_map") : nullptr;
    if (!weight_map || !weight_map->is_object())
      fail(LCX_ERR_FORMAT, "%s: missing the \"weight_map\" object", index_path.c_str());
    std::vector<std::string> shard_names;
    for (const auto& [tensor, file] : weight_map->members()) {
      if (!file.is_string())
        fail(LCX_ERR_FORMAT, "%s: weight_map[\"%s\"] must be a file name", index_path.c_str(),
             tensor.c_str());
      const std::string& f = file.as_string();
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos)
        fail(LCX_ERR_FORMAT, "%s: weight_map[\"%s\"] = \"%s\" is not a file name in the folder",
             index_path.c_str(), tensor.c_str(), f.c_str());
      if (std::find(shard_names.begin(), shard_names.end(), f) == shard_names.end())
        shard_names.push_back(f);
    }
    for (const auto& f : shard_names) {
      const std::string shard_path = join_path(dir, f);
      if (!file_exists(shard_path))
        fail(LCX_ERR_IO, "%s: missing shard (listed in model.safetensors.index.json)",
             shard_path.c_str());
      m.files_.emplace_back(shard_path);
    }
    for (const auto& [tensor, file] : weight_map->members()) {
      size_t fi = (size_t)(std::find(shard_names.begin(), shard_names.end(), file.as_string()) -
                           shard_names.begin());
      if (!m.files_[fi].find(tensor))
        fail(LCX_ERR_FORMAT, "%s: the index says tensor '%s' is in %s, but that file has no such "
             "tensor", index_path.c_str(), tensor.c_str(), file.as_string().c_str());
    }
    m.description_ = "model.safetensors.index.json (" + std::to_string(shard_names.size()) +
                     (shard_names.size() == 1 ? " shard)" : " shards)");
  } else {
    const bool has_bin = file_exists(join_path(dir, "pytorch_model.bin")) ||
                         file_exists(join_path(dir, "pytorch_model.bin.index.json"));
    if (has_bin)
      fail(LCX_ERR_UNSUPPORTED,
           "%s: only PyTorch .bin weights found; convert them to safetensors first (in Python: "
           "model = AutoModelForCausalLM.from_pretrained(dir); model.save_pretrained(dir, "
           "safe_serialization=True))",
           single.c_str());
    fail(LCX_ERR_IO, "%s: no such file (and no model.safetensors.index.json beside it)",
         single.c_str());
  }

  for (size_t fi = 0; fi < m.files_.size(); fi++) {
    for (size_t ti = 0; ti < m.files_[fi].tensors().size(); ti++) {
      const std::string& name = m.files_[fi].tensors()[ti].name;
      m.names_.push_back(name);
      m.index_.push_back({name, {fi, ti}});
    }
  }
  std::sort(m.index_.begin(), m.index_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < m.index_.size(); i++)
    if (m.index_[i].first == m.index_[i - 1].first)
      fail(LCX_ERR_FORMAT, "%s: tensor '%s' is stored in two shards (%s and %s)", dir.c_str(),
           m.index_[i].first.c_str(), m.files_[m.index_[i - 1].second.first].path().c_str(),
           m.files_[m.index_[i].second.first].path().c_str());
  return m;
}

SafetensorsModel::Located SafetensorsModel::find(const std::string& name) {
  auto it = std::lower_bound(index_.begin(), index_.end(), name,
                             [](const auto& e, const std::string& n) { return e.first < n; });
  if (it == index_.end() || it->first != name) return {nullptr, nullptr};
  SafetensorsFile& f = files_[it->second.first];
  return {&f, &f.tensors()[it->second.second]};
}

uint64_t SafetensorsModel::bytes_on_disk() const {
  uint64_t total = 0;
  for (const auto& f : files_) total += f.file_size();
  return total;
}

// ---- writing --------------------------------------------------------------------------------

static uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= (uint64_t)d;
  return n;
}

static void write_converted(AtomicFileWriter& w, const float* src, uint64_t n, StoredDtype dtype) {
  if (dtype == StoredDtype::F32) {
    w.write(src, (size_t)(n * 4));
    return;
  }
  std::vector<uint16_t> buf((size_t)std::min<uint64_t>(n, kChunkBytes / 2));
  for (uint64_t done = 0; done < n;) {
    size_t k = (size_t)std::min<uint64_t>(n - done, buf.size());
    if (dtype == StoredDtype::F16)
      for (size_t i = 0; i < k; i++) buf[i] = f32_to_f16(src[done + i]);
    else
      for (size_t i = 0; i < k; i++) buf[i] = f32_to_bf16(src[done + i]);
    w.write(buf.data(), k * 2);
    done += k;
  }
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       StoredDtype dtype,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  const size_t elem = stored_dtype_size(dtype);
  Json header = Json::object();
  Json meta = Json::object();
  bool has_format = false;
  for (const auto& kv : metadata) has_format |= kv.first == "format";
  if (!has_format) meta.set("format", Json::string("pt"));
  for (const auto& kv : metadata) meta.set(kv.first, Json::string(kv.second));
  header.set("__metadata__", std::move(meta));

  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || !seen.insert(t.name).second)
      fail(LCX_ERR_INTERNAL, "%s: tensor name '%s' used twice or reserved", path.c_str(),
           t.name.c_str());
    if (!t.data && !t.fill)
      fail(LCX_ERR_INTERNAL, "%s: tensor '%s' has no data", path.c_str(), t.name.c_str());
    const uint64_t bytes = numel_of(t.shape) * elem;
    Json info = Json::object();
    info.set("dtype", Json::string(stored_dtype_name(dtype)));
    Json shape = Json::array();
    for (int64_t d : t.shape) shape.push_back(Json::integer(d));
    info.set("shape", std::move(shape));
    Json offs = Json::array();
    offs.push_back(Json::integer((int64_t)offset));
    offs.push_back(Json::integer((int64_t)(offset + bytes)));
    info.set("data_offsets", std::move(offs));
    header.set(t.name, std::move(info));
    offset += bytes;
  }
  std::string text = write_json(header);
  // Pad so the data section starts 8-byte aligned (readers may map it and cast in place).
  while ((8 + text.size()) % 8 != 0) text += ' ';

  AtomicFileWriter w(path);
  unsigned char len_bytes[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)(n >> (8 * i));
  w.write(len_bytes, 8);
  w.write(text.data(), text.size());
  std::vector<float> staging;
  for (const auto& t : tensors) {
    const uint64_t numel = numel_of(t.shape);
    if (t.data) {
      write_converted(w, t.data, numel, dtype);
    } else {
      staging.resize((size_t)numel);
      t.fill(staging.data());
      write_converted(w, staging.data(), numel, dtype);
    }
  }
  w.commit();
}

static std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

// Weight files a previous save left in dir: model.safetensors and/or index + its shards.
static std::vector<std::string> previous_weight_files(const std::string& dir) {
  std::vector<std::string> out;
  if (file_exists(join_path(dir, "model.safetensors"))) out.push_back("model.safetensors");
  const std::string index_path = join_path(dir, "model.safetensors.index.json");
  if (!file_exists(index_path)) return out;
  out.push_back("model.safetensors.index.json");
  try {
    Json index = parse_json(read_text_file(index_path), index_path);
    if (const Json* wm = index.is_object() ? index.find("weight_map") : nullptr) {
      for (const auto& kv : wm->members()) {
        if (!kv.second.is_string()) continue;
        const std::string& f = kv.second.as_string();
        // Only names our writer or transformers produce; never anything outside the folder.
        const bool shard_like = f.rfind("model-", 0) == 0 && f.find("-of-") != std::string::npos &&
                                f.size() > 12 && f.find('/') == std::string::npos &&
                                f.find('\\') == std::string::npos &&
                                f.compare(f.size() - 12, 12, ".safetensors") == 0;
        if (shard_like && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
      }
    }
  } catch (const Error&) {
    // A broken old index only means we cannot find its shards; it is replaced below anyway.
  }
  return out;
}

std::vector<std::string> write_safetensors_model(const std::string& dir,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 StoredDtype dtype, int64_t max_shard_bytes) {
  ensure_directory(dir);
  const std::vector<std::string> previous = previous_weight_files(dir);
  const size_t elem = stored_dtype_size(dtype);
  uint64_t total = 0;
  for (const auto& t : tensors) total += numel_of(t.shape) * elem;

  std::vector<std::string> written;
  if (max_shard_bytes <= 0 || total <= (uint64_t)max_shard_bytes) {
    write_safetensors(join_path(dir, "model.safetensors"), tensors, dtype);
    written.push_back("model.safetensors");
  } else {
    // Greedy in tensor order, like transformers; a tensor bigger than the limit gets a shard
    // of its own.
    std::vector<std::vector<const TensorToWrite*>> shards(1);
    uint64_t shard_bytes = 0;
    for (const auto& t : tensors) {
      const uint64_t b = numel_of(t.shape) * elem;
      if (!shards.back().empty() && shard_bytes + b > (uint64_t)max_shard_bytes) {
        shards.emplace_back();
        shard_bytes = 0;
      }
      shards.back().push_back(&t);
      shard_bytes += b;
    }
    Json weight_map = Json::object();
    for (size_t i = 0; i < shards.size(); i++) {
      const std::string name = shard_name(i, shards.size());
      std::vector<TensorToWrite> part;
      for (const TensorToWrite* t : shards[i]) {
        part.push_back(*t);
        weight_map.set(t->name, Json::string(name));
      }
      write_safetensors(join_path(dir, name), part, dtype);
      written.push_back(name);
    }
    Json meta = Json::object();
    meta.set("total_size", Json::integer((int64_t)total));
    Json index = Json::object();
    index.set("metadata", std::move(meta));
    index.set("weight_map", std::move(weight_map));
    // The index goes last: its presence means every shard it names is complete.
    write_text_file_atomic(join_path(dir, "model.safetensors.index.json"),
                           write_json(index, 2) + "\n");
    written.push_back("model.safetensors.index.json");
  }
  for (const auto& old : previous)
    if (std::find(written.begin(), written.end(), old) == written.end())
      remove_file_if_exists(join_path(dir, old));
  return written;
}

}  // namespace lcx
