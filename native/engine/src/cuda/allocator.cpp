#include "allocator.hpp"

#include <cuda_runtime.h>

#include <algorithm>

#include "../core/error.hpp"
#include "cuda_check.hpp"

namespace lcx::cuda {

namespace {
constexpr size_t kAlign = 256;  // cuBLASLt and 16-byte vector loads are happy with this
size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
}  // namespace

DeviceAllocator::DeviceAllocator(bool expandable, int device)
    : expandable_(expandable), device_(device) {
  if (!expandable_) return;
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device_;
  LCX_CU_CHECK(cuMemGetAllocationGranularity(&chunk_, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  if (chunk_ == 0) chunk_ = 2u << 20;
  size_t free_b = 0, total_b = 0;
  LCX_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  // Address space is cheap; twice the device leaves room for holes between live buffers
  // without ever running out of addresses before running out of memory.
  reserved_ = round_up(total_b * 2, chunk_);
  LCX_CU_CHECK(cuMemAddressReserve(&base_, reserved_, chunk_, 0, 0));
  free_[0] = reserved_;
  handle_.assign(reserved_ / chunk_, 0);
  refs_.assign(reserved_ / chunk_, 0);
}

DeviceAllocator::~DeviceAllocator() {
  // Destructors must not throw: report nothing, release what we can.
  cudaDeviceSynchronize();
  if (expandable_) {
    for (size_t c = 0; c < handle_.size(); c++) {
      if (!handle_[c]) continue;
      cuMemUnmap(base_ + c * chunk_, chunk_);
      cuMemRelease(handle_[c]);
    }
    if (base_) cuMemAddressFree(base_, reserved_);
  } else {
    for (auto& kv : classic_live_) cudaFree(kv.first);
    for (auto& kv : classic_cache_) cudaFree(kv.second);
  }
}

void DeviceAllocator::note_peaks() {
  peak_allocated_ = std::max(peak_allocated_, allocated_);
  peak_mapped_ = std::max(peak_mapped_, mapped_);
}

void DeviceAllocator::fail_oom(size_t asked, const char* what) {
  (void)cudaGetLastError();
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  fail(LCX_ERR_OOM,
       "CUDA out of memory allocating %s: asked %zu bytes, free %zu bytes of %zu on the device; "
       "the engine holds %lld bytes (%lld in live buffers). Try a shorter context, a smaller "
       "micro-batch, activation recompute or bf16 master weights.",
       what, asked, free_b, total_b, (long long)mapped_, (long long)allocated_);
}

void* DeviceAllocator::alloc(size_t bytes, const char* what) {
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes == 0) bytes = 1;
  return expandable_ ? alloc_expandable(bytes, what) : alloc_classic(bytes, what);
}

void DeviceAllocator::free(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (expandable_)
    free_expandable(p);
  else
    free_classic(p);
}

// ---- expandable ------------------------------------------------------------------------

void DeviceAllocator::map_chunks(size_t first, size_t last, const char* what, size_t asked) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device_;
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  std::vector<size_t> made;
  for (size_t c = first; c <= last; c++) {
    if (handle_[c]) continue;
    CUmemGenericAllocationHandle h = 0;
    CUresult r = cuMemCreate(&h, chunk_, &prop, 0);
    if (r != CUDA_SUCCESS) {
      for (size_t m : made) unmap_chunk(m);
      if (r == CUDA_ERROR_OUT_OF_MEMORY) fail_oom(asked, what);
      LCX_CU_CHECK(r);
    }
    // Access is granted per chunk: each chunk is its own mapping and may be unmapped alone.
    r = cuMemMap(base_ + c * chunk_, chunk_, 0, h, 0);
    if (r == CUDA_SUCCESS) r = cuMemSetAccess(base_ + c * chunk_, chunk_, &access, 1);
    if (r != CUDA_SUCCESS) {
      cuMemUnmap(base_ + c * chunk_, chunk_);
      cuMemRelease(h);
      for (size_t m : made) unmap_chunk(m);
      if (r == CUDA_ERROR_OUT_OF_MEMORY) fail_oom(asked, what);
      LCX_CU_CHECK(r);
    }
    handle_[c] = h;
    mapped_ += (int64_t)chunk_;
    made.push_back(c);
  }
}

void DeviceAllocator::unmap_chunk(size_t c) {
  LCX_CU_CHECK(cuMemUnmap(base_ + c * chunk_, chunk_));
  LCX_CU_CHECK(cuMemRelease(handle_[c]));
  handle_[c] = 0;
  mapped_ -= (int64_t)chunk_;
}

void* DeviceAllocator::alloc_expandable(size_t bytes, const char* what) {
  const size_t size = round_up(bytes, kAlign);
  // Buffers of a chunk or more start on a chunk boundary so that freeing them releases whole
  // chunks; small ones pack into partly used chunks.
  const size_t align = size >= chunk_ ? chunk_ : kAlign;
  // Best fit (smallest range that holds it, lowest address on ties) keeps the range compact.
  size_t best_off = SIZE_MAX, best_start = 0, best_waste = SIZE_MAX;
  for (auto& [off, len] : free_) {
    const size_t start = round_up(off, align);
    if (start + size > off + len) continue;
    const size_t waste = len - size;
    if (waste < best_waste) {
      best_waste = waste;
      best_off = off;
      best_start = start;
    }
  }
  if (best_off == SIZE_MAX) fail_oom(bytes, what);  // address range exhausted
  const size_t len = free_[best_off];
  const size_t first = best_start / chunk_, last = (best_start + size - 1) / chunk_;
  map_chunks(first, last, what, bytes);  // throws before touching the free list
  free_.erase(best_off);
  if (best_start > best_off) free_[best_off] = best_start - best_off;
  if (best_start + size < best_off + len) free_[best_start + size] = best_off + len - best_start - size;
  live_[best_start] = size;
  for (size_t c = first; c <= last; c++) refs_[c]++;
  allocated_ += (int64_t)size;
  note_peaks();
  return reinterpret_cast<void*>(base_ + best_start);
}

void DeviceAllocator::free_expandable(void* p) {
  const size_t off = reinterpret_cast<CUdeviceptr>(p) - base_;
  auto it = live_.find(off);
  if (it == live_.end()) fail(LCX_ERR_INTERNAL, "device allocator: free of unknown pointer %p", p);
  const size_t size = it->second;
  live_.erase(it);
  allocated_ -= (int64_t)size;
  const size_t first = off / chunk_, last = (off + size - 1) / chunk_;
  bool synced = false;
  for (size_t c = first; c <= last; c++) {
    if (--refs_[c] == 0) {
      // Work queued earlier may still read this memory: unmapping under a running kernel
      // would fault it. Frees happen at reshape points, so one sync here is cheap.
      if (!synced) {
        LCX_CUDA_CHECK(cudaDeviceSynchronize());
        synced = true;
      }
      unmap_chunk(c);
    }
  }
  // Return the range to the free list, merged with its neighbours.
  size_t start = off, len = size;
  auto next = free_.lower_bound(off);
  if (next != free_.end() && next->first == off + size) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = len;
}

// ---- classic ---------------------------------------------------------------------------

void* DeviceAllocator::alloc_classic(size_t bytes, const char* what) {
  const size_t size = round_up(bytes, 512);
  // Reuse the smallest cached block that fits without wasting more than half of it.
  auto it = classic_cache_.lower_bound(size);
  if (it != classic_cache_.end() && it->first <= 2 * size) {
    void* p = it->second;
    const size_t block = it->first;
    classic_cache_.erase(it);
    classic_live_[p] = block;
    allocated_ += (int64_t)block;
    note_peaks();
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    // Like a framework's caching allocator: empty the cache and try once more.
    for (auto& kv : classic_cache_) {
      cudaFree(kv.second);
      mapped_ -= (int64_t)kv.first;
    }
    classic_cache_.clear();
    e = cudaMalloc(&p, size);
  }
  if (e == cudaErrorMemoryAllocation) fail_oom(bytes, what);
  LCX_CUDA_CHECK(e);
  classic_live_[p] = size;
  allocated_ += (int64_t)size;
  mapped_ += (int64_t)size;
  note_peaks();
  return p;
}

void DeviceAllocator::free_classic(void* p) {
  auto it = classic_live_.find(p);
  if (it == classic_live_.end())
    fail(LCX_ERR_INTERNAL, "device allocator: free of unknown pointer %p", p);
  allocated_ -= (int64_t)it->second;
  classic_cache_.emplace(it->second, p);  // stream-ordered reuse is safe: one stream
  classic_live_.erase(it);
}

void DeviceAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  if (expandable_) return;
  LCX_CUDA_CHECK(cudaDeviceSynchronize());
  for (auto& kv : classic_cache_) {
    LCX_CUDA_CHECK(cudaFree(kv.second));
    mapped_ -= (int64_t)kv.first;
  }
  classic_cache_.clear();
}

lcx_memory_stats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  lcx_memory_stats s{};
  s.allocated_bytes = allocated_;
  s.mapped_bytes = mapped_;
  s.peak_allocated_bytes = peak_allocated_;
  s.peak_mapped_bytes = peak_mapped_;
  s.reserved_va_bytes = expandable_ ? (int64_t)reserved_ : mapped_;
  s.fragmentation = mapped_ > 0 ? 1.0 - (double)allocated_ / (double)mapped_ : 0.0;
  s.expandable = expandable_ ? 1 : 0;
  return s;
}

void DeviceAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_allocated_ = allocated_;
  peak_mapped_ = mapped_;
}

}  // namespace lcx::cuda
