// ELSA aggregation on CUDA: float32, float64, float16 and bfloat16 (16-bit types accumulate in
// float32), any map size, kernel size and dilation, 64-bit indexing.
//
// One thread per output element for the forward pass, grad_v (gathered over the transposed
// filter: no atomics) and grad_attn; one block per (channel, tap) for the ghost gradients (a
// block reduction over the batch and the map). The per-element math lives in
// elsa_aggregate_kernels.cuh, which the tests also run on the host. Kernels run on the current
// stream of the inputs' device; launch errors raise.
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <algorithm>

#include "../checks.h"
#include "elsa_aggregate_kernels.cuh"

namespace mmvit {
namespace {

constexpr int kThreads = 256;

int64_t num_blocks(int64_t n) {
  // grid-stride loops; enough blocks to fill any current GPU several times over
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}

template <typename T, typename A>
__global__ void forward_kernel(int64_t n, ElsaShape s, const T* v, const T* attn, const T* m,
                               const T* bg, T* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    elsa_forward_element<T, A>(i, s, v, attn, m, bg, out);
}

template <typename T, typename A>
__global__ void grad_v_kernel(int64_t n, ElsaShape s, const T* dy, const T* attn, const T* m,
                              const T* bg, T* dv) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    elsa_grad_v_element<T, A>(i, s, dy, attn, m, bg, dv);
}

template <typename T, typename A>
__global__ void grad_attn_kernel(int64_t n, ElsaShape s, const T* dy, const T* v, const T* m,
                                 T* da) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    elsa_grad_attn_element<T, A>(i, s, dy, v, m, da);
}

// One block per (c, t) (blockIdx.x = c * k*k + t): gm[c, t] and gb[c, t] in A.
template <typename T, typename A>
__global__ void grad_ghost_kernel(ElsaShape s, const T* dy, const T* v, const T* attn, A* gm,
                                  A* gb) {
  __shared__ A sm[kThreads], sb[kThreads];
  const int64_t K = int64_t(s.k) * s.k, c = blockIdx.x / K, t = blockIdx.x % K;
  A pm, pb;
  elsa_grad_ghost_part<T, A>(c, t, threadIdx.x, blockDim.x, s, dy, v, attn, &pm, &pb);
  sm[threadIdx.x] = pm;
  sb[threadIdx.x] = pb;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      sm[threadIdx.x] += sm[threadIdx.x + half];
      sb[threadIdx.x] += sb[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (gm) gm[blockIdx.x] = sm[0];
    if (gb) gb[blockIdx.x] = sb[0];
  }
}

const at::Tensor* opt(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? &t.value() : nullptr;
}

ElsaShape shape_of(const at::Tensor& v, const at::Tensor& attn, int64_t k, int64_t dil) {
  return ElsaShape{v.size(0), v.size(1), attn.size(1), v.size(2), v.size(3), int(k), int(dil)};
}

template <typename T>
const T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

at::Tensor elsa_aggregate_forward_cuda(const at::Tensor& v_in, const at::Tensor& attn_in,
                                       const c10::optional<at::Tensor>& mul_ghost,
                                       const c10::optional<at::Tensor>& add_ghost,
                                       int64_t kernel_size, int64_t dilation) {
  check_elsa(v_in, attn_in, mul_ghost, add_ghost, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(v_in));
  const at::Tensor v = v_in.contiguous(), attn = attn_in.contiguous();
  const at::Tensor m = opt(mul_ghost) ? mul_ghost->contiguous() : at::Tensor();
  const at::Tensor bg = opt(add_ghost) ? add_ghost->contiguous() : at::Tensor();
  at::Tensor out = at::empty_like(v);
  const int64_t n = v.numel();
  if (n == 0) return out;
  const ElsaShape s = shape_of(v, attn, kernel_size, dilation);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "elsa_forward", [&] {
    using A = at::opmath_type<scalar_t>;
    forward_kernel<scalar_t, A><<<num_blocks(n), kThreads, 0, stream>>>(
        n, s, ptr<scalar_t>(v), ptr<scalar_t>(attn), ptr<scalar_t>(m), ptr<scalar_t>(bg),
        out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> elsa_aggregate_backward_cuda(
    const at::Tensor& grad_out_in, const at::Tensor& v_in, const at::Tensor& attn_in,
    const c10::optional<at::Tensor>& mul_ghost, const c10::optional<at::Tensor>& add_ghost,
    int64_t kernel_size, int64_t dilation, std::array<bool, 4> output_mask) {
  check_elsa_backward(grad_out_in, v_in, attn_in, mul_ghost, add_ghost, kernel_size, dilation);
  const c10::cuda::OptionalCUDAGuard guard(device_of(v_in));
  const at::Tensor dy = grad_out_in.contiguous(), v = v_in.contiguous();
  const at::Tensor attn = attn_in.contiguous();
  const at::Tensor m = opt(mul_ghost) ? mul_ghost->contiguous() : at::Tensor();
  const at::Tensor bg = opt(add_ghost) ? add_ghost->contiguous() : at::Tensor();
  const bool need_v = output_mask[0], need_a = output_mask[1];
  const bool need_m = output_mask[2] && m.defined(), need_b = output_mask[3] && bg.defined();
  const auto opts = v.options();
  at::Tensor dv = need_v ? at::empty_like(v) : at::empty({0}, opts);
  at::Tensor da = need_a ? at::empty_like(attn) : at::empty({0}, opts);
  at::Tensor dm = at::empty({0}, opts), db = at::empty({0}, opts);
  const ElsaShape s = shape_of(v, attn, kernel_size, dilation);
  const int64_t K = kernel_size * kernel_size;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "elsa_backward", [&] {
    using A = at::opmath_type<scalar_t>;
    const scalar_t* mp = ptr<scalar_t>(m);
    const scalar_t* bp = ptr<scalar_t>(bg);
    if (need_v && v.numel() > 0) {
      grad_v_kernel<scalar_t, A><<<num_blocks(v.numel()), kThreads, 0, stream>>>(
          v.numel(), s, ptr<scalar_t>(dy), ptr<scalar_t>(attn), mp, bp, dv.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (need_a && attn.numel() > 0) {
      grad_attn_kernel<scalar_t, A><<<num_blocks(attn.numel()), kThreads, 0, stream>>>(
          attn.numel(), s, ptr<scalar_t>(dy), ptr<scalar_t>(v), mp, da.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (need_m || need_b) {
      // accumulated in A (float32 for the 16-bit types), returned in the input dtype
      const auto acc_opts = opts.dtype(c10::CppTypeToScalarType<A>::value);
      at::Tensor gm = at::zeros({s.C, kernel_size, kernel_size}, acc_opts);
      at::Tensor gb = at::zeros({s.C, kernel_size, kernel_size}, acc_opts);
      if (v.numel() > 0) {
        grad_ghost_kernel<scalar_t, A><<<s.C * K, kThreads, 0, stream>>>(
            s, ptr<scalar_t>(dy), ptr<scalar_t>(v), ptr<scalar_t>(attn),
            need_m ? gm.data_ptr<A>() : nullptr, need_b ? gb.data_ptr<A>() : nullptr);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      if (need_m) dm = gm.to(v.scalar_type());
      if (need_b) db = gb.to(v.scalar_type());
    }
  });
  return {dv, da, dm, db};
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CUDA, m) {
  m.impl("elsa_aggregate_forward", &mmvit::elsa_aggregate_forward_cuda);
  m.impl("elsa_aggregate_backward", &mmvit::elsa_aggregate_backward_cuda);
}
