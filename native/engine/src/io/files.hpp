// Small file helpers for the io layer. Every failure is an lcx::Error(LCX_ERR_IO) that names the
// path and the operating system's reason; writes go through a temp file + rename so that a
// crash or a full disk never leaves a half-written model or checkpoint under the real name.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace lcx {

std::string join_path(const std::string& dir, const std::string& name);
bool file_exists(const std::string& path);  // a regular file
bool directory_exists(const std::string& path);
uint64_t file_size(const std::string& path);  // throws LCX_ERR_IO
void ensure_directory(const std::string& path);  // creates parents too
void remove_file_if_exists(const std::string& path);
// The whole file as bytes.
std::string read_text_file(const std::string& path);

// A file opened for reading at arbitrary offsets (64-bit), closed on destruction.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  InputFile(InputFile&& other) noexcept;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly n bytes at offset; a short read throws LCX_ERR_FORMAT ("truncated") since the
  // callers have already checked sizes against the header, so it means the file shrank.
  void read_at(uint64_t offset, void* dst, size_t n);

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t size_ = 0;
};

// Writes to "<path>.tmp-<pid>-<n>" beside the target; commit() flushes, fsyncs and renames it over
// the target. Destroying an uncommitted writer deletes the temp file.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t n);
  uint64_t bytes_written() const { return written_; }
  void commit();

 private:
  std::string path_, temp_path_;
  std::FILE* f_ = nullptr;
  uint64_t written_ = 0;
  bool committed_ = false;
};

// Convenience: atomically replaces path with text.
void write_text_file_atomic(const std::string& path, const std::string& text);

}  // namespace lcx
