# Mask R-CNN, ELSA-Swin-T + FPN, 1x (12 epochs) on COCO: the original recipe (spec elsa.md 4.2;
# 45.7 box / 41.1 mask AP, 49M parameters). AdamW lr 1e-4, wd 0.05 (none on norms), warm-up 500
# iterations from 0.001, steps at epochs 8 and 11, batch 2 x 8 GPUs, mixed precision, and the
# DETR-style augmentation (flip, then multi-scale resize or resize -> crop -> resize) for 1x and 3x
# alike. The ImageNet backbone comes from tools/model_converters/elsa2mmvit.py:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ELSASwin',
        arch='tiny',
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
# `norm` matches every LayerNorm; the stage-4 table `rb` and the ghost heads keep their decay,
# as in the original (whose keys `absolute_pos_embed` / `relative_position_bias_table` match
# nothing here either)
optim_wrapper = dict(type='AmpOptimWrapper')
