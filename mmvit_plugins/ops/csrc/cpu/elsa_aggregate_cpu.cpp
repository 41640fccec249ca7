// ELSA aggregation on the CPU.
//
//   out[b,c,y,x] = sum_t v[b,c,y+(ty-p)d,x+(tx-p)d] * (attn[b,g,t,y,x] * M[c,t] + Bg[c,t])
//
// Each kernel below works on plain pointers for one plane and is parallelised over planes with
// at::parallel_for. For a fixed tap the valid outputs form a rectangle, so the innermost loops run
// over contiguous rows of v, attn and out with no bounds checks, and vectorise.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <vector>

#include "../checks.h"
#include "../window_index.h"

namespace mmvit {
namespace {

struct Tap {
  int oy, ox;          // input offset of the tap
  int y0, y1, x0, x1;  // outputs whose tap input is inside the map
};

std::vector<Tap> make_taps(int H, int W, int k, int dil) {
  std::vector<Tap> taps(k * k);
  const int p = k / 2;
  for (int ty = 0; ty < k; ++ty) {
    for (int tx = 0; tx < k; ++tx) {
      Tap& t = taps[ty * k + tx];
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

// One (b, c) plane: out = sum_t shift_t(v) * (a_t * m_t + bg_t).
template <typename T>
void forward_plane(const T* __restrict__ v, const T* __restrict__ a, const T* m, const T* bg,
                   T* __restrict__ out, int H, int W, const std::vector<Tap>& taps) {
  const int64_t HW = int64_t(H) * W;
  std::fill(out, out + HW, T(0));
  for (size_t t = 0; t < taps.size(); ++t) {
    const Tap& tp = taps[t];
    const T mt = m ? m[t] : T(1);
    const T bt = bg ? bg[t] : T(0);
    const T* at = a + t * HW;
    for (int y = tp.y0; y < tp.y1; ++y) {
      const T* __restrict__ vr = v + int64_t(y + tp.oy) * W + tp.ox;
      const T* __restrict__ ar = at + int64_t(y) * W;
      T* __restrict__ orow = out + int64_t(y) * W;
      for (int x = tp.x0; x < tp.x1; ++x) orow[x] += vr[x] * (ar[x] * mt + bt);
    }
  }
}

// One (b, c) plane of the backward: grad_v (the transposed filter, scattered within the plane)
// and the per-sample ghost-gradient sums gm[t] = sum_o dy*v_t*a_t, gb[t] = sum_o dy*v_t, all in
// one pass over each row. The ghost sums accumulate per column in `col_m`/`col_b` (W entries) and
// are reduced once per tap: a per-row horizontal reduction costs more than the row itself here.
// The template flags drop the parts that are not needed.
template <typename T, bool NEED_V, bool NEED_M, bool NEED_B>
void backward_plane(const T* __restrict__ dy, const T* __restrict__ v, const T* __restrict__ a,
                    const T* m, const T* bg, T* dv, double* gm, double* gb, int H, int W,
                    const std::vector<Tap>& taps) {
  const int64_t HW = int64_t(H) * W;
  if (NEED_V) std::fill(dv, dv + HW, T(0));
  std::vector<T> cols(NEED_M || NEED_B ? 2 * W : 0);
  T* __restrict__ col_m = cols.data();
  T* __restrict__ col_b = cols.data() + W;
  for (size_t t = 0; t < taps.size(); ++t) {
    const Tap& tp = taps[t];
    const T mt = m ? m[t] : T(1);
    const T bt = bg ? bg[t] : T(0);
    const T* at = a + t * HW;
    const int x0 = tp.x0, x1 = tp.x1;
    if (NEED_M || NEED_B) std::fill(cols.begin(), cols.end(), T(0));
    for (int y = tp.y0; y < tp.y1; ++y) {
      const T* __restrict__ dyr = dy + int64_t(y) * W;
      const T* __restrict__ ar = at + int64_t(y) * W;
      const int64_t in_row = int64_t(y + tp.oy) * W + tp.ox;
      const T* __restrict__ vr = v + in_row;
      T* __restrict__ dvr = NEED_V ? dv + in_row : nullptr;
      for (int x = x0; x < x1; ++x) {
        const T g = dyr[x];
        if (NEED_V) dvr[x] += g * (ar[x] * mt + bt);
        const T p = g * vr[x];
        if (NEED_M) col_m[x] += p * ar[x];
        if (NEED_B) col_b[x] += p;
      }
    }
    double sm = 0, sb = 0;
    for (int x = x0; x < x1; ++x) {
      if (NEED_M) sm += col_m[x];
      if (NEED_B) sb += col_b[x];
    }
    if (NEED_M) gm[t] = sm;
    if (NEED_B) gb[t] = sb;
  }
}

template <typename T, bool NEED_V, bool NEED_M>
void backward_plane_b(bool need_b, const T* dy, const T* v, const T* a, const T* m, const T* bg,
                      T* dv, double* gm, double* gb, int H, int W, const std::vector<Tap>& taps) {
  if (need_b)
    backward_plane<T, NEED_V, NEED_M, true>(dy, v, a, m, bg, dv, gm, gb, H, W, taps);
  else
    backward_plane<T, NEED_V, NEED_M, false>(dy, v, a, m, bg, dv, gm, gb, H, W, taps);
}

// Picks the instantiation of backward_plane for the gradients that are needed.
template <typename T>
void backward_plane_any(const T* dy, const T* v, const T* a, const T* m, const T* bg, T* dv,
                        double* gm, double* gb, int H, int W, const std::vector<Tap>& taps) {
  const bool nb = gb != nullptr;
  if (dv && gm) backward_plane_b<T, true, true>(nb, dy, v, a, m, bg, dv, gm, gb, H, W, taps);
  else if (dv) backward_plane_b<T, true, false>(nb, dy, v, a, m, bg, dv, gm, gb, H, W, taps);
  else if (gm) backward_plane_b<T, false, true>(nb, dy, v, a, m, bg, dv, gm, gb, H, W, taps);
  else backward_plane_b<T, false, false>(nb, dy, v, a, m, bg, dv, gm, gb, H, W, taps);
}

// One (b, g, t) plane of grad_attn: da = sum_{c in head g} dy_c * shift_t(v_c) * m_c[t].
template <typename T>
void grad_attn_plane(const T* dy, const T* v, const T* m, T* __restrict__ da, int cg, int K,
                     int t, int H, int W, const Tap& tp) {
  const int64_t HW = int64_t(H) * W;
  std::fill(da, da + HW, T(0));
  for (int c = 0; c < cg; ++c) {
    const T mt = m ? m[c * K + t] : T(1);
    const T* dyc = dy + c * HW;
    const T* vc = v + c * HW;
    for (int y = tp.y0; y < tp.y1; ++y) {
      const T* __restrict__ dyr = dyc + int64_t(y) * W;
      const T* __restrict__ vr = vc + int64_t(y + tp.oy) * W + tp.ox;
      T* __restrict__ dar = da + int64_t(y) * W;
      for (int x = tp.x0; x < tp.x1; ++x) dar[x] += dyr[x] * vr[x] * mt;
    }
  }
}

const at::Tensor* opt(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? &t.value() : nullptr;
}

at::Tensor elsa_aggregate_forward_cpu(const at::Tensor& v_in, const at::Tensor& attn_in,
                                      const c10::optional<at::Tensor>& mul_ghost,
                                      const c10::optional<at::Tensor>& add_ghost,
                                      int64_t kernel_size, int64_t dilation) {
  check_elsa(v_in, attn_in, mul_ghost, add_ghost, kernel_size, dilation);
  const at::Tensor v = v_in.contiguous(), attn = attn_in.contiguous();
  const at::Tensor m = opt(mul_ghost) ? mul_ghost->contiguous() : at::Tensor();
  const at::Tensor bg = opt(add_ghost) ? add_ghost->contiguous() : at::Tensor();
  const int B = v.size(0), C = v.size(1), H = v.size(2), W = v.size(3), G = attn.size(1);
  const int k = kernel_size, K = k * k, cg = C / G;
  at::Tensor out = at::empty_like(v);
  const auto taps = make_taps(H, W, k, dilation);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "elsa_aggregate_forward_cpu", [&] {
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* ap = attn.data_ptr<scalar_t>();
    const scalar_t* mp = m.defined() ? m.data_ptr<scalar_t>() : nullptr;
    const scalar_t* bp = bg.defined() ? bg.data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.data_ptr<scalar_t>();
    const int64_t HW = int64_t(H) * W;
    at::parallel_for(0, int64_t(B) * C, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bc = begin; bc < end; ++bc) {
        const int64_t b = bc / C, c = bc % C;
        forward_plane<scalar_t>(vp + bc * HW, ap + (b * G + c / cg) * K * HW,
                                mp ? mp + c * K : nullptr, bp ? bp + c * K : nullptr,
                                op + bc * HW, H, W, taps);
      }
    });
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
  const int B = v.size(0), C = v.size(1), H = v.size(2), W = v.size(3), G = attn.size(1);
  const int k = kernel_size, K = k * k, cg = C / G;
  const auto opts = v.options();
  at::Tensor dv = need_v ? at::empty_like(v) : at::empty({0}, opts);
  at::Tensor da = need_a ? at::empty_like(attn) : at::empty({0}, opts);
  // Per-sample ghost sums in float64, reduced over the batch at the end.
  const auto acc_opts = opts.dtype(at::kDouble);
  at::Tensor gm = need_m ? at::empty({B, C, K}, acc_opts) : at::Tensor();
  at::Tensor gb = need_b ? at::empty({B, C, K}, acc_opts) : at::Tensor();
  const auto taps = make_taps(H, W, k, dilation);
  const int64_t HW = int64_t(H) * W;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "elsa_aggregate_backward_cpu", [&] {
    const scalar_t* dyp = dy.data_ptr<scalar_t>();
    const scalar_t* vp = v.data_ptr<scalar_t>();
    const scalar_t* ap = attn.data_ptr<scalar_t>();
    const scalar_t* mp = m.defined() ? m.data_ptr<scalar_t>() : nullptr;
    const scalar_t* bp = bg.defined() ? bg.data_ptr<scalar_t>() : nullptr;
    if (need_v || need_m || need_b) {
      scalar_t* dvp = need_v ? dv.data_ptr<scalar_t>() : nullptr;
      double* gmp = need_m ? gm.data_ptr<double>() : nullptr;
      double* gbp = need_b ? gb.data_ptr<double>() : nullptr;
      at::parallel_for(0, int64_t(B) * C, 1, [&](int64_t begin, int64_t end) {
        for (int64_t bc = begin; bc < end; ++bc) {
          const int64_t b = bc / C, c = bc % C;
          backward_plane_any<scalar_t>(
              dyp + bc * HW, vp + bc * HW, ap + (b * G + c / cg) * K * HW,
              mp ? mp + c * K : nullptr, bp ? bp + c * K : nullptr, dvp ? dvp + bc * HW : nullptr,
              gmp ? gmp + bc * K : nullptr, gbp ? gbp + bc * K : nullptr, H, W, taps);
        }
      });
    }
    if (need_a) {
      scalar_t* dap = da.data_ptr<scalar_t>();
      at::parallel_for(0, int64_t(B) * G * K, 1, [&](int64_t begin, int64_t end) {
        for (int64_t bgt = begin; bgt < end; ++bgt) {
          const int64_t t = bgt % K, bg_ = bgt / K, b = bg_ / G, g = bg_ % G;
          const int64_t c0 = b * C + g * cg;  // first channel plane of head g
          grad_attn_plane<scalar_t>(dyp + c0 * HW, vp + c0 * HW, mp ? mp + g * cg * K : nullptr,
                                    dap + bgt * HW, cg, K, t, H, W, taps[t]);
        }
      });
    }
  });
  const auto ghost_grad = [&](bool need, const at::Tensor& acc) {
    return need ? acc.sum(0).view({C, k, k}).to(v.scalar_type()) : at::empty({0}, opts);
  };
  return {dv, da, ghost_grad(need_m, gm), ghost_grad(need_b, gb)};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CPU, m) {
  m.impl("elsa_aggregate_forward", &mmvit::elsa_aggregate_forward_cpu);
  m.impl("elsa_aggregate_backward", &mmvit::elsa_aggregate_backward_cpu);
}
