// Four-float vectors for the inner loops GCC does not vectorise on its own: dot products (a
// single running float sum cannot be reordered without -ffast-math) and register tiles whose
// lanes it would otherwise lay out along the wrong loop. GCC/Clang vector extensions: SSE on
// x86, NEON on ARM, no intrinsics.
#pragma once
#include <cstring>

namespace lcx::cpu {

typedef float f4 __attribute__((vector_size(16)));

inline f4 load4(const float* p) {
  f4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, f4 v) { std::memcpy(p, &v, sizeof v); }

// sum_i a[i] b[i] with four interleaved partial sums, combined as (s0 + s1) + (s2 + s3), then
// the tail. A fixed order: every caller (forward, decoder, backward) gets the same bits.
inline float dot(const float* a, const float* b, int n) {
  f4 acc = {};
  int i = 0;
  for (; i + 4 <= n; i += 4) acc += load4(a + i) * load4(b + i);
  float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

}  // namespace lcx::cpu
