// safetensors files: read (header validated, tensors converted to fp32 chunk by chunk straight into
// the caller's buffer, so a 5 GB file never needs 5 GB of extra RAM) and write (atomically, one
// file or HF-style shards with model.safetensors.index.json).
//
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
// then the data section; offsets are relative to its start (8 + N).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "files.hpp"

namespace lcx {

enum class StoredDtype { F32, F16, BF16 };
const char* stored_dtype_name(StoredDtype d);  // "F32" | "F16" | "BF16"
size_t stored_dtype_size(StoredDtype d);
// Bytes per element of any safetensors dtype name, 0 when the name is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// IEEE half / bfloat16 conversions (round to nearest even; NaN stays NaN, overflow gives Inf).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);

struct TensorEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // absolute byte offsets in the file
  uint64_t numel() const;
};

std::string shape_to_string(const std::vector<int64_t>& shape);  // "[768, 2304]"

// One safetensors file, header read and validated on construction:
// LCX_ERR_FORMAT for a bad header length, bad JSON, offsets outside the file ("truncated",
// naming the tensor), sizes that do not match shape x dtype, overlapping tensors.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint64_t file_size() const { return file_.size(); }
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find(const std::string& name) const;
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  const std::string* metadata_value(const std::string& key) const;

  // numel fp32 values into out. F32/F16/BF16 only; anything else is LCX_ERR_DTYPE naming the
  // tensor and its dtype.
  void read_f32(const TensorEntry& t, float* out);

 private:
  InputFile file_;
  std::vector<TensorEntry> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// The tensors of a model folder: model.safetensors, or the shards listed by
// model.safetensors.index.json (the single file wins when both exist, as in transformers).
class SafetensorsModel {
 public:
  // LCX_ERR_IO naming the missing path when neither file exists (or a shard is missing).
  static SafetensorsModel open_dir(const std::string& dir);

  struct Located {
    SafetensorsFile* file;
    const TensorEntry* entry;
  };
  // nullptr entry when absent.
  Located find(const std::string& name);
  const std::vector<std::string>& tensor_names() const { return names_; }
  std::vector<SafetensorsFile>& files() { return files_; }
  uint64_t bytes_on_disk() const;
  // For messages: "model.safetensors" or "model.safetensors.index.json (3 shards)".
  std::string description() const { return description_; }

 private:
  std::vector<SafetensorsFile> files_;
  std::vector<std::string> names_;                            // in file order
  std::vector<std::pair<std::string, std::pair<size_t, size_t>>> index_;  // sorted by name
  std::string description_;
};

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;             // numel fp32 values, or else
  std::function<void(float* out)> fill;    // produces them when the tensor is written
};

// One file, written atomically (temp + fsync + rename). __metadata__ gets "format": "pt" unless
// metadata sets "format". Data are 8-byte aligned: the header is padded with spaces.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       StoredDtype dtype,
                       const std::vector<std::pair<std::string, std::string>>& metadata = {});

// model.safetensors, or when the data exceed max_shard_bytes (> 0) the HF shards
// model-00001-of-0000N.safetensors + model.safetensors.index.json. Weight files of an earlier save
// in dir that the new layout does not use are removed, so the folder never holds two models.
// Returns the file names written.
std::vector<std::string> write_safetensors_model(const std::string& dir,
                                                 const std::vector<TensorToWrite>& tensors,
                                                 StoredDtype dtype, int64_t max_shard_bytes);

}  // namespace lcx
