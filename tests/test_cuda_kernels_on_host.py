"""The CUDA kernels' per-element code, run on the host (ELSA aggregation, neighbourhood attention).

The CUDA kernels of the ops keep all their index math in ``MMVIT_HOST_DEVICE`` functions
(``mmvit_plugins/ops/csrc/cuda/*_kernels.cuh``): one call per thread on the GPU. This test
compiles the same headers with the host compiler into a small extension that loops over every
element (and, for block reductions, over every thread of a block), and compares the results with
the pure-PyTorch references: the GPU kernels' arithmetic is checked without a GPU. What it
cannot check (launch configuration, shared memory, the device itself) is covered by
tests/test_ops_cuda.py on a machine with a GPU.

The small extension is cached by content, as tests/test_cuda_build.py's build: under
``$MMVIT_CACHE/cuda-kernels-on-host/<key>`` (default ``~/.cache/mmvit_plugins``), the key a hash
of the source below, of every file of ``mmvit_plugins/ops/csrc`` and of the torch and Python
versions; ``MMVIT_NO_BUILD_CACHE=1`` builds it afresh in a temporary folder.
"""
import os
import os.path as osp
import sys

import pytest
import torch

from _build_cache import CSRC_FILES, cache_dir, content_key, use_cache
from mmvit_plugins import ops

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CSRC = osp.join(ROOT, 'mmvit_plugins', 'ops', 'csrc')

SOURCE = r'''
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include "cuda/elsa_aggregate_kernels.cuh"
#include "cuda/na2d_kernels.cuh"

using namespace mmvit;

namespace {
const at::Tensor* opt(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? &t.value() : nullptr;
}
template <typename T> const T* ptr(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}
ElsaShape shape_of(const at::Tensor& v, const at::Tensor& attn, int64_t k, int64_t dil) {
  return ElsaShape{v.size(0), v.size(1), attn.size(1), v.size(2), v.size(3), int(k), int(dil)};
}
}  // namespace

// Every element of the forward, as the CUDA grid would compute them.
at::Tensor elsa_forward(at::Tensor v, at::Tensor attn, c10::optional<at::Tensor> mul,
                        c10::optional<at::Tensor> add, int64_t k, int64_t dil) {
  at::Tensor m = opt(mul) ? mul->contiguous() : at::Tensor();
  at::Tensor bg = opt(add) ? add->contiguous() : at::Tensor();
  v = v.contiguous(); attn = attn.contiguous();
  at::Tensor out = at::empty_like(v);
  const ElsaShape s = shape_of(v, attn, k, dil);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "emu", [&] {
    using A = at::opmath_type<scalar_t>;
    for (int64_t i = 0; i < v.numel(); ++i)
      elsa_forward_element<scalar_t, A>(i, s, ptr<scalar_t>(v), ptr<scalar_t>(attn),
                                        ptr<scalar_t>(m), ptr<scalar_t>(bg),
                                        out.data_ptr<scalar_t>());
  });
  return out;
}

// grad_v, grad_attn and the ghost gradients; the ghost reduction as a block of `threads`
// threads would do it (each thread a strided part, then the sum of the parts).
std::vector<at::Tensor> elsa_backward(at::Tensor dy, at::Tensor v, at::Tensor attn,
                                      c10::optional<at::Tensor> mul,
                                      c10::optional<at::Tensor> add, int64_t k, int64_t dil,
                                      int64_t threads) {
  at::Tensor m = opt(mul) ? mul->contiguous() : at::Tensor();
  at::Tensor bg = opt(add) ? add->contiguous() : at::Tensor();
  dy = dy.contiguous(); v = v.contiguous(); attn = attn.contiguous();
  at::Tensor dv = at::empty_like(v), da = at::empty_like(attn);
  const ElsaShape s = shape_of(v, attn, k, dil);
  const int64_t K = k * k;
  std::vector<at::Tensor> result;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, v.scalar_type(), "emu", [&] {
    using A = at::opmath_type<scalar_t>;
    for (int64_t i = 0; i < v.numel(); ++i)
      elsa_grad_v_element<scalar_t, A>(i, s, ptr<scalar_t>(dy), ptr<scalar_t>(attn),
                                       ptr<scalar_t>(m), ptr<scalar_t>(bg),
                                       dv.data_ptr<scalar_t>());
    for (int64_t i = 0; i < attn.numel(); ++i)
      elsa_grad_attn_element<scalar_t, A>(i, s, ptr<scalar_t>(dy), ptr<scalar_t>(v),
                                          ptr<scalar_t>(m), da.data_ptr<scalar_t>());
    const auto acc = v.options().dtype(c10::CppTypeToScalarType<A>::value);
    at::Tensor gm = at::zeros({s.C, k, k}, acc), gb = at::zeros({s.C, k, k}, acc);
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t t = 0; t < K; ++t) {
        A sm = 0, sb = 0;
        for (int64_t thread = 0; thread < threads; ++thread) {
          A pm, pb;
          elsa_grad_ghost_part<scalar_t, A>(c, t, thread, threads, s, ptr<scalar_t>(dy),
                                            ptr<scalar_t>(v), ptr<scalar_t>(attn), &pm, &pb);
          sm += pm;
          sb += pb;
        }
        gm.data_ptr<A>()[c * K + t] = sm;
        gb.data_ptr<A>()[c * K + t] = sb;
      }
    result = {dv, da, gm.to(v.scalar_type()), gb.to(v.scalar_type())};
  });
  return result;
}

NaShape na_shape(const at::Tensor& t, int64_t k, int64_t dil) {
  return NaShape{t.size(0), t.size(1), t.size(2), t.size(3), t.size(4), int(k), int(dil)};
}

// The four neighbourhood-attention element kinds, over every element (and every thread of a
// 256-thread block for grad_rpb), as the CUDA entry points use them.
at::Tensor na_dot(at::Tensor a, at::Tensor b, c10::optional<at::Tensor> rpb, int64_t k,
                  int64_t dil) {
  a = a.contiguous(); b = b.contiguous();
  at::Tensor r = opt(rpb) ? rpb->contiguous() : at::Tensor();
  const NaShape s = na_shape(a, k, dil);
  at::Tensor out = at::empty({s.B, s.H, s.W, s.heads, k * k}, a.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "emu", [&] {
    using A = at::opmath_type<scalar_t>;
    for (int64_t i = 0; i < out.numel(); ++i)
      na_dot_element<scalar_t, A>(i, s, ptr<scalar_t>(a), ptr<scalar_t>(b), ptr<scalar_t>(r),
                                  out.data_ptr<scalar_t>());
  });
  return out;
}

at::Tensor na_sum(at::Tensor w, at::Tensor b, int64_t k, int64_t dil, bool inverse) {
  w = w.contiguous(); b = b.contiguous();
  const NaShape s = na_shape(b, k, dil);
  at::Tensor out = at::empty_like(b);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.scalar_type(), "emu", [&] {
    using A = at::opmath_type<scalar_t>;
    for (int64_t i = 0; i < out.numel(); ++i) {
      if (inverse)
        na_inverse_element<scalar_t, A>(i, s, ptr<scalar_t>(w), ptr<scalar_t>(b),
                                        out.data_ptr<scalar_t>());
      else
        na_sum_element<scalar_t, A>(i, s, ptr<scalar_t>(w), ptr<scalar_t>(b),
                                    out.data_ptr<scalar_t>());
    }
  });
  return out;
}

at::Tensor na_rpb_grad(at::Tensor grad_attn, at::Tensor like, int64_t k, int64_t dil) {
  grad_attn = grad_attn.contiguous();
  const NaShape s = na_shape(like, k, dil);
  const int64_t R = 2 * k - 1;
  at::Tensor out = at::zeros({s.heads, R, R}, like.options());
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "emu", [&] {
    for (int64_t h = 0; h < s.heads; ++h)
      for (int ry = 0; ry < R; ++ry)
        for (int rx = 0; rx < R; ++rx) {
          scalar_t acc = 0;
          for (int64_t thread = 0; thread < 256; ++thread)
            acc += na_rpb_grad_part<scalar_t, scalar_t>(h, ry, rx, thread, 256, s,
                                                        ptr<scalar_t>(grad_attn));
          out.data_ptr<scalar_t>()[(h * R + ry) * R + rx] = acc;
        }
  });
  return out;
}

// The fused kernels' element functions over every query / key (scratch as a stack buffer).
std::vector<at::Tensor> na_fused_forward(at::Tensor q, at::Tensor k, at::Tensor v,
                                         c10::optional<at::Tensor> rpb, int64_t ks, int64_t dil,
                                         double scale) {
  q = q.contiguous(); k = k.contiguous(); v = v.contiguous();
  at::Tensor r = opt(rpb) ? rpb->contiguous() : at::Tensor();
  const NaShape s = na_shape(q, ks, dil);
  at::Tensor out = at::empty_like(q), lse = at::empty({s.B, s.H, s.W, s.heads}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "emu", [&] {
    std::vector<scalar_t> p(ks * ks);
    for (int64_t i = 0; i < lse.numel(); ++i)
      na_fused_forward_element<scalar_t, scalar_t>(
          i, s, ptr<scalar_t>(q), ptr<scalar_t>(k), ptr<scalar_t>(v), ptr<scalar_t>(r),
          scalar_t(scale), out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(), p.data());
  });
  return {out, lse};
}

std::vector<at::Tensor> na_fused_backward(at::Tensor dout, at::Tensor q, at::Tensor k,
                                          at::Tensor v, c10::optional<at::Tensor> rpb,
                                          at::Tensor out, at::Tensor lse, int64_t ks,
                                          int64_t dil, double scale) {
  at::Tensor r = opt(rpb) ? rpb->contiguous() : at::Tensor();
  const NaShape s = na_shape(q, ks, dil);
  const int64_t R = 2 * ks - 1;
  at::Tensor dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v);
  at::Tensor delta = at::empty_like(lse), drpb = at::zeros({s.heads, R, R}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "emu", [&] {
    using T = scalar_t;
    const T *qp = ptr<T>(q), *kp = ptr<T>(k), *vp = ptr<T>(v), *rp = ptr<T>(r);
    const T* gp = ptr<T>(dout);
    const T sc = T(scale);
    T* dp = delta.data_ptr<T>();
    for (int64_t i = 0; i < lse.numel(); ++i)
      na_fused_delta_element<T, T>(i, s, gp, ptr<T>(out), dp);
    std::vector<T> scratch(std::max<int64_t>(ks * ks, 2 * s.d));
    for (int64_t i = 0; i < lse.numel(); ++i) {
      na_fused_grad_q_element<T, T>(i, s, qp, kp, vp, rp, gp, ptr<T>(lse), dp, sc,
                                    dq.data_ptr<T>(), scratch.data());
      na_fused_grad_kv_element<T, T>(i, s, qp, kp, vp, rp, gp, ptr<T>(lse), dp, sc,
                                     dk.data_ptr<T>(), dv.data_ptr<T>(), scratch.data());
    }
    for (int64_t h = 0; h < s.heads; ++h)
      for (int ry = 0; ry < R; ++ry)
        for (int rx = 0; rx < R; ++rx) {
          T acc = 0;
          for (int64_t thread = 0; thread < 64; ++thread)
            acc += na_fused_rpb_part<T, T>(h, ry, rx, thread, 64, s, qp, kp, vp, rp, gp,
                                           ptr<T>(lse), dp, sc);
          drpb.data_ptr<T>()[(h * R + ry) * R + rx] = acc;
        }
  });
  return {dq, dk, dv, drpb};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("na_fused_forward", &na_fused_forward);
  m.def("na_fused_backward", &na_fused_backward);
  m.def("elsa_forward", &elsa_forward);
  m.def("elsa_backward", &elsa_backward);
  m.def("na_dot", &na_dot);
  m.def("na_sum", &na_sum);
  m.def("na_rpb_grad", &na_rpb_grad);
}
'''


def build_dir(tmp_path_factory) -> str:
    """The cache entry of this source, headers and toolchain (see the module docstring)."""
    if not use_cache():
        return str(tmp_path_factory.mktemp('cuda_kernels_on_host'))
    path = osp.join(cache_dir('cuda-kernels-on-host'),
                    content_key(CSRC_FILES, f'{SOURCE}|{torch.__version__}|{sys.version}'))
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    from torch.utils.cpp_extension import load_inline
    build = build_dir(tmp_path_factory)
    return load_inline('mmvit_cuda_kernels_on_host', cpp_sources=SOURCE, functions=None,
                       extra_include_paths=[CSRC], extra_cflags=['-O2'],
                       build_directory=str(build), verbose=False)


def elsa_case(B, C, G, H, W, k, dtype=torch.float64, mul=True, add=True):
    g = torch.Generator().manual_seed(B * 1000 + C * 10 + H + k)
    v = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    attn = torch.randn(B, G, k * k, H, W, generator=g, dtype=dtype).softmax(2)
    m = torch.randn(C, k, k, generator=g, dtype=dtype) if mul else None
    bg = torch.randn(C, k, k, generator=g, dtype=dtype) * 0.1 if add else None
    return v, attn, m, bg


ELSA_CASES = [  # (B, C, G, H, W, k, dil): odd sizes, C=1, maps smaller than the window
    (2, 6, 3, 7, 9, 3, 1),
    (1, 1, 1, 10, 10, 5, 2),
    (2, 8, 2, 15, 11, 7, 1),
    (1, 4, 4, 3, 4, 7, 1),
    (3, 70, 2, 5, 6, 3, 2),
]


@pytest.mark.slow
@pytest.mark.parametrize('case', ELSA_CASES, ids=str)
@pytest.mark.parametrize('ghosts', [(True, True), (False, True), (True, False)])
def test_elsa_cuda_kernels_match_the_reference_float64(emu, case, ghosts):
    B, C, G, H, W, k, dil = case
    v, attn, m, bg = elsa_case(B, C, G, H, W, k, mul=ghosts[0], add=ghosts[1])
    ref = ops.elsa_aggregate_reference(v, attn, k, dil, m, bg)
    torch.testing.assert_close(emu.elsa_forward(v, attn, m, bg, k, dil), ref, rtol=1e-12,
                               atol=1e-12)

    leaves = [t.clone().requires_grad_(True) for t in (v, attn)]
    ghost_leaves = [None if t is None else t.clone().requires_grad_(True) for t in (m, bg)]
    dy = torch.randn_like(v)
    ops.elsa_aggregate_reference(*leaves, k, dil, *ghost_leaves).backward(dy)
    for threads in (1, 256):  # one thread, and the strided parts of a 256-thread block
        dv, da, dm, db = emu.elsa_backward(dy, v, attn, m, bg, k, dil, threads)
        torch.testing.assert_close(dv, leaves[0].grad, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(da, leaves[1].grad, rtol=1e-12, atol=1e-12)
        if m is not None:
            torch.testing.assert_close(dm, ghost_leaves[0].grad, rtol=1e-12, atol=1e-12)
        if bg is not None:
            torch.testing.assert_close(db, ghost_leaves[1].grad, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-5), (torch.float16, 2e-3),
                                       (torch.bfloat16, 1.6e-2)])
def test_elsa_cuda_kernels_low_precision_accumulate_in_float32(emu, dtype, tol):
    """16-bit inputs are read as they are and summed in float32: the error is the rounding of
    the output only (compared with the float64 reference on the same rounded inputs)."""
    v, attn, m, bg = elsa_case(2, 8, 2, 12, 13, 7, dtype=dtype)
    ref = ops.elsa_aggregate_reference(*(t.double() for t in (v, attn)), 7, 1, m.double(),
                                       bg.double())
    out = emu.elsa_forward(v, attn, m, bg, 7, 1)
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol * ref.abs().max().item())


NA_CASES = [  # (B, H, W, heads, d, k, dil): odd and non-square maps, dilation, map = k * dil
    (2, 9, 11, 2, 5, 3, 1),
    (1, 13, 10, 3, 4, 5, 2),
    (1, 7, 7, 1, 8, 7, 1),
    (2, 15, 12, 2, 3, 3, 4),
    (1, 14, 16, 2, 16, 7, 2),
]


@pytest.mark.slow
@pytest.mark.parametrize('case', NA_CASES, ids=str)
def test_na_cuda_kernels_match_the_reference_float64(emu, case):
    B, H, W, heads, d, k, dil = case
    g = torch.Generator().manual_seed(H * 100 + W + k)
    q, key, v = (torch.randn(B, H, W, heads, d, generator=g, dtype=torch.float64)
                 for _ in range(3))
    rpb = torch.randn(heads, 2 * k - 1, 2 * k - 1, generator=g, dtype=torch.float64)
    attn = torch.randn(B, H, W, heads, k * k, generator=g, dtype=torch.float64).softmax(-1)
    tol = dict(rtol=1e-12, atol=1e-12)

    # qk: forward (dot element with bias), grad_q (sum), grad_k (inverse), grad_rpb (parts)
    leaves = [t.clone().requires_grad_() for t in (q, key, rpb)]
    logits = ops.na2d_qk_reference(leaves[0], leaves[1], k, dil, leaves[2])
    torch.testing.assert_close(emu.na_dot(q, key, rpb, k, dil), logits, **tol)
    ga = torch.randn_like(logits)
    logits.backward(ga)
    torch.testing.assert_close(emu.na_sum(ga, key, k, dil, False), leaves[0].grad, **tol)
    torch.testing.assert_close(emu.na_sum(ga, q, k, dil, True), leaves[1].grad, **tol)
    torch.testing.assert_close(emu.na_rpb_grad(ga, q, k, dil), leaves[2].grad, **tol)

    # av: forward (sum), grad_attn (dot element, no bias), grad_v (inverse)
    leaves = [t.clone().requires_grad_() for t in (attn, v)]
    out = ops.na2d_av_reference(leaves[0], leaves[1], k, dil)
    torch.testing.assert_close(emu.na_sum(attn, v, k, dil, False), out, **tol)
    go = torch.randn_like(out)
    out.backward(go)
    torch.testing.assert_close(emu.na_dot(go, v, None, k, dil), leaves[0].grad, **tol)
    torch.testing.assert_close(emu.na_sum(attn, go, k, dil, True), leaves[1].grad, **tol)


@pytest.mark.slow
def test_na_cuda_kernels_bfloat16_accumulate_in_float32(emu):
    g = torch.Generator().manual_seed(1)
    q, key = (torch.randn(1, 14, 14, 2, 64, generator=g).bfloat16() for _ in range(2))
    out = emu.na_dot(q, key, None, 7, 1)
    ref = ops.na2d_qk_reference(q.double(), key.double(), 7, 1)
    assert out.dtype == torch.bfloat16
    # only the output is rounded: one bfloat16 ulp of the result, not 64 accumulated ones
    torch.testing.assert_close(out.double(), ref, rtol=8e-3, atol=8e-3 * ref.abs().max().item())


@pytest.mark.slow
@pytest.mark.parametrize('case', NA_CASES, ids=str)
def test_na_fused_kernels_match_the_reference_float64(emu, case):
    """Fused forward (weights kept in scratch, log-sum-exp saved) and backward (weights
    recomputed; dk/dv gathered on the key side) against autograd through the reference."""
    B, H, W, heads, d, k, dil = case
    g = torch.Generator().manual_seed(H * 10 + W + k)
    q, key, v = (torch.randn(B, H, W, heads, d, generator=g, dtype=torch.float64)
                 for _ in range(3))
    rpb = torch.randn(heads, 2 * k - 1, 2 * k - 1, generator=g, dtype=torch.float64)
    scale = d**-0.5
    leaves = [t.clone().requires_grad_() for t in (q, key, v, rpb)]
    ref = ops.na2d_reference(*leaves[:3], k, dil, leaves[3], scale)
    out, lse = emu.na_fused_forward(q, key, v, rpb, k, dil, scale)
    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out, ref, **tol)
    logits = ops.na2d_qk_reference(q * scale, key, k, dil, rpb)
    torch.testing.assert_close(lse, torch.logsumexp(logits, -1), **tol)
    dout = torch.randn_like(ref)
    ref.backward(dout)
    for name, got, leaf in zip('q k v rpb'.split(),
                               emu.na_fused_backward(dout, q, key, v, rpb, out, lse, k, dil,
                                                     scale), leaves):
        torch.testing.assert_close(got, leaf.grad, **tol, msg=name)
