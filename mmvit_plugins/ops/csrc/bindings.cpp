// The op schemas of mmvit_plugins (namespace `mmvit_plugins`, visible as torch.ops.mmvit_plugins.*).
// Implementations register per device: cpu/*.cpp always, cuda/*.cu when built WITH_CUDA.
#include <torch/extension.h>

#include "cpu/cpu_isa.h"

TORCH_LIBRARY(mmvit_plugins, m) {
  // ELSA aggregation (zero-padded centred windows, NCHW).
  m.def("elsa_aggregate_forward(Tensor v, Tensor attn, Tensor? mul_ghost, Tensor? add_ghost, "
        "int kernel_size, int dilation) -> Tensor");
  // Returns (grad_v, grad_attn, grad_mul_ghost, grad_add_ghost); entries not asked for in
  // output_mask are empty tensors.
  m.def("elsa_aggregate_backward(Tensor grad_out, Tensor v, Tensor attn, Tensor? mul_ghost, "
        "Tensor? add_ghost, int kernel_size, int dilation, bool[4] output_mask) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  // Neighbourhood attention (clamped windows, heads-last [B, H, W, heads, X]).
  m.def("na2d_qk_forward(Tensor q, Tensor k, Tensor? rpb, int kernel_size, int dilation) -> Tensor");
  m.def("na2d_qk_backward(Tensor grad_attn, Tensor q, Tensor k, int kernel_size, int dilation, "
        "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def("na2d_av_forward(Tensor attn, Tensor v, int kernel_size, int dilation) -> Tensor");
  // Fused neighbourhood attention: softmax(scale * q.k + rpb) v without storing the
  // k*k weights; returns (out, lse [B, H, W, heads] in float32, float64 for float64 inputs).
  m.def("na2d_fused_forward(Tensor q, Tensor k, Tensor v, Tensor? rpb, int kernel_size, "
        "int dilation, float scale) -> (Tensor, Tensor)");
  // Returns (grad_q, grad_k, grad_v, grad_rpb); entries not asked for are empty tensors.
  m.def("na2d_fused_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor? rpb, "
        "Tensor out, Tensor lse, int kernel_size, int dilation, float scale, bool[4] output_mask) "
        "-> (Tensor, Tensor, Tensor, Tensor)");
  m.def("na2d_av_backward(Tensor grad_out, Tensor attn, Tensor v, int kernel_size, int dilation, "
        "bool[2] output_mask) -> (Tensor, Tensor)");
}

bool with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}

// A Python module only so that `import mmvit_plugins._ext` loads the library (and its op
// registrations); the ops themselves are called through torch.ops.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("with_cuda", &with_cuda, "whether the CUDA implementations were compiled in");
  m.def("cpu_isa", [] { return std::string(mmvit::cpu_isa_name(mmvit::active_cpu_isa())); },
        "the instruction set of the CPU kernels that run: 'baseline' (x86-64) or 'avx2' "
        "(AVX2 + FMA)");
  m.def("available_cpu_isas", &mmvit::available_cpu_isas,
        "the CPU kernel builds that this build has and this CPU runs, baseline first");
  m.def("set_cpu_isa", &mmvit::set_cpu_isa, "run the CPU kernels built for this instruction set");
}
