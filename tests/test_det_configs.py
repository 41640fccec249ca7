"""Detection configs on HRViT parse, build, and give finite losses on a synthetic batch."""
import math
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_maskrcnn_hrvit_b1_builds_and_trains_a_step():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'maskrcnn_hrvit_b1_coco.py'))
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        model.init_weights()  # the Pretrained placeholder without a checkpoint: from scratch
        assert model.backbone.channels == (32, 64, 128, 256)
        packed = demo_mm_inputs(2, [[3, 96, 120], [3, 100, 80]], num_classes=80, with_mask=True)
        data = model.data_preprocessor(packed, True)
        losses = model(**data, mode='loss')
    total, log_vars = model.parse_losses(losses)
    assert math.isfinite(total.item()) and total.item() > 0
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(log_vars)
    total.backward()
    assert model.backbone.stem.conv1.weight.grad is not None
    assert model.neck.fusion.blocks[0][1][0].weight.grad is not None
