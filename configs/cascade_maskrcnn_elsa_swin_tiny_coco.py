# Cascade Mask R-CNN, ELSA-Swin-T + FPN, 1x (12 epochs) on COCO: the original recipe (spec
# elsa.md 4.2; 49.8 box / 43.0 mask AP, 86M parameters). Three ConvFCBBoxHead stages (4 shared
# convs with SyncBN + 1 FC, GIoU loss x10 on decoded boxes), AdamW lr 1e-4 / wd 0.05 (none on
# norms), warm-up 500 iterations, steps at 8 and 11, batch 2 x 8 GPUs, mixed precision, the
# DETR-style augmentation, no drop path. ImageNet weights: elsa2mmvit.py, then
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = ('mmdet::convnext/'
          'cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py')
custom_imports = dict(imports=['mmvit_plugins'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ELSASwin',
        arch='tiny',
        drop_path_rate=0.0,
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
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
