"""ELSA-Swin classifier configs, recipes of the dense configs, and the converter of original
checkpoints (timm ImageNet, mmdet 2.11 and mmseg 0.11)."""
import argparse
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from _cli import run_main_here
from mmvit_plugins.models import ELSASwin

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'elsa2mmvit.py')


def build(config):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    import importlib
    importlib.import_module(f'{cfg.default_scope}.models')
    registry = importlib.import_module(f'{cfg.default_scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return registry.build(cfg.model)


def n_params(model):
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


@pytest.mark.parametrize('arch,params', [('tiny', 29.141), ('small', 52.875), ('base', 92.682)])
def test_classifier_configs_match_original_parameter_counts(arch, params):
    assert n_params(build(f'cls_elsa_swin_{arch}_in1k.py')) == params


@pytest.mark.parametrize('config,params', [
    ('maskrcnn_elsa_swin_tiny_coco.py', 48.647),  # README: 49M
    ('cascade_maskrcnn_elsa_swin_tiny_coco.py', 86.482),  # README: 86M
    ('upernet_elsa_swin_tiny_ade20k.py', 60.794),  # README: 61M
])
def test_dense_parameter_counts(config, params):
    assert n_params(build(config)) == params


def test_recipes():
    """Spec 4.2 / 4.3: drop path per config, schedules, optimiser, augmentation, heads."""
    def cfg(name):
        return Config.fromfile(osp.join(ROOT, 'configs', name))

    dpr = {'maskrcnn_elsa_swin_tiny_coco.py': 0.1, 'maskrcnn_elsa_swin_tiny_3x_coco.py': 0.2,
           'maskrcnn_elsa_swin_small_coco.py': 0.2, 'maskrcnn_elsa_swin_small_3x_coco.py': 0.75,
           'cascade_maskrcnn_elsa_swin_tiny_coco.py': 0.0,
           'cascade_maskrcnn_elsa_swin_tiny_3x_coco.py': 0.2,
           'cascade_maskrcnn_elsa_swin_small_coco.py': 0.2,
           'cascade_maskrcnn_elsa_swin_small_3x_coco.py': 0.75,
           'upernet_elsa_swin_tiny_ade20k.py': 0.3, 'upernet_elsa_swin_small_ade20k.py': 0.3}
    for name, rate in dpr.items():
        c = cfg(name)
        assert c.model.backbone.type == 'ELSASwin' and c.model.backbone.drop_path_rate == rate
        assert c.model.backbone.arch == ('small' if 'small' in name else 'tiny')
        if name.endswith('_coco.py'):
            epochs, steps = (36, [27, 33]) if '_3x' in name else (12, [8, 11])
            assert c.train_cfg.max_epochs == epochs
            warmup, step = c.param_scheduler
            assert (warmup.end, warmup.start_factor) == (500, 0.001)
            assert step.milestones == steps
            assert c.optim_wrapper.type == 'AmpOptimWrapper'
            assert c.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                                                     weight_decay=0.05)
            assert c.optim_wrapper.paramwise_cfg.custom_keys['norm'] == dict(decay_mult=0.)
            assert c.train_dataloader.batch_size == 2
            choice = c.train_dataloader.dataset.pipeline[3]
            assert choice.type == 'RandomChoice' and len(choice.transforms) == 2
            assert choice.transforms[1][1].crop_size == (384, 600)
        else:
            assert c.optim_wrapper.optimizer.lr == 6e-5
            assert c.optim_wrapper.optimizer.weight_decay == 0.01
            assert c.train_cfg.max_iters == 160000 and c.train_dataloader.batch_size == 2
            assert c.model.auxiliary_head.in_channels == 384
    heads = cfg('cascade_maskrcnn_elsa_swin_tiny_coco.py').model.roi_head.bbox_head
    assert [h.num_shared_convs for h in heads] == [4, 4, 4]
    assert all(h.loss_bbox == dict(type='GIoULoss', loss_weight=10.0) for h in heads)
    assert [h.bbox_coder.target_stds[0] for h in heads] == [0.1, 0.05, 0.033]
    cls = cfg('cls_elsa_swin_base_in1k.py')
    assert cls.custom_hooks[0].type == 'EMAHook'
    assert abs(cls.custom_hooks[0].momentum - 8e-5) < 1e-12
    assert cls.optim_wrapper.clip_grad.max_norm == 5.0 and cls.train_dataloader.batch_size == 128


# ----------------------------------------------------------------------------- converter


def original_cls_layout(model):
    """The state dict of our classifier in the original's timm naming (spec 4.5)."""
    sd = {}
    for key, value in model.state_dict().items():
        if key.startswith('backbone.norm3.'):
            key = 'norm.' + key[len('backbone.norm3.'):]
        elif key.startswith('backbone.'):
            key = key[len('backbone.'):]
        elif key.startswith('head.fc.'):
            key = 'head.' + key[len('head.fc.'):]
        sd[key] = value.clone()
    return sd


def convert(*args, here=False):
    """The converter from the command line, or (``here``) its ``main`` in this process."""
    if here:
        return run_main_here(CONVERTER, *args)
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)], capture_output=True,
                          text=True)


def perturbed(model):
    for p in model.parameters():
        p.data.add_(0.01 * torch.randn_like(p))
    return model.eval()


def test_converter_imagenet_round_trip_strict(tmp_path):
    model = perturbed(build('cls_elsa_swin_tiny_in1k.py'))
    ema = perturbed(build('cls_elsa_swin_tiny_in1k.py'))
    sd, sd_ema = original_cls_layout(model), original_cls_layout(ema)
    for key in ['patch_embed.proj.weight', 'layers.0.blocks.1.attn.ghost_head',
                'layers.2.blocks.5.attn.attn.2.weight', 'layers.3.blocks.1.attn.rb',
                'layers.3.blocks.1.attn.relative_id', 'norm.weight', 'head.bias']:
        assert key in sd, key
    src = tmp_path / 'model_best.pth.tar'
    torch.save(dict(epoch=299, arch='elsa_swin_tiny', state_dict=sd, state_dict_ema=sd_ema,
                    args=argparse.Namespace(lr=1e-3, model='elsa_swin_tiny')), src)
    x = torch.randn(1, 3, 96, 80)
    for flag, ref in (([], model), (['--ema'], ema)):  # from the command line, then here
        dst = tmp_path / f'converted{"_ema" if flag else ""}.pth'
        result = convert(src, dst, *flag, here=bool(flag))
        assert result.returncode == 0, result.stderr
        assert f'{len(sd)} tensors' in result.stdout
        fresh = build('cls_elsa_swin_tiny_in1k.py').eval()
        load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
        with torch.no_grad():
            torch.testing.assert_close(fresh(x, mode='tensor'), ref(x, mode='tensor'),
                                       rtol=0, atol=0)
    assert torch.load(dst, weights_only=True)['state_dict']  # plain tensors only

    # the ImageNet backbone into a dense backbone: all but norm0-norm2 (fresh, as the original)
    backbone = ELSASwin('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                              prefix='backbone.'))
    backbone.init_weights()
    torch.testing.assert_close(backbone.layers[0].blocks[1].attn.ghost_head,
                               ema.backbone.layers[0].blocks[1].attn.ghost_head)
    torch.testing.assert_close(backbone.norm3.weight, ema.backbone.norm3.weight)


@pytest.mark.parametrize('config,keys', [
    ('maskrcnn_elsa_swin_tiny_coco.py',
     ['neck.lateral_convs.0.conv.weight', 'rpn_head.rpn_conv.weight',
      'roi_head.bbox_head.shared_fcs.1.weight', 'roi_head.mask_head.conv_logits.weight']),
    ('cascade_maskrcnn_elsa_swin_tiny_coco.py',
     ['roi_head.bbox_head.2.shared_convs.3.bn.running_var', 'roi_head.bbox_head.0.fc_reg.bias',
      'roi_head.mask_head.2.upsample.weight']),
    ('upernet_elsa_swin_tiny_ade20k.py',
     ['decode_head.psp_modules.3.1.conv.weight', 'decode_head.fpn_bottleneck.bn.weight',
      'auxiliary_head.convs.0.conv.weight', 'backbone.norm0.weight']),
])
def test_converter_dense_round_trip_strict(config, keys, tmp_path):
    """Original mmdet 2.11 / mmseg 0.11 checkpoints: the heads kept their names in mmdet 3 /
    mmseg 1, so a saved detector or segmentor loads strictly and gives the same outputs."""
    model = perturbed(build(config))
    sd = model.state_dict()
    for key in keys + ['backbone.layers.3.blocks.1.attn.rb', 'backbone.norm3.bias']:
        assert key in sd, key
    src = tmp_path / 'epoch_12.pth'
    torch.save({'meta': {'epoch': 12, 'CLASSES': ('person', 'car'), 'config': 'text'},
                'state_dict': {'module.' + k: v for k, v in sd.items()},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 1e-4}]}}, src)
    dst = tmp_path / 'converted.pth'
    result = convert(src, dst, here=True)  # (the command line: the ImageNet test above)
    assert result.returncode == 0, result.stderr
    fresh = build(config).eval()
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a, b = fresh.backbone(x), model.backbone(x)
        if hasattr(model, 'neck'):
            a, b = fresh.neck(a), model.neck(b)
        else:
            a, b = [fresh.decode_head(a)], [model.decode_head(b)]
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


def test_converter_errors(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'state_dict': {'blocks.0.attn.qkv.weight': torch.zeros(1)}}, src)
    result = convert(src, tmp_path / 'out.pth')
    assert result.returncode != 0
    assert 'keys of unknown layout' in result.stderr and 'Traceback' not in result.stderr
    # the others in this process (the message is the same, the start-up is not repeated)
    torch.save({'state_dict': {'norm.weight': torch.zeros(1)}}, src)
    result = run_main_here(CONVERTER, src, tmp_path / 'out.pth', '--ema')
    assert result.returncode != 0 and 'no state_dict_ema' in result.stderr
    result = run_main_here(CONVERTER, tmp_path / 'missing.pth', tmp_path / 'out.pth')
    assert result.returncode != 0 and 'checkpoint not found' in result.stderr
