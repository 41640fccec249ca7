# Mask R-CNN, HRViT-b1 + HRViTNeck, 1x schedule (12 epochs) on COCO, AdamW.
# HRViT has no published COCO recipe (spec 5.3); this follows the Swin/ELSA-Swin Mask R-CNN 1x
# setting: AdamW lr 1e-4, weight decay 0.05 (none on norms and biases), batch 2 x 8 GPUs.
# No official HRViT weights exist, so the backbone starts from scratch (with a warning) unless
# given an ImageNet checkpoint converted by tools/model_converters/hrvit2mmvit.py:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
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
