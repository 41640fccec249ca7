"""Container / Container-Light: parameter counts and key layout of the release, the blocks
against independent references, any input size, the contract, configs and the converter."""
import argparse
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from _cli import run_main_here
from mmvit_plugins.models.backbones import Container
from mmvit_plugins.models.backbones.container import CBlock, MixBlock
from mmvit_plugins.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'container2mmvit.py')
TINY = dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), patch_sizes=(4, 2, 2, 2),
            mlp_ratios=(2, 2, 2, 2), num_heads=4, mix_stages=(False, True, False, True))


@pytest.mark.parametrize('arch,params,keys', [
    ('light', 20.634, 420),  # spec 2.3: 20.63M with the head (the release)
    ('full', 22.434, 435),  # spec 2.2: 22.43M (reconstruction)
])
def test_classifier_parameter_counts(arch, params, keys):
    model = Container(arch, out_indices=(3, ), final_norm=True)
    n = sum(p.numel() for p in model.parameters()) + 512 * 1000 + 1000  # + the linear head
    assert round(n / 1e6, 3) == params
    assert len(model.state_dict()) == keys


def test_released_key_layout():
    """Spec 4.3: names and shapes of the released Container-Light state dict."""
    sd = Container('light', out_indices=(3, ), final_norm=True).state_dict()
    expected = {
        'patch_embed1.proj.weight': (64, 3, 4, 4), 'patch_embed2.proj.weight': (128, 64, 2, 2),
        'patch_embed3.proj.weight': (320, 128, 2, 2), 'patch_embed4.proj.weight': (512, 320, 2, 2),
        'patch_embed4.norm.bias': (512, ),
        'blocks1.2.pos_embed.weight': (64, 1, 3, 3), 'blocks1.2.norm1.running_var': (64, ),
        'blocks1.2.conv1.weight': (64, 64, 1, 1), 'blocks1.2.attn.weight': (64, 1, 5, 5),
        'blocks1.2.conv2.bias': (64, ), 'blocks1.2.mlp.fc1.weight': (512, 64, 1, 1),
        'blocks2.3.mlp.fc2.weight': (128, 1024, 1, 1), 'blocks3.7.attn.bias': (320, ),
        'blocks3.7.mlp.fc1.weight': (1280, 320, 1, 1),
        'blocks4.2.conv1.weight': (1536, 512, 1, 1), 'blocks4.2.conv.weight': (512, 1, 5, 5),
        'blocks4.2.sa_weight': (1, ), 'blocks4.2.mlp.fc1.weight': (2048, 512, 1, 1),
        'blocks4.0.norm2.num_batches_tracked': (), 'norm.running_mean': (512, ),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert 'blocks1.3.conv1.weight' not in sd and 'blocks4.3.conv1.weight' not in sd
    assert not any(k.startswith('blocks4.') and '.attn.' in k for k in sd)


@pytest.mark.parametrize('arch', ['light', 'full'])
@pytest.mark.parametrize('size', [(224, 224), (67, 130), (33, 31)])
def test_shapes_on_any_size(arch, size):
    model = Container(arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    for out, c, s in zip(outs, (64, 128, 320, 512), (4, 8, 16, 32)):
        assert out.shape == (1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
        assert out.is_contiguous()


@pytest.mark.slow
@pytest.mark.parametrize('size', [(500, 375), (800, 1333)])
def test_light_shapes_on_detection_sizes(size):
    model = Container('light').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    assert [tuple(o.shape[-2:]) for o in outs] == [
        (math.ceil(size[0] / s), math.ceil(size[1] / s)) for s in (4, 8, 16, 32)]


def test_outputs_are_read_correctly_by_mmcv_roi_align():
    from mmcv.ops import roi_align
    model = Container(TINY).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 70, 52))
    rois = torch.tensor([[0, 4., 6., 40., 30.], [1, 10., 2., 50., 66.]])
    for out, stride in zip(outs, (4, 8, 16, 32)):
        ref = roi_align(out.clone(memory_format=torch.contiguous_format), rois, (7, 7),
                        1 / stride, 0, 'avg', True)
        torch.testing.assert_close(roi_align(out, rois, (7, 7), 1 / stride, 0, 'avg', True), ref)


def randomise(module):
    for p in module.parameters():
        p.data.normal_(0, 0.3)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    return module.double().eval()


def test_cblock_matches_the_spec():
    """Spec 2.1: x += DW3x3(x); x += conv2(DW5x5(conv1(BN(x)))); x += fc2(GELU(fc1(BN(x))))."""
    b = randomise(CBlock(8, mlp_ratio=2))
    x = torch.randn(2, 8, 7, 9, dtype=torch.float64)
    y = x + F.conv2d(x, b.pos_embed.weight, b.pos_embed.bias, padding=1, groups=8)
    h = b.norm1(y)
    h = F.conv2d(F.conv2d(F.conv2d(h, b.conv1.weight, b.conv1.bias), b.attn.weight, b.attn.bias,
                          padding=2, groups=8), b.conv2.weight, b.conv2.bias)
    y = y + h
    h = F.conv2d(F.gelu(F.conv2d(b.norm2(y), b.mlp.fc1.weight, b.mlp.fc1.bias)),
                 b.mlp.fc2.weight, b.mlp.fc2.bias)
    torch.testing.assert_close(b(x), y + h)


def test_mixblock_matches_the_spec():
    """Spec 2.1: q|k|v from one 1x1 conv (contiguous heads), attention without projection,
    the 5x5 depthwise conv on the v slice, mixed by sigmoid(sa_weight), then conv2."""
    b = randomise(MixBlock(16, num_heads=4, mlp_ratio=2))
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    y = x + F.conv2d(x, b.pos_embed.weight, b.pos_embed.bias, padding=1, groups=16)
    qkv = F.conv2d(b.norm1(y), b.conv1.weight, b.conv1.bias)
    q, k, v = qkv[:, :16], qkv[:, 16:32], qkv[:, 32:]
    static = F.conv2d(v, b.conv.weight, b.conv.bias, padding=2, groups=16)
    out = torch.zeros_like(v)
    for h in range(4):  # explicit per-head attention over the 30 tokens
        sl = slice(4 * h, 4 * h + 4)
        qh, kh, vh = (t[:, sl].flatten(2) for t in (q, k, v))  # [B, 4, N]
        a = (torch.einsum('bcn,bcm->bnm', qh, kh) * 4**-0.5).softmax(-1)
        out[:, sl] = torch.einsum('bnm,bcm->bcn', a, vh).view(2, 4, 5, 6)
    w = torch.sigmoid(b.sa_weight)
    y = y + F.conv2d(w * out + (1 - w) * static, b.conv2.weight, b.conv2.bias)
    h = F.conv2d(F.gelu(F.conv2d(b.norm2(y), b.mlp.fc1.weight, b.mlp.fc1.bias)),
                 b.mlp.fc2.weight, b.mlp.fc2.bias)
    torch.testing.assert_close(b(x), y + h)
    assert MixBlock(16, 4).sa_weight.item() == 0  # mixing starts at 1/2 - 1/2


def test_mixblock_attention_runs_in_linear_memory():
    """The full Container attends globally at stride 4 (66,800 tokens for 800x1333): SDPA must
    be able to take its flash kernel (O(N) memory) in forward and backward; the math fallback
    would store [16, N, N] weights (285 GB there). Restricted to that kernel, a strided layout
    raises 'No available kernel'."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    b = randomise(MixBlock(64, num_heads=16))
    x = torch.randn(2, 64, 7, 9, dtype=torch.float64, requires_grad=True)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        y = b(x)
        y.square().sum().backward()
    grad = x.grad.clone()
    x.grad = None
    with sdpa_kernel([SDPBackend.MATH]):
        ref = b(x)
        ref.square().sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(grad, x.grad)


# ----------------------------------------------------------------------------- contract


def test_registry_arch_dict_and_output_norms():
    model = MODELS.build(dict(type='Container', arch=TINY, out_indices=(1, 3),
                              out_norm_cfg=dict(type='GN', num_groups=4)))
    assert model.out_channels == (16, 32)
    assert hasattr(model, 'out_norm1') and not hasattr(model, 'out_norm0')
    assert model.norm is None
    with torch.no_grad():
        outs = model.eval()(torch.randn(1, 3, 64, 48))
    assert [o.shape for o in outs] == [(1, 16, 8, 6), (1, 32, 2, 2)]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='huge'), ValueError, 'arch must be one of'),
    (dict(arch=[1]), TypeError, 'arch must be a str or a dict'),
    (dict(arch=dict(TINY, depths=(1, 1))), ValueError, 'one entry per stage'),
    (dict(arch=dict(embed_dims=(8, ))), ValueError, 'exactly the keys'),
    (dict(out_indices=(4, )), ValueError, 'out_indices'),
    (dict(frozen_stages=5), ValueError, 'frozen_stages'),
    (dict(drop_path_rate=-0.1), ValueError, 'drop_path_rate'),
    (dict(final_norm=True, out_indices=(0, )), ValueError, 'final_norm'),
    (dict(arch=dict(TINY, num_heads=5)), ValueError, 'num_heads'),
])
def test_bad_arguments(kwargs, error, match):
    kwargs.setdefault('arch', TINY)
    with pytest.raises(error, match=match):
        Container(**kwargs)


def test_frozen_stages_and_norm_eval():
    model = Container(TINY, frozen_stages=2, norm_eval=True)
    model.train()
    for name, p in model.named_parameters():
        frozen = name.startswith(('patch_embed1.', 'patch_embed2.', 'blocks1.', 'blocks2.'))
        assert p.requires_grad != frozen, name
    assert all(not m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    model = Container(TINY).train()
    assert model.blocks3[0].norm1.training


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    a = Container(TINY, drop_path_rate=0.)
    b = Container(TINY, drop_path_rate=0., with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 40, 40, requires_grad=True)
    grads = []
    for model in (a, b):
        sum(o.sum() for o in model.train()(x)).backward()
        grads.append(model.blocks4[0].sa_weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


# ----------------------------------------------------------------------------- configs


def build(config):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    import importlib
    importlib.import_module(f'{cfg.default_scope}.models')
    registry = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return registry.build(cfg.model)


@pytest.mark.parametrize('config,params', [('cls_container_light_in1k.py', 20.634),
                                           ('cls_container_full_in1k.py', 22.434)])
def test_classifier_configs(config, params):
    assert round(sum(p.numel() for p in build(config).parameters()) / 1e6, 3) == params


def test_dense_recipes():
    def cfg(name):
        return Config.fromfile(osp.join(ROOT, 'configs', name))

    retina = cfg('retinanet_container_light_coco.py')
    assert retina.model.neck.in_channels == [64, 128, 320, 512]
    assert (retina.model.neck.start_level, retina.model.neck.add_extra_convs) == (1, 'on_input')
    assert retina.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert cfg('maskrcnn_container_light_coco.py').optim_wrapper.optimizer.lr == 2e-4
    detr = cfg('detr_container_light_coco.py')
    assert detr.model.backbone.out_indices == (3, ) and detr.model.neck.in_channels == [512]
    assert detr.train_cfg.max_epochs == 50 and detr.param_scheduler[0].milestones == [33]
    assert detr.optim_wrapper.clip_grad.max_norm == 0.1
    assert detr.optim_wrapper.paramwise_cfg.custom_keys['backbone'].lr_mult == 0.1
    for c in (retina, detr, cfg('upernet_container_light_ade20k.py')):
        assert c.model.backbone.type == 'Container' and not c.model.backbone.get('final_norm')


# ----------------------------------------------------------------------------- converter


def convert(*args):
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)], capture_output=True,
                          text=True)


def test_converter_round_trip_strict(tmp_path):
    models = []
    for _ in range(2):
        m = build('cls_container_light_in1k.py')
        for p in m.parameters():
            p.data.add_(0.01 * torch.randn_like(p))
        models.append(m.eval())

    def original(m):  # the release's names (spec 4.3)
        return {k[len('backbone.'):] if k.startswith('backbone.') else
                'head.' + k[len('head.fc.'):]: v.clone() for k, v in m.state_dict().items()}

    sd = original(models[0])
    assert {'blocks4.2.sa_weight', 'norm.running_var', 'head.weight'} <= set(sd)
    src = tmp_path / 'checkpoint.pth'
    torch.save(dict(model=sd, model_ema=original(models[1]), epoch=299,
                    optimizer={'state': {}, 'param_groups': [{'lr': 1e-5}]},
                    args=argparse.Namespace(model='container_v1_light')), src)
    x = torch.randn(1, 3, 64, 80)
    for flag, ref in (([], models[0]), (['--ema'], models[1])):  # the command line, then here
        dst = tmp_path / f'out{len(flag)}.pth'
        result = run_main_here(CONVERTER, src, dst, *flag) if flag else convert(src, dst)
        assert result.returncode == 0, result.stderr
        assert f'{len(sd)} tensors' in result.stdout
        fresh = build('cls_container_light_in1k.py').eval()
        load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
        with torch.no_grad():
            torch.testing.assert_close(fresh(x, mode='tensor'), ref(x, mode='tensor'), rtol=0,
                                       atol=0)
    # the ImageNet backbone into a dense backbone (no final norm there)
    backbone = Container('light', init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                                prefix='backbone.'))
    backbone.init_weights()
    torch.testing.assert_close(backbone.blocks4[1].conv.weight,
                               models[1].backbone.blocks4[1].conv.weight)

    # errors in this process (the first conversion above ran from the command line)
    torch.save({'model': {'cls_token': torch.zeros(1)}}, src)
    result = run_main_here(CONVERTER, src, tmp_path / 'bad.pth')
    assert result.returncode != 0 and 'keys of unknown layout' in result.stderr
    result = run_main_here(CONVERTER, src, tmp_path / 'bad.pth', '--ema')
    assert result.returncode != 0 and 'no model_ema' in result.stderr
