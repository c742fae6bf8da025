// A device buffer owned through the backend's DeviceAllocator (so every byte shows up in
// lcx_memory_stats). Not copyable; grow() keeps the old buffer when it is big enough.
#pragma once
#include <cstddef>

#include "allocator.hpp"

namespace lcx::cuda {

class DBuf {
 public:
  DBuf() = default;
  DBuf(const DBuf&) = delete;
  DBuf& operator=(const DBuf&) = delete;
  DBuf(DBuf&& o) noexcept : alloc_(o.alloc_), ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  ~DBuf() {
    try {
      release();
    } catch (...) {
      // A failing free during teardown has nowhere to go; the allocator dies with the backend.
    }
  }

  void reset(DeviceAllocator& a, size_t bytes, const char* what) {
    release();
    alloc_ = &a;
    ptr_ = a.alloc(bytes, what);
    bytes_ = bytes;
  }
  // Grows to at least `bytes` (with headroom when `slack`, for small per-step buffers).
  void grow(DeviceAllocator& a, size_t bytes, const char* what, bool slack = false) {
    if (ptr_ && bytes <= bytes_) return;
    reset(a, slack ? bytes + bytes / 2 + 256 : bytes, what);
  }
  void release() {
    if (ptr_) {
      alloc_->free(ptr_);
      ptr_ = nullptr;
      bytes_ = 0;
    }
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  explicit operator bool() const { return ptr_ != nullptr; }

 private:
  DeviceAllocator* alloc_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace lcx::cuda
