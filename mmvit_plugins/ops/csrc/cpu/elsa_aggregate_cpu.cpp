// ELSA aggregation on the CPU.
//
//   out[b,c,y,x] = sum_t v[b,c,y+(ty-p)d,x+(tx-p)d] * (attn[b,g,t,y,x] * M[c,t] + Bg[c,t])
//
// The loops (elsa_cpu.h) live in elsa_cpu_kernels.h, compiled once per instruction set
// (cpu_isa.h); the entry points here check the inputs, build the tap table and dispatch to the
// active build.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

#include "../checks.h"
#include "../window_index.h"
#include "cpu_isa.h"
#include "elsa_cpu.h"

namespace mmvit {
namespace {

std::vector<ElsaTap> make_taps(int H, int W, int k, int dil) {
  std::vector<ElsaTap> taps(k * k);
  const int p = k / 2;
  for (int ty = 0; ty < k; ++ty) {
    for (int tx = 0; tx < k; ++tx) {
      ElsaTap& t = taps[ty * k + tx];
      t.oy = (ty - p) * dil;
      t.ox = (tx - p) * dil;
      t.y0 = valid_begin(t.oy);
      t.y1 = valid_end(t.oy, H);
      t.x0 = valid_begin(t.ox);
      t.x1 = valid_end(t.ox, W);
    }
  }
  return taps;
}

// The geometry of v [B, C, H, W] and attn [B, G, k*k, H, W], and its tap table.
struct Geometry : ElsaGeometry {
  std::vector<ElsaTap> tap_table;
  Geometry(const at::Tensor& v, const at::Tensor& attn, int64_t k_, int64_t dil_)
      : ElsaGeometry{int(v.size(0)), int(v.size(1)), int(attn.size(1)), int(v.size(2)),
                     int(v.size(3)), int(k_), int(dil_), nullptr},
        tap_table(make_taps(H, W, k, dil)) {
    taps = tap_table.data();
  }
};

const at::Tensor* opt(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? &t.value() : nullptr;
}

template <typename T>
T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

at::Tensor elsa_aggregate_forward_cpu(const at::Tensor& v_in, const at::Tensor& attn_in,
                                      const c10::optional<at::Tensor>& mul_ghost,
                                      const c10::optional<at::Tensor>& add_ghost,
                                      int64_t kernel_size, int64_t dilation) {
  check_elsa(v_in, attn_in, mul_ghost, add_ghost, kernel_size, dilation);
  const at::Tensor v = v_in.contiguous(), attn = attn_in.contiguous();
  const at::Tensor m = opt(mul_ghost) ? mul_ghost->contiguous() : at::Tensor();
  const at::Tensor bg = opt(add_ghost) ? add_ghost->contiguous() : at::Tensor();
  const Geometry g(v, attn, kernel_size, dilation);
  at::Tensor out = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "elsa_aggregate_forward_cpu", [&] {
    MMVIT_CPU_DISPATCH(elsa_forward<scalar_t>, g, v.data_ptr<scalar_t>(),
                       attn.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(m),
                       ptr_or_null<scalar_t>(bg), out.data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> elsa_aggregate_backward_cpu(
    const at::Tensor& grad_out_in, const at::Tensor& v_in, const at::Tensor& attn_in,
    const c10::optional<at::Tensor>& mul_ghost, const c10::optional<at::Tensor>& add_ghost,
    int64_t kernel_size, int64_t dilation, std::array<bool, 4> output_mask) {
  check_elsa_backward(grad_out_in, v_in, attn_in, mul_ghost, add_ghost, kernel_size, dilation);
  const at::Tensor dy = grad_out_in.contiguous(), v = v_in.contiguous();
  const at::Tensor attn = attn_in.contiguous();
  const at::Tensor m = opt(mul_ghost) ? mul_ghost->contiguous() : at::Tensor();
  const at::Tensor bg = opt(add_ghost) ? add_ghost->contiguous() : at::Tensor();
  const bool need_v = output_mask[0], need_a = output_mask[1];
  const bool need_m = output_mask[2] && m.defined(), need_b = output_mask[3] && bg.defined();
  const Geometry g(v, attn, kernel_size, dilation);
  const int B = g.B, C = g.C, k = g.k, K = k * k;
  const auto opts = v.options();
  at::Tensor dv = need_v ? at::empty_like(v) : at::empty({0}, opts);
  at::Tensor da = need_a ? at::empty_like(attn) : at::empty({0}, opts);
  // Ghost sums in float64 per sample and block of rows, reduced over both at the end.
  const auto acc_opts = opts.dtype(at::kDouble);
  const int64_t blocks = elsa_row_blocks(g.H);
  at::Tensor gm = need_m ? at::empty({B, blocks, C, K}, acc_opts) : at::Tensor();
  at::Tensor gb = need_b ? at::empty({B, blocks, C, K}, acc_opts) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "elsa_aggregate_backward_cpu", [&] {
    const scalar_t* dyp = dy.data_ptr<scalar_t>();
    const scalar_t* ap = attn.data_ptr<scalar_t>();
    const scalar_t* mp = ptr_or_null<scalar_t>(m);
    if (need_v) MMVIT_CPU_DISPATCH(elsa_grad_v<scalar_t>, g, dyp, ap, mp,
                                   ptr_or_null<scalar_t>(bg), dv.data_ptr<scalar_t>());
    if (need_a || need_m || need_b) {
      MMVIT_CPU_DISPATCH(elsa_grad_attn<scalar_t>, g, dyp, v.data_ptr<scalar_t>(), ap, mp,
                         need_a ? da.data_ptr<scalar_t>() : nullptr, ptr_or_null<double>(gm),
                         ptr_or_null<double>(gb));
    }
  });
  const auto ghost_grad = [&](bool need, const at::Tensor& acc) {
    return need ? acc.sum({0, 1}).view({C, k, k}).to(v.scalar_type()) : at::empty({0}, opts);
  };
  return {dv, da, ghost_grad(need_m, gm), ghost_grad(need_b, gb)};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CPU, m) {
  m.impl("elsa_aggregate_forward", &mmvit::elsa_aggregate_forward_cpu);
  m.impl("elsa_aggregate_backward", &mmvit::elsa_aggregate_backward_cpu);
}
