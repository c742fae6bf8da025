#include "files.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "../core/error.hpp"

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#define LCX_FSEEK _fseeki64
#define LCX_GETPID _getpid
#else
#include <unistd.h>
#define LCX_FSEEK fseeko
#define LCX_GETPID getpid
#endif

namespace fs = std::filesystem;

namespace lcx {

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return (fs::path(dir) / name).string();
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool directory_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  uint64_t n = fs::file_size(path, ec);
  if (ec) fail(LCX_ERR_IO, "%s: cannot read the file size: %s", path.c_str(), ec.message().c_str());
  return n;
}

void ensure_directory(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return;
  fs::create_directories(path, ec);
  if (ec) fail(LCX_ERR_IO, "%s: cannot create the folder: %s", path.c_str(), ec.message().c_str());
}

void remove_file_if_exists(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) fail(LCX_ERR_IO, "%s: cannot remove the old file: %s", path.c_str(), ec.message().c_str());
}

std::string read_text_file(const std::string& path) {
  if (directory_exists(path)) fail(LCX_ERR_IO, "%s: is a folder, expected a file", path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(LCX_ERR_IO, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail(LCX_ERR_IO, "%s: read error", path.c_str());
  return out;
}

// ---- InputFile --------------------------------------------------------------------------------

InputFile::InputFile(const std::string& path) : path_(path) {
  if (directory_exists(path)) fail(LCX_ERR_IO, "%s: is a folder, expected a file", path.c_str());
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) fail(LCX_ERR_IO, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
  // Reads are large and go straight into the caller's buffer; stdio's buffer would only add a
  // copy (and could serve bytes of a file that has since been truncated).
  std::setvbuf(f_, nullptr, _IONBF, 0);
  size_ = file_size(path);
}

InputFile::InputFile(InputFile&& other) noexcept
    : path_(std::move(other.path_)), f_(other.f_), size_(other.size_) {
  other.f_ = nullptr;
}

InputFile::~InputFile() {
  if (f_) std::fclose(f_);
}

void InputFile::read_at(uint64_t offset, void* dst, size_t n) {
  if (n == 0) return;
  if (offset > size_ || n > size_ - offset)
    fail(LCX_ERR_FORMAT, "%s: truncated: needs bytes up to %llu but the file has %llu",
         path_.c_str(), (unsigned long long)(offset + n), (unsigned long long)size_);
  if (LCX_FSEEK(f_, (int64_t)offset, SEEK_SET) != 0)
    fail(LCX_ERR_IO, "%s: seek failed: %s", path_.c_str(), std::strerror(errno));
  size_t got = std::fread(dst, 1, n, f_);
  if (got != n) {
    if (std::ferror(f_)) fail(LCX_ERR_IO, "%s: read error: %s", path_.c_str(), std::strerror(errno));
    fail(LCX_ERR_FORMAT, "%s: truncated: the file ended at byte %llu while reading %zu bytes at %llu",
         path_.c_str(), (unsigned long long)(offset + got), n, (unsigned long long)offset);
  }
}

// ---- AtomicFileWriter -------------------------------------------------------------------------

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  static std::atomic<unsigned> counter{0};
  temp_path_ = path + ".tmp-" + std::to_string((long long)LCX_GETPID()) + "-" +
               std::to_string(counter.fetch_add(1));
  f_ = std::fopen(temp_path_.c_str(), "wb");
  if (!f_)
    fail(LCX_ERR_IO, "%s: cannot create (as the temp file %s): %s", path.c_str(),
         temp_path_.c_str(), std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(temp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, f_) != n) {
    int err = errno;
    fail(LCX_ERR_IO, "%s: write failed after %llu bytes: %s%s", path_.c_str(),
         (unsigned long long)written_, std::strerror(err),
         err == ENOSPC ? " (the disk is full)" : "");
  }
  written_ += n;
}

void AtomicFileWriter::commit() {
  if (std::fflush(f_) != 0) {
    int err = errno;
    fail(LCX_ERR_IO, "%s: write failed: %s%s", path_.c_str(), std::strerror(err),
         err == ENOSPC ? " (the disk is full)" : "");
  }
#if defined(_WIN32)
  _commit(_fileno(f_));
#else
  // Without fsync a power loss after rename can leave an empty file under the real name.
  if (fsync(fileno(f_)) != 0)
    fail(LCX_ERR_IO, "%s: fsync failed: %s", path_.c_str(), std::strerror(errno));
#endif
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) fail(LCX_ERR_IO, "%s: close failed: %s", path_.c_str(), std::strerror(errno));
  std::error_code ec;
  fs::rename(temp_path_, path_, ec);
  if (ec)
    fail(LCX_ERR_IO, "%s: cannot rename the finished temp file into place: %s", path_.c_str(),
         ec.message().c_str());
  committed_ = true;
}

void write_text_file_atomic(const std::string& path, const std::string& text) {
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

}  // namespace lcx
