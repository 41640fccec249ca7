// ELSA aggregation on the CPU: the geometry the loops share, and the loops' declarations for
// each instruction-set build (see cpu_isa.h).
#pragma once

#include <cstdint>

namespace mmvit {

// One tap t = ty * k + tx: its input offset and the outputs whose tap input is inside the map
// (a rectangle, so the plane loops over it need no bounds checks).
struct ElsaTap {
  int oy, ox;
  int y0, y1, x0, x1;
};

// v, dy, out [B, C, H, W]; attn [B, G, k*k, H, W]; ghosts [C, k*k]; taps[k*k].
struct ElsaGeometry {
  int B, C, G, H, W, k, dil;
  const ElsaTap* taps;
  int cg() const { return C / G; }
  int64_t plane() const { return int64_t(H) * W; }
};

// The three loops of the two entry points (m, bg: the ghosts, nullptr when absent):
//   elsa_forward      out = sum_t shift_t(v) * (attn_t * m_t + bg_t)
//   elsa_backward_v   dv (the transposed filter) and the per-sample ghost-gradient sums
//                     gm[b,c,t] = sum_o dy*v_t*a_t, gb[b,c,t] = sum_o dy*v_t (float64);
//                     each of dv, gm, gb may be nullptr (not computed)
//   elsa_grad_attn    da[b,g,t] = sum_{c in head g} dy_c * shift_t(v_c) * m_c[t]
// All are parallel and write every output element exactly once.
#define MMVIT_DECLARE_ELSA_LOOPS(ns)                                                          \
  namespace ns {                                                                            \
  template <typename T>                                                                     \
  void elsa_forward(const ElsaGeometry& g, const T* v, const T* a, const T* m, const T* bg, \
                    T* out);                                                                \
  template <typename T>                                                                     \
  void elsa_backward_v(const ElsaGeometry& g, const T* dy, const T* v, const T* a,          \
                       const T* m, const T* bg, T* dv, double* gm, double* gb);             \
  template <typename T>                                                                     \
  void elsa_grad_attn(const ElsaGeometry& g, const T* dy, const T* v, const T* m, T* da);   \
  }

MMVIT_DECLARE_ELSA_LOOPS(cpu_baseline)
MMVIT_DECLARE_ELSA_LOOPS(cpu_avx2)

}  // namespace mmvit
