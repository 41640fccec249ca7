"""HRViT backbone: parameter counts of the original, shapes on any input size, the contract."""
import math

import pytest
import torch

from mmvit_plugins.models.backbones import HRViT
from mmvit_plugins.models.backbones.hrvit import stripe_attention
from mmvit_plugins.registry import MODELS

# A tiny architecture for behaviour tests (real variants only for counts and shapes).
TINY = dict(channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
            depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)))


@pytest.mark.parametrize('arch,params,keys', [
    ('b1', 7.758, 1433),  # spec 5.1 / 6.3: backbone parameters (M) and state-dict keys
    ('b2', 20.311, 1541),
    ('b3', 25.508, 1595),
])
def test_parameter_counts_match_the_original(arch, params, keys):
    model = HRViT(arch)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 3) == params
    assert len(model.state_dict()) == keys


def test_original_key_layout():
    keys = set(HRViT('b1').state_dict())
    for key in ['stem.conv1.weight', 'stem.bn2.running_var',
                'features.2.blocks.1.0.0.weight',  # M1 fusion, new branch 1 from branch 0: DW conv
                'features.10.blocks.0.3.1.running_mean',  # M5 fusion, up path 3 -> 0: BN
                'features.1.patch_embed.0.proj.0.weight', 'features.1.patch_embed.0.norm.bias',
                'features.5.branches.2.5.attn.to_qkv.weight',
                'features.5.branches.2.5.attn.parallel_conv.1.weight',
                'features.5.branches.2.5.attn.to_out.0.bias',
                'features.5.branches.2.5.attn.attn_bn.weight',
                'features.5.branches.2.5.des.proj_right.weight',
                'features.11.branches.3.1.ffn.conv.conv_5.weight', 'features.11.norm.3.weight']:
        assert key in keys, key
    assert not any(k.startswith('features.0.') for k in keys)  # M0's fusion has no parameters


@pytest.mark.parametrize('size', [(224, 224), (100, 75), (67, 130)])
def test_b1_shapes_and_strides(size):
    model = HRViT('b1').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert len(outs) == 4
    for out, c, s in zip(outs, (32, 64, 128, 256), (4, 8, 16, 32)):
        assert out.shape == (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))


@pytest.mark.parametrize('arch,channels', [('b2', (48, 96, 240, 384)),
                                           ('b3', (64, 128, 256, 512))])
def test_b2_b3_shapes(arch, channels):
    model = HRViT(arch, out_indices=(1, 3)).eval()
    assert model.out_channels == (channels[1], channels[3])
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [o.shape for o in outs] == [(1, channels[1], 8, 12), (1, channels[3], 2, 3)]


def test_tiny_arch_trains_and_every_parameter_gets_a_gradient():
    model = MODELS.build(dict(type='HRViT', arch=TINY, drop_path_rate=0.1))
    model.init_weights()
    model.train()
    outs = model(torch.randn(2, 3, 45, 70))
    assert [o.shape[1] for o in outs] == [16, 32, 32, 64]
    sum(o.mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_attention_branch_starts_at_zero():
    # The attention BN's weight and bias are zero-initialised (as in the original).
    model = HRViT(TINY)
    bns = [m.attn_bn for m in model.modules() if hasattr(m, 'attn_bn')]
    assert bns and all((bn.weight == 0).all() and (bn.bias == 0).all() for bn in bns)


def test_with_cp_gives_identical_outputs_and_gradients():
    torch.manual_seed(0)
    model = HRViT(TINY)
    model_cp = HRViT(TINY, with_cp=True)
    model_cp.load_state_dict(model.state_dict())
    for m in (model, model_cp):  # non-zero attention BN so the attention path counts
        for bn in (mod.attn_bn for mod in m.modules() if hasattr(mod, 'attn_bn')):
            torch.nn.init.constant_(bn.weight, 0.5)
    x = torch.randn(2, 3, 40, 56, requires_grad=True)
    outs = model(x)
    outs_cp = model_cp(x)
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b)
    g = torch.autograd.grad(sum(o.sum() for o in outs), x)[0]
    g_cp = torch.autograd.grad(sum(o.sum() for o in outs_cp), x)[0]
    torch.testing.assert_close(g, g_cp)


@pytest.mark.parametrize('frozen,modules', [(0, 0), (1, 1), (2, 2), (3, 4), (4, 6)])
def test_frozen_stages(frozen, modules):
    model = HRViT(TINY, frozen_stages=frozen)
    model.train()
    frozen_parts = [model.stem] + [model.features[i] for i in range(2 * modules)]
    for part in frozen_parts:
        assert all(not p.requires_grad for p in part.parameters())
        assert not part.training
    rest = list(model.features)[2 * modules:]
    for part in rest:
        assert all(p.requires_grad for p in part.parameters())


def test_norm_eval():
    model = HRViT(TINY, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(bn.training for bn in bns)
    assert model.features[1].training  # everything else still trains


def test_drop_path_schedule():
    # b1: 22 depths (1+1+6+6+6+2); block j of every branch in a module shares a rate.
    model = HRViT('b1', drop_path_rate=0.21)
    rates = torch.linspace(0, 0.21, 22).tolist()
    body = model.features[9]  # module 4 starts at depth 1+1+6+6 = 14
    for branch in body.branches:
        for j, block in enumerate(branch):
            assert block.drop_path.drop_prob == pytest.approx(rates[14 + j])
    # depth 0 has rate 0: no DropPath at all
    assert isinstance(model.features[1].branches[0][0].drop_path, torch.nn.Identity)


@pytest.mark.parametrize('arch,error,match', [
    ('b4', ValueError, "arch must be one of \\['b1', 'b2', 'b3'\\]"),
    (3, TypeError, 'arch must be a str or a dict'),
    (dict(TINY, extra=1), ValueError, 'needs exactly the keys'),
    (dict(TINY, depths=TINY['depths'][:5]), ValueError, 'arch depths'),
])
def test_bad_arch(arch, error, match):
    with pytest.raises(error, match=match):
        HRViT(arch)


def test_bad_out_indices_and_frozen_stages():
    with pytest.raises(ValueError, match='out_indices'):
        HRViT(TINY, out_indices=(4, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        HRViT(TINY, frozen_stages=5)


def naive_stripes(q, v, ws, heads, scale):
    """Horizontal stripes of ws rows, attention over the real tokens of each stripe only."""
    B, H, W, C = q.shape
    d = C // heads
    out = torch.empty_like(q)
    for top in range(0, H, ws):
        rows = slice(top, min(top + ws, H))
        qs = q[:, rows].reshape(B, -1, heads, d).transpose(1, 2)
        vs = v[:, rows].reshape(B, -1, heads, d).transpose(1, 2)
        o = ((qs * scale) @ vs.transpose(-1, -2)).softmax(-1) @ vs
        out[:, rows] = o.transpose(1, 2).reshape(B, -1, W, C)
    return out


@pytest.mark.parametrize('H,W,ws', [(14, 9, 7), (10, 9, 7), (5, 3, 2), (4, 4, 1)])
def test_stripe_attention_padding_is_masked(H, W, ws):
    q, v = (torch.randn(2, H, W, 8, dtype=torch.float64) for _ in range(2))
    out = stripe_attention(q, v, ws, 2, 0.5, vertical=False)
    torch.testing.assert_close(out, naive_stripes(q, v, ws, 2, 0.5))
    out_v = stripe_attention(q, v, ws, 2, 0.5, vertical=True)
    ref_v = naive_stripes(q.transpose(1, 2), v.transpose(1, 2), ws, 2, 0.5).transpose(1, 2)
    torch.testing.assert_close(out_v, ref_v)


def test_outputs_are_contiguous_nchw_and_read_correctly_by_mmcv_roi_align():
    """Regression: the outputs were channels-last views of the token tensors. Convs keep that
    layout, and mmcv's CPU RoIAlign reads raw memory as NCHW, so Mask R-CNN's RoI heads saw
    scrambled features and the detector could not learn."""
    from mmcv.ops import roi_align
    model = HRViT(TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 70, 52))
    rois = torch.tensor([[0, 4., 6., 40., 30.], [1, 10., 2., 50., 66.]])
    for out, stride in zip(outs, (4, 8, 16, 32)):
        assert out.is_contiguous()
        ref = roi_align(out.clone(memory_format=torch.contiguous_format), rois, (7, 7),
                        1 / stride, 0, 'avg', True)
        torch.testing.assert_close(roi_align(out, rois, (7, 7), 1 / stride, 0, 'avg', True), ref)
