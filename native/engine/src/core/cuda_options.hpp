// Process-wide CUDA options set through the C API before a model is created (defined in
// api/api.cpp so the CPU-only build has them too).
#pragma once

namespace lcx {

// 1: expandable segments (VMM), 0: classic allocator; read when a CUDA backend is created.
int cuda_allocator_expandable();

}  // namespace lcx
