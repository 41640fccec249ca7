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

// Fused kernels: each thread keeps its scratch (k*k weights, or 2d accumulators) in dynamic
// shared memory, `per_thread` A values.
template <typename T, typename A>
__global__ void fused_forward_kernel(int64_t n, NaShape s, const T* q, const T* k, const T* v,
                                     const T* rpb, A scale, T* out, A* lse, int per_thread) {
  extern __shared__ __align__(16) unsigned char smem[];
  A* scratch = reinterpret_cast<A*>(smem) + threadIdx.x * int64_t(per_thread);
  MMVIT_GRID_LOOP(i, n) na_fused_forward_element<T, A>(i, s, q, k, v, rpb, scale, out, lse,
                                                        scratch);
}

template <typename T, typename A>
__global__ void fused_delta_kernel(int64_t n, NaShape s, const T* dout, const T* out,
                                   A* delta) {
  MMVIT_GRID_LOOP(i, n) na_fused_delta_element<T, A>(i, s, dout, out, delta);
}

template <typename T, typename A>
__global__ void fused_grad_q_kernel(int64_t n, NaShape s, const T* q, const T* k, const T* v,
                                    const T* rpb, const T* dout, const A* lse, const A* delta,
                                    A scale, T* dq, int per_thread) {
  extern __shared__ __align__(16) unsigned char smem[];
  A* scratch = reinterpret_cast<A*>(smem) + threadIdx.x * int64_t(per_thread);
  MMVIT_GRID_LOOP(i, n)
    na_fused_grad_q_element<T, A>(i, s, q, k, v, rpb, dout, lse, delta, scale, dq, scratch);
}

template <typename T, typename A>
__global__ void fused_grad_kv_kernel(int64_t n, NaShape s, const T* q, const T* k, const T* v,
                                     const T* rpb, const T* dout, const A* lse, const A* delta,
                                     A scale, T* dk, T* dv, int per_thread) {
  extern __shared__ __align__(16) unsigned char smem[];
  A* scratch = reinterpret_cast<A*>(smem) + threadIdx.x * int64_t(per_thread);
  MMVIT_GRID_LOOP(i, n)
    na_fused_grad_kv_element<T, A>(i, s, q, k, v, rpb, dout, lse, delta, scale, dk, dv,
                                   scratch);
}

template <typename T, typename A>
__global__ void fused_rpb_kernel(NaShape s, const T* q, const T* k, const T* v, const T* rpb,
                                 const T* dout, const A* lse, const A* delta, A scale, A* out) {
  __shared__ A part[kThreads];
  const int R = 2 * s.k - 1;
  const int64_t h = blockIdx.x / (R * R);
  const int ry = (blockIdx.x / R) % R, rx = blockIdx.x % R;
  part[threadIdx.x] = na_fused_rpb_part<T, A>(h, ry, rx, threadIdx.x, blockDim.x, s, q, k, v,
                                              rpb, dout, lse, delta, scale);
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

// Threads per block for a per-thread scratch of `bytes`: at most 128, within 40 KB of shared
// memory (under the 48 KB every GPU gives without opting in).
int scratch_threads(int64_t bytes) {
  return int(std::max<int64_t>(1, std::min<int64_t>(128, (40 * 1024) / std::max<int64_t>(1, bytes))));
}

int64_t scratch_blocks(int64_t n, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, 65535 * 8));
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

std::tuple<at::Tensor, at::Tensor> na2d_fused_forward_cuda(const at::Tensor& q_in,
                                                           const at::Tensor& k_in,
                                                           const at::Tensor& v_in,
                                                           const c10::optional<at::Tensor>& rpb,
                                                           int64_t kernel_size, int64_t dilation,
                                                           double scale) {
  check_na_fused(q_in, k_in, v_in, rpb, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(q_in));
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const at::Tensor r = rpb.has_value() && rpb->defined() ? rpb->contiguous() : at::Tensor();
  const NaShape s = shape_of(q, kernel_size, dilation);
  at::Tensor out = at::empty_like(q);
  at::Tensor lse;
  MMVIT_DISPATCH(q.scalar_type(), "na2d_fused_forward", [&] {
    using A = at::opmath_type<scalar_t>;
    lse = at::empty({s.B, s.H, s.W, s.heads},
                    q.options().dtype(c10::CppTypeToScalarType<A>::value));
    const int64_t n = lse.numel();
    if (n == 0) return;
    const int per = int(kernel_size * kernel_size);
    const int threads = scratch_threads(per * int64_t(sizeof(A)));
    fused_forward_kernel<scalar_t, A><<<scratch_blocks(n, threads), threads,
                                        threads * per * sizeof(A),
                                        c10::cuda::getCurrentCUDAStream()>>>(
        n, s, ptr<scalar_t>(q), ptr<scalar_t>(k), ptr<scalar_t>(v), ptr<scalar_t>(r), A(scale),
        out.data_ptr<scalar_t>(), lse.data_ptr<A>(), per);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> na2d_fused_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& q_in, const at::Tensor& k_in,
    const at::Tensor& v_in, const c10::optional<at::Tensor>& rpb, const at::Tensor& out_in,
    const at::Tensor& lse_in, int64_t kernel_size, int64_t dilation, double scale,
    std::array<bool, 4> output_mask) {
  check_na_fused_backward(grad_out, q_in, k_in, v_in, rpb, out_in, lse_in, kernel_size,
                          dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(q_in));
  const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const at::Tensor dout = grad_out.contiguous(), out = out_in.contiguous();
  const at::Tensor r = rpb.has_value() && rpb->defined() ? rpb->contiguous() : at::Tensor();
  const NaShape s = shape_of(q, kernel_size, dilation);
  const int64_t R = 2 * kernel_size - 1;
  at::Tensor empty = at::empty({0}, q.options());
  at::Tensor dq = empty, dk = empty, dv = empty, drpb = empty;
  MMVIT_DISPATCH(q.scalar_type(), "na2d_fused_backward", [&] {
    using A = at::opmath_type<scalar_t>;
    const auto acc_opts = q.options().dtype(c10::CppTypeToScalarType<A>::value);
    const at::Tensor lse = lse_in.to(acc_opts).contiguous();
    at::Tensor delta = at::empty_like(lse);
    const int64_t n = lse.numel();
    auto stream = c10::cuda::getCurrentCUDAStream();
    const scalar_t *qp = ptr<scalar_t>(q), *kp = ptr<scalar_t>(k), *vp = ptr<scalar_t>(v);
    const scalar_t *rp = ptr<scalar_t>(r), *gp = ptr<scalar_t>(dout);
    if (n > 0) {
      fused_delta_kernel<scalar_t, A><<<num_blocks(n), kThreads, 0, stream>>>(
          n, s, gp, ptr<scalar_t>(out), delta.data_ptr<A>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (output_mask[0]) {
      dq = at::empty_like(q);
      const int per = int(kernel_size * kernel_size);
      const int threads = scratch_threads(per * int64_t(sizeof(A)));
      if (n > 0) {
        fused_grad_q_kernel<scalar_t, A><<<scratch_blocks(n, threads), threads,
                                           threads * per * sizeof(A), stream>>>(
            n, s, qp, kp, vp, rp, gp, lse.data_ptr<A>(), delta.data_ptr<A>(), A(scale),
            dq.data_ptr<scalar_t>(), per);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[1] || output_mask[2]) {
      if (output_mask[1]) dk = at::empty_like(k);
      if (output_mask[2]) dv = at::empty_like(v);
      const int per = int(2 * s.d);
      const int threads = scratch_threads(per * int64_t(sizeof(A)));
      if (n > 0) {
        fused_grad_kv_kernel<scalar_t, A><<<scratch_blocks(n, threads), threads,
                                            threads * per * sizeof(A), stream>>>(
            n, s, qp, kp, vp, rp, gp, lse.data_ptr<A>(), delta.data_ptr<A>(), A(scale),
            output_mask[1] ? dk.data_ptr<scalar_t>() : nullptr,
            output_mask[2] ? dv.data_ptr<scalar_t>() : nullptr, per);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (output_mask[3] && r.defined()) {
      at::Tensor acc = at::zeros({s.heads, R, R}, acc_opts);
      if (n > 0) {
        fused_rpb_kernel<scalar_t, A><<<s.heads * R * R, kThreads, 0, stream>>>(
            s, qp, kp, vp, rp, gp, lse.data_ptr<A>(), delta.data_ptr<A>(), A(scale),
            acc.data_ptr<A>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      drpb = acc.to(q.scalar_type());
    }
  });
  return {dq, dk, dv, drpb};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CUDA, m) {
  m.impl("na2d_fused_forward", &mmvit::na2d_fused_forward_cuda);
  m.impl("na2d_fused_backward", &mmvit::na2d_fused_backward_cuda);
  m.impl("na2d_qk_forward", &mmvit::na2d_qk_forward_cuda);
  m.impl("na2d_qk_backward", &mmvit::na2d_qk_backward_cuda);
  m.impl("na2d_av_forward", &mmvit::na2d_av_forward_cuda);
  m.impl("na2d_av_backward", &mmvit::na2d_av_backward_cuda);
}
