"""torch.compile: the ops' fake kernels promise what the kernels return, every backbone family
compiles forward + backward to eager's numbers, and a demo config trains with ``compile=True``.

``torch.library.opcheck`` runs each compiled op on real and on fake tensors and compares sizes,
strides and dtypes, for contiguous, channels-last and non-contiguous (strided) inputs; a
mismatch there is what breaks ``torch.compile`` on its first call (issue 15).
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmvit_plugins import ops
from mmvit_plugins.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
needs_ext = pytest.mark.skipif(
    not ops.HAS_EXT,
    reason='the compiled extension is not built (make install builds it); these tests check '
    'its ops under torch.compile')
LAYOUTS = ('contiguous', 'channels_last', 'strided')


def layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    """``t``'s values in the memory layout ``kind``."""
    if kind == 'contiguous':
        return t.contiguous()
    if kind == 'channels_last':  # the layout of a permuted view, as the backbones produce
        fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
        out = t.contiguous(memory_format=fmt)
        assert not out.is_contiguous()
        return out
    # every other element of a twice-as-wide tensor along the last dim: no dense layout at all
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    out = wide[..., ::2]
    assert not out.is_contiguous() and out.stride(-1) == 2
    return out


def na_inputs(kind, dtype=torch.float64, B=2, H=7, W=9, heads=2, d=4, k=3):
    q, kk, v = (layout(torch.randn(B, H, W, heads, d, dtype=dtype), kind) for _ in range(3))
    attn = layout(torch.randn(B, H, W, heads, k * k, dtype=dtype).softmax(-1), kind)
    rpb = torch.randn(heads, 2 * k - 1, 2 * k - 1, dtype=dtype)
    return q, kk, v, attn, rpb, k


def elsa_inputs(kind, dtype=torch.float64, B=2, C=8, G=2, H=6, W=7, k=3):
    v = layout(torch.randn(B, C, H, W, dtype=dtype), kind)
    attn = layout(torch.randn(B, G, k * k, H, W, dtype=dtype), kind)
    mul, add = (torch.randn(C, k, k, dtype=dtype) for _ in range(2))
    return v, attn, mul, add, k


def op_cases(kind):
    """(name, op, args) for every compiled op entry point, forward and backward."""
    o = torch.ops.mmvit_plugins
    q, k, v, attn, rpb, ks = na_inputs(kind)
    g_attn = layout(torch.randn(attn.shape, dtype=attn.dtype), kind)
    g_out = layout(torch.randn(q.shape, dtype=q.dtype), kind)
    out, lse = o.na2d_fused_forward(q, k, v, rpb, ks, 1, 0.5)
    ev, ea, mul, add, ek = elsa_inputs(kind)
    g_elsa = layout(torch.randn(ev.shape, dtype=ev.dtype), kind)
    return [
        ('na2d_qk_forward', o.na2d_qk_forward, (q, k, rpb, ks, 1)),
        ('na2d_qk_forward no rpb', o.na2d_qk_forward, (q, k, None, ks, 1)),
        ('na2d_qk_backward', o.na2d_qk_backward, (g_attn, q, k, ks, 1, [True, True, True])),
        ('na2d_av_forward', o.na2d_av_forward, (attn, v, ks, 1)),
        ('na2d_av_backward', o.na2d_av_backward, (g_out, attn, v, ks, 1, [True, True])),
        ('na2d_fused_forward', o.na2d_fused_forward, (q, k, v, rpb, ks, 1, 0.5)),
        ('na2d_fused_backward', o.na2d_fused_backward,
         (g_out, q, k, v, rpb, out, lse, ks, 1, 0.5, [True, True, True, True])),
        ('elsa_aggregate_forward', o.elsa_aggregate_forward, (ev, ea, mul, add, ek, 1)),
        ('elsa_aggregate_forward no ghosts', o.elsa_aggregate_forward,
         (ev, ea, None, None, ek, 1)),
        ('elsa_aggregate_backward', o.elsa_aggregate_backward,
         (g_elsa, ev, ea, mul, add, ek, 1, [True, True, True, True])),
    ]


@needs_ext
@pytest.mark.parametrize('kind', LAYOUTS)
def test_fake_kernels_agree_with_the_kernels(kind):
    """opcheck: schema, fake tensors (sizes, strides, dtypes) and AOT dispatch of every op."""
    cases = op_cases(kind)
    assert len(cases) == 10
    for name, op, args in cases:
        try:
            torch.library.opcheck(op, args)
        except Exception as e:  # name the op in the failure
            raise AssertionError(f'{name} ({kind}): {e}') from e


@needs_ext
@pytest.mark.parametrize('kind', LAYOUTS)
def test_kernel_outputs_are_contiguous(kind):
    """What the fake kernels promise, checked on the real outputs directly."""
    for name, op, args in op_cases(kind):
        outs = op(*args)
        for i, t in enumerate(outs if isinstance(outs, (tuple, list)) else [outs]):
            assert t.is_contiguous(), (name, kind, i, t.shape, t.stride())


@needs_ext
@pytest.mark.parametrize('kind', LAYOUTS)
def test_compiled_functionals_match_eager_forward_and_backward(kind):
    """The three functional entry points under torch.compile (inductor), forward + backward."""
    q, k, v, _, rpb, ks = na_inputs(kind, torch.float32)
    ev, ea, _, add, ek = elsa_inputs(kind, torch.float32)
    leaves = [t.detach().requires_grad_() for t in (q, k, v, rpb, ev, ea, add)]

    def f(q, k, v, rpb, ev, ea, add):
        unfused = ops.na2d(q, k, v, ks, 1, rpb, fused=False)
        fused = ops.na2d(q, k, v, ks, 1, rpb, fused=True)
        elsa = ops.elsa_aggregate(ev, ea, ek, 1, None, add)
        return unfused.square().sum() + fused.square().sum() + elsa.square().sum()

    def run(fn):
        xs = [t.detach().clone().requires_grad_() for t in leaves]
        loss = fn(*xs)
        loss.backward()
        return loss.detach(), [x.grad for x in xs]

    torch._dynamo.reset()
    loss_e, grads_e = run(f)
    loss_c, grads_c = run(torch.compile(f, fullgraph=True))
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-5, atol=0)
    for gc, ge in zip(grads_c, grads_e):
        torch.testing.assert_close(gc, ge, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- backbones
# One tiny architecture per family (the shapes of each family's own tests), drop path off.
FAMILIES = {
    'HRViT': dict(arch=dict(channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
                            depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1),
                                    (1, 1, 1, 1)))),
    'ELSASwin': dict(arch=dict(embed_dims=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4),
                               group_width=4)),
    'Container': dict(arch=dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1),
                                patch_sizes=(4, 2, 2, 2), mlp_ratios=(2, 2, 2, 2), num_heads=4,
                                mix_stages=(False, True, False, True))),
    'CloFormer': dict(arch=dict(embed_dims=(8, 16, 24, 32), num_heads=(2, 2, 3, 4),
                                local_heads=(1, 1, 2, 1))),
    'MAFormer': dict(arch=dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 4)),
                     gld_grid=((6, 6), (3, 3)), local_attn='neighborhood'),
}


@needs_ext
@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_backbone_compiles_forward_and_backward_to_eager(family):
    """torch.compile(backbone) (inductor): outputs and every parameter's gradient equal eager's
    (rel 1e-9 of each tensor's largest value), in train mode. In float64: in float32 the two
    graphs' different (equally accurate) rounding is as large as the gradients that are zero
    but for rounding, so only float64 separates a wrong graph from rounding."""
    torch.manual_seed(0)
    model = MODELS.build(dict(type=family, drop_path_rate=0.0, **FAMILIES[family]))
    model.init_weights()
    model.train().double()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)

    def step(fn):
        model.zero_grad(set_to_none=True)
        outs = fn(x)
        sum((o * torch.linspace(-1, 1, o.shape[-1])).square().mean() for o in outs).backward()
        return [o.detach() for o in outs], {n: p.grad for n, p in model.named_parameters()
                                            if p.grad is not None}

    outs_e, grads_e = step(model)
    torch._dynamo.reset()
    outs_c, grads_c = step(torch.compile(model))
    assert len(outs_c) == len(outs_e) == 4
    for oc, oe in zip(outs_c, outs_e):
        assert oc.shape == oe.shape and oc.is_contiguous()
        assert (oc - oe).abs().max() <= 1e-9 * oe.abs().max()
    assert grads_c.keys() == grads_e.keys() and len(grads_e) > 10
    # a floor for gradients that are zero but for rounding (a conv bias right before a norm)
    floor = 1e-10 * max(g.abs().max() for g in grads_e.values())
    for n, ge in grads_e.items():
        assert (grads_c[n] - ge).abs().max() <= 1e-9 * ge.abs().max() + floor, n


@needs_ext
@pytest.mark.slow
def test_demo_config_trains_with_mmengine_compile(demo_data, tmp_path):
    """``compile=True`` in a demo config (ELSA-Swin UperNet, at a tiny arch): mmengine's Runner
    compiles ``train_step`` (see ``PlainParamGroupsHook``) and trains two iterations with
    finite losses."""
    arch = FAMILIES['ELSASwin']['arch']
    dims = [arch['embed_dims'] * 2**i for i in range(4)]
    data_root = osp.join(demo_data, 'ade', 'ADEChallengeData2016')
    config = tmp_path / 'compiled_demo.py'
    config.write_text(
        f"_base_ = {osp.join(ROOT, 'configs', 'demo', 'upernet_elsa_swin_tiny_ade20k_demo.py')!r}\n"
        'compile = True\n'
        f'model = dict(backbone=dict(arch=dict(_delete_=True, **{arch!r})),\n'
        f'             decode_head=dict(in_channels={dims}, channels=32),\n'
        f'             auxiliary_head=dict(in_channels={dims[2]}, channels=16))\n'
        f'train_dataloader = dict(batch_size=2, dataset=dict(data_root={data_root!r}))\n'
        f'val_dataloader = dict(dataset=dict(data_root={data_root!r}))\n'
        'test_dataloader = val_dataloader\n'
        'train_cfg = dict(max_iters=2, val_interval=100)\n'
        'default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100))\n')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(config),
           '--work-dir', str(tmp_path / 'work')]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp_path), timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Model has been "compiled"' in log
    losses = [float(line.split(' loss: ')[1].split()[0]) for line in log.splitlines()
              if 'Iter(train)' in line and ' loss: ' in line]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses))), log[-3000:]


@pytest.mark.parametrize('with_hook', [True, False])
def test_plain_param_groups_hook_keeps_a_scheduled_step_from_recompiling(with_hook):
    """A compiled train step whose lr changes every iteration (a warm-up): with the hook the
    frames compiled in the first iteration are all there are; without it, it recompiles."""
    from types import SimpleNamespace

    from mmengine.optim import OptimWrapper
    from torch._dynamo.testing import CompileCounter

    from mmvit_plugins.utils.runner import PlainParamGroupsHook
    model = torch.nn.Linear(4, 2)
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    if with_hook:
        PlainParamGroupsHook().before_train(SimpleNamespace(optim_wrapper=wrapper))
    counter = CompileCounter()

    @torch.compile(backend=counter)
    def train_step(x):
        loss = model(x).square().mean()
        wrapper.update_params(loss)
        return loss.detach()

    torch._dynamo.reset()
    frames = []
    for i in range(4):
        wrapper.optimizer.param_groups[0]['lr'] = 1e-3 * (i + 1)  # what a scheduler does
        train_step(torch.randn(3, 4))
        frames.append(counter.frame_count)
    assert frames[0] >= 1
    if with_hook:
        assert frames == [frames[0]] * 4, frames
    else:  # what the hook prevents
        assert frames[-1] > frames[0], frames
