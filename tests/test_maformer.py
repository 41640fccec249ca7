"""MAFormer (a documented reconstruction): the MAF block against a naive float64 reference written
from the spec's equations, both fusion designs and both Pos readings, neighbourhood attention
against its reference op, any input size, the contract, parameter counts."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmvit_plugins import ops
from mmvit_plugins.models.backbones import MAFormer
from mmvit_plugins.models.backbones.maformer import GLD, GlobalBlock, MAFBlock
from mmvit_plugins.registry import MODELS

TINY = dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 4))
TINY_GRID = ((6, 6), (3, 3))
CSWIN_PARAMS = {'tiny': 23, 'small': 35, 'base': 78, 'large': 173}  # CSWin's README, millions


def tiny(**kwargs):
    return MAFormer(TINY, gld_grid=TINY_GRID, **kwargs)


def randomise(module, std=0.3):
    for p in module.parameters():
        p.data.normal_(0, std)
    return module


# ----------------------------------------------------------------------------- naive reference


def ln(x, norm):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def ref_window_attention(m, x):
    """Multi-head attention inside each window, by explicit loops over the windows that tile
    ``x [B, H, W, C]`` from the top-left (border windows partial) and over the heads."""
    B, H, W, C = x.shape
    h, ws = m.num_heads, m.window_size
    d = C // h
    out = torch.zeros_like(x)
    for y0 in range(0, H, ws):
        for x0 in range(0, W, ws):
            win = x[:, y0:y0 + ws, x0:x0 + ws]
            wh, ww = win.shape[1:3]
            q, k, v = F.linear(win.reshape(B, wh * ww, C), m.qkv.weight, m.qkv.bias).split(C, -1)
            cells = [(i, j) for i in range(wh) for j in range(ww)]
            bias = torch.stack([  # [h, n, n]: rpb at (key - query + ws - 1) per axis
                torch.stack([m.rpb[:, kj[0] - qi[0] + ws - 1, kj[1] - qi[1] + ws - 1]
                             for kj in cells], -1) for qi in cells], -2)
            for head in range(h):
                c = slice(head * d, (head + 1) * d)
                logits = q[..., c] @ k[..., c].transpose(1, 2) * d**-0.5 + bias[head]
                o = logits.softmax(-1) @ v[..., c]
                out[:, y0:y0 + wh, x0:x0 + ww, c] = o.view(B, wh, ww, d)
    return F.linear(out, m.proj.weight, m.proj.bias)


def ref_gld(g, x):
    """GLD as a matrix product: ``G = Z W^T + b + Pos`` with ``Z [B, C, M0]`` the normalised
    map, average-pooled by whole blocks onto the grid (the map is a multiple of it)."""
    B, H, W, C = x.shape
    H0, W0 = g.grid
    z = ln(x, g.norm).permute(0, 3, 1, 2)
    z = z.reshape(B, C, H0, H // H0, W0, W // W0).mean((3, 5)).reshape(B, C, H0 * W0)
    G = z @ g.fc.weight.t() + g.fc.bias  # [B, C, M0 / 2]
    if g.pos_mode == 'learned':
        G = G + g.pos.t()
    else:  # linear interpolation from M0 to M0 / 2 tokens: the mean of each pair
        G = G + z.reshape(B, C, -1, 2).mean(-1)
    return G.transpose(1, 2)


def ref_cross_attention(m, x, y):
    """softmax(Q K^T / sqrt(d)) V per head by einsum, Q from ``x``, K and V from ``y``."""
    B, N, C = x.shape
    h = m.num_heads
    d = C // h
    q = F.linear(x, m.q.weight, m.q.bias).view(B, N, h, d)
    k, v = F.linear(y, m.kv.weight, m.kv.bias).view(B, -1, 2, h, d).unbind(2)
    attn = (torch.einsum('bnhd,bmhd->bhnm', q, k) * d**-0.5).softmax(-1)
    out = torch.einsum('bhnm,bmhd->bnhd', attn, v).reshape(B, N, C)
    return F.linear(out, m.proj.weight, m.proj.bias)


def ref_maf_block(blk, x):
    """Spec 2 / 6: X_L = X + LWA(LN(X)); X_L += MLP(LN(X_L)); G = GLD(X or X_L);
    out = X_L + CrossAttn(Q = LN(X_L), K = V = G)."""
    B, H, W, C = x.shape
    x_l = x + ref_window_attention(blk.attn, ln(x, blk.norm1))
    hidden = F.gelu(F.linear(ln(x_l, blk.norm2), blk.mlp.fc1.weight, blk.mlp.fc1.bias))
    x_l = x_l + F.linear(hidden, blk.mlp.fc2.weight, blk.mlp.fc2.bias)
    G = ref_gld(blk.gld, x if blk.fusion == 'parallel' else x_l)
    fused = ref_cross_attention(blk.fuse, ln(x_l, blk.norm3).reshape(B, H * W, C), G)
    return x_l + fused.view(B, H, W, C)


SPEC_CASES = [  # (map, GLD grid, window)
    ((6, 8), (6, 4), 3),  # pooling onto the grid along W; partial windows on the right border
    ((5, 7), (5, 7), 3),  # map = grid; partial windows on both borders
    ((4, 6), (2, 3), 8),  # one window larger than the map
]


@pytest.mark.parametrize('fusion', ['parallel', 'sequential'])
@pytest.mark.parametrize('pos,size,grid,window', [
    (pos, *case) for pos in ('learned', 'interp') for case in SPEC_CASES
    if pos == 'learned' or case[1][0] * case[1][1] % 2 == 0  # the pair-mean needs an even M0
])
def test_maf_block_matches_the_spec_float64(fusion, pos, size, grid, window):
    torch.manual_seed(0)
    blk = randomise(MAFBlock(12, 3, window, grid, 0.5, fusion=fusion, pos=pos)).double().eval()
    x = torch.randn(2, *size, 12, dtype=torch.float64)
    torch.testing.assert_close(blk(x), ref_maf_block(blk, x))


def test_the_two_fusion_designs_differ():
    torch.manual_seed(0)
    par = randomise(MAFBlock(8, 2, 3, (4, 4), fusion='parallel')).double()
    seq = MAFBlock(8, 2, 3, (4, 4), fusion='sequential').double()
    seq.load_state_dict(par.state_dict())
    x = torch.randn(1, 4, 4, 8, dtype=torch.float64)
    assert (par(x) - seq(x)).abs().max() > 1e-3


def test_gld_resamples_any_map_to_its_grid():
    g = GLD(4, (6, 5))
    for size in [(6, 5), (13, 11), (2, 3), (20, 2), (1, 1)]:
        assert g(torch.randn(2, *size, 4)).shape == (2, 15, 4)
    x = torch.randn(1, 4, 12, 10)  # a multiple of the grid: the block means
    torch.testing.assert_close(g.resample(x), x.view(1, 4, 6, 2, 5, 2).mean((3, 5)))


# ----------------------------------------------------------------------------- neighbourhood


@pytest.mark.skipif(not ops.HAS_EXT, reason='needs the compiled extension')
@pytest.mark.parametrize('size', [(9, 11), (3, 12)])  # the second is smaller than the window
def test_neighborhood_local_branch_equals_the_reference_op(size):
    torch.manual_seed(0)
    blk = randomise(MAFBlock(8, 2, 5, (3, 4), local_attn='neighborhood')).double()
    x = torch.randn(2, *size, 8, dtype=torch.float64, requires_grad=True)
    results = []
    for reference in (False, True):
        with ops.reference_ops(reference):
            y = blk(x)
            grads = torch.autograd.grad(y.square().sum(), [x, *blk.parameters()])
        results.append((y, grads))
    torch.testing.assert_close(results[0], results[1])


def test_neighborhood_and_window_blocks_share_parameters():
    window = MAFBlock(8, 2, 5, (3, 3)).state_dict()
    neighbourhood = MAFBlock(8, 2, 5, (3, 3), local_attn='neighborhood').state_dict()
    assert {k: v.shape for k, v in window.items()} == \
        {k: v.shape for k, v in neighbourhood.items()}


def test_global_attention_runs_in_linear_memory():
    """The global blocks and the fusion: SDPA can take its flash kernel (memory linear in the
    tokens) in forward and backward; same result as the math kernel."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    torch.manual_seed(0)
    blocks = [GlobalBlock(8, 2).double(), MAFBlock(8, 2, 3, (2, 2)).double()]
    x = torch.randn(2, 4, 5, 8, dtype=torch.float64, requires_grad=True)
    for blk in blocks:
        results = []
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
            attn = blk.attn if isinstance(blk, GlobalBlock) else blk.fuse
            with sdpa_kernel([backend]):
                y = attn(blk.norm1(x).flatten(1, 2), None if attn.self_attn else blk.gld(x))
                results.append((y, torch.autograd.grad(y.sum(), x)))
        torch.testing.assert_close(*results)


# ----------------------------------------------------------------------------- backbone


@pytest.mark.parametrize('local_attn', ['window', 'neighborhood'])
@pytest.mark.parametrize('size', [(64, 96), (33, 31), (7, 5), (1, 1), (130, 67)])
def test_shapes_on_any_size(local_attn, size):
    """Stage maps smaller and larger than the window and than GLD's grid (6x6 and 3x3)."""
    model = tiny(local_attn=local_attn, window_size=3).train()
    x = torch.randn(2, 3, *size, requires_grad=True)
    outs = model(x)
    for out, c, s in zip(outs, (8, 16, 32, 64), (4, 8, 16, 32)):
        assert out.shape == (2, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
        assert out.is_contiguous() and torch.isfinite(out).all()
    sum(o.square().mean() for o in outs).backward()
    assert torch.isfinite(x.grad).all()


def test_real_variant_shapes_at_detection_size():
    model = MAFormer('tiny').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 500, 375))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 125, 94), (128, 63, 47), (256, 32, 24),
                                                 (512, 16, 12)]


@pytest.mark.parametrize('arch,params', [('tiny', 27.627), ('small', 40.713), ('base', 88.806),
                                         ('large', 185.362)])
def test_parameter_counts_near_cswin(arch, params):
    """The abstract: "similar-sized parameters" to CSWin; each variant within 25% of its row."""
    n = sum(p.numel() for p in MAFormer(arch).parameters()) / 1e6
    assert round(n, 3) == params
    assert abs(n / CSWIN_PARAMS[arch] - 1) < 0.25


def test_contract_out_indices_frozen_stages_with_cp():
    model = MODELS.build(dict(type='MAFormer', arch=TINY, gld_grid=TINY_GRID,
                              out_indices=(1, 3)))
    assert model.out_channels == (16, 64) and hasattr(model, 'norm1')
    assert not hasattr(model, 'norm0')
    assert len(model(torch.randn(1, 3, 32, 32))) == 2
    frozen = tiny(frozen_stages=2).train()
    for name, p in frozen.named_parameters():
        assert p.requires_grad != name.startswith(
            ('patch_embed.', 'stages.0.', 'stages.1.', 'norm0.', 'norm1.')), name
    assert not frozen.stages[1].training and frozen.stages[2].training

    a, b = tiny(), tiny(with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 40, 56)
    grads = []
    for model in (a, b):
        model.train()
        outs = model(x)
        sum(o.square().sum() for o in outs).backward()
        grads.append([p.grad for p in model.parameters()])
    torch.testing.assert_close(a(x), b(x))
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize('local_attn', ['window', 'neighborhood'])
def test_bf16_autocast_forward_and_backward_are_finite(local_attn):
    model = tiny(local_attn=local_attn, window_size=3).train()
    x = torch.randn(2, 3, 48, 40)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(x)
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.float().square().mean() for o in outs).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize('kwargs,match', [
    (dict(fusion='joint'), 'fusion must be one of'),
    (dict(local_attn='conv'), 'local_attn must be one of'),
    (dict(pos='sine'), 'pos must be one of'),
    (dict(gld_grid=((6, 6), )), 'gld_grid must hold one'),
    (dict(gld_ratio=0.), 'gld_ratio must be in'),
    (dict(gld_ratio=0.01), 'at least one GLD token'),
    (dict(window_size=0), 'window_size'),
    (dict(local_attn='neighborhood', window_size=4), 'kernel_size'),
    (dict(arch='huge'), 'arch must be one of'),
    (dict(arch=dict(TINY, num_heads=(3, 2, 2, 4))), 'must divide the stage widths'),
    (dict(arch=dict(TINY, depths=(1, 1, 1))), 'one entry per stage'),
])
def test_bad_arguments_raise_clearly(kwargs, match):
    kwargs = {'arch': TINY, 'gld_grid': TINY_GRID, **kwargs}
    with pytest.raises(ValueError, match=match):
        MAFormer(**kwargs)
