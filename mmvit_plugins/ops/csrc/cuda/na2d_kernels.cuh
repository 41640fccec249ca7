// The per-element work of the neighbourhood-attention CUDA kernels (NATTEN semantics: clamped
// windows; heads-last [B, H, W, heads, X]; tap t = my * k + mx).
//
//   dot element      out[i,h,t] = <a[i,h,:], b[n(i,t),h,:]> (+ rpb)  qk forward, av grad_attn
//   sum element      out[i,h,c] = sum_t w[i,h,t] b[n(i,t),h,c]        av forward, qk grad_q
//   inverse element  out[j,h,c] = sum_{(i,t): n(i,t)=j} w[i,h,t] a[i,h,c]
//                                                                      qk grad_k, av grad_v
//   rpb part         a strided part of grad_rpb[h,ry,rx] = sum of grad_attn at that offset
//
// The inverse element gathers (no atomics): a query's window always holds the query itself, so
// the queries whose window holds key j lie within k - 1 members of j on each axis; each of those
// 2k - 1 candidates is tested. MMVIT_HOST_DEVICE, so that the tests run these on the host
// (tests/test_cuda_kernels_on_host.py). T storage type, A accumulation type; 64-bit indices.
#pragma once

#include <cstdint>

#include "../window_index.h"

namespace mmvit {

struct NaShape {
  int64_t B, H, W, heads, d;  // maps [B, H, W, heads, d]; attn [B, H, W, heads, k*k]
  int k, dil;
};

// The tap of key position j (along one axis) in the window of query position i, or -1.
MMVIT_HOST_DEVICE int axis_tap(int i, int j, int size, int k, int dil) {
  if ((i - j) % dil != 0) return -1;
  const AxisWindow w = axis_window(i, size, k, dil);
  const int off = j - w.start;
  if (off < 0 || off % dil != 0 || off / dil >= k) return -1;
  return off / dil;
}

template <typename T, typename A>
MMVIT_HOST_DEVICE void na_dot_element(int64_t idx, const NaShape& s, const T* a, const T* b,
                                      const T* rpb, T* out) {
  const int64_t K = int64_t(s.k) * s.k;
  const int64_t t = idx % K, h = (idx / K) % s.heads, pix = idx / (K * s.heads);
  const int64_t x = pix % s.W, y = (pix / s.W) % s.H, bi = pix / (s.W * s.H);
  const AxisWindow wy = axis_window(int(y), int(s.H), s.k, s.dil);
  const AxisWindow wx = axis_window(int(x), int(s.W), s.k, s.dil);
  const int my = int(t) / s.k, mx = int(t) % s.k;
  const int64_t j = (bi * s.H + wy.start + int64_t(my) * s.dil) * s.W + wx.start +
                    int64_t(mx) * s.dil;
  const T* ap = a + (pix * s.heads + h) * s.d;
  const T* bp = b + (j * s.heads + h) * s.d;
  A acc = 0;
  for (int64_t c = 0; c < s.d; ++c) acc += static_cast<A>(ap[c]) * static_cast<A>(bp[c]);
  if (rpb) {
    const int64_t R = 2 * s.k - 1;
    acc += static_cast<A>(rpb[(h * R + wy.rpb_off + my) * R + wx.rpb_off + mx]);
  }
  out[idx] = static_cast<T>(acc);
}

template <typename T, typename A>
MMVIT_HOST_DEVICE void na_sum_element(int64_t idx, const NaShape& s, const T* w, const T* b,
                                      T* out) {
  const int64_t K = int64_t(s.k) * s.k;
  const int64_t c = idx % s.d, h = (idx / s.d) % s.heads, pix = idx / (s.d * s.heads);
  const int64_t x = pix % s.W, y = (pix / s.W) % s.H, bi = pix / (s.W * s.H);
  const AxisWindow wy = axis_window(int(y), int(s.H), s.k, s.dil);
  const AxisWindow wx = axis_window(int(x), int(s.W), s.k, s.dil);
  const T* wp = w + (pix * s.heads + h) * K;
  A acc = 0;
  for (int my = 0; my < s.k; ++my) {
    const int64_t row = (bi * s.H + wy.start + int64_t(my) * s.dil) * s.W + wx.start;
    for (int mx = 0; mx < s.k; ++mx) {
      const int64_t j = row + int64_t(mx) * s.dil;
      acc += static_cast<A>(wp[my * s.k + mx]) *
             static_cast<A>(b[(j * s.heads + h) * s.d + c]);
    }
  }
  out[idx] = static_cast<T>(acc);
}

template <typename T, typename A>
MMVIT_HOST_DEVICE void na_inverse_element(int64_t idx, const NaShape& s, const T* w, const T* a,
                                          T* out) {
  const int64_t K = int64_t(s.k) * s.k;
  const int64_t c = idx % s.d, h = (idx / s.d) % s.heads, pix = idx / (s.d * s.heads);
  const int jx = int(pix % s.W), jy = int((pix / s.W) % s.H);
  const int64_t bi = pix / (s.W * s.H);
  const int span = (s.k - 1) * s.dil;
  A acc = 0;
  for (int qy = jy - span; qy <= jy + span; qy += s.dil) {
    if (qy < 0 || qy >= s.H) continue;
    const int my = axis_tap(qy, jy, int(s.H), s.k, s.dil);
    if (my < 0) continue;
    for (int qx = jx - span; qx <= jx + span; qx += s.dil) {
      if (qx < 0 || qx >= s.W) continue;
      const int mx = axis_tap(qx, jx, int(s.W), s.k, s.dil);
      if (mx < 0) continue;
      const int64_t i = (bi * s.H + qy) * s.W + qx;
      acc += static_cast<A>(w[(i * s.heads + h) * K + my * s.k + mx]) *
             static_cast<A>(a[(i * s.heads + h) * s.d + c]);
    }
  }
  out[idx] = static_cast<T>(acc);
}

// Part of grad_rpb[h, ry, rx] (ry, rx in 0 .. 2k-2): over the pixels first, first + step, ...
template <typename T, typename A>
MMVIT_HOST_DEVICE A na_rpb_grad_part(int64_t h, int ry, int rx, int64_t first, int64_t step,
                                     const NaShape& s, const T* grad_attn) {
  const int64_t K = int64_t(s.k) * s.k, n = s.B * s.H * s.W;
  A acc = 0;
  for (int64_t pix = first; pix < n; pix += step) {
    const int x = int(pix % s.W), y = int((pix / s.W) % s.H);
    const int my = ry - axis_window(y, int(s.H), s.k, s.dil).rpb_off;
    const int mx = rx - axis_window(x, int(s.W), s.k, s.dil).rpb_off;
    if (my < 0 || my >= s.k || mx < 0 || mx >= s.k) continue;
    acc += static_cast<A>(grad_attn[(pix * s.heads + h) * K + my * s.k + mx]);
  }
  return acc;
}

}  // namespace mmvit
