"""Every config parses and builds; segmentor parameter counts equal the original's."""
import glob
import importlib
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))
DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
DATA_ROOTS = {'coco': 'data/coco/', 'ade20k': 'data/ade/ADEChallengeData2016',
              'cityscapes': 'data/cityscapes/', 'in1k': 'data/imagenet'}


def build_model(cfg):
    scope = cfg.default_scope
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(cfg.model)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_every_task_family_has_configs():
    names = {osp.basename(c) for c in CONFIGS}
    expected = {f'maskrcnn_hrvit_b{i}_coco.py' for i in (1, 2, 3)}
    expected |= {'cascade_maskrcnn_hrvit_b1_coco.py', 'retinanet_hrvit_b1_coco.py',
                 'detr_hrvit_b1_coco.py', 'upernet_hrvit_b1_cityscapes.py'}
    expected |= {f'{h}_hrvit_b{i}_ade20k.py' for h in ('upernet', 'segformer') for i in (1, 2, 3)}
    expected |= {f'segformer_hrvit_b{i}_cityscapes.py' for i in (1, 2, 3)}
    expected |= {f'cls_hrvit_b{i}_in1k.py' for i in (1, 2, 3)}
    expected |= {f'cls_elsa_swin_{a}_in1k.py' for a in ('tiny', 'small', 'base')}
    expected |= {f'{d}_elsa_swin_{a}{s}_coco.py' for d in ('maskrcnn', 'cascade_maskrcnn')
                 for a in ('tiny', 'small') for s in ('', '_3x')}
    expected |= {f'upernet_elsa_swin_{a}_ade20k.py' for a in ('tiny', 'small')}
    expected |= {f'cls_container_{a}_in1k.py' for a in ('light', 'full')}
    expected |= {f'{d}_container_light_coco.py' for d in ('retinanet', 'maskrcnn', 'detr')}
    expected |= {'upernet_container_light_ade20k.py'}
    expected |= {f'cls_cloformer_{a}_in1k.py' for a in ('xxs', 'xs', 's')}
    expected |= {f'{d}_cloformer_{a}_coco.py' for d in ('maskrcnn', 'retinanet')
                 for a in ('xxs', 'xs', 's')}
    expected |= {f'fpn_cloformer_{a}_ade20k.py' for a in ('xxs', 'xs', 's')}
    expected |= {f'upernet_cloformer_{a}_ade20k.py' for a in ('xs', 's')}
    expected |= {f'cls_maformer_{a}_in1k.py' for a in ('tiny', 'small', 'base', 'large')}
    expected |= {f'maskrcnn_maformer_{a}{s}_coco.py' for a in ('tiny', 'small')
                 for s in ('', '_3x')}
    expected |= {'cascade_maskrcnn_maformer_tiny_3x_coco.py'}
    expected |= {f'upernet_maformer_{a}_ade20k.py' for a in ('tiny', 'small')}
    assert expected <= names
    # one demo variant per backbone and training-config family (the others take its overrides)
    demo = {osp.basename(c)[:-len('_demo.py')] for c in DEMO_CONFIGS}
    assert demo == {
        'maskrcnn_hrvit_b1_coco', 'cascade_maskrcnn_hrvit_b1_coco', 'retinanet_hrvit_b1_coco',
        'detr_hrvit_b1_coco', 'upernet_hrvit_b1_ade20k', 'upernet_hrvit_b1_cityscapes',
        'segformer_hrvit_b1_ade20k', 'segformer_hrvit_b1_cityscapes',
        'maskrcnn_elsa_swin_tiny_coco', 'cascade_maskrcnn_elsa_swin_tiny_coco',
        'upernet_elsa_swin_tiny_ade20k', 'retinanet_container_light_coco',
        'maskrcnn_container_light_coco', 'detr_container_light_coco',
        'upernet_container_light_ade20k', 'maskrcnn_cloformer_xs_coco',
        'retinanet_cloformer_xs_coco', 'upernet_cloformer_xs_ade20k', 'fpn_cloformer_xs_ade20k',
        'maskrcnn_maformer_tiny_coco', 'cascade_maskrcnn_maformer_tiny_3x_coco',
        'upernet_maformer_tiny_ade20k'}
    assert demo <= {n[:-3] for n in names}


@pytest.mark.parametrize('path', CONFIGS + DEMO_CONFIGS,
                         ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def test_config_parses_and_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['mmvit_plugins']
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    data_root = cfg.train_dataloader.dataset.get('data_root')
    if '/demo/' not in path:
        dataset = osp.basename(path)[:-3].rsplit('_', 1)[1]
        assert data_root == DATA_ROOTS[dataset]
    else:
        assert data_root.startswith('data/demo/')
    with torch.device('meta'):  # every module built, no constructor's default init computed
        model = build_model(cfg)
    assert type(model.backbone).__name__ in ('HRViT', 'ELSASwin', 'Container', 'CloFormer',
                                             'MAFormer')
    assert all(p.is_meta for p in model.parameters())
    model.to_empty(device='cpu')  # memory for init_weights (buffers left unset: no forward)
    model.init_weights()  # the Pretrained placeholder without a checkpoint: from scratch


SEGMENTOR_PARAMS = {  # spec hrvit.md 5.2, millions
    'segformer_hrvit_b1_ade20k.py': 8.18, 'segformer_hrvit_b2_ade20k.py': 20.81,
    'segformer_hrvit_b3_ade20k.py': 28.72, 'segformer_hrvit_b1_cityscapes.py': 8.15,
    'segformer_hrvit_b2_cityscapes.py': 20.78, 'segformer_hrvit_b3_cityscapes.py': 28.62,
    'upernet_hrvit_b1_ade20k.py': 35.95, 'upernet_hrvit_b2_ade20k.py': 49.70,
}


@pytest.mark.parametrize('name', sorted(SEGMENTOR_PARAMS))
def test_segmentor_parameter_counts(name):
    model = build_model(Config.fromfile(osp.join(ROOT, 'configs', name)))
    assert round(n_params(model) / 1e6, 2) == SEGMENTOR_PARAMS[name]


def test_segformer_recipe_details():
    b1 = Config.fromfile(osp.join(ROOT, 'configs', 'segformer_hrvit_b1_ade20k.py'))
    b3 = Config.fromfile(osp.join(ROOT, 'configs', 'segformer_hrvit_b3_ade20k.py'))
    city = Config.fromfile(osp.join(ROOT, 'configs', 'segformer_hrvit_b2_cityscapes.py'))
    assert b1.optim_wrapper.optimizer == dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999),
                                              weight_decay=0.01)
    assert b1.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 10.
    assert 'head' not in b3.optim_wrapper.paramwise_cfg.custom_keys  # as the original b3 config
    assert b1.train_cfg.max_iters == 160000 and b1.train_dataloader.batch_size == 2
    assert city.model.backbone.with_cp and city.model.test_cfg.mode == 'slide'
    assert city.model.test_cfg.stride == (768, 768) and city.train_dataloader.batch_size == 1


def test_hrvit_segformer_head_layout_and_output():
    from mmvit_plugins.models.decode_heads import HRViTSegformerHead
    head = HRViTSegformerHead(in_channels=[8, 16, 24, 32], in_index=[0, 1, 2, 3], channels=16,
                              num_classes=5, norm_cfg=dict(type='BN'))
    keys = set(head.state_dict())
    assert {f'convs.{i}.conv.{p}' for i in range(4) for p in ('weight', 'bias')} <= keys
    assert not any(k.startswith('convs.') and '.bn.' in k for k in keys)  # linear projections
    assert 'fusion_conv.conv.weight' in keys and 'fusion_conv.conv.bias' not in keys
    assert 'fusion_conv.bn.running_mean' in keys and 'conv_seg.weight' in keys
    feats = [torch.randn(2, c, 33 // s + 1, 25 // s + 1) for c, s in ((8, 1), (16, 2), (24, 4),
                                                                       (32, 8))]
    head.eval()
    out = head(feats)
    assert out.shape == (2, 5, 34, 26)
    # projections are linear: the head is affine in the features up to the fusion's ReLU
    p0 = head.convs[0](feats[0])
    assert torch.allclose(p0, torch.nn.functional.conv2d(feats[0], head.convs[0].conv.weight,
                                                         head.convs[0].conv.bias))
    with_norm = HRViTSegformerHead(in_channels=[8, 16], in_index=[0, 1], channels=16,
                                   num_classes=5, norm_cfg=dict(type='BN'), mlp_norm=True,
                                   mlp_act=True)
    assert 'convs.0.bn.weight' in with_norm.state_dict()


def test_hrvit_segformer_head_bad_arguments():
    from mmvit_plugins.models.decode_heads import HRViTSegformerHead
    with pytest.raises(ValueError, match='interpolate_mode'):
        HRViTSegformerHead(in_channels=[8, 16], in_index=[0, 1], channels=8, num_classes=2,
                           interpolate_mode='area')
    with pytest.raises(ValueError, match='in_channels and in_index'):
        HRViTSegformerHead(in_channels=[8, 16, 24], in_index=[0, 1], channels=8, num_classes=2)


def test_external_bases_resolve_from_an_index_read_once(monkeypatch):
    """``_base_ = 'mmdet::...'``: with mmvit_plugins imported, mmengine resolves such bases from
    each package's model index read once per process, to the files its own lookup gives, and
    still raises its own error for a name the package does not have."""
    from mmengine.config import utils as config_utils

    import mmvit_plugins.utils.config_index as config_index
    config_index.index_external_configs()
    config_index.index_external_configs()  # idempotent
    lookup = config_utils._get_cfg_metainfo
    assert lookup is config_index._cached_metainfo
    original = lookup.original
    import mmdet
    package = osp.dirname(mmdet.__file__)
    for name in ('retinanet/retinanet_r50_fpn_1x_coco.py', 'detr/detr_r50_8xb2-150e_coco.py'):
        assert lookup(package, name) == original(package, name)
    for name in ('no_such/config', 'retinanet/retinanet_r50_fpn_1x_coco'):  # (the second: as
        errors = []  # mmengine asks for a base; it then takes the file from .mim/configs)
        for fn in (lookup, original):
            with pytest.raises(ValueError) as e:
                fn(package, name)
            errors.append(str(e.value))
        assert errors[0] == errors[1] and errors[0].endswith(f'but got {name}')
    loads = []
    real_load = config_index.load
    monkeypatch.setattr(config_index, 'load', lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(config_index, '_indexes', {})
    for _ in range(2):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'cascade_maskrcnn_hrvit_b1_coco.py'))
    assert cfg.model.backbone.type == 'HRViT'
    index_files = [a[0] for a in loads]
    assert index_files and len(index_files) == len(set(index_files))  # each file read once
