// The per-element work of the ELSA aggregation CUDA kernels.
//
//   out[b,c,y,x] = sum_t v[b,c,y+(ty-p)d,x+(tx-p)d] * (attn[b,g,t,y,x] * M[c,t] + Bg[c,t])
//
// Every function computes one output element (or, for the ghost gradients, a strided part of one
// reduction) from plain pointers. They are MMVIT_HOST_DEVICE so that the CUDA kernels call them
// per thread and the tests can run the very same code on the host, looping over the elements
// (tests/test_cuda_kernels_on_host.py), which checks the index math without a GPU.
// T is the storage type (float, double, c10::Half, c10::BFloat16), A the accumulation type
// (float for the 16-bit types). Linear indices are 64-bit.
#pragma once

#include <cstdint>

#include "../window_index.h"

namespace mmvit {

struct ElsaShape {
  int64_t B, C, G, H, W;  // v [B, C, H, W], attn [B, G, k*k, H, W]
  int k, dil;
  MMVIT_HOST_DEVICE int64_t HW() const { return H * W; }
};

template <typename T, typename A>
MMVIT_HOST_DEVICE A elsa_filter(const T* attn_t, const T* m, const T* bg, int64_t ct) {
  A f = static_cast<A>(*attn_t);
  if (m) f *= static_cast<A>(m[ct]);
  if (bg) f += static_cast<A>(bg[ct]);
  return f;
}

// out element idx of [B, C, H, W].
template <typename T, typename A>
MMVIT_HOST_DEVICE void elsa_forward_element(int64_t idx, const ElsaShape& s, const T* v,
                                            const T* attn, const T* m, const T* bg, T* out) {
  const int64_t HW = s.HW(), K = int64_t(s.k) * s.k;
  const int64_t x = idx % s.W, y = (idx / s.W) % s.H, c = (idx / HW) % s.C, b = idx / (HW * s.C);
  const int64_t g = c / (s.C / s.G);
  const T* vp = v + (b * s.C + c) * HW;
  const T* ap = attn + (b * s.G + g) * K * HW + y * s.W + x;
  const int p = s.k / 2;
  A acc = 0;
  for (int ty = 0; ty < s.k; ++ty) {
    const int64_t iy = y + int64_t(ty - p) * s.dil;
    if (iy < 0 || iy >= s.H) continue;
    for (int tx = 0; tx < s.k; ++tx) {
      const int64_t ix = x + int64_t(tx - p) * s.dil;
      if (ix < 0 || ix >= s.W) continue;
      const int64_t t = ty * s.k + tx;
      acc += static_cast<A>(vp[iy * s.W + ix]) * elsa_filter<T, A>(ap + t * HW, m, bg, c * K + t);
    }
  }
  out[idx] = static_cast<T>(acc);
}

// grad_v element idx of [B, C, H, W]: the transposed filter, gathered from the outputs whose
// window reads this input.
template <typename T, typename A>
MMVIT_HOST_DEVICE void elsa_grad_v_element(int64_t idx, const ElsaShape& s, const T* dy,
                                           const T* attn, const T* m, const T* bg, T* dv) {
  const int64_t HW = s.HW(), K = int64_t(s.k) * s.k;
  const int64_t x = idx % s.W, y = (idx / s.W) % s.H, c = (idx / HW) % s.C, b = idx / (HW * s.C);
  const int64_t g = c / (s.C / s.G);
  const T* dyp = dy + (b * s.C + c) * HW;
  const T* ap = attn + (b * s.G + g) * K * HW;
  const int p = s.k / 2;
  A acc = 0;
  for (int ty = 0; ty < s.k; ++ty) {
    const int64_t oy = y - int64_t(ty - p) * s.dil;
    if (oy < 0 || oy >= s.H) continue;
    for (int tx = 0; tx < s.k; ++tx) {
      const int64_t ox = x - int64_t(tx - p) * s.dil;
      if (ox < 0 || ox >= s.W) continue;
      const int64_t t = ty * s.k + tx, o = oy * s.W + ox;
      acc += static_cast<A>(dyp[o]) * elsa_filter<T, A>(ap + t * HW + o, m, bg, c * K + t);
    }
  }
  dv[idx] = static_cast<T>(acc);
}

// grad_attn element idx of [B, G, k*k, H, W]: sum over the head's channels of dy * v_t * M.
template <typename T, typename A>
MMVIT_HOST_DEVICE void elsa_grad_attn_element(int64_t idx, const ElsaShape& s, const T* dy,
                                              const T* v, const T* m, T* da) {
  const int64_t HW = s.HW(), K = int64_t(s.k) * s.k;
  const int64_t x = idx % s.W, y = (idx / s.W) % s.H, t = (idx / HW) % K;
  const int64_t g = (idx / (HW * K)) % s.G, b = idx / (HW * K * s.G);
  const int p = s.k / 2;
  const int64_t iy = y + (t / s.k - p) * int64_t(s.dil), ix = x + (t % s.k - p) * int64_t(s.dil);
  A acc = 0;
  if (iy >= 0 && iy < s.H && ix >= 0 && ix < s.W) {
    const int64_t cg = s.C / s.G;
    for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
      const int64_t plane = (b * s.C + c) * HW;
      A term = static_cast<A>(dy[plane + y * s.W + x]) * static_cast<A>(v[plane + iy * s.W + ix]);
      if (m) term *= static_cast<A>(m[c * K + t]);
      acc += term;
    }
  }
  da[idx] = static_cast<T>(acc);
}

// Part of the ghost gradients of (channel c, tap t): over the valid outputs n = first, first +
// step, ... of the B * rows * cols outputs whose tap input lies inside the map,
//   gm += dy * v_t * attn_t,  gb += dy * v_t.
template <typename T, typename A>
MMVIT_HOST_DEVICE void elsa_grad_ghost_part(int64_t c, int64_t t, int64_t first, int64_t step,
                                            const ElsaShape& s, const T* dy, const T* v,
                                            const T* attn, A* gm, A* gb) {
  const int64_t HW = s.HW(), K = int64_t(s.k) * s.k;
  const int p = s.k / 2;
  const int oy = (int(t) / s.k - p) * s.dil, ox = (int(t) % s.k - p) * s.dil;
  const int64_t y0 = valid_begin(oy), y1 = valid_end(oy, int(s.H));
  const int64_t x0 = valid_begin(ox), x1 = valid_end(ox, int(s.W));
  *gm = 0;
  *gb = 0;
  if (y1 <= y0 || x1 <= x0) return;
  const int64_t rows = y1 - y0, cols = x1 - x0, n_total = s.B * rows * cols;
  const int64_t g = c / (s.C / s.G);
  for (int64_t n = first; n < n_total; n += step) {
    const int64_t b = n / (rows * cols), y = y0 + (n / cols) % rows, x = x0 + n % cols;
    const int64_t plane = (b * s.C + c) * HW;
    const A prod = static_cast<A>(dy[plane + y * s.W + x]) *
                   static_cast<A>(v[plane + (y + oy) * s.W + x + ox]);
    *gb += prod;
    *gm += prod * static_cast<A>(attn[((b * s.G + g) * K + t) * HW + y * s.W + x]);
  }
}

}  // namespace mmvit
