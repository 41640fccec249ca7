"""Our backbones as drop-ins in the libraries' own packaged configs.

Each family replaces the ResNet of mmdet's Mask R-CNN, Cascade Mask R-CNN, RetinaNet and DETR
configs and of mmseg's UperNet (Cityscapes) config, changing only the backbone and the input
channels of the neck / heads, exactly as a user's one-file config would (the test then lowers
the detectors' proposal and RoI budgets, :func:`light_sampling`, for speed); ``loss`` and
``predict`` must run. mmseg's config also sets ``model.pretrained``, which ``EncoderDecoder``
hands the backbone as ``pretrained=``: the deprecated alias of a ``Pretrained`` init_cfg.
"""
import math
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmvit_plugins.registry import MODELS

# Tiny architectures (as in each family's tests) and the output channels of their 4 stages.
FAMILIES = {
    'HRViT': (dict(channels=(16, 32, 32, 64), head_dims=16, mlp_ratios=(2, 2, 2, 2),
                   depths=((1, ), (1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1))),
              [16, 32, 32, 64]),
    'ELSASwin': (dict(embed_dims=16, depths=(1, 1, 2, 2), num_heads=(1, 2, 2, 4),
                      group_width=4), [16, 32, 64, 128]),
    'Container': (dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 2, 1),
                       patch_sizes=(4, 2, 2, 2), mlp_ratios=(2, 2, 2, 2), num_heads=4,
                       mix_stages=(False, True, False, True)), [8, 16, 24, 32]),
    'CloFormer': (dict(embed_dims=(8, 16, 24, 32), num_heads=(2, 2, 3, 4),
                       local_heads=(1, 1, 2, 1)), [8, 16, 24, 32]),
    'MAFormer': (dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 4)),
                 [8, 16, 32, 64]),
}
DET_CONFIGS = {
    'mask_rcnn': 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'cascade': 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    'retinanet': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'detr': 'mmdet::detr/detr_r50_8xb2-150e_coco.py',
}
SEG_CONFIG = 'mmseg::upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py'


def backbone_cfg(family, **kwargs):
    return dict(_delete_=True, type=family, arch=FAMILIES[family][0], **kwargs)


def light_sampling(cfg):
    """Fewer proposals and sampled RoIs than the packaged configs' budget for 1333 x 800 images
    (1000-2000 proposals, 512 RoIs per image and stage): at this test's 96 px inputs 100 and 64
    run the same code, three times faster. In place, on every level of ``cfg``."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'sampler' and isinstance(value, dict) and 'num' in value:
                value['num'] = 64
            elif key in ('max_per_img', 'nms_pre') and isinstance(value, int) and value >= 1000:
                cfg[key] = 100
            else:
                light_sampling(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            light_sampling(value)


def user_config(tmp_path, base, model):
    """A user's one-file config: the packaged ``base`` with our package and ``model`` edits."""
    path = tmp_path / 'user_config.py'
    path.write_text(f'_base_ = {base!r}\n'
                    "custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)\n"
                    f'model = {model!r}\n')
    return Config.fromfile(str(path))


def test_our_backbones_have_the_channels_listed_here():
    for family, (arch, channels) in FAMILIES.items():
        outs = MODELS.build(dict(type=family, arch=arch))(torch.zeros(1, 3, 64, 64))
        assert [o.shape[1] for o in outs] == channels, family


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize('detector', sorted(DET_CONFIGS))
def test_family_in_mmdet_packaged_detector(tmp_path, family, detector):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    channels = FAMILIES[family][1]
    if detector == 'detr':  # one map into the transformer, as the config's ResNet gives
        model = dict(backbone=backbone_cfg(family, out_indices=(3, )),
                     neck=dict(in_channels=channels[3:]))
    else:
        model = dict(backbone=backbone_cfg(family), neck=dict(in_channels=channels))
    cfg = user_config(tmp_path, DET_CONFIGS[detector], model)
    light_sampling(cfg.model)
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET_MODELS.build(cfg.model)
        det.init_weights()
        inputs = demo_mm_inputs(2, [[3, 96, 96], [3, 64, 80]], num_items=[3, 2],
                                num_classes=8, with_mask=detector in ('mask_rcnn', 'cascade'))
        data = det.data_preprocessor(inputs, True)
        det.train()
        losses = det(**data, mode='loss')
        total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(x.sum() for x in v)
                    for k, v in losses.items() if 'loss' in k)
        assert math.isfinite(float(total)) and total > 0
        total.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in det.backbone.parameters())
        det.eval()
        with torch.no_grad():
            results = det(**det.data_preprocessor(inputs, False), mode='predict')
    assert len(results) == 2
    for r in results:
        assert r.pred_instances.bboxes.shape[1] == 4
        assert len(r.pred_instances.scores) == len(r.pred_instances.bboxes)


def seg_inputs(sizes=((64, 128), (56, 112)), num_classes=19):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.slow
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_family_in_mmseg_packaged_upernet_with_model_pretrained(tmp_path, family):
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    channels = FAMILIES[family][1]
    # backbone weights a user converted: mmseg configs name them in model.pretrained
    torch.manual_seed(1)
    source = MODELS.build(dict(type=family, arch=FAMILIES[family][0]))
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'state_dict': source.state_dict()}, ckpt)
    model = dict(pretrained=str(ckpt), backbone=backbone_cfg(family),
                 decode_head=dict(in_channels=channels),
                 auxiliary_head=dict(in_channels=channels[2]))
    cfg = user_config(tmp_path, SEG_CONFIG, model)
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.warns(FutureWarning, match='pretrained is deprecated'):
            seg = SEG_MODELS.build(cfg.model)
        assert seg.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(ckpt))
        seg.init_weights()
        for k, v in source.state_dict().items():
            assert torch.equal(seg.backbone.state_dict()[k], v), k
        # the packaged preprocessor pads every training batch to the 512x1024 crop of the
        # config; a smaller pad keeps the test fast (the model is what is under test)
        seg.data_preprocessor.size = (64, 128)
        data = seg.data_preprocessor(seg_inputs(), True)
        seg.train()
        losses = seg(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert math.isfinite(float(total)) and total > 0
        seg.eval()
        with torch.no_grad():
            # mmseg's preprocessor wants one image size per test batch
            test_batch = seg_inputs(((64, 96), (64, 96)))
            results = seg(**seg.data_preprocessor(test_batch, False), mode='predict')
    assert [tuple(r.pred_sem_seg.data.shape) for r in results] == [(1, 64, 96)] * 2


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_pretrained_alias_and_its_errors(family):
    arch = FAMILIES[family][0]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no warning without pretrained
        m = MODELS.build(dict(type=family, arch=arch))
    assert m.init_cfg is None
    with pytest.warns(FutureWarning, match=f"{family}: pretrained is deprecated, use "
                      r"init_cfg=dict\(type='Pretrained', checkpoint='w.pth'\)"):
        m = MODELS.build(dict(type=family, arch=arch, pretrained='w.pth'))
    assert m.init_cfg == dict(type='Pretrained', checkpoint='w.pth')
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(dict(type=family, arch=arch, pretrained='w.pth',
                          init_cfg=dict(type='Pretrained', checkpoint='v.pth')))
    with pytest.raises(TypeError, match=r'pretrained must be a checkpoint path or URL \(str\)'):
        MODELS.build(dict(type=family, arch=arch, pretrained=3))
