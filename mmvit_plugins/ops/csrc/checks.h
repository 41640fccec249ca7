// Argument checks shared by the CPU and CUDA implementations. They raise ValueError / TypeError
// in Python (TORCH_CHECK_VALUE / TORCH_CHECK_TYPE). The Python front end checks the same things
// first with friendlier messages; these guard direct `torch.ops.mmvit_plugins.*` calls, so that a
// bad call can never read out of bounds.
#pragma once

#include <torch/types.h>

namespace mmvit {

// float32 and float64 everywhere; float16 and bfloat16 too on CUDA, whose kernels load them
// natively and accumulate in float32 (the CPU kernels get them cast to float32 by Python).
inline void check_float(const at::Tensor& t, const char* name) {
  const auto s = t.scalar_type();
  const bool half = s == at::kHalf || s == at::kBFloat16;
  TORCH_CHECK_TYPE(s == at::kFloat || s == at::kDouble || (half && t.is_cuda()), name,
                   " must be float32 or float64 (or float16 / bfloat16 on CUDA), got ", s,
                   " on ", t.device());
}

inline void check_same(const at::Tensor& t, const at::Tensor& ref, const char* name,
                       const char* ref_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), name, " has dtype ", t.scalar_type(),
                   " but ", ref_name, " has ", ref.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), name, " is on ", t.device(), " but ", ref_name,
                    " is on ", ref.device());
}

inline void check_kernel(int64_t kernel_size, int64_t dilation) {
  TORCH_CHECK_VALUE(kernel_size >= 1 && kernel_size % 2 == 1,
                    "kernel_size must be a positive odd integer, got ", kernel_size);
  TORCH_CHECK_VALUE(dilation >= 1, "dilation must be >= 1, got ", dilation);
}

// ELSA aggregation: v [B, C, H, W], attn [B, G, k*k, H, W], ghosts [C, k, k] or undefined.
inline void check_elsa(const at::Tensor& v, const at::Tensor& attn,
                       const c10::optional<at::Tensor>& mul_ghost,
                       const c10::optional<at::Tensor>& add_ghost, int64_t kernel_size,
                       int64_t dilation) {
  check_kernel(kernel_size, dilation);
  TORCH_CHECK_VALUE(v.dim() == 4, "v must be [B, C, H, W], got ", v.sizes());
  TORCH_CHECK_VALUE(attn.dim() == 5, "attn must be [B, G, k*k, H, W], got ", attn.sizes());
  check_float(v, "v");
  check_same(attn, v, "attn", "v");
  const int64_t B = v.size(0), C = v.size(1), H = v.size(2), W = v.size(3);
  const int64_t G = attn.size(1);
  TORCH_CHECK_VALUE(attn.size(0) == B && attn.size(2) == kernel_size * kernel_size &&
                        attn.size(3) == H && attn.size(4) == W,
                    "attn must be [", B, ", G, ", kernel_size * kernel_size, ", ", H, ", ", W,
                    "], got ", attn.sizes());
  TORCH_CHECK_VALUE(G >= 1 && C % G == 0, "attn's head count G=", G,
                    " must divide the channels of v, C=", C);
  const char* names[2] = {"mul_ghost", "add_ghost"};
  const c10::optional<at::Tensor>* ghosts[2] = {&mul_ghost, &add_ghost};
  for (int i = 0; i < 2; ++i) {
    if (!ghosts[i]->has_value() || !(*ghosts[i])->defined()) continue;
    const at::Tensor& g = ghosts[i]->value();
    check_same(g, v, names[i], "v");
    TORCH_CHECK_VALUE(g.dim() == 3 && g.size(0) == C && g.size(1) == kernel_size &&
                          g.size(2) == kernel_size,
                      names[i], " must be [", C, ", ", kernel_size, ", ", kernel_size, "], got ",
                      g.sizes());
  }
}

// Neighbourhood attention: tensors are heads-last [B, H, W, heads, X].
inline void check_na_map(const at::Tensor& t, const char* name, int64_t kernel_size,
                         int64_t dilation) {
  TORCH_CHECK_VALUE(t.dim() == 5, name, " must be [B, H, W, heads, dim], got ", t.sizes());
  check_float(t, name);
  for (int axis = 1; axis <= 2; ++axis) {
    TORCH_CHECK_VALUE(t.size(axis) >= kernel_size * dilation, name, ": kernel_size * dilation = ",
                      kernel_size * dilation, " is larger than the map (", t.size(1), "x",
                      t.size(2), ")");
  }
}

inline void check_na_pair(const at::Tensor& a, const at::Tensor& b, const char* a_name,
                          const char* b_name, bool same_last) {
  check_same(b, a, b_name, a_name);
  bool ok = b.dim() == 5;
  for (int i = 0; ok && i < 4; ++i) ok = a.size(i) == b.size(i);
  if (same_last) ok = ok && a.size(4) == b.size(4);
  TORCH_CHECK_VALUE(ok, b_name, " ", b.sizes(), " does not match ", a_name, " ", a.sizes());
}

inline void check_rpb(const at::Tensor& rpb, const at::Tensor& ref, int64_t kernel_size) {
  check_same(rpb, ref, "rpb", "q");
  const int64_t n = 2 * kernel_size - 1;
  TORCH_CHECK_VALUE(rpb.dim() == 3 && rpb.size(0) == ref.size(3) && rpb.size(1) == n &&
                        rpb.size(2) == n,
                    "rpb must be [heads, 2k-1, 2k-1] = [", ref.size(3), ", ", n, ", ", n,
                    "], got ", rpb.sizes());
}

inline void check_na_attn(const at::Tensor& attn, const at::Tensor& ref, const char* name,
                          const char* ref_name, int64_t kernel_size) {
  check_na_pair(ref, attn, ref_name, name, false);
  TORCH_CHECK_VALUE(attn.size(4) == kernel_size * kernel_size, name, " must have k*k = ",
                    kernel_size * kernel_size, " taps in its last dim, got ", attn.sizes());
}

// The checks of each neighbourhood-attention entry point (shared by every device).
inline void check_na_qk(const at::Tensor& q, const at::Tensor& k,
                        const c10::optional<at::Tensor>& rpb, int64_t kernel_size,
                        int64_t dilation) {
  check_kernel(kernel_size, dilation);
  check_na_map(q, "q", kernel_size, dilation);
  check_na_pair(q, k, "q", "k", true);
  if (rpb.has_value() && rpb->defined()) check_rpb(*rpb, q, kernel_size);
}

inline void check_na_qk_backward(const at::Tensor& grad_attn, const at::Tensor& q,
                                 const at::Tensor& k, int64_t kernel_size, int64_t dilation) {
  check_na_qk(q, k, c10::nullopt, kernel_size, dilation);
  check_na_attn(grad_attn, q, "grad_attn", "q", kernel_size);
}

inline void check_na_av(const at::Tensor& attn, const at::Tensor& v, int64_t kernel_size,
                        int64_t dilation) {
  check_kernel(kernel_size, dilation);
  check_na_map(v, "v", kernel_size, dilation);
  check_na_attn(attn, v, "attn", "v", kernel_size);
}

inline void check_na_av_backward(const at::Tensor& grad_out, const at::Tensor& attn,
                                 const at::Tensor& v, int64_t kernel_size, int64_t dilation) {
  check_na_av(attn, v, kernel_size, dilation);
  check_na_pair(v, grad_out, "v", "grad_out", true);
}

// Fused neighbourhood attention: q, k, v of one shape; lse [B, H, W, heads].
inline void check_na_fused(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const c10::optional<at::Tensor>& rpb, int64_t kernel_size,
                           int64_t dilation) {
  check_na_qk(q, k, rpb, kernel_size, dilation);
  check_na_pair(q, v, "q", "v", true);
}

inline void check_na_fused_backward(const at::Tensor& grad_out, const at::Tensor& q,
                                    const at::Tensor& k, const at::Tensor& v,
                                    const c10::optional<at::Tensor>& rpb, const at::Tensor& out,
                                    const at::Tensor& lse, int64_t kernel_size,
                                    int64_t dilation) {
  check_na_fused(q, k, v, rpb, kernel_size, dilation);
  check_na_pair(q, grad_out, "q", "grad_out", true);
  check_na_pair(q, out, "q", "out", true);
  TORCH_CHECK_VALUE(lse.dim() == 4 && lse.sizes() == q.sizes().slice(0, 4),
                    "lse must be [B, H, W, heads], got ", lse.sizes());
  TORCH_CHECK_VALUE(lse.device() == q.device(), "lse is on ", lse.device(), " but q is on ",
                    q.device());
}

inline void check_elsa_backward(const at::Tensor& grad_out, const at::Tensor& v,
                                const at::Tensor& attn,
                                const c10::optional<at::Tensor>& mul_ghost,
                                const c10::optional<at::Tensor>& add_ghost, int64_t kernel_size,
                                int64_t dilation) {
  check_elsa(v, attn, mul_ghost, add_ghost, kernel_size, dilation);
  check_same(grad_out, v, "grad_out", "v");
  TORCH_CHECK_VALUE(grad_out.sizes() == v.sizes(), "grad_out ", grad_out.sizes(),
                    " must have the shape of v ", v.sizes());
}

}  // namespace mmvit
