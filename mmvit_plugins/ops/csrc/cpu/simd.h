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

// The integer vector type of a shuffle mask for vectors of T (same lane count and width).
template <typename T, int N>
struct SimdIndex;
template <int N>
struct SimdIndex<float, N> {
  typedef int I __attribute__((vector_size(N)));
};
template <int N>
struct SimdIndex<double, N> {
  typedef long long I __attribute__((vector_size(N)));
};

}  // namespace mmvit

// A two-input shuffle of vectors a, b of type V (lane i < L of a, L + i of b) with constant lanes.
#if defined(__clang__)
#define MMVIT_SHUFFLE2(V, T, a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define MMVIT_SHUFFLE2(V, T, a, b, ...) \
  __builtin_shuffle(a, b, typename SimdIndex<T, sizeof(V)>::I{__VA_ARGS__})
#endif

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
  /* Lanes i < L/2: a[2i] + a[2i+1]; lanes L/2 + i: b[2i] + b[2i+1]. */                \
  template <typename T, typename V>                                                     \
  static inline V pair_sums(const V& a, const V& b) {                                   \
    constexpr int L = sizeof(V) / sizeof(T);                                            \
    if constexpr (L == 8)                                                               \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2, 4, 6, 8, 10, 12, 14) +                    \
             MMVIT_SHUFFLE2(V, T, a, b, 1, 3, 5, 7, 9, 11, 13, 15);                     \
    else if constexpr (L == 4)                                                          \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2, 4, 6) + MMVIT_SHUFFLE2(V, T, a, b, 1, 3, 5, 7); \
    else                                                                                \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2) + MMVIT_SHUFFLE2(V, T, a, b, 1, 3);       \
  }                                                                                     \
  /* The L vectors v[0 .. L) -> one vector whose lane l is the sum of v[l]'s lanes (a   */ \
  /* tree of pair_sums: L - 1 shuffled adds instead of L horizontal sums). v is spent. */ \
  template <typename T, typename V>                                                     \
  static inline V transpose_sums(V* v) {                                                \
    constexpr int L = sizeof(V) / sizeof(T);                                            \
    for (int n = L; n > 1; n /= 2)                                                      \
      for (int i = 0; i < n / 2; ++i) v[i] = pair_sums<T>(v[2 * i], v[2 * i + 1]);      \
    return v[0];                                                                        \
  }
