"""The CUDA kernels against the references, on a GPU (skipped without one).

Every dtype with its tolerance, forward and gradients, odd shapes, a non-default stream,
autocast, bad arguments. The kernels' index math is also checked on the host by
tests/test_cuda_kernels_on_host.py, which runs everywhere.
"""
import pytest
import torch

from mmvit_plugins import ops

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and ops.WITH_CUDA),
    reason='needs a CUDA GPU and the extension built with CUDA (FORCE_CUDA=1 or a visible GPU)')

# dtype -> (rtol, atol) against the float64 reference of the same (rounded) inputs
TOL = {torch.float64: (1e-10, 1e-10), torch.float32: (1e-5, 1e-5),
       torch.float16: (2e-3, 2e-3), torch.bfloat16: (1.6e-2, 1.6e-2)}
ELSA_SHAPES = [  # (B, C, G, H, W, k, dil)
    (2, 6, 3, 7, 9, 3, 1), (1, 1, 1, 10, 10, 5, 2), (2, 64, 2, 15, 11, 7, 1),
    (1, 4, 4, 3, 4, 7, 1), (3, 70, 2, 40, 40, 3, 2), (2, 96, 3, 56, 56, 7, 1),
]


def elsa_inputs(shape, dtype, device='cuda'):
    B, C, G, H, W, k, _ = shape
    g = torch.Generator().manual_seed(0)
    v = torch.randn(B, C, H, W, generator=g)
    attn = torch.randn(B, G, k * k, H, W, generator=g).softmax(2)
    m = torch.randn(C, k, k, generator=g)
    bg = torch.randn(C, k, k, generator=g) * 0.1
    return [t.to(device, dtype) for t in (v, attn, m, bg)]


@pytest.mark.parametrize('shape', ELSA_SHAPES, ids=str)
@pytest.mark.parametrize('dtype', list(TOL), ids=str)
def test_elsa_cuda_forward_and_gradients(shape, dtype):
    k, dil = shape[5], shape[6]
    inputs = [t.requires_grad_() for t in elsa_inputs(shape, dtype)]
    out = torch.ops.mmvit_plugins.elsa_aggregate_forward(*inputs[:2], *inputs[2:], k, dil)
    assert out.dtype == dtype and out.is_cuda
    ref_inputs = [t.detach().double().cpu().requires_grad_() for t in inputs]
    ref = ops.elsa_aggregate_reference(ref_inputs[0], ref_inputs[1], k, dil, *ref_inputs[2:])
    rtol, atol = TOL[dtype]
    scale = ref.abs().max().item()
    torch.testing.assert_close(out.double().cpu(), ref, rtol=rtol, atol=atol * scale)

    dy = torch.randn_like(ref)
    ref.backward(dy)
    grads = torch.ops.mmvit_plugins.elsa_aggregate_backward(
        dy.to('cuda', dtype), *[t.detach() for t in inputs[:2]],
        *[t.detach() for t in inputs[2:]], k, dil, [True] * 4)
    for name, got, want in zip(('v', 'attn', 'mul_ghost', 'add_ghost'), grads, ref_inputs):
        # ghost gradients sum over the batch and the map: a looser absolute tolerance
        s = want.grad.abs().max().item()
        torch.testing.assert_close(got.double().cpu(), want.grad, rtol=rtol, atol=atol * s * 4,
                                   msg=name)


def test_elsa_cuda_through_the_functional_api_and_autograd():
    v, attn, m, bg = elsa_inputs((2, 8, 2, 9, 13, 7, 1), torch.float32)
    leaves = [t.clone().requires_grad_() for t in (v, attn, m, bg)]
    out = ops.elsa_aggregate(leaves[0], leaves[1], 7, 1, leaves[2], leaves[3])
    out.square().sum().backward()
    cpu = [t.detach().cpu().requires_grad_() for t in (v, attn, m, bg)]
    ref = ops.elsa_aggregate(cpu[0], cpu[1], 7, 1, cpu[2], cpu[3])  # the CPU kernels
    ref.square().sum().backward()
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(leaves, cpu):
        torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-4, atol=1e-4)


def test_elsa_cuda_non_default_stream():
    v, attn, m, bg = elsa_inputs((2, 16, 2, 20, 20, 7, 1), torch.float32)
    expected = ops.elsa_aggregate(v, attn, 7, 1, m, bg)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = ops.elsa_aggregate(v, attn, 7, 1, m, bg)
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_elsa_cuda_under_autocast(dtype):
    from mmvit_plugins.models.backbones.elsa_swin import ELSAAttention
    m = ELSAAttention(48, 3, group_width=4).cuda()
    x = torch.randn(2, 14, 15, 48, device='cuda', requires_grad=True)
    with torch.autocast('cuda', dtype=dtype):
        out = m(x)
    assert out.dtype == dtype and torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(m.ghost_head.grad).all()


def test_elsa_cuda_bad_arguments_raise():
    v, attn, m, bg = elsa_inputs((1, 4, 2, 6, 6, 3, 1), torch.float32)
    with pytest.raises(ValueError, match='kernel_size'):
        torch.ops.mmvit_plugins.elsa_aggregate_forward(v, attn, m, bg, 4, 1)
    with pytest.raises(ValueError, match='attn must be'):
        torch.ops.mmvit_plugins.elsa_aggregate_forward(v, attn[:, :, :4], m, bg, 3, 1)
    with pytest.raises(ValueError, match='same device|is on'):
        torch.ops.mmvit_plugins.elsa_aggregate_forward(v, attn.cpu(), m, bg, 3, 1)


def test_elsa_cuda_large_map_uses_64_bit_indices():
    """More than 2**31 elements in attn: 64-bit linear indices (about 9 GB of GPU memory)."""
    B, C, G, H, W, k = 1, 2, 1, 6600, 6600, 7  # attn: 49 * 6600^2 = 2.13e9 elements
    if torch.cuda.get_device_properties(0).total_memory < 24 * 2**30:
        pytest.skip('needs a GPU with 24 GB or more')
    v = torch.ones(B, C, H, W, device='cuda', dtype=torch.float16)
    attn = torch.full((B, G, k * k, H, W), 1 / 49, device='cuda', dtype=torch.float16)
    out = torch.ops.mmvit_plugins.elsa_aggregate_forward(v, attn, None, None, k, 1)
    assert out[0, 1, H - 1, W - 1].item() == pytest.approx(16 / 49, rel=1e-2)  # corner: 4x4 taps
    assert out[0, 1, H // 2, W // 2].item() == pytest.approx(1.0, rel=1e-2)


NA_SHAPES = [  # (B, H, W, heads, d, k, dil)
    (2, 9, 11, 2, 16, 3, 1), (1, 13, 10, 3, 32, 5, 2), (1, 14, 16, 2, 64, 7, 2),
    (2, 56, 56, 4, 32, 7, 1), (1, 26, 30, 2, 128, 13, 1), (1, 20, 20, 1, 16, 9, 2),
]


@pytest.mark.parametrize('shape', NA_SHAPES, ids=str)
@pytest.mark.parametrize('dtype', list(TOL), ids=str)
def test_na_cuda_forward_and_gradients(shape, dtype):
    B, H, W, heads, d, k, dil = shape
    g = torch.Generator().manual_seed(0)
    q, key, v = (torch.randn(B, H, W, heads, d, generator=g) for _ in range(3))
    rpb = torch.randn(heads, 2 * k - 1, 2 * k - 1, generator=g)
    rtol, atol = TOL[dtype]
    ref = [t.double().requires_grad_() for t in (q, key, v, rpb)]
    cuda = [t.to('cuda', dtype).requires_grad_() for t in (q, key, v, rpb)]
    logits_ref = ops.na2d_qk_reference(ref[0], ref[1], k, dil, ref[3])
    logits = ops.na2d_qk(cuda[0], cuda[1], k, dil, cuda[3])
    s = logits_ref.abs().max().item()
    torch.testing.assert_close(logits.double().cpu(), logits_ref, rtol=rtol, atol=atol * s)
    attn_ref = logits_ref.softmax(-1)
    out_ref = ops.na2d_av_reference(attn_ref, ref[2], k, dil)
    out = ops.na2d_av(logits.float().softmax(-1).to(dtype), cuda[2], k, dil)
    s = out_ref.abs().max().item()
    torch.testing.assert_close(out.double().cpu(), out_ref, rtol=rtol * 4, atol=atol * s * 4)
    dy = torch.randn(out_ref.shape, generator=g)
    out_ref.backward(dy.double())
    out.backward(dy.to('cuda', dtype))
    for name, a, b in zip(('q', 'k', 'v', 'rpb'), cuda, ref):
        s = b.grad.abs().max().item()
        torch.testing.assert_close(a.grad.double().cpu(), b.grad, rtol=rtol * 8,
                                   atol=atol * s * 8, msg=name)


def test_na_cuda_non_default_stream_and_module():
    m = ops.NeighborhoodAttention2D(64, 4, kernel_size=7).cuda()
    x = torch.randn(2, 20, 24, 64, device='cuda')
    expected = m(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = m(x)
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    with torch.autocast('cuda', dtype=torch.bfloat16):
        y = m(x)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), expected, rtol=3e-2, atol=3e-2)


def test_na_cuda_bad_arguments_raise():
    q = torch.randn(1, 6, 6, 2, 16, device='cuda')
    with pytest.raises(ValueError, match='larger than the map'):
        torch.ops.mmvit_plugins.na2d_qk_forward(q, q, None, 7, 1)
    with pytest.raises(ValueError, match='does not match'):
        torch.ops.mmvit_plugins.na2d_qk_forward(q, q[:, :, :, :1], None, 3, 1)


@pytest.mark.parametrize('shape', NA_SHAPES, ids=str)
@pytest.mark.parametrize('dtype', list(TOL), ids=str)
def test_na_cuda_fused_forward_and_gradients(shape, dtype):
    B, H, W, heads, d, k, dil = shape
    g = torch.Generator().manual_seed(1)
    q, key, v = (torch.randn(B, H, W, heads, d, generator=g) for _ in range(3))
    rpb = torch.randn(heads, 2 * k - 1, 2 * k - 1, generator=g)
    rtol, atol = TOL[dtype]
    ref = [t.double().requires_grad_() for t in (q, key, v, rpb)]
    cuda = [t.to('cuda', dtype).requires_grad_() for t in (q, key, v, rpb)]
    out_ref = ops.na2d_reference(*ref[:3], k, dil, ref[3])
    out = ops.na2d(*cuda[:3], k, dil, cuda[3], fused=True)
    s = out_ref.abs().max().item()
    torch.testing.assert_close(out.double().cpu(), out_ref, rtol=rtol * 4, atol=atol * s * 4)
    dy = torch.randn(out_ref.shape, generator=g)
    out_ref.backward(dy.double())
    out.backward(dy.to('cuda', dtype))
    for name, a, b in zip(('q', 'k', 'v', 'rpb'), cuda, ref):
        s = b.grad.abs().max().item()
        torch.testing.assert_close(a.grad.double().cpu(), b.grad, rtol=rtol * 8,
                                   atol=atol * s * 8, msg=name)


def test_na_cuda_fused_stores_no_k2_tensor():
    """Peak memory of the fused forward+backward stays near the inputs: no [.., heads, k*k]."""
    B, H, W, heads, d, k = 2, 64, 64, 4, 32, 13
    q, key, v = (torch.randn(B, H, W, heads, d, device='cuda', requires_grad=True)
                 for _ in range(3))
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    ops.na2d(q, key, v, k, fused=True).sum().backward()
    torch.cuda.synchronize()
    growth = torch.cuda.max_memory_allocated() - base
    weights = B * H * W * heads * k * k * 4  # one float32 k*k tensor: 21.6 MB
    assert growth < weights / 2, (growth, weights)
