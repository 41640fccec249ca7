// Neighbourhood attention 2-D on the CPU (NATTEN semantics, heads-last [B, H, W, heads, X]).
//
// Three loops cover all six entry points:
//   neighbourhood_dot      out[i,h,t] = <a[i,h,:], b[n(i,t),h,:]>      qk forward, av grad_attn
//   neighbourhood_sum      out[i,h,:] = sum_t w[i,h,t] b[n(i,t),h,:]   av forward, qk grad_q
//   inverse_sum            out[j,h,:] = sum_{(i,t): n(i,t)=j} w[i,h,t] a[i,h,:]
//                                                                       qk grad_k, av grad_v
// inverse_sum gathers over the "inverse neighbourhood" of key j (the queries whose clamped window
// contains j, listed per axis), so every output row is written by one thread: no atomics and no
// scatter. All three are parallel over (b, y) rows.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

#include "../checks.h"
#include "../window_index.h"

namespace mmvit {
namespace {

// Per-axis window tables: the forward window of each position, and its inverse in CSR form
// (for key position j, the (query position, tap) pairs whose window holds j).
struct AxisTable {
  std::vector<AxisWindow> win;
  std::vector<int> inv_begin;           // size + 1
  std::vector<std::pair<int, int>> inv;  // (query i, tap m)

  AxisTable(int size, int k, int dil) : win(size), inv_begin(size + 1, 0) {
    for (int i = 0; i < size; ++i) win[i] = axis_window(i, size, k, dil);
    for (int i = 0; i < size; ++i)
      for (int m = 0; m < k; ++m) ++inv_begin[win[i].start + m * dil + 1];
    for (int j = 0; j < size; ++j) inv_begin[j + 1] += inv_begin[j];
    inv.resize(inv_begin[size]);
    std::vector<int> fill(inv_begin.begin(), inv_begin.end() - 1);
    for (int i = 0; i < size; ++i)
      for (int m = 0; m < k; ++m) inv[fill[win[i].start + m * dil]++] = {i, m};
  }
};

struct Geometry {
  int B, H, W, heads, k, dil;
  AxisTable ty, tx;
  Geometry(const at::Tensor& t, int64_t k_, int64_t dil_)
      : B(t.size(0)), H(t.size(1)), W(t.size(2)), heads(t.size(3)), k(k_), dil(dil_),
        ty(H, k, dil), tx(W, k, dil) {}
  int64_t pixel(int b, int y, int x) const { return (int64_t(b) * H + y) * W + x; }
};

template <typename T>
inline T dot(const T* __restrict__ a, const T* __restrict__ b, int d) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

template <typename T>
inline void axpy(T w, const T* __restrict__ x, T* __restrict__ y, int d) {
#pragma omp simd
  for (int c = 0; c < d; ++c) y[c] += w * x[c];
}

// Calls fn(row, i, first, wy, wx) for every query pixel, in parallel over (b, y) rows: `row` is
// b * H + y, `i` the query's flat pixel index, `first` the flat index of its first neighbour
// (tap 0); tap (my, mx) is pixel first + (my * W + mx) * dil.
template <typename F>
void for_each_query(const Geometry& g, const F& fn) {
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int bi = row / g.H, y = row % g.H;
      const AxisWindow& wy = g.ty.win[y];
      for (int x = 0; x < g.W; ++x) {
        const AxisWindow& wx = g.tx.win[x];
        fn(row, g.pixel(bi, y, x), g.pixel(bi, wy.start, wx.start), wy, wx);
      }
    }
  });
}

// out[i,h,t] = <a[i,h,:], b[n(i,t),h,:]> (+ rpb[h, ry, rx]); a, b: [.., heads, d], out: [.., heads, K].
template <typename T>
void neighbourhood_dot(const Geometry& g, const T* a, const T* b, const T* rpb, T* out, int d) {
  const int k = g.k, K = k * k, R = 2 * k - 1, heads = g.heads;
  const int64_t step_y = int64_t(g.W) * g.dil, step_x = g.dil;
  for_each_query(g, [&](int64_t, int64_t i, int64_t first, const AxisWindow& wy,
                        const AxisWindow& wx) {
    for (int h = 0; h < heads; ++h) {
      const T* ai = a + (i * heads + h) * d;
      T* o = out + (i * heads + h) * K;
      for (int my = 0; my < k; ++my) {
        for (int mx = 0; mx < k; ++mx) {
          const int64_t j = first + my * step_y + mx * step_x;
          T s = dot(ai, b + (j * heads + h) * d, d);
          if (rpb) s += rpb[(int64_t(h) * R + wy.rpb_off + my) * R + wx.rpb_off + mx];
          o[my * k + mx] = s;
        }
      }
    }
  });
}

// out[i,h,:] = sum_t w[i,h,t] * b[n(i,t),h,:]; w: [.., heads, K], b and out: [.., heads, d].
template <typename T>
void neighbourhood_sum(const Geometry& g, const T* w, const T* b, T* out, int d) {
  const int k = g.k, K = k * k, heads = g.heads;
  const int64_t step_y = int64_t(g.W) * g.dil, step_x = g.dil;
  for_each_query(g, [&](int64_t, int64_t i, int64_t first, const AxisWindow&,
                        const AxisWindow&) {
    for (int h = 0; h < heads; ++h) {
      const T* wi = w + (i * heads + h) * K;
      T* o = out + (i * heads + h) * d;
      std::fill(o, o + d, T(0));
      for (int my = 0; my < k; ++my)
        for (int mx = 0; mx < k; ++mx)
          axpy(wi[my * k + mx], b + ((first + my * step_y + mx * step_x) * heads + h) * d, o, d);
    }
  });
}

// out[j,h,:] = sum over queries i whose window holds j (at tap t) of w[i,h,t] * a[i,h,:].
template <typename T>
void inverse_sum(const Geometry& g, const T* w, const T* a, T* out, int d) {
  const int k = g.k, K = k * k;
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int bi = row / g.H, ky = row % g.H;
      for (int kx = 0; kx < g.W; ++kx) {
        const int64_t j = g.pixel(bi, ky, kx);
        T* o = out + j * g.heads * d;
        std::fill(o, o + int64_t(g.heads) * d, T(0));
        for (int ey = g.ty.inv_begin[ky]; ey < g.ty.inv_begin[ky + 1]; ++ey) {
          const auto [qy, my] = g.ty.inv[ey];
          for (int ex = g.tx.inv_begin[kx]; ex < g.tx.inv_begin[kx + 1]; ++ex) {
            const auto [qx, mx] = g.tx.inv[ex];
            const int64_t i = g.pixel(bi, qy, qx);
            const int t = my * k + mx;
            for (int h = 0; h < g.heads; ++h)
              axpy(w[(i * g.heads + h) * K + t], a + (i * g.heads + h) * d, o + h * d, d);
          }
        }
      }
    }
  });
}

// grad_rpb[h, ry, rx] = sum over (b, i, t) of grad_attn[b,i,h,t] at that relative offset.
// Per-row partial tables in float64, reduced at the end.
template <typename T>
at::Tensor rpb_grad(const Geometry& g, const T* ga, const at::TensorOptions& opts) {
  const int k = g.k, K = k * k, R = 2 * k - 1, heads = g.heads;
  const int64_t rows = int64_t(g.B) * g.H, table = int64_t(heads) * R * R;
  at::Tensor partial = at::zeros({rows, table}, opts.dtype(at::kDouble));
  double* pp = partial.data_ptr<double>();
  for_each_query(g, [&](int64_t row, int64_t i, int64_t, const AxisWindow& wy,
                        const AxisWindow& wx) {
    double* acc = pp + row * table;
    for (int h = 0; h < heads; ++h) {
      const T* gi = ga + (i * heads + h) * K;
      for (int my = 0; my < k; ++my)
        for (int mx = 0; mx < k; ++mx)
          acc[(int64_t(h) * R + wy.rpb_off + my) * R + wx.rpb_off + mx] += gi[my * k + mx];
    }
  });
  return partial.sum(0).view({heads, R, R});
}

at::Tensor na2d_qk_forward_cpu(const at::Tensor& q_in, const at::Tensor& k_in,
                               const c10::optional<at::Tensor>& rpb_in, int64_t kernel_size,
                               int64_t dilation) {
  check_na_qk(q_in, k_in, rpb_in, kernel_size, dilation);
  const bool has_rpb = rpb_in.has_value() && rpb_in->defined();
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous();
  const at::Tensor rpb = has_rpb ? rpb_in->contiguous() : at::Tensor();
  const Geometry g(q, kernel_size, dilation);
  at::Tensor attn = at::empty({g.B, g.H, g.W, g.heads, kernel_size * kernel_size}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "na2d_qk_forward_cpu", [&] {
    neighbourhood_dot<scalar_t>(g, q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                                has_rpb ? rpb.data_ptr<scalar_t>() : nullptr,
                                attn.data_ptr<scalar_t>(), q.size(4));
  });
  return attn;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> na2d_qk_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& q_in, const at::Tensor& k_in,
    int64_t kernel_size, int64_t dilation, std::array<bool, 3> output_mask) {
  check_na_qk_backward(grad_in, q_in, k_in, kernel_size, dilation);
  const at::Tensor ga = grad_in.contiguous(), q = q_in.contiguous(), k = k_in.contiguous();
  const Geometry g(q, kernel_size, dilation);
  const int d = q.size(4);
  at::Tensor dq = at::empty({0}, q.options()), dk = dq, drpb = dq;
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "na2d_qk_backward_cpu", [&] {
    const scalar_t* gp = ga.data_ptr<scalar_t>();
    if (output_mask[0]) {
      dq = at::empty_like(q);
      neighbourhood_sum<scalar_t>(g, gp, k.data_ptr<scalar_t>(), dq.data_ptr<scalar_t>(), d);
    }
    if (output_mask[1]) {
      dk = at::empty_like(k);
      inverse_sum<scalar_t>(g, gp, q.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(), d);
    }
    if (output_mask[2]) drpb = rpb_grad<scalar_t>(g, gp, q.options()).to(q.scalar_type());
  });
  return {dq, dk, drpb};
}

at::Tensor na2d_av_forward_cpu(const at::Tensor& attn_in, const at::Tensor& v_in,
                               int64_t kernel_size, int64_t dilation) {
  check_na_av(attn_in, v_in, kernel_size, dilation);
  const at::Tensor attn = attn_in.contiguous(), v = v_in.contiguous();
  const Geometry g(v, kernel_size, dilation);
  at::Tensor out = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "na2d_av_forward_cpu", [&] {
    neighbourhood_sum<scalar_t>(g, attn.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                                out.data_ptr<scalar_t>(), v.size(4));
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> na2d_av_backward_cpu(const at::Tensor& grad_in,
                                                        const at::Tensor& attn_in,
                                                        const at::Tensor& v_in,
                                                        int64_t kernel_size, int64_t dilation,
                                                        std::array<bool, 2> output_mask) {
  check_na_av_backward(grad_in, attn_in, v_in, kernel_size, dilation);
  const at::Tensor go = grad_in.contiguous(), attn = attn_in.contiguous(), v = v_in.contiguous();
  const Geometry g(v, kernel_size, dilation);
  const int d = v.size(4);
  at::Tensor dattn = at::empty({0}, v.options()), dv = dattn;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "na2d_av_backward_cpu", [&] {
    const scalar_t* gp = go.data_ptr<scalar_t>();
    if (output_mask[0]) {
      dattn = at::empty_like(attn);
      neighbourhood_dot<scalar_t>(g, gp, v.data_ptr<scalar_t>(), nullptr,
                                  dattn.data_ptr<scalar_t>(), d);
    }
    if (output_mask[1]) {
      dv = at::empty_like(v);
      inverse_sum<scalar_t>(g, attn.data_ptr<scalar_t>(), gp, dv.data_ptr<scalar_t>(), d);
    }
  });
  return {dattn, dv};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CPU, m) {
  m.impl("na2d_qk_forward", &mmvit::na2d_qk_forward_cpu);
  m.impl("na2d_qk_backward", &mmvit::na2d_qk_backward_cpu);
  m.impl("na2d_av_forward", &mmvit::na2d_av_forward_cpu);
  m.impl("na2d_av_backward", &mmvit::na2d_av_backward_cpu);
}
