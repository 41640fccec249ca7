// Neighbourhood attention 2-D on CUDA: entry points registered for the CUDA dispatch key.
// The kernels are a later milestone; until then the Python front end runs the PyTorch reference
// for CUDA tensors, and a direct torch.ops call validates its arguments and raises
// NotImplementedError.
#include <torch/extension.h>

#include "../checks.h"

namespace mmvit {
namespace {

at::Tensor na2d_qk_forward_cuda(const at::Tensor& q, const at::Tensor& k,
                                const c10::optional<at::Tensor>& rpb, int64_t kernel_size,
                                int64_t dilation) {
  check_na_qk(q, k, rpb, kernel_size, dilation);
  not_implemented("na2d_qk_forward", "CUDA");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> na2d_qk_backward_cuda(
    const at::Tensor& grad_attn, const at::Tensor& q, const at::Tensor& k, int64_t kernel_size,
    int64_t dilation, std::array<bool, 3> output_mask) {
  check_na_qk_backward(grad_attn, q, k, kernel_size, dilation);
  not_implemented("na2d_qk_backward", "CUDA");
}

at::Tensor na2d_av_forward_cuda(const at::Tensor& attn, const at::Tensor& v, int64_t kernel_size,
                                int64_t dilation) {
  check_na_av(attn, v, kernel_size, dilation);
  not_implemented("na2d_av_forward", "CUDA");
}

std::tuple<at::Tensor, at::Tensor> na2d_av_backward_cuda(const at::Tensor& grad_out,
                                                         const at::Tensor& attn,
                                                         const at::Tensor& v, int64_t kernel_size,
                                                         int64_t dilation,
                                                         std::array<bool, 2> output_mask) {
  check_na_av_backward(grad_out, attn, v, kernel_size, dilation);
  not_implemented("na2d_av_backward", "CUDA");
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CUDA, m) {
  m.impl("na2d_qk_forward", &mmvit::na2d_qk_forward_cuda);
  m.impl("na2d_qk_backward", &mmvit::na2d_qk_backward_cuda);
  m.impl("na2d_av_forward", &mmvit::na2d_av_forward_cuda);
  m.impl("na2d_av_backward", &mmvit::na2d_av_backward_cuda);
}
