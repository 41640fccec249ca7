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

#include <cmath>
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

// ---------------------------------------------------------------------------------------------
// Fused neighbourhood attention: out = softmax(scale * q.k + rpb) v without storing the k*k
// weights. Each element function keeps one query's (or key's) k*k weights or its d-wide
// accumulators in the scratch it is given (shared memory on the GPU, a stack buffer on the host).
// The backward recomputes the weights from the saved log-sum-exp:
//   p = exp(l - lse_i), ds = p * (dout_i . v_j - D_i), D_i = dout_i . out_i,
//   dq_i = scale * sum_t ds k_j,  dk_j = scale * sum ds q_i,  dv_j = sum p dout_i,
//   grad_rpb = sum of ds at each relative offset.
namespace mmvit {

template <typename T, typename A>
MMVIT_HOST_DEVICE A na_logit(const NaShape& s, const T* q, const T* k, const T* rpb, A scale,
                             int64_t i, int64_t j, int64_t h, int ry, int rx) {
  const T* qp = q + (i * s.heads + h) * s.d;
  const T* kp = k + (j * s.heads + h) * s.d;
  A acc = 0;
  for (int64_t c = 0; c < s.d; ++c) acc += static_cast<A>(qp[c]) * static_cast<A>(kp[c]);
  acc *= scale;
  if (rpb) {
    const int64_t R = 2 * s.k - 1;
    acc += static_cast<A>(rpb[(h * R + ry) * R + rx]);
  }
  return acc;
}

template <typename T, typename A>
MMVIT_HOST_DEVICE A na_row_dot(const NaShape& s, const T* a, const T* b, int64_t i, int64_t j,
                               int64_t h) {
  const T* ap = a + (i * s.heads + h) * s.d;
  const T* bp = b + (j * s.heads + h) * s.d;
  A acc = 0;
  for (int64_t c = 0; c < s.d; ++c) acc += static_cast<A>(ap[c]) * static_cast<A>(bp[c]);
  return acc;
}

// The key pixel of tap (my, mx) of query pixel `pix`, with the query's windows.
MMVIT_HOST_DEVICE int64_t na_key(const NaShape& s, int64_t pix, const AxisWindow& wy,
                                 const AxisWindow& wx, int my, int mx) {
  const int64_t bi = pix / (s.W * s.H);
  return (bi * s.H + wy.start + int64_t(my) * s.dil) * s.W + wx.start + int64_t(mx) * s.dil;
}

// Query idx = pix * heads + h: out[pix, h, :] and lse[pix, h]. Scratch: k*k A.
template <typename T, typename A>
MMVIT_HOST_DEVICE void na_fused_forward_element(int64_t idx, const NaShape& s, const T* q,
                                                const T* k, const T* v, const T* rpb, A scale,
                                                T* out, A* lse, A* p) {
  const int64_t h = idx % s.heads, pix = idx / s.heads;
  const AxisWindow wy = axis_window(int((pix / s.W) % s.H), int(s.H), s.k, s.dil);
  const AxisWindow wx = axis_window(int(pix % s.W), int(s.W), s.k, s.dil);
  A mx_ = -1e30f;
  for (int my = 0; my < s.k; ++my)
    for (int mx = 0; mx < s.k; ++mx) {
      const A l = na_logit<T, A>(s, q, k, rpb, scale, pix, na_key(s, pix, wy, wx, my, mx), h,
                                 wy.rpb_off + my, wx.rpb_off + mx);
      p[my * s.k + mx] = l;
      if (l > mx_) mx_ = l;
    }
  const int K = s.k * s.k;
  A sum = 0;
  for (int t = 0; t < K; ++t) {
    p[t] = exp(p[t] - mx_);
    sum += p[t];
  }
  lse[idx] = mx_ + log(sum);
  for (int64_t c = 0; c < s.d; ++c) {
    A acc = 0;
    for (int my = 0; my < s.k; ++my)
      for (int mx = 0; mx < s.k; ++mx)
        acc += p[my * s.k + mx] *
               static_cast<A>(v[(na_key(s, pix, wy, wx, my, mx) * s.heads + h) * s.d + c]);
    out[idx * s.d + c] = static_cast<T>(acc / sum);
  }
}

// D[idx] = dout[idx, :] . out[idx, :] (idx = pix * heads + h).
template <typename T, typename A>
MMVIT_HOST_DEVICE void na_fused_delta_element(int64_t idx, const NaShape& s, const T* dout,
                                              const T* out, A* delta) {
  A acc = 0;
  for (int64_t c = 0; c < s.d; ++c)
    acc += static_cast<A>(dout[idx * s.d + c]) * static_cast<A>(out[idx * s.d + c]);
  delta[idx] = acc;
}

// ds of (query pix, head h, tap (my, mx)).
template <typename T, typename A>
MMVIT_HOST_DEVICE A na_fused_ds(const NaShape& s, const T* q, const T* k, const T* v,
                                const T* rpb, const T* dout, const A* lse, const A* delta,
                                A scale, int64_t pix, int64_t j, int64_t h, int ry, int rx,
                                A* p_out) {
  const int64_t qh = pix * s.heads + h;
  const A p = exp(na_logit<T, A>(s, q, k, rpb, scale, pix, j, h, ry, rx) - lse[qh]);
  if (p_out) *p_out = p;
  return p * (na_row_dot<T, A>(s, dout, v, pix, j, h) - delta[qh]);
}

// dq[pix, h, :] (idx = pix * heads + h). Scratch: k*k A.
template <typename T, typename A>
MMVIT_HOST_DEVICE void na_fused_grad_q_element(int64_t idx, const NaShape& s, const T* q,
                                               const T* k, const T* v, const T* rpb,
                                               const T* dout, const A* lse, const A* delta,
                                               A scale, T* dq, A* ds) {
  const int64_t h = idx % s.heads, pix = idx / s.heads;
  const AxisWindow wy = axis_window(int((pix / s.W) % s.H), int(s.H), s.k, s.dil);
  const AxisWindow wx = axis_window(int(pix % s.W), int(s.W), s.k, s.dil);
  for (int my = 0; my < s.k; ++my)
    for (int mx = 0; mx < s.k; ++mx)
      ds[my * s.k + mx] =
          na_fused_ds<T, A>(s, q, k, v, rpb, dout, lse, delta, scale, pix,
                            na_key(s, pix, wy, wx, my, mx), h, wy.rpb_off + my, wx.rpb_off + mx,
                            nullptr);
  for (int64_t c = 0; c < s.d; ++c) {
    A acc = 0;
    for (int my = 0; my < s.k; ++my)
      for (int mx = 0; mx < s.k; ++mx)
        acc += ds[my * s.k + mx] *
               static_cast<A>(k[(na_key(s, pix, wy, wx, my, mx) * s.heads + h) * s.d + c]);
    dq[idx * s.d + c] = static_cast<T>(acc * scale);
  }
}

// dk[j, h, :] and dv[j, h, :] (idx = j * heads + h), gathered over the queries whose window
// holds key j. Scratch: 2 * d A.
template <typename T, typename A>
MMVIT_HOST_DEVICE void na_fused_grad_kv_element(int64_t idx, const NaShape& s, const T* q,
                                                const T* k, const T* v, const T* rpb,
                                                const T* dout, const A* lse, const A* delta,
                                                A scale, T* dk, T* dv, A* acc) {
  const int64_t h = idx % s.heads, j = idx / s.heads;
  const int jx = int(j % s.W), jy = int((j / s.W) % s.H);
  const int64_t bi = j / (s.W * s.H);
  A* ak = acc;
  A* av = acc + s.d;
  for (int64_t c = 0; c < s.d; ++c) ak[c] = av[c] = 0;
  const int span = (s.k - 1) * s.dil;
  for (int qy = jy - span; qy <= jy + span; qy += s.dil) {
    if (qy < 0 || qy >= s.H) continue;
    const int my = axis_tap(qy, jy, int(s.H), s.k, s.dil);
    if (my < 0) continue;
    const int ry = axis_window(qy, int(s.H), s.k, s.dil).rpb_off + my;
    for (int qx = jx - span; qx <= jx + span; qx += s.dil) {
      if (qx < 0 || qx >= s.W) continue;
      const int mx = axis_tap(qx, jx, int(s.W), s.k, s.dil);
      if (mx < 0) continue;
      const int rx = axis_window(qx, int(s.W), s.k, s.dil).rpb_off + mx;
      const int64_t i = (bi * s.H + qy) * s.W + qx;
      A p;
      const A ds = na_fused_ds<T, A>(s, q, k, v, rpb, dout, lse, delta, scale, i, j, h, ry, rx,
                                     &p);
      const T* qp = q + (i * s.heads + h) * s.d;
      const T* gp = dout + (i * s.heads + h) * s.d;
      for (int64_t c = 0; c < s.d; ++c) {
        ak[c] += ds * static_cast<A>(qp[c]);
        av[c] += p * static_cast<A>(gp[c]);
      }
    }
  }
  for (int64_t c = 0; c < s.d; ++c) {
    if (dk) dk[idx * s.d + c] = static_cast<T>(ak[c] * scale);
    if (dv) dv[idx * s.d + c] = static_cast<T>(av[c]);
  }
}

// Part of grad_rpb[h, ry, rx]: the sum of ds over the pixels first, first + step, ...
template <typename T, typename A>
MMVIT_HOST_DEVICE A na_fused_rpb_part(int64_t h, int ry, int rx, int64_t first, int64_t step,
                                      const NaShape& s, const T* q, const T* k, const T* v,
                                      const T* rpb, const T* dout, const A* lse, const A* delta,
                                      A scale) {
  const int64_t n = s.B * s.H * s.W;
  A acc = 0;
  for (int64_t pix = first; pix < n; pix += step) {
    const AxisWindow wy = axis_window(int((pix / s.W) % s.H), int(s.H), s.k, s.dil);
    const AxisWindow wx = axis_window(int(pix % s.W), int(s.W), s.k, s.dil);
    const int my = ry - wy.rpb_off, mx = rx - wx.rpb_off;
    if (my < 0 || my >= s.k || mx < 0 || mx >= s.k) continue;
    acc += na_fused_ds<T, A>(s, q, k, v, rpb, dout, lse, delta, scale, pix,
                             na_key(s, pix, wy, wx, my, mx), h, ry, rx, nullptr);
  }
  return acc;
}

}  // namespace mmvit
