// Device memory for the CUDA backend.
//
// Two modes (lcx_cuda_set_allocator):
// - expandable (default): one large virtual address range reserved up front
//   (cuMemAddressReserve); physical memory is created and mapped into it in chunks of the
//   device's allocation granularity (2 MiB on current GPUs) only where live allocations are,
//   and unmapped/released as soon as no live allocation touches a chunk. A stage change
//   (2k -> 4k -> 8k tokens) frees the old activations and maps the new ones in the same range, so
//   memory the engine holds tracks what it uses instead of what it once used.
// - classic: cudaMalloc with a cache of freed blocks reused by size (what a framework's default
//   caching allocator does), kept for comparison: blocks of an old shape stay cached and count
//   as mapped until they are reused or memory runs out.
//
// Out of memory is never fatal: alloc() throws lcx::Error(LCX_ERR_OOM) naming the buffer, the
// bytes asked and the bytes the device has free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include <cuda.h>

#include "longctx.h"

namespace lcx::cuda {

class DeviceAllocator {
 public:
  DeviceAllocator(bool expandable, int device);
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  void* alloc(size_t bytes, const char* what);
  void free(void* p);  // nullptr is fine
  // Classic mode: give cached blocks back to the driver. Expandable: nothing is cached.
  void release_cached();

  lcx_memory_stats stats() const;
  void reset_peak();
  bool expandable() const { return expandable_; }
  size_t chunk_bytes() const { return chunk_; }

 private:
  void* alloc_expandable(size_t bytes, const char* what);
  void free_expandable(void* p);
  void* alloc_classic(size_t bytes, const char* what);
  void free_classic(void* p);
  void map_chunks(size_t first, size_t last, const char* what, size_t asked);
  void unmap_chunk(size_t c);
  void note_peaks();
  [[noreturn]] void fail_oom(size_t asked, const char* what);

  bool expandable_;
  int device_;
  mutable std::mutex mu_;

  // expandable
  CUdeviceptr base_ = 0;
  size_t reserved_ = 0;
  size_t chunk_ = 0;
  std::map<size_t, size_t> free_;   // offset -> size of free address ranges
  std::map<size_t, size_t> live_;   // offset -> size of live allocations
  std::vector<CUmemGenericAllocationHandle> handle_;  // per chunk, 0 = unmapped
  std::vector<uint32_t> refs_;                         // live allocations touching the chunk

  // classic
  std::map<void*, size_t> classic_live_;
  std::multimap<size_t, void*> classic_cache_;  // size -> block

  int64_t allocated_ = 0, mapped_ = 0, peak_allocated_ = 0, peak_mapped_ = 0;
};

}  // namespace lcx::cuda
