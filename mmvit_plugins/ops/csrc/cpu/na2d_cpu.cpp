// Neighbourhood attention 2-D on the CPU (NATTEN semantics, heads-last [B, H, W, heads, X]).
//
// Three loops cover the six unfused entry points (na2d_cpu.h): na_dot (qk forward, av
// grad_attn), na_sum (av forward, qk grad_q) and na_inverse_sum (qk grad_k, av grad_v); a fourth,
// na_attend, is the fused forward (its backward: na2d_fused_cpu.cpp). They live in
// na2d_cpu_kernels.h, compiled once per instruction set (cpu_isa.h); the entry points here check
// the inputs, build the window tables and dispatch to the active build.
// na_inverse_sum gathers over the "inverse neighbourhood" of key j (the queries whose clamped
// window contains j, listed per axis), so every output row is written by one thread: no atomics
// and no scatter.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

#include "../checks.h"
#include "cpu_isa.h"
#include "na2d_cpu.h"

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

  NaAxisView view() const { return {win.data(), inv_begin.data(), inv.data()}; }
};

// The window tables of a [B, H, W, heads, X] map and the loops' view of them.
struct Geometry : NaGeometry {
  AxisTable tab_y, tab_x;
  Geometry(const at::Tensor& t, int64_t k_, int64_t dil_)
      : NaGeometry{int(t.size(0)), int(t.size(1)), int(t.size(2)), int(t.size(3)), int(k_),
                   int(dil_), {}, {}},
        tab_y(H, k, dil), tab_x(W, k, dil) {
    ty = tab_y.view();
    tx = tab_x.view();
  }
};

// Calls fn(row, i, wy, wx) for every query pixel i, in parallel over (b, y) rows (row = b * H + y).
template <typename F>
void for_each_query(const Geometry& g, const F& fn) {
  at::parallel_for(0, int64_t(g.B) * g.H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int bi = row / g.H, y = row % g.H;
      for (int x = 0; x < g.W; ++x) fn(row, g.pixel(bi, y, x), g.ty.win[y], g.tx.win[x]);
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
  for_each_query(g, [&](int64_t row, int64_t i, const AxisWindow& wy, const AxisWindow& wx) {
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
    MMVIT_CPU_DISPATCH(na_dot<scalar_t>, g, q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                       has_rpb ? rpb.data_ptr<scalar_t>() : nullptr, attn.data_ptr<scalar_t>(),
                       int(q.size(4)));
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
      MMVIT_CPU_DISPATCH(na_sum<scalar_t>, g, gp, k.data_ptr<scalar_t>(),
                         dq.data_ptr<scalar_t>(), d);
    }
    if (output_mask[1]) {
      dk = at::empty_like(k);
      MMVIT_CPU_DISPATCH(na_inverse_sum<scalar_t>, g, gp, q.data_ptr<scalar_t>(),
                         dk.data_ptr<scalar_t>(), d);
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
    MMVIT_CPU_DISPATCH(na_sum<scalar_t>, g, attn.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                       out.data_ptr<scalar_t>(), int(v.size(4)));
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
      MMVIT_CPU_DISPATCH(na_dot<scalar_t>, g, gp, v.data_ptr<scalar_t>(), nullptr,
                         dattn.data_ptr<scalar_t>(), d);
    }
    if (output_mask[1]) {
      dv = at::empty_like(v);
      MMVIT_CPU_DISPATCH(na_inverse_sum<scalar_t>, g, attn.data_ptr<scalar_t>(), gp,
                         dv.data_ptr<scalar_t>(), d);
    }
  });
  return {dattn, dv};
}

// The fused forward (out and the log-sum-exp of the logits; the backward, na2d_fused_cpu.cpp,
// recomputes the weights from them): every query's k*k logits stay in an L1 buffer.
std::tuple<at::Tensor, at::Tensor> na2d_fused_forward_cpu(const at::Tensor& q_in,
                                                          const at::Tensor& k_in,
                                                          const at::Tensor& v_in,
                                                          const c10::optional<at::Tensor>& rpb_in,
                                                          int64_t kernel_size, int64_t dilation,
                                                          double scale) {
  check_na_fused(q_in, k_in, v_in, rpb_in, kernel_size, dilation);
  const bool has_rpb = rpb_in.has_value() && rpb_in->defined();
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const at::Tensor rpb = has_rpb ? rpb_in->contiguous() : at::Tensor();
  const Geometry g(q, kernel_size, dilation);
  at::Tensor out = at::empty_like(q), lse = at::empty({g.B, g.H, g.W, g.heads}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "na2d_fused_forward_cpu", [&] {
    MMVIT_CPU_DISPATCH(na_attend<scalar_t>, g, q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                       v.data_ptr<scalar_t>(), has_rpb ? rpb.data_ptr<scalar_t>() : nullptr,
                       scalar_t(scale), out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(),
                       int(q.size(4)));
  });
  return {out, lse};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CPU, m) {
  m.impl("na2d_qk_forward", &mmvit::na2d_qk_forward_cpu);
  m.impl("na2d_qk_backward", &mmvit::na2d_qk_backward_cpu);
  m.impl("na2d_av_forward", &mmvit::na2d_av_forward_cpu);
  m.impl("na2d_av_backward", &mmvit::na2d_av_backward_cpu);
  m.impl("na2d_fused_forward", &mmvit::na2d_fused_forward_cpu);
}
