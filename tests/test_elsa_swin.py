"""ELSA-Swin backbone: parameter counts and key layout of the original, the ELSA and stage-4
blocks against independent float64 references, any input size, mixed precision, the contract."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmvit_plugins import ops
from mmvit_plugins.models.backbones import ELSASwin
from mmvit_plugins.models.backbones.elsa_swin import ELSAAttention, SwinBlock, WindowAttention
from mmvit_plugins.registry import MODELS

# A tiny architecture for behaviour tests (real variants only for counts and shapes).
TINY = dict(embed_dims=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4), group_width=4)


@pytest.mark.parametrize('arch,params,keys', [
    ('tiny', 29.141, 215),  # spec 3.1: classifier 29.14 / 52.87 / 92.68M (add-only ghost)
    ('small', 52.875, 419),
    ('base', 92.682, 419),
])
def test_classifier_parameter_counts_match_the_original(arch, params, keys):
    model = ELSASwin(arch, out_indices=(3, ))  # + the 1000-class linear head
    C = model.out_channels[0]
    n = sum(p.numel() for p in model.parameters()) + C * 1000 + 1000
    assert round(n / 1e6, 3) == params
    assert len(model.state_dict()) + 2 == keys  # + head.weight / head.bias


@pytest.mark.parametrize('arch,dims,qk,heads,gw', [
    ('tiny', (96, 192, 384, 768), (64, 128, 256), (3, 6, 12, 24), 4),
    ('base', (128, 256, 512, 1024), (88, 176, 344), (4, 8, 16, 32), 8),
])
def test_original_key_layout(arch, dims, qk, heads, gw):
    """Spec 4.5: names and shapes of the original det/seg backbone state dict."""
    sd = ELSASwin(arch).state_dict()
    E = dims[0]
    expected = {
        'patch_embed.proj.weight': (E, 3, 4, 4),
        'patch_embed.norm.bias': (E, ),
        'layers.3.blocks.1.attn.rb': (heads[3], 169),
        'layers.3.blocks.1.attn.relative_id': (2401, ),
        'layers.3.blocks.1.attn.pre_proj.weight': (3 * dims[3], dims[3]),
        'layers.3.blocks.1.attn.post_proj.weight': (dims[3], dims[3]),
        'layers.3.blocks.1.mlp.fc1.weight': (4 * dims[3], dims[3]),
        'norm3.weight': (dims[3], ),
        'norm0.bias': (E, ),
    }
    for i in range(3):
        d, q, h = dims[i], qk[i], heads[i]
        expected.update({
            f'layers.{i}.blocks.1.norm1.weight': (d, ),
            f'layers.{i}.blocks.1.attn.ghost_head': (1, d, 7, 7),
            f'layers.{i}.blocks.1.attn.pre_proj.weight': (2 * q + d, d, 1, 1),
            f'layers.{i}.blocks.1.attn.pre_proj.bias': (2 * q + d, ),
            f'layers.{i}.blocks.1.attn.attn.0.weight': (q, gw, 7, 7),
            f'layers.{i}.blocks.1.attn.attn.0.bias': (q, ),
            f'layers.{i}.blocks.1.attn.attn.2.weight': (49 * h, q, 1, 1),
            f'layers.{i}.blocks.1.attn.post_proj.weight': (d, d),
            f'layers.{i}.blocks.1.mlp.fc2.weight': (d, 4 * d),
            f'layers.{i}.downsample.norm.weight': (4 * d, ),
            f'layers.{i}.downsample.reduction.weight': (2 * d, 4 * d),
        })
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert sd['layers.3.blocks.0.attn.relative_id'].dtype == torch.int64
    assert 'layers.3.downsample.norm.weight' not in sd


@pytest.mark.parametrize('size', [(224, 224), (67, 130), (33, 31)])
def test_tiny_shapes_on_any_size(size):
    model = ELSASwin('tiny').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert model.out_channels == (96, 192, 384, 768)
    for out, c, s in zip(outs, (96, 192, 384, 768), (4, 8, 16, 32)):
        assert out.shape == (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
        assert out.is_contiguous()


@pytest.mark.slow
@pytest.mark.parametrize('size', [(500, 375), (800, 1333)])
def test_tiny_shapes_on_detection_sizes(size):
    model = ELSASwin('tiny', out_indices=(0, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [o.shape[-2:] for o in outs] == [
        (math.ceil(size[0] / s), math.ceil(size[1] / s)) for s in (4, 32)]


def test_outputs_are_read_correctly_by_mmcv_roi_align():
    """mmcv's CPU RoIAlign reads raw memory as NCHW: outputs must be contiguous NCHW."""
    from mmcv.ops import roi_align
    model = ELSASwin(TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 70, 52))
    rois = torch.tensor([[0, 4., 6., 40., 30.], [1, 10., 2., 50., 66.]])
    for out, stride in zip(outs, (4, 8, 16, 32)):
        ref = roi_align(out.clone(memory_format=torch.contiguous_format), rois, (7, 7),
                        1 / stride, 0, 'avg', True)
        torch.testing.assert_close(roi_align(out, rois, (7, 7), 1 / stride, 0, 'avg', True), ref)


# ----------------------------------------------------------------------------- ELSA block


def elsa_attention_reference(m: ELSAAttention, x):
    """Spec 1.1 / 2.1 written out: q*k -> grouped conv -> GELU -> 1x1 conv -> softmax over the
    taps; output = sum over the taps of zero-padded shifted v times (A * M + Bg)."""
    B, H, W, C = x.shape
    G, k, q_dims = m.num_heads, m.kernel_size, m.qk_dims
    p = k // 2
    qkv = F.conv2d(x.permute(0, 3, 1, 2), m.pre_proj.weight, m.pre_proj.bias)
    q, kk, v = qkv[:, :q_dims], qkv[:, q_dims:2 * q_dims], qkv[:, 2 * q_dims:]
    h = F.conv2d(q * kk * m.scale, m.attn[0].weight, m.attn[0].bias, padding=p,
                 groups=q_dims // m.attn[0].weight.shape[1])
    logits = F.conv2d(F.gelu(h), m.attn[2].weight, m.attn[2].bias)
    A = logits.reshape(B * G, k * k, H, W).softmax(1)
    V = F.pad(v.reshape(B * G, C // G, H, W), (p, p, p, p))
    gh = m.ghost_head
    if m.lam and m.gamma:
        M, Bg = gh[0, 0] ** m.lam, gh[1, 0] * m.gamma
    else:
        M, Bg = torch.ones_like(gh[0]), gh[0] * m.gamma
    M = M.reshape(1, G, C // G, k, k).expand(B, -1, -1, -1, -1).reshape(B * G, C // G, k, k)
    Bg = Bg.reshape(1, G, C // G, k, k).expand(B, -1, -1, -1, -1).reshape(B * G, C // G, k, k)
    out = torch.zeros(B * G, C // G, H, W, dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            filt = A[:, None, ky * k + kx] * M[:, :, ky, kx, None, None] \
                + Bg[:, :, ky, kx, None, None]
            out += V[:, :, ky:ky + H, kx:kx + W] * filt
    out = out.reshape(B, C, H, W).permute(0, 2, 3, 1)
    return F.linear(out, m.post_proj.weight, m.post_proj.bias)


@pytest.mark.parametrize('lam,gamma', [(0, 1), (1, 1)])
@pytest.mark.parametrize('size', [(9, 13), (4, 5)])  # 4x5: every window crosses the border
def test_elsa_attention_matches_the_reference_float64(lam, gamma, size):
    m = ELSAAttention(24, 3, group_width=4, lam=lam, gamma=gamma).double()
    for prm in m.parameters():
        prm.data.normal_(0, 0.3)
    x = torch.randn(2, *size, 24, dtype=torch.float64)
    ref = elsa_attention_reference(m, x)
    assert ops.HAS_EXT
    torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)  # the compiled op
    with ops.reference_ops():
        torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)


def test_elsa_attention_sizes_and_ghost_switches():
    m = ELSAAttention(96, 3, group_width=4)
    assert m.qk_dims == 64 and m.scale == 1.0 and m.ghost_head.shape == (1, 96, 7, 7)
    assert ELSAAttention(128, 4, group_width=8).qk_dims == 88  # 84 rounded up (spec 3.1)
    both = ELSAAttention(96, 3, lam=1, gamma=1)
    assert both.ghost_head.shape == (2, 1, 96, 7, 7)
    assert ELSAAttention(96, 3, lam=0, gamma=0).ghost_head is None
    assert ELSAAttention(96, 3, qk_scale=None).scale == 32**-0.5
    with pytest.raises(ValueError, match='num_heads'):
        ELSAAttention(96, 5)


def test_backbone_compiled_and_reference_ops_agree_float64():
    model = ELSASwin(TINY, drop_path_rate=0.).double().eval()
    x = torch.randn(2, 3, 45, 61, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)
        with ops.reference_ops():
            ref = model(x)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- stage 4


def test_relative_id_is_key_minus_query():
    attn = WindowAttention(8, 2, window_size=7)
    rid = attn.relative_id.view(49, 49)
    for (qy, qx), (ky, kx) in [((0, 0), (6, 6)), ((3, 4), (1, 0)), ((6, 2), (0, 5))]:
        expected = (ky - qy + 6) * 13 + (kx - qx + 6)
        assert rid[qy * 7 + qx, ky * 7 + kx] == expected


def test_window_attention_splits_v_q_k():
    """Spec 1.5: chunk 0 of the qkv output is v, 1 is q, 2 is k; bias rb[:, relative_id]."""
    torch.manual_seed(0)
    attn = WindowAttention(8, 2, window_size=3).double()
    attn.rb.data.normal_()
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    qkv = attn.pre_proj(x).view(2, 9, 3, 2, 4)
    v, q, k = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, N, heads, d]
    logits = torch.einsum('bnhd,bmhd->bhnm', q, k) * 4**-0.5
    logits = logits + attn.rb[:, attn.relative_id].view(1, 2, 9, 9)
    out = torch.einsum('bhnm,bmhd->bnhd', logits.softmax(-1), v).reshape(2, 9, 8)
    torch.testing.assert_close(attn(x), attn.post_proj(out))


def test_shifted_windows_restrict_who_sees_whom():
    """A 14x14 map, window 7, shift 3: a token only mixes within its shifted-window region
    (rows/cols {0..2}, {3..9}, {10..13}); the -100 mask leaves ~e^-100 across regions."""
    block = SwinBlock(8, 2, window_size=7, shift_size=3).double().eval()
    x = torch.randn(1, 14, 14, 8, dtype=torch.float64)
    base = block.mix(x)
    groups = [range(0, 3), range(3, 10), range(10, 14)]
    for y, xx in [(0, 0), (5, 12), (11, 4)]:
        x2 = x.clone()
        x2[0, y, xx] += 1.0
        changed = (block.mix(x2) - base).abs().amax(-1)[0] > 1e-8
        gy = next(g for g in groups if y in g)
        gx = next(g for g in groups if xx in g)
        expected = torch.zeros(14, 14, dtype=torch.bool)
        expected[gy.start:gy.stop, gx.start:gx.stop] = True
        assert torch.equal(changed, expected), (y, xx)


def test_map_within_one_window_is_not_shifted():
    """At 224 the classifier's 7x7 stage-4 map is one unshifted window (the original)."""
    shifted = SwinBlock(8, 2, window_size=7, shift_size=3).double().eval()
    plain = SwinBlock(8, 2, window_size=7, shift_size=0).double().eval()
    plain.load_state_dict(shifted.state_dict())
    x = torch.randn(2, 7, 7, 8, dtype=torch.float64)
    torch.testing.assert_close(shifted(x), plain(x))
    x = torch.randn(2, 7, 9, 8, dtype=torch.float64)  # larger than a window: shifted
    assert not torch.allclose(shifted(x), plain(x))


# ----------------------------------------------------------------------------- precision


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_forward_and_backward_are_finite(dtype):
    model = ELSASwin(TINY)
    model.init_weights()
    with torch.autocast('cpu', dtype=dtype):
        outs = model(torch.randn(2, 3, 40, 56))
    assert all(o.dtype == dtype for o in outs)  # autocast is really on
    loss = sum(o.float().pow(2).mean() for o in outs)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_elsa_op_runs_in_float32_under_autocast():
    m = ELSAAttention(24, 3, group_width=4)
    seen = {}
    # the op's output feeds post_proj: under autocast it arrives in float32
    m.post_proj.register_forward_hook(lambda mod, args, out: seen.update(dtype=args[0].dtype))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = m(torch.randn(2, 6, 7, 24))
    assert seen['dtype'] == torch.float32 and out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()


def test_pure_bfloat16_model_runs():
    model = ELSASwin(TINY).to(torch.bfloat16).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 40, dtype=torch.bfloat16))
    assert all(o.dtype == torch.bfloat16 and torch.isfinite(o).all() for o in outs)


# ----------------------------------------------------------------------------- contract


def test_registry_and_arch_dict():
    model = MODELS.build(dict(type='ELSASwin', arch=TINY, out_indices=(1, 2)))
    assert model.out_channels == (32, 64)
    assert not hasattr(model, 'norm0') and hasattr(model, 'norm2')
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape for o in outs] == [(1, 32, 8, 8), (1, 64, 4, 4)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='huge'), ValueError, 'arch must be one of'),
    (dict(arch=3), TypeError, 'arch must be a str or a dict'),
    (dict(arch=dict(embed_dims=16)), ValueError, 'exactly the keys'),
    (dict(arch=dict(TINY, depths=(1, 1, 1))), ValueError, 'one entry per stage'),
    (dict(out_indices=(4, )), ValueError, 'out_indices'),
    (dict(out_indices=()), ValueError, 'out_indices'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=1.0), ValueError, 'drop_path_rate'),
    (dict(kernel_size=4), ValueError, 'kernel_size'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs.setdefault('arch', TINY)
    with pytest.raises(error, match=match):
        ELSASwin(**kwargs)


def test_frozen_stages():
    model = ELSASwin(TINY, frozen_stages=2)
    model.train()
    for name, p in model.named_parameters():
        frozen = name.startswith(('patch_embed.', 'layers.0.', 'layers.1.', 'norm0.', 'norm1.'))
        assert p.requires_grad != frozen, name
    assert not model.layers[1].training and model.layers[2].training


def test_with_cp_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    a = ELSASwin(TINY, drop_path_rate=0.)
    b = ELSASwin(TINY, drop_path_rate=0., with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 40, 40, requires_grad=True)
    grads = []
    for model in (a, b):
        model.train()
        outs = model(x)
        sum(o.sum() for o in outs).backward()
        grads.append(model.layers[1].blocks[0].attn.ghost_head.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_init_weights_from_scratch_and_placeholder(caplog):
    model = ELSASwin(TINY, init_cfg=dict(type='Pretrained', checkpoint=None))
    model.init_weights()
    lin = model.layers[0].blocks[0].attn.post_proj
    assert lin.bias.abs().max() == 0 and 0.01 < lin.weight.std() < 0.03
    ghost = model.layers[0].blocks[0].attn.ghost_head
    assert 0.01 < ghost.std() < 0.03  # truncated normal std 0.02, kept
