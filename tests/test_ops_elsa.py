"""ELSA aggregation: compiled op vs the unfold reference, hand-computed cases, gradients, errors.

The compiled comparisons run under each CPU kernel build this machine has (``isa`` fixture).
"""

import pytest
import torch

from mmvit_plugins.ops import (HAS_EXT, ELSAAggregateFunction, ELSAAggregation, elsa_aggregate,
                               elsa_aggregate_reference)
from mmvit_plugins.registry import MODELS

D = torch.float64


def compiled(v, attn, k, dil=1, mul=None, add=None):
    return ELSAAggregateFunction.apply(v, attn, mul, add, k, dil)


def test_extension_loaded():
    # `make install` builds it; every "compiled" test below would be meaningless without it.
    assert HAS_EXT


# ----------------------------------------------------------------------------- hand-computed

GRID = torch.arange(9, dtype=D).view(1, 1, 3, 3)  # 0 1 2 / 3 4 5 / 6 7 8


@pytest.mark.parametrize('fn', [compiled, elsa_aggregate_reference])
def test_box_sum(fn, cpu_isa):
    # attn = 1 on every tap, no ghosts: a zero-padded 3x3 box sum.
    # corner (0,0): 0+1+3+4 = 8; edge (0,1): 0+1+2+3+4+5 = 15; centre: 0+...+8 = 36.
    out = fn(GRID, torch.ones(1, 1, 9, 3, 3, dtype=D), 3)
    expected = torch.tensor([[8, 15, 12], [21, 36, 27], [20, 33, 24]], dtype=D)
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=0)


@pytest.mark.parametrize('fn', [compiled, elsa_aggregate_reference])
def test_tap_orientation_add_ghost(fn, cpu_isa):
    # attn = 0 and an add ghost that is 1 only at tap (ty, tx) = (0, 0), i.e. input offset
    # (-1, -1): out[y, x] = v[y-1, x-1] (cross-correlation orientation, like conv2d).
    add = torch.zeros(1, 3, 3, dtype=D)
    add[0, 0, 0] = 1
    out = fn(GRID, torch.zeros(1, 1, 9, 3, 3, dtype=D), 3, 1, None, add)
    expected = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 3, 4]], dtype=D)
    torch.testing.assert_close(out[0, 0], expected, rtol=0, atol=0)


@pytest.mark.parametrize('fn', [compiled, elsa_aggregate_reference])
def test_dilation(fn, cpu_isa):
    # k=3, dilation 2: tap t=8 (ty=tx=2) reads v[y+2, x+2]; only that tap has weight.
    v = torch.arange(25, dtype=D).view(1, 1, 5, 5)
    attn = torch.zeros(1, 1, 9, 5, 5, dtype=D)
    attn[:, :, 8] = 1
    out = fn(v, attn, 3, 2)[0, 0]
    assert out[0, 0] == 12 and out[2, 2] == 24 and out[1, 2] == 19
    assert (out[3:] == 0).all() and (out[:, 3:] == 0).all()


@pytest.mark.parametrize('fn', [compiled, elsa_aggregate_reference])
def test_heads_and_mul_ghost(fn, cpu_isa):
    # C=4, G=2: channels 0,1 use head 0 (attn 2), channels 2,3 head 1 (attn 10). The mul
    # ghost keeps only the centre tap, scaled by 3, so out = 3 * attn * v.
    v = torch.randn(1, 4, 4, 5, dtype=D)
    attn = torch.empty(1, 2, 9, 4, 5, dtype=D)
    attn[:, 0], attn[:, 1] = 2, 10
    mul = torch.zeros(4, 3, 3, dtype=D)
    mul[:, 1, 1] = 3
    out = fn(v, attn, 3, 1, mul)
    torch.testing.assert_close(out[:, :2], 6 * v[:, :2], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[:, 2:], 30 * v[:, 2:], rtol=0, atol=1e-12)


def test_hand_gradients(cpu_isa):
    # Box sum of GRID with grad_out = 1:
    # grad_v[i] = number of windows holding i: 4 in corners, 6 on edges, 9 in the centre;
    # grad_attn[t] = v shifted by tap t (zero outside); grad_add[t] = sum of that shift.
    v = GRID.clone().requires_grad_()
    attn = torch.ones(1, 1, 9, 3, 3, dtype=D, requires_grad=True)
    add = torch.zeros(1, 3, 3, dtype=D, requires_grad=True)
    compiled(v, attn, 3, 1, None, add).sum().backward()
    torch.testing.assert_close(v.grad[0, 0], torch.tensor([[4., 6, 4], [6, 9, 6], [4, 6, 4]],
                                                          dtype=D))
    torch.testing.assert_close(attn.grad[0, 0, 4], GRID[0, 0])  # centre tap
    torch.testing.assert_close(attn.grad[0, 0, 0],
                               torch.tensor([[0., 0, 0], [0, 0, 1], [0, 3, 4]], dtype=D))
    assert add.grad[0, 1, 1] == 36 and add.grad[0, 0, 0] == 0 + 1 + 3 + 4


# ------------------------------------------------------------------------- compiled == reference


def make_inputs(B, C, G, H, W, k, dil, mul, add, dtype=D):
    v = torch.randn(B, C, H, W, dtype=dtype)
    attn = torch.randn(B, G, k * k, H, W, dtype=dtype).softmax(2)
    m = torch.randn(C, k, k, dtype=dtype) if mul else None
    a = torch.randn(C, k, k, dtype=dtype) * 0.1 if add else None
    return v, attn, m, a


# The random sweeps over shapes (maps down to 1x1), kernel sizes, dilations, ghosts and input
# layouts (forward and every gradient, float64) are the hypothesis tests in test_fuzz_ops.py.
# The cases below pin the edges of the CPU loops for each build: channel blocks of 4 with a
# remainder of 1-3 channels per head, rows that are not a whole number of vectors (4 or 8
# lanes), rows narrower than one vector, dilation, 1x1 maps, k = 1 and windows wider than the map.
EDGE_CASES = [
    # B, C, G, H, W, k, dil, mul, add
    (2, 12, 3, 17, 23, 7, 1, True, True),    # 4 channels per head, W = 2*8 + 7
    (1, 10, 2, 9, 13, 5, 1, True, False),    # 5 per head: 4 + 1
    (2, 14, 2, 11, 6, 3, 2, False, True),    # 7 per head: 4 + 3, dilation 2
    (1, 6, 1, 1, 1, 3, 1, True, True),       # 1x1 map, 6 channels: 4 + 2
    (1, 4, 2, 5, 3, 7, 3, False, False),     # rows narrower than a vector, window > map
    (1, 3, 3, 8, 16, 1, 1, True, True),      # k = 1, one channel per head
    (1, 8, 1, 20, 37, 7, 1, False, True),    # W = 37: vector pairs, one vector, a tail
    (2, 9, 3, 30, 19, 3, 4, True, True),     # 3 per head, dilation 4
]


def channels_last(t):
    """The same values with permuted strides (not contiguous)."""
    if t is None or t.dim() < 3:
        return t
    dims = list(range(t.dim()))
    perm = dims[:1] + dims[2:] + dims[1:2]
    back = [perm.index(d) for d in dims]
    return t.permute(*perm).contiguous().permute(*back)


@pytest.mark.parametrize('contiguous', [True, False])
@pytest.mark.parametrize('B,C,G,H,W,k,dil,mul,add', EDGE_CASES)
def test_matches_reference_forward_and_gradients(B, C, G, H, W, k, dil, mul, add, contiguous,
                                                 cpu_isa):
    inputs = make_inputs(B, C, G, H, W, k, dil, mul, add)
    ours = [None if t is None else t.clone().requires_grad_() for t in inputs]
    refs = [None if t is None else t.clone().requires_grad_() for t in inputs]
    laid = ours if contiguous else [channels_last(t) for t in ours]
    if not contiguous and min(C, H * W) > 1:  # (size-1 dims make any strides contiguous)
        assert not laid[0].is_contiguous()
    out = compiled(laid[0], laid[1], k, dil, laid[2], laid[3])
    ref = elsa_aggregate_reference(refs[0], refs[1], k, dil, refs[2], refs[3])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad_out = torch.randn_like(ref)
    if not contiguous:
        grad_out = channels_last(grad_out)
    leaves = [t for t in ours if t is not None]
    grads = torch.autograd.grad(out, leaves, grad_out)
    ref_grads = torch.autograd.grad(ref, [t for t in refs if t is not None], grad_out)
    for name, got, want in zip(['v', 'attn', 'mul_ghost', 'add_ghost'][:len(grads)], grads,
                               ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11, msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('B,C,G,H,W,k,dil,mul,add', EDGE_CASES)
def test_float32_edges_match_float64_reference(B, C, G, H, W, k, dil, mul, add, cpu_isa):
    # float32 rows have 8 lanes in the AVX2 build: other vector and tail splits than float64.
    inputs = make_inputs(B, C, G, H, W, k, dil, mul, add)
    out = compiled(*(None if t is None else t.float() for t in inputs[:2]), k, dil,
                   *(None if t is None else t.float() for t in inputs[2:]))
    ref = elsa_aggregate_reference(inputs[0], inputs[1], k, dil, *inputs[2:])
    torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('B,C,G,H,W,k,dil,mul,add', EDGE_CASES)
def test_float32_edge_gradients_match_float64_reference(B, C, G, H, W, k, dil, mul, add,
                                                        cpu_isa):
    # The float32 backward runs 8 lanes in the AVX2 build: other vector and tail splits of the
    # rows (grad_v's vectors, grad_attn's columns past the last vector) than float64.
    inputs = make_inputs(B, C, G, H, W, k, dil, mul, add)
    ours = [None if t is None else t.float().requires_grad_() for t in inputs]
    refs = [None if t is None else t.clone().requires_grad_() for t in inputs]
    out = compiled(ours[0], ours[1], k, dil, ours[2], ours[3])
    ref = elsa_aggregate_reference(refs[0], refs[1], k, dil, refs[2], refs[3])
    grad_out = torch.randn_like(ref)
    grads = torch.autograd.grad(out, [t for t in ours if t is not None], grad_out.float())
    ref_grads = torch.autograd.grad(ref, [t for t in refs if t is not None], grad_out)
    for name, got, want in zip(['v', 'attn', 'mul_ghost', 'add_ghost'][:len(grads)], grads,
                               ref_grads):
        torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5,
                                   msg=lambda m: f'{name}: {m}')


def test_float32_matches_float64_reference(cpu_isa):
    inputs = make_inputs(2, 12, 3, 17, 23, 7, 1, True, True, dtype=torch.float32)
    out = elsa_aggregate(inputs[0], inputs[1], 7, 1, *inputs[2:])
    ref = elsa_aggregate_reference(inputs[0].double(), inputs[1].double(), 7, 1,
                                   *(t.double() for t in inputs[2:]))
    torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('k,dil,H,W,mul,add', [
    (3, 1, 4, 5, True, True),
    (3, 2, 5, 4, True, False),  # windows wider than the map at the borders
    (5, 1, 3, 6, False, True),  # map smaller than the window
    (3, 1, 1, 1, True, True),
])
def test_gradcheck(k, dil, H, W, mul, add, cpu_isa):
    inputs = make_inputs(2, 4, 2, H, W, k, dil, mul, add)
    leaves = [None if t is None else t.requires_grad_() for t in inputs]
    assert torch.autograd.gradcheck(
        lambda v, a, m, g: ELSAAggregateFunction.apply(v, a, m, g, k, dil), leaves)


def test_needs_input_grad_subsets(cpu_isa):
    v, attn, m, a = make_inputs(1, 4, 2, 6, 7, 3, 1, True, True)
    a.requires_grad_()
    compiled(v, attn, 3, 1, m, a).sum().backward()
    ref = a.detach().clone().requires_grad_()
    elsa_aggregate_reference(v, attn, 3, 1, m, ref).sum().backward()
    torch.testing.assert_close(a.grad, ref.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('needs', [(v, a, m, g) for v in (0, 1) for a in (0, 1)
                                   for m in (0, 1) for g in (0, 1) if v or a or m or g])
def test_gradient_subsets_match_reference(needs, cpu_isa):
    # Each subset of (v, attn, mul_ghost, add_ghost) that needs a gradient: the backward
    # computes only those (grad_attn's loop also runs for the ghost sums alone, or without
    # grad_attn's mul ghost factor). 17 rows: row blocks of 8 with a remainder; W = 23: columns
    # past the last vector.
    inputs = make_inputs(2, 12, 3, 17, 23, 7, 1, True, True)
    ours = [t.clone().requires_grad_(bool(n)) for t, n in zip(inputs, needs)]
    refs = [t.clone().requires_grad_(bool(n)) for t, n in zip(inputs, needs)]
    out = compiled(ours[0], ours[1], 7, 1, ours[2], ours[3])
    ref = elsa_aggregate_reference(refs[0], refs[1], 7, 1, refs[2], refs[3])
    grad_out = torch.randn_like(ref)
    grads = torch.autograd.grad(out, [t for t in ours if t.requires_grad], grad_out)
    ref_grads = torch.autograd.grad(ref, [t for t in refs if t.requires_grad], grad_out)
    names = [n for n, need in zip(['v', 'attn', 'mul_ghost', 'add_ghost'], needs) if need]
    for name, got, want in zip(names, grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-11, msg=lambda m: f'{name}: {m}')


# ----------------------------------------------------------------------------- layouts and dtypes


def test_non_contiguous_inputs(cpu_isa):
    v, attn, m, a = make_inputs(2, 6, 3, 9, 8, 5, 1, True, True)
    v_nc = v.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last strides
    attn_nc = attn.transpose(3, 4).contiguous().transpose(3, 4)
    m_nc = m.transpose(1, 2).contiguous().transpose(1, 2)
    assert not (v_nc.is_contiguous() or attn_nc.is_contiguous() or m_nc.is_contiguous())
    torch.testing.assert_close(
        elsa_aggregate(v_nc, attn_nc, 5, 1, m_nc, a), elsa_aggregate(v, attn, 5, 1, m, a),
        rtol=0, atol=0)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_inputs_computed_in_float32(dtype):
    v, attn, m, a = make_inputs(1, 4, 2, 8, 9, 3, 1, True, True, dtype=dtype)
    v.requires_grad_()
    out = elsa_aggregate(v, attn, 3, 1, m, a)
    assert out.dtype == dtype
    ref = elsa_aggregate_reference(*(t.float() for t in (v, attn)), 3, 1, m.float(), a.float())
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    out.float().sum().backward()
    assert v.grad.dtype == dtype


def test_fake_kernels_opcheck():
    v, attn, m, a = make_inputs(1, 4, 2, 6, 5, 3, 1, True, True)
    torch.library.opcheck(torch.ops.mmvit_plugins.elsa_aggregate_forward.default,
                          (v, attn, m, a, 3, 1))
    torch.library.opcheck(torch.ops.mmvit_plugins.elsa_aggregate_backward.default,
                          (torch.randn_like(v), v, attn, m, None, 3, 1, [True, True, True, True]))


# ----------------------------------------------------------------------------- module


def test_module_and_registry():
    module = MODELS.build(dict(type='ELSAAggregation', channels=6, kernel_size=5, mul_ghost=True))
    assert isinstance(module, ELSAAggregation)
    assert module.mul_ghost.shape == module.add_ghost.shape == (6, 5, 5)
    v = torch.randn(2, 6, 7, 8)
    attn = torch.randn(2, 3, 25, 7, 8).softmax(2)
    out = module(v, attn)
    ref = elsa_aggregate_reference(v, attn, 5, 1, module.mul_ghost, module.add_ghost)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert module.mul_ghost.grad is not None and module.add_ghost.grad is not None
    assert ELSAAggregation(4, 3, add_ghost=False).add_ghost is None


# ----------------------------------------------------------------------------- bad arguments

V = torch.randn(1, 4, 5, 6)
A = torch.randn(1, 2, 9, 5, 6)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(v=V[0]), ValueError, r'v must be 4-D \[B, C, H, W\]'),
    (dict(v=V.numpy()), TypeError, 'v must be a torch.Tensor'),
    (dict(v=V.long()), TypeError, 'v must be a floating-point tensor'),
    (dict(attn=A[:, :, :4]), ValueError, r'attn must have shape \[B, G, k\*k, H, W\]'),
    (dict(attn=A[..., :5]), ValueError, 'attn must have shape'),
    (dict(attn=A.double()), TypeError, 'attn has dtype torch.float64 but v has torch.float32'),
    (dict(attn=A.to('meta')), ValueError, 'attn is on meta but v is on cpu'),
    (dict(attn=torch.randn(1, 3, 9, 5, 6)), ValueError, "attn's head count G=3"),
    (dict(kernel_size=4), ValueError, 'kernel_size must be a positive odd integer, got 4'),
    (dict(kernel_size=0), ValueError, 'kernel_size must be a positive odd integer'),
    (dict(kernel_size=3.0), TypeError, 'kernel_size must be an int'),
    (dict(dilation=0), ValueError, 'dilation must be >= 1'),
    (dict(mul_ghost=torch.randn(4, 5, 5)), ValueError, r'mul_ghost must have shape \[C, k, k\]'),
    (dict(add_ghost=torch.randn(4, 3, 3).double()), TypeError, 'add_ghost has dtype'),
])
def test_bad_arguments(kwargs, error, match):
    args = dict(v=V, attn=A, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        elsa_aggregate(**args)


@pytest.mark.parametrize('args,error,match', [
    ((V, A[..., :5], None, None, 3, 1), ValueError, 'attn must be'),
    ((V, torch.randn(1, 3, 9, 5, 6), None, None, 3, 1), ValueError, 'head count'),
    ((V, A, torch.randn(4, 5, 5), None, 3, 1), ValueError, 'mul_ghost must be'),
    ((V, A, None, None, 2, 1), ValueError, 'kernel_size must be a positive odd'),
    ((V.long(), A.long(), None, None, 3, 1), TypeError, 'v must be float32 or float64'),
    ((V, A.double(), None, None, 3, 1), TypeError, 'attn has dtype'),
])
def test_bad_arguments_direct_op_call(args, error, match):
    # The C++ entry points check for themselves: a bad direct call raises, never crashes.
    with pytest.raises(error, match=match):
        torch.ops.mmvit_plugins.elsa_aggregate_forward(*args)


def test_bad_module_arguments():
    with pytest.raises(ValueError, match='channels must be a positive int'):
        ELSAAggregation(0)
    with pytest.raises(ValueError, match='kernel_size must be a positive odd'):
        ELSAAggregation(4, kernel_size=6)


def test_autocast_mixed_dtypes():
    # Under autocast the values come from a bfloat16 conv, the attention from a float32
    # softmax and the ghosts are float32 parameters: the op runs and returns float32.
    module = ELSAAggregation(4, 3)
    v = torch.randn(1, 4, 6, 7, dtype=torch.bfloat16, requires_grad=True)
    attn = torch.randn(1, 2, 9, 6, 7).softmax(2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(v, attn)
    assert out.dtype == torch.float32
    ref = elsa_aggregate_reference(v.float(), attn, 3, 1, None, module.add_ghost)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert v.grad.dtype == torch.bfloat16 and module.add_ghost.grad is not None
    with pytest.raises(TypeError, match='attn has dtype'):  # outside autocast: an error
        elsa_aggregate(v, attn, 3)
