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

// Rows per work item of the loops; the ghost sums are per (sample, block of rows).
constexpr int kElsaRows = 8;
inline int elsa_row_blocks(int H) { return (H + kElsaRows - 1) / kElsaRows; }

// The three loops of the two entry points (m, bg: the ghosts, nullptr when absent):
//   elsa_forward      out = sum_t shift_t(v) * (attn_t * m_t + bg_t)
//   elsa_grad_v       dv, the transposed filter: dv = sum_t shift_-t(dy * (attn_t * m_t + bg_t))
//   elsa_grad_attn    da[b,g,t] = sum_{c in head g} dy_c * shift_t(v_c) * m_c[t] and the
//                     ghost-gradient sums per sample and block of kElsaRows output rows
//                     gm[b,blk,c,t] = sum_o dy*v_t*a_t, gb[b,blk,c,t] = sum_o dy*v_t (float64,
//                     [B, elsa_row_blocks(H), C, k*k]); each of da, gm, gb may be nullptr
// All are parallel and write every output element exactly once.
#define MMVIT_DECLARE_ELSA_LOOPS(ns)                                                          \
  namespace ns {                                                                            \
  template <typename T>                                                                     \
  void elsa_forward(const ElsaGeometry& g, const T* v, const T* a, const T* m, const T* bg, \
                    T* out);                                                                \
  template <typename T>                                                                     \
  void elsa_grad_v(const ElsaGeometry& g, const T* dy, const T* a, const T* m, const T* bg, \
                   T* dv);                                                                  \
  template <typename T>                                                                     \
  void elsa_grad_attn(const ElsaGeometry& g, const T* dy, const T* v, const T* a,           \
                      const T* m, T* da, double* gm, double* gb);                           \
  }

MMVIT_DECLARE_ELSA_LOOPS(cpu_baseline)
MMVIT_DECLARE_ELSA_LOOPS(cpu_avx2)

}  // namespace mmvit
