// Vectors of N bytes (GCC/clang vector extensions) for the CPU loops: the AVX2 build uses 32 (one
// ymm register), the baseline build 16 (one xmm register), from the same source; float and double
// alike, so the float64 tests run the very loops that float32 runs.
// Included by the per-ISA translation units (cpu/*_baseline.cpp, cpu/*_avx2.cpp) only.
#pragma once

#include <cstring>

// The helpers pass vectors by value between inlined static functions: no ABI is involved.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mmvit {

template <typename T, int N>
struct Simd {
  static constexpr int L = N / sizeof(T);  // lanes
  typedef T V __attribute__((vector_size(N)));
};

}  // namespace mmvit

// Defined inside each ISA namespace (they must be compiled with that build's target), so that
// no inline function with AVX2 code is shared with the baseline build.
#define MMVIT_SIMD_HELPERS                                                              \
  template <typename V, typename T>                                                     \
  static inline V vload(const T* p) {                                                   \
    V v;                                                                                \
    std::memcpy(&v, p, sizeof(V));                                                      \
    return v;                                                                           \
  }                                                                                     \
  template <typename V, typename T>                                                     \
  static inline void vstore(T* p, const V& v) {                                         \
    std::memcpy(p, &v, sizeof(V));                                                      \
  }                                                                                     \
  /* A vector of copies of s: s - 0 is s exactly (0 + s is not, for s = -0), so this */ \
  /* compiles to a plain broadcast. */                                                  \
  template <typename V, typename T>                                                     \
  static inline V vsplat(T s) {                                                         \
    return s - V{};                                                                     \
  }                                                                                     \
  template <typename T, typename V>                                                     \
  static inline T hsum(const V& v) {                                                    \
    T s = 0;                                                                            \
    for (int l = 0; l < int(sizeof(V) / sizeof(T)); ++l) s += v[l];                     \
    return s;                                                                           \
  }
