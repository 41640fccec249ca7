"""HRViT classifier configs and the converter of original checkpoints."""
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
from mmvit_plugins.models import HRViT

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'hrvit2mmvit.py')


def build_classifier(arch):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', f'cls_hrvit_{arch}_in1k.py'))
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('arch,params', [('b1', 19.685), ('b2', 32.486), ('b3', 37.870)])
def test_classifier_configs_match_original_parameter_counts(arch, params):
    model = build_classifier(arch)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 3) == params


def original_layout(model):
    """The state dict of `model` in the original's naming (spec 6.3), as timm saves it."""
    sd = {}
    for key, value in model.state_dict().items():
        if key.startswith('backbone.'):
            key = key[len('backbone.'):]
        elif key.startswith('neck.'):
            key = 'head.' + key[len('neck.'):]
        elif key.startswith('head.fc.'):
            key = 'head.classifier.' + key[len('head.fc.'):]
        sd['module.' + key] = value.clone()
    return sd


@pytest.fixture(scope='module')
def original_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_classifier('b1')
    for p in model.parameters():  # distinguishable values
        p.data.normal_()
    sd = original_layout(model)
    assert len(sd) == 1559  # spec 6.3: b1 keys with the head
    for key in ['module.head.incre_modules.3.0.conv3.weight',
                'module.head.downsamp_modules.2.1.weight', 'module.head.final_layer.0.bias',
                'module.head.classifier.weight', 'module.features.11.norm.3.bias']:
        assert key in sd
    path = tmp_path_factory.mktemp('orig') / 'checkpoint-299.pth.tar'
    torch.save(dict(epoch=299, arch='HRViT_b1_224', state_dict=sd, version=2,
                    args=argparse.Namespace(lr=1e-3, model='HRViT_b1_224')), path)
    return path, model


class Payload:
    """Stands for any class a crafted checkpoint could name (and run code through)."""


def convert(src, dst):
    return subprocess.run([sys.executable, CONVERTER, str(src), str(dst)], capture_output=True,
                          text=True)


def test_converter_round_trip_strict(original_checkpoint, tmp_path):
    src, model = original_checkpoint
    dst = tmp_path / 'hrvit_b1_in1k.pth'
    result = convert(src, dst)
    assert result.returncode == 0, result.stderr
    assert 'wrote' in result.stdout and '1559 tensors' in result.stdout
    fresh = build_classifier('b1')
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)  # no missing/unexpected
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    # plain tensors: loads with weights_only=True without any allow-list
    assert torch.load(dst, weights_only=True)['state_dict']

    backbone = HRViT('b1', init_cfg=dict(type='Pretrained', checkpoint=str(dst),
                                         prefix='backbone.'))
    backbone.init_weights()
    torch.testing.assert_close(backbone.stem.conv1.weight, model.backbone.stem.conv1.weight)
    torch.testing.assert_close(backbone.features[11].norm[3].bias,
                               model.backbone.features[11].norm[3].bias)


def test_converter_refuses_unknown_layouts_and_code(tmp_path):
    src = tmp_path / 'other.pth'
    torch.save({'state_dict': {'blocks.0.attn.qkv.weight': torch.zeros(1)}}, src)
    result = convert(src, tmp_path / 'out.pth')
    assert result.returncode != 0
    assert 'keys of unknown layout' in result.stderr and 'Traceback' not in result.stderr

    # the others in this process (the message is the same, the start-up is not repeated)
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload()}, evil)  # a class outside the allow-list
    result = run_main_here(CONVERTER, evil, tmp_path / 'out.pth')
    assert result.returncode == 1 and 'refused to load: it pickles' in result.stderr
    assert 'Traceback' not in result.stderr

    result = run_main_here(CONVERTER, tmp_path / 'missing.pth', tmp_path / 'out.pth')
    assert result.returncode != 0 and 'checkpoint not found' in result.stderr


@pytest.mark.parametrize('config', ['segformer_hrvit_b1_ade20k.py', 'upernet_hrvit_b1_ade20k.py'])
def test_converter_segmentor_round_trip_strict(config, tmp_path):
    """An original mmseg segmentor checkpoint (spec 6.2/6.3) loads strictly into ours."""
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
        fresh = MODELS.build(cfg.model)
    for p in model.parameters():  # perturbed: no parameter keeps its initial value
        p.data.add_(0.01 * torch.randn_like(p))
    model.eval()
    fresh.eval()
    # mmseg 0.11 saves the segmentor's own names; meta and optimizer hold plain data
    src = tmp_path / 'iter_160000.pth'
    torch.save({'meta': {'iter': 160000, 'CLASSES': ('wall', 'building'), 'config': 'text'},
                'state_dict': {'module.' + k: v for k, v in model.state_dict().items()},
                'optimizer': {'state': {}, 'param_groups': [{'lr': 6e-5}]}}, src)
    dst = tmp_path / 'converted.pth'
    result = run_main_here(CONVERTER, src, dst)  # in this process (the command line: above)
    assert result.returncode == 0, result.stderr
    load_checkpoint(fresh, str(dst), map_location='cpu', strict=True)
    x = torch.randn(1, 3, 67, 45)
    with torch.no_grad():
        torch.testing.assert_close(fresh._forward(x), model._forward(x), rtol=0, atol=0)
