# Cascade Mask R-CNN, HRViT-b1 + HRViTNeck, 1x on COCO, AdamW lr 1e-4 / wd 0.05 (the recipe of
# maskrcnn_hrvit_b1_coco.py; HRViT has no published COCO recipe, spec 5.3).
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRViT',
        arch='b1',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='HRViTNeck',
        in_channels=[32, 64, 128, 256],
        out_channels=256,
        num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.))
