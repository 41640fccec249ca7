// ELSA aggregation on CUDA: entry points registered for the CUDA dispatch key.
// The kernels are a later milestone; until then the Python front end runs the PyTorch reference
// for CUDA tensors, and a direct torch.ops call validates its arguments and raises
// NotImplementedError.
#include <torch/extension.h>

#include "../checks.h"

namespace mmvit {
namespace {

at::Tensor elsa_aggregate_forward_cuda(const at::Tensor& v, const at::Tensor& attn,
                                       const c10::optional<at::Tensor>& mul_ghost,
                                       const c10::optional<at::Tensor>& add_ghost,
                                       int64_t kernel_size, int64_t dilation) {
  check_elsa(v, attn, mul_ghost, add_ghost, kernel_size, dilation);
  not_implemented("elsa_aggregate_forward", "CUDA");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> elsa_aggregate_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& v, const at::Tensor& attn,
    const c10::optional<at::Tensor>& mul_ghost, const c10::optional<at::Tensor>& add_ghost,
    int64_t kernel_size, int64_t dilation, std::array<bool, 4> output_mask) {
  check_elsa_backward(grad_out, v, attn, mul_ghost, add_ghost, kernel_size, dilation);
  not_implemented("elsa_aggregate_backward", "CUDA");
}

}  // namespace
}  // namespace mmvit

TORCH_LIBRARY_IMPL(mmvit_plugins, CUDA, m) {
  m.impl("elsa_aggregate_forward", &mmvit::elsa_aggregate_forward_cuda);
  m.impl("elsa_aggregate_backward", &mmvit::elsa_aggregate_backward_cuda);
}
