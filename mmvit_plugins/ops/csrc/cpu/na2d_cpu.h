// Neighbourhood attention 2-D on the CPU: the geometry the loops share, and the loops'
// declarations for each instruction-set build (see cpu_isa.h).
#pragma once

#include <cstdint>
#include <utility>

#include "../window_index.h"

namespace mmvit {

// One axis: the forward window of each position, and its inverse in CSR form (for key position
// j, the (query position, tap) pairs inv[inv_begin[j]] .. inv[inv_begin[j + 1] - 1]).
struct NaAxisView {
  const AxisWindow* win;
  const int* inv_begin;
  const std::pair<int, int>* inv;
};

struct NaGeometry {
  int B, H, W, heads, k, dil;
  NaAxisView ty, tx;
  int64_t pixel(int b, int y, int x) const { return (int64_t(b) * H + y) * W + x; }
};

// The three loops of the six unfused entry points (maps heads-last [B, H, W, heads, X]):
//   na_dot          out[i,h,t] = <a[i,h,:], b[n(i,t),h,:]> (+ rpb[h, ry, rx])
//                                                               qk forward, av grad_attn
//   na_sum          out[i,h,:] = sum_t w[i,h,t] b[n(i,t),h,:]   av forward, qk grad_q
//   na_inverse_sum  out[j,h,:] = sum_{(i,t): n(i,t)=j} w[i,h,t] a[i,h,:]
//                                                               qk grad_k, av grad_v
//   na_attend       out[i,h,:] = sum_t p[t] v[n(i,t),h,:], p = softmax_t(scale <q, k_t> + rpb),
//                   lse[i,h] = log sum_t exp(logit_t) (when lse is given)   fused forward
// All are parallel over (b, y) rows and write every output element exactly once.
#define MMVIT_DECLARE_NA_LOOPS(ns)                                                          \
  namespace ns {                                                                          \
  template <typename T>                                                                   \
  void na_dot(const NaGeometry& g, const T* a, const T* b, const T* rpb, T* out, int d); \
  template <typename T>                                                                   \
  void na_sum(const NaGeometry& g, const T* w, const T* b, T* out, int d);                \
  template <typename T>                                                                   \
  void na_inverse_sum(const NaGeometry& g, const T* w, const T* a, T* out, int d);        \
  template <typename T>                                                                   \
  void na_attend(const NaGeometry& g, const T* q, const T* k, const T* v, const T* rpb,    \
                 T scale, T* out, T* lse, int d);                                         \
  }

MMVIT_DECLARE_NA_LOOPS(cpu_baseline)
MMVIT_DECLARE_NA_LOOPS(cpu_avx2)

}  // namespace mmvit
