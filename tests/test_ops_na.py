"""Neighbourhood attention 2-D: compiled op vs the gather reference (under every build of the CPU
kernels, the `cpu_isa` fixture), window semantics, errors."""

import pytest
import torch

from mmvit_plugins.ops import (NA2DAVFunction, NA2DQKFunction, NeighborhoodAttention2D, na2d,
                               na2d_av, na2d_av_reference, na2d_qk, na2d_qk_reference,
                               na2d_reference)
from mmvit_plugins.ops.neighborhood_attn import neighborhood_index
from mmvit_plugins.registry import MODELS

D = torch.float64


def brute_force_window(i, size, k, dil):
    """The k members of i's residue class nearest to i, shifted to stay inside the map."""
    members = [p for p in range(size) if p % dil == i % dil]
    j = members.index(i)
    starts = range(len(members) - k + 1)
    best = min(starts, key=lambda s: abs(s + k // 2 - j))  # window centred as near i as possible
    return members[best:best + k]


@pytest.mark.parametrize('size,k,dil', [(5, 3, 1), (7, 3, 2), (8, 3, 2), (9, 3, 3), (13, 5, 2),
                                        (7, 7, 1), (21, 7, 3), (11, 11, 1)])
def test_window_index_semantics(size, k, dil):
    pos, rel = neighborhood_index(size, k, dil)
    for i in range(size):
        window = brute_force_window(i, size, k, dil)
        assert pos[i].tolist() == window
        assert rel[i].tolist() == [(p - i) // dil + k - 1 for p in window]


def test_window_hand_cases():
    pos, _ = neighborhood_index(5, 3, 1)
    assert pos[0].tolist() == [0, 1, 2] and pos[2].tolist() == [1, 2, 3]
    assert pos[4].tolist() == [2, 3, 4]
    # size 7, k 3, dilation 2: class 0 is {0,2,4,6}, class 1 is {1,3,5}.
    pos, _ = neighborhood_index(7, 3, 2)
    assert [pos[i].tolist() for i in range(7)] == [[0, 2, 4], [1, 3, 5], [0, 2, 4], [1, 3, 5],
                                                    [2, 4, 6], [1, 3, 5], [2, 4, 6]]


# ----------------------------------------------------------------------------- hand-computed


def compiled_qk(q, k, ks, dil=1, rpb=None):
    return NA2DQKFunction.apply(q, k, rpb, ks, dil)


def compiled_av(attn, v, ks, dil=1):
    return NA2DAVFunction.apply(attn, v, ks, dil)


@pytest.mark.parametrize('qk', [compiled_qk, na2d_qk_reference])
def test_qk_hand_case(qk, cpu_isa):
    # q = 1 and key values 0..24 on a 5x5 map (d = 1): each logit is the key's value.
    q = torch.ones(1, 5, 5, 1, 1, dtype=D)
    k = torch.arange(25, dtype=D).view(1, 5, 5, 1, 1)
    attn = qk(q, k, 3)[0, :, :, 0]  # [5, 5, 9]
    assert attn[0, 0].tolist() == [0, 1, 2, 5, 6, 7, 10, 11, 12]  # clamped to the corner
    assert attn[2, 2].tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]
    assert attn[4, 4].tolist() == [12, 13, 14, 17, 18, 19, 22, 23, 24]
    assert attn[0, 4].tolist() == [2, 3, 4, 7, 8, 9, 12, 13, 14]


@pytest.mark.parametrize('qk', [compiled_qk, na2d_qk_reference])
def test_rpb_hand_case(qk, cpu_isa):
    # q = k = 0, so the logits are the bias alone. Query (0, 0) sees keys (0..2, 0..2), i.e.
    # offsets 0..2 on both axes -> table rows/cols 2..4 (offset + k - 1). Query (2, 2) sees
    # offsets -1..1 -> rows/cols 1..3.
    rpb = torch.arange(25, dtype=D).view(1, 5, 5)
    z = torch.zeros(1, 5, 5, 1, 2, dtype=D)
    attn = qk(z, z, 3, 1, rpb)[0, :, :, 0]
    assert attn[0, 0].tolist() == [12, 13, 14, 17, 18, 19, 22, 23, 24]
    assert attn[2, 2].tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]


@pytest.mark.parametrize('av', [compiled_av, na2d_av_reference])
def test_av_hand_case(av, cpu_isa):
    # One-hot weights on tap t = 0 (top-left neighbour): out = v at that neighbour.
    # With k 3, dilation 2 on 7x7, query (4, 5) has windows rows {2,4,6}, cols {1,3,5}.
    v = torch.arange(49, dtype=D).view(1, 7, 7, 1, 1)
    attn = torch.zeros(1, 7, 7, 1, 9, dtype=D)
    attn[..., 0] = 1
    out = av(attn, v, 3, 2)[0, :, :, 0, 0]
    assert out[4, 5] == 2 * 7 + 1
    assert out[0, 0] == 0 and out[6, 6] == 2 * 7 + 2


# ------------------------------------------------------------------------- compiled == reference


def make_qkv(B, H, W, heads, d, ks, dil, rpb, dtype=D):
    q, k, v = (torch.randn(B, H, W, heads, d, dtype=dtype) for _ in range(3))
    bias = torch.randn(heads, 2 * ks - 1, 2 * ks - 1, dtype=dtype) if rpb else None
    return q, k, v, bias


def _leaves(tensors):
    return [None if t is None else t.clone().requires_grad_() for t in tensors]


# The random sweeps over shapes, kernel sizes, dilations, rpb and input layouts (forward and
# every gradient, float64) are the hypothesis tests in test_fuzz_ops.py.


def test_na2d_matches_reference(cpu_isa):
    q, k, v, rpb = make_qkv(2, 11, 10, 2, 8, 5, 2, True)
    a, b = _leaves([q, k, v, rpb]), _leaves([q, k, v, rpb])
    out = na2d(*a[:3], 5, 2, a[3], scale=0.7)
    ref = na2d_reference(*b[:3], 5, 2, b[3], scale=0.7)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    for x, y in zip(a, b):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-11, atol=1e-11)


def test_float32_and_default_scale(cpu_isa):
    q, k, v, rpb = make_qkv(1, 14, 15, 4, 32, 7, 2, True, dtype=torch.float32)
    out = na2d(q, k, v, 7, 2, rpb)
    ref = na2d_reference(q.double(), k.double(), v.double(), 7, 2, rpb.double(), 32**-0.5)
    torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('H,W,ks,dil,rpb', [
    (3, 4, 3, 1, True),  # k * dilation == H: every window is the whole column
    (6, 7, 3, 2, True),  # border windows with dilation
    (5, 5, 5, 1, False),
    (7, 5, 3, 1, True),
])
def test_gradcheck(H, W, ks, dil, rpb, cpu_isa):
    q, k, v, bias = make_qkv(1, H, W, 2, 3, ks, dil, rpb)
    attn = torch.randn(1, H, W, 2, ks * ks, dtype=D)
    leaves = _leaves([q, k, bias])
    assert torch.autograd.gradcheck(lambda a, b, c: compiled_qk(a, b, ks, dil, c), leaves)
    assert torch.autograd.gradcheck(lambda a, b: compiled_av(a, b, ks, dil), _leaves([attn, v]))


def test_transpose_symmetry(cpu_isa):
    # Swapping H and W of q, k, v and transposing the bias table swaps H and W of the output.
    q, k, v, rpb = make_qkv(2, 11, 13, 2, 4, 5, 2, True)
    out = na2d(q, k, v, 5, 2, rpb)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    out_t = na2d(t(q), t(k), t(v), 5, 2, rpb.transpose(1, 2))
    torch.testing.assert_close(t(out_t), out, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- layouts and dtypes


def test_non_contiguous_inputs(cpu_isa):
    # q, k, v as views of one fused qkv projection, as the module produces them.
    qkv = torch.randn(2, 10, 9, 3, 2, 8)
    q, k, v = qkv.unbind(3)
    assert not q.is_contiguous()
    out = na2d(q, k, v, 3, 3)
    torch.testing.assert_close(
        out, na2d(q.contiguous(), k.contiguous(), v.contiguous(), 3, 3), rtol=0, atol=0)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_inputs_computed_in_float32(dtype, cpu_isa):
    q, k, v, rpb = make_qkv(1, 8, 9, 2, 8, 3, 1, True, dtype=dtype)
    q.requires_grad_()
    out = na2d(q, k, v, 3, 1, rpb)
    assert out.dtype == dtype
    ref = na2d_reference(q.float(), k.float(), v.float(), 3, 1, rpb.float())
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    out.float().sum().backward()
    assert q.grad.dtype == dtype


def test_fake_kernels_opcheck():
    q, k, v, rpb = make_qkv(1, 6, 7, 2, 4, 3, 2, True)
    ops = torch.ops.mmvit_plugins
    attn = torch.randn(1, 6, 7, 2, 9, dtype=D)
    torch.library.opcheck(ops.na2d_qk_forward.default, (q, k, rpb, 3, 2))
    torch.library.opcheck(ops.na2d_qk_backward.default, (attn, q, k, 3, 2, [True, True, True]))
    torch.library.opcheck(ops.na2d_av_forward.default, (attn, v, 3, 2))
    torch.library.opcheck(ops.na2d_av_backward.default, (v, attn, v, 3, 2, [True, False]))


# ----------------------------------------------------------------------------- module


def test_module_and_registry():
    module = MODELS.build(dict(type='NeighborhoodAttention2D', embed_dims=16, num_heads=2,
                               kernel_size=5, dilation=2))
    assert isinstance(module, NeighborhoodAttention2D)
    x = torch.randn(2, 11, 12, 16, requires_grad=True)
    out = module(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in module.parameters())
    with pytest.raises(ValueError, match=r'x must be \[B, H, W, 16\]'):
        module(torch.randn(2, 16, 11, 12))
    with pytest.raises(ValueError, match='num_heads=3 must divide embed_dims=16'):
        NeighborhoodAttention2D(16, 3)


# ----------------------------------------------------------------------------- bad arguments

Q = torch.randn(1, 7, 8, 2, 4)
ATTN = torch.randn(1, 7, 8, 2, 9)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(q=Q[0]), ValueError, r'q must be 5-D \[B, H, W, heads, d\]'),
    (dict(q=Q.int()), TypeError, 'q must be a floating-point tensor'),
    (dict(k=Q[..., :3]), ValueError, 'k must have shape'),
    (dict(k=Q.double()), TypeError, 'k has dtype torch.float64 but q has torch.float32'),
    (dict(k=Q.to('meta')), ValueError, 'k is on meta but q is on cpu'),
    (dict(kernel_size=5, dilation=2), ValueError,
     r'q: kernel_size \* dilation = 10 is larger than the 7x8 map'),
    (dict(kernel_size=9), ValueError, 'larger than the 7x8 map'),
    (dict(kernel_size=4), ValueError, 'kernel_size must be a positive odd integer'),
    (dict(kernel_size=True), TypeError, 'kernel_size must be an int'),
    (dict(dilation=-1), ValueError, 'dilation must be >= 1'),
    (dict(rpb=torch.randn(2, 3, 3)), ValueError, r'rpb must have shape \[heads, 2k-1, 2k-1\]'),
    (dict(rpb=torch.randn(3, 5, 5)), ValueError, 'rpb must have shape'),
    (dict(rpb='bias'), TypeError, 'rpb must be a torch.Tensor'),
])
def test_bad_qk_arguments(kwargs, error, match):
    args = dict(q=Q, k=Q, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        na2d_qk(**args)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(attn=ATTN[..., :8]), ValueError, r'attn must have shape \[B, H, W, heads, k\*k\]'),
    (dict(attn=ATTN[:, :6]), ValueError, 'attn must have shape'),
    (dict(v=Q[:, :, :, :1]), ValueError, 'attn must have shape'),
    (dict(v=Q.double()), TypeError, 'attn has dtype'),
    (dict(kernel_size=3, dilation=3), ValueError, 'larger than the 7x8 map'),
])
def test_bad_av_arguments(kwargs, error, match):
    args = dict(attn=ATTN, v=Q, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        na2d_av(**args)


def test_bad_na2d_arguments():
    with pytest.raises(ValueError, match='v must have shape'):
        na2d(Q, Q, Q[..., :2], 3)
    with pytest.raises(TypeError, match='v has dtype'):
        na2d(Q, Q, Q.double(), 3)


@pytest.mark.parametrize('op,args,error,match', [
    ('na2d_qk_forward', (Q, Q, None, 9, 1), ValueError, 'is larger than the map'),
    ('na2d_qk_forward', (Q, Q[..., :3], None, 3, 1), ValueError, 'does not match q'),
    ('na2d_qk_forward', (Q, Q, torch.randn(2, 3, 3), 3, 1), ValueError, 'rpb must be'),
    ('na2d_qk_forward', (Q, Q, None, 0, 1), ValueError, 'kernel_size must be a positive odd'),
    ('na2d_qk_forward', (Q.int(), Q.int(), None, 3, 1), TypeError, 'q must be float32'),
    ('na2d_av_forward', (ATTN[..., :4], Q, 3, 1), ValueError, 'attn must have k\\*k = 9'),
    ('na2d_av_forward', (ATTN, Q, 3, 0), ValueError, 'dilation must be >= 1'),
    ('na2d_av_backward', (Q[:, :6], ATTN, Q, 3, 1, [True, True]), ValueError, 'grad_out'),
    ('na2d_qk_backward', (ATTN[:, :, :7], Q, Q, 3, 1, [True] * 3), ValueError, 'grad_attn'),
])
def test_bad_arguments_direct_op_call(op, args, error, match):
    # The C++ entry points check for themselves: a bad direct call raises, never crashes.
    with pytest.raises(error, match=match):
        getattr(torch.ops.mmvit_plugins, op)(*args)


def test_autocast_module_and_mixed_dtypes():
    module = NeighborhoodAttention2D(16, 2, kernel_size=3)
    x = torch.randn(2, 7, 8, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)  # bfloat16 qkv projection, float32 bias table
    out.float().sum().backward()
    assert x.grad is not None and module.rpb.grad is not None
    q = torch.randn(1, 7, 8, 2, 4, dtype=torch.bfloat16)
    k = torch.randn(1, 7, 8, 2, 4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        attn = na2d_qk(q, k, 3)
    assert attn.dtype == torch.float32
    torch.testing.assert_close(attn, na2d_qk_reference(q.float(), k, 3), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match='k has dtype'):  # outside autocast: an error
        na2d_qk(q, k, 3)


# ----------------------------------------------------------------------------- fused


@pytest.mark.parametrize('B,H,W,heads,d,ks,dil,rpb', [
    (2, 9, 11, 2, 5, 3, 1, True), (1, 13, 10, 3, 4, 5, 2, True), (1, 7, 7, 1, 8, 7, 1, False),
    (2, 15, 12, 2, 3, 3, 4, True), (1, 14, 16, 2, 16, 7, 2, True),
])
def test_fused_matches_reference_float64(B, H, W, heads, d, ks, dil, rpb, cpu_isa):
    """na2d(fused=True) on the CPU: the forward is the vectorised loop of each CPU build, the
    backward the CUDA kernels' element code run on the CPU."""
    q, k, v, bias = make_qkv(B, H, W, heads, d, ks, dil, rpb)
    leaves = [None if t is None else t.clone().requires_grad_() for t in (q, k, v, bias)]
    ours = na2d(*leaves[:3], ks, dil, leaves[3], 0.7, fused=True)
    refs = [None if t is None else t.clone().requires_grad_() for t in (q, k, v, bias)]
    ref = na2d_reference(*refs[:3], ks, dil, refs[3], 0.7)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    dout = torch.randn_like(ref)
    ours.backward(dout)
    ref.backward(dout)
    for a, b in zip(leaves, refs):
        if a is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-10)
    out, lse = torch.ops.mmvit_plugins.na2d_fused_forward(q, k, v, bias, ks, dil, 0.7)
    logits = na2d_qk_reference(q * 0.7, k, ks, dil, bias)
    torch.testing.assert_close(lse, torch.logsumexp(logits, -1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('d', [4, 8, 12, 16, 32])
def test_fused_forward_float32_softmax_and_lse(d, cpu_isa):
    """The float32 fused forward's own softmax (a vector exp) against float64: at the default
    scale within 1e-5; with logits spread so wide that many weights underflow (e^x < FLT_MIN
    gives 0) and one dominates, as close as PyTorch's float32 reference gets (its error there,
    ~2e-5, is the float32 rounding of logits in the hundreds). d covers whole-vector head sizes
    of both builds and ones with a scalar tail."""
    torch.manual_seed(d)
    q, k, v, bias = make_qkv(2, 9, 12, 3, d, 5, 1, True, dtype=torch.float32)
    q64, k64, v64, b64 = (t.double() for t in (q, k, v, bias))
    for scale in (d**-0.5, 30.0):
        out, lse = torch.ops.mmvit_plugins.na2d_fused_forward(q, k, v, bias, 5, 1, scale)
        ref = na2d_reference(q64, k64, v64, 5, 1, b64, scale)
        logits = na2d_qk_reference(q64 * scale, k64, 5, 1, b64)
        if scale < 1:
            torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lse, logits.logsumexp(-1).float(), rtol=1e-5, atol=1e-5)
            continue
        assert (logits - logits.amax(-1, keepdim=True) < -87.4).any()  # the underflow is reached
        ref32 = na2d_reference(q, k, v, 5, 1, bias, scale)
        lse32 = na2d_qk_reference(q * scale, k, 5, 1, bias).logsumexp(-1)
        for ours, theirs, exact in ((out, ref32, ref), (lse, lse32, logits.logsumexp(-1))):
            err, err32 = ((t.double() - exact).abs().max().item() for t in (ours, theirs))
            assert err <= 2 * err32 + 1e-6, (err, err32)


@pytest.mark.parametrize('grad', [False, True])
def test_cpu_default_is_fused_only_without_gradients(grad, monkeypatch):
    """na2d(fused=None) on the CPU: the fused forward where no gradient is needed (inference),
    the unfused ops (a faster backward on the CPU) where one is; the same result either way."""
    import mmvit_plugins.ops.neighborhood_attn as na_mod
    calls = {'fused': 0, 'qk': 0}
    for name, key in (('NA2DFusedFunction', 'fused'), ('NA2DQKFunction', 'qk')):
        original = getattr(na_mod, name).apply

        def counted(*args, _key=key, _original=original):
            calls[_key] += 1
            return _original(*args)

        monkeypatch.setattr(getattr(na_mod, name), 'apply', counted)
    q, k, v, bias = make_qkv(1, 8, 9, 2, 4, 3, 1, True)
    if grad:
        q.requires_grad_()
    out = na2d(q, k, v, 3, 1, bias)
    torch.testing.assert_close(out, na2d_reference(q, k, v, 3, 1, bias), rtol=1e-12, atol=1e-12)
    assert calls == ({'fused': 0, 'qk': 1} if grad else {'fused': 1, 'qk': 0})
    with torch.no_grad():
        q.requires_grad_(True)
        na2d(q, k, v, 3, 1, bias)
    assert calls['fused'] == 1 + (not grad)


def test_fused_gradcheck_and_opcheck():
    q, k, v, bias = (t.requires_grad_() for t in make_qkv(1, 6, 7, 2, 3, 3, 2, True))
    assert torch.autograd.gradcheck(
        lambda *xs: na2d(*xs[:3], 3, 2, xs[3], fused=True), (q, k, v, bias))
    ops = torch.ops.mmvit_plugins
    q, k, v, bias = (t.detach() for t in (q, k, v, bias))
    out, lse = ops.na2d_fused_forward(q, k, v, bias, 3, 2, 0.5)
    torch.library.opcheck(ops.na2d_fused_forward.default, (q, k, v, bias, 3, 2, 0.5))
    torch.library.opcheck(ops.na2d_fused_backward.default,
                          (out, q, k, v, bias, out, lse, 3, 2, 0.5, [True, False, True, True]))


def test_module_eval_uses_the_fused_path_with_the_same_result():
    m = NeighborhoodAttention2D(16, 2, kernel_size=5).double().eval()
    x = torch.randn(2, 9, 10, 16, dtype=D)
    qkv = m.qkv(x).reshape(2, 9, 10, 3, 2, 8)
    q, k, v = qkv.unbind(3)
    ref = m.proj(na2d_reference(q, k, v, 5, 1, m.rpb, m.scale).reshape(2, 9, 10, 16))
    torch.testing.assert_close(m(x), ref)
    with pytest.raises(ValueError, match='lse must be'):
        torch.ops.mmvit_plugins.na2d_fused_backward(q, q, k, v, None, q, q[..., 0, :1], 5, 1,
                                                    0.5, [True] * 4)
