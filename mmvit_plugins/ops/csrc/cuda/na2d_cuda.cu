// Neighbourhood attention 2-D on CUDA (NATTEN semantics, heads-last [B, H, W, heads, X]):
// float32, float64, float16 and bfloat16 (16-bit types accumulate in float32), any dilation and
// kernel size, 64-bit indexing.
//
// One thread per output element; the key-side gradients (grad_k, grad_v) gather over the inverse
// neighbourhood (no atomics); grad_rpb is one block reduction per bias entry. The per-element
// math lives in na2d_kernels.cuh, which the tests also run on the host. Kernels run on the
// current stream of the inputs' device; launch errors raise.
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include <algorithm>

#include "../checks.h"
#include "na2d_kernels.cuh"

namespace mmvit {
namespace {

constexpr int kThreads = 256;

int64_t num_blocks(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}

#define MMVIT_GRID_LOOP(i, n)                                                      \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)

template <typename T, typename A>
__global__ void dot_kernel(int64_t n, NaShape s, const T* a, const T* b, const T* rpb, T* out) {
  MMVIT_GRID_LOOP(i, n) na_dot_element<T, A>(i, s, a, b, rpb, out);
}

template <typename T, typename A>
__global__ void sum_kernel(int64_t n, NaShape s, const T* w, const T* b, T* out) {
  MMVIT_GRID_LOOP(i, n) na_sum_element<T, A>(i, s, w, b, out);
}

template <typename T, typename A>
__global__ void inverse_kernel(int64_t n, NaShape s, const T* w, const T* a, T* out) {
  MMVIT_GRID_LOOP(i, n) na_inverse_element<T, A>(i, s, w, a, out);
}

// One block per bias entry (blockIdx.x = (h * R + ry) * R + rx).
template <typename T, typename A>
__global__ void rpb_grad_kernel(NaShape s, const T* grad_attn, A* out) {
  __shared__ A part[kThreads];
  const int R = 2 * s.k - 1;
  const int64_t h = blockIdx.x / (R * R);
  const int ry = (blockIdx.x / R) % R, rx = blockIdx.x % R;
  part[threadIdx.x] = na_rpb_grad_part<T, A>(h, ry, rx, threadIdx.x, blockDim.x, s, grad_attn);
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

NaShape shape_of(const at::Tensor& t, int64_t k, int64_t dil) {
  return NaShape{t.size(0), t.size(1), t.size(2), t.size(3), t.size(4), int(k), int(dil)};
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

#define MMVIT_DISPATCH(dtype, name, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, name, __VA_ARGS__)

// out[i,h,t] = <a[i,h,:], b[n(i,t),h,:]> (+ rpb), out [B, H, W, heads, k*k].
at::Tensor dot(const at::Tensor& a, const at::Tensor& b, const at::Tensor& rpb, int64_t k,
               int64_t dil) {
  const NaShape s = shape_of(a, k, dil);
  at::Tensor out = at::empty({s.B, s.H, s.W, s.heads, k * k}, a.options());
  if (out.numel() == 0) return out;
  MMVIT_DISPATCH(a.scalar_type(), "na2d_dot", [&] {
    dot_kernel<scalar_t, at::opmath_type<scalar_t>>
        <<<num_blocks(out.numel()), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            out.numel(), s, ptr<scalar_t>(a), ptr<scalar_t>(b), ptr<scalar_t>(rpb),
            out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

// out[i,h,:] = sum_t w[i,h,t] b[n(i,t),h,:] (inverse: gathered on the key side), like b.
at::Tensor weighted_sum(const at::Tensor& w, const at::Tensor& b, int64_t k, int64_t dil,
                        bool inverse) {
  const NaShape s = shape_of(b, k, dil);
  at::Tensor out = at::empty_like(b);
  if (out.numel() == 0) return out;
  MMVIT_DISPATCH(b.scalar_type(), "na2d_sum", [&] {
    using A = at::opmath_type<scalar_t>;
    auto stream = c10::cuda::getCurrentCUDAStream();
    if (inverse)
      inverse_kernel<scalar_t, A><<<num_blocks(out.numel()), kThreads, 0, stream>>>(
          out.numel(), s, ptr<scalar_t>(w), ptr<scalar_t>(b), out.data_ptr<scalar_t>());
    else
      sum_kernel<scalar_t, A><<<num_blocks(out.numel()), kThreads, 0, stream>>>(
          out.numel(), s, ptr<scalar_t>(w), ptr<scalar_t>(b), out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor rpb_grad(const at::Tensor& grad_attn, const at::Tensor& like, int64_t k,
                    int64_t dil) {
  const NaShape s = shape_of(like, k, dil);
  const int64_t R = 2 * k - 1;
  at::Tensor out;
  MMVIT_DISPATCH(like.scalar_type(), "na2d_rpb_grad", [&] {
    using A = at::opmath_type<scalar_t>;
    at::Tensor acc =
        at::zeros({s.heads, R, R}, like.options().dtype(c10::CppTypeToScalarType<A>::value));
    if (grad_attn.numel() > 0) {
      rpb_grad_kernel<scalar_t, A>
          <<<s.heads * R * R, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
              s, ptr<scalar_t>(grad_attn), acc.data_ptr<A>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    out = acc.to(like.scalar_type());
  });
  return out;
}

at::Tensor na2d_qk_forward_cuda(const at::Tensor& q, const at::Tensor& k,
                                const c10::optional<at::Tensor>& rpb, int64_t kernel_size,
                                int64_t dilation) {
  check_na_qk(q, k, rpb, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(q));
  const bool has_rpb = rpb.has_value() && rpb->defined();
  return dot(q.contiguous(), k.contiguous(), has_rpb ? rpb->contiguous() : at::Tensor(),
             kernel_size, dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> na2d_qk_backward_cuda(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t kernel_size,
    int64_t dilation, std::array<bool, 3> output_mask) {
  check_na_qk_backward(grad_attn, q, k, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(q));
  const at::Tensor ga = grad_attn.contiguous(), q_ = q.contiguous(), k_ = k.contiguous();
  at::Tensor empty = at::empty({0}, q.options());
  return {output_mask[0] ? weighted_sum(ga, k_, kernel_size, dilation, false) : empty,
          output_mask[1] ? weighted_sum(ga, q_, kernel_size, dilation, true) : empty,
          output_mask[2] ? rpb_grad(ga, q_, kernel_size, dilation) : empty};
}

at::Tensor na2d_av_forward_cuda(const at::Tensor& attn, const at::Tensor& v, int64_t kernel_size,
                                int64_t dilation) {
  check_na_av(attn, v, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(v));
  return weighted_sum(attn.contiguous(), v.contiguous(), kernel_size, dilation, false);
}

std::tuple<at::Tensor, at::Tensor> na2d_av_backward_cuda(const at::Tensor& grad_out,
                                                         const at::Tensor& attn,
                                                         const at::Tensor& v, int64_t kernel_size,
                                                         int64_t dilation,
                                                         std::array<bool, 2> output_mask) {
  check_na_av_backward(grad_out, attn, v, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(v));
  const at::Tensor go = grad_out.contiguous(), a = attn.contiguous(), v_ = v.contiguous();
  at::Tensor empty = at::empty({0}, v.options());
  return {output_mask[0] ? dot(go, v_, at::Tensor(), kernel_size, dilation) : empty,
          output_mask[1] ? weighted_sum(a, go, kernel_size, dilation, true) : empty};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CUDA, m) {
  m.impl("na2d_qk_forward", &mmvit::na2d_qk_forward_cuda);
  m.impl("na2d_qk_backward", &mmvit::na2d_qk_backward_cuda);
  m.impl("na2d_av_forward", &mmvit::na2d_av_forward_cuda);
  m.impl("na2d_av_backward", &mmvit::na2d_av_backward_cuda);
}
