// The fused neighbourhood attention's backward on the CPU: the CUDA kernels' element functions
// (cuda/na2d_kernels.cuh), run in parallel loops over the queries / keys with a per-thread scratch
// buffer. It gives the backward of `na2d(..., fused=True)` on the CPU and runs the very code of
// the GPU kernels in every CPU test of it. float32 and float64. (The fused forward on the CPU is
// the vectorised na_attend loop of na2d_cpu_kernels.h, in na2d_cpu.cpp.)
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <vector>

#include "../checks.h"
#include "../cuda/na2d_kernels.cuh"

namespace mmvit {
namespace {

NaShape shape_of(const at::Tensor& t, int64_t k, int64_t dil) {
  return NaShape{t.size(0), t.size(1), t.size(2), t.size(3), t.size(4), int(k), int(dil)};
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// fn(i, scratch) for i in [0, n), in parallel, each chunk with its own scratch of `per` T.
template <typename T, typename F>
void parallel_elements(int64_t n, int64_t per, const F& fn) {
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(std::max<int64_t>(per, 1));
    for (int64_t i = begin; i < end; ++i) fn(i, scratch.data());
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> na2d_fused_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& q_in, const at::Tensor& k_in,
    const at::Tensor& v_in, const c10::optional<at::Tensor>& rpb, const at::Tensor& out_in,
    const at::Tensor& lse_in, int64_t kernel_size, int64_t dilation, double scale,
    std::array<bool, 4> output_mask) {
  check_na_fused_backward(grad_out, q_in, k_in, v_in, rpb, out_in, lse_in, kernel_size,
                          dilation);
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const at::Tensor dout = grad_out.contiguous(), out = out_in.contiguous();
  const at::Tensor lse = lse_in.to(q.scalar_type()).contiguous();
  const at::Tensor r = rpb.has_value() && rpb->defined() ? rpb->contiguous() : at::Tensor();
  const NaShape s = shape_of(q, kernel_size, dilation);
  const int64_t R = 2 * kernel_size - 1, n = lse.numel();
  at::Tensor empty = at::empty({0}, q.options());
  at::Tensor dq = empty, dk = empty, dv = empty, drpb = empty;
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "na2d_fused_backward_cpu", [&] {
    using T = scalar_t;
    const T *qp = ptr<T>(q), *kp = ptr<T>(k), *vp = ptr<T>(v), *rp = ptr<T>(r);
    const T *gp = ptr<T>(dout), *lp = ptr<T>(lse);
    at::Tensor delta = at::empty_like(lse);
    T* dp = delta.data_ptr<T>();
    at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) na_fused_delta_element<T, T>(i, s, gp, ptr<T>(out), dp);
    });
    if (output_mask[0]) {
      dq = at::empty_like(q);
      T* dqp = dq.data_ptr<T>();
      parallel_elements<T>(n, kernel_size * kernel_size, [&](int64_t i, T* ds) {
        na_fused_grad_q_element<T, T>(i, s, qp, kp, vp, rp, gp, lp, dp, T(scale), dqp, ds);
      });
    }
    if (output_mask[1] || output_mask[2]) {
      if (output_mask[1]) dk = at::empty_like(k);
      if (output_mask[2]) dv = at::empty_like(v);
      T* dkp = output_mask[1] ? dk.data_ptr<T>() : nullptr;
      T* dvp = output_mask[2] ? dv.data_ptr<T>() : nullptr;
      parallel_elements<T>(n, 2 * s.d, [&](int64_t i, T* acc) {
        na_fused_grad_kv_element<T, T>(i, s, qp, kp, vp, rp, gp, lp, dp, T(scale), dkp, dvp, acc);
      });
    }
    if (output_mask[3] && r.defined()) {
      drpb = at::empty({s.heads, R, R}, q.options());
      T* op = drpb.data_ptr<T>();
      at::parallel_for(0, s.heads * R * R, 1, [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e)
          op[e] = na_fused_rpb_part<T, T>(e / (R * R), int((e / R) % R), int(e % R), 0, 1, s, qp,
                                          kp, vp, rp, gp, lp, dp, T(scale));
      });
    }
  });
  return {dq, dk, dv, drpb};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CPU, m) {
  m.impl("na2d_fused_backward", &mmvit::na2d_fused_backward_cpu);
}
