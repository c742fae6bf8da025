// Host buffers that report what they hold, so memory_stats() can say how many bytes the CPU
// backend (and the KV caches it hands out) owns, and so that an allocation failure becomes
// LCX_ERR_OOM with the size asked instead of std::bad_alloc escaping into the app.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "../core/error.hpp"

namespace lcx::cpu {

struct MemoryCounter {
  std::atomic<int64_t> allocated{0};
  std::atomic<int64_t> peak{0};

  void add(int64_t bytes) {
    const int64_t now = allocated.fetch_add(bytes) + bytes;
    int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
  void sub(int64_t bytes) { allocated.fetch_sub(bytes); }
  void reset_peak() { peak.store(allocated.load()); }
};

// A zero-initialised array of T whose size is charged to a MemoryCounter. `what` names the
// buffer in the out-of-memory message.
template <class T>
class HostBuffer {
 public:
  HostBuffer(std::shared_ptr<MemoryCounter> counter, const char* what)
      : counter_(std::move(counter)), what_(what) {}
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer() { release(); }

  // Drops the old contents and holds n zeroed elements.
  void reset(size_t n) {
    release();
    if (n == 0) return;
    try {
      std::vector<T> fresh(n);
      data_.swap(fresh);
    } catch (const std::bad_alloc&) {
      fail(LCX_ERR_OOM, "CPU backend: out of host memory allocating %zu bytes for %s",
           n * sizeof(T), what_);
    } catch (const std::length_error&) {
      fail(LCX_ERR_OOM, "CPU backend: cannot allocate %zu elements for %s", n, what_);
    }
    counter_->add((int64_t)(n * sizeof(T)));
  }
  void release() {
    if (data_.empty()) return;
    counter_->sub((int64_t)(data_.size() * sizeof(T)));
    std::vector<T>().swap(data_);
  }
  void zero() { std::fill(data_.begin(), data_.end(), T{}); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

 private:
  std::shared_ptr<MemoryCounter> counter_;
  const char* what_;
  std::vector<T> data_;
};

}  // namespace lcx::cpu
