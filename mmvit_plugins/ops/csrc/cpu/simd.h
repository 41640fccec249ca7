// Vectors of N bytes (GCC/clang vector extensions) for the CPU loops: the AVX2 build uses 32 (one
// ymm register), the baseline build 16 (one xmm register), from the same source; float and double
// alike, so the float64 tests run the very loops that float32 runs.
// Included by the per-ISA translation units (cpu/*_baseline.cpp, cpu/*_avx2.cpp) only.
#pragma once

#include <cstring>

// For the small loops a kernel's inner loop calls: inlined even where GCC's heuristics would
// not (a call per window row recomputes the row's addresses and spills its accumulators).
#define MMVIT_INLINE static inline __attribute__((always_inline))

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
  /* 16-byte vectors: lanes i < L/2: a[2i] + a[2i+1]; lanes L/2 + i: b[2i] + b[2i+1]. */    \
  /* 32-byte vectors: the same within each 16-byte half (in-lane shuffles: vshufps,     */ \
  /* vunpck*pd), half h of the result from half h of a and b.                           */ \
  template <typename T, typename V>                                                     \
  static inline V pair_sums(const V& a, const V& b) {                                   \
    constexpr int L = sizeof(V) / sizeof(T);                                            \
    if constexpr (sizeof(V) == 32 && L == 8)                                            \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2, 8, 10, 4, 6, 12, 14) +                    \
             MMVIT_SHUFFLE2(V, T, a, b, 1, 3, 9, 11, 5, 7, 13, 15);                     \
    else if constexpr (sizeof(V) == 32 && L == 4)                                       \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 4, 2, 6) + MMVIT_SHUFFLE2(V, T, a, b, 1, 5, 3, 7); \
    else if constexpr (L == 4)                                                          \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2, 4, 6) + MMVIT_SHUFFLE2(V, T, a, b, 1, 3, 5, 7); \
    else                                                                                \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 2) + MMVIT_SHUFFLE2(V, T, a, b, 1, 3);       \
  }                                                                                     \
  /* 32-byte vectors: half 0 of a + half 1 of a, then the same of b (vperm2f128). */       \
  template <typename T, typename V>                                                     \
  static inline V half_sums(const V& a, const V& b) {                                   \
    constexpr int L = sizeof(V) / sizeof(T);                                            \
    if constexpr (L == 8)                                                               \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 1, 2, 3, 8, 9, 10, 11) +                     \
             MMVIT_SHUFFLE2(V, T, a, b, 4, 5, 6, 7, 12, 13, 14, 15);                    \
    else                                                                                \
      return MMVIT_SHUFFLE2(V, T, a, b, 0, 1, 4, 5) + MMVIT_SHUFFLE2(V, T, a, b, 2, 3, 6, 7); \
  }                                                                                     \
  /* The L vectors v[0 .. L) -> one vector whose lane l is the sum of v[l]'s lanes (a   */ \
  /* tree of pair_sums: L - 1 shuffled adds instead of L horizontal sums). v is spent.  */ \
  /* 32-byte vectors: the tree runs inside the 16-byte halves (in-lane shuffles) down   */ \
  /* to two vectors, [v0..v(L/2-1) | same] and [v(L/2).. | same] as half sums; one      */ \
  /* half_sums adds the halves (cross-half shuffles: once per result, not per level).    */ \
  template <typename T, typename V>                                                     \
  static inline V transpose_sums(V* v) {                                                \
    constexpr int L = sizeof(V) / sizeof(T);                                            \
    if constexpr (sizeof(V) == 32) {                                                    \
      for (int n = L; n > 2; n /= 2)                                                    \
        for (int i = 0; i < n / 2; ++i) v[i] = pair_sums<T>(v[2 * i], v[2 * i + 1]);    \
      return half_sums<T>(v[0], v[1]);                                                  \
    } else {                                                                            \
      for (int n = L; n > 1; n /= 2)                                                    \
        for (int i = 0; i < n / 2; ++i) v[i] = pair_sums<T>(v[2 * i], v[2 * i + 1]);    \
      return v[0];                                                                      \
    }                                                                                   \
  }
