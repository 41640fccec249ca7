# Mask R-CNN, Container-Light + FPN, 1x on COCO: the likely protocol of the paper's 45.1 box /
# 41.3 mask AP (spec container.md 4.1): PVT's mmdet setting, AdamW lr 2e-4 / wd 1e-4, 12 epochs
# with steps at 8 and 11, batch 2 x 8 GPUs; trainable in-block BatchNorms. ImageNet weights:
# container2mmvit.py, then --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='Container',
        arch='light',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
