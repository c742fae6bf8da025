// Tests of the io layer and the host-side parameter operations, without any backend arithmetic:
// JSON, safetensors (conversions, round trips, shards, every malformed file), HF model folders
// of both architectures (save -> load bit-exact, config.json kept, every error a user can hit),
// checkpoints, position extension and initialisation.
#include <sys/types.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/host_params.hpp"
#include "io/checkpoint.hpp"
#include "io/files.hpp"
#include "io/hf_model.hpp"
#include "io/json.hpp"
#include "io/safetensors.hpp"
#include "testing.hpp"

namespace fs = std::filesystem;
using namespace lcx;

namespace {

std::string g_root;  // per-run scratch folder

std::string scratch(const std::string& name) {
  const std::string p = join_path(g_root, name);
  fs::remove_all(p);
  return p;
}

// Runs fn, expects an lcx::Error with `status` whose message contains every piece.
void expect_error(lcx_status status, std::vector<std::string> pieces, const std::function<void()>& fn,
                  int line) {
  std::string msg;
  lcx_status got = LCX_OK;
  try {
    fn();
  } catch (const Error& e) {
    got = e.status();
    msg = e.what();
  }
  bool ok = got == status;
  for (const auto& p : pieces) ok = ok && msg.find(p) != std::string::npos;
  if (!ok) {
    std::string want;
    for (const auto& p : pieces) want += " \"" + p + "\"";
    testing::fail_check(__FILE__, line, "expected status " + std::to_string((int)status) +
                                            " with" + want + "; got status " +
                                            std::to_string((int)got) + ": " + msg);
  }
}
#define EXPECT_ERROR(status, pieces, body) expect_error(status, pieces, [&] { body; }, __LINE__)

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), (std::streamsize)bytes.size());
}

std::string read_file(const std::string& path) { return read_text_file(path); }

// A safetensors file with exactly this header text and data section.
void write_raw_safetensors(const std::string& path, const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; i++) bytes[(size_t)i] = (char)(n >> (8 * i));
  write_file(path, bytes + header + data);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

lcx_config tiny_gpt2() {
  lcx_config c{};
  c.arch = LCX_ARCH_GPT2;
  c.vocab_size = 37;
  c.n_positions = 16;
  c.n_embd = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_inner = 32;
  c.layer_norm_eps = 1e-5f;
  c.sparse = {16, 8, 1, 1, 8, 1, 0};
  return c;
}

lcx_config tiny_rugpt() {
  lcx_config c{};
  c.arch = LCX_ARCH_RUGPT3XL;
  c.vocab_size = 40;
  c.n_positions = 64;
  c.n_embd = 8;
  c.n_layer = 3;
  c.n_head = 2;
  c.n_inner = 24;
  c.layer_norm_eps = 1e-5f;
  c.sparse = {4, 4, 1, 1, 2, 1, 0};
  for (int l = 0; l < c.n_layer; l++) c.attn_kind[l] = l % 2 == 0 ? LCX_ATTN_SPARSE : LCX_ATTN_DENSE;
  return c;
}

std::vector<float> init_params(const lcx_config& c, uint64_t seed) {
  std::vector<float> p(param_layout(c).total);
  init_gpt2_params(c, seed, p.data());
  return p;
}

bool same_model_config(const lcx_config& a, const lcx_config& b) {
  return config_difference(a, b).empty();
}

// ---- JSON -----------------------------------------------------------------------------------

TEST(json_values) {
  Json j = parse_json(R"( {"a": [1, -2, 3.5, 1e-05, 12345678901234, 0],
                           "b": {"c": null, "d": true, "e": false}, "s": "x\"\\\/\b\f\n\r\t"} )",
                      "t.json");
  CHECK(j.is_object());
  const Json* a = j.find("a");
  CHECK(a && a->is_array() && a->items().size() == 6);
  CHECK(a->items()[0].is_integer() && a->items()[0].as_int64() == 1);
  CHECK(a->items()[1].as_int64() == -2);
  CHECK(!a->items()[2].is_integer() && a->items()[2].as_double() == 3.5);
  CHECK(a->items()[3].as_double() == 1e-05);
  CHECK(a->items()[4].as_int64() == 12345678901234LL);
  CHECK(j.find("b")->find("c")->is_null());
  CHECK(j.find("b")->find("d")->as_bool() && !j.find("b")->find("e")->as_bool());
  CHECK(j.find("s")->as_string() == "x\"\\/\b\f\n\r\t");
  CHECK(!j.find("missing"));

  // \u escapes become UTF-8, surrogate pairs one 4-byte character; raw UTF-8 passes through.
  CHECK(parse_json(R"("\u00e9\u20AC")", "t").as_string() == "\xC3\xA9\xE2\x82\xAC");
  CHECK(parse_json(R"("\ud83d\ude00")", "t").as_string() == "\xF0\x9F\x98\x80");
  CHECK(parse_json("\"\xD0\x9C\xD0\xBE\"", "t").as_string() == "\xD0\x9C\xD0\xBE");
  CHECK(parse_json(R"("\u0000")", "t").as_string() == std::string(1, '\0'));

  // Integers beyond int64 become doubles; integral doubles count as integers.
  Json big = parse_json("18446744073709551616", "t");
  CHECK(big.is_number() && !big.is_integer() && big.as_double() == 18446744073709551616.0);
  CHECK(parse_json("768.0", "t").is_integer() && parse_json("768.0", "t").as_int64() == 768);
  CHECK(!parse_json("0.5", "t").is_integer());

  // Python's json writes these; configs come from Python.
  CHECK(std::isnan(parse_json("NaN", "t").as_double()));
  CHECK(parse_json("[Infinity, -Infinity]", "t").items()[1].as_double() == -HUGE_VAL);

  // Nesting within the limit is fine.
  std::string deep = std::string(200, '[') + std::string(200, ']');
  CHECK(parse_json(deep, "t").is_array());
}

TEST(json_errors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "expected a value"},
      {"[1,]", "expected a value"},
      {"{\"a\":1,}", "expected a string key"},
      {"01", "leading zeros"},
      {"1.", "digit after '.'"},
      {".5", "expected a value"},
      {"+1", "expected a value"},
      {"1e", "exponent"},
      {"\"abc", "unterminated string"},
      {"\"\\ud800\"", "high surrogate"},
      {"\"\\ud800\\u0041\"", "high surrogate"},
      {"\"\\udc00\"", "low surrogate"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\u12G4\"", "hex digits"},
      {"\"a\tb\"", "control character"},
      {"\"\xFF\"", "invalid UTF-8"},
      {"\"\xC0\xAF\"", "invalid UTF-8"},          // overlong
      {"\"\xED\xA0\x80\"", "invalid UTF-8"},      // encoded surrogate
      {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
      {"{} x", "unexpected text"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"tru", "expected a value"},
      {"1e999", "out of the range"},
      {std::string(300, '['), "nesting deeper"},
  };
  for (const auto& [text, piece] : bad)
    EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"src.json: invalid JSON", piece}),
                 parse_json(text, "src.json"));
  // Position: line and column of the problem.
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"config.json", "line 3, column 8"}),
               parse_json("{\n  \"a\": 1,\n  \"b\": tru\n}", "config.json"));
}

TEST(json_writer) {
  const std::string text = R"({"b":1e-05,"a":[1,2.50,{"x":null}],"s":"q\"\n\u0001é","t":true})";
  // Key order and number spelling survive a round trip; strings are re-escaped minimally.
  CHECK(write_json(parse_json(text, "t")) ==
        "{\"b\":1e-05,\"a\":[1,2.50,{\"x\":null}],\"s\":\"q\\\"\\n\\u0001\xC3\xA9\",\"t\":true}");
  Json o = Json::object();
  o.set("n", Json::integer(-7));
  o.set("f", Json::number(0.02));
  o.set("e", Json::array());
  o.set("n", Json::integer(8));  // replaces in place
  CHECK(write_json(o) == "{\"n\":8,\"f\":0.02,\"e\":[]}");
  CHECK(write_json(o, 2) == "{\n  \"n\": 8,\n  \"f\": 0.02,\n  \"e\": []\n}");
  CHECK(o.erase("f") && !o.erase("f") && write_json(o) == "{\"n\":8,\"e\":[]}");
  CHECK(format_float(1e-5f) == "1e-05");
  CHECK(format_double(0.1) == "0.1");
  CHECK(format_double(768.0) == "768");
  // Pretty output parses back to the same compact text.
  Json again = parse_json(write_json(parse_json(text, "t"), 4), "t");
  CHECK(write_json(again) == write_json(parse_json(text, "t")));
}

// ---- half-precision conversions ---------------------------------------------------------------

TEST(half_conversions) {
  CHECK(f32_to_f16(1.0f) == 0x3C00);
  CHECK(f32_to_f16(-2.0f) == 0xC000);
  CHECK(f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(f32_to_f16(65519.0f) == 0x7BFF);
  CHECK(f32_to_f16(65520.0f) == 0x7C00);  // the tie rounds to even: Inf
  CHECK(f32_to_f16(INFINITY) == 0x7C00 && f32_to_f16(-INFINITY) == 0xFC00);
  CHECK((f32_to_f16(NAN) & 0x7C00) == 0x7C00 && (f32_to_f16(NAN) & 0x3FF) != 0);
  CHECK(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);        // smallest subnormal
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);        // tie to even: zero
  CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);        // 1.5 units: to even 2
  CHECK(f32_to_f16(std::ldexp(1023.5f, -24)) == 0x0400);     // rounds up into the normals
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie, even stays
  CHECK(f32_to_f16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);  // tie, odd rounds up
  CHECK(f16_to_f32(0x3555) == 0.333251953125f);
  CHECK(f16_to_f32(0x8001) == -std::ldexp(1.0f, -24));
  CHECK(std::isinf(f16_to_f32(0x7C00)) && std::isnan(f16_to_f32(0x7E00)));

  CHECK(f32_to_bf16(1.0f) == 0x3F80);
  CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);       // tie, even
  CHECK(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3F82);       // tie, odd rounds up
  CHECK(f32_to_bf16(3.4e38f) == 0x7F80);                            // overflow: Inf
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  CHECK(bf16_to_f32(0xC040) == -3.0f);

  // Every finite half and bfloat16 survives a round trip through fp32.
  int half_bad = 0, bf16_bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    const float f = f16_to_f32((uint16_t)h);
    if (!std::isnan(f) && f32_to_f16(f) != h) half_bad++;
    const float b = bf16_to_f32((uint16_t)h);
    if (!std::isnan(b) && f32_to_bf16(b) != h) bf16_bad++;
  }
  CHECK(half_bad == 0);
  CHECK(bf16_bad == 0);
}

// ---- safetensors ------------------------------------------------------------------------------

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++) v[i] = scale * (float)((int)(i * 7919 % 1013) - 506) / 97.0f;
  return v;
}

TEST(safetensors_round_trip) {
  const std::string dir = scratch("st_round_trip");
  ensure_directory(dir);
  const std::vector<float> a = ramp(6 * 5, 1.0f), b = ramp(7, 3e-3f), scalar = {42.5f};
  const StoredDtype dtypes[] = {StoredDtype::F32, StoredDtype::F16, StoredDtype::BF16};
  for (StoredDtype dt : dtypes) {
    const std::string path = join_path(dir, std::string("t_") + stored_dtype_name(dt) + ".safetensors");
    std::vector<TensorToWrite> ts(4);
    ts[0].name = "a";
    ts[0].shape = {6, 5};
    ts[0].data = a.data();
    ts[1].name = "b.filled";
    ts[1].shape = {7};
    ts[1].fill = [&](float* out) { std::copy(b.begin(), b.end(), out); };
    ts[2].name = "scalar";
    ts[2].shape = {};
    ts[2].data = scalar.data();
    ts[3].name = "empty";
    ts[3].shape = {0, 4};
    ts[3].data = scalar.data();
    write_safetensors(path, ts, dt, {{"step", "12"}});

    // 8-byte aligned data, metadata in place.
    const std::string bytes = read_file(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)bytes[(size_t)i];
    CHECK((8 + n) % 8 == 0);
    SafetensorsFile f(path);
    CHECK(f.metadata_value("format") && *f.metadata_value("format") == "pt");
    CHECK(f.metadata_value("step") && *f.metadata_value("step") == "12");
    CHECK(f.tensors().size() == 4);
    CHECK(f.find("a") && f.find("a")->dtype == stored_dtype_name(dt));
    CHECK(f.find("scalar")->shape.empty() && f.find("scalar")->numel() == 1);

    auto expect = [&](const std::vector<float>& src) {
      std::vector<float> out(src.size());
      for (size_t i = 0; i < src.size(); i++)
        out[i] = dt == StoredDtype::F32   ? src[i]
                 : dt == StoredDtype::F16 ? f16_to_f32(f32_to_f16(src[i]))
                                          : bf16_to_f32(f32_to_bf16(src[i]));
      return out;
    };
    std::vector<float> ra(a.size()), rb(b.size()), rs(1);
    f.read_f32(*f.find("a"), ra.data());
    f.read_f32(*f.find("b.filled"), rb.data());
    f.read_f32(*f.find("scalar"), rs.data());
    CHECK(same_bits(ra, expect(a)));
    CHECK(same_bits(rb, expect(b)));
    CHECK(rs[0] == 42.5f);
  }
  // No temp files left behind by the atomic writer.
  int temps = 0;
  for (const auto& e : fs::directory_iterator(dir))
    temps += e.path().filename().string().find(".tmp-") != std::string::npos;
  CHECK(temps == 0);
}

TEST(safetensors_shards) {
  const std::string dir = scratch("st_shards");
  std::vector<std::vector<float>> data;
  std::vector<TensorToWrite> ts;
  for (int i = 0; i < 5; i++) data.push_back(ramp(100 + (size_t)i, 1.0f + (float)i));
  for (int i = 0; i < 5; i++) {
    TensorToWrite t;
    t.name = "t" + std::to_string(i);
    t.shape = {(int64_t)data[(size_t)i].size()};
    t.data = data[(size_t)i].data();
    ts.push_back(t);
  }
  // 100..104 floats = 400..416 bytes each: a 900-byte limit gives shards of 2, 2, 1.
  auto written = write_safetensors_model(dir, ts, StoredDtype::F32, 900);
  CHECK(written.size() == 4);
  CHECK(file_exists(join_path(dir, "model-00001-of-00003.safetensors")));
  CHECK(file_exists(join_path(dir, "model-00003-of-00003.safetensors")));
  CHECK(!file_exists(join_path(dir, "model.safetensors")));
  Json index = parse_json(read_file(join_path(dir, "model.safetensors.index.json")), "index");
  CHECK(index.find("metadata")->find("total_size")->as_int64() == (100 + 101 + 102 + 103 + 104) * 4);
  CHECK(index.find("weight_map")->find("t4")->as_string() == "model-00003-of-00003.safetensors");

  SafetensorsModel m = SafetensorsModel::open_dir(dir);
  CHECK(m.files().size() == 3);
  CHECK(m.tensor_names().size() == 5);
  bool all_equal = true;
  for (int i = 0; i < 5; i++) {
    auto at = m.find("t" + std::to_string(i));
    std::vector<float> out(data[(size_t)i].size());
    at.file->read_f32(*at.entry, out.data());
    all_equal &= same_bits(out, data[(size_t)i]);
  }
  CHECK(all_equal);
  CHECK(!m.find("nope").entry);

  // A tensor larger than the limit gets a shard of its own.
  auto one_each = write_safetensors_model(dir, ts, StoredDtype::F32, 10);
  CHECK(one_each.size() == 6);
  CHECK(!file_exists(join_path(dir, "model-00001-of-00003.safetensors")));  // stale shards gone
  // Saving as one file removes the index and all shards.
  write_safetensors_model(dir, ts, StoredDtype::F32, 0);
  CHECK(file_exists(join_path(dir, "model.safetensors")));
  CHECK(!file_exists(join_path(dir, "model.safetensors.index.json")));
  CHECK(!file_exists(join_path(dir, "model-00001-of-00005.safetensors")));
}

TEST(safetensors_malformed) {
  const std::string dir = scratch("st_bad");
  ensure_directory(dir);
  const std::string p = join_path(dir, "bad.safetensors");
  const std::string good_header = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

  write_file(p, "abc");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "truncated"}), SafetensorsFile f(p));
  write_file(p, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "header length"}), SafetensorsFile f(p));
  write_file(p, std::string("\x00\x01\x00\x00\x00\x00\x00\x00", 8) + "{}");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "truncated", "header"}), SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})", std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "safetensors header", "invalid JSON"}),
               SafetensorsFile f(p));
  write_raw_safetensors(p, "[1]", "");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "does not start with '{'"}), SafetensorsFile f(p));
  // Data cut short: the message names the file and the first tensor that does not fit.
  write_raw_safetensors(p, good_header, std::string(10, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "truncated", "'w'"}), SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "'w'", "span 16 bytes", "needs 24"}),
               SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "reversed"}), SafetensorsFile f(p));
  write_raw_safetensors(p,
                        R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                        std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "'a'", "'b'", "overlap"}), SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "non-negative"}), SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "data_offsets"}), SafetensorsFile f(p));
  write_raw_safetensors(p, R"({"__metadata__":{"n":1},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                        std::string(4, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "__metadata__", "string"}), SafetensorsFile f(p));

  // Dtypes: I64 has a known size (header valid) but cannot be read as floats.
  write_raw_safetensors(p, R"({"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", std::string(16, '\0'));
  {
    SafetensorsFile f(p);
    std::vector<float> out(2);
    EXPECT_ERROR(LCX_ERR_DTYPE, (std::vector<std::string>{p, "'ids'", "I64"}), f.read_f32(*f.find("ids"), out.data()));
  }

  // A file that shrinks after its header was read.
  write_raw_safetensors(p, good_header, std::string(16, '\0'));
  {
    SafetensorsFile f(p);
    fs::resize_file(p, fs::file_size(p) - 4);
    std::vector<float> out(4);
    EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{p, "truncated"}), f.read_f32(*f.find("w"), out.data()));
  }

  // Shard sets: a missing shard, a tensor the index misplaces.
  const std::string sd = scratch("st_bad_shards");
  ensure_directory(sd);
  write_file(join_path(sd, "model.safetensors.index.json"),
             R"({"metadata":{},"weight_map":{"w":"model-00001-of-00002.safetensors","v":"model-00002-of-00002.safetensors"}})");
  write_raw_safetensors(join_path(sd, "model-00001-of-00002.safetensors"), good_header, std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_IO, (std::vector<std::string>{"model-00002-of-00002.safetensors", "missing shard"}),
               SafetensorsModel::open_dir(sd));
  write_raw_safetensors(join_path(sd, "model-00002-of-00002.safetensors"), good_header, std::string(16, '\0'));
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"'v'", "no such tensor"}), SafetensorsModel::open_dir(sd));
  write_file(join_path(sd, "model.safetensors.index.json"), R"({"weight_map":{"w":"../x.safetensors"}})");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"not a file name"}), SafetensorsModel::open_dir(sd));
  write_file(join_path(sd, "model.safetensors.index.json"), R"({"weight_map":{"w":"model-00001-of-00002.safetensors","v":"model-00002-of-00002.safetensors"},})");
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"model.safetensors.index.json", "invalid JSON"}),
               SafetensorsModel::open_dir(sd));
  const std::string empty = scratch("st_no_weights");
  ensure_directory(empty);
  EXPECT_ERROR(LCX_ERR_IO, (std::vector<std::string>{join_path(empty, "model.safetensors"), "no such file"}),
               SafetensorsModel::open_dir(empty));
  write_file(join_path(empty, "pytorch_model.bin"), "x");
  EXPECT_ERROR(LCX_ERR_UNSUPPORTED, (std::vector<std::string>{".bin", "safetensors"}), SafetensorsModel::open_dir(empty));
}

// ---- HF model folders ----------------------------------------------------------------------

TEST(gpt2_save_load) {
  const lcx_config c = tiny_gpt2();
  const std::vector<float> params = init_params(c, 1234);
  const std::string dir = scratch("gpt2");
  save_hf_model(dir, c, "", "", params.data(), 0);

  LoadedHfModel m = load_hf_model(dir);
  CHECK(same_bits(m.params, params));
  CHECK(same_model_config(m.cfg, c));
  CHECK(m.architecture == "GPT2LMHeadModel");

  // The file holds the HF layout: Conv1D weights [in, out], tied head not stored.
  SafetensorsFile f(join_path(dir, "model.safetensors"));
  const TensorEntry* attn = f.find("transformer.h.1.attn.c_attn.weight");
  CHECK(attn && attn->shape == std::vector<int64_t>({8, 24}));
  CHECK(f.find("transformer.h.0.mlp.c_fc.weight")->shape == std::vector<int64_t>({8, 32}));
  CHECK(f.find("transformer.h.0.mlp.c_proj.weight")->shape == std::vector<int64_t>({32, 8}));
  CHECK(!f.find("lm_head.weight"));
  std::vector<float> conv(8 * 24);
  f.read_f32(*attn, conv.data());
  const lcx_param_layout lay = param_layout(c);
  const float* qkvw1 = params.data() + lay.offset[4] + 24 * 8;  // layer 1, (3C, C)
  bool transposed = true;
  for (int i = 0; i < 8; i++)
    for (int o = 0; o < 24; o++) transposed &= conv[(size_t)(i * 24 + o)] == qkvw1[o * 8 + i];
  CHECK(transposed);

  Json cfg = parse_json(read_file(join_path(dir, "config.json")), "config.json");
  CHECK(cfg.find("architectures")->items()[0].as_string() == "GPT2LMHeadModel");
  CHECK(cfg.find("model_type")->as_string() == "gpt2");
  CHECK(cfg.find("n_positions")->as_int64() == 16 && cfg.find("n_embd")->as_int64() == 8);
  CHECK(cfg.find("n_inner")->as_int64() == 32);
  CHECK(cfg.find("layer_norm_epsilon")->number_text() == "1e-05");
  CHECK(cfg.find("torch_dtype")->as_string() == "float32");
  CHECK(!cfg.find("longctx_attention") && !cfg.find("longctx_sparse"));

  lcx_model_info info = inspect_hf_model(dir);
  CHECK(info.parameters == (int64_t)lay.total);
  CHECK(info.num_files == 1);
  CHECK(info.bytes_on_disk == (int64_t)file_size(join_path(dir, "model.safetensors")));
  CHECK(std::string(info.dtype) == "F32");
  CHECK(std::string(info.architecture) == "GPT2LMHeadModel");
  CHECK(info.config.n_layer == 2 && info.config.n_positions == 16);
}

TEST(rugpt3xl_save_load) {
  const lcx_config c = tiny_rugpt();
  const std::vector<float> params = init_params(c, 77);
  const std::string dir = scratch("rugpt");
  save_hf_model(dir, c, "", "", params.data(), 0);
  LoadedHfModel m = load_hf_model(dir);
  CHECK(same_bits(m.params, params));
  CHECK(same_model_config(m.cfg, c));
  CHECK(m.cfg.attn_kind[0] == LCX_ATTN_SPARSE && m.cfg.attn_kind[1] == LCX_ATTN_DENSE &&
        m.cfg.attn_kind[2] == LCX_ATTN_SPARSE);
  CHECK(m.cfg.sparse.block == 4 && m.cfg.sparse.num_different_global_patterns == 2);
  CHECK(m.cfg.sparse.different_layout_per_head == 1 && m.cfg.sparse.unidirectional == 1);

  SafetensorsFile f(join_path(dir, "model.safetensors"));
  CHECK(f.find("model.layers.2.self_attn.v_proj.weight")->shape == std::vector<int64_t>({8, 8}));
  CHECK(f.find("model.layers.0.mlp.up_proj.weight")->shape == std::vector<int64_t>({24, 8}));
  CHECK(f.find("model.embed_positions.weight")->shape == std::vector<int64_t>({64, 8}));
  // k_proj is rows C..2C of the fused canonical block.
  std::vector<float> k(64);
  f.read_f32(*f.find("model.layers.1.self_attn.k_proj.weight"), k.data());
  const lcx_param_layout lay = param_layout(c);
  CHECK(std::memcmp(k.data(), params.data() + lay.offset[4] + (1 * 3 + 1) * 64, 64 * 4) == 0);
  // The port does not tie: lm_head.weight is a stored copy of the embedding.
  std::vector<float> head(40 * 8);
  f.read_f32(*f.find("lm_head.weight"), head.data());
  CHECK(std::memcmp(head.data(), params.data(), head.size() * 4) == 0);

  Json cfg = parse_json(read_file(join_path(dir, "config.json")), "config.json");
  CHECK(cfg.find("architectures")->items()[0].as_string() == "RuGPT3XLForCausalLM");
  CHECK(cfg.find("sparse_mode")->as_string() == "alternating");
  CHECK(cfg.find("sparse_block_size")->as_int64() == 4);
  CHECK(cfg.find("max_position_embeddings")->as_int64() == 64);
  CHECK(cfg.find("hidden_size")->as_int64() == 8 && cfg.find("intermediate_size")->as_int64() == 24);
  CHECK(cfg.find("tie_word_embeddings") && !cfg.find("tie_word_embeddings")->as_bool());
  CHECK(cfg.find("auto_map") != nullptr);
  CHECK(!cfg.find("longctx_attention"));

  // All-dense and all-sparse map onto sparse_mode too; anything else needs longctx_attention.
  lcx_config dense = c, odd = c;
  for (int l = 0; l < 3; l++) dense.attn_kind[l] = LCX_ATTN_DENSE;
  Json dj = parse_json(make_hf_config_json(dense, "", "", StoredDtype::F32), "c");
  CHECK(dj.find("sparse_mode")->as_string() == "none" && !dj.find("longctx_attention"));
  odd.attn_kind[0] = LCX_ATTN_DENSE;
  odd.attn_kind[1] = LCX_ATTN_SPARSE;
  Json oj = parse_json(make_hf_config_json(odd, "", "", StoredDtype::F32), "c");
  CHECK(oj.find("longctx_attention") && oj.find("longctx_attention")->items()[1].as_string() == "sparse");
  CHECK(same_model_config(parse_hf_config(write_json(oj), "c").cfg, odd));
}

TEST(sharded_and_half_models) {
  const lcx_config c = tiny_rugpt();
  const std::vector<float> params = init_params(c, 5);
  const std::string dir = scratch("rugpt_sharded");
  save_hf_model(dir, c, "", "", params.data(), 2000);
  CHECK(file_exists(join_path(dir, "model.safetensors.index.json")));
  CHECK(!file_exists(join_path(dir, "model.safetensors")));
  CHECK(same_bits(load_hf_model(dir).params, params));
  lcx_model_info info = inspect_hf_model(dir);
  CHECK(info.num_files > 2);
  uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".safetensors") bytes += fs::file_size(e.path());
  CHECK(info.bytes_on_disk == (int64_t)bytes);

  for (StoredDtype dt : {StoredDtype::F16, StoredDtype::BF16}) {
    const std::string hd = scratch(std::string("gpt2_") + stored_dtype_name(dt));
    const lcx_config g = tiny_gpt2();
    const std::vector<float> gp = init_params(g, 9);
    save_hf_model(hd, g, "", "", gp.data(), 0, dt);
    std::vector<float> expect(gp.size());
    for (size_t i = 0; i < gp.size(); i++)
      expect[i] = dt == StoredDtype::F16 ? f16_to_f32(f32_to_f16(gp[i])) : bf16_to_f32(f32_to_bf16(gp[i]));
    CHECK(same_bits(load_hf_model(hd).params, expect));
    CHECK(std::string(inspect_hf_model(hd).dtype) == stored_dtype_name(dt));
    Json cfg = parse_json(read_file(join_path(hd, "config.json")), "c");
    CHECK(cfg.find("torch_dtype")->as_string() == (dt == StoredDtype::F16 ? "float16" : "bfloat16"));
  }
}

TEST(attention_patterns_in_config) {
  lcx_config c = tiny_gpt2();
  c.attn_kind[0] = LCX_ATTN_WINDOW;
  c.attn_window[0] = 5;
  c.attn_kind[1] = LCX_ATTN_SPARSE;
  c.sparse = {4, 2, 1, 1, 2, 1, 0};
  const std::vector<float> params = init_params(c, 3);
  const std::string dir = scratch("gpt2_patterns");
  save_hf_model(dir, c, "", "", params.data(), 0);
  Json cfg = parse_json(read_file(join_path(dir, "config.json")), "c");
  CHECK(cfg.find("longctx_attention")->items()[0].as_string() == "window:5");
  CHECK(cfg.find("longctx_sparse")->find("num_local_blocks")->as_int64() == 2);
  LoadedHfModel m = load_hf_model(dir);
  CHECK(m.cfg.attn_kind[0] == LCX_ATTN_WINDOW && m.cfg.attn_window[0] == 5);
  CHECK(m.cfg.attn_kind[1] == LCX_ATTN_SPARSE && m.cfg.sparse.block == 4);
  CHECK(same_model_config(m.cfg, c));

  // ruGPT3XL with a window layer: sparse_mode stays, the list carries the truth.
  lcx_config r = tiny_rugpt();
  r.attn_kind[1] = LCX_ATTN_WINDOW;
  r.attn_window[1] = 32;
  Json rj = parse_json(make_hf_config_json(r, "", "", StoredDtype::F32), "c");
  CHECK(rj.find("longctx_attention")->items()[1].as_string() == "window:32");
  CHECK(same_model_config(parse_hf_config(write_json(rj), "c").cfg, r));
}

// A folder as transformers writes it for GPT-2: original config keys, old buffers, no prefix.
TEST(foreign_gpt2_folder) {
  const lcx_config c = tiny_gpt2();
  const std::vector<float> params = init_params(c, 11);
  const std::string dir = scratch("gpt2_foreign");
  const std::string original = R"({
  "_name_or_path": "tiny",
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "bos_token_id": 36,
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 16,
  "n_embd": 8,
  "n_head": 2,
  "n_inner": null,
  "n_layer": 2,
  "n_positions": 16,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 37
})";
  lcx_config c4 = c;
  c4.n_inner = 32;  // = 4 * n_embd, what null means
  save_hf_model(dir, c4, "", original, params.data(), 0);
  Json saved = parse_json(read_file(join_path(dir, "config.json")), "c");
  CHECK(saved.find("n_inner")->is_null());
  CHECK(saved.find("_name_or_path")->as_string() == "tiny");
  CHECK(saved.members()[0].first == "_name_or_path");  // order kept
  CHECK(saved.find("task_specific_params")->find("text-generation")->find("max_length")->as_int64() == 50);

  // Rewrite the weights without the "transformer." prefix, in F16, with the old mask buffers.
  SafetensorsFile f(join_path(dir, "model.safetensors"));
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> ts;
  for (const auto& t : f.tensors()) {
    values.emplace_back(t.numel());
    f.read_f32(t, values.back().data());
  }
  size_t i = 0;
  for (const auto& t : f.tensors()) {
    TensorToWrite w;
    w.name = t.name.substr(std::string("transformer.").size());
    w.shape = t.shape;
    w.data = values[i++].data();
    ts.push_back(w);
  }
  std::vector<float> mask(16 * 16, 1.0f), masked_bias(1, -1e4f);
  for (int l = 0; l < 2; l++) {
    TensorToWrite b;
    b.name = "h." + std::to_string(l) + ".attn.bias";
    b.shape = {1, 1, 16, 16};
    b.data = mask.data();
    ts.push_back(b);
    b.name = "h." + std::to_string(l) + ".attn.masked_bias";
    b.shape = {};
    b.data = masked_bias.data();
    ts.push_back(b);
  }
  write_safetensors(join_path(dir, "model.safetensors"), ts, StoredDtype::F16);
  LoadedHfModel m = load_hf_model(dir);
  std::vector<float> expect(params.size());
  for (size_t k = 0; k < params.size(); k++) expect[k] = f16_to_f32(f32_to_f16(params[k]));
  CHECK(same_bits(m.params, expect));
  CHECK(m.cfg.n_inner == 32);

  // Save after an extension: n_positions and n_ctx follow, the rest stays as the user had it.
  lcx_config longer = m.cfg;
  longer.n_positions = 64;
  std::vector<float> p = m.params;
  extend_position_embeddings(p, m.cfg, 64, LCX_EXTEND_TILE, 0);
  const std::string out = scratch("gpt2_foreign_extended");
  save_hf_model(out, longer, m.architecture, m.config_json, p.data(), 0);
  const std::string text = read_file(join_path(out, "config.json"));
  Json e = parse_json(text, "c");
  CHECK(e.find("n_positions")->as_int64() == 64 && e.find("n_ctx")->as_int64() == 64);
  CHECK(e.find("bos_token_id")->as_int64() == 36);
  CHECK(text.find("\"layer_norm_epsilon\": 1e-05") != std::string::npos);
  CHECK(same_bits(load_hf_model(out).params, p));
}

TEST(rugpt3xl_port_config) {
  // config.json as the port ships it (no sparse keys: the port's defaults apply, sparse off).
  const std::string port = R"({
  "architectures": ["RuGPT3XLForCausalLM"],
  "auto_map": {"AutoConfig": "configuration_rugpt3xl.RuGPT3XLConfig"},
  "model_type": "rugpt3xl", "vocab_size": 50264, "hidden_size": 2048, "num_hidden_layers": 24,
  "num_attention_heads": 16, "intermediate_size": 8192, "hidden_act": "gelu_new",
  "max_position_embeddings": 2048, "layer_norm_eps": 1e-5, "tie_word_embeddings": false,
  "torch_dtype": "float16"})";
  HfConfig h = parse_hf_config(port, "config.json");
  CHECK(h.cfg.arch == LCX_ARCH_RUGPT3XL && h.cfg.n_embd == 2048 && h.cfg.n_layer == 24);
  CHECK(h.cfg.n_positions == 2048 && h.cfg.n_inner == 8192 && h.cfg.vocab_size == 50264);
  CHECK(h.cfg.attn_kind[0] == LCX_ATTN_DENSE && !h.lm_head_tied);
  CHECK(h.cfg.sparse.block == 16 && h.cfg.sparse.num_local_blocks == 8);
  // With the sparse keys of the restored model: even layers sparse.
  std::string sparse = port;
  sparse.insert(sparse.rfind('}'), R"(, "sparse_mode": "alternating", "sparse_block_size": 16,
    "sparse_num_local_blocks": 8, "sparse_num_global_blocks": 1,
    "sparse_num_different_global_patterns": 8)");
  HfConfig s = parse_hf_config(sparse, "config.json");
  CHECK(s.cfg.attn_kind[0] == LCX_ATTN_SPARSE && s.cfg.attn_kind[1] == LCX_ATTN_DENSE &&
        s.cfg.attn_kind[22] == LCX_ATTN_SPARSE && s.cfg.attn_kind[23] == LCX_ATTN_DENSE);
  CHECK(s.cfg.sparse.num_different_global_patterns == 8 && s.cfg.sparse.different_layout_per_head);
  // Saving after 2k -> 4k updates max_position_embeddings and keeps fp16-era keys sensible.
  lcx_config longer = s.cfg;
  longer.n_positions = 4096;
  Json out = parse_json(make_hf_config_json(longer, s.architecture, sparse, StoredDtype::F32), "c");
  CHECK(out.find("max_position_embeddings")->as_int64() == 4096);
  CHECK(out.find("sparse_mode")->as_string() == "alternating");
  CHECK(out.find("torch_dtype")->as_string() == "float32");
  CHECK(out.find("auto_map")->find("AutoConfig") != nullptr);
  CHECK(out.find("layer_norm_eps")->number_text() == "1e-5");  // unchanged value, unchanged text
  // model_type alone is enough.
  CHECK(parse_hf_config(R"({"model_type": "gpt2", "n_layer": 1})", "c").cfg.n_embd == 768);
}

// Every way a folder can be wrong, with the status and the words the user will see.
TEST(model_folder_errors) {
  const lcx_config c = tiny_gpt2();
  const std::vector<float> params = init_params(c, 1);
  const std::string good = scratch("good");
  save_hf_model(good, c, "", "", params.data(), 0);
  const std::string good_config = read_file(join_path(good, "config.json"));
  auto fresh = [&](const std::string& name) {
    const std::string d = scratch(name);
    fs::create_directories(d);
    fs::copy(good, d, fs::copy_options::recursive);
    return d;
  };
  auto both = [&](lcx_status s, std::vector<std::string> pieces, const std::string& d, int line) {
    expect_error(s, pieces, [&] { inspect_hf_model(d); }, line);
    expect_error(s, pieces, [&] { load_hf_model(d); }, line);
  };

  both(LCX_ERR_IO, {"no such folder"}, join_path(g_root, "does-not-exist"), __LINE__);

  std::string d = fresh("no_config");
  fs::remove(join_path(d, "config.json"));
  both(LCX_ERR_IO, {join_path(d, "config.json"), "no such file"}, d, __LINE__);

  d = fresh("bad_json");
  write_file(join_path(d, "config.json"), "{\"n_embd\": 8,\n \"n_head\": }");
  both(LCX_ERR_FORMAT, {"config.json", "invalid JSON", "line 2"}, d, __LINE__);

  d = fresh("llama");
  write_file(join_path(d, "config.json"), R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})");
  both(LCX_ERR_UNSUPPORTED, {"LlamaForCausalLM", "not supported", "GPT2LMHeadModel", "RuGPT3XLForCausalLM"}, d, __LINE__);
  write_file(join_path(d, "config.json"), R"({"model_type": "bert"})");
  both(LCX_ERR_UNSUPPORTED, {"model_type \"bert\"", "GPT2LMHeadModel"}, d, __LINE__);
  write_file(join_path(d, "config.json"), R"({"n_embd": 8})");
  both(LCX_ERR_UNSUPPORTED, {"neither"}, d, __LINE__);

  d = fresh("bad_values");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good_config;
    const size_t at = t.find(from);
    if (at != std::string::npos) t.replace(at, from.size(), to);
    write_file(join_path(d, "config.json"), t);
  };
  with("\"n_head\": 2", "\"n_head\": 3");
  both(LCX_ERR_FORMAT, {"config.json", "n_embd = 8 must be divisible by config.n_head = 3"}, d, __LINE__);
  with("\"n_head\": 2", "\"n_head\": \"2\"");
  both(LCX_ERR_FORMAT, {"config.json", "\"n_head\" must be an integer, got string"}, d, __LINE__);
  with("\"activation_function\": \"gelu_new\"", "\"activation_function\": \"relu\"");
  both(LCX_ERR_UNSUPPORTED, {"activation_function", "relu"}, d, __LINE__);
  with("\"n_layer\": 2", "\"n_layer\": 300");
  both(LCX_ERR_UNSUPPORTED, {"300 layers"}, d, __LINE__);
  with("\"n_layer\": 2", "\"n_layer\": 2, \"longctx_attention\": [\"dense\"]");
  both(LCX_ERR_FORMAT, {"longctx_attention", "1 entries", "2 layers"}, d, __LINE__);
  with("\"n_layer\": 2", "\"n_layer\": 2, \"longctx_attention\": [\"dense\", \"window:0\"]");
  both(LCX_ERR_FORMAT, {"longctx_attention", "window:0"}, d, __LINE__);
  // A config for a wider model than the weights: shape mismatch naming tensor, got, expected.
  with("\"n_embd\": 8", "\"n_embd\": 16");
  both(LCX_ERR_SHAPE, {"model.safetensors", "'transformer.wte.weight'", "[37, 8]", "[37, 16]"}, d, __LINE__);
  // Fewer layers in config.json than in the files.
  with("\"n_layer\": 2", "\"n_layer\": 1");
  both(LCX_ERR_FORMAT, {"unexpected tensor", "transformer.h.1."}, d, __LINE__);

  d = fresh("no_weights");
  fs::remove(join_path(d, "model.safetensors"));
  both(LCX_ERR_IO, {join_path(d, "model.safetensors"), "no such file"}, d, __LINE__);

  d = fresh("truncated");
  fs::resize_file(join_path(d, "model.safetensors"), fs::file_size(join_path(d, "model.safetensors")) - 100);
  both(LCX_ERR_FORMAT, {join_path(d, "model.safetensors"), "truncated: tensor 'transformer.", "needs bytes"}, d, __LINE__);

  // Rewritten weights: a missing tensor, a wrong shape, an unloadable dtype.
  auto rewrite = [&](const std::string& dir, const std::function<void(std::vector<std::string>&,
                                                                     std::vector<std::string>&)>& edit) {
    SafetensorsFile f(join_path(good, "model.safetensors"));
    std::vector<std::string> headers, datas;
    std::string header = "{", data;
    for (const auto& t : f.tensors()) {
      std::string bytes((size_t)(t.end - t.begin), '\0');
      std::vector<float> v(t.numel());
      f.read_f32(t, v.data());
      std::memcpy(bytes.data(), v.data(), bytes.size());
      headers.push_back("\"" + t.name + "\":{\"dtype\":\"F32\",\"shape\":" + shape_to_string(t.shape) + "}");
      datas.push_back(bytes);
    }
    edit(headers, datas);
    for (size_t k = 0; k < headers.size(); k++) {
      std::string h = headers[k];
      h.insert(h.size() - 1, ",\"data_offsets\":[" + std::to_string(data.size()) + "," +
                                 std::to_string(data.size() + datas[k].size()) + "]");
      header += (k ? "," : "") + h;
      data += datas[k];
    }
    write_raw_safetensors(join_path(dir, "model.safetensors"), header + "}", data);
  };
  auto index_of = [](const std::vector<std::string>& headers, const std::string& name) {
    for (size_t k = 0; k < headers.size(); k++)
      if (headers[k].rfind("\"" + name + "\"", 0) == 0) return k;
    return headers.size();
  };

  d = fresh("missing_tensor");
  rewrite(d, [&](auto& h, auto& b) {
    const size_t k = index_of(h, "transformer.h.1.mlp.c_fc.bias");
    h.erase(h.begin() + (long)k);
    b.erase(b.begin() + (long)k);
  });
  both(LCX_ERR_FORMAT, {"'transformer.h.1.mlp.c_fc.bias' is missing", "[32]"}, d, __LINE__);

  d = fresh("wrong_shape");
  rewrite(d, [&](auto& h, auto&) {
    const size_t k = index_of(h, "transformer.h.0.attn.c_proj.weight");
    h[k] = "\"transformer.h.0.attn.c_proj.weight\":{\"dtype\":\"F32\",\"shape\":[4, 16]}";
  });
  both(LCX_ERR_SHAPE, {"'transformer.h.0.attn.c_proj.weight'", "has shape [4, 16]", "implies [8, 8]"}, d, __LINE__);

  d = fresh("int_dtype");
  rewrite(d, [&](auto& h, auto& b) {
    const size_t k = index_of(h, "transformer.wpe.weight");
    h[k] = "\"transformer.wpe.weight\":{\"dtype\":\"I64\",\"shape\":[16, 8]}";
    b[k] += b[k];  // I64 is twice as wide
  });
  both(LCX_ERR_DTYPE, {"'transformer.wpe.weight'", "I64"}, d, __LINE__);

  d = fresh("untied_head");
  write_file(join_path(d, "config.json"),
             good_config.substr(0, good_config.rfind('}')) + ", \"tie_word_embeddings\": false}");
  both(LCX_ERR_FORMAT, {"'lm_head.weight' is missing", "tie_word_embeddings"}, d, __LINE__);
  rewrite(d, [&](auto& h, auto& b) {
    h.push_back("\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[37, 8]}");
    b.push_back(b[index_of(h, "transformer.wte.weight")]);
  });
  CHECK(load_hf_model(d).params.size() == params.size());  // an identical copy is fine
  rewrite(d, [&](auto& h, auto& b) {
    h.push_back("\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[37, 8]}");
    std::string head = b[index_of(h, "transformer.wte.weight")];
    head[5] ^= 0x40;
    b.push_back(head);
  });
  CHECK(inspect_hf_model(d).parameters > 0);  // headers alone cannot tell
  EXPECT_ERROR(LCX_ERR_UNSUPPORTED, (std::vector<std::string>{"lm_head.weight", "differs", "untied"}),
               load_hf_model(d));
}

// ---- checkpoints ----------------------------------------------------------------------------

TEST(checkpoint) {
  const lcx_config c = tiny_rugpt();
  const std::vector<float> params = init_params(c, 21), m = init_params(c, 22), v = init_params(c, 23);
  const std::string dir = scratch("ckpt");
  ensure_directory(dir);
  const std::string path = join_path(dir, "step.safetensors");
  write_checkpoint(path, c, "RuGPT3XLForCausalLM", params.data(), m.data(), v.data(), 1234);
  {
    CheckpointReader r(path, c);
    CHECK(r.step() == 1234 && r.has_optimizer_state());
    std::vector<float> p2(params.size()), m2(params.size()), v2(params.size());
    r.read_params(p2.data());
    r.read_optimizer_state(m2.data(), v2.data());
    CHECK(same_bits(p2, params) && same_bits(m2, m) && same_bits(v2, v));
  }
  SafetensorsFile f(path);
  CHECK(f.find("params.qkvw")->shape == std::vector<int64_t>({3, 24, 8}));
  CHECK(f.find("adam_v.lnfb")->shape == std::vector<int64_t>({8}));
  CHECK(*f.metadata_value("format") == "longctx-checkpoint");

  // Overwrite with a params-only checkpoint (atomic replace, no temp files left).
  write_checkpoint(path, c, "RuGPT3XLForCausalLM", params.data(), nullptr, nullptr, 0);
  CHECK(!CheckpointReader(path, c).has_optimizer_state());
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += (int)(e.path() == path ? 1 : 100);
  CHECK(files == 1);

  lcx_config other = c;
  other.n_positions = 128;
  EXPECT_ERROR(LCX_ERR_ARG, (std::vector<std::string>{path, "different model", "n_positions is 128 here and 64 there"}),
               CheckpointReader(path, other));
  other = c;
  other.attn_kind[1] = LCX_ATTN_SPARSE;
  EXPECT_ERROR(LCX_ERR_ARG, (std::vector<std::string>{"attn_kind[1]"}), CheckpointReader(path, other));
  // A model folder's weights are not a checkpoint.
  const std::string model_dir = scratch("ckpt_model");
  save_hf_model(model_dir, c, "", "", params.data(), 0);
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{"not a LongCtx checkpoint"}),
               CheckpointReader(join_path(model_dir, "model.safetensors"), c));
  fs::resize_file(path, fs::file_size(path) - 1);
  EXPECT_ERROR(LCX_ERR_FORMAT, (std::vector<std::string>{path, "truncated"}), CheckpointReader(path, c));
  EXPECT_ERROR(LCX_ERR_IO, (std::vector<std::string>{"no-such-dir"}),
               write_checkpoint(join_path(dir, "no-such-dir/x.safetensors"), c, "", params.data(),
                                nullptr, nullptr, 0));

  // The config survives its JSON form exactly.
  lcx_config w = tiny_gpt2();
  w.attn_kind[1] = LCX_ATTN_WINDOW;
  w.attn_window[1] = 7;
  w.layer_norm_eps = 3.3e-6f;
  const lcx_config back = config_from_json(parse_json(write_json(config_to_json(w)), "c"), "c");
  CHECK(config_difference(w, back).empty() && back.layer_norm_eps == w.layer_norm_eps);
}

// ---- host-side parameter operations ---------------------------------------------------------

TEST(init) {
  lcx_config c = tiny_gpt2();
  c.vocab_size = 3000;
  const std::vector<float> a = init_params(c, 42), b = init_params(c, 42), d = init_params(c, 43);
  CHECK(same_bits(a, b));
  CHECK(!same_bits(a, d));
  const lcx_param_layout lay = param_layout(c);
  auto stats = [&](int t, double* mean, double* std) {
    double s = 0, s2 = 0;
    const size_t n = lay.count[t];
    for (size_t i = 0; i < n; i++) {
      s += a[lay.offset[t] + i];
      s2 += (double)a[lay.offset[t] + i] * a[lay.offset[t] + i];
    }
    *mean = s / (double)n;
    *std = std::sqrt(s2 / (double)n - *mean * *mean);
  };
  double mean, std;
  stats(0, &mean, &std);
  CHECK_NEAR(mean, 0.0, 0.001);
  CHECK_NEAR(std, 0.02, 0.0005);
  stats(12, &mean, &std);  // fcprojw: 0.02 / sqrt(2L)
  CHECK_NEAR(std, 0.02 / std::sqrt(4.0), 0.0007);
  bool ln_ones = true, biases_zero = true;
  for (int t : {2, 8, 14})
    for (size_t i = 0; i < lay.count[t]; i++) ln_ones &= a[lay.offset[t] + i] == 1.0f;
  for (int t : {3, 5, 7, 9, 11, 13, 15})
    for (size_t i = 0; i < lay.count[t]; i++) biases_zero &= a[lay.offset[t] + i] == 0.0f;
  CHECK(ln_ones && biases_zero);

  // The numbers do not depend on the thread count.
  std::vector<float> one(10001), many(10001);
#if defined(_OPENMP)
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  fill_normal(one.data(), one.size(), 1.0f, 7, 3);
  omp_set_num_threads(4);
  fill_normal(many.data(), many.size(), 1.0f, 7, 3);
  omp_set_num_threads(threads);
#else
  fill_normal(one.data(), one.size(), 1.0f, 7, 3);
  fill_normal(many.data(), many.size(), 1.0f, 7, 3);
#endif
  CHECK(same_bits(one, many));
  bool finite = true;
  for (float x : one) finite &= std::isfinite(x);
  CHECK(finite);
}

TEST(extend) {
  const lcx_config c = tiny_gpt2();  // 16 positions
  const lcx_param_layout old_lay = param_layout(c);
  const std::vector<float> orig = init_params(c, 8);
  const size_t C = (size_t)c.n_embd;
  lcx_config big = c;
  big.n_positions = 40;
  const lcx_param_layout new_lay = param_layout(big);
  auto row = [&](const std::vector<float>& p, const lcx_param_layout& lay, size_t r) {
    return std::vector<float>(p.begin() + (long)(lay.offset[1] + r * C),
                              p.begin() + (long)(lay.offset[1] + (r + 1) * C));
  };
  auto tail_intact = [&](const std::vector<float>& p) {
    return p.size() == new_lay.total &&
           std::memcmp(p.data() + new_lay.offset[2], orig.data() + old_lay.offset[2],
                       (old_lay.total - old_lay.offset[2]) * 4) == 0 &&
           std::memcmp(p.data(), orig.data(), old_lay.offset[1] * 4) == 0;
  };

  std::vector<float> tile = orig;
  extend_position_embeddings(tile, c, 40, LCX_EXTEND_TILE, 0);
  CHECK(tail_intact(tile));
  bool tiled = std::memcmp(tile.data() + new_lay.offset[1], orig.data() + old_lay.offset[1], 16 * C * 4) == 0;
  for (size_t p = 16; p < 40; p++) tiled &= row(tile, new_lay, p) == row(orig, old_lay, p % 16);
  CHECK(tiled);

  std::vector<float> interp = orig;
  extend_position_embeddings(interp, c, 40, LCX_EXTEND_INTERPOLATE, 0);
  CHECK(tail_intact(interp));
  CHECK(row(interp, new_lay, 0) == row(orig, old_lay, 0));
  CHECK(row(interp, new_lay, 39) == row(orig, old_lay, 15));
  // p = 13: x = 13 * 15 / 39 = 5 exactly; p = 20: x = 300/39 = 7.6923..., between rows 7 and 8.
  CHECK(row(interp, new_lay, 13) == row(orig, old_lay, 5));
  {
    const double x = 20.0 * 15.0 / 39.0, f = x - 7.0;
    const auto r7 = row(orig, old_lay, 7), r8 = row(orig, old_lay, 8), got = row(interp, new_lay, 20);
    bool ok = true;
    for (size_t k = 0; k < C; k++) ok &= got[k] == (float)((1.0 - f) * r7[k] + f * r8[k]);
    CHECK(ok);
  }

  std::vector<float> rnd = orig, rnd2 = orig, rnd3 = orig;
  extend_position_embeddings(rnd, c, 40, LCX_EXTEND_RANDOM, 99);
  extend_position_embeddings(rnd2, c, 40, LCX_EXTEND_RANDOM, 99);
  extend_position_embeddings(rnd3, c, 40, LCX_EXTEND_RANDOM, 100);
  CHECK(tail_intact(rnd));
  CHECK(std::memcmp(rnd.data() + new_lay.offset[1], orig.data() + old_lay.offset[1], 16 * C * 4) == 0);
  CHECK(same_bits(rnd, rnd2) && !same_bits(rnd, rnd3));
  bool fresh = false;
  for (size_t p = 16; p < 40; p++) fresh |= row(rnd, new_lay, p) != row(orig, old_lay, p % 16);
  CHECK(fresh);

  std::vector<float> same = orig;
  extend_position_embeddings(same, c, 16, LCX_EXTEND_INTERPOLATE, 0);
  CHECK(same_bits(same, orig));
  std::vector<float> p = orig;
  EXPECT_ERROR(LCX_ERR_ARG, (std::vector<std::string>{"from 16 to 8"}),
               extend_position_embeddings(p, c, 8, LCX_EXTEND_TILE, 0));
  EXPECT_ERROR(LCX_ERR_ARG, (std::vector<std::string>{"mode 7"}), extend_position_embeddings(p, c, 32, 7, 0));
  CHECK(same_bits(p, orig));
}

TEST(config_validation) {
  auto bad = [](std::function<void(lcx_config&)> edit, lcx_status s, const std::string& piece, int line) {
    lcx_config c = tiny_rugpt();
    edit(c);
    expect_error(s, {piece}, [&] { validate_config(c); }, line);
  };
  validate_config(tiny_gpt2());
  validate_config(tiny_rugpt());
  bad([](lcx_config& c) { c.arch = 5; }, LCX_ERR_UNSUPPORTED, "config.arch", __LINE__);
  bad([](lcx_config& c) { c.n_head = 3; }, LCX_ERR_ARG, "divisible by config.n_head", __LINE__);
  bad([](lcx_config& c) { c.vocab_size = 0; }, LCX_ERR_ARG, "config.vocab_size", __LINE__);
  bad([](lcx_config& c) { c.layer_norm_eps = NAN; }, LCX_ERR_ARG, "layer_norm_eps", __LINE__);
  bad([](lcx_config& c) { c.n_layer = LCX_MAX_LAYERS + 1; }, LCX_ERR_UNSUPPORTED, "n_layer", __LINE__);
  bad([](lcx_config& c) { c.attn_kind[1] = 9; }, LCX_ERR_ARG, "attn_kind[1]", __LINE__);
  bad([](lcx_config& c) { c.attn_kind[1] = LCX_ATTN_WINDOW; }, LCX_ERR_ARG, "attn_window[1]", __LINE__);
  bad([](lcx_config& c) { c.sparse.different_layout_per_head = 0; }, LCX_ERR_ARG, "different_layout_per_head", __LINE__);
  bad([](lcx_config& c) { c.sparse.num_different_global_patterns = 5; }, LCX_ERR_ARG, "num_local_blocks / num_global_blocks", __LINE__);
  bad([](lcx_config& c) { c.sparse.num_global_blocks = 3; }, LCX_ERR_ARG, "divisible by num_global_blocks", __LINE__);
  bad([](lcx_config& c) { c.sparse.horizontal_global_attention = 1; }, LCX_ERR_ARG, "bidirectional", __LINE__);
  bad([](lcx_config& c) { c.sparse.block = 0; }, LCX_ERR_ARG, "sparse.block", __LINE__);
  // Sparse settings do not matter while no layer is sparse.
  lcx_config dense = tiny_gpt2();
  dense.sparse = {};
  validate_config(dense);
}

}  // namespace

int main() {
  g_root = (fs::temp_directory_path() / ("lcx_test_io_" + std::to_string((long long)getpid()))).string();
  fs::remove_all(g_root);
  fs::create_directories(g_root);

  const int rc = testing::run_all();
  fs::remove_all(g_root);
  return rc;
}
